// Shapes shared by the motion-prediction stage. Trajectories are flat typed arrays of waypoints (x, y, yaw), in
// whatever frame the history was given in (world, or the ego LiDAR frame at the prediction time): nothing in this
// stage changes frames except into and out of a track's own frame inside the learned predictor.
import type { ObjectClass } from '../datasets/index.ts';

/** Numbers per waypoint in every predicted trajectory: x, y, yaw. */
export const WAYPOINT_STRIDE = 3;
/** Numbers per step of a history: x, y, yaw (yaw of the box; only used when the object does not move). */
export const HISTORY_STRIDE = 3;

export type NumericArray = Float64Array | Float32Array;

/** How far ahead and how densely to predict. */
export interface PredictionHorizon {
  /** Seconds ahead of the last history step. */
  horizonS: number;
  /** Waypoints per second; waypoint i (0-based) lies (i + 1) / rateHz seconds after the last history step. */
  rateHz: number;
}

/** The default: 3 s at 10 Hz, 30 waypoints. */
export const DEFAULT_HORIZON: Readonly<PredictionHorizon> = Object.freeze({ horizonS: 3, rateHz: 10 });

/** Histories are sampled at the dataset's 10 Hz unless a caller says otherwise. */
export const DEFAULT_HISTORY_RATE_HZ = 10;

/** A track's recent past, oldest step first, the last step being "now", spaced 1 / rateHz seconds. */
export interface TrackHistory {
  /** (x, y, yaw) per step; length = steps × HISTORY_STRIDE. */
  states: NumericArray;
  /** Helps the learned predictor (a pedestrian is not a car); baselines ignore it. Default 'vehicle'. */
  cls?: ObjectClass;
}

/** K alternative futures of one track with their probabilities (summing to 1), most probable first. */
export interface MultiModalPrediction {
  modes: number;
  steps: number;
  /** [modes × steps × WAYPOINT_STRIDE], mode-major. */
  waypoints: Float64Array;
  /** [modes], descending. */
  probabilities: Float64Array;
  /** [modes × steps]: 1 σ of x and of y (isotropic) in metres; absent when the predictor does not estimate it. */
  positionStd?: Float64Array;
}

/** A call with inputs of the wrong shape or options out of range: a programming error, not the user's. */
export class PredictionInputError extends Error {
  constructor(readonly field: string, readonly value: unknown, detail: string) {
    super(`${field} = ${String(value)}: ${detail}`);
    this.name = new.target.name;
  }
}

/** Number of waypoints a horizon asks for (3 s at 10 Hz → 30). */
export function horizonSteps(h: PredictionHorizon): number {
  if (!(h.horizonS > 0) || !(h.rateHz > 0) || !Number.isFinite(h.horizonS) || !Number.isFinite(h.rateHz)) {
    throw new PredictionInputError('horizon', `${h.horizonS} s at ${h.rateHz} Hz`, 'horizonS and rateHz must be finite and > 0');
  }
  const steps = Math.round(h.horizonS * h.rateHz);
  if (steps < 1) throw new PredictionInputError('horizon', `${h.horizonS} s at ${h.rateHz} Hz`, 'gives no waypoint');
  return steps;
}

/** One trajectory as a one-mode prediction (what the baselines give). */
export function singleModePrediction(waypoints: Float64Array): MultiModalPrediction {
  if (waypoints.length % WAYPOINT_STRIDE !== 0) {
    throw new PredictionInputError('waypoints.length', waypoints.length, `must be a multiple of ${WAYPOINT_STRIDE}`);
  }
  return { modes: 1, steps: waypoints.length / WAYPOINT_STRIDE, waypoints, probabilities: Float64Array.of(1) };
}
