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

/** Predicts every track (one batched call); tracks without boxes are left out. */
export async function predictTracks(tracks: readonly TrackBoxHistory[], predictor: TrajectoryPredictor): Promise<TrackPrediction[]> {
  const kept = tracks.filter((t) => t.boxes.length > 0);
  const histories = kept.map((t) => {
    const states = new Float64Array(t.boxes.length * HISTORY_STRIDE);
    t.boxes.forEach((b, i) => {
      states[i * HISTORY_STRIDE] = b.x;
      states[i * HISTORY_STRIDE + 1] = b.y;
      states[i * HISTORY_STRIDE + 2] = b.yaw;
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
