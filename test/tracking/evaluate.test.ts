import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateTracking } from '../../src/tracking/index.ts';
import { poseToMatrix, invertRigid, transformBox } from '../../src/geometry/index.ts';

test('evaluateTracking tracks in the world frame: a parked car seen from a moving, turning ego stays one still track', () => {
  const parkedWorld = { x: 30, y: 5, z: 0, l: 4.5, w: 1.9, h: 1.6, yaw: 0.3 };
  const frames = Array.from({ length: 20 }, (_, k) => {
    const egoToWorld = poseToMatrix({ x: 2 * k, y: 0.1 * k * k, z: 0, roll: 0, pitch: 0, yaw: 0.05 * k });
    const inEgo = transformBox(invertRigid(egoToWorld), parkedWorld);
    return {
      timeS: 100 + k * 0.1,
      egoToWorld,
      detections: [{ box: inEgo, score: 0.9 }],
      groundTruth: [{ id: 'p', cls: 'vehicle' as const, box: inEgo }],
    };
  });
  const r = evaluateTracking(frames, { keepTracks: true });
  const m = r.metrics.vehicle!;
  assert.deepEqual([m.tp, m.fp, m.fn, m.ids], [20, 0, 0, 0]);
  assert.equal(m.mota, 1);
  assert.equal(m.idf1, 1);
  const last = r.tracks!.at(-1)![0];
  assert.ok(Math.hypot(last.velocity.x, last.velocity.y) < 1e-6, 'still in the world frame');
  assert.ok(Math.abs(last.box.x - 30) < 1e-6 && Math.abs(last.box.y - 5) < 1e-6);
  // Without the pose the same detections drift in the ego frame: the tracker must follow a moving box.
  const egoOnly = evaluateTracking(frames.map(({ egoToWorld: _, ...f }) => f), { keepTracks: true });
  assert.ok(Math.hypot(egoOnly.tracks!.at(-1)![0].velocity.x, egoOnly.tracks!.at(-1)![0].velocity.y) > 1);
});

test('a detection covariance is rotated into the world frame with its box', () => {
  const egoToWorld = poseToMatrix({ x: 0, y: 0, z: 0, roll: 0, pitch: 0, yaw: Math.PI / 2 });
  const r = evaluateTracking(
    [{ timeS: 0, egoToWorld, detections: [{ box: { x: 10, y: 0, z: 0, l: 4, w: 2, h: 1.5, yaw: 0 }, score: 1, covariance: [0.01, 0.09, 0.02, 1, 1, 1, 1] }], groundTruth: [] }],
    { keepTracks: true },
  );
  const t = r.tracks![0][0];
  // The ego's x axis is the world's y axis: σ² along world x is the ego's y variance.
  assert.ok(Math.abs(t.variance.x - 0.09) < 1e-12 && Math.abs(t.variance.y - 0.01) < 1e-12, JSON.stringify(t.variance));
  assert.ok(Math.abs(t.box.y - 10) < 1e-9);
});

test('per-agent sets run the multi-sensor update', () => {
  const box = (x: number) => ({ x, y: 0, z: 0, l: 4, w: 2, h: 1.5, yaw: 0 });
  const frames = [0, 1, 2, 3].map((k) => ({
    timeS: k * 0.1,
    detections: [
      { source: 'a', detections: [{ box: box(k), score: 0.9 }] },
      { source: 'b', detections: [{ box: box(k + 0.1), score: 0.8 }] },
    ],
    groundTruth: [{ id: 7, cls: 'vehicle' as const, box: box(k) }],
  }));
  const r = evaluateTracking(frames, { keepTracks: true });
  assert.deepEqual(r.tracks!.map((ts) => ts.map((t) => [t.id, t.hits])), [[[1, 2]], [[1, 4]], [[1, 6]], [[1, 8]]]);
  assert.equal(r.metrics.vehicle!.mota, 1);
});
