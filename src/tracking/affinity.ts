// Affinities between a detection and a predicted track box, as AB3DMOT computes them
// (xinshuoweng/AB3DMOT, AB3DMOT_libs/dist_metrics.py `iou` and `dist3d`):
//   iou_2d  = I / U on the bird's-eye-view footprints;
//   giou_2d = I / U − (C − U) / C, C the area of the convex hull of both footprints' corners;
//   iou_3d  = I·h∩ / (Va + Vb − I·h∩), h∩ = max(0, min(tops) − max(bottoms));
//   giou_3d = iou_3d − (C·h∪ − U₃) / (C·h∪), h∪ = max(tops) − min(bottoms);
//   dist_3d = −‖centre_a − centre_b‖ (AB3DMOT negates distances so that larger is better everywhere).
// A pair is associated only when its affinity reaches the class's threshold (matching.py data_association:
// `aff_matrix[m] < threshold` → unmatched).
import { type Box7, bevCorners, bevIntersectionArea } from '../geometry/index.ts';

export type AffinityMetric = 'iou_bev' | 'giou_bev' | 'iou_3d' | 'giou_3d' | 'dist_bev' | 'dist_3d';

export const AFFINITY_METRICS: readonly AffinityMetric[] = ['iou_bev', 'giou_bev', 'iou_3d', 'giou_3d', 'dist_bev', 'dist_3d'];

const hullIn = new Float64Array(16);
const hullIdx = new Int32Array(16);
const hullOut = new Int32Array(17);
const ca = new Float64Array(8);
const cb = new Float64Array(8);
const bothCorners = new Float64Array(16);

/**
 * Area of the convex hull of n points (x, y pairs in `pts`), Andrew's monotone chain. Points are sorted in place
 * through an index buffer; n ≤ 8 here (two boxes' footprints).
 */
export function convexHullArea(pts: ArrayLike<number>, n: number = pts.length / 2): number {
  if (n > 8) throw new RangeError(`convexHullArea handles at most 8 points, got ${n}`);
  for (let i = 0; i < n; i++) {
    hullIn[2 * i] = pts[2 * i];
    hullIn[2 * i + 1] = pts[2 * i + 1];
    hullIdx[i] = i;
  }
  // Insertion sort by (x, y): eight elements.
  for (let i = 1; i < n; i++) {
    const k = hullIdx[i];
    let j = i - 1;
    while (j >= 0 && (hullIn[2 * hullIdx[j]] > hullIn[2 * k] || (hullIn[2 * hullIdx[j]] === hullIn[2 * k] && hullIn[2 * hullIdx[j] + 1] > hullIn[2 * k + 1]))) {
      hullIdx[j + 1] = hullIdx[j];
      j--;
    }
    hullIdx[j + 1] = k;
  }
  const cross = (o: number, a: number, b: number): number =>
    (hullIn[2 * a] - hullIn[2 * o]) * (hullIn[2 * b + 1] - hullIn[2 * o + 1]) - (hullIn[2 * a + 1] - hullIn[2 * o + 1]) * (hullIn[2 * b] - hullIn[2 * o]);
  let m = 0;
  for (let i = 0; i < n; i++) {
    while (m >= 2 && cross(hullOut[m - 2], hullOut[m - 1], hullIdx[i]) <= 0) m--;
    hullOut[m++] = hullIdx[i];
  }
  for (let i = n - 2, lower = m + 1; i >= 0; i--) {
    while (m >= lower && cross(hullOut[m - 2], hullOut[m - 1], hullIdx[i]) <= 0) m--;
    hullOut[m++] = hullIdx[i];
  }
  // The last point repeats the first.
  let area = 0;
  for (let i = 0; i < m - 1; i++) {
    const p = hullOut[i], q = hullOut[i + 1];
    area += hullIn[2 * p] * hullIn[2 * q + 1] - hullIn[2 * q] * hullIn[2 * p + 1];
  }
  return Math.abs(area) / 2;
}

/** Area of the convex hull of the two boxes' BEV footprints. */
export function bevHullArea(a: Box7, b: Box7): number {
  bevCorners(a, ca);
  bevCorners(b, cb);
  bothCorners.set(ca, 0);
  bothCorners.set(cb, 8);
  return convexHullArea(bothCorners, 8);
}

/** Generalised IoU of the BEV footprints (Rezatofighi et al. 2019), in −1..1. */
export function bevGiou(a: Box7, b: Box7): number {
  const inter = bevIntersectionArea(a, b);
  const union = a.l * a.w + b.l * b.w - inter;
  const hull = bevHullArea(a, b);
  return inter / union - (hull - union) / hull;
}

/** AB3DMOT's giou_3d: BEV hull × union height as the enclosing volume. */
export function giou3d(a: Box7, b: Box7): number {
  const inter2 = bevIntersectionArea(a, b);
  const hInter = Math.max(0, Math.min(a.z + a.h / 2, b.z + b.h / 2) - Math.max(a.z - a.h / 2, b.z - b.h / 2));
  const hUnion = Math.max(a.z + a.h / 2, b.z + b.h / 2) - Math.min(a.z - a.h / 2, b.z - b.h / 2);
  const inter = inter2 * hInter;
  const union = a.l * a.w * a.h + b.l * b.w * b.h - inter;
  const hull = bevHullArea(a, b) * hUnion;
  return inter / union - (hull - union) / hull;
}

function iou3dOf(a: Box7, b: Box7): number {
  const hInter = Math.max(0, Math.min(a.z + a.h / 2, b.z + b.h / 2) - Math.max(a.z - a.h / 2, b.z - b.h / 2));
  if (hInter <= 0) return 0;
  const inter = bevIntersectionArea(a, b) * hInter;
  return inter / (a.l * a.w * a.h + b.l * b.w * b.h - inter);
}

function iouBev(a: Box7, b: Box7): number {
  const inter = bevIntersectionArea(a, b);
  return inter <= 0 ? 0 : inter / (a.l * a.w + b.l * b.w - inter);
}

/** The affinity of a pair under `metric`: larger is better; distances are negated. */
export function affinity(metric: AffinityMetric, a: Box7, b: Box7): number {
  switch (metric) {
    case 'iou_bev':
      return iouBev(a, b);
    case 'giou_bev':
      return bevGiou(a, b);
    case 'iou_3d':
      return iou3dOf(a, b);
    case 'giou_3d':
      return giou3d(a, b);
    case 'dist_bev':
      return -Math.hypot(a.x - b.x, a.y - b.y);
    case 'dist_3d':
      return -Math.hypot(a.x - b.x, a.y - b.y, a.z - b.z);
  }
}
