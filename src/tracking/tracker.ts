// 3D multi-object tracking by detection, AB3DMOT's loop (xinshuoweng/AB3DMOT, AB3DMOT_libs/model.py, AB3DMOT.track):
// predict every track → associate detections with the predicted boxes (per class) → update the matched tracks →
// birth a track for every unmatched detection → output the tracks with time_since_update < max_age and
// (hits ≥ min_hits or frame_count ≤ min_hits) → delete the tracks with time_since_update ≥ max_age.
// A track's reported box is its state after this frame's update, or its prediction when it was missed; its score
// is the score of the detection it was last updated with (AB3DMOT carries the detection's `info`).
//
// Cooperative tracking, the idea of DMSTrack (Chen et al., "Probabilistic 3D Multi-Object Cooperative Tracking for
// Autonomous Driving via Differentiable Multi-Sensor Kalman Filter", ICRA 2024; eddyhkchiu/DMSTrack,
// AB3DMOT_libs/dmstrack.py track_multi_sensor_differentiable_kalman_filter): every detection carries its own
// measurement covariance R, the Kalman update uses it instead of a fixed R, and a new track starts from it (the box
// block of P₀). updateMultiSensor() also follows DMSTrack's multi-sensor order: one prediction per frame, then for
// each agent's detection set in turn associate it with the tracks as they stand (already updated by the agents
// before), update, birth — so a track seen by two agents gets two updates, and two hits, in one frame. DMSTrack learns
// R from BEV features; here R comes from the sender's stated position confidence (late fusion's 95 % half-widths,
// σ = half-width / 1.96), which is what the message carries.
import type { ObjectClass } from '../datasets/index.ts';
import type { Box7 } from '../geometry/index.ts';
import { type AffinityMetric, AFFINITY_METRICS, affinity } from './affinity.ts';
import { AssignmentSolver, greedyAssignment } from './assignment.ts';
import { AB3DMOT_NOISE, BoxKalmanFilter, type KalmanNoise, MOTION_MODELS, type MotionModel } from './kalman.ts';

/** A detection handed to the tracker, in the tracking frame. */
export interface TrackInput {
  box: Box7;
  score: number;
  /** Default 'vehicle'. */
  cls?: ObjectClass;
  /**
   * Measurement covariance of (x, y, z, yaw, l, w, h), in the units of the box (m², rad²): 7 variances or 49 values
   * (row-major). Absent: the tracker's fixed R (AB3DMOT: identity).
   */
  covariance?: ArrayLike<number>;
}

/** One agent's detections of a frame, for updateMultiSensor. */
export interface DetectionSet {
  source: string;
  detections: readonly TrackInput[];
}

export type AssignmentMethod = 'hungarian' | 'greedy';

export interface ClassTrackingParams {
  metric: AffinityMetric;
  /** A pair is associated when its affinity ≥ threshold (distances are negative: −2 means "within 2 m"). */
  threshold: number;
  assignment: AssignmentMethod;
  /** Hits (updates, the birth included) before a track is reported. */
  minHits: number;
  /** Consecutive missed frames at which a track is deleted (reported while fewer). */
  maxAge: number;
}

/**
 * AB3DMOT's per-category settings for KITTI (model.py get_param, det_name 'pointrcnn' / 'pvrcnn', identical):
 * Car hungar giou_3d −0.2, min_hits 3, max_age 2; Pedestrian greedy giou_3d −0.4, 1, 4; Cyclist hungar dist_3d 2 m,
 * 3, 4. Our 'other' takes the Car settings.
 */
