// Which agents a fused detection owes to, for the result message (Detection.contributing_agents) and the viewer's
// colours. Feature fusion: the agents whose aligned map holds features they sent at the box centre. Object-list
// merging: the agents whose detections the merge absorbed into the box. Hybrid: both, through the merge.
import type { Detection } from '../eval/index.ts';
import { type Mat4, bevIoU } from '../geometry/index.ts';
import { type BevGrid, featureCellOf, featureHeight, featureWidth } from '../perception/index.ts';
import { FusionInputError } from './warp.ts';

/** One agent's aligned contribution to a fused feature map: its validity mask on the ego's feature grid. */
export interface AlignedContribution {
  agentId: string;
  /** H·W on the ego's feature grid, > 0 where the agent's warped map holds features it sent; null: every cell (the ego's own map). */
  mask: Float32Array | null;
}

/**
 * Per detection (boxes in the ego frame, on the ego's grid), the agents whose aligned feature map covers its centre
 * cell, sorted. A centre outside the grid is covered by no one.
 */
export function featureContributors(detections: readonly Detection[], aligned: readonly AlignedContribution[], grid: BevGrid): string[][] {
  const W = featureWidth(grid), H = featureHeight(grid);
  for (const a of aligned) {
    if (a.mask && a.mask.length !== W * H) throw new FusionInputError(`mask of ${a.agentId}`, a.mask.length, `must be H × W = ${H * W}`);
  }
  return detections.map((d) => {
    const cell = featureCellOf(grid, d.box.x, d.box.y);
    if (cell < 0) return [];
    return aligned.filter((a) => a.mask === null || a.mask[cell] > 0).map((a) => a.agentId).sort();
  });
}

/** A detection that went into a merge, with the agents it already owes to. */
export interface AttributedDetection {
  detection: Detection;
  agents: readonly string[];
}

/**
 * Per merged detection, the agents of every input the merge absorbed into it (its own included), sorted.
 * 'nms' (fuseLate, mergeHybrid): `merged` holds the kept inputs themselves; an input that was not kept belongs to
 * the first kept box, in descending score, of its class that overlaps it by more than the threshold, which is the
 * box that suppressed it in greedy NMS. 'wbf': merged boxes are new; an input belongs to the merged box of its class
 * it overlaps most, above the threshold (the cluster it joined, up to the cluster box's drift as members join).
 */
export function mergedContributors(
  merged: readonly Detection[],
  inputs: readonly AttributedDetection[],
  iouThreshold: number,
  merge: 'nms' | 'wbf' = 'nms',
): string[][] {
  const sets = merged.map(() => new Set<string>());
  const index = new Map<Detection, number>();
  merged.forEach((d, k) => index.set(d, k));
  // Descending score: the order greedy NMS visits kept boxes in.
  const order = merged.map((_, k) => k).sort((a, b) => merged[b].score - merged[a].score || a - b);
  for (const input of inputs) {
    let owner = merge === 'nms' ? index.get(input.detection) : undefined;
    if (owner === undefined) {
      const cls = input.detection.cls ?? 'vehicle';
      let best = iouThreshold;
      for (const k of order) {
        const m = merged[k];
        if ((m.cls ?? 'vehicle') !== cls) continue;
        if (!roughlyOverlap(m, input.detection)) continue;
        const iou = bevIoU(m.box, input.detection.box);
        if (iou <= best) continue;
        owner = k;
        if (merge === 'nms') break;
        best = iou;
      }
    }
    if (owner !== undefined) for (const a of input.agents) sets[owner].add(a);
  }
  return sets.map((s) => [...s].sort());
}

/**
 * Early fusion has no per-agent map to ask: per detection, the agents whose own grid (their sensor's range, placed
 * by `toEgo`, agent → ego) contains its centre, sorted.
 */
export function rangeContributors(detections: readonly Detection[], agents: readonly { agentId: string; toEgo: Mat4 }[], grid: BevGrid): string[][] {
  return detections.map((d) => agents.filter(({ toEgo: m }) => {
    // Rigid inverse applied to the centre: R^T (p − t).
    const dx = d.box.x - m[3], dy = d.box.y - m[7], dz = d.box.z - m[11];
    const x = m[0] * dx + m[4] * dy + m[8] * dz;
    const y = m[1] * dx + m[5] * dy + m[9] * dz;
    return x >= grid.xMin && x < grid.xMax && y >= grid.yMin && y < grid.yMax;
  }).map((a) => a.agentId).sort());
}

/** Whether the boxes' circumscribed circles meet: skips the polygon clip for far-apart pairs. */
function roughlyOverlap(a: Detection, b: Detection): boolean {
  const ra = Math.hypot(a.box.l, a.box.w) / 2, rb = Math.hypot(b.box.l, b.box.w) / 2;
  return Math.hypot(a.box.x - b.box.x, a.box.y - b.box.y) <= ra + rb;
}
