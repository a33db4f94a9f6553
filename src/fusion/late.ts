// Late fusion: every agent runs the detector on its own points and sends its boxes as an object list (the
// perceived-object container of ETSI TS 103 324's Collective Perception Message, proto/v2xfuse/v1/objects.proto);
// the receiver moves them into the ego frame and merges them. The merge is OpenCOOD's late fusion
// (DerrickXuNu/OpenCOOD, opencood/data_utils/post_processor/voxel_postprocessor.py post_process): concatenate
// every agent's boxes, already projected into the ego frame, run rotated NMS, then keep the boxes whose BEV
// corners all lie inside the evaluation range (get_mask_for_boxes_within_range_torch). NMS runs per class here,
// as the detector's own post-processing does, so a pedestrian beside a car survives.
import type { Detection } from '../eval/index.ts';
import { type Box7, type Mat4, bevCorners, transformBox } from '../geometry/index.ts';
import { type ObjectListInit, objectClassFromWire, objectClassToWire } from '../messages/index.ts';
import { DEFAULT_NMS_IOU_THRESHOLD, nmsPerClass } from '../perception/index.ts';
import { FusionInputError } from './warp.ts';

/** One PerceivedObject as encodeMessage('objects', …) takes it; decoded PerceivedObject messages fit it too. */
export type PerceivedObjectInit = NonNullable<ObjectListInit['objects']>[number];

/** The 95 % half-widths of a position (metres per axis); 0 on an axis = unavailable (the proto's convention). */
export interface PositionConfidence {
  x: number;
  y: number;
  z: number;
}

/**
 * The shipped detector's box-centre error on its validation sequences, as 95 % half-widths in the agent frame.
 * Measured, not assumed: the validation sequences of models/README.md, intersection seed 101 and urban-grid seed
 * 201, 20 frames each (`v2xfuse simulate --frames 20 --no-camera`); every agent in turn detected on its own points
 * (what it sends in late fusion); each vehicle detection whose best-overlapping ground-truth vehicle (OpenCOOD's
 * cooperative ground truth within the grid) has BEV IoU ≥ 0.5 — 633 of 936, all from the vehicles (the roadside
 * unit's points lie mostly above the grid's z range) — gave |centre − ground truth| per agent-frame axis; the
 * 95th percentiles were 0.428 m (x), 0.468 m (y), 0.166 m (z), rounded up to the centimetre here (RMS 0.21, 0.23,
 * 0.08 m). It describes that model only: use it when the manifest's modelId is `modelId`, 0 (unavailable) otherwise.
 */
export const MEASURED_POSITION_CONFIDENCE: { readonly modelId: string; readonly confidence: Readonly<PositionConfidence>; readonly matchedDetections: number } = {
  modelId: 'pp-v2xfuse-mixed-s1-20261121-3e7c042c',
  confidence: { x: 0.43, y: 0.47, z: 0.17 },
  matchedDetections: 633,
};

/** What a sender states as its objects' position confidence: the measured one for the model it was measured on,
 * else 0 = unavailable (ETSI's convention), never a number carried over from another model. */
export function positionConfidenceFor(modelId: string): PositionConfidence {
  return modelId === MEASURED_POSITION_CONFIDENCE.modelId ? { ...MEASURED_POSITION_CONFIDENCE.confidence } : { x: 0, y: 0, z: 0 };
}

export interface DetectionsToObjectsOptions {
  /** 95 % half-width of the box centre per axis; default 0 on every axis (unavailable). */
  positionConfidence?: PositionConfidence;
  /**
   * Object ids, one per detection. Default: the detection's index in the list. A single-frame detector has no
   * tracks, so index ids are not stable across messages; a tracker upstream passes its track ids here.
   */
  objectIds?: ArrayLike<number>;
}

/**
 * The sender's detections (boxes in its own agent frame) as PerceivedObjects: centre with its confidence,
 * dimensions (length, width, height), yaw, class, and the score as existence confidence. The detector's score is
 * a per-class sigmoid, the probability of "an object of this class here", so it is the class confidence as well.
 * Velocity and yaw rate are left out (absent = not estimated): the detector sees one frame.
 */
