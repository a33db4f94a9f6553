// 7-DoF boxes and the overlap measures the evaluation protocol uses (rotated BEV IoU, 3D IoU).
import { type Mat4, transformPoint, wrapAngle, yawOf } from './transform.ts';

/** Geometric centre, full length (along heading) / width / height, heading about +z. */
export interface Box7 {
  x: number;
  y: number;
  z: number;
  l: number;
  w: number;
  h: number;
  yaw: number;
}

// Corner order, in the box's own frame: bottom face (z − h/2) then top face, each counter-clockwise seen from
// above starting at front-left: (+l/2, +w/2), (−l/2, +w/2), (−l/2, −w/2), (+l/2, −w/2).
const CORNER_SIGNS: readonly (readonly [number, number])[] = [[1, 1], [-1, 1], [-1, -1], [1, -1]];

/** The four BEV corners as x0, y0, x1, y1, …, counter-clockwise. */
export function bevCorners(box: Box7, out: Float64Array = new Float64Array(8)): Float64Array {
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  for (let i = 0; i < 4; i++) {
    const lx = (CORNER_SIGNS[i][0] * box.l) / 2;
    const ly = (CORNER_SIGNS[i][1] * box.w) / 2;
    out[2 * i] = box.x + c * lx - s * ly;
    out[2 * i + 1] = box.y + s * lx + c * ly;
  }
  return out;
}

/** The eight corners as x, y, z triples: bottom face then top face, each in bevCorners order. */
export function boxCorners(box: Box7): Float64Array {
  const bev = bevCorners(box);
  const out = new Float64Array(24);
  for (let i = 0; i < 8; i++) {
    const k = i % 4;
    out[3 * i] = bev[2 * k];
    out[3 * i + 1] = bev[2 * k + 1];
    out[3 * i + 2] = box.z + (i < 4 ? -box.h / 2 : box.h / 2);
  }
  return out;
}

/**
 * Moves a box into another frame. The heading follows the transform's rotation about z; roll and pitch of the
 * transform tilt the box, which a 7-DoF box cannot represent, so they only move its centre.
 */
export function transformBox(m: Mat4, box: Box7): Box7 {
  const [x, y, z] = transformPoint(m, box.x, box.y, box.z);
  return { x, y, z, l: box.l, w: box.w, h: box.h, yaw: wrapAngle(box.yaw + yawOf(m)) };
}

/** True when (px, py, pz) lies inside the box (faces included). */
export function pointInBox(box: Box7, px: number, py: number, pz: number): boolean {
  const dx = px - box.x, dy = py - box.y;
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  const lx = c * dx + s * dy;
  const ly = -s * dx + c * dy;
  return Math.abs(lx) <= box.l / 2 && Math.abs(ly) <= box.w / 2 && Math.abs(pz - box.z) <= box.h / 2;
}

/** Counts points (x, y, z, … records of `stride` floats) inside the box. */
export function countPointsInBox(box: Box7, points: Float32Array, stride = 4): number {
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  const hl = box.l / 2, hw = box.w / 2, hh = box.h / 2;
  const r2 = hl * hl + hw * hw;
  let n = 0;
  for (let i = 0; i + 2 < points.length; i += stride) {
    const dx = points[i] - box.x, dy = points[i + 1] - box.y;
    if (dx * dx + dy * dy > r2) continue;
    const lx = c * dx + s * dy;
    const ly = -s * dx + c * dy;
    if (Math.abs(lx) <= hl && Math.abs(ly) <= hw && Math.abs(points[i + 2] - box.z) <= hh) n++;
  }
  return n;
}

/** Shoelace area of a simple polygon given as x0, y0, x1, y1, …; positive when counter-clockwise. */
export function polygonArea(poly: ArrayLike<number>, count = poly.length / 2): number {
  let a = 0;
  for (let i = 0; i < count; i++) {
    const j = (i + 1) % count;
    a += poly[2 * i] * poly[2 * j + 1] - poly[2 * j] * poly[2 * i + 1];
  }
  return a / 2;
}

/**
 * Sutherland–Hodgman: the part of convex polygon `subject` inside convex polygon `clip`; both counter-clockwise,
 * as x, y pairs. Returns the intersection polygon (possibly empty).
 */
export function clipConvexPolygon(subject: ArrayLike<number>, clip: ArrayLike<number>): number[] {
  let output: number[] = Array.from(subject);
  const nClip = clip.length / 2;
  for (let e = 0; e < nClip && output.length > 0; e++) {
    const ax = clip[2 * e], ay = clip[2 * e + 1];
    const bx = clip[(2 * e + 2) % clip.length], by = clip[(2 * e + 3) % clip.length];
    const input = output;
    output = [];
    const n = input.length / 2;
    // Inside = left of the directed edge a→b (counter-clockwise clip polygon).
    const side = (px: number, py: number): number => (bx - ax) * (py - ay) - (by - ay) * (px - ax);
    for (let i = 0; i < n; i++) {
      const px = input[2 * i], py = input[2 * i + 1];
      const qx = input[(2 * i + 2) % input.length], qy = input[(2 * i + 3) % input.length];
      const sp = side(px, py), sq = side(qx, qy);
      if (sp >= 0) output.push(px, py);
      if ((sp >= 0) !== (sq >= 0)) {
        const t = sp / (sp - sq);
        output.push(px + t * (qx - px), py + t * (qy - py));
      }
    }
  }
  return output;
}

const cornersA = new Float64Array(8);
const cornersB = new Float64Array(8);

/** Area of the BEV (x-y) intersection of two rotated boxes. */
export function bevIntersectionArea(a: Box7, b: Box7): number {
  // Cheap reject on circumscribed circles before clipping.
  const ra = Math.hypot(a.l, a.w) / 2, rb = Math.hypot(b.l, b.w) / 2;
  const dx = a.x - b.x, dy = a.y - b.y;
  if (dx * dx + dy * dy > (ra + rb) * (ra + rb)) return 0;
  bevCorners(a, cornersA);
  bevCorners(b, cornersB);
  const poly = clipConvexPolygon(cornersA, cornersB);
  return poly.length >= 6 ? Math.abs(polygonArea(poly)) : 0;
}

/** Rotated IoU in bird's-eye view, the overlap measure OpenCOOD's AP uses. */
export function bevIoU(a: Box7, b: Box7): number {
  const inter = bevIntersectionArea(a, b);
  if (inter <= 0) return 0;
  return inter / (a.l * a.w + b.l * b.w - inter);
}

/** 3D IoU of two yaw-only boxes: BEV intersection times the overlap of their height intervals. */
export function iou3d(a: Box7, b: Box7): number {
  const zOverlap = Math.min(a.z + a.h / 2, b.z + b.h / 2) - Math.max(a.z - a.h / 2, b.z - b.h / 2);
  if (zOverlap <= 0) return 0;
  const inter = bevIntersectionArea(a, b) * zOverlap;
  if (inter <= 0) return 0;
  return inter / (a.l * a.w * a.h + b.l * b.w * b.h - inter);
}
