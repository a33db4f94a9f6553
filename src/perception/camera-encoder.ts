// The camera encoder: an agent's calibrated camera images → BEV features in the LiDAR encoder's grid and feature
// space (models/README.md, "Camera encoder"), so camera-only agents are fused, warped and detected like LiDAR ones.
//
//   images (camera-image.ts: sharp, resize to the manifest's size, normalise) → camera_backbone.onnx → image features
//   calibration → computeSamplingGrid (camera-lift.ts) → sampling_grid, valid
//   image features + sampling_grid + valid → camera_lift.onnx (grid_sample at each BEV cell's pillar points, mean
//   over the cameras that see them, a small BEV network) → bev_features [1, C, H, W]
//
// The sampling grid depends only on the calibration, which a mounted camera keeps from frame to frame: it is cached
// by the calibration's numbers, so a sequence computes it once per agent.

import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import type { CameraFrame } from '../datasets/index.ts';
import { type CameraSamplingGrid, computeSamplingGrid } from './camera-lift.ts';
import { completeImageSizes, loadCameraBatch } from './camera-image.ts';
import { type BevGrid, featureShape } from './grid.ts';
import type { CameraModelSettings, PerceptionManifest } from './manifest.ts';
import {
  type ExecutionProviderName,
  type ModelSession,
  type SessionLoadOptions,
  type StageTimings,
  ModelContractError,
  ModelFileError,
  PerceptionInputError,
  createSession,
  expectShape,
} from './runtime.ts';

/** The camera model's input as shipped: tensor size and the heights (LiDAR frame, m) sampled in every pillar. */
export const DEFAULT_CAMERA_INPUT: Readonly<{ width: number; height: number; heights: readonly number[] }> = Object.freeze({
  width: 256,
  height: 192,
  heights: Object.freeze([-1.7, -1.1, -0.5, 0.1]),
});

/** Milliseconds per stage of one camera encode: images (sharp), sampling grid (≈0 when cached), the two models. */
export type CameraStageTimings = Pick<StageTimings, 'cameraImages' | 'cameraGrid' | 'cameraBackbone' | 'cameraLift'>;

export interface CameraEncoding {
  /** BEV features [C, H, W]: `out` when given, else the encoder's own buffer (overwritten by the next call). */
  features: Float32Array;
  /** Cameras used. */
  cameras: number;
  /** Whether the sampling grid came from the cache. */
  gridCached: boolean;
  timings: CameraStageTimings;
}

/** An agent whose frame has no camera, asked for camera features: the data cannot give what was asked. */
export class NoCameraError extends Error {
  readonly userFacing = true;
  constructor(readonly agentId: string) {
    super(`agent ${agentId} has no camera in this frame: camera features need at least one calibrated image`);
    this.name = new.target.name;
  }
}

/** Key of a calibration: every number the sampling grid depends on. */
function calibrationKey(cameras: readonly CameraFrame[]): string {
  return cameras.map((c) => `${c.width}x${c.height}|${Array.from(c.intrinsic).join(',')}|${Array.from(c.cameraToLidar).join(',')}`).join(';');
}

/** Sampling grids kept per calibration; a fleet has few distinct rigs. */
const GRID_CACHE_SIZE = 8;

export class CameraEncoder {
  readonly grid: BevGrid;
  readonly settings: CameraModelSettings;
  readonly featureShape: readonly [number, number, number];
  readonly provider: ExecutionProviderName;
  /** Image feature channels and size (camera_backbone's output). */
  private readonly imageFeatureShape: readonly [number, number, number];
  private readonly features: Float32Array;
  private readonly gridCache = new Map<string, CameraSamplingGrid>();
  private images = new Float32Array(0);
  private imageFeatures = new Float32Array(0);

  constructor(grid: BevGrid, settings: CameraModelSettings, readonly backbone: ModelSession, readonly lift: ModelSession) {
    this.grid = { ...grid };
    this.settings = { ...settings, heights: [...settings.heights] };
    this.provider = backbone.provider;
    const [C, H, W] = featureShape(grid);
    const Z = settings.heights.length;
    expectShape(backbone, 'images', 'input', [null, 3, settings.height, settings.width]);
    const out = expectShape(backbone, 'image_features', 'output', [null, null, null, null]);
    const [cf, ih, iw] = [out[1], out[2], out[3]];
    if (typeof cf !== 'number' || typeof ih !== 'number' || typeof iw !== 'number') {
      throw new ModelContractError(backbone.path, "output 'image_features'", 'channels, height and width must be fixed');
    }
    expectShape(lift, 'image_features', 'input', [null, cf, ih, iw]);
    expectShape(lift, 'sampling_grid', 'input', [null, Z, H * W, 2]);
    expectShape(lift, 'valid', 'input', [null, Z, H * W]);
    expectShape(lift, 'bev_features', 'output', [1, C, H, W]);
    this.imageFeatureShape = [cf, ih, iw];
    this.featureShape = [C, H, W];
    this.features = new Float32Array(C * H * W);
  }

