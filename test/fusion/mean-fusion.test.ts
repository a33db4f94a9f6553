import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FusionInputError, meanFuse } from '../../src/fusion/index.ts';

// Two channels on a 2 x 2 plane: values chosen so every average is exact in float32.
const PLANE = 4;

test('meanFuse: covered cells average the agents that cover them; the ego alone elsewhere; uncovered cells are 0', () => {
  const ego = new Float32Array([1, 2, 3, 4, -1, -2, -3, -4]);
  const a = new Float32Array([3, 6, 9, 12, 3, 2, 1, 0]);
  const b = new Float32Array([5, 100, 100, 100, 5, 100, 100, 100]);
  const maskA = new Float32Array([1, 1, 0, 0]);
  const maskB = new Float32Array([1, 0, 0, 0]);
  const out = meanFuse([ego, a, b], [null, maskA, maskB]);
  // Cell 0: all three; cell 1: ego and a; cells 2, 3: the ego only (b's 100s must not leak in).
  assert.deepEqual(Array.from(out), [3, 4, 3, 4, Math.fround((-1 + 3 + 5) / 3), 0, -3, -4]);

  // With no full-coverage map, a cell nobody covers is 0, not NaN (0 / 0).
  const none = meanFuse([a, b], [maskA, maskB], new Float32Array(2 * PLANE));
  assert.deepEqual(Array.from(none), [4, 6, 0, 0, 4, 2, 0, 0]);
});

test('meanFuse differs from a plain mean: a collaborator\'s uncovered zeros do not halve the ego\'s features', () => {
  const ego = new Float32Array([8, 8, 8, 8]);
  const warped = new Float32Array([0, 0, 0, 0]); // warpToEgo leaves uncovered cells at 0
  const out = meanFuse([ego, warped], [null, new Float32Array([0, 0, 0, 1])]);
  assert.deepEqual(Array.from(out), [8, 8, 8, 4]);
});

test('meanFuse refuses mismatched inputs and an output that aliases an input', () => {
  const f = new Float32Array(2 * PLANE);
  assert.throws(() => meanFuse([], []), FusionInputError);
  assert.throws(() => meanFuse([f, new Float32Array(PLANE)], [null, null]), FusionInputError);
  assert.throws(() => meanFuse([f], [null, null]), FusionInputError);
  assert.throws(() => meanFuse([f, f], [null, new Float32Array(3)]), FusionInputError);
  assert.throws(() => meanFuse([f], [null], f), FusionInputError);
});
