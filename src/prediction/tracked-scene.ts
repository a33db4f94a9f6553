// One step of what a fusion node does after detection, shared by the MQTT fusion node and the in-process sweep:
// track the ego-frame detections in the world frame (the ego moves under them), keep each live track's recent
// boxes, and predict every track from its history moved into the current ego frame, so tracks and trajectories
// come out in the frame of this capture.
import type { Detection } from '../eval/index.ts';
import { type Box7, type Mat4, invertRigid, transformBox } from '../geometry/index.ts';
import type { MultiObjectTracker, Track } from '../tracking/index.ts';
import type { TrajectoryPredictor } from './predictors.ts';
import { type WireTrajectory, predictTracks } from './track-predictions.ts';

/** History kept per track: the learned predictor's 1 s at 10 Hz. */
export const TRACK_HISTORY_FRAMES = 10;

export interface TrackedObject {
  /** The tracker's track, world frame. */
  track: Track;
  /** Its box in the ego frame of this step. */
  box: Box7;
  /** Its velocity rotated into the ego frame, m/s. */
  velocity: { x: number; y: number };
  /** Most probable first; empty without a predictor. */
  trajectories: WireTrajectory[];
}

export interface TrackedSceneTimings {
  track: number;
  predict: number;
}

export class TrackedScene {
  private readonly histories = new Map<number, Box7[]>();

  constructor(
    readonly tracker: MultiObjectTracker,
    readonly predictor: TrajectoryPredictor | undefined,
    readonly historyFrames = TRACK_HISTORY_FRAMES,
  ) {}

  /** Tracks `detections` (ego frame at `timeS`) given the ego's pose, then predicts each live track. */
  async step(timeS: number, detections: readonly Detection[], egoToWorld: Mat4): Promise<{ objects: TrackedObject[]; timings: TrackedSceneTimings }> {
    let t = performance.now();
    const worldToEgo = invertRigid(egoToWorld);
    const live = this.tracker.update(timeS, detections.map((d) => ({ box: transformBox(egoToWorld, d.box), score: d.score, cls: d.cls })));
    const seen = new Set<number>();
    for (const track of live) {
      seen.add(track.id);
      const h = this.histories.get(track.id) ?? [];
      h.push(track.box);
      if (h.length > this.historyFrames) h.shift();
      this.histories.set(track.id, h);
    }
    for (const id of this.histories.keys()) if (!seen.has(id)) this.histories.delete(id);
    const r = worldToEgo;
    const objects: TrackedObject[] = live.map((track) => ({
      track,
      box: transformBox(worldToEgo, track.box),
      velocity: {
        x: r[0] * track.velocity.x + r[1] * track.velocity.y + r[2] * track.velocity.z,
        y: r[4] * track.velocity.x + r[5] * track.velocity.y + r[6] * track.velocity.z,
      },
      trajectories: [],
    }));
    const trackMs = performance.now() - t;
    t = performance.now();
    if (this.predictor && objects.length > 0) {
      const predicted = await predictTracks(
        live.map((track) => ({ trackId: track.id, cls: track.cls, boxes: this.histories.get(track.id)!.map((b) => transformBox(worldToEgo, b)) })),
        this.predictor,
      );
      const byId = new Map(predicted.map((p) => [p.trackId, p.trajectories]));
      for (const o of objects) o.trajectories = byId.get(o.track.id) ?? [];
    }
    return { objects, timings: { track: trackMs, predict: performance.now() - t } };
  }
}
