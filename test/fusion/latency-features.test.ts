import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type FeatureMotion, FusionInputError, compensateFeatureMotion, compensateObjectMotion, featureMotionsFromTracks } from '../../src/fusion/index.ts';
import { identity } from '../../src/geometry/index.ts';
import type { BevGrid } from '../../src/perception/index.ts';

// A 16 × 16 feature map of 1 m cells (0.5 m pillars, stride 2), x and y in [−8, 8), two channels.
const grid: BevGrid = { xMin: -8, xMax: 8, yMin: -8, yMax: 8, zMin: -3, zMax: 1, cellSize: 0.5, featureStride: 2, channels: 2 };
const W = 16, H = 16, plane = W * H, C = 2;
const cellOf = (x: number, y: number) => Math.floor(y + 8) * W + Math.floor(x + 8);
// A car 2.6 m × 1.2 m centred on a cell centre covers 3 × 1 cells along x (no margin): centres at x ± 1, y.
const box = (x: number, y: number, yaw = 0) => ({ x, y, z: 0, l: 2.6, w: 1.2, h: 1.5, yaw });

/** Background 0.1 everywhere (channel 1: 0.2); the car's three cells carry distinct values per channel. */
function mapWithCar(cx: number, cy: number): { features: Float32Array; mask: Float32Array } {
  const features = new Float32Array(C * plane);
  features.fill(0.1, 0, plane);
  features.fill(0.2, plane);
  for (let k = -1; k <= 1; k++) {
    features[cellOf(cx + k, cy)] = 10 + k;
    features[plane + cellOf(cx + k, cy)] = 20 + k;
  }
  return { features, mask: new Float32Array(plane).fill(1) };
}

test('compensateFeatureMotion moves the cells of a moving box by its displacement and clears what it left', () => {
  const { features, mask } = mapWithCar(-2.5, 0.5);
  const motions: FeatureMotion[] = [{ box: box(-2.5, 0.5), dx: 3, dy: 1 }];
  assert.equal(compensateFeatureMotion(features, mask, motions, grid, { marginM: 0 }), 1);
  for (let k = -1; k <= 1; k++) {
    // Three cells right and one up: exactly the values the car had, both channels, and seen.
    assert.equal(features[cellOf(0.5 + k, 1.5)], 10 + k);
    assert.equal(features[plane + cellOf(0.5 + k, 1.5)], 20 + k);
    assert.equal(mask[cellOf(0.5 + k, 1.5)], 1);
  }
  // Where it was: cleared and not seen (the collaborator does not know what is there now).
  for (const x of [-3.5, -2.5, -1.5]) {
    assert.equal(features[cellOf(x, 0.5)], 0, `cell at ${x}`);
    assert.equal(features[plane + cellOf(x, 0.5)], 0);
    assert.equal(mask[cellOf(x, 0.5)], 0);
  }
  // Everything else is as it was.
  let changed = 0;
  const before = mapWithCar(-2.5, 0.5).features;
  for (let i = 0; i < features.length; i++) if (features[i] !== before[i]) changed++;
  assert.equal(changed, 2 * 6, 'three cells cleared and three written, in both channels');
});

test('overlapping source and destination: a car moving less than its length still lands intact', () => {
  const { features, mask } = mapWithCar(0.5, 0.5);
  compensateFeatureMotion(features, mask, [{ box: box(0.5, 0.5), dx: 1, dy: 0 }], grid, { marginM: 0 });
  assert.deepEqual([-0.5, 0.5, 1.5, 2.5].map((x) => features[cellOf(x, 0.5)]), [0, 9, 10, 11]);
  assert.deepEqual([-0.5, 0.5, 1.5, 2.5].map((x) => mask[cellOf(x, 0.5)]), [0, 1, 1, 1]);
});

test('a half-cell move blends neighbours bilinearly; the margin grows the footprint', () => {
  const { features, mask } = mapWithCar(0.5, 0.5);
  compensateFeatureMotion(features, mask, [{ box: box(0.5, 0.5), dx: 0.5, dy: 0 }], grid, { marginM: 0.5 });
  // Footprint ±1.8 m × ±1.1 m around (0.5, 0.5), moved 0.5 m along x: cell 1.5 reads x = 1.0, half 10 and half 11.
  assert.ok(Math.abs(features[cellOf(1.5, 0.5)] - 10.5) < 1e-6, String(features[cellOf(1.5, 0.5)]));
  assert.ok(Math.abs(features[cellOf(0.5, 0.5)] - 9.5) < 1e-6, String(features[cellOf(0.5, 0.5)]));
  assert.equal(mask[cellOf(1.5, 0.5)], 1);
});