export const AB3DMOT_CLASS_PARAMS: Readonly<Record<ObjectClass, Readonly<ClassTrackingParams>>> = Object.freeze({
  vehicle: Object.freeze({ metric: 'giou_3d', threshold: -0.2, assignment: 'hungarian', minHits: 3, maxAge: 2 }),
  pedestrian: Object.freeze({ metric: 'giou_3d', threshold: -0.4, assignment: 'greedy', minHits: 1, maxAge: 4 }),
  cyclist: Object.freeze({ metric: 'dist_3d', threshold: -2, assignment: 'hungarian', minHits: 3, maxAge: 4 }),
  other: Object.freeze({ metric: 'giou_3d', threshold: -0.2, assignment: 'hungarian', minHits: 3, maxAge: 2 }),
} as const);

/** KITTI's frame interval: AB3DMOT's per-frame noise settings are per 0.1 s. */
export const DEFAULT_STEP_S = 0.1;

export interface TrackerOptions {
  /** Default 'cv' (AB3DMOT). */
  motion?: MotionModel;
  /** Seconds per filter step (the unit of the noise settings). Default 0.1. */
  stepS?: number;
  /** Default AB3DMOT_NOISE. */
  noise?: Partial<KalmanNoise>;
  /** Per-class overrides of AB3DMOT_CLASS_PARAMS. */
  params?: Partial<Record<ObjectClass, Partial<ClassTrackingParams>>>;
  /** Use the fixed R even for detections that carry a covariance (plain AB3DMOT). Default false. */
  ignoreCovariance?: boolean;
}

/** A reported track, in the tracking frame, SI units. */
export interface Track {
  id: number;
  cls: ObjectClass;
  box: Box7;
  /** m/s. */
  velocity: { x: number; y: number; z: number };
  /** rad/s, the CTRV model's ω; 0 for 'cv'. */
  yawRate: number;
  /** Diagonal of the state covariance: m², rad², (m/s)². */
  variance: { x: number; y: number; z: number; yaw: number; l: number; w: number; h: number; vx: number; vy: number; vz: number };
  /** Frames since birth. */
  age: number;
  /** Updates received, the birth included. */
  hits: number;
  /** Frames since the last update (0: updated this frame). */
  timeSinceUpdate: number;
  /** Score of the last detection the track was updated with. */
  score: number;
}

/** Input the tracker cannot use; names the field. */
export class TrackingInputError extends Error {
  readonly userFacing = true;
  constructor(readonly field: string, detail: string) {
    super(`tracking: ${field}: ${detail}`);
    this.name = new.target.name;
  }
}

interface LiveTrack {
  id: number;
  cls: ObjectClass;
  kf: BoxKalmanFilter;
  hits: number;
  timeSinceUpdate: number;
  age: number;
  score: number;
}

const CLASSES: readonly ObjectClass[] = ['vehicle', 'pedestrian', 'cyclist', 'other'];

function checkParams(cls: ObjectClass, p: ClassTrackingParams): void {
  if (!AFFINITY_METRICS.includes(p.metric)) throw new TrackingInputError(`params.${cls}.metric`, `'${p.metric}' is not one of ${AFFINITY_METRICS.join(', ')}`);
  if (!Number.isFinite(p.threshold)) throw new TrackingInputError(`params.${cls}.threshold`, `${p.threshold} is not finite`);
  if (p.assignment !== 'hungarian' && p.assignment !== 'greedy') throw new TrackingInputError(`params.${cls}.assignment`, `'${p.assignment}' is not hungarian or greedy`);
  if (!(Number.isInteger(p.minHits) && p.minHits >= 1)) throw new TrackingInputError(`params.${cls}.minHits`, `${p.minHits} must be an integer ≥ 1`);
  if (!(Number.isInteger(p.maxAge) && p.maxAge >= 1)) throw new TrackingInputError(`params.${cls}.maxAge`, `${p.maxAge} must be an integer ≥ 1`);
}

