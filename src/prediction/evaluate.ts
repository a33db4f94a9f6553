// Scoring predictors on ground-truth tracks (every window with a full history and a full future), and scoring a
// running system's predictions for its tracks against the true future of the objects they were matched to.
import type { CooperativeFrame } from '../datasets/index.ts';
import { type Mat4, transformPoint } from '../geometry/index.ts';
import { MISS_THRESHOLD_M, PredictionMetrics, type PredictionMetricsSummary, TRUTH_STRIDE } from './metrics.ts';
import type { TrajectoryPredictor } from './predictors.ts';
import { type PredictionWindow, type SequenceTracks, predictionWindows } from './tracks.ts';
import { HISTORY_STRIDE, type MultiModalPrediction, PredictionInputError, horizonSteps } from './types.ts';

/** The subsets every evaluation reports. 'moving': the object covers ≥ 2 m over its history and future together. */
export const EVALUATION_SUBSETS = ['all', 'vehicle', 'pedestrian', 'moving'] as const;
export type EvaluationSubset = (typeof EVALUATION_SUBSETS)[number];
const MOVING_PATH_M = 2;

export interface PredictionEvaluationOptions {
  /** History steps handed to every predictor. Default 10 (1 s at 10 Hz). */
  historySteps?: number;
  /** Anchor spacing in frames. Default 1. */
  stride?: number;
  /** k of minADE_k / minFDE_k / MR_k. Default 6. */
  k?: number;
  missThresholdM?: number;
  /** Windows per predict() call. Default 512. */
  batch?: number;
}

export interface PredictionEvaluation {
  predictor: string;
  modes: number;
  /** Waypoints scored per window (the predictor's horizon). */
  steps: number;
  subsets: Record<EvaluationSubset, PredictionMetricsSummary>;
}

function pathLength(w: PredictionWindow): number {
  let len = 0;
  const h = w.history;
  for (let i = HISTORY_STRIDE; i < h.length; i += HISTORY_STRIDE) len += Math.hypot(h[i] - h[i - HISTORY_STRIDE], h[i + 1] - h[i + 1 - HISTORY_STRIDE]);
  let px = h[h.length - HISTORY_STRIDE];
  let py = h[h.length - HISTORY_STRIDE + 1];
  for (let i = 0; i < w.future.length; i += 2) {
    len += Math.hypot(w.future[i] - px, w.future[i + 1] - py);
    px = w.future[i];
    py = w.future[i + 1];
  }
  return len;
}

function subsetsOf(w: PredictionWindow): EvaluationSubset[] {
  const s: EvaluationSubset[] = ['all'];
  if (w.track.cls === 'vehicle') s.push('vehicle');
  if (w.track.cls === 'pedestrian') s.push('pedestrian');
  if (pathLength(w) >= MOVING_PATH_M) s.push('moving');
  return s;
}

/**
 * Every predictor on every window of every track (full history and full future over the predictor's horizon),
 * each window scored once per subset it belongs to. All predictors see the same windows; they must share a rate.
 */
export async function evaluatePredictors(
  sequences: readonly SequenceTracks[],
  predictors: readonly TrajectoryPredictor[],
  opts: PredictionEvaluationOptions = {},
): Promise<PredictionEvaluation[]> {
  const H = opts.historySteps ?? 10;
  const k = opts.k ?? 6;
  const batch = opts.batch ?? 512;
  if (predictors.length === 0) return [];
  const steps = horizonSteps(predictors[0].horizon);
  for (const p of predictors) {
    if (horizonSteps(p.horizon) !== steps || p.historyRateHz !== predictors[0].historyRateHz) {
      throw new PredictionInputError('predictors', p.name, 'all predictors of one evaluation must share the horizon and history rate');
    }
  }
  const windows: PredictionWindow[] = [];
  for (const seq of sequences) for (const t of seq.tracks) windows.push(...predictionWindows(t, H, steps, opts.stride ?? 1));
  const subsets = windows.map(subsetsOf);
  const results: PredictionEvaluation[] = [];
  for (const p of predictors) {
    const acc = Object.fromEntries(EVALUATION_SUBSETS.map((s) => [s, new PredictionMetrics(k, opts.missThresholdM ?? MISS_THRESHOLD_M)])) as Record<
      EvaluationSubset,
      PredictionMetrics
    >;
    for (let start = 0; start < windows.length; start += batch) {
      const chunk = windows.slice(start, start + batch);
      const predictions = await p.predict(chunk.map((w) => ({ states: w.history, cls: w.track.cls })));
      predictions.forEach((pred, i) => {
        const score = acc.all.score(pred, chunk[i].future);
        for (const s of subsets[start + i]) if (s !== 'all') acc[s].add(score);
      });
    }
    results.push({
      predictor: p.name,
      modes: p.modes,
      steps,
      subsets: Object.fromEntries(EVALUATION_SUBSETS.map((s) => [s, acc[s].summary()])) as Record<EvaluationSubset, PredictionMetricsSummary>,
    });
  }
  return results;
}

// ---- a running system's tracks ----------------------------------------------------------------------------------

/**
 * The true future positions of one object in a fixed frame (e.g. the ego LiDAR frame at the prediction time):
 * (x, y) per future frame, NaN where the object is not listed. `futureFrames[i]` is the frame i + 1 steps after
 * the prediction; `worldToFrame` maps world coordinates into the predictions' frame.
 */
export function groundTruthFuture(futureFrames: readonly CooperativeFrame[], objectId: string, worldToFrame: Mat4): Float64Array {
  const out = new Float64Array(futureFrames.length * TRUTH_STRIDE).fill(Number.NaN);
  futureFrames.forEach((f, i) => {
    const box = f.cooperativeBoxes?.find((b) => b.id === objectId) ?? f.agents.flatMap((a) => a.boxes).find((b) => b.id === objectId);
    if (!box) return;
    const [x, y] = transformPoint(worldToFrame, box.box.x, box.box.y, box.box.z);
    out[i * TRUTH_STRIDE] = x;
    out[i * TRUTH_STRIDE + 1] = y;
  });
  return out;
}

export interface TrackPredictionScoring {
  scored: number;
  /** Predictions without a matched object, or whose object's future is not known over the whole horizon. */
  skipped: number;
}

/**
 * Adds each prediction whose track was matched to an object with a known future to `metrics`. `truths` maps a
 * track id to the true positions (x, y per step, the predictions' frame, NaN when unknown — groundTruthFuture); a
 * future with any unknown step over the prediction's horizon is skipped, as Argoverse scores full futures only.
 */
export function scoreTrackPredictions(
  predictions: readonly { trackId: string | number; prediction: MultiModalPrediction }[],
  truths: ReadonlyMap<string | number, Float64Array>,
  metrics: PredictionMetrics,
): TrackPredictionScoring {
  let scored = 0;
  let skipped = 0;
  for (const { trackId, prediction } of predictions) {
    const truth = truths.get(trackId);
    const n = prediction.steps * TRUTH_STRIDE;
    if (!truth || truth.length < n || !truth.subarray(0, n).every(Number.isFinite)) {
      skipped++;
      continue;
    }
    metrics.score(prediction, truth);
    scored++;
  }
  return { scored, skipped };
}
