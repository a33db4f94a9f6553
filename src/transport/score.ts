// Scoring what a fusion node published over a replayed sequence, as any subscriber sees it: detections by AP
// (OpenCOOD's protocol), tracks by AB3DMOT's metrics, predicted trajectories by ADE/FDE against where the matched
// objects really went. Ground truth comes from the dataset, in the ego frame of each capture time.
import type { CooperativeFrame, CooperativeSequence, ObjectClass } from '../datasets/index.ts';
import { type ClassAwareApAccumulator, type Detection, type EvalRange, cooperativeGroundTruth } from '../eval/index.ts';
import { type Box7, bevIoU, invertRigid } from '../geometry/index.ts';
import { type FusionResult, objectClassFromWire } from '../messages/index.ts';
import { type MultiModalPrediction, PredictionMetrics, type PredictionMetricsSummary, groundTruthFuture, scoreTrackPredictions } from '../prediction/index.ts';
import { type MotFrame, type MotMetrics, evaluateMot } from '../tracking/index.ts';

export interface TrackingSummary {
  cls: ObjectClass;
  mota: number;
  motp: number;
  amota: number;
  amotp: number;
  samota: number;
  idf1: number;
  ids: number;
  frag: number;
  mt: number;
  ml: number;
  fp: number;
  fn: number;
  gt: number;
}

export interface PredictionSummary extends PredictionMetricsSummary {
  horizonS: number;
  /** Track predictions left out: no matched object, or its future not known over the whole horizon. */
  skipped: number;
}

export interface ScoredFrame {
  index: number;
  captureNs: bigint;
  result: FusionResult | undefined;
}

/** Matches a track to a ground-truth object at its frame: best BEV IoU, at least this much. */
const PREDICTION_MATCH_IOU = 0.25;

function boxOf(b: { x?: number | null; y?: number | null; z?: number | null; l?: number | null; w?: number | null; h?: number | null; yaw?: number | null } | null | undefined): Box7 {
  return { x: b?.x ?? 0, y: b?.y ?? 0, z: b?.z ?? 0, l: b?.l ?? 0, w: b?.w ?? 0, h: b?.h ?? 0, yaw: b?.yaw ?? 0 };
}

interface WireTrajectoryLike {
  probability?: number | null;
  waypoints?: { x?: number | null; y?: number | null; yaw?: number | null; timeOffsetS?: number | null }[] | null;
}

/** A track's wire trajectories as the prediction metrics take them (modes most probable first). */
function predictionOf(wireTrajectories: readonly WireTrajectoryLike[] | null | undefined): MultiModalPrediction | undefined {
  const trajectories = (wireTrajectories ?? []).map((t) => ({ probability: t.probability ?? 0, waypoints: t.waypoints ?? [] }));
  if (trajectories.length === 0) return undefined;
  const steps = trajectories[0].waypoints.length;
  if (steps === 0 || trajectories.some((t) => t.waypoints.length !== steps)) return undefined;
  const sorted = [...trajectories].sort((a, b) => (b.probability ?? 0) - (a.probability ?? 0));
  const waypoints = new Float64Array(sorted.length * steps * 3);
  sorted.forEach((t, m) =>
    t.waypoints.forEach((w, i) => {
      const o = (m * steps + i) * 3;
      waypoints[o] = w.x ?? 0;
      waypoints[o + 1] = w.y ?? 0;
      waypoints[o + 2] = w.yaw ?? 0;
    }),
  );
  return { modes: sorted.length, steps, waypoints, probabilities: Float64Array.from(sorted, (t) => t.probability ?? 0) };
}

function summarizeTracking(cls: ObjectClass, m: MotMetrics): TrackingSummary {
  return {
    cls, mota: m.mota, motp: m.motp, amota: m.amota, amotp: m.amotp, samota: m.samota, idf1: m.idf1, ids: m.ids,
    frag: m.frag, mt: m.mt, ml: m.ml, fp: m.fp, fn: m.fn, gt: m.gt,
  };
}

/**
 * Adds every frame's detections to `ap` (a frame without a result counts its ground truth as missed) and returns
 * the tracking and prediction scores (vehicles), or undefined when the results carry no tracks / predictions.
 */
export async function scoreFusionResults(
  seq: CooperativeSequence,
  egoId: string,
  frames: readonly ScoredFrame[],
  evalRange: EvalRange,
  ap: ClassAwareApAccumulator,
): Promise<{ tracking?: TrackingSummary; prediction?: PredictionSummary }> {
  const mot: MotFrame[] = [];
  const metrics = new PredictionMetrics();
  let anyTracks = false;
  let skipped = 0;
  let horizonS = 0;
  const cache = new Map<number, CooperativeFrame | undefined>();
  const frameAt = async (i: number) => {
    if (!cache.has(i)) cache.set(i, i < seq.frameCount ? await seq.frame(i) : undefined);
    return cache.get(i);
  };
  for (const f of frames) {
    const frame = (await frameAt(f.index))!;
    const gt = cooperativeGroundTruth(frame, egoId, { evalRange });
    const detections: Detection[] = (f.result?.detections ?? []).map((d) => ({
      box: boxOf(d.box),
      score: d.score ?? 0,
      cls: objectClassFromWire(d.objectClass) ?? 'vehicle',
    }));
    ap.addFrame(detections, gt);
    const tracks = f.result?.tracks ?? [];
    if (tracks.length) anyTracks = true;
    mot.push({
      groundTruth: gt.map((g) => ({ id: g.id, box: g.box, cls: g.cls })),
      tracks: tracks.map((t) => ({ id: t.trackId ?? 0, box: boxOf(t.box), score: t.score ?? 0, cls: objectClassFromWire(t.objectClass) ?? 'vehicle' })),
    });

    // Predictions: each track's best-overlapping object at this frame, and where it really was over the horizon.
    const predicted = tracks.map((t) => ({ trackId: t.trackId ?? 0, box: boxOf(t.box), prediction: predictionOf(t.predictions) }));
    const withPrediction = predicted.filter((p): p is typeof p & { prediction: MultiModalPrediction } => p.prediction !== undefined);
    if (withPrediction.length === 0) continue;
    const steps = withPrediction[0].prediction.steps;
    horizonS = Math.max(horizonS, tracks.find((t) => t.predictions?.length)?.predictions?.[0]?.waypoints?.[steps - 1]?.timeOffsetS ?? 0);
    const future: CooperativeFrame[] = [];
    for (let k = 1; k <= steps; k++) {
      const next = await frameAt(f.index + k);
      if (!next) break;
      future.push(next);
    }
    const ego = frame.agents.find((a) => a.agentId === egoId)!;
    const worldToEgo = invertRigid(ego.lidarToWorld);
    const truths = new Map<string | number, Float64Array>();
    for (const p of withPrediction) {
      let best: { id: string; iou: number } | undefined;
      for (const g of gt) {
        if (g.cls !== 'vehicle') continue;
        const iou = bevIoU(p.box, g.box);
        if (iou >= PREDICTION_MATCH_IOU && (!best || iou > best.iou)) best = { id: g.id, iou };
      }
      if (best) truths.set(p.trackId, groundTruthFuture(future, best.id, worldToEgo));
    }
    skipped += scoreTrackPredictions(withPrediction, truths, metrics).skipped;
  }
  const tracking = anyTracks ? summarizeTracking('vehicle', evaluateMot([mot], { cls: 'vehicle' })) : undefined;
  const summary = metrics.summary();
  const prediction = summary.count > 0 || skipped > 0 ? { ...summary, horizonS, skipped } : undefined;
  return { tracking, prediction };
}
