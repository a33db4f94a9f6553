// Running the tracker over a sequence of per-frame detections and scoring it against ground truth with stable ids:
// what `v2xfuse run` / `detect` / `track` report beside AP.
//
// Frames. Detectors report boxes in the ego LiDAR frame, which moves with the ego; a tracker must predict in a fixed
// frame (AB3DMOT compensates ego motion with the KITTI oxts for the same reason). With `egoToWorld` a frame's
// detections (their covariance rotated with them) and ground truth are moved into the world frame through it; the
// tracks come back in the world frame. Overlaps are invariant under the rigid move, so the scores are those of the
// ego frame. Use the pose the fusion node knows (the noisy one when the run uses noisy poses).
import type { ObjectClass } from '../datasets/index.ts';
import { type Box7, type Mat4, transformBox, yawOf } from '../geometry/index.ts';
import { type MotEvaluationOptions, type MotFrame, type MotMetrics, evaluateMot } from './metrics.ts';
import { type DetectionSet, MultiObjectTracker, type Track, type TrackInput, type TrackerOptions, TrackingInputError } from './tracker.ts';
import { measurementCovariance } from './kalman.ts';

export interface TrackingFrame {
  /** Capture time in seconds (any origin, increasing). */
  timeS: number;
  /** Fused detections, or per-agent sets for the multi-sensor (DMSTrack) update. */
  detections: readonly TrackInput[] | readonly DetectionSet[];
  groundTruth: readonly { id: string | number; box: Box7; cls: ObjectClass }[];
  /** When given, detections and ground truth are in this frame's ego frame and tracking runs in the world frame. */
  egoToWorld?: Mat4;
}

export interface TrackingEvaluationOptions extends TrackerOptions {
  /** Classes scored, each on its own (AB3DMOT evaluates per category). Default ['vehicle']. */
  classes?: readonly ObjectClass[];
  /** Overlap measure and threshold of a match (default BEV IoU ≥ 0.25). */
  overlap?: MotEvaluationOptions['overlap'];
  threshold?: number;
  /** Keep the reported tracks of every frame in the result. Default false. */
  keepTracks?: boolean;
}

export interface TrackingEvaluation {
  /** Per scored class. */
  metrics: Partial<Record<ObjectClass, MotMetrics>>;
  frames: number;
  /** Reported tracks per frame (world frame when egoToWorld was given), when keepTracks. */
  tracks?: Track[][];
}

function isSets(d: TrackingFrame['detections']): d is readonly DetectionSet[] {
  return d.length > 0 && 'detections' in (d[0] as object);
}

const cov49 = new Float64Array(49);

/** A detection moved by a rigid transform, its covariance's x-y block rotated with it. */
function moveInput(m: Mat4, d: TrackInput): TrackInput {
  const box = transformBox(m, d.box);
  if (!d.covariance) return { ...d, box };
  const c = measurementCovariance(d.covariance, cov49);
  const yaw = yawOf(m), co = Math.cos(yaw), si = Math.sin(yaw);
  // R' = J R Jᵀ with J the rotation on (x, y) and identity elsewhere.
  const out = new Float64Array(49);
  const J = (i: number, k: number): number => {
    if (i < 2 && k < 2) return i === k ? co : i === 0 ? -si : si;
    return i === k ? 1 : 0;
  };
  for (let i = 0; i < 7; i++) {
    for (let j = 0; j < 7; j++) {
      let s = 0;
      for (let a = 0; a < 7; a++) {
        const jia = J(i, a);
        if (jia === 0) continue;
        for (let b = 0; b < 7; b++) {
          const jjb = J(j, b);
          if (jjb !== 0) s += jia * c[a * 7 + b] * jjb;
        }
      }
      out[i * 7 + j] = s;
    }
  }
  return { ...d, box, covariance: out };
}

/**
 * Tracks every frame in order with a fresh MultiObjectTracker and scores the reported tracks with AB3DMOT's
 * evaluation (CLEAR MOT, AMOTA/AMOTP/sAMOTA, IDF1), per class.
 */
export function evaluateTracking(frames: readonly TrackingFrame[], opts: TrackingEvaluationOptions = {}): TrackingEvaluation {
  const tracker = new MultiObjectTracker(opts);
  const motFrames: MotFrame[] = [];
  const kept: Track[][] = [];
  frames.forEach((f, k) => {
    if (f.egoToWorld && f.egoToWorld.length !== 16) throw new TrackingInputError(`frames[${k}].egoToWorld`, 'must be a 4×4 row-major matrix (16 values)');
    const m = f.egoToWorld;
    let tracks: Track[];
    if (isSets(f.detections)) {
      const sets = m ? f.detections.map((s) => ({ source: s.source, detections: s.detections.map((d) => moveInput(m, d)) })) : f.detections;
      tracks = tracker.updateMultiSensor(f.timeS, sets);
    } else {
      const dets = f.detections as readonly TrackInput[];
      tracks = tracker.update(f.timeS, m ? dets.map((d) => moveInput(m, d)) : dets);
    }
    if (opts.keepTracks) kept.push(tracks);
    motFrames.push({
      groundTruth: f.groundTruth.map((g) => ({ id: g.id, cls: g.cls, box: m ? transformBox(m, g.box) : g.box })),
      tracks: tracks.map((t) => ({ id: t.id, box: t.box, score: t.score, cls: t.cls })),
    });
  });
  const metrics: Partial<Record<ObjectClass, MotMetrics>> = {};
  for (const cls of opts.classes ?? ['vehicle']) {
    metrics[cls] = evaluateMot([motFrames], { overlap: opts.overlap, threshold: opts.threshold, cls });
  }
  return { metrics, frames: frames.length, ...(opts.keepTracks ? { tracks: kept } : {}) };
}