export function detectionsToObjects(detections: readonly Detection[], opts: DetectionsToObjectsOptions = {}): PerceivedObjectInit[] {
  const conf = opts.positionConfidence ?? { x: 0, y: 0, z: 0 };
  if (![conf.x, conf.y, conf.z].every((c) => Number.isFinite(c) && c >= 0)) {
    throw new FusionInputError('positionConfidence', JSON.stringify(conf), 'must be finite half-widths ≥ 0 (0 = unavailable)');
  }
  const ids = opts.objectIds;
  if (ids && ids.length !== detections.length) {
    throw new FusionInputError('objectIds.length', ids.length, `must equal the number of detections (${detections.length})`);
  }
  return detections.map((d, i) => ({
    objectId: ids ? ids[i] : i,
    measurementDeltaNs: 0,
    position: { x: d.box.x, y: d.box.y, z: d.box.z, xConfidence: conf.x, yConfidence: conf.y, zConfidence: conf.z },
    dimensions: { x: d.box.l, y: d.box.w, z: d.box.h },
    yaw: d.box.yaw,
    objectClass: objectClassToWire(d.cls ?? 'vehicle'),
    classConfidence: d.score,
    existenceConfidence: d.score,
  }));
}

const finite = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * A sender's object list as detections in the ego frame: the centre moves through `senderToEgo` (all three
 * axes, so an RSU's objects drop from its pole height to the ego's), the yaw turns by the transform's rotation
 * about z. Objects with a missing or non-finite position, dimension, yaw or existence confidence, or a size
 * ≤ 0, are skipped: one bad object must not poison the merge. An unknown class becomes 'other' (never a vehicle).
 */
export function objectsToDetections(objects: readonly PerceivedObjectInit[], senderToEgo: Mat4): Detection[] {
  if (senderToEgo.length !== 16 || !senderToEgo.every(Number.isFinite)) {
    throw new FusionInputError('senderToEgo', `[${Array.from(senderToEgo).join(', ')}]`, 'must be 16 finite numbers (a 4x4 row-major matrix)');
  }
  const out: Detection[] = [];
  for (const o of objects) {
    const p = o.position, s = o.dimensions;
    if (!p || !s) continue;
    if (!(finite(p.x) && finite(p.y) && finite(p.z) && finite(o.yaw) && finite(o.existenceConfidence))) continue;
    if (!(finite(s.x) && finite(s.y) && finite(s.z) && s.x > 0 && s.y > 0 && s.z > 0)) continue;
    const box: Box7 = { x: p.x, y: p.y, z: p.z, l: s.x, w: s.y, h: s.z, yaw: o.yaw };
    out.push({ box: transformBox(senderToEgo, box), score: o.existenceConfidence, cls: objectClassFromWire(o.objectClass) ?? 'other' });
  }
  return out;
}

/** The x, y extent detections must lie inside (OpenCOOD's GT range; here the model's BEV grid). */
export interface BevRange {
  xMin: number;
  xMax: number;
  yMin: number;
  yMax: number;
}

export interface FuseLateOptions {
  /** Rotated BEV IoU above which a lower-scored box of the same class is suppressed; default 0.15 (OpenCOOD). */
  iouThreshold?: number;
  /** When given, boxes with a BEV corner outside it are dropped after NMS (OpenCOOD's range mask). */
  range?: BevRange;
}

/**
 * OpenCOOD's late fusion: all agents' detections (already in the ego frame) concatenated, then rotated NMS per
 * class, highest score first, and optionally the range mask. Returns the kept detections by descending score.
 */
export function fuseLate(ego: readonly Detection[], others: readonly (readonly Detection[])[], opts: FuseLateOptions = {}): Detection[] {
  const all: Detection[] = [...ego];
  for (const list of others) all.push(...list);
  const kept = nmsPerClass(all, opts.iouThreshold ?? DEFAULT_NMS_IOU_THRESHOLD);
  const range = opts.range;
  if (!range) return kept;
  const corners = new Float64Array(8);
  return kept.filter((d) => {
    bevCorners(d.box, corners);
    for (let i = 0; i < 8; i += 2) {
      if (!(corners[i] >= range.xMin && corners[i] <= range.xMax && corners[i + 1] >= range.yMin && corners[i + 1] <= range.yMax)) return false;
    }
    return true;
  });
}
