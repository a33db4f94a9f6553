// The one shape every dataset reader returns, whatever the layout on disk.
// Everything here is already converted to the project's conventions (DESIGN.md): right-handed frames,
// metres, radians, nanosecond timestamps. Conversions from a dataset's own conventions happen in its reader.
import type { Box7, Mat4 } from '../geometry/index.ts';

export type AgentKind = 'vehicle' | 'rsu';
export type DatasetFormat = 'opv2v' | 'v2v4real' | 'dair-v2x-c';

export interface AgentInfo {
  id: string;
  kind: AgentKind;
  /** How many frames of the sequence this agent has data for. */
  frames: number;
}

export type ObjectClass = 'vehicle' | 'pedestrian' | 'cyclist' | 'other';

export interface GroundTruthBox {
  /** Stable object id within the sequence (dataset ids: CARLA actor id, DAIR track id when present). */
  id: string;
  cls: ObjectClass;
  /** The dataset's own class name (e.g. 'Car', 'Van', 'Pedestrian'). */
  rawClass: string;
  /** 7-DoF box in the WORLD frame (right-handed). */
  box: Box7;
  /** Speed in m/s when the dataset gives it. */
  speed?: number;
}

export interface CameraFrame {
  name: string;
  width?: number;
  height?: number;
  /** 3x3 row-major intrinsic matrix. */
  intrinsic: Float64Array;
  /** OpenCV distortion coefficients (k1, k2, p1, p2, k3) when the dataset gives them; images are not undistorted. */
  distortion?: number[];
  /**
   * Camera (OpenCV optical frame: x right, y down, z forward) → agent LiDAR frame, 4x4 row-major. Usually rigid,
   * but not always (DAIR's infrastructure calibration is a general affine): invert it with invertAffine.
   */
  cameraToLidar: Mat4;
  /** Absolute path to the image file. */
  path: string;
}

export interface AgentFrame {
  agentId: string;
  kind: AgentKind;
  /** Capture time in nanoseconds (bigint keeps full precision). */
  timestampNs: bigint;
  /** LiDAR frame → world, 4x4 row-major, right-handed. */
  lidarToWorld: Mat4;
  /** A GPS-grade (noisy) pose when the dataset has one, else undefined. */
  noisyLidarToWorld?: Mat4;
  /** Own speed in m/s when known. */
  speed?: number;
  /** Absolute path of the point cloud. */
  lidarPath: string;
  /** Points as x, y, z, intensity (intensity 0..1) in the agent's LiDAR frame; read lazily. */
  loadPoints(): Promise<Float32Array>;
  cameras: CameraFrame[];
  /** Ground truth this agent's record lists, in the world frame. */
  boxes: GroundTruthBox[];
}

export interface CooperativeFrame {
  /** The frame's id as the dataset names it (file stem of the ego's frame). */
  frameId: string;
  index: number;
  timestampNs: bigint;
  agents: AgentFrame[];
  /** Cooperative ground truth when the dataset provides one (DAIR label_world), world frame. */
  cooperativeBoxes?: GroundTruthBox[];
}

export interface CooperativeSequence {
  format: DatasetFormat;
  /** Scenario name (folder name for OPV2V, 'cooperative' for DAIR). */
  name: string;
  root: string;
  agents: AgentInfo[];
  frameCount: number;
  frameIds: string[];
  /** Reads frame i's metadata (yaml/json); point clouds stay on disk until loadPoints(). */
  frame(index: number): Promise<CooperativeFrame>;
  frames(): AsyncIterable<CooperativeFrame>;
}

export interface Dataset {
  format: DatasetFormat;
  root: string;
  scenarios: CooperativeSequence[];
  /** Problems tolerated with skipMissing (each names the path and what is missing). */
  warnings: string[];
}

export interface OpenOptions {
  /** Drop frames whose files are absent instead of failing (each dropped frame becomes a warning). */
  skipMissing?: boolean;
}