test('static objects and zero gaps change nothing; nothing is moved out of the collaborator\'s unseen cells', () => {
  const { features, mask } = mapWithCar(0.5, 0.5);
  const copy = features.slice(), maskCopy = mask.slice();
  assert.equal(compensateFeatureMotion(features, mask, [{ box: box(0.5, 0.5), dx: 0, dy: 0 }], grid), 0);
  assert.deepEqual(features, copy);
  assert.deepEqual(mask, maskCopy);
  // A parked car (its track below the speed floor) beside a moving one: only the moving one's cells change.
  const two = mapWithCar(0.5, 0.5);
  for (let k = -1; k <= 1; k++) two.features[cellOf(-4.5 + k, -4.5)] = 30 + k;
  const tracks = [{ box: box(0.5, 0.5), velocity: { x: 0.4, y: 0.3 } }, { box: box(-4.5, -4.5), velocity: { x: 10, y: 0 } }];
  const moving = featureMotionsFromTracks(tracks, identity(), { trackS: 0, captureS: 0, nowS: 0.2 });
  assert.equal(moving.length, 1, 'the 0.5 m/s track is parked');
  compensateFeatureMotion(two.features, two.mask, moving, grid, { marginM: 0 });
  assert.deepEqual([-0.5, 0.5, 1.5].map((x) => two.features[cellOf(x, 0.5)]), [9, 10, 11], 'the parked car is untouched');
  assert.deepEqual([-3.5, -2.5, -1.5].map((x) => two.features[cellOf(x, -4.5)]), [29, 30, 31], 'the other moved 2 m');
  // A message as new as the ego frame: no motion at all.
  assert.equal(featureMotionsFromTracks(tracks, identity(), { trackS: 0, captureS: 0.1, nowS: 0.1 }).length, 0);
  // A car the collaborator did not see (mask 0 under it) is not carried into view.
  const unseen = mapWithCar(0.5, 0.5);
  unseen.mask.fill(0);
  compensateFeatureMotion(unseen.features, unseen.mask, [{ box: box(0.5, 0.5), dx: 2, dy: 0 }], grid, { marginM: 0 });
  assert.equal(unseen.mask.reduce((a, b) => a + b, 0), 0);
  assert.equal(unseen.features[cellOf(2.5, 0.5)], Math.fround(0.1));
  assert.throws(() => compensateFeatureMotion(new Float32Array(7), null, [], grid), FusionInputError);
});

test('featureMotionsFromTracks places a track at the capture time and moves it over the age, in the ego frame', () => {
  // Ego frame = world rotated by 90° (world x is ego y) and shifted: the box moves, the velocity only turns.
  const toEgo = identity();
  toEgo[0] = 0; toEgo[1] = -1; toEgo[4] = 1; toEgo[5] = 0; toEgo[3] = 5;
  // Track at t = 1.0 s, 10 m/s along world x; message captured at 0.8 s, ego frame at 1.1 s.
  const [m] = featureMotionsFromTracks([{ box: box(20, 0), velocity: { x: 10, y: 0 } }], toEgo, { trackS: 1.0, captureS: 0.8, nowS: 1.1 });
  // At capture the car was at world (18, 0) → ego (5 − 0, 18); it moved 3 m along world x = ego +y since.
  assert.ok(Math.abs(m.box.x - 5) < 1e-9 && Math.abs(m.box.y - 18) < 1e-9, JSON.stringify(m.box));
  assert.ok(Math.abs(m.dx) < 1e-9 && Math.abs(m.dy - 3) < 1e-9, `${m.dx}, ${m.dy}`);
  assert.ok(Math.abs(m.box.yaw - Math.PI / 2) < 1e-9);
  // A vehicle does not move sideways: a track whose velocity is 45° off its heading is a parked car's drift. Reversing
  // is motion; a pedestrian may walk any way.
  const times = { trackS: 0, captureS: 0, nowS: 0.3 };
  assert.equal(featureMotionsFromTracks([{ box: box(0, 0), velocity: { x: 3, y: 3 } }], identity(), times).length, 0);
  assert.equal(featureMotionsFromTracks([{ box: box(0, 0), velocity: { x: -3, y: 0.5 } }], identity(), times).length, 1);
  assert.equal(featureMotionsFromTracks([{ box: box(0, 0), velocity: { x: 3, y: 3 }, cls: 'pedestrian' }], identity(), times).length, 1);
});

test('compensateObjectMotion moves the objects inside a moving footprint, and only those', () => {
  const det = (x: number, y: number) => ({ box: box(x, y), score: 0.9 });
  const out = compensateObjectMotion([det(0.7, 0.4), det(6, 6)], [{ box: box(0.5, 0.5), dx: 3, dy: 1 }], { grid });
  assert.deepEqual([out[0].box.x, out[0].box.y].map((v) => +v.toFixed(9)), [3.7, 1.4]);
  assert.deepEqual([out[1].box.x, out[1].box.y], [6, 6]);
});
