import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConstantVelocityPredictor,
  CtrvPredictor,
  WAYPOINT_STRIDE,
  estimateMotionState,
  predictConstantVelocity,
  predictCtrv,
} from '../../src/prediction/index.ts';

const close = (a: number, b: number, tol = 1e-9, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b}`);

/** (x, y, yaw) at 10 Hz, steps τ = −(n−1)/10 … 0. */
function history(n: number, at: (tau: number) => [number, number, number]): Float64Array {
  const h = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) h.set(at((i - (n - 1)) / 10), i * 3);
  return h;
}

// Straight: from (100, 50) at 12 m/s heading 30°.
const HEADING = Math.PI / 6;
const straight = history(10, (tau) => [100 + 12 * tau * Math.cos(HEADING), 50 + 12 * tau * Math.sin(HEADING), HEADING]);

// Uniform circular motion, counter-clockwise: centre (5, −3), radius 20 m, 0.5 rad/s (10 m/s), at angle 0.3 now.
const C = { x: 5, y: -3 };
const R = 20;
const OMEGA = 0.5;
const A0 = 0.3;
const onCircle = (t: number): [number, number, number] => {
  const a = A0 + OMEGA * t;
  return [C.x + R * Math.cos(a), C.y + R * Math.sin(a), a + Math.PI / 2];
};
const circle = history(10, onCircle);

describe('estimateMotionState', () => {
  it('recovers speed and heading of straight motion, with no turn', () => {
    const s = estimateMotionState(straight);
    close(s.speed, 12, 1e-9, 'speed');
    close(s.heading, HEADING, 1e-12, 'heading');
    close(s.yawRate, 0, 1e-9, 'yawRate');
    assert.deepEqual([s.x, s.y], [straight[27], straight[28]]);
  });

  it('recovers speed, tangent heading and turn rate of uniform circular motion exactly (chords corrected to arcs)', () => {
    const s = estimateMotionState(circle);
    close(s.speed, R * OMEGA, 1e-9, 'speed');
    close(s.yawRate, OMEGA, 1e-9, 'yawRate');
    close(s.heading, A0 + Math.PI / 2, 1e-9, 'heading');
  });

  it('gives a standing object speed 0 and its box yaw, and ignores a few centimetres of jitter', () => {
    const jitter = history(10, (tau) => [3 + 0.02 * Math.sin(40 * tau), -7 + 0.02 * Math.cos(33 * tau), 2.5]);
    const s = estimateMotionState(jitter);
    assert.equal(s.speed, 0);
    assert.equal(s.yawRate, 0);
    close(s.heading, 2.5, 1e-12);
  });

  it('uses the history it has: one step stands, two steps give a velocity but no turn', () => {
    assert.equal(estimateMotionState(circle.subarray(27)).speed, 0);
    const two = estimateMotionState(straight.subarray(24), { windowSteps: 1 });
    close(two.speed, 12, 1e-9);
    assert.equal(two.yawRate, 0);
  });

  it('clips an implausible turn rate', () => {
    const zigzag = Float64Array.of(0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0);
    const s = estimateMotionState(zigzag, { windowSteps: 1, maxYawRate: 1.5 });
    assert.equal(Math.abs(s.yawRate), 1.5);
  });

  it('refuses a history that is not (x, y, yaw) triples', () => {
    assert.throws(() => estimateMotionState(new Float64Array(7)), /multiple of 3/);
  });
});

describe('constant velocity and CTRV', () => {
  it('straight motion: both continue the line at 12 m/s, 30 waypoints at 0.1 s … 3 s', () => {
    const state = estimateMotionState(straight);
    for (const w of [predictConstantVelocity(state), predictCtrv(state)]) {
      assert.equal(w.length, 30 * WAYPOINT_STRIDE);
      for (const i of [0, 14, 29]) {
        const t = (i + 1) / 10;
        close(w[i * 3], 100 + 12 * t * Math.cos(HEADING), 1e-9, `x at ${t}`);
        close(w[i * 3 + 1], 50 + 12 * t * Math.sin(HEADING), 1e-9, `y at ${t}`);
        close(w[i * 3 + 2], HEADING, 1e-9, `yaw at ${t}`);
      }
    }
  });

  it('circular motion: CTRV stays on the circle at the true angle; CV leaves along the tangent', () => {
    const state = estimateMotionState(circle);
    const ctrv = predictCtrv(state);
    const cv = predictConstantVelocity(state);
    const [x0, y0] = onCircle(0);
    for (let i = 0; i < 30; i++) {
      const t = (i + 1) / 10;
      const [x, y, yaw] = onCircle(t);
      close(ctrv[i * 3], x, 1e-8, `ctrv x at ${t}`);
      close(ctrv[i * 3 + 1], y, 1e-8, `ctrv y at ${t}`);
      close(Math.cos(ctrv[i * 3 + 2]), Math.cos(yaw), 1e-9, `ctrv yaw at ${t}`);
      close(Math.sin(ctrv[i * 3 + 2]), Math.sin(yaw), 1e-9, `ctrv yaw at ${t}`);
      close(cv[i * 3], x0 - 10 * t * Math.sin(A0), 1e-8, `cv x at ${t}`);
      close(cv[i * 3 + 1], y0 + 10 * t * Math.cos(A0), 1e-8, `cv y at ${t}`);
    }
    // After 3 s the car has turned 1.5 rad: CV's endpoint is far off the circle, CTRV's is on it.
    close(Math.hypot(ctrv[87] - C.x, ctrv[88] - C.y), R, 1e-8);
    assert.ok(Math.hypot(cv[87] - C.x, cv[88] - C.y) > R + 15);
  });

  it('a clockwise turn goes the other way round', () => {
    const mirrored = circle.slice();
    for (let i = 0; i < 10; i++) {
      mirrored[i * 3 + 1] = -mirrored[i * 3 + 1];
      mirrored[i * 3 + 2] = -mirrored[i * 3 + 2];
    }
    const s = estimateMotionState(mirrored);
    close(s.yawRate, -OMEGA, 1e-9);
    const w = predictCtrv(s);
    const [x, y] = onCircle(3);
    close(w[87], x, 1e-8);
    close(w[88], -y, 1e-8);
  });

  it('horizon and rate are configurable, and an output buffer is filled in place', () => {
    const state = estimateMotionState(straight);
    const out = new Float64Array(10 * 3 + 5).fill(-1);
    const w = predictConstantVelocity(state, { horizonS: 2, rateHz: 5 }, out);
    assert.equal(w, out);
    close(w[0], 100 + 12 * 0.2 * Math.cos(HEADING));
    close(w[27], 100 + 12 * 2 * Math.cos(HEADING));
    assert.equal(out[30], -1, 'nothing written past the 10 waypoints');
    assert.throws(() => predictCtrv(state, { horizonS: 3, rateHz: 10 }, new Float64Array(10)), /must hold 30 waypoints/);
    assert.throws(() => predictCtrv(state, { horizonS: 0, rateHz: 10 }), /horizon/);
  });

  it('the predictor wrappers give one mode with probability 1 per history', async () => {
    const [cv, ctrv] = await Promise.all([new ConstantVelocityPredictor().predict([{ states: circle }]), new CtrvPredictor().predict([{ states: circle }])]);
    assert.equal(cv[0].modes, 1);
    assert.deepEqual([...cv[0].probabilities], [1]);
    const [x, y] = onCircle(3);
    close(ctrv[0].waypoints[87], x, 1e-8);
    close(ctrv[0].waypoints[88], y, 1e-8);
  });
});
