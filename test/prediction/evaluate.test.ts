import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CooperativeFrame } from '../../src/datasets/index.ts';
import { identity } from '../../src/geometry/index.ts';
import {
  ConstantVelocityPredictor,
  CtrvPredictor,
  PredictionMetrics,
  evaluatePredictors,
  groundTruthFuture,
  headingsAlongMotion,
  predictTracks,
  readTracksFile,
  scoreTrackPredictions,
  singleModePrediction,
} from '../../src/prediction/index.ts';

const CURVED = 'test/fixtures/prediction/curved-tracks.json';

describe('evaluatePredictors', () => {
  it('scores every full window of the curved fixture tracks; CTRV beats CV on them', async () => {
    const sequences = await readTracksFile(CURVED);
    const [cv, ctrv] = await evaluatePredictors(sequences, [new ConstantVelocityPredictor(), new CtrvPredictor()]);
    // 5 tracks of 44 frames, 10 history + 30 future steps: anchors 9 … 13.
    assert.equal(cv.subsets.all.count, 25);
    assert.equal(cv.subsets.vehicle.count, 25);
    assert.equal(cv.subsets.pedestrian.count, 0);
    assert.equal(cv.steps, 30);
    assert.equal(cv.subsets.all.minAde, cv.subsets.all.ade, 'one mode: minADE = ADE');
    assert.ok(ctrv.subsets.all.fde < cv.subsets.all.fde, `CTRV FDE ${ctrv.subsets.all.fde} vs CV ${cv.subsets.all.fde}`);
  });

  it('refuses predictors with different horizons in one evaluation', async () => {
    await assert.rejects(
      evaluatePredictors([], [new ConstantVelocityPredictor(), new CtrvPredictor({ horizonS: 2, rateHz: 10 })]),
      /share the horizon/,
    );
  });
});

describe("scoring a running system's predictions", () => {
  const frameWith = (boxes: [string, number, number][]) =>
    ({
      agents: [{ boxes: boxes.map(([id, x, y]) => ({ id, cls: 'vehicle', rawClass: 'car', box: { x, y, z: 1, l: 4, w: 2, h: 1.5, yaw: 0 } })) }],
    }) as unknown as CooperativeFrame;

  it('groundTruthFuture: the object\'s positions in the given frame, NaN where it is not listed', () => {
    const worldToEgo = identity();
    worldToEgo[3] = -100; // ego at x = 100 in the world
    worldToEgo[7] = 5;
    const future = groundTruthFuture([frameWith([['7', 101, 0]]), frameWith([['8', 0, 0]]), frameWith([['7', 103, 1]])], '7', worldToEgo);
    assert.deepEqual([future[0], future[1]], [1, 5]);
    assert.ok(Number.isNaN(future[2]) && Number.isNaN(future[3]));
    assert.deepEqual([future[4], future[5]], [3, 6]);
  });

  it('scores matched tracks with a full known future and skips the rest', () => {
    const p = singleModePrediction(Float64Array.of(1, 0, 0, 2, 0, 0));
    const metrics = new PredictionMetrics();
    const r = scoreTrackPredictions(
      [
        { trackId: 1, prediction: p },
        { trackId: 2, prediction: p },
        { trackId: 3, prediction: p },
      ],
      new Map([
        [1, Float64Array.of(1, 0, 2, 4)],
        [2, Float64Array.of(1, 0, Number.NaN, Number.NaN)],
      ]),
      metrics,
    );
    assert.deepEqual(r, { scored: 1, skipped: 2 });
    assert.equal(metrics.summary().fde, 4);
    assert.equal(metrics.summary().ade, 2);
  });

  it('predictTracks turns box histories into wire trajectories (time offsets, probability, yaw)', async () => {
    const boxes = Array.from({ length: 5 }, (_, i) => ({ x: i, y: 0, z: 0, l: 4, w: 2, h: 1.5, yaw: 0 }));
    const [out] = await predictTracks([{ trackId: 42, boxes }, { trackId: 43, boxes: [] }], new ConstantVelocityPredictor());
    assert.equal(out.trackId, 42);
    assert.equal(out.trajectories.length, 1);
    const t = out.trajectories[0];
    assert.equal(t.probability, 1);
    assert.equal(t.waypoints.length, 30);
    assert.deepEqual(t.waypoints[0], { timeOffsetS: 0.1, x: 5, y: 0, yaw: 0, positionStd: 0 });
    assert.ok(Math.abs(t.waypoints[29].x - 34) < 1e-9 && Math.abs(t.waypoints[29].timeOffsetS - 3) < 1e-12);
  });
});

describe('headingsAlongMotion', () => {
  const box = (x: number, yaw: number) => ({ x, y: 0, z: 0, l: 4, w: 2, h: 1.5, yaw });
  it('turns headings that point against the direction of travel by π, and leaves the others', () => {
    const yaws = headingsAlongMotion([box(0, Math.PI), box(1, 0.1), box(2, Math.PI - 0.1)]);
    assert.ok(Math.abs(yaws[0]) < 1e-12);
    assert.ok(Math.abs(yaws[1] - 0.1) < 1e-12);
    assert.ok(Math.abs(yaws[2] + 0.1) < 1e-12);
  });
  it('leaves a track that stands still as it is (no direction to agree with)', () => {
    const yaws = headingsAlongMotion([box(0, Math.PI), box(0.2, Math.PI), box(0.4, Math.PI)]);
    assert.deepEqual(Array.from(yaws), [Math.PI, Math.PI, Math.PI]);
  });
});
