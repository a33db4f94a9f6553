// What a fusion node calls once per frame: its tracks' recent boxes (ego frame, one per frame at the predictor's
// rate) in, per track the K trajectories in the FusionResult's shape (Trajectory { probability, waypoints {
// timeOffsetS, x, y, yaw, positionStd } }, proto/v2xfuse/v1/fusion.proto) out, in the same frame.
import type { ObjectClass } from '../datasets/index.ts';
import type { Box7 } from '../geometry/index.ts';
import type { TrajectoryPredictor } from './predictors.ts';
import { HISTORY_STRIDE, type MultiModalPrediction, WAYPOINT_STRIDE } from './types.ts';

export interface TrackBoxHistory {
  trackId: string | number;
  cls?: ObjectClass;
  /** Oldest first, the last being the current frame's box; consecutive boxes one frame (1 / rate s) apart. */
  boxes: readonly Box7[];
}

/** Field names as protobufjs gives the wire Waypoint. */
export interface WireWaypoint {
  timeOffsetS: number;
  x: number;
  y: number;
  yaw: number;
  /** 1 σ of x and y, metres; 0 = unknown. */
  positionStd: number;
}

export interface WireTrajectory {
  probability: number;
  waypoints: WireWaypoint[];
}

export interface TrackPrediction {
  trackId: string | number;
  prediction: MultiModalPrediction;
  /** The prediction in the wire shape, most probable first. */
  trajectories: WireTrajectory[];
}

/** A prediction as wire trajectories; waypoint i is (i + 1) / rateHz s after the last history step. */
export function toWireTrajectories(p: MultiModalPrediction, rateHz: number): WireTrajectory[] {
  const out: WireTrajectory[] = [];
  for (let m = 0; m < p.modes; m++) {
    const waypoints: WireWaypoint[] = [];
    for (let i = 0; i < p.steps; i++) {
      const o = (m * p.steps + i) * WAYPOINT_STRIDE;
      waypoints.push({
        timeOffsetS: (i + 1) / rateHz,
        x: p.waypoints[o],
        y: p.waypoints[o + 1],
        yaw: p.waypoints[o + 2],
        positionStd: p.positionStd ? p.positionStd[m * p.steps + i] : 0,
      });
    }
    out.push({ probability: p.probabilities[m], waypoints });
  }
  return out;
}

/** Below this displacement over the history a track counts as standing still: its headings are left alone. */
export const HEADING_MOTION_MIN_M = 1;

/**
 * A LiDAR detector's heading is often ambiguous by π (the shipped one flips about 4 in 10 vehicle boxes: a box
 * reads the same both ways round), and a predictor fed a backwards heading predicts backwards motion. For a track
 * that moved at least HEADING_MOTION_MIN_M over its history, every heading pointing against the direction of
 * travel (first to last box) is turned by π. Writes into `yaws` (one per box) and returns it.
 */
export function headingsAlongMotion(boxes: readonly Box7[], yaws = new Float64Array(boxes.length)): Float64Array {
  for (let i = 0; i < boxes.length; i++) yaws[i] = boxes[i].yaw;
  if (boxes.length < 2) return yaws;
  const dx = boxes[boxes.length - 1].x - boxes[0].x;
  const dy = boxes[boxes.length - 1].y - boxes[0].y;
  if (Math.hypot(dx, dy) < HEADING_MOTION_MIN_M) return yaws;
  const travel = Math.atan2(dy, dx);
  for (let i = 0; i < boxes.length; i++) {
    if (Math.cos(yaws[i] - travel) < 0) yaws[i] = Math.atan2(Math.sin(yaws[i] + Math.PI), Math.cos(yaws[i] + Math.PI));
  }
  return yaws;
}

/** Predicts every track (one batched call); tracks without boxes are left out. Headings are first made to agree
 * with each track's direction of travel (headingsAlongMotion). */
export async function predictTracks(tracks: readonly TrackBoxHistory[], predictor: TrajectoryPredictor): Promise<TrackPrediction[]> {
  const kept = tracks.filter((t) => t.boxes.length > 0);
  const histories = kept.map((t) => {
    const states = new Float64Array(t.boxes.length * HISTORY_STRIDE);
    const yaws = headingsAlongMotion(t.boxes);
    t.boxes.forEach((b, i) => {
      states[i * HISTORY_STRIDE] = b.x;
      states[i * HISTORY_STRIDE + 1] = b.y;
      states[i * HISTORY_STRIDE + 2] = yaws[i];
    });
    return { states, cls: t.cls };
  });
  const predictions = await predictor.predict(histories);
  return predictions.map((prediction, i) => ({
    trackId: kept[i].trackId,
    prediction,
    trajectories: toWireTrajectories(prediction, predictor.horizon.rateHz),
  }));
}
