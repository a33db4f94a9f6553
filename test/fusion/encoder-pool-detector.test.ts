// The in-process detector with its LiDAR agents encoded on worker threads (detect --workers N) must detect what it
// detects encoding them one after another: the same boxes and scores, frame by frame, for max fusion and hybrid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { openDataset } from '../../src/datasets/index.ts';
import { CooperativeDetector } from '../../src/fusion/index.ts';
import { LidarEncoderPool, PerceptionModels } from '../../src/perception/index.ts';

const FIXTURE = path.resolve(process.cwd(), 'datasets/fixture/fixture-s1');

test('detections with a two-worker encoder pool equal those of the in-process encoder', async () => {
  const models = await PerceptionModels.load('models/manifest.json', { threads: 1 });
  const pool = await LidarEncoderPool.start(models.manifest, { workers: 2, threads: 1 });
  try {
    const seq = (await openDataset(FIXTURE)).scenarios[0];
    let agentFrames = 0;
    for (let i = 0; i < seq.frameCount; i++) agentFrames += (await seq.frame(i)).agents.length;
    for (const mode of ['max', 'hybrid'] as const) {
      const before = pool.encoded;
      const plain = new CooperativeDetector(models, mode);
      const pooled = new CooperativeDetector(models, mode, { encoderPool: pool });
      for (let i = 0; i < seq.frameCount; i++) {
        const frame = await seq.frame(i);
        const ego = frame.agents[0].agentId;
        const a = await plain.detectFrame(frame, ego, seq);
        const b = await pooled.detectFrame(frame, ego, seq);
        assert.ok(a.detections.length > 0, `${mode} frame ${i} detects something`);
        assert.deepEqual(b.detections, a.detections, `${mode} frame ${i}`);
      }
      assert.equal(pool.encoded - before, agentFrames, `${mode}: every agent of every frame encoded on the pool`);
    }
  } finally {
    await pool.dispose();
    await models.dispose();
  }
});
