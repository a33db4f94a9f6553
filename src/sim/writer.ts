// Writes simulator frames in the OPV2V layout: per agent and frame a yaml with poses, calibration and ground
// truth, a binary PCD and the camera PNGs. The simulator's world is right-handed; OPV2V's (CARLA's) is
// left-handed, so poses and boxes go through the geometry module's CARLA conversions and points have y negated,
// here and only here.

import sharp from 'sharp';
import { stringify } from 'yaml';
import { encodePcd } from '../datasets/index.ts';
import { type Mat4, box7ToCarla, matrixToCarlaPose, opticalToOpv2vCameraExtrinsic, transformPoint, wrapAngle } from '../geometry/index.ts';
import type { ActorBox } from './traffic.ts';

/** CARLA runs at 20 Hz; OPV2V keeps every second tick, so frame ids step by 2 and a tick is 50 ms. */
export const CARLA_TICK_SECONDS = 0.05;
/** Ids of the vehicles listed in an agent's yaml: those within this distance of its LiDAR (BEV). */
export const LISTING_RADIUS_M = 120;

export function frameId(tick: number): string {
  return String(tick).padStart(6, '0');
}

/** Six decimals: micrometres and micro-degrees, and never an exponent (PyYAML reads `1e-07` as a string). */
export function round6(v: number): number {
  const r = Math.round(v * 1e6) / 1e6;
  return r === 0 ? 0 : r;
}

const round6All = (a: readonly number[]): number[] => a.map(round6);

export interface CameraCalibration {
  /** camera0, camera1, ... */
  name: string;
  /** Camera body frame (x forward, y left, z up) → world: its CARLA form is the yaml `cords`. */
  bodyToWorld: Mat4;
  /** OpenCV optical frame (x right, y down, z forward) → the agent's LiDAR frame. */
  opticalToLidar: Mat4;
  /** 3x3 row-major. */
  intrinsic: Float64Array;
  width: number;
  height: number;
}

export interface AgentFrameRecord {
  lidarToWorld: Mat4;
  /** The LiDAR pose with GPS-grade noise. */
  noisyLidarToWorld: Mat4;
  /** The vehicle's own frame (ground level, geometric centre) → world; the pole base for an RSU. */
  egoToWorld: Mat4;
  /** m/s */
  speed: number;
  /** Points ahead on the route in the world frame, with the target speed (m/s). */
  plan: Array<[number, number, number]>;
  timestampSeconds: number;
  cameras: CameraCalibration[];
  /** Actors to list (other than the agent itself). */
  actors: ActorBox[];
}

/**
 * OPV2V's camera `extrinsic` is the LiDAR → camera transform in CARLA axes (UE4 camera: x forward, y right,
 * z up): in the real sample its camera0, 3 m ahead of the LiDAR, has translation (−3, 0, 0.9).
 */
export function opv2vExtrinsic(opticalToLidar: Mat4): number[][] {
  return opticalToOpv2vCameraExtrinsic(opticalToLidar).map(round6All);
}

function cameraEntry(cam: CameraCalibration) {
  const K = cam.intrinsic;
  return {
    cords: round6All(matrixToCarlaPose(cam.bodyToWorld)),
    extrinsic: opv2vExtrinsic(cam.opticalToLidar),
    intrinsic: [[K[0], K[1], K[2]], [K[3], K[4], K[5]], [K[6], K[7], K[8]]].map(round6All),
  };
}

function actorEntry(a: ActorBox) {
  const c = box7ToCarla({ x: a.x, y: a.y, z: a.z, l: a.l, w: a.w, h: a.h, yaw: wrapAngle(a.yaw) });
  // As in OPV2V, `location` is on the ground under the actor and `center` lifts the box to its middle.
  const entry: Record<string, unknown> = {
    angle: round6All(c.angle),
    center: [0, 0, round6(a.z)],
  };
  if (a.cls === 'pedestrian') entry.class = 'pedestrian';
  entry.extent = round6All(c.extent);
  entry.location = round6All([c.location[0], c.location[1], c.location[2] - a.z]);
  entry.speed = round6(a.speed * 3.6);
  return entry;
}

/** The per-frame yaml of one agent, keys in OPV2V's (sorted) order plus `noisy_lidar_pose` and `timestamp`. */
export function frameYaml(rec: AgentFrameRecord): string {
  const doc: Record<string, unknown> = {};
  for (const cam of rec.cameras) doc[cam.name] = cameraEntry(cam);
  const ego = round6All(matrixToCarlaPose(rec.egoToWorld));
  doc.ego_speed = round6(rec.speed * 3.6);
  doc.lidar_pose = round6All(matrixToCarlaPose(rec.lidarToWorld));
  doc.noisy_lidar_pose = round6All(matrixToCarlaPose(rec.noisyLidarToWorld));
  doc.plan_trajectory = rec.plan.map(([x, y, v]) => [round6(x), round6(-y), round6(v * 3.6)]);
  // A localisation estimate on flat ground: no roll or pitch, as OPV2V's predicted_ego_pos.
  doc.predicted_ego_pos = [ego[0], ego[1], ego[2], 0, ego[4], 0];
  doc.timestamp = round6(rec.timestampSeconds);
  doc.true_ego_pos = ego;
  // Integer keys, as OPV2V's CARLA actor ids.
  const vehicles = new Map<number, unknown>();
  for (const a of rec.actors) vehicles.set(a.id, actorEntry(a));
  doc.vehicles = vehicles;
  return stringify(doc, { indentSeq: false, lineWidth: 0 });
}

/** Actors within LISTING_RADIUS_M of the LiDAR, without the agent itself, by id. */
export function actorsNear(actors: readonly ActorBox[], lidarToWorld: Mat4, selfId: number): ActorBox[] {
  const [lx, ly] = transformPoint(lidarToWorld, 0, 0, 0);
  const r2 = LISTING_RADIUS_M * LISTING_RADIUS_M;
  return actors.filter((a) => a.id !== selfId && (a.x - lx) ** 2 + (a.y - ly) ** 2 <= r2);
}

/**
 * A LiDAR scan (sensor frame, right-handed, x y z intensity) as OPV2V stores it: binary PCD with the intensity
 * packed into the rgb field, points in CARLA's left-handed LiDAR frame (y negated). Mutates `points` (the y
 * values) — the caller's scan buffer is about to be reused anyway.
 */
export function lidarScanToPcd(points: Float32Array, count: number): Uint8Array {
  const xyzi = points.subarray(0, count * 4);
  for (let i = 1; i < xyzi.length; i += 4) xyzi[i] = -xyzi[i];
  return encodePcd(xyzi, { data: 'binary', intensity: 'rgb' });
}

/** PNG of an RGB image; sharp's output depends only on the pixels and the settings. */
export async function encodePng(rgb: Uint8Array, width: number, height: number): Promise<Buffer> {
  return sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer();
}
