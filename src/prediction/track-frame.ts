// The learned predictor's input and output frame: a track's own frame at "now" (origin at its last position,
// x along its heading). The training samples (exportPredictionSamples) and the runtime (MotionPredictor) both go
// through these functions, so the model's input is defined once, here; tools/train/train_predictor.py only reads
// what they wrote. models/README.md states the contract.
import type { ObjectClass } from '../datasets/index.ts';
import { estimateMotionState } from './baselines.ts';
import { HISTORY_STRIDE, type NumericArray, PredictionInputError } from './types.ts';

/** The one-hot order of `agent_class`. */
export const AGENT_CLASSES: readonly ObjectClass[] = ['vehicle', 'pedestrian', 'cyclist', 'other'];
/** Numbers per history step in the model input: x, y in the track frame, and 1 for a real step / 0 for padding. */
export const ENCODED_STEP_SIZE = 3;

/** A track's frame: origin and heading (rad) in the frame the history was given in. */
export interface TrackFrame {
  x: number;
  y: number;
  heading: number;
  cos: number;
  sin: number;
}

/**
 * Origin = the last history position; heading = the direction of motion over the last 0.2 s (estimateMotionState's
 * defaults: window 2 steps, at least 0.5 m/s), else the last box yaw for an object that stands.
 */
export function trackFrameOf(history: NumericArray, rateHz: number): TrackFrame {
  const s = estimateMotionState(history, { rateHz });
  return { x: s.x, y: s.y, heading: s.heading, cos: Math.cos(s.heading), sin: Math.sin(s.heading) };
}

/**
 * Writes the last `historySteps` steps of `history` as (x, y, valid) rows in the track frame into
 * out[offset … offset + historySteps × 3), oldest first; steps the history does not have are (0, 0, 0) at the front.
 */
export function encodeHistory(history: NumericArray, historySteps: number, frame: TrackFrame, out: Float32Array, offset = 0): void {
  if (history.length === 0 || history.length % HISTORY_STRIDE !== 0) {
    throw new PredictionInputError('history.length', history.length, `must be a positive multiple of ${HISTORY_STRIDE}`);
  }
  const n = history.length / HISTORY_STRIDE;
  const missing = Math.max(0, historySteps - n);
  const first = n - (historySteps - missing);
  for (let i = 0; i < historySteps; i++) {
    const o = offset + i * ENCODED_STEP_SIZE;
    if (i < missing) {
      out[o] = 0;
      out[o + 1] = 0;
      out[o + 2] = 0;
      continue;
    }
    const h = (first + i - missing) * HISTORY_STRIDE;
    const dx = history[h] - frame.x;
    const dy = history[h + 1] - frame.y;
    out[o] = frame.cos * dx + frame.sin * dy;
    out[o + 1] = -frame.sin * dx + frame.cos * dy;
    out[o + 2] = 1;
  }
}

/** One-hot of `cls` over AGENT_CLASSES into out[offset … offset + 4). */
export function encodeAgentClass(cls: ObjectClass, out: Float32Array, offset = 0): void {
  const index = AGENT_CLASSES.indexOf(cls);
  if (index < 0) throw new PredictionInputError('cls', cls, `must be one of ${AGENT_CLASSES.join(', ')}`);
  for (let i = 0; i < AGENT_CLASSES.length; i++) out[offset + i] = i === index ? 1 : 0;
}

/** (x, y) of a point of the input frame, in the track frame, into out[offset], out[offset + 1]. */
export function toTrackFrame(frame: TrackFrame, x: number, y: number, out: Float32Array | Float64Array, offset = 0): void {
  const dx = x - frame.x;
  const dy = y - frame.y;
  out[offset] = frame.cos * dx + frame.sin * dy;
  out[offset + 1] = -frame.sin * dx + frame.cos * dy;
}

/** (x, y) of a point of the track frame, in the input frame, into out[offset], out[offset + 1]. */
export function fromTrackFrame(frame: TrackFrame, u: number, v: number, out: Float32Array | Float64Array, offset = 0): void {
  out[offset] = frame.x + frame.cos * u - frame.sin * v;
  out[offset + 1] = frame.y + frame.sin * u + frame.cos * v;
}
