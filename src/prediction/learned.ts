// The learned motion predictor (models.motion_predictor of the manifest, trained by
// tools/train/train_predictor.py): each history goes into its track frame (track-frame.ts), the ONNX model gives K
// trajectories in that frame with their probabilities and position spread, and they come back into the
// history's frame. Batched: one ONNX run per predict() call.
import * as ort from 'onnxruntime-node';
import {
  type MotionPredictorEntry,
  type SessionLoadOptions,
  ManifestError,
  ModelContractError,
  createSession,
  loadManifest,
} from '../perception/index.ts';
import type { TrajectoryPredictor } from './predictors.ts';
import { ENCODED_STEP_SIZE, type TrackFrame, encodeAgentClass, encodeHistory, fromTrackFrame, trackFrameOf } from './track-frame.ts';
import {
  type MultiModalPrediction,
  type PredictionHorizon,
  PredictionInputError,
  type TrackHistory,
  WAYPOINT_STRIDE,
  horizonSteps,
} from './types.ts';

export const DEFAULT_MANIFEST_PATH = 'models/manifest.json';
const INPUTS = ['history', 'agent_class'] as const;
const OUTPUTS = ['trajectories', 'position_std', 'mode_probs'] as const;
/** A waypoint's yaw follows the path once it has moved this far (m) from where the yaw was last set. */
const YAW_STEP_M = 0.2;

export interface MotionPredictorOptions extends Omit<SessionLoadOptions, 'sha256'> {
  /** Predict only this far (same rate as the model, at most its horizon). Default: the model's whole horizon. */
  horizon?: PredictionHorizon;
}

export class MotionPredictor implements TrajectoryPredictor {
  readonly name = 'learned';
  readonly modes: number;
  readonly horizon: PredictionHorizon;
  readonly historyRateHz: number;
  private readonly steps: number;
  private historyInput = new Float32Array(0);
  private classInput = new Float32Array(0);

  private constructor(
    readonly entry: MotionPredictorEntry,
    private readonly session: ort.InferenceSession,
    horizon: PredictionHorizon | undefined,
  ) {
    this.modes = entry.modes;
    this.historyRateHz = entry.rateHz;
    const full = { horizonS: entry.horizonSteps / entry.rateHz, rateHz: entry.rateHz };
    this.horizon = horizon ?? full;
    this.steps = horizonSteps(this.horizon);
    if (this.horizon.rateHz !== entry.rateHz || this.steps > entry.horizonSteps) {
      throw new PredictionInputError(
        'horizon',
        `${this.horizon.horizonS} s at ${this.horizon.rateHz} Hz`,
        `the model predicts ${entry.horizonSteps} steps at ${entry.rateHz} Hz; ask for that rate and at most that many steps`,
      );
    }
  }

  /**
   * Loads models.motion_predictor of a manifest (default models/manifest.json), checking the file's sha256 and
   * the model's tensor names; a manifest without one is a ManifestError.
   */
  static async load(manifestPath = DEFAULT_MANIFEST_PATH, opts: MotionPredictorOptions = {}): Promise<MotionPredictor> {
    const manifest = await loadManifest(manifestPath);
    if (!manifest.motionPredictor) {
      throw new ManifestError(manifestPath, 'models.motion_predictor', 'missing: this manifest ships no learned motion predictor (train one with tools/train/train_predictor.py --install)');
    }
    return MotionPredictor.fromEntry(manifest.motionPredictor, opts);
  }

  static async fromEntry(entry: MotionPredictorEntry, opts: MotionPredictorOptions = {}): Promise<MotionPredictor> {
    const { horizon, ...sessionOpts } = opts;
    const { session } = await createSession(entry.path, { ...sessionOpts, sha256: entry.sha256 });
    for (const name of INPUTS) {
      if (!session.inputNames.includes(name)) throw new ModelContractError(entry.path, name, `missing input (has ${session.inputNames.join(', ')})`);
    }
    for (const name of OUTPUTS) {
      if (!session.outputNames.includes(name)) throw new ModelContractError(entry.path, name, `missing output (has ${session.outputNames.join(', ')})`);
    }
    return new MotionPredictor(entry, session, horizon);
  }

  /** The histories must be at the model's rate (entry.rateHz); shorter ones than entry.historySteps are padded. */
  async predict(histories: readonly TrackHistory[]): Promise<MultiModalPrediction[]> {
    const B = histories.length;
    if (B === 0) return [];
    const { historySteps: H, horizonSteps: T, modes: K, agentClasses } = this.entry;
    const C = agentClasses.length;
    if (this.historyInput.length < B * H * ENCODED_STEP_SIZE) {
      this.historyInput = new Float32Array(B * H * ENCODED_STEP_SIZE);
      this.classInput = new Float32Array(B * C);
    }
    const frames: TrackFrame[] = [];
    histories.forEach((h, b) => {
      const frame = trackFrameOf(h.states, this.entry.rateHz);
      frames.push(frame);
      encodeHistory(h.states, H, frame, this.historyInput, b * H * ENCODED_STEP_SIZE);
      encodeAgentClass(h.cls ?? 'vehicle', this.classInput, b * C);
    });
    const out = await this.session.run({
      history: new ort.Tensor('float32', this.historyInput.subarray(0, B * H * ENCODED_STEP_SIZE), [B, H, ENCODED_STEP_SIZE]),
      agent_class: new ort.Tensor('float32', this.classInput.subarray(0, B * C), [B, C]),
    });
    const traj = out.trajectories;
    const std = out.position_std;
    const probs = out.mode_probs;
    const want = (t: ort.Tensor, dims: number[], name: string) => {
      if (t.dims.join(',') !== dims.join(',')) throw new ModelContractError(this.entry.path, name, `dims [${t.dims.join(', ')}], the manifest says [${dims.join(', ')}]`);
      return t.data as Float32Array;
    };
    const trajData = want(traj, [B, K, T, 2], 'trajectories');
    const stdData = want(std, [B, K, T], 'position_std');
    const probData = want(probs, [B, K], 'mode_probs');

    const S = this.steps;
    return frames.map((frame, b) => {
      const order = Array.from({ length: K }, (_, k) => k).sort((i, j) => probData[b * K + j] - probData[b * K + i] || i - j);
      const waypoints = new Float64Array(K * S * WAYPOINT_STRIDE);
      const positionStd = new Float64Array(K * S);
      const probabilities = new Float64Array(K);
      order.forEach((k, rank) => {
        probabilities[rank] = probData[b * K + k];
        let yaw = frame.heading;
        let ax = frame.x;
        let ay = frame.y;
        for (let i = 0; i < S; i++) {
          const src = ((b * K + k) * T + i) * 2;
          const o = (rank * S + i) * WAYPOINT_STRIDE;
          fromTrackFrame(frame, trajData[src], trajData[src + 1], waypoints, o);
          const dx = waypoints[o] - ax;
          const dy = waypoints[o + 1] - ay;
          if (dx * dx + dy * dy >= YAW_STEP_M * YAW_STEP_M) {
            yaw = Math.atan2(dy, dx);
            ax = waypoints[o];
            ay = waypoints[o + 1];
          }
          waypoints[o + 2] = yaw;
          positionStd[rank * S + i] = stdData[(b * K + k) * T + i];
        }
      });
      return { modes: K, steps: S, waypoints, probabilities, positionStd };
    });
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
