import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/sim/index.ts';
import { MultiObjectTracker, TrackingInputError, covarianceFromPositionConfidence } from '../../src/tracking/index.ts';

/** Seeded (the simulator's generator), so a failure reproduces. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}
const car = (x: number, y: number, yaw = 0) => ({ x, y, z: 0, l: 4.5, w: 1.9, h: 1.6, yaw });

for (const motion of ['cv', 'ctrv'] as const) {
  test(`${motion}: a straight mover with noisy detections keeps one id and its velocity converges`, () => {
    const r = rng(7);
    const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
    const tracker = new MultiObjectTracker({ motion });
    const heading = Math.PI / 6, speed = 10;
    const ids = new Set<number>();
    const late: { x: number; y: number }[] = [];
    for (let k = 0; k < 40; k++) {
      const d = speed * k * 0.1;
      const out = tracker.update(k * 0.1, [
        { box: car(d * Math.cos(heading) + 0.2 * gauss(), d * Math.sin(heading) + 0.2 * gauss(), heading + 0.05 * gauss()), score: 0.9 },
      ]);
      assert.equal(out.length, 1, `frame ${k}: ${out.length} tracks`);
      ids.add(out[0].id);
      if (k >= 30) late.push(out[0].velocity);
    }
    assert.deepEqual([...ids], [1]);
    const vx = late.reduce((s, v) => s + v.x, 0) / late.length, vy = late.reduce((s, v) => s + v.y, 0) / late.length;
    const err = Math.hypot(vx - speed * Math.cos(heading), vy - speed * Math.sin(heading));
    assert.ok(err < 0.8, `mean velocity of the last 10 frames off by ${err.toFixed(2)} m/s`);
  });
}

test('birth after min_hits and death after max_age (AB3DMOT Car: 3 and 2)', () => {
  const tracker = new MultiObjectTracker();
  const seen: number[][] = [];
  for (let k = 0; k < 12; k++) {
    const dets = [];
    if (k <= 4) dets.push({ box: car(k, 0), score: 0.9 }); // object 1: frames 0–4
    if (k >= 5) dets.push({ box: car(k, 20), score: 0.8 }); // object 2: from frame 5
    seen.push(tracker.update(k * 0.1, dets).map((t) => t.id));
  }
  // Frames 0–2 report everything (frame_count ≤ min_hits); object 1 then has ≥ 3 hits. After its last detection
  // (frame 4) it coasts one frame (time_since_update 1 < 2) and is deleted at the second miss.
  assert.deepEqual(seen.slice(0, 7), [[1], [1], [1], [1], [1], [1], []]);
  // Object 2 is born at frame 5 and reported from its third hit (frame 7).
  assert.deepEqual(seen.slice(5, 9), [[1], [], [2], [2]]);
});

test('a coasting track is reported at its prediction, and picked up again within max_age', () => {
  const tracker = new MultiObjectTracker({ params: { vehicle: { maxAge: 3 } } });
  for (let k = 0; k < 5; k++) tracker.update(k * 0.1, [{ box: car(k, 0), score: 0.9 }]);
  const coast = tracker.update(0.5, []);
  assert.equal(coast[0].timeSinceUpdate, 1);
  assert.ok(Math.abs(coast[0].box.x - 5) < 0.3, `predicted x ${coast[0].box.x}`);
  const back = tracker.update(0.6, [{ box: car(6, 0), score: 0.9 }]);
  assert.deepEqual(back.map((t) => [t.id, t.timeSinceUpdate]), [[1, 0]]);
});

test('classes are tracked apart: a pedestrian on a car track starts its own track', () => {
  const tracker = new MultiObjectTracker();
  tracker.update(0, [{ box: car(0, 0), score: 0.9 }]);
  const out = tracker.update(0.1, [{ box: car(0, 0), score: 0.9 }, { box: { x: 0.2, y: 0, z: 0, l: 0.6, w: 0.6, h: 1.7, yaw: 0 }, score: 0.7, cls: 'pedestrian' }]);
  assert.deepEqual(out.map((t) => [t.id, t.cls, t.hits]).sort(), [[1, 'vehicle', 2], [2, 'pedestrian', 1]]);
});

test('multi-sensor update: two agents seeing one object give one track, two updates per frame (DMSTrack)', () => {
  const tracker = new MultiObjectTracker();
  const cov = covarianceFromPositionConfidence({ x: 0.43, y: 0.47, z: 0.17 });
  let out = tracker.updateMultiSensor(0, [
    { source: 'ego', detections: [{ box: car(0, 0), score: 0.9, covariance: cov }] },
    { source: 'rsu', detections: [{ box: car(0.2, 0.1), score: 0.7, covariance: cov }] },
  ]);
  // The second agent's box is matched to the track the first one just started.
  assert.deepEqual(out.map((t) => [t.id, t.hits]), [[1, 2]]);
  out = tracker.updateMultiSensor(0.1, [
    { source: 'ego', detections: [{ box: car(1, 0), score: 0.9, covariance: cov }] },
    { source: 'rsu', detections: [{ box: car(1.1, 0), score: 0.7, covariance: cov }] },
  ]);
  assert.deepEqual(out.map((t) => [t.id, t.hits, t.score]), [[1, 4, 0.7]]);
  // Its birth variance is the detection's, not AB3DMOT's P₀ = 10: σx = 0.43/1.96.
  assert.ok(out[0].variance.x < 0.1, `variance ${out[0].variance.x}`);
});

test('covarianceFromPositionConfidence: σ = half-width / 1.96, an unavailable axis keeps the fallback', () => {
  const c = covarianceFromPositionConfidence({ x: 0.392, y: 0, z: 0.196 });
  assert.ok(Math.abs(c[0] - 0.04) < 1e-12);
  assert.equal(c[1], 1);
  assert.ok(Math.abs(c[2] - 0.01) < 1e-12);
  assert.deepEqual([...c.slice(3)], [1, 1, 1, 1]);
});

test('bad input is refused with the field named', () => {
  const tracker = new MultiObjectTracker();
  tracker.update(1, []);
  assert.throws(() => tracker.update(1, []), (e: unknown) => e instanceof TrackingInputError && /timeS/.test(e.message));
  assert.throws(() => tracker.update(2, [{ box: { ...car(0, 0), l: 0 }, score: 1 }]), (e: unknown) => e instanceof TrackingInputError && /detections\[0\]/.test(e.message));
  assert.throws(() => new MultiObjectTracker({ params: { vehicle: { minHits: 0 } } }), TrackingInputError);
});
