// Motion-forecasting metrics as Argoverse defines them (Argoverse 1 and 2 motion forecasting):
//   ADE / FDE      average / final L2 displacement of ONE trajectory — here the most probable mode;
//   minFDE_k       the smallest final displacement among the k most probable modes;
//   minADE_k       the average displacement of THAT mode (the one with the smallest final displacement), not the
//                  smallest ADE over modes (nuScenes takes the min of each separately; Argoverse does not);
//   MR_k           the fraction of cases whose minFDE_k exceeds 2 m (none of the k endpoints within 2 m).
// A one-mode predictor (CV, CTRV) has minADE_k = ADE and minFDE_k = FDE for every k.
import { type MultiModalPrediction, type NumericArray, PredictionInputError, WAYPOINT_STRIDE } from './types.ts';

/** Argoverse's miss threshold on the final displacement, metres. */
export const MISS_THRESHOLD_M = 2;
/** Numbers per step of a ground-truth future: x, y. */
export const TRUTH_STRIDE = 2;

function checkSteps(pred: NumericArray, truth: NumericArray, steps: number, predStride: number, truthStride: number): void {
  if (!Number.isInteger(steps) || steps < 1) throw new PredictionInputError('steps', steps, 'must be an integer ≥ 1');
  if (pred.length < steps * predStride) throw new PredictionInputError('prediction.length', pred.length, `holds fewer than ${steps} waypoints`);
  if (truth.length < steps * truthStride) throw new PredictionInputError('truth.length', truth.length, `holds fewer than ${steps} steps`);
}

/** Mean over the first `steps` waypoints of the L2 distance between prediction and truth (x, y at offsets 0, 1). */
export function averageDisplacementError(
  pred: NumericArray,
  truth: NumericArray,
  steps: number,
  predStride = WAYPOINT_STRIDE,
  truthStride = TRUTH_STRIDE,
  predOffset = 0,
): number {
  checkSteps(pred.subarray(predOffset), truth, steps, predStride, truthStride);
  let sum = 0;
  for (let i = 0; i < steps; i++) {
    const p = predOffset + i * predStride;
    const t = i * truthStride;
    sum += Math.hypot(pred[p] - truth[t], pred[p + 1] - truth[t + 1]);
  }
  return sum / steps;
}

/** L2 distance between prediction and truth at waypoint `steps − 1`. */
export function finalDisplacementError(
  pred: NumericArray,
  truth: NumericArray,
  steps: number,
  predStride = WAYPOINT_STRIDE,
  truthStride = TRUTH_STRIDE,
  predOffset = 0,
): number {
  checkSteps(pred.subarray(predOffset), truth, steps, predStride, truthStride);
  const p = predOffset + (steps - 1) * predStride;
  const t = (steps - 1) * truthStride;
  return Math.hypot(pred[p] - truth[t], pred[p + 1] - truth[t + 1]);
}

export interface PredictionScore {
  /** Of the most probable mode. */
  ade: number;
  fde: number;
  /** Of the mode (among the k most probable) with the smallest final displacement. */
  minAde: number;
  minFde: number;
  /** Index (into the prediction's modes) of that mode. */
  bestMode: number;
  /** minFde > the miss threshold. */
  miss: boolean;
  /** The most probable mode's FDE > the miss threshold. */
  missTop1: boolean;
  /** Modes considered: min(k, prediction.modes). */
  k: number;
}

export interface ScoreOptions {
  /** How many of the most probable modes count for minADE/minFDE/MR. Default 6. */
  k?: number;
  /** Default 2 m (Argoverse). */
  missThresholdM?: number;
  /** Numbers per step of `truth`. Default 2 (x, y). */
  truthStride?: number;
}

/** Modes by descending probability (stable for ties). */
function modeOrder(prediction: MultiModalPrediction): number[] {
  const order = Array.from({ length: prediction.modes }, (_, i) => i);
  return order.sort((a, b) => prediction.probabilities[b] - prediction.probabilities[a] || a - b);
}