  /** Loads camera_backbone and camera_lift named by a manifest (checking their sha256) with its `camera` settings. */
  static async load(manifest: PerceptionManifest, opts: Omit<SessionLoadOptions, 'sha256'> = {}): Promise<CameraEncoder> {
    const b = manifest.models.camera_backbone;
    const l = manifest.models.camera_lift;
    if (!b || !l || !manifest.camera) {
      throw new ModelFileError(manifest.source, 'the manifest ships no camera encoder (models.camera_backbone, models.camera_lift and camera)');
    }
    const backbone = await createSession(b.path, { ...opts, sha256: b.sha256 });
    try {
      const lift = await createSession(l.path, { ...opts, device: backbone.provider, sha256: l.sha256 });
      try {
        return new CameraEncoder(manifest.grid, manifest.camera, backbone, lift);
      } catch (err) {
        await lift.session.release();
        throw err;
      }
    } catch (err) {
      await backbone.session.release();
      throw err;
    }
  }

  /**
   * The sampling grid of a camera rig (computeSamplingGrid with the manifest's heights and image size), from the
   * cache when the same calibration was seen before. Cameras must state their image size (completeImageSizes).
   */
  samplingGrid(cameras: readonly CameraFrame[]): { lift: CameraSamplingGrid; cached: boolean } {
    const key = calibrationKey(cameras);
    const known = this.gridCache.get(key);
    if (known) return { lift: known, cached: true };
    const { width, height, heights, minDepth } = this.settings;
    const lift = computeSamplingGrid(cameras, this.grid, { heights, imageWidth: width, imageHeight: height, minDepth });
    if (this.gridCache.size >= GRID_CACHE_SIZE) this.gridCache.delete(this.gridCache.keys().next().value!);
    this.gridCache.set(key, lift);
    return { lift, cached: false };
  }

  /** Encodes one agent frame's cameras (in the dataset's order). `agentId` names the agent in errors. */
  async encode(cameras: readonly CameraFrame[], opts: { out?: Float32Array; agentId?: string } = {}): Promise<CameraEncoding> {
    if (cameras.length === 0) throw new NoCameraError(opts.agentId ?? '?');
    const { width, height, mean, std } = this.settings;
    let t = performance.now();
    const sized = await completeImageSizes(cameras);
    const n = sized.length;
    const perImage = 3 * width * height;
    if (this.images.length < n * perImage) this.images = new Float32Array(n * perImage);
    const images = this.images.subarray(0, n * perImage);
    await loadCameraBatch(sized, { width, height, mean, std }, images);
    const cameraImages = performance.now() - t;

    t = performance.now();
    const { lift, cached } = this.samplingGrid(sized);
    const cameraGrid = performance.now() - t;

    const result = await this.encodeTensors(images, n, lift, opts.out);
    return { ...result, cameras: n, gridCached: cached, timings: { cameraImages, cameraGrid, ...result.timings } };
  }

  /**
   * The models alone: `images` [N, 3, height, width] (normalised, loadCameraBatch's layout) and the rig's
   * sampling grid → BEV features [C, H, W].
   */
  async encodeTensors(images: Float32Array, cameraCount: number, lift: CameraSamplingGrid, out?: Float32Array): Promise<{ features: Float32Array; timings: CameraStageTimings }> {
    const { width, height } = this.settings;
    const [C, H, W] = this.featureShape;
    const Z = this.settings.heights.length;
    const n = cameraCount;
    if (images.length !== n * 3 * width * height) {
      throw new PerceptionInputError('images.length', images.length, `must be N × 3 × ${height} × ${width} for N = ${n}`);
    }
    if (lift.gridDims[0] !== n || lift.gridDims[1] !== Z || lift.gridDims[2] !== H * W) {
      throw new PerceptionInputError('samplingGrid', `[${lift.gridDims.join(', ')}]`, `must be [${n}, ${Z}, ${H * W}, 2]`);
    }
    if (out && out.length !== C * H * W) throw new PerceptionInputError('out.length', out.length, `must be C × H × W = ${C} × ${H} × ${W}`);
    const [cf, ih, iw] = this.imageFeatureShape;
    if (this.imageFeatures.length < n * cf * ih * iw) this.imageFeatures = new Float32Array(n * cf * ih * iw);
    const imageFeatures = this.imageFeatures.subarray(0, n * cf * ih * iw);

    let t = performance.now();
    const featureTensor = new ort.Tensor('float32', imageFeatures, [n, cf, ih, iw]);
    await this.backbone.session.run({ images: new ort.Tensor('float32', images, [n, 3, height, width]) }, { image_features: featureTensor });
    const cameraBackbone = performance.now() - t;

    t = performance.now();
    const features = out ?? this.features;
    await this.lift.session.run(
      {
        image_features: featureTensor,
        sampling_grid: new ort.Tensor('float32', lift.grid, [n, Z, H * W, 2]),
        valid: new ort.Tensor('float32', lift.valid, [n, Z, H * W]),
      },
      { bev_features: new ort.Tensor('float32', features, [1, C, H, W]) },
    );
    const cameraLift = performance.now() - t;
    return { features, timings: { cameraBackbone, cameraLift } };
  }

  async dispose(): Promise<void> {
    await this.backbone.session.release();
    await this.lift.session.release();
  }
}
