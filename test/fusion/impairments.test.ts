import { test } from 'node:test';
import assert from 'node:assert/strict';
import { poseToMatrix, yawOf } from '../../src/geometry/index.ts';
import { FusionInputError, applyPoseNoise, messageLost, parsePoseNoise, samplePoseNoise } from '../../src/fusion/index.ts';

test('pose noise: OpenCOOD\'s 0.2 m / 0.2° setting gives zero-mean draws with those standard deviations (seed 7)', () => {
  const n = 20000;
  let sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, syaw = 0, syy2 = 0;
  for (let i = 0; i < n; i++) {
    const { dx, dy, dyaw } = samplePoseNoise({ posM: 0.2, yawDeg: 0.2 }, 7, i, 'rsu-1');
    sx += dx; sy += dy; sxx += dx * dx; syy += dy * dy; sxy += dx * dy;
    syaw += dyaw; syy2 += dyaw * dyaw;
  }
  const sd = (s: number, ss: number) => Math.sqrt(ss / n - (s / n) ** 2);
  // Standard error of a std estimate is σ/√(2n) ≈ 0.5 % here: 3 % is far outside chance, far inside a unit slip.
  assert.ok(Math.abs(sd(sx, sxx) - 0.2) < 0.006, `x std ${sd(sx, sxx)}`);
  assert.ok(Math.abs(sd(sy, syy) - 0.2) < 0.006, `y std ${sd(sy, syy)}`);
  const yawStd = (0.2 * Math.PI) / 180; // degrees in, radians out
  assert.ok(Math.abs(sd(syaw, syy2) - yawStd) < 0.03 * yawStd, `yaw std ${sd(syaw, syy2)} rad`);
  assert.ok(Math.abs(sx / n) < 0.006 && Math.abs(sy / n) < 0.006, 'zero mean');
  assert.ok(Math.abs(sxy / n) < 0.002, 'x and y independent');
});

test('pose noise is keyed by (seed, frame, agent): repeatable, and independent of the order it is asked for', () => {
  const std = { posM: 0.4, yawDeg: 0.4 };
  const a = samplePoseNoise(std, 3, 10, '101');
  samplePoseNoise(std, 3, 11, '102'); // another draw in between changes nothing
  assert.deepEqual(samplePoseNoise(std, 3, 10, '101'), a);
  assert.notDeepEqual(samplePoseNoise(std, 4, 10, '101'), a, 'another seed');
  assert.notDeepEqual(samplePoseNoise(std, 3, 10, '102'), a, 'another agent');
  assert.notDeepEqual(samplePoseNoise(std, 3, 9, '101'), a, 'another frame');
  assert.deepEqual(samplePoseNoise({ posM: 0, yawDeg: 0 }, 3, 10, '101'), { dx: 0, dy: 0, dyaw: 0 });
});

test('applyPoseNoise adds x, y in the world and turns yaw about the world z axis, z and tilt kept', () => {
  const pose = poseToMatrix({ x: 10, y: 0, z: 1.5, roll: 0.02, pitch: -0.01, yaw: Math.PI / 2 });
  const noisy = applyPoseNoise(pose, { dx: 1, dy: 2, dyaw: Math.PI / 2 });
  assert.deepEqual([noisy[3], noisy[7], noisy[11]], [11, 2, 1.5]);
  assert.ok(Math.abs(Math.abs(yawOf(noisy)) - Math.PI) < 1e-9, `yaw ${yawOf(noisy)}`);
  // Rz(dyaw)·R leaves the z row (roll and pitch as seen from the world z axis) unchanged.
  for (const i of [8, 9, 10]) assert.ok(Math.abs(noisy[i] - pose[i]) < 1e-12);
  // Still a rotation: the columns keep unit length.
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(Math.hypot(noisy[c], noisy[4 + c], noisy[8 + c]) - 1) < 1e-12);
  assert.deepEqual(Array.from(applyPoseNoise(pose, { dx: 0, dy: 0, dyaw: 0 })), Array.from(pose));
});

test('parsePoseNoise reads POS_M,YAW_DEG and refuses anything else', () => {
  assert.deepEqual(parsePoseNoise('0.2,0.2'), { posM: 0.2, yawDeg: 0.2 });
  assert.deepEqual(parsePoseNoise(' 0.6 , 0 '), { posM: 0.6, yawDeg: 0 });
  for (const bad of ['0.2', '0.2,', '0.2,0.2,0.2', '-0.1,0.2', 'a,b', ',']) assert.throws(() => parsePoseNoise(bad), FusionInputError, bad);
});

test('message loss: probability 0 never loses, 1 always does, 0.3 about 30 % of the time, repeatably', () => {
  let lost0 = 0, lost1 = 0, lost3 = 0;
  const n = 5000;
  for (let i = 0; i < n; i++) {
    if (messageLost(0, 1, i, '101')) lost0++;
    if (messageLost(1, 1, i, '101')) lost1++;
    if (messageLost(0.3, 1, i, '101')) lost3++;
  }
  assert.equal(lost0, 0);
  assert.equal(lost1, n);
  assert.ok(Math.abs(lost3 / n - 0.3) < 0.02, `rate ${lost3 / n}`); // σ ≈ 0.0065
  assert.equal(messageLost(0.5, 9, 4, 'x'), messageLost(0.5, 9, 4, 'x'));
  assert.throws(() => messageLost(1.5, 1, 0, 'x'), FusionInputError);
  assert.throws(() => messageLost(-0.1, 1, 0, 'x'), FusionInputError);
});
