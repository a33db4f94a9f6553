import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bevCorners, box7ToCarla, carlaBoxToBox7, carlaPoseToMatrix, dairTransformToMatrix, matrixToCarlaPose,
  opticalToOpv2vCameraExtrinsic, opv2vCameraExtrinsicToOptical, transformPoint,
} from '../../src/geometry/index.ts';

const close = (a: number, b: number, eps = 1e-9, what = '') => assert.ok(Math.abs(a - b) <= eps, `${what} ${a} vs ${b}`);

// OpenCOOD's x_to_world, written out as it is in CARLA (left-handed), kept independent of our code.
function carlaMatrixLeftHanded(pose: number[]): number[][] {
  const [x, y, z, roll, yaw, pitch] = pose;
  const r = (d: number) => (d * Math.PI) / 180;
  const cy = Math.cos(r(yaw)), sy = Math.sin(r(yaw)), cr = Math.cos(r(roll)), sr = Math.sin(r(roll));
  const cp = Math.cos(r(pitch)), sp = Math.sin(r(pitch));
  return [
    [cp * cy, cy * sp * sr - sy * cr, -cy * sp * cr - sy * sr, x],
    [sy * cp, sy * sp * sr + cy * cr, -sy * sp * cr + cy * sr, y],
    [sp, -cp * sr, cp * cr, z],
    [0, 0, 0, 1],
  ];
}

test('carlaPoseToMatrix equals the mirrored CARLA matrix S·M·S for arbitrary angles', () => {
  const pose = [120.5, -33.2, 1.9, 3.0, 117.0, -4.5];
  const lh = carlaMatrixLeftHanded(pose);
  const ours = carlaPoseToMatrix(pose);
  const s = [1, -1, 1, 1];
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) close(ours[r * 4 + c], s[r] * lh[r][c] * s[c], 1e-12, `[${r},${c}]`);
});

test('a point seen by a CARLA sensor maps to the same world place either way (mirror commutes)', () => {
  const pose = [10, 20, 2, 1, 30, 2];
  const lh = carlaMatrixLeftHanded(pose);
  const p = [5, 3, -1];
  const worldLh = lh.slice(0, 3).map((row) => row[0] * p[0] + row[1] * p[1] + row[2] * p[2] + row[3]);
  const worldOurs = transformPoint(carlaPoseToMatrix(pose), p[0], -p[1], p[2]);
  close(worldOurs[0], worldLh[0]); close(worldOurs[1], -worldLh[1]); close(worldOurs[2], worldLh[2]);
});

test('matrixToCarlaPose inverts carlaPoseToMatrix', () => {
  const pose = [-5, 7, 1.5, 2, -150, 3];
  const back = matrixToCarlaPose(carlaPoseToMatrix(pose));
  pose.forEach((v, i) => close(back[i], v, 1e-9, `component ${i}`));
});

test('carlaBoxToBox7: location + unrotated center, extent is half size, yaw mirrored', () => {
  const b = carlaBoxToBox7([10, 5, 0.7], [0.1, -0.2, 0.05], [2.25, 0.9, 0.75], [0, 30, 0]);
  close(b.x, 10.1); close(b.y, -4.8); close(b.z, 0.75);
  close(b.l, 4.5); close(b.w, 1.8); close(b.h, 1.5);
  close(b.yaw, (-30 * Math.PI) / 180);
  // In CARLA a car at yaw 30° (clockwise from above in a left-handed view) has its front at +x, +y_carla;
  // mirrored, the front corner must have y < centre y.
  const c = bevCorners(b);
  const front = (c[0] + c[6]) / 2, frontY = (c[1] + c[7]) / 2;
  assert.ok(front > b.x && frontY < b.y);
  const back = box7ToCarla(b);
  const again = carlaBoxToBox7(back.location, back.center, back.extent, back.angle);
  for (const k of ['x', 'y', 'z', 'l', 'w', 'h', 'yaw'] as const) close(again[k], b[k], 1e-9, k);
});

test('dairTransformToMatrix: p_out = R·p + t, accepting 3x1 and flat translations', () => {
  const rotation = [[0, -1, 0], [1, 0, 0], [0, 0, 1]];
  const m1 = dairTransformToMatrix({ rotation, translation: [[1], [2], [3]] });
  const m2 = dairTransformToMatrix({ rotation, translation: [1, 2, 3] });
  assert.deepEqual(Array.from(m1), Array.from(m2));
  const [x, y, z] = transformPoint(m1, 1, 0, 0);
  close(x, 1); close(y, 3); close(z, 3);
});

test('OPV2V camera extrinsic: a front camera looks along our +x with image-down = our −z', () => {
  // Front camera 2.5 m ahead of and 0.4 m below the LiDAR, axes aligned: the extrinsic (LiDAR → camera) is the
  // opposite translation, as in the real sample where camera0 3 m ahead has translation (−3, 0, 0.9).
  const extrinsic = [[1, 0, 0, -2.5], [0, 1, 0, 0], [0, 0, 1, 0.4], [0, 0, 0, 1]];
  const m = opv2vCameraExtrinsicToOptical(extrinsic);
  const ahead = transformPoint(m, 0, 0, 10); // 10 m along the optical axis
  close(ahead[0], 12.5); close(ahead[1], 0); close(ahead[2], -0.4);
  const right = transformPoint(m, 1, 0, 0); // image right
  close(right[1], -1); // our y is left, so right is −y
  const down = transformPoint(m, 0, 1, 0);
  close(down[2], -1.4);
  // A right-side camera (CARLA yaw +90°, i.e. looking along CARLA +y = our −y): extrinsic rotation is yaw −90°.
  const rightCam = opv2vCameraExtrinsicToOptical([[0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
  const axis = transformPoint(rightCam, 0, 0, 1);
  close(axis[0], 0); close(axis[1], -1); close(axis[2], 0);
  const back = opticalToOpv2vCameraExtrinsic(m);
  extrinsic.forEach((row, r) => row.forEach((v, c) => close(back[r][c], v, 1e-12)));
});
