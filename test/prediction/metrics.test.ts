import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type MultiModalPrediction,
  PredictionMetrics,
  averageDisplacementError,
  finalDisplacementError,
  scorePrediction,
  singleModePrediction,
} from '../../src/prediction/index.ts';

/** Waypoints (x, y, yaw = 0) from (x, y) pairs, mode after mode. */
const wp = (...xy: number[]) => Float64Array.from(xy.flatMap((v, i) => (i % 2 === 1 ? [v, 0] : [v])));

// One mode: errors 0, 1, 5 → ADE 2, FDE 5.
const single = singleModePrediction(wp(1, 0, 2, 0, 3, 0));
const singleTruth = Float64Array.of(1, 0, 2, 1, 6, 4);

// Three modes of two steps; truth (1, 0), (2, 0).
//   mode 0 (p 0.2): errors 3, 1    → ADE 2, FDE 1
//   mode 1 (p 0.5): errors 0, 4    → ADE 2, FDE 4     (the most probable)
//   mode 2 (p 0.3): errors 0.5, 1.5 → ADE 1, FDE 1.5
const multi: MultiModalPrediction = {
  modes: 3,
  steps: 2,
  waypoints: wp(1, 3, 2, 1, /* mode 1 */ 1, 0, 2, 4, /* mode 2 */ 1, 0.5, 2, 1.5),
  probabilities: Float64Array.of(0.2, 0.5, 0.3),
};
const multiTruth = Float64Array.of(1, 0, 2, 0);

describe('displacement errors', () => {
  it('ADE and FDE of one trajectory, computed by hand', () => {
    assert.equal(averageDisplacementError(single.waypoints, singleTruth, 3), 2);
    assert.equal(finalDisplacementError(single.waypoints, singleTruth, 3), 5);
    // Over the first two steps only: errors 0, 1.
    assert.equal(averageDisplacementError(single.waypoints, singleTruth, 2), 0.5);
    assert.equal(finalDisplacementError(single.waypoints, singleTruth, 2), 1);
  });

  it('refuses a truth shorter than the steps asked for', () => {
    assert.throws(() => averageDisplacementError(single.waypoints, Float64Array.of(1, 0), 3), /fewer than 3 steps/);
  });
});

describe('scorePrediction (Argoverse conventions)', () => {
  it('ADE/FDE come from the most probable mode; minFDE_k is the best endpoint; minADE_k is THAT mode\'s ADE', () => {
    const s = scorePrediction(multi, multiTruth, { k: 3 });
    assert.equal(s.ade, 2);
    assert.equal(s.fde, 4);
    assert.equal(s.bestMode, 0);
    assert.equal(s.minFde, 1);
    assert.equal(s.minAde, 2, 'the ADE of the best-endpoint mode (0), not the smallest ADE (mode 2: 1)');
    assert.equal(s.miss, false);
    assert.equal(s.missTop1, true);
    assert.equal(s.k, 3);
  });

  it('k counts the k most probable modes only', () => {
    const k2 = scorePrediction(multi, multiTruth, { k: 2 }); // modes 1 and 2
    assert.equal(k2.bestMode, 2);
    assert.equal(k2.minFde, 1.5);
    assert.equal(k2.minAde, 1);
    const k1 = scorePrediction(multi, multiTruth, { k: 1 });
    assert.deepEqual([k1.minAde, k1.minFde, k1.bestMode, k1.miss], [2, 4, 1, true]);
    // k beyond the modes a predictor has is the number of modes.
    assert.equal(scorePrediction(single, singleTruth, { k: 6 }).k, 1);
  });

  it('a miss is a final displacement strictly over the threshold', () => {
    const exact = singleModePrediction(wp(0, 0, 2, 0));
    assert.equal(scorePrediction(exact, Float64Array.of(0, 0, 0, 0)).miss, false, 'FDE exactly 2 m');
    assert.equal(scorePrediction(exact, Float64Array.of(0, 0, -0.001, 0)).miss, true);
    assert.equal(scorePrediction(exact, Float64Array.of(0, 0, 0, 0), { missThresholdM: 1 }).miss, true);
  });
});

describe('PredictionMetrics', () => {
  it('averages over scored predictions', () => {
    const m = new PredictionMetrics(3);
    m.score(multi, multiTruth);
    m.score(single, singleTruth);
    assert.deepEqual(m.summary(), {
      count: 2,
      k: 3,
      missThresholdM: 2,
      ade: 2,
      fde: 4.5,
      minAde: 2,
      minFde: 3,
      missRate: 0.5,
      missRateTop1: 1,
    });
  });

  it('is NaN, not 0, before anything was scored', () => {
    const s = new PredictionMetrics().summary();
    assert.equal(s.count, 0);
    assert.ok(Number.isNaN(s.ade) && Number.isNaN(s.missRate));
  });
});
