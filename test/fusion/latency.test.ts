import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Detection } from '../../src/eval/index.ts';
import { FusionInputError, compensateLatency, delayedFrameIndex, estimateVelocities, estimateVelocitiesFromHistory } from '../../src/fusion/index.ts';

const ms = (v: number) => BigInt(v) * 1_000_000n;
const car = (x: number, y: number, cls: Detection['cls'] = 'vehicle'): Detection => ({ box: { x, y, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0 }, score: 0.8, cls });

test('delayedFrameIndex: the latest frame at least L ms older than the current one; none before the sequence starts', () => {
  const stamps = [ms(3400), ms(3500), ms(3600), ms(3700)]; // 100 ms apart, as the simulator and OPV2V
  assert.equal(delayedFrameIndex(stamps, 3, 0), 3);
  assert.equal(delayedFrameIndex(stamps, 3, 100), 2);
  assert.equal(delayedFrameIndex(stamps, 3, 200), 1);
  assert.equal(delayedFrameIndex(stamps, 3, 300), 0);
  assert.equal(delayedFrameIndex(stamps, 3, 150), 1, 'between frames: the nearest earlier one (200 ms old), never a newer one');
  assert.equal(delayedFrameIndex(stamps, 3, 99.9), 2);
  assert.equal(delayedFrameIndex(stamps, 3, 301), undefined, 'no frame that old yet');
  assert.equal(delayedFrameIndex(stamps, 0, 100), undefined);
  // Uneven spacing (a dropped sweep): the rule follows the timestamps, not the indices.
  assert.equal(delayedFrameIndex([ms(0), ms(100), ms(300), ms(400)], 3, 200), 1);
  assert.throws(() => delayedFrameIndex(stamps, 4, 100), FusionInputError);
  assert.throws(() => delayedFrameIndex(stamps, 1, -5), FusionInputError);
});

test('estimateVelocities (two lists, TCLF) pairs each object with the nearest earlier one of its class within the speed gate', () => {
  const previous = [car(0, 0), car(20, 5), car(40, 0, 'pedestrian'), car(60, 0), car(80, 0)];
  const current = [car(1, 0), car(20, 4.5), car(40.1, 0, 'vehicle'), car(70, 0), car(80.05, 0)];
  const v = estimateVelocities(previous, current, 0.1);
  // Object 2 is a vehicle near a pedestrian: no pair across classes. Object 3 moved 10 m in 0.1 s (100 m/s): beyond
  // the 40 m/s gate, so not the same object. Object 4 moved 0.5 m/s: below the 1 m/s floor, taken as parked.
  assert.deepEqual(Array.from(v).map((x) => +x.toFixed(9)), [10, 0, 0, -5, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(Array.from(estimateVelocities(previous, current, 0.1, { minSpeedMps: 0 })).slice(8).map((x) => +x.toFixed(9)), [0.5, 0]);
  // Two candidates for one: the closer wins.
  const two = estimateVelocities([car(0, 0), car(0.8, 0)], [car(1, 0)], 0.1);
  assert.ok(Math.abs(two[0] - 2) < 1e-9, String(two[0]));
  assert.throws(() => estimateVelocities([], [], 0), FusionInputError);
});

test('estimateVelocitiesFromHistory fits a line through the whole chain; a broken chain is not moved', () => {
  // A car at 10 m/s along x with ±0.2 m detection jitter, four lists 0.1 s apart: the fit is exact on the mean motion
  // (jitter +0.2, −0.2, −0.2, +0.2 is symmetric, slope 0 of its own), where the last two lists alone would say 14 m/s.
  const xs = [0 + 0.2, 1 - 0.2, 2 - 0.2, 3 + 0.2];
  const history = xs.map((x) => [car(x, 5)]);
  history[1].push(car(50, 0)); // an object seen once: no chain
  history[3].push(car(50.5, 0));
  const v = estimateVelocitiesFromHistory(history, [-0.3, -0.2, -0.1, 0]);
  assert.ok(Math.abs(v[0] - 10) < 1e-9 && Math.abs(v[1]) < 1e-9, `${v[0]}, ${v[1]}`);
  assert.deepEqual([v[2], v[3]], [0, 0], 'its predecessor in list 2 is missing: the chain breaks');
  assert.throws(() => estimateVelocitiesFromHistory([[car(0, 0)]], [0]), FusionInputError);
  assert.throws(() => estimateVelocitiesFromHistory([[], []], [0, 0]), FusionInputError);
  assert.throws(() => estimateVelocitiesFromHistory([[], []], [0]), FusionInputError);
});

test('compensateLatency moves each object of the newest list by its velocity over the gap, unmatched ones stay', () => {
  const moved = compensateLatency([[car(0, 0), car(30, 30)], [car(1, 0.5), car(50, 50)]], [0, 0.1], 0.3);
  // (1, 0.5) moved (1, 0.5) in 0.1 s: 10, 5 m/s; 0.3 s later it is at (4, 2). The far one has no partner.
  assert.ok(Math.abs(moved[0].box.x - 4) < 1e-9 && Math.abs(moved[0].box.y - 2) < 1e-9, JSON.stringify(moved[0].box));
  assert.deepEqual([moved[1].box.x, moved[1].box.y], [50, 50]);
  assert.equal(moved[0].score, 0.8);
  // Zero gap: nothing moves.
  assert.equal(compensateLatency([[car(0, 0)], [car(1, 0)]], [0, 0.1], 0)[0].box.x, 1);
});
