// The ground truth a cooperative detector is scored against, built as OpenCOOD builds it at test time:
//   DerrickXuNu/OpenCOOD, opencood/data_utils/datasets/intermediate_fusion_dataset.py (__getitem__): every CAV whose
//     LiDAR lies within COM_RANGE of the ego's (2D distance of the lidar_pose x, y; skipped when `distance > 70`)
//     contributes its `vehicles`, projected into the ego LiDAR frame; the union is deduplicated by object id,
//     keeping the first occurrence (the ego comes first in the CAV order).
//   opencood/data_utils/post_processor/base_postprocessor.py (generate_object_center) with
//     opencood/utils/box_utils.py (project_world_objects → mask_boxes_outside_range_numpy, min_num_corners = 8):
//     an object is kept only when ALL EIGHT corners lie inside the range — x, y and z — and at test time the range
//     is GT_RANGE = [-140, -40, -3, 140, 40, 1] (opencood/data_utils/datasets/__init__.py). generate_gt_bbx then
//     re-checks all corners' x, y against GT_RANGE (get_mask_for_boxes_within_range_torch). Per CAV the filter runs
//     before deduplication, so a copy that fails the range test does not shadow a later copy that passes.
//     HEAL (yifanlu0227/HEAL, same box_utils.py) keeps the all-corners rule but can widen z by 10 m (enlarge_z),
//     which is what an EvalRange without z bounds gives.
// Ego-only ("no fusion") models are evaluated against this same cooperative ground truth in OpenCOOD — the
// maintainer, DerrickXuNu/OpenCOOD issue #31: "During training, it is its own bounding box. During testing, it is
// the aggregated bounding box." — so there is no separate ego-only ground truth here.
//
// The ego's own box. OPV2V can list the ego in OTHER CAVs' `vehicles` (in TwoCars_1, CAV 311 lists 302), and no
// call to common_utils.remove_ego_from_objects appears in OpenCOOD's dataset classes, so its GT can then hold a box
// on the ego itself — one the ego's own LiDAR never sees (mask_ego_points removes those returns). The maintainer
// acknowledges CAV/ego boxes skew AP a little (DerrickXuNu/OpenCOOD issue #141). We drop any box whose id equals
// the ego agent's id by default; `includeEgoBox: true` reproduces OpenCOOD's union literally.
import { type Box7, bevCorners, invertRigid, transformBox } from '../geometry/index.ts';
import type { AgentFrame, CooperativeFrame, GroundTruthBox, ObjectClass } from '../datasets/index.ts';

export interface EvalRange {
  xMin: number;
  xMax: number;
  yMin: number;
  yMax: number;
  /** Without z bounds only x and y are tested. */
  zMin?: number;
  zMax?: number;
}

/** OpenCOOD's GT_RANGE: x ±140 m, y ±40 m, z −3..1 m in the ego LiDAR frame (LiDAR about 1.9 m above the road). */
export const OPENCOOD_GT_RANGE: Readonly<EvalRange> = Object.freeze({ xMin: -140, xMax: 140, yMin: -40, yMax: 40, zMin: -3, zMax: 1 });

/** OpenCOOD's COM_RANGE in metres. */
export const OPENCOOD_COMM_RANGE_M = 70;

export interface CooperativeGroundTruthOptions {
  /** CAVs whose LiDAR is farther than this (2D) from the ego's contribute nothing. Default 70 m. */
  commRangeM?: number;
  /** In the ego LiDAR frame. Default OPENCOOD_GT_RANGE (with its z bounds, which assume an OPV2V-height LiDAR). */
  evalRange?: EvalRange;
  /** 'corners' (OpenCOOD): every corner inside the range; 'centre': the box centre inside. Default 'corners'. */
  rangeTest?: 'corners' | 'centre';
  /** Keep only these classes. Default: all. */
  classes?: readonly ObjectClass[];
  /** Keep a box whose id equals the ego's agent id (OpenCOOD does). Default false. */
  includeEgoBox?: boolean;
}

/** A ground-truth object in the ego LiDAR frame. */
export interface EvalGroundTruthBox {
  id: string;
  cls: ObjectClass;
  rawClass: string;
  /** 7-DoF box in the EGO LIDAR frame. */
  box: Box7;
  /** The agent whose record the box came from, or 'cooperative' for a dataset-provided cooperative label. */
  source: string;
}

