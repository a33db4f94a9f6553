import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  identity, invertRigid, matrixToPose, multiply, poseToMatrix, relativeTransform, transformPoint, transformPoints,
  wrapAngle, yawOf, degToRad,
} from '../../src/geometry/index.ts';

const close = (a: number, b: number, eps = 1e-9, what = '') => assert.ok(Math.abs(a - b) <= eps, `${what} ${a} vs ${b}`);

test('yaw of 90° maps +x to +y (right-handed, counter-clockwise)', () => {
  const m = poseToMatrix({ x: 1, y: 2, z: 3, roll: 0, pitch: 0, yaw: Math.PI / 2 });
  const [x, y, z] = transformPoint(m, 1, 0, 0);
  close(x, 1); close(y, 3); close(z, 3);
});

test('pitch of +90° maps +x to −z and roll of +90° maps +y to +z (R = Rz·Ry·Rx)', () => {
  const pitch = poseToMatrix({ x: 0, y: 0, z: 0, roll: 0, pitch: Math.PI / 2, yaw: 0 });
  const p = transformPoint(pitch, 1, 0, 0);
  close(p[0], 0); close(p[2], -1);
  const roll = poseToMatrix({ x: 0, y: 0, z: 0, roll: Math.PI / 2, pitch: 0, yaw: 0 });
  const r = transformPoint(roll, 0, 1, 0);
  close(r[1], 0); close(r[2], 1);
});

test('composition order: yaw applied after roll (extrinsic x, then y, then z)', () => {
  // Roll 90° takes +y to +z; yaw 90° leaves +z alone. Reverse order would give −x... check the point (0,1,0).
  const m = poseToMatrix({ x: 0, y: 0, z: 0, roll: Math.PI / 2, pitch: 0, yaw: Math.PI / 2 });
  const p = transformPoint(m, 0, 1, 0);
  close(p[0], 0); close(p[1], 0); close(p[2], 1);
  // And +z: roll takes it to −y, yaw 90° takes −y to +x.
  const q = transformPoint(m, 0, 0, 1);
  close(q[0], 1); close(q[1], 0); close(q[2], 0);
});

test('matrixToPose inverts poseToMatrix', () => {
  const pose = { x: -3.5, y: 12.25, z: 1.9, roll: 0.05, pitch: -0.1, yaw: 2.8 };
  const back = matrixToPose(poseToMatrix(pose));
  for (const k of Object.keys(pose) as (keyof typeof pose)[]) close(back[k], pose[k], 1e-12, k);
});

test('invertRigid gives the identity when multiplied back, and relativeTransform maps a frame into another', () => {
  const a = poseToMatrix({ x: 10, y: -4, z: 2, roll: 0.1, pitch: 0.2, yaw: 1.1 });
  const prod = multiply(a, invertRigid(a));
  const id = identity();
  for (let i = 0; i < 16; i++) close(prod[i], id[i], 1e-12);
  // Agent b sits 5 m ahead of agent a on a's x axis, both with yaw 0: a's origin is at x = −5 in b.
  const aw = poseToMatrix({ x: 100, y: 50, z: 0, roll: 0, pitch: 0, yaw: 0 });
  const bw = poseToMatrix({ x: 105, y: 50, z: 0, roll: 0, pitch: 0, yaw: 0 });
  const [x, y] = transformPoint(relativeTransform(aw, bw), 0, 0, 0);
  close(x, -5); close(y, 0);
});

test('transformPoints transforms xyz, copies the rest, works in place', () => {
  const m = poseToMatrix({ x: 1, y: 0, z: 0, roll: 0, pitch: 0, yaw: Math.PI });
  const pts = new Float32Array([1, 2, 3, 0.5, 0, 0, 0, 0.25]);
  const out = transformPoints(m, pts);
  assert.deepEqual(Array.from(out).map((v) => Math.round(v * 1e6) / 1e6 + 0), [0, -2, 3, 0.5, 1, 0, 0, 0.25]);
  transformPoints(m, pts, 4, pts);
  assert.deepEqual(Array.from(pts).map((v) => Math.round(v * 1e6) / 1e6 + 0), [0, -2, 3, 0.5, 1, 0, 0, 0.25]);
});

test('wrapAngle and yawOf', () => {
  close(wrapAngle(3 * Math.PI / 2), -Math.PI / 2);
  close(wrapAngle(-3 * Math.PI / 2), Math.PI / 2);
  close(wrapAngle(degToRad(370)), degToRad(10), 1e-12);
  close(yawOf(poseToMatrix({ x: 0, y: 0, z: 0, roll: 0, pitch: 0, yaw: -2 })), -2);
});

test('invertAffine inverts a non-rigid affine exactly and refuses a singular one', async () => {
  const { invertAffine, multiply: mul } = await import('../../src/geometry/index.ts');
  // A squashed, sheared matrix like DAIR's infrastructure camera calibration.
  const m = new Float64Array([1, 0.2, 0, 3, 0, 0.8, 0.1, -2, 0.05, 0, 1.1, 0.5, 0, 0, 0, 1]);
  const p = mul(m, invertAffine(m));
  const id = identity();
  for (let i = 0; i < 16; i++) close(p[i], id[i], 1e-12);
  assert.throws(() => invertAffine(new Float64Array([1, 2, 3, 0, 2, 4, 6, 0, 0, 0, 1, 0, 0, 0, 0, 1])), /singular/);
});
