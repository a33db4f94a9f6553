// LidarEncoder keeps its buffers (pillars, PFN output, canvas, features) across frames and hands ORT views of them:
// a frame must encode to exactly what a fresh encoder gives, whatever came before it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { openDataset } from '../../src/datasets/index.ts';
import { LidarEncoder, loadManifest } from '../../src/perception/index.ts';

const FIXTURE = path.resolve(process.cwd(), 'datasets/fixture/fixture-s1');

test('LidarEncoder: a frame encoded after other frames equals the same frame on a fresh encoder, bit for bit', async () => {
  const manifest = await loadManifest('models/manifest.json');
  const seq = (await openDataset(FIXTURE)).scenarios[0];
  const f0 = await seq.frame(0);
  const f1 = await seq.frame(1);
  const a = await f0.agents[0].loadPoints();
  // The other agent's scan covers cells frame `b` leaves empty: stale values there would show.
  const other = await f0.agents[1].loadPoints();
  const b = await f1.agents[0].loadPoints();
  const reused = await LidarEncoder.load(manifest, { threads: 1 });
  const fresh = await LidarEncoder.load(manifest, { threads: 1 });
  try {
    await reused.encode(a);
    await reused.encode(other);
    const after = Float32Array.from((await reused.encode(b)).features);
    const expected = (await fresh.encode(b)).features;
    let differing = 0;
    for (let i = 0; i < expected.length; i++) if (after[i] !== expected[i]) differing++;
    assert.equal(differing, 0, `${differing} feature values differ`);
    // An empty cloud after a full one: every canvas cell must be back to zero, so the map is the empty-scene map.
    const emptyAfter = Float32Array.from((await reused.encode(new Float32Array(0))).features);
    const emptyFresh = (await fresh.encode(new Float32Array(0))).features;
    assert.deepEqual(emptyAfter, emptyFresh);
  } finally {
    await reused.dispose();
    await fresh.dispose();
  }
});
