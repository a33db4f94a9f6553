// Which sensors each agent of a frame encodes with, and the encoding itself: LiDAR (pillars → backbone), camera
// (camera-encoder.ts), or both, combined as the element-wise max of the two BEV maps. Both encoders produce
// non-negative features in the same grid and feature space (the camera encoder is trained to match the LiDAR
// backbone's features under the same detection head), so max keeps whatever either sensor is sure of, as max
// fusion does across agents; the manifest states it (camera.lidarFusion = 'max').
//
// Fleet plans (detect --modality):
//   lidar   every agent: LiDAR.
//   camera  every vehicle: cameras only. Roadside units are left out: the camera model was trained on roof cameras
//           (its pillar heights are relative to a vehicle LiDAR about 1.9 m up), not on pole-mounted ones.
//   both    vehicles: LiDAR + cameras; roadside units: LiDAR.
//   mixed   the ego and roadside units: LiDAR; the other vehicles are camera-only when they are at an odd position
//           (2nd, 4th, …) among the frame's vehicles in the dataset's order, or when listed in cameraOnly; the rest
//           LiDAR. dropCameraOnly leaves the camera-only agents out entirely: the same fleet without them, the
//           baseline that says what they add.

import { performance } from 'node:perf_hooks';
import type { AgentFrame } from '../datasets/index.ts';
import { CameraEncoder, type CameraStageTimings } from './camera-encoder.ts';
import { featureShape } from './grid.ts';
import { type LidarEncoder, PerceptionInputError, type StageTimings } from './runtime.ts';

export type SensorModality = 'lidar' | 'camera' | 'both';
export const FLEET_MODALITIES = ['lidar', 'camera', 'both', 'mixed'] as const;
export type FleetModality = (typeof FLEET_MODALITIES)[number];

export interface FleetPlanOptions {
  modality: FleetModality;
  /** mixed: the camera-only agents by id, instead of the odd-position rule. */
  cameraOnly?: readonly string[];
  /** mixed: leave the camera-only agents out. */
  dropCameraOnly?: boolean;
}

/**
 * The sensors each agent of a frame uses, by agent id; null for an agent left out. `agents` in the dataset's order
 * (a CooperativeFrame's agents), the ego among them.
 */
export function planFleet(agents: readonly Pick<AgentFrame, 'agentId' | 'kind'>[], egoId: string, opts: FleetPlanOptions): Map<string, SensorModality | null> {
  const plan = new Map<string, SensorModality | null>();
  let vehicleIndex = 0;
  for (const a of agents) {
    const isVehicle = a.kind === 'vehicle';
    const position = isVehicle ? vehicleIndex++ : -1;
    let m: SensorModality | null;
    switch (opts.modality) {
      case 'lidar':
        m = 'lidar';
        break;
      case 'camera':
        m = isVehicle ? 'camera' : null;
        break;
      case 'both':
        m = isVehicle ? 'both' : 'lidar';
        break;
      case 'mixed': {
        const cameraOnly =
          a.agentId !== egoId && isVehicle && (opts.cameraOnly ? opts.cameraOnly.includes(a.agentId) : position % 2 === 1);
        m = cameraOnly ? (opts.dropCameraOnly ? null : 'camera') : 'lidar';
        break;
      }
    }
    plan.set(a.agentId, m);
  }
  return plan;
}

export interface AgentEncoding {
  /** BEV features [C, H, W] (the `out` given). */
  features: Float32Array;
  modality: SensorModality;
  timings: StageTimings & CameraStageTimings;
  /** Occupied cells the LiDAR encoder could not give a pillar (0 for camera only). */
  droppedPillars: number;
}

/** One agent frame → BEV features with the sensors its plan names. */
export class AgentSensorEncoder {
  private readonly cameraFeatures: Float32Array;

  constructor(readonly lidar: LidarEncoder, readonly camera: CameraEncoder | undefined) {
    const [C, H, W] = featureShape(lidar.grid);
    if (camera && camera.featureShape.join(',') !== [C, H, W].join(',')) {
      throw new PerceptionInputError('camera', `[${camera.featureShape.join(', ')}]`, `camera features must have the LiDAR features' shape [${C}, ${H}, ${W}]`);
    }
    this.cameraFeatures = new Float32Array(camera ? C * H * W : 0);
  }

  async encode(agent: AgentFrame, modality: SensorModality, out: Float32Array): Promise<AgentEncoding> {
    if (modality !== 'lidar' && !this.camera) {
      throw new PerceptionInputError('modality', modality, 'needs the camera encoder (a manifest with camera_backbone and camera_lift)');
    }
    if (modality === 'camera') {
      const cam = await this.camera!.encode(agent.cameras, { out, agentId: agent.agentId });
      return { features: out, modality, timings: cam.timings, droppedPillars: 0 };
    }
    const enc = await this.lidar.encode(await agent.loadPoints(), { out });
    if (modality === 'lidar') return { features: out, modality, timings: enc.timings, droppedPillars: enc.pillars.droppedPillars };
    const cam = await this.camera!.encode(agent.cameras, { out: this.cameraFeatures, agentId: agent.agentId });
    const t = performance.now();
    const c = this.cameraFeatures;
    for (let i = 0; i < out.length; i++) if (c[i] > out[i]) out[i] = c[i];
    return {
      features: out,
      modality,
      timings: { ...enc.timings, ...cam.timings, sensorFusion: performance.now() - t },
      droppedPillars: enc.pillars.droppedPillars,
    };
  }
}
