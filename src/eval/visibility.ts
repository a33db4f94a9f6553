// Which ground-truth boxes the evaluated agents could have seen at all. OpenCOOD scores every detector, the
// ego-only one included, against the union of all agents' labels within 70 m, hidden objects and all; on a
// scenario built around occlusion (the simulator's intersection: buildings on every corner) that caps what an
// ego-only detector can reach far below 1. Counting each box's LiDAR returns states that cap, and marking the
// boxes no return hits as VOC "difficult" (ignored) gives the visible-objects score that KITTI-style and
// DAIR-V2X-style labels, which only list what a sensor saw, imply. It is a second number beside OpenCOOD's, not
// a replacement.
import { type Mat4, countPointsInBox, invertRigid, multiply, transformBox } from '../geometry/index.ts';
import type { CooperativeFrame } from '../datasets/index.ts';
import { OPENCOOD_COMM_RANGE_M, type EvalGroundTruthBox } from './ground-truth.ts';

/**
 * 'none': OpenCOOD's protocol, every box scored. 'ego': boxes without a return of the ego's own LiDAR are
 * ignored (the ego-only ceiling). 'any': boxes without a return of any agent within communication range are
 * ignored (what a cooperative system could have seen).
 */
export type GroundTruthVisibility = 'none' | 'ego' | 'any';

export const GROUND_TRUTH_VISIBILITIES: readonly GroundTruthVisibility[] = ['none', 'ego', 'any'];

export interface VisibilityOptions {
  /** A box needs at least this many returns to count as seen. Default 1. */
  minPoints?: number;
  /** For 'any': agents farther than this from the ego (2D, LiDAR origins) do not count. Default 70 m. */
  commRangeM?: number;
}

/**
 * Returns `groundTruth` with `ignored` set on the boxes (in the ego LiDAR frame) that no LiDAR return of the
 * agents `visibility` names falls into. Loads those agents' point clouds. 'none' returns the boxes unchanged.
 */
export async function markHiddenGroundTruth(
  frame: CooperativeFrame,
  egoId: string,
  groundTruth: readonly EvalGroundTruthBox[],
  visibility: GroundTruthVisibility,
  opts: VisibilityOptions = {},
): Promise<(EvalGroundTruthBox & { ignored: boolean })[]> {
  const minPoints = opts.minPoints ?? 1;
  if (visibility === 'none') return groundTruth.map((g) => ({ ...g, ignored: false }));
  const ego = frame.agents.find((a) => a.agentId === egoId);
  if (!ego) throw new RangeError(`frame ${frame.frameId}: no agent '${egoId}'`);
  const commRange = opts.commRangeM ?? OPENCOOD_COMM_RANGE_M;
  const viewers = visibility === 'ego'
    ? [ego]
    : frame.agents.filter((a) => Math.hypot(a.lidarToWorld[3] - ego.lidarToWorld[3], a.lidarToWorld[7] - ego.lidarToWorld[7]) <= commRange);

  const seen = new Uint8Array(groundTruth.length);
  const egoToWorld = ego.lidarToWorld;
  for (const viewer of viewers) {
    // Boxes go into the viewer's LiDAR frame rather than every point into the ego's: a few boxes, many points.
    const egoToViewer: Mat4 | undefined = viewer === ego ? undefined : multiply(invertRigid(viewer.lidarToWorld), egoToWorld);
    const points = await viewer.loadPoints();
    for (let j = 0; j < groundTruth.length; j++) {
      if (seen[j]) continue;
      const box = egoToViewer ? transformBox(egoToViewer, groundTruth[j].box) : groundTruth[j].box;
      if (countPointsInBox(box, points) >= minPoints) seen[j] = 1;
    }
  }
  return groundTruth.map((g, j) => ({ ...g, ignored: seen[j] === 0 }));
}
