// Rotated non-maximum suppression in bird's-eye view, the step OpenCOOD's post-processing runs after decoding
// (DerrickXuNu/OpenCOOD opencood/data_utils/post_processor/voxel_postprocessor.py: nms_rotated with
// postprocess.nms_thresh, 0.15 in the OPV2V PointPillars configs). Greedy in descending score: a box is kept
// unless a kept box overlaps it with rotated BEV IoU strictly above the threshold (torchvision/mmcv semantics).
// OpenCOOD suppresses across all boxes because it detects one class; here suppression happens within a class,
// so a pedestrian next to a car is never removed by the car.

import { bevIoU, type Box7 } from '../geometry/index.ts';
import type { Detection } from '../eval/index.ts';

export const DEFAULT_NMS_IOU_THRESHOLD = 0.15;

/**
 * Indices of the boxes NMS keeps, in descending score order (equal scores keep input order). `maxOutput` stops
 * after that many kept boxes.
 */
export function rotatedNms(
  boxes: readonly Box7[],
  scores: ArrayLike<number>,
  iouThreshold = DEFAULT_NMS_IOU_THRESHOLD,
  maxOutput = Infinity,
): number[] {
  const n = boxes.length;
  if (scores.length !== n) throw new RangeError(`rotatedNms: ${n} boxes but ${scores.length} scores`);
  if (!(iouThreshold >= 0 && iouThreshold <= 1)) throw new RangeError(`rotatedNms: iouThreshold ${iouThreshold} is not in [0, 1]`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);

  // Axis-aligned extents reject most pairs before the polygon clip, which dominates the cost.
  const minX = new Float64Array(n), maxX = new Float64Array(n), minY = new Float64Array(n), maxY = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const b = boxes[i];
    const c = Math.abs(Math.cos(b.yaw)), s = Math.abs(Math.sin(b.yaw));
    const ex = (c * b.l + s * b.w) / 2, ey = (s * b.l + c * b.w) / 2;
    minX[i] = b.x - ex;
    maxX[i] = b.x + ex;
    minY[i] = b.y - ey;
    maxY[i] = b.y + ey;
  }

  const suppressed = new Uint8Array(n);
  const kept: number[] = [];
  for (let oi = 0; oi < n && kept.length < maxOutput; oi++) {
    const i = order[oi];
    if (suppressed[i]) continue;
    kept.push(i);
    for (let oj = oi + 1; oj < n; oj++) {
      const j = order[oj];
      if (suppressed[j]) continue;
      if (minX[j] > maxX[i] || maxX[j] < minX[i] || minY[j] > maxY[i] || maxY[j] < minY[i]) continue;
      if (bevIoU(boxes[i], boxes[j]) > iouThreshold) suppressed[j] = 1;
    }
  }
  return kept;
}

/**
 * NMS within each class (a detection without a class counts as a vehicle, as in the evaluator). Returns the kept
 * detections sorted by descending score.
 */
export function nmsPerClass(detections: readonly Detection[], iouThreshold = DEFAULT_NMS_IOU_THRESHOLD): Detection[] {
  const byClass = new Map<string, Detection[]>();
  for (const d of detections) {
    const key = d.cls ?? 'vehicle';
    let group = byClass.get(key);
    if (!group) byClass.set(key, (group = []));
    group.push(d);
  }
  const out: Detection[] = [];
  for (const group of byClass.values()) {
    const keep = rotatedNms(group.map((d) => d.box), group.map((d) => d.score), iouThreshold);
    for (const i of keep) out.push(group[i]);
  }
  return out.sort((a, b) => b.score - a.score);
}
