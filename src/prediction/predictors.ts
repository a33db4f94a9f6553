// One interface over every motion predictor, so the evaluation and the fusion node treat the baselines and the
// learned model alike: histories in, K trajectories with probabilities out, in the histories' frame.
import { type MotionEstimateOptions, estimateMotionState, predictConstantVelocity, predictCtrv } from './baselines.ts';
import {
  DEFAULT_HISTORY_RATE_HZ,
  DEFAULT_HORIZON,
  type MultiModalPrediction,
  type PredictionHorizon,
  type TrackHistory,
  horizonSteps,
  singleModePrediction,
} from './types.ts';

export interface TrajectoryPredictor {
  /** Short name for reports: 'cv', 'ctrv', 'learned'. */
  readonly name: string;
  /** Modes per prediction. */
  readonly modes: number;
  readonly horizon: PredictionHorizon;
  /** Rate of the history steps it expects (Hz). */
  readonly historyRateHz: number;
  /** One prediction per history, in the same order and frame. */
  predict(histories: readonly TrackHistory[]): Promise<MultiModalPrediction[]>;
}

abstract class PhysicsPredictor implements TrajectoryPredictor {
  abstract readonly name: string;
  readonly modes = 1;
  readonly historyRateHz: number;

  constructor(
    readonly horizon: PredictionHorizon = DEFAULT_HORIZON,
    private readonly estimate: MotionEstimateOptions = {},
  ) {
    horizonSteps(horizon);
    this.historyRateHz = estimate.rateHz ?? DEFAULT_HISTORY_RATE_HZ;
  }

  protected abstract extrapolate(history: TrackHistory): Float64Array;

  protected state(history: TrackHistory) {
    return estimateMotionState(history.states, this.estimate);
  }

  async predict(histories: readonly TrackHistory[]): Promise<MultiModalPrediction[]> {
    return histories.map((h) => singleModePrediction(this.extrapolate(h)));
  }
}

/** Constant velocity from the last 0.2 s of the history (estimateMotionState). */
export class ConstantVelocityPredictor extends PhysicsPredictor {
  readonly name = 'cv';
  protected extrapolate(h: TrackHistory): Float64Array {
    return predictConstantVelocity(this.state(h), this.horizon);
  }
}

/** Constant turn rate and velocity from the last 0.4 s of the history (estimateMotionState). */
export class CtrvPredictor extends PhysicsPredictor {
  readonly name = 'ctrv';
  protected extrapolate(h: TrackHistory): Float64Array {
    return predictCtrv(this.state(h), this.horizon);
  }
}