export class MultiObjectTracker {
  readonly motion: MotionModel;
  readonly stepS: number;
  readonly params: Readonly<Record<ObjectClass, ClassTrackingParams>>;
  private readonly noise: KalmanNoise;
  private readonly ignoreCovariance: boolean;
  private tracks: LiveTrack[] = [];
  private nextId = 1;
  private frames = 0;
  private lastTimeS: number | undefined;
  private readonly solver = new AssignmentSolver();
  private cost = new Float64Array(64);
  private aff = new Float64Array(64);
  private rowToCol = new Int32Array(16);
  private readonly z = new Float64Array(7);

  constructor(opts: TrackerOptions = {}) {
    this.motion = opts.motion ?? 'cv';
    if (!MOTION_MODELS.includes(this.motion)) throw new TrackingInputError('motion', `'${this.motion}' is not one of ${MOTION_MODELS.join(', ')}`);
    this.stepS = opts.stepS ?? DEFAULT_STEP_S;
    if (!(this.stepS > 0 && Number.isFinite(this.stepS))) throw new TrackingInputError('stepS', `${this.stepS} must be a positive number of seconds`);
    this.noise = { ...AB3DMOT_NOISE, ...opts.noise };
    const params = {} as Record<ObjectClass, ClassTrackingParams>;
    for (const c of CLASSES) {
      params[c] = { ...AB3DMOT_CLASS_PARAMS[c], ...opts.params?.[c] };
      checkParams(c, params[c]);
    }
    this.params = params;
    this.ignoreCovariance = opts.ignoreCovariance ?? false;
  }

  /** Frames processed so far. */
  get frameCount(): number {
    return this.frames;
  }

  reset(): void {
    this.tracks = [];
    this.nextId = 1;
    this.frames = 0;
    this.lastTimeS = undefined;
  }

  /** One frame of fused detections (AB3DMOT's track()). Call it for every frame, empty ones included. */
  update(timeS: number, detections: readonly TrackInput[]): Track[] {
    return this.updateMultiSensor(timeS, [{ source: 'fused', detections }]);
  }

  /** One frame of per-agent detection sets, associated and applied in the order given (DMSTrack). */
  updateMultiSensor(timeS: number, sets: readonly DetectionSet[]): Track[] {
    if (!Number.isFinite(timeS)) throw new TrackingInputError('timeS', `${timeS} is not finite`);
    if (this.lastTimeS !== undefined && !(timeS > this.lastTimeS)) {
      throw new TrackingInputError('timeS', `${timeS} s does not come after the previous frame's ${this.lastTimeS} s`);
    }
    for (const set of sets) {
      set.detections.forEach((d, i) => {
        const b = d.box;
        if (![b.x, b.y, b.z, b.yaw, b.l, b.w, b.h, d.score].every(Number.isFinite) || !(b.l > 0 && b.w > 0 && b.h > 0)) {
          throw new TrackingInputError(`${set.source}.detections[${i}]`, `box ${JSON.stringify(b)} score ${d.score}: needs finite values and positive sizes`);
        }
        if (d.cls !== undefined && !CLASSES.includes(d.cls)) throw new TrackingInputError(`${set.source}.detections[${i}].cls`, `'${d.cls}' is not a class`);
      });
    }
    const dt = this.lastTimeS === undefined ? 1 : (timeS - this.lastTimeS) / this.stepS;
    this.lastTimeS = timeS;
    this.frames++;

    for (const t of this.tracks) {
      t.kf.predict(dt);
      t.timeSinceUpdate++;
      t.age++;
    }
    for (const set of sets) {
      for (const cls of CLASSES) this.associateClass(set.detections, cls);
    }

    const out: Track[] = [];
    const kept: LiveTrack[] = [];
    for (const t of this.tracks) {
      const p = this.params[t.cls];
      if (t.timeSinceUpdate < p.maxAge && (t.hits >= p.minHits || this.frames <= p.minHits)) out.push(this.report(t));
      if (t.timeSinceUpdate < p.maxAge) kept.push(t);
    }
    this.tracks = kept;
    return out;
  }

