import { test } from 'node:test';
import assert from 'node:assert/strict';
import { affinity, bevGiou, convexHullArea, giou3d } from '../../src/tracking/index.ts';

const box = (x: number, y: number, l: number, w: number, yaw = 0, z = 0, h = 1) => ({ x, y, z, l, w, h, yaw });

test('convex hull area ignores interior and collinear points', () => {
  // Unit square with its centre and an edge midpoint.
  assert.equal(convexHullArea([0, 0, 1, 0, 1, 1, 0, 1, 0.5, 0.5, 0.5, 0], 6), 1);
});

test('BEV GIoU, worked by hand', () => {
  // Two 2×2 squares 3 m apart: I = 0, U = 8, hull = 5×2 = 10 → GIoU = 0 − (10 − 8)/10 = −0.2.
  assert.ok(Math.abs(bevGiou(box(0, 0, 2, 2), box(3, 0, 2, 2)) + 0.2) < 1e-12);
  // Overlapping by 1 m: I = 2, U = 6, hull = 3×2 = 6 = U → GIoU = IoU = 1/3 (no penalty without empty hull area).
  assert.ok(Math.abs(bevGiou(box(0, 0, 2, 2), box(1, 0, 2, 2)) - 1 / 3) < 1e-12);
  // A 2×2 square and the same square turned 45°: the intersection is the regular octagon of inradius 1,
  // I = 8(√2 − 1); U = 8 − I; the eight corners lie on the circle of radius √2 at 45° steps, so the hull is the
  // regular octagon of circumradius √2, area 2√2·R² = 4√2.
  const inter = 8 * (Math.SQRT2 - 1), union = 8 - inter, hull = 4 * Math.SQRT2;
  const g = bevGiou(box(0, 0, 2, 2), box(0, 0, 2, 2, Math.PI / 4));
  assert.ok(Math.abs(g - (inter / union - (hull - union) / hull)) < 1e-9, `giou ${g}`);
  // Identical boxes: 1.
  assert.ok(Math.abs(bevGiou(box(5, 5, 4, 2, 1), box(5, 5, 4, 2, 1)) - 1) < 1e-12);
});

test('giou_3d uses the BEV hull times the union height (AB3DMOT dist_metrics.iou)', () => {
  // Same footprint 2×2, heights 1, z offset 0.5: h∩ = 0.5, h∪ = 1.5; I = 2, U = 4 + 4 − 2 = 6, C = 4 × 1.5 = 6.
  assert.ok(Math.abs(giou3d(box(0, 0, 2, 2, 0, 0), box(0, 0, 2, 2, 0, 0.5)) - 2 / 6) < 1e-12);
  // Disjoint in z by 1 m: I = 0, U = 8, C = 4 × 3 = 12 → −(12 − 8)/12.
  assert.ok(Math.abs(giou3d(box(0, 0, 2, 2, 0, 0), box(0, 0, 2, 2, 0, 2)) + 4 / 12) < 1e-12);
});

test('distance affinities are negated centre distances', () => {
  assert.equal(affinity('dist_bev', box(0, 0, 1, 1, 0, 0), box(3, 4, 1, 1, 0, 9)), -5);
  assert.equal(affinity('dist_3d', box(0, 0, 1, 1, 0, 0), box(2, 3, 1, 1, 0, 6)), -7);
});