/** The frame has no agent with the requested ego id. */
export class GroundTruthError extends Error {
  constructor(readonly frameId: string, readonly egoId: string, detail: string) {
    super(`frame ${frameId}: ego '${egoId}': ${detail}`);
    this.name = new.target.name;
  }
}

const corners = new Float64Array(8);

function insideRange(box: Box7, range: EvalRange, test: 'corners' | 'centre'): boolean {
  // Inclusive bounds, as OpenCOOD's `>=` / `<=`.
  if (test === 'centre') {
    if (box.x < range.xMin || box.x > range.xMax || box.y < range.yMin || box.y > range.yMax) return false;
    if (range.zMin !== undefined && box.z < range.zMin) return false;
    if (range.zMax !== undefined && box.z > range.zMax) return false;
    return true;
  }
  bevCorners(box, corners);
  for (let i = 0; i < 4; i++) {
    const x = corners[2 * i], y = corners[2 * i + 1];
    if (x < range.xMin || x > range.xMax || y < range.yMin || y > range.yMax) return false;
  }
  if (range.zMin !== undefined && box.z - box.h / 2 < range.zMin) return false;
  if (range.zMax !== undefined && box.z + box.h / 2 > range.zMax) return false;
  return true;
}

function checkRange(r: EvalRange): void {
  const bad = (a: number | undefined, b: number | undefined): boolean => a !== undefined && b !== undefined && !(a < b);
  if (!Number.isFinite(r.xMin) || !Number.isFinite(r.xMax) || !Number.isFinite(r.yMin) || !Number.isFinite(r.yMax) || bad(r.xMin, r.xMax) || bad(r.yMin, r.yMax) || bad(r.zMin, r.zMax)) {
    throw new RangeError(`evalRange must have finite min < max on each axis, got ${JSON.stringify(r)}`);
  }
}

/**
 * Cooperative ground truth of one frame in the ego LiDAR frame: the union of the boxes listed by the agents within
 * communication range of the ego (ego first), deduplicated by id, kept when inside the evaluation range. When the
 * dataset provides a cooperative label (DAIR-V2X-C label_world), that list is used instead of the union.
 */
export function cooperativeGroundTruth(frame: CooperativeFrame, egoId: string, opts: CooperativeGroundTruthOptions = {}): EvalGroundTruthBox[] {
  const commRange = opts.commRangeM ?? OPENCOOD_COMM_RANGE_M;
  const range = opts.evalRange ?? OPENCOOD_GT_RANGE;
  const rangeTest = opts.rangeTest ?? 'corners';
  const classes = opts.classes ? new Set(opts.classes) : undefined;
  if (!(commRange >= 0)) throw new RangeError(`commRangeM must be a non-negative number, got ${commRange}`);
  checkRange(range);

  const ego = frame.agents.find((a) => a.agentId === egoId);
  if (!ego) {
    throw new GroundTruthError(frame.frameId, egoId, `no such agent in the frame (agents: ${frame.agents.map((a) => a.agentId).join(', ') || 'none'})`);
  }
  const worldToEgo = invertRigid(ego.lidarToWorld);

  const sources: { source: string; boxes: readonly GroundTruthBox[] }[] = [];
  if (frame.cooperativeBoxes) {
    sources.push({ source: 'cooperative', boxes: frame.cooperativeBoxes });
  } else {
    const ex = ego.lidarToWorld[3], ey = ego.lidarToWorld[7];
    const inRange = (a: AgentFrame): boolean => Math.hypot(a.lidarToWorld[3] - ex, a.lidarToWorld[7] - ey) <= commRange;
    sources.push({ source: ego.agentId, boxes: ego.boxes });
    for (const a of frame.agents) if (a !== ego && inRange(a)) sources.push({ source: a.agentId, boxes: a.boxes });
  }

  const seen = new Set<string>();
  const out: EvalGroundTruthBox[] = [];
  for (const { source, boxes } of sources) {
    for (const g of boxes) {
      if (seen.has(g.id)) continue;
      if (!opts.includeEgoBox && g.id === egoId) continue;
      if (classes && !classes.has(g.cls)) continue;
      const box = transformBox(worldToEgo, g.box);
      if (!insideRange(box, range, rangeTest)) continue;
      seen.add(g.id);
      out.push({ id: g.id, cls: g.cls, rawClass: g.rawClass, box, source });
    }
  }
  return out;
}