  private associateClass(detections: readonly TrackInput[], cls: ObjectClass): void {
    const p = this.params[cls];
    const dets: number[] = [];
    detections.forEach((d, i) => {
      if ((d.cls ?? 'vehicle') === cls) dets.push(i);
    });
    const trks = this.tracks.filter((t) => t.cls === cls);
    const nd = dets.length, nt = trks.length;
    if (nd === 0) return;
    if (this.cost.length < nd * nt) {
      this.cost = new Float64Array(nd * nt * 2);
      this.aff = new Float64Array(nd * nt * 2);
    }
    if (this.rowToCol.length < nd) this.rowToCol = new Int32Array(nd * 2);
    const rowToCol = this.rowToCol;
    rowToCol.fill(-1, 0, nd);
    if (nt > 0) {
      const boxes = trks.map((t) => t.kf.box());
      for (let i = 0; i < nd; i++) {
        const db = detections[dets[i]].box;
        for (let j = 0; j < nt; j++) {
          const a = affinity(p.metric, db, boxes[j]);
          this.aff[i * nt + j] = a;
          this.cost[i * nt + j] = -a;
        }
      }
      if (p.assignment === 'hungarian') this.solver.solve(this.cost, nd, nt, rowToCol);
      else greedyAssignment(this.cost, nd, nt, rowToCol);
    }
    for (let i = 0; i < nd; i++) {
      const d = detections[dets[i]];
      const j = rowToCol[i];
      const cov = this.ignoreCovariance ? undefined : d.covariance;
      if (j >= 0 && this.aff[i * nt + j] >= p.threshold) {
        const t = trks[j];
        const z = this.z;
        z[0] = d.box.x; z[1] = d.box.y; z[2] = d.box.z; z[3] = d.box.yaw; z[4] = d.box.l; z[5] = d.box.w; z[6] = d.box.h;
        t.kf.update(z, cov);
        t.timeSinceUpdate = 0;
        t.hits++;
        t.score = d.score;
      } else {
        this.tracks.push({
          id: this.nextId++,
          cls,
          kf: new BoxKalmanFilter(this.motion, d.box, this.noise, cov),
          hits: 1,
          timeSinceUpdate: 0,
          age: 0,
          score: d.score,
        });
      }
    }
  }

  private report(t: LiveTrack): Track {
    const s = this.stepS;
    const v = t.kf.velocity();
    const vv = t.kf.velocityVariance();
    const P = t.kf.P;
    return {
      id: t.id,
      cls: t.cls,
      box: t.kf.box(),
      velocity: { x: v.x / s, y: v.y / s, z: v.z / s },
      yawRate: this.motion === 'ctrv' ? t.kf.x[8] / s : 0,
      variance: {
        x: P[0], y: P[11], z: P[22], yaw: P[33], l: P[44], w: P[55], h: P[66],
        vx: vv.x / (s * s), vy: vv.y / (s * s), vz: vv.z / (s * s),
      },
      age: t.age,
      hits: t.hits,
      timeSinceUpdate: t.timeSinceUpdate,
      score: t.score,
    };
  }
}

/**
 * Measurement covariance from a 95 % position confidence (late fusion's PerceivedObject half-widths): σ = c / 1.96
 * per axis; an axis at 0 (unavailable, the proto's convention) and yaw/size take `fallback` (AB3DMOT's R, 1).
 */
export function covarianceFromPositionConfidence(
  conf: { x: number; y: number; z: number },
  fallback: readonly number[] = AB3DMOT_NOISE.measurementVariance,
): Float64Array {
  const out = Float64Array.from(fallback);
  const axes = [conf.x, conf.y, conf.z];
  for (let i = 0; i < 3; i++) {
    const c = axes[i];
    if (!(Number.isFinite(c) && c >= 0)) throw new TrackingInputError('positionConfidence', `${JSON.stringify(conf)}: half-widths must be finite and ≥ 0`);
    if (c > 0) out[i] = (c / 1.96) ** 2;
  }
  return out;
}
