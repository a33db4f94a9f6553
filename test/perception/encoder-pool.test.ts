// LiDAR encoders on worker threads must give the in-process encoder's features, for several frames encoded at
// once, each into its own buffer; a frame a worker cannot encode fails alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { openDataset } from '../../src/datasets/index.ts';
import { EncoderPoolError, LidarEncoder, LidarEncoderPool, loadManifest } from '../../src/perception/index.ts';

const FIXTURE = path.resolve(process.cwd(), 'datasets/fixture/fixture-s1');

test('two encoder workers give the in-process encoder\'s features, bit for bit, for six scans encoded at once', async () => {
  const manifest = await loadManifest('models/manifest.json');
  const seq = (await openDataset(FIXTURE)).scenarios[0];
  const scans: Float32Array[] = [];
  for (let i = 0; i < seq.frameCount; i++) for (const a of (await seq.frame(i)).agents.slice(0, 2)) scans.push(await a.loadPoints());
  assert.ok(scans.length >= 6);
  const local = await LidarEncoder.load(manifest, { threads: 1 });
  const expected: Float32Array[] = [];
  for (const s of scans) expected.push(Float32Array.from((await local.encode(s)).features));
  await local.dispose();

  const pool = await LidarEncoderPool.start(manifest, { workers: 2, threads: 1 });
  try {
    assert.equal(pool.size, 2);
    const outs = scans.map(() => new Float32Array(expected[0].length).fill(Number.NaN));
    const results = await Promise.all(scans.map((s, k) => pool.encode(s, outs[k])));
    results.forEach((r, k) => {
      assert.equal(r.features, outs[k], 'written into the buffer given');
      assert.deepEqual(r.features, expected[k], `scan ${k}`);
      assert.ok((r.timings.backbone ?? 0) > 0, 'the worker\'s stage timings come back');
    });
    // Points a worker refuses (not whole x, y, z, intensity records) fail that request only.
    await assert.rejects(pool.encode(new Float32Array(5), outs[0]), EncoderPoolError);
    assert.deepEqual((await pool.encode(scans[1], outs[1])).features, expected[1]);
  } finally {
    await pool.dispose();
  }
  await assert.rejects(pool.encode(scans[0], new Float32Array(expected[0].length)), /disposed/);
  await assert.rejects(LidarEncoderPool.start(manifest, { workers: 0 }), /positive integer/);
});
