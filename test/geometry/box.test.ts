import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type Box7, bevCorners, bevIoU, boxCorners, clipConvexPolygon, countPointsInBox, iou3d, pointInBox, polygonArea,
  poseToMatrix, transformBox,
} from '../../src/geometry/index.ts';

const close = (a: number, b: number, eps = 1e-9, what = '') => assert.ok(Math.abs(a - b) <= eps, `${what} ${a} vs ${b}`);
const box = (x: number, y: number, l: number, w: number, yaw = 0, z = 0, h = 2): Box7 => ({ x, y, z, l, w, h, yaw });

test('bevCorners: counter-clockwise, starting front-left, rotated by yaw', () => {
  const c = bevCorners(box(0, 0, 4, 2));
  assert.deepEqual(Array.from(c), [2, 1, -2, 1, -2, -1, 2, -1]);
  close(polygonArea(c), 8);
  const r = bevCorners(box(10, 0, 4, 2, Math.PI / 2));
  // Front-left (+2, +1) rotated 90° → (−1, +2), then shifted by x = 10.
  close(r[0], 9); close(r[1], 2);
});

test('boxCorners: bottom then top face', () => {
  const c = boxCorners(box(0, 0, 4, 2, 0, 1, 2));
  close(c[2], 0); close(c[3 * 4 + 2], 2);
});

test('clipConvexPolygon: two unit squares overlapping by half', () => {
  const a = [0, 0, 1, 0, 1, 1, 0, 1];
  const b = [0.5, 0, 1.5, 0, 1.5, 1, 0.5, 1];
  close(Math.abs(polygonArea(clipConvexPolygon(a, b))), 0.5);
  assert.equal(clipConvexPolygon(a, [2, 2, 3, 2, 3, 3, 2, 3]).length, 0);
});

test('bevIoU: identical, shifted, disjoint, and a rotated case computed by hand', () => {
  close(bevIoU(box(0, 0, 4, 2), box(0, 0, 4, 2)), 1);
  // Shift by 2 m along length: intersection 2x2 = 4, union 8 + 8 − 4 = 12.
  close(bevIoU(box(0, 0, 4, 2), box(2, 0, 4, 2)), 4 / 12);
  close(bevIoU(box(0, 0, 4, 2), box(10, 0, 4, 2)), 0);
  // A 2x2 square and the same square turned 45°: the intersection is a regular octagon of inradius 1,
  // area 8·tan(22.5°) = 8(√2 − 1); union 4 + 4 − that.
  const oct = 8 * (Math.SQRT2 - 1);
  close(bevIoU(box(0, 0, 2, 2), box(0, 0, 2, 2, Math.PI / 4)), oct / (8 - oct), 1e-9);
  // A box and itself turned by 180° are the same footprint.
  close(bevIoU(box(3, -1, 4.5, 1.8, 0.3), box(3, -1, 4.5, 1.8, 0.3 + Math.PI)), 1, 1e-9);
});

test('iou3d: half height overlap of identical footprints is 1/3', () => {
  // Heights [0,2] and [1,3]: overlap 1, each volume 8·2 = 16, intersection 8, union 24.
  close(iou3d(box(0, 0, 4, 2, 0, 1, 2), box(0, 0, 4, 2, 0, 2, 2)), 8 / 24);
  close(iou3d(box(0, 0, 4, 2, 0, 1, 2), box(0, 0, 4, 2, 0, 5, 2)), 0);
});

test('transformBox: a box ahead of a yawed agent lands where the agent looks, heading added', () => {
  const agentToWorld = poseToMatrix({ x: 10, y: 20, z: 0, roll: 0, pitch: 0, yaw: Math.PI / 2 });
  const b = transformBox(agentToWorld, box(5, 0, 4, 2, 0.1));
  close(b.x, 10); close(b.y, 25); close(b.yaw, Math.PI / 2 + 0.1);
});

test('pointInBox and countPointsInBox respect rotation', () => {
  const b = box(0, 0, 4, 1, Math.PI / 2, 0, 2);
  assert.ok(pointInBox(b, 0, 1.9, 0));
  assert.ok(!pointInBox(b, 1.9, 0, 0));
  const pts = new Float32Array([0, 1.9, 0, 0, 1.9, 0, 0, 0, 0, 0, 1.5, 0]);
  assert.equal(countPointsInBox(b, pts), 1);
});
