// Weighted box fusion (Solovyev, Wang and Gabruseva, "Weighted boxes fusion", Image and Vision Computing 2021),
// in BEV for late fusion: instead of keeping the best of overlapping boxes (NMS) and discarding the rest, average
// them. Boxes of all lists, highest score first, join the first cluster of their class whose fused box they
// overlap by BEV IoU above the threshold, else open a cluster; a cluster's box is the score-weighted mean of its
// members' centres and sizes, its yaw the score-weighted circular mean; its score the members' mean score times
// min(T, N) / N (T members, N lists: the paper's rescaling, so a box every agent reports outranks one seen once).
// A box and its 180°-turned twin are the same box, so yaws are first brought within 90° of the cluster's first
// (best) member before averaging: the mean of 0 and π must not be a sideways box.
import type { Detection } from '../eval/index.ts';
import { type Box7, bevCorners, bevIoU, wrapAngle } from '../geometry/index.ts';
import { DEFAULT_NMS_IOU_THRESHOLD } from '../perception/index.ts';
import type { BevRange } from './late.ts';
import { FusionInputError } from './warp.ts';

export interface WeightedBoxFusionOptions {
  /** BEV IoU above which a box joins a cluster; default 0.15, the NMS threshold late fusion uses. */
  iouThreshold?: number;
  /**
   * Score of a fused box: 'avg' (default) the paper's mean × min(T, N)/N; 'max' the best member's score, which
   * leaves boxes seen by one agent ranked as that agent ranked them.
   */
  scoreMode?: 'avg' | 'max';
  /** When given, fused boxes with a BEV corner outside it are dropped (OpenCOOD's range mask, as fuseLate). */
  range?: BevRange;
}

interface Cluster {
  cls: string;
  members: Detection[];
  box: Box7;
  refYaw: number;
}

// Score-weighted mean of the members; yaws folded to within π/2 of the reference first.
function fuse(members: readonly Detection[], refYaw: number): Box7 {
  let w = 0, x = 0, y = 0, z = 0, l = 0, wd = 0, h = 0, s = 0, c = 0;
  for (const m of members) {
    const k = m.score;
    let yaw = m.box.yaw;
    if (Math.abs(wrapAngle(yaw - refYaw)) > Math.PI / 2) yaw += Math.PI;
    w += k;
    x += k * m.box.x;
    y += k * m.box.y;
    z += k * m.box.z;
    l += k * m.box.l;
    wd += k * m.box.w;
    h += k * m.box.h;
    s += k * Math.sin(yaw);
    c += k * Math.cos(yaw);
  }
  if (!(w > 0)) return { ...members[0].box };
  return { x: x / w, y: y / w, z: z / w, l: l / w, w: wd / w, h: h / w, yaw: wrapAngle(Math.atan2(s, c)) };
}

/** Drops detections with a BEV corner outside `range` (OpenCOOD's get_mask_for_boxes_within_range_torch). */
function insideRange(detections: Detection[], range: BevRange | undefined): Detection[] {
  if (!range) return detections;
  const corners = new Float64Array(8);
  return detections.filter((d) => {
    bevCorners(d.box, corners);
    for (let i = 0; i < 8; i += 2) {
      if (!(corners[i] >= range.xMin && corners[i] <= range.xMax && corners[i + 1] >= range.yMin && corners[i + 1] <= range.yMax)) return false;
    }
    return true;
  });
}

/**
 * Weighted box fusion of several detection lists (one per agent, all in the ego frame). Returns the fused
 * detections by descending score, one per cluster, class kept.
 */
export function weightedBoxFusion(lists: readonly (readonly Detection[])[], opts: WeightedBoxFusionOptions = {}): Detection[] {
  const thr = opts.iouThreshold ?? DEFAULT_NMS_IOU_THRESHOLD;
  if (!(thr >= 0 && thr < 1)) throw new FusionInputError('iouThreshold', thr, 'must lie in [0, 1)');
  const N = Math.max(1, lists.length);
  const all: Detection[] = [];
  for (const list of lists) for (const d of list) if (Number.isFinite(d.score) && d.score > 0) all.push(d);
  all.sort((a, b) => b.score - a.score);
  const clusters: Cluster[] = [];
  for (const d of all) {
    const cls = d.cls ?? 'vehicle';
    let best: Cluster | undefined;
    let bestIoU = thr;
    for (const c of clusters) {
      if (c.cls !== cls) continue;
      const iou = bevIoU(c.box, d.box);
      if (iou > bestIoU) {
        bestIoU = iou;
        best = c;
      }
    }
    if (!best) {
      clusters.push({ cls, members: [d], box: { ...d.box }, refYaw: d.box.yaw });
      continue;
    }
    best.members.push(d);
    best.box = fuse(best.members, best.refYaw);
  }
  const fused = clusters.map((c): Detection => {
    const T = c.members.length;
    const mean = c.members.reduce((a, m) => a + m.score, 0) / T;
    const score = opts.scoreMode === 'max' ? c.members[0].score : (mean * Math.min(T, N)) / N;
    return { box: c.box, score, cls: c.members[0].cls };
  });
  fused.sort((a, b) => b.score - a.score);
  return insideRange(fused, opts.range);
}
