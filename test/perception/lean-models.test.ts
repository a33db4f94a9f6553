// The shipped lidar_pfn.onnx and fusion_attention.onnx are lean rewrites (tools/train/export_lean.py) of the graphs
// torch.onnx traced, with the same weights. The camera lift and the channel compressors were trained against the
// traced models' features, so the rewrite must compute the same numbers: both are run here on a real frame.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openDataset } from '../../src/datasets/index.ts';
import { LidarEncoder, Pillarizer, createSession, featureShape, loadManifest } from '../../src/perception/index.ts';

const TRACED = path.resolve(process.cwd(), 'test/fixtures/onnx/traced');
const FIXTURE = path.resolve(process.cwd(), 'datasets/fixture/fixture-s1');
const TOLERANCE = 1e-4;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

async function fixtureClouds(): Promise<Float32Array[]> {
  const seq = (await openDataset(FIXTURE)).scenarios[0];
  const frame = await seq.frame(0);
  return Promise.all(frame.agents.map((a) => a.loadPoints()));
}

test('lean lidar_pfn gives the traced graph\'s pillar features on a fixture frame (|diff| < 1e-4)', async () => {
  const manifest = await loadManifest('models/manifest.json');
  const lean = await createSession(manifest.models.lidar_pfn.path, { sha256: manifest.models.lidar_pfn.sha256, threads: 1 });
  const traced = await createSession(path.join(TRACED, 'lidar_pfn.onnx'), { threads: 1 });
  try {
    const [scan] = await fixtureClouds();
    // The fixture's scans are sparse enough that no pillar fills up: add a pole of 40 returns in one cell.
    const points = new Float32Array(scan.length + 40 * 4);
    points.set(scan);
    for (let i = 0; i < 40; i++) points.set([5.1 + 0.002 * i, -3.1, -1.5 + 0.05 * i, 0.3 + 0.01 * i], scan.length + 4 * i);
    const batch = new Pillarizer(manifest.grid, manifest.pillar).pillarize(points);
    const P = batch.pillarCount;
    // Both cases the folded max must get right: pillars with padded (zero) slots and full ones.
    let full = 0;
    for (let p = 0; p < P; p++) if (batch.numPoints[p] === batch.maxPointsPerPillar) full++;
    assert.ok(P > 1000 && full > 0 && full < P, `frame has ${P} pillars, ${full} full`);
    const feeds = { pillars: new ort.Tensor('float32', batch.features.subarray(0, P * 32 * 10), [P, 32, 10]) };
    const a = (await lean.session.run(feeds)).pillar_features.data as Float32Array;
    const b = (await traced.session.run(feeds)).pillar_features.data as Float32Array;
    const diff = maxAbsDiff(a, b);
    assert.ok(diff < TOLERANCE, `max |lean - traced| = ${diff}`);
    assert.ok(b.some((v) => v > 0.5), 'the features are not all (near) zero');
  } finally {
    await lean.session.release();
    await traced.session.release();
  }
});

test('lean fusion_attention fuses like the traced graph on real encoded maps with partial coverage (|diff| < 1e-4)', async () => {
  const manifest = await loadManifest('models/manifest.json');
  const encoder = await LidarEncoder.load(manifest, { threads: 1 });
  const lean = await createSession(manifest.models.fusion_attention!.path, { sha256: manifest.models.fusion_attention!.sha256, threads: 1 });
  const traced = await createSession(path.join(TRACED, 'fusion_attention.onnx'), { threads: 1 });
  try {
    const clouds = await fixtureClouds();
    const [C, H, W] = featureShape(manifest.grid);
    const plane = H * W, size = C * plane, K = clouds.length;
    assert.ok(K >= 3, `fixture frame has ${K} agents`);
    const aligned = new Float32Array(K * size);
    const mask = new Float32Array(K * plane).fill(1);
    for (let k = 0; k < K; k++) {
      aligned.set((await encoder.encode(clouds[k])).features, k * size);
      // Collaborators cover only part of the ego grid (a band of rows per agent), zero outside as warpToEgo leaves it.
      if (k === 0) continue;
      for (let cell = 0; cell < plane; cell++) {
        if (Math.floor(cell / W) % K === k) continue;
        mask[k * plane + cell] = 0;
        for (let c = 0; c < C; c++) aligned[k * size + c * plane + cell] = 0;
      }
    }
    const feeds = {
      aligned: new ort.Tensor('float32', aligned, [K, C, H, W]),
      mask: new ort.Tensor('float32', mask, [K, 1, H, W]),
    };
    const a = (await lean.session.run(feeds)).fused.data as Float32Array;
    const b = (await traced.session.run(feeds)).fused.data as Float32Array;
    const diff = maxAbsDiff(a, b);
    assert.ok(diff < TOLERANCE, `max |lean - traced| = ${diff}`);
    // Attention mixes agents: the fused map is neither the ego's map nor all zero.
    assert.ok(maxAbsDiff(a, aligned.subarray(0, size)) > 1e-3, 'fusion changed the ego map');
  } finally {
    await encoder.dispose();
    await lean.session.release();
    await traced.session.release();
  }
});