/** Scores one prediction against the true future positions (the prediction's `steps` first steps of `truth`). */
export function scorePrediction(prediction: MultiModalPrediction, truth: NumericArray, opts: ScoreOptions = {}): PredictionScore {
  const kWanted = opts.k ?? 6;
  if (!Number.isInteger(kWanted) || kWanted < 1) throw new PredictionInputError('k', kWanted, 'must be an integer ≥ 1');
  const threshold = opts.missThresholdM ?? MISS_THRESHOLD_M;
  const truthStride = opts.truthStride ?? TRUTH_STRIDE;
  const { steps, waypoints } = prediction;
  if (prediction.modes < 1) throw new PredictionInputError('prediction.modes', prediction.modes, 'must be ≥ 1');
  const modeSize = steps * WAYPOINT_STRIDE;
  const order = modeOrder(prediction);
  const k = Math.min(kWanted, prediction.modes);
  const top = order[0];
  const ade = averageDisplacementError(waypoints, truth, steps, WAYPOINT_STRIDE, truthStride, top * modeSize);
  const fde = finalDisplacementError(waypoints, truth, steps, WAYPOINT_STRIDE, truthStride, top * modeSize);
  let bestMode = top;
  let minFde = fde;
  for (let r = 1; r < k; r++) {
    const m = order[r];
    const f = finalDisplacementError(waypoints, truth, steps, WAYPOINT_STRIDE, truthStride, m * modeSize);
    if (f < minFde) {
      minFde = f;
      bestMode = m;
    }
  }
  const minAde = bestMode === top ? ade : averageDisplacementError(waypoints, truth, steps, WAYPOINT_STRIDE, truthStride, bestMode * modeSize);
  return { ade, fde, minAde, minFde, bestMode, miss: minFde > threshold, missTop1: fde > threshold, k };
}

export interface PredictionMetricsSummary {
  /** Predictions scored. */
  count: number;
  /** The k of minADE_k / minFDE_k / missRate. */
  k: number;
  missThresholdM: number;
  ade: number;
  fde: number;
  minAde: number;
  minFde: number;
  /** MR_k: fraction with minFDE_k > missThresholdM. */
  missRate: number;
  /** Fraction whose most probable mode misses. */
  missRateTop1: number;
}

/** Running means of the metrics over many scored predictions. */
export class PredictionMetrics {
  private n = 0;
  private sums = { ade: 0, fde: 0, minAde: 0, minFde: 0, miss: 0, missTop1: 0 };

  constructor(
    readonly k = 6,
    readonly missThresholdM = MISS_THRESHOLD_M,
  ) {}

  /** Scores `prediction` against `truth` with this accumulator's k and threshold and adds it. */
  score(prediction: MultiModalPrediction, truth: NumericArray, truthStride = TRUTH_STRIDE): PredictionScore {
    const s = scorePrediction(prediction, truth, { k: this.k, missThresholdM: this.missThresholdM, truthStride });
    this.add(s);
    return s;
  }

  add(s: PredictionScore): void {
    this.n++;
    this.sums.ade += s.ade;
    this.sums.fde += s.fde;
    this.sums.minAde += s.minAde;
    this.sums.minFde += s.minFde;
    if (s.miss) this.sums.miss++;
    if (s.missTop1) this.sums.missTop1++;
  }

  get count(): number {
    return this.n;
  }

  /** Means (NaN when nothing was scored). */
  summary(): PredictionMetricsSummary {
    const mean = (v: number) => (this.n === 0 ? Number.NaN : v / this.n);
    return {
      count: this.n,
      k: this.k,
      missThresholdM: this.missThresholdM,
      ade: mean(this.sums.ade),
      fde: mean(this.sums.fde),
      minAde: mean(this.sums.minAde),
      minFde: mean(this.sums.minFde),
      missRate: mean(this.sums.miss),
      missRateTop1: mean(this.sums.missTop1),
    };
  }
}
