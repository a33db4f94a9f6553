// The 'slotted' PFN layout pads each pillar only to the next power of two of its point count and runs lidar_pfn
// once per slot count. It must reproduce the padded [P, 32, 10] run of the very same model file: on a real frame,
// with pillars that have padded slots and pillars that are full, and after the backbone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { openDataset } from '../../src/datasets/index.ts';
import { LidarEncoder, PILLAR_FEATURE_COUNT, Pillarizer, loadManifest, pfnSlotSizes } from '../../src/perception/index.ts';
import { withInputDim } from '../../src/perception/onnx-input-dim.ts';

const FIXTURE = path.resolve(process.cwd(), 'datasets/fixture/fixture-s1');
const TOLERANCE = 1e-5;
const F = PILLAR_FEATURE_COUNT;

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

// The fixture's first scan plus a pole of 40 returns in one cell, so that some pillars are full (no padded slot).
async function scanWithFullPillar(): Promise<Float32Array> {
  const seq = (await openDataset(FIXTURE)).scenarios[0];
  const scan = await (await seq.frame(0)).agents[0].loadPoints();
  const points = new Float32Array(scan.length + 40 * 4);
  points.set(scan);
  for (let i = 0; i < 40; i++) points.set([5.1 + 0.002 * i, -3.1, -1.5 + 0.05 * i, 0.3 + 0.01 * i], scan.length + 4 * i);
  return points;
}

test('withInputDim re-declares only the point-slot size of the shipped lidar_pfn, and ORT then runs one point per pillar', async () => {
  const manifest = await loadManifest('models/manifest.json');
  const bytes = new Uint8Array(await readFile(manifest.models.lidar_pfn.path));
  const patched = withInputDim(bytes, 'pillars', 1, 1);
  assert.ok(patched, 'the shipped model has a fixed slot axis to re-declare');
  assert.equal(patched.length, bytes.length);
  let changed = 0;
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== patched[i]) changed++;
  assert.equal(changed, 1);
  const session = await ort.InferenceSession.create(patched);
  try {
    assert.deepEqual(session.inputMetadata[0].isTensor && session.inputMetadata[0].shape, ['P', 1, 10]);
  } finally {
    await session.release();
  }
  // Nothing to re-declare: another input name, the dynamic axis 0, an axis past the shape.
  assert.equal(withInputDim(bytes, 'points', 1, 1), undefined);
  assert.equal(withInputDim(bytes, 'pillars', 0, 1), undefined);
  assert.equal(withInputDim(bytes, 'pillars', 3, 1), undefined);
  assert.equal(withInputDim(new Uint8Array([0xff, 0xff, 0xff]), 'pillars', 1, 1), undefined);
});

test('Pillarizer: pointFeatures holds exactly the padded slots of each pillar, packed, also after a larger frame', async () => {
  const manifest = await loadManifest('models/manifest.json');
  const pillarizer = new Pillarizer(manifest.grid, manifest.pillar);
  const big = await scanWithFullPillar();
  pillarizer.pillarize(big);
  // A smaller frame after a larger one: stale rows past keptPoints must not leak into pillar ranges.
  const batch = pillarizer.pillarize(big.subarray(0, 4 * 1500));
  const { pillarCount, pillarStart, numPoints, maxPointsPerPillar } = batch;
  assert.equal(pillarStart[0], 0);
  assert.equal(pillarStart[pillarCount], batch.keptPoints);
  for (let p = 0; p < pillarCount; p++) {
    assert.equal(pillarStart[p + 1] - pillarStart[p], numPoints[p], `pillar ${p}`);
    for (let k = 0; k < numPoints[p]; k++) {
      const padded = batch.features.subarray((p * maxPointsPerPillar + k) * F, (p * maxPointsPerPillar + k + 1) * F);
      const packed = batch.pointFeatures.subarray((pillarStart[p] + k) * F, (pillarStart[p] + k + 1) * F);
      assert.deepEqual(packed, padded, `pillar ${p} slot ${k}`);
    }
  }
});

test('pfnSlotSizes: powers of two up to the slot count the model was trained with', () => {
  assert.deepEqual(pfnSlotSizes(32), [1, 2, 4, 8, 16, 32]);
  assert.deepEqual(pfnSlotSizes(20), [1, 2, 4, 8, 16, 20]);
  assert.deepEqual(pfnSlotSizes(1), [1]);
});

test('slotted layout: same pillar features and BEV features as the padded run of the same lidar_pfn.onnx (|diff| < 1e-5)', async () => {
  const manifest = await loadManifest('models/manifest.json');
  const points = await scanWithFullPillar();
  const slotted = await LidarEncoder.load(manifest, { threads: 1 });
  const padded = await LidarEncoder.load(manifest, { threads: 1, pfnLayout: 'padded' });
  try {
    // The shipped file declares [P, 32, 10]: the slotted layout must still apply, through withInputDim.
    assert.equal(slotted.pfnLayout, 'slotted');
    assert.equal(padded.pfnLayout, 'padded');
    const batch = new Pillarizer(manifest.grid, manifest.pillar).pillarize(points);
    const P = batch.pillarCount;
    // Every case of the slotted layout: a pillar of exactly 1, 2, 4 … points (no zero slot in its group, so the
    // zero slot's value is added in TypeScript), one in between (zero-padded), and a full one (no zero slot at all).
    const counts = new Set(Array.from(batch.numPoints.subarray(0, P)));
    for (const n of [1, 2, 3, 4, 32]) assert.ok(counts.has(n), `no pillar of ${n} points among ${P}`);

    // Reference: the padded tensor straight through the shipped model.
    const feeds = { pillars: new ort.Tensor('float32', batch.features.subarray(0, P * 32 * F), [P, 32, F]) };
    const expected = (await padded.pfn.session.run(feeds)).pillar_features.data as Float32Array;
    assert.equal(maxAbsDiff(await padded.pillarFeaturesOf(batch), expected), 0);
    const actual = Float32Array.from(await slotted.pillarFeaturesOf(batch));
    const pillarDiff = maxAbsDiff(actual, expected);
    assert.ok(pillarDiff < TOLERANCE, `max |slotted - padded| pillar features = ${pillarDiff}`);
    assert.ok(expected.some((v) => v > 0.5), 'the features are not all (near) zero');

    // Through the encoders: scatter and backbone after each layout.
    const a = Float32Array.from((await slotted.encode(points)).features);
    const b = (await padded.encode(points)).features;
    const bevDiff = maxAbsDiff(a, b);
    assert.ok(bevDiff < TOLERANCE, `max |slotted - padded| BEV features = ${bevDiff}`);
    assert.ok(b.some((v) => v !== 0));
  } finally {
    await slotted.dispose();
    await padded.dispose();
  }
});
