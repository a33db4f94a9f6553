// The physics baselines every learned motion predictor is compared with: constant velocity (CV) and constant turn
// rate and velocity (CTRV). Both start from a MotionState, which a Kalman tracker holds directly and
// estimateMotionState derives from a track's recent positions.
//
// The heading and turn rate come from the positions, not from the box yaw: a detector's yaw is only defined modulo
// π (the head has no direction classifier), so a track's box yaw can flip half a turn between frames while its
// displacement cannot. Box yaw is used only for an object that does not move (its heading then matters for the
// waypoints' yaw alone).
import { wrapAngle } from '../geometry/index.ts';
import {
  DEFAULT_HISTORY_RATE_HZ,
  DEFAULT_HORIZON,
  HISTORY_STRIDE,
  type NumericArray,
  type PredictionHorizon,
  PredictionInputError,
  WAYPOINT_STRIDE,
  horizonSteps,
} from './types.ts';

/** The state CV and CTRV extrapolate (a CTRV Kalman filter's state, without acceleration). */
export interface MotionState {
  x: number;
  y: number;
  /** Direction of motion, rad. */
  heading: number;
  /** m/s, ≥ 0. */
  speed: number;
  /** rad/s, counter-clockwise positive. */
  yawRate: number;
}

export interface MotionEstimateOptions {
  /** Rate of the history's steps (Hz). Default 10. */
  rateHz?: number;
  /** Steps between the positions a velocity is taken from; the turn rate needs 2 × this + 1 steps. Default 2. */
  windowSteps?: number;
  /** Below this speed (m/s) an object counts as standing: speed 0, heading = its box yaw. Default 0.5. */
  minSpeed?: number;
  /** Turn rates are clipped to ± this (rad/s): a few centimetres of jitter at low speed can fake a spin. Default 1.5. */
  maxYawRate?: number;
}

const DEFAULT_WINDOW_STEPS = 2;
const DEFAULT_MIN_SPEED = 0.5;
const DEFAULT_MAX_YAW_RATE = 1.5;
/** Below this turn rate CTRV is CV (v/ω would lose all precision). */
const STRAIGHT_YAW_RATE = 1e-6;

/** Chord → arc: on a circle, the chord over angle φ is shorter than the arc by sin(φ/2)/(φ/2). */
function arcOverChord(phi: number): number {
  const h = Math.abs(phi) / 2;
  return h < 1e-6 ? 1 : h / Math.sin(h);
}

/**
 * Speed, heading and turn rate from a history of (x, y, yaw) steps, oldest first. The velocity is the chord over
 * the last `windowSteps` steps; the turn rate is the change of direction between that chord and the one before it.
 * Both chords are corrected for the arc they cut, so uniform circular motion (and, trivially, straight motion) is
 * recovered exactly. Histories shorter than a chord give a standing object; shorter than two chords, no turn.
 */
export function estimateMotionState(history: NumericArray, opts: MotionEstimateOptions = {}): MotionState {
  const rateHz = opts.rateHz ?? DEFAULT_HISTORY_RATE_HZ;
  const minSpeed = opts.minSpeed ?? DEFAULT_MIN_SPEED;
  const maxYawRate = opts.maxYawRate ?? DEFAULT_MAX_YAW_RATE;
  if (history.length === 0 || history.length % HISTORY_STRIDE !== 0) {
    throw new PredictionInputError('history.length', history.length, `must be a positive multiple of ${HISTORY_STRIDE} (x, y, yaw per step)`);
  }
  if (!(rateHz > 0)) throw new PredictionInputError('rateHz', rateHz, 'must be > 0');
  const n = history.length / HISTORY_STRIDE;
  const last = (n - 1) * HISTORY_STRIDE;
  const x = history[last];
  const y = history[last + 1];
  const standing: MotionState = { x, y, heading: wrapAngle(history[last + 2]), speed: 0, yawRate: 0 };
  const k = Math.min(opts.windowSteps ?? DEFAULT_WINDOW_STEPS, n - 1);
  if (!Number.isInteger(k) || k < 0) throw new PredictionInputError('windowSteps', opts.windowSteps, 'must be an integer ≥ 1');
  if (k === 0) return standing;
  const span = k / rateHz;
  const a = (n - 1 - k) * HISTORY_STRIDE;
  const dx1 = x - history[a];
  const dy1 = y - history[a + 1];
  const chord1 = Math.hypot(dx1, dy1);
  if (chord1 / span < minSpeed) return standing;
  const dir1 = Math.atan2(dy1, dx1);

  let yawRate = 0;
  if (n - 1 >= 2 * k) {
    const b = (n - 1 - 2 * k) * HISTORY_STRIDE;
    const dx0 = history[a] - history[b];
    const dy0 = history[a + 1] - history[b + 1];
    if (Math.hypot(dx0, dy0) / span >= minSpeed) {
      yawRate = wrapAngle(dir1 - Math.atan2(dy0, dx0)) / span;
      yawRate = Math.max(-maxYawRate, Math.min(maxYawRate, yawRate));
    }
  }
  // The chord's direction lags the tangent at its end by half the angle turned along it.
  const phi = yawRate * span;
  return { x, y, heading: wrapAngle(dir1 + phi / 2), speed: (chord1 / span) * arcOverChord(phi), yawRate };
}

function outputFor(steps: number, out: Float64Array | undefined): Float64Array {
  const n = steps * WAYPOINT_STRIDE;
  if (out === undefined) return new Float64Array(n);
  if (out.length < n) throw new PredictionInputError('out.length', out.length, `must hold ${steps} waypoints (${n} numbers)`);
  return out;
}

/** Constant velocity: straight on at `speed` along `heading`; waypoint yaw = heading. Writes into `out` if given. */
export function predictConstantVelocity(state: MotionState, horizon: PredictionHorizon = DEFAULT_HORIZON, out?: Float64Array): Float64Array {
  const steps = horizonSteps(horizon);
  const w = outputFor(steps, out);
  const vx = state.speed * Math.cos(state.heading);
  const vy = state.speed * Math.sin(state.heading);
  for (let i = 0; i < steps; i++) {
    const t = (i + 1) / horizon.rateHz;
    const o = i * WAYPOINT_STRIDE;
    w[o] = state.x + vx * t;
    w[o + 1] = state.y + vy * t;
    w[o + 2] = state.heading;
  }
  return w;
}

/**
 * Constant turn rate and velocity: along the circle of radius speed / yawRate tangent to the heading (CV when the
 * turn rate is ~0); waypoint yaw = heading + yawRate · t.
 */
export function predictCtrv(state: MotionState, horizon: PredictionHorizon = DEFAULT_HORIZON, out?: Float64Array): Float64Array {
  if (Math.abs(state.yawRate) < STRAIGHT_YAW_RATE) return predictConstantVelocity(state, horizon, out);
  const steps = horizonSteps(horizon);
  const w = outputFor(steps, out);
  const r = state.speed / state.yawRate;
  const s0 = Math.sin(state.heading);
  const c0 = Math.cos(state.heading);
  for (let i = 0; i < steps; i++) {
    const t = (i + 1) / horizon.rateHz;
    const th = state.heading + state.yawRate * t;
    const o = i * WAYPOINT_STRIDE;
    w[o] = state.x + r * (Math.sin(th) - s0);
    w[o + 1] = state.y + r * (c0 - Math.cos(th));
    w[o + 2] = wrapAngle(th);
  }
  return w;
}
