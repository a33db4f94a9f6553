import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AB3DMOT_NOISE, BoxKalmanFilter, KalmanInputError, withinRange } from '../../src/tracking/index.ts';

const close = (a: number, b: number, tol = 1e-9, what = '') => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
const box0 = { x: 0, y: 0, z: 0, yaw: 0, l: 4, w: 2, h: 1.5 };

test('constant velocity: one predict and update match the numbers worked by hand from AB3DMOT settings', () => {
  const kf = new BoxKalmanFilter('cv', box0);
  // P₀: 10 on the box, 10 000 on the velocities.
  close(kf.P[0], 10);
  close(kf.P[77], 10_000);
  kf.predict(1);
  // P⁻ = F P Fᵀ + Q: x: 10 + 10 000 + 1 = 10 011; x–vx: 10 000; vx: 10 000 + 0.01; yaw: 10 + 1 = 11.
  close(kf.P[0], 10_011, 1e-9, 'Pxx');
  close(kf.P[7], 10_000, 1e-9, 'Pxvx');
  close(kf.P[77], 10_000.01, 1e-9, 'Pvxvx');
  close(kf.P[33], 11, 1e-9, 'Pyaw');
  kf.update([1, 0, 0, 0, 4, 2, 1.5]);
  // S = 10 011 + 1 (R = 1); K_x = 10 011/10 012, K_vx = 10 000/10 012, innovation 1 m.
  close(kf.x[0], 10_011 / 10_012, 1e-12, 'x');
  close(kf.x[7], 10_000 / 10_012, 1e-12, 'vx');
  close(kf.x[1], 0, 1e-12, 'y untouched');
  // Joseph form = P R / (P + R) on the measured axes; vx: 10 000.01 − 10 000²/10 012; x–vx: 10 000/10 012.
  close(kf.P[0], 10_011 / 10_012, 1e-9, 'Pxx+');
  close(kf.P[77], 10_000.01 - 1e8 / 10_012, 1e-7, 'Pvxvx+');
  close(kf.P[7], 10_000 / 10_012, 1e-9, 'Pxvx+');
  close(kf.P[33], 11 / 12, 1e-12, 'Pyaw+');
});

test('a measurement covariance replaces R: a confident detection pulls the state almost all the way', () => {
  const loose = new BoxKalmanFilter('cv', box0);
  const tight = new BoxKalmanFilter('cv', box0);
  loose.predict(1);
  tight.predict(1);
  // Position measured to σ = 0.1 m (variance 0.01) and the rest as AB3DMOT.
  loose.update([1, 0, 0, 0, 4, 2, 1.5]);
  tight.update([1, 0, 0, 0, 4, 2, 1.5], [0.01, 0.01, 0.01, 1, 1, 1, 1]);
  close(tight.x[0], 10_011 / 10_011.01, 1e-12, 'x with R = 0.01');
  assert.ok(tight.P[0] < loose.P[0] / 50, 'variance shrinks with R');
  // Full 49-value form is accepted; a zero variance is refused.
  const full = new Float64Array(49);
  for (let i = 0; i < 7; i++) full[i * 8] = 1;
  const f = new BoxKalmanFilter('cv', box0);
  f.predict(1);
  f.update([1, 0, 0, 0, 4, 2, 1.5], full);
  close(f.x[0], loose.x[0], 1e-12, 'full identity = default R');
  assert.throws(() => f.update([1, 0, 0, 0, 4, 2, 1.5], [0, 1, 1, 1, 1, 1, 1]), KalmanInputError);
});

test('a new track starts from its detection covariance (DMSTrack), velocities keep P₀', () => {
  const kf = new BoxKalmanFilter('cv', box0, AB3DMOT_NOISE, [0.04, 0.05, 0.01, 1, 1, 1, 1]);
  close(kf.P[0], 0.04);
  close(kf.P[11], 0.05);
  close(kf.P[77], 10_000);
});

test('dt scales the motion: two steps at once predict twice as far', () => {
  const kf = new BoxKalmanFilter('cv', box0);
  kf.x[7] = 1.5;
  kf.predict(2);
  close(kf.x[0], 3);
});

test('orientation correction: a detection flipped by π turns the track, not the box (AB3DMOT)', () => {
  const kf = new BoxKalmanFilter('cv', { ...box0, yaw: 0.1 });
  kf.predict(1);
  kf.update([0, 0, 0, 0.1 + Math.PI - 2 * Math.PI, 4, 2, 1.5]);
  // The measured yaw is 0.1 − π; the track is turned to 0.1 − π too, so the update sees no yaw innovation.
  close(withinRange(kf.x[3]), withinRange(0.1 - Math.PI), 1e-9, 'yaw');
  // Across the ±π seam: track at 3.1, detection at −3.1 (0.083 rad apart) must not average to ~0.
  const seam = new BoxKalmanFilter('cv', { ...box0, yaw: 3.1 });
  seam.predict(1);
  seam.update([0, 0, 0, -3.1, 4, 2, 1.5]);
  assert.ok(Math.abs(Math.abs(seam.x[3]) - Math.PI) < 0.1, `yaw ${seam.x[3]}`);
});

test('CTRV predicts along the arc; a flip of the heading negates v so the motion is unchanged', () => {
  const kf = new BoxKalmanFilter('ctrv', box0);
  // v = 1 m/step, ω = π/2 per step: after one step a quarter circle of radius 2/π: x = r, y = r.
  kf.x[7] = 1;
  kf.x[8] = Math.PI / 2;
  kf.predict(1);
  const r = 2 / Math.PI;
  close(kf.x[0], r, 1e-12, 'x');
  close(kf.x[1], r, 1e-12, 'y');
  close(kf.x[3], Math.PI / 2, 1e-12, 'yaw');
  const before = kf.velocity();
  kf.update([kf.x[0], kf.x[1], 0, kf.x[3] - Math.PI, 4, 2, 1.5]);
  const after = kf.velocity();
  assert.ok(kf.x[7] < 0, 'v negated with the heading');
  close(after.x, before.x, 0.05, 'vx');
  close(after.y, before.y, 0.05, 'vy');
});
