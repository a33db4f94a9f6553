import { test } from 'node:test';
import assert from 'node:assert/strict';
import { paretoFront } from '../../src/sweep/index.ts';

test('the Pareto front keeps the configurations no other beats on both bytes and AP', () => {
  const pts = [
    { bytes: 1_000, ap: 0.80 }, // 0: front
    { bytes: 500, ap: 0.60 }, // 1: front (cheapest)
    { bytes: 2_000, ap: 0.75 }, // 2: dominated by 0
    { bytes: 4_000_000, ap: 0.85 }, // 3: front (best AP)
    { bytes: 65_000, ap: 0.80 }, // 4: same AP as 0 for more bytes: dominated
    { bytes: 800, ap: 0.55 }, // 5: dominated by 1
    { bytes: Number.NaN, ap: 0.99 }, // 6: no bytes: never on it
  ];
  assert.deepEqual(paretoFront(pts), [1, 0, 3]);
});

test('exact duplicates keep one point, and an empty set has an empty front', () => {
  assert.deepEqual(paretoFront([{ bytes: 10, ap: 0.5 }, { bytes: 10, ap: 0.5 }]), [0]);
  assert.deepEqual(paretoFront([]), []);
});
