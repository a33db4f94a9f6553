// ONNX Runtime around the perception models: sessions on CPU or CUDA, the LiDAR encoder (points → pillars → PFN →
// scatter → backbone → BEV features), attention fusion and the detection head (→ decode → NMS → detections).
//
// What onnxruntime-node (1.30) does with devices, and why createSession works the way it does:
//   - The npm package bundles the CPU execution provider. The CUDA provider (Linux x64 only, CUDA 12 + cuDNN 9)
//     is a set of extra shared libraries its install script downloads next to the binding; this project's .npmrc
//     skips that download, so `ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node` adds them.
//   - Asking for executionProviders ['cuda', 'cpu'] does not fall back when the CUDA libraries are missing:
//     InferenceSession.create throws "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared
//     library" (and ORT logs the dlopen failure to stderr). So CUDA is requested alone, and 'auto' catches the
//     failure and loads on CPU. Nodes the CUDA provider cannot run still go to CPU inside ORT.
//   - We look for the provider libraries before asking ORT, so a machine without them gets our one-line error
//     instead of ORT's log; if they are present and CUDA still fails (no GPU, driver or cuDNN missing), ORT's own
//     message is passed on.
//   - The JS API cannot report which providers a session ended up with; `provider` is what was requested and
//     succeeded.
//   - Tensors wrap typed arrays without copying (a subarray view included), and run() accepts preallocated
//     output tensors in its fetches argument, which ORT writes into: both are used to keep per-frame allocation
//     to ORT's internals.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import type { Detection } from '../eval/index.ts';
import { anchorLayout, BOX_CODE_SIZE, type AnchorLayout } from './anchors.ts';
import { DetectionDecoder } from './decode.ts';
import { featureShape, gridHeight, gridWidth, type BevGrid } from './grid.ts';
import { loadManifest, type ModelRole, type PerceptionManifest, type PostprocessSettings, type Precision, withPrecision } from './manifest.ts';
import { nmsPerClass } from './nms.ts';
import { withInputDim } from './onnx-input-dim.ts';
import { PILLAR_FEATURE_COUNT, Pillarizer, scatterToBev, scatterToBevQuantized, type CanvasQuantization, type PillarBatch } from './pillarize.ts';

export const CUDA_INSTALL_COMMAND = 'ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node';

export type DeviceOption = 'cpu' | 'cuda' | 'auto';
export type ExecutionProviderName = 'cpu' | 'cuda';
export const DEVICE_OPTIONS: readonly DeviceOption[] = ['cpu', 'cuda', 'auto'];

export type PerceptionStage =
  | 'pillarise' | 'pfn' | 'scatter' | 'backbone' | 'reduce' | 'expand' | 'fusion' | 'head' | 'decode' | 'nms'
  // camera encoder (camera-encoder.ts) and the LiDAR + camera combination of one agent (sensor-fusion.ts)
  | 'cameraImages' | 'cameraGrid' | 'cameraBackbone' | 'cameraLift' | 'sensorFusion';
/** Milliseconds per stage; each result carries the stages it ran. */
export type StageTimings = Partial<Record<PerceptionStage, number>>;

// ---- errors ---------------------------------------------------------------------------------------------------

/** The CUDA execution provider was asked for and cannot be used; the message says why and what to do. */
export class CudaUnavailableError extends Error {
  readonly userFacing = true;
  constructor(readonly reason: 'not-installed' | 'failed', readonly detail: string) {
    super(
      reason === 'not-installed'
        ? `the CUDA execution provider of ONNX Runtime is not installed (${detail}); install it with ` +
            `\`${CUDA_INSTALL_COMMAND}\` (needs an NVIDIA driver, CUDA 12 and cuDNN 9), or run on the CPU (device 'cpu')`
        : `the CUDA execution provider of ONNX Runtime failed to start: ${detail} (it needs an NVIDIA GPU and driver, ` +
            `CUDA 12 and cuDNN 9 libraries on the library path); run on the CPU with device 'cpu', or 'auto' to fall back`,
    );
    this.name = new.target.name;
  }
}

/** A model file that is missing, unreadable, not ONNX, or not the file the manifest names. */
export class ModelFileError extends Error {
  readonly userFacing = true;
  constructor(readonly modelPath: string, detail: string) {
    super(`model ${modelPath}: ${detail}`);
    this.name = new.target.name;
  }
}

/** A model whose inputs or outputs are not what the perception contract (and the manifest) say. */
export class ModelContractError extends Error {
  readonly userFacing = true;
  constructor(readonly modelPath: string, readonly tensor: string, detail: string) {
    super(`model ${modelPath}: ${tensor}: ${detail}`);
    this.name = new.target.name;
  }
}

/** A call with inputs of the wrong size or options out of range; a programming error, not the user's. */
export class PerceptionInputError extends Error {
  constructor(readonly field: string, readonly value: unknown, detail: string) {
    super(`${field} = ${String(value)}: ${detail}`);
    this.name = new.target.name;
  }
}

// ---- sessions -------------------------------------------------------------------------------------------------

export interface SessionLoadOptions {
  /** 'cpu' (default), 'cuda' (fails with CudaUnavailableError), or 'auto' (CUDA if it starts, else CPU). */
  device?: DeviceOption;
  /** ORT intra-op threads; ORT's default (one per physical core) when left out. */
  threads?: number;
  /** Expected sha256 (hex) of the file; a mismatch is refused. */
  sha256?: string;
  /** Applied to the file's bytes after the sha256 check, before ONNX Runtime loads them (e.g. withInputDim). */
  rewrite?: (model: Uint8Array) => Uint8Array;
}

export interface ModelSession {
  readonly session: ort.InferenceSession;
  /** Absolute path of the ONNX file. */
  readonly path: string;
  readonly provider: ExecutionProviderName;
  /** Set when 'auto' fell back to the CPU: one sentence saying so and why, for the caller to print. */
  readonly notice?: string;
  /** Reading, hashing and session creation, ms. */
  readonly loadMs: number;
  readonly sha256: string;
}

export interface CudaProviderStatus {
  installed: boolean;
  /** Why not, when not installed. */
  detail: string;
}

const CUDA_PROVIDER_LIBRARIES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'];

/** Whether onnxruntime-node has its CUDA provider libraries (it loads them from the folder of its binding). */
export function cudaProviderStatus(): CudaProviderStatus {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return { installed: false, detail: `onnxruntime-node ships the CUDA provider for Linux x64 only, this is ${process.platform} ${process.arch}` };
  }
  const entry = createRequire(import.meta.url).resolve('onnxruntime-node');
  // dist/index.js → bin/napi-v6/<platform>/<arch>/, where dist/binding.js loads the native binding from.
  const bindingDir = path.join(path.dirname(entry), '..', 'bin', 'napi-v6', process.platform, process.arch);
  const missing = CUDA_PROVIDER_LIBRARIES.filter((lib) => !existsSync(path.join(bindingDir, lib)));
  if (missing.length === 0) return { installed: true, detail: '' };
  return { installed: false, detail: `${missing.join(' and ')} missing in ${path.normalize(bindingDir)}` };
}

function sessionOptions(provider: ExecutionProviderName, threads: number | undefined): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    ...(threads === undefined ? {} : { intraOpNumThreads: threads }),
  };
}

function isCudaFailure(err: unknown): boolean {
  return /cuda|cudnn|cublas|provider/i.test(String((err as Error)?.message ?? err));
}

async function readModel(modelPath: string, expectedSha256: string | undefined): Promise<{ bytes: Uint8Array; sha256: string }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(modelPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelFileError(modelPath, code === 'ENOENT' ? 'no such file' : `cannot read: ${(err as Error).message}`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (expectedSha256 !== undefined && sha256 !== expectedSha256.toLowerCase()) {
    throw new ModelFileError(
      modelPath,
      `sha256 ${sha256} does not match the expected ${expectedSha256.toLowerCase()} (manifest): the file was changed, truncated or replaced; re-export or re-copy the models`,
    );
  }
  return { bytes, sha256 };
}

/**
 * Loads one ONNX model. 'cpu' is the default; 'cuda' throws CudaUnavailableError when the CUDA provider is not
 * installed or does not start; 'auto' tries CUDA and otherwise loads on CPU, with `notice` saying so.
 */
export async function createSession(modelPath: string, opts: SessionLoadOptions = {}): Promise<ModelSession> {
  const device = opts.device ?? 'cpu';
  if (!DEVICE_OPTIONS.includes(device)) throw new PerceptionInputError('device', device, `must be one of ${DEVICE_OPTIONS.join(', ')}`);
  const threads = opts.threads;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new PerceptionInputError('threads', threads, 'must be a positive integer');
  }
  const absolute = path.resolve(modelPath);
  const t0 = performance.now();
  const read = await readModel(absolute, opts.sha256);
  const sha256 = read.sha256;
  const bytes = opts.rewrite ? opts.rewrite(read.bytes) : read.bytes;

  const create = async (provider: ExecutionProviderName): Promise<ort.InferenceSession> => {
    try {
      return await ort.InferenceSession.create(bytes, sessionOptions(provider, threads));
    } catch (err) {
      if (provider === 'cuda' && isCudaFailure(err)) throw new CudaUnavailableError('failed', (err as Error).message);
      throw new ModelFileError(absolute, `ONNX Runtime cannot load it: ${(err as Error).message}`);
    }
  };
  const done = (session: ort.InferenceSession, provider: ExecutionProviderName, notice?: string): ModelSession => ({
    session,
    path: absolute,
    provider,
    ...(notice ? { notice } : {}),
    loadMs: performance.now() - t0,
    sha256,
  });

  if (device === 'cpu') return done(await create('cpu'), 'cpu');
  const cuda = cudaProviderStatus();
  if (device === 'cuda') {
    if (!cuda.installed) throw new CudaUnavailableError('not-installed', cuda.detail);
    return done(await create('cuda'), 'cuda');
  }
  if (!cuda.installed) {
    return done(await create('cpu'), 'cpu', `CUDA not available (${cuda.detail}; install with \`${CUDA_INSTALL_COMMAND}\`): running on the CPU`);
  }
  try {
    return done(await create('cuda'), 'cuda');
  } catch (err) {
    if (!(err instanceof CudaUnavailableError)) throw err;
    return done(await create('cpu'), 'cpu', `CUDA failed to start (${err.detail}): running on the CPU`);
  }
}

type TensorElementType = 'float32' | 'uint8';

/** What a model declares about one of its tensors; a ModelContractError names the ones it has when it lacks it. */
function tensorMetadata(model: ModelSession, name: string, kind: 'input' | 'output') {
  const { session } = model;
  const names = kind === 'input' ? session.inputNames : session.outputNames;
  const meta = (kind === 'input' ? session.inputMetadata : session.outputMetadata)[names.indexOf(name)];
  if (!meta) throw new ModelContractError(model.path, `${kind} '${name}'`, `missing; the model's ${kind}s are ${names.map((n) => `'${n}'`).join(', ')}`);
  return meta;
}

function tensorShape(model: ModelSession, name: string, kind: 'input' | 'output', type: TensorElementType): readonly (number | string)[] {
  const meta = tensorMetadata(model, name, kind);
  if (!meta.isTensor || meta.type !== type) {
    throw new ModelContractError(model.path, `${kind} '${name}'`, `must be a ${type} tensor, is ${meta.isTensor ? meta.type : 'not a tensor'}`);
  }
  return meta.shape;
}

/**
 * Checks a tensor's declared shape against `expected` (null: any size, e.g. a dynamic axis). Symbolic (named)
 * dimensions in the model are accepted for any expected size.
 */
export function expectShape(
  model: ModelSession,
  name: string,
  kind: 'input' | 'output',
  expected: readonly (number | null)[],
  type: TensorElementType = 'float32',
): readonly (number | string)[] {
  const shape = tensorShape(model, name, kind, type);
  const show = (s: readonly (number | string | null)[]): string => `[${s.map((d) => d ?? '?').join(', ')}]`;
  const bad =
    shape.length !== expected.length || expected.some((e, i) => e !== null && typeof shape[i] === 'number' && shape[i] !== e);
  if (bad) throw new ModelContractError(model.path, `${kind} '${name}'`, `shape ${show(shape)}, expected ${show(expected)}`);
  return shape;
}

/** Builds something around freshly loaded sessions, releasing them if that (or loading the next one) throws. */
async function owning<T>(sessions: ModelSession[], build: () => T | Promise<T>): Promise<T> {
  try {
    return await build();
  } catch (err) {
    await Promise.all(sessions.map((s) => s.session.release()));
    throw err;
  }
}

function elapsed(since: number): number {
  return performance.now() - since;
}

// ---- LiDAR encoder --------------------------------------------------------------------------------------------

export interface LidarEncoding {
  /**
   * BEV features [C, H, W]: the `out` given to encode(), else the encoder's own buffer, which the next call
   * overwrites (copy it, or pass `out`, to keep it).
   */
  features: Float32Array;
  /** The Pillarizer's batch of this frame (counts of pillars and dropped points); overwritten by the next call. */
  pillars: PillarBatch;
  timings: StageTimings;
}

export interface LidarEncoderOptions {
  maxPointsPerPillar: number;
  maxPillars: number;
}

/**
 * How the PFN is fed. 'slotted': each pillar padded only to the next power of two of its point count (1, 2, 4, …,
 * maxPointsPerPillar), one ORT run per slot count; 'padded': every pillar padded to maxPointsPerPillar, as trained.
 * Both give the same pillar features: the PFN is a max over slots of ReLU(W·x + b), so a pillar's value is the
 * max over its points and, when it has fewer than maxPointsPerPillar, over one all-zero slot (ReLU(b)), however
 * many zero slots there are. 'slotted' skips most of the padding (~88 % of the padded input on a 30k-point scan).
 */
export type PfnLayout = 'slotted' | 'padded';

export interface LidarEncoderLoadOptions extends Omit<SessionLoadOptions, 'sha256' | 'rewrite'> {
  /** 'auto' (default): 'slotted' when the model accepts the smaller slot counts, else 'padded'. */
  pfnLayout?: 'auto' | 'padded';
}

/** Slot counts of the 'slotted' layout: powers of two below maxPointsPerPillar, then maxPointsPerPillar. */
export function pfnSlotSizes(maxPointsPerPillar: number): number[] {
  const sizes: number[] = [];
  for (let s = 1; s < maxPointsPerPillar; s *= 2) sizes.push(s);
  sizes.push(maxPointsPerPillar);
  return sizes;
}

/**
 * lidar_pfn once per slot count (pfnSlotSizes): the model itself where its slot axis is dynamic or already that
 * size, else a session on the same file with that one declared size changed in memory (withInputDim), since ONNX
 * Runtime refuses a slot count other than a fixed one. Undefined when any fails; the caller stays padded.
 */
async function loadSlotPfns(
  pfn: ModelSession,
  sizes: readonly number[],
  sha256: string,
  opts: Omit<SessionLoadOptions, 'sha256' | 'rewrite'>,
): Promise<ModelSession[] | undefined> {
  const sessions: ModelSession[] = [];
  const release = () => Promise.all(sessions.filter((m) => m !== pfn).map((m) => m.session.release()));
  for (const size of sizes) {
    if (acceptsSlots(pfn, size)) {
      sessions.push(pfn);
      continue;
    }
    try {
      const rewrite = (bytes: Uint8Array) => withInputDim(bytes, 'pillars', 1, size) ?? bytes;
      sessions.push(await createSession(pfn.path, { ...opts, device: pfn.provider, sha256, rewrite }));
    } catch {
      await release();
      return undefined;
    }
    if (!acceptsSlots(sessions[sessions.length - 1], size)) {
      await release();
      return undefined;
    }
  }
  return sessions;
}

function acceptsSlots(model: ModelSession, size: number): boolean {
  const shape = tensorShape(model, 'pillars', 'input', 'float32');
  return shape.length === 3 && (shape[1] === size || typeof shape[1] === 'string');
}

/** Points → pillars (TypeScript) → lidar_pfn → scatter (TypeScript) → lidar_backbone → BEV features. */
export class LidarEncoder {
  readonly grid: BevGrid;
  /** Channels of the PFN output and of the scattered canvas. */
  readonly pillarChannels: number;
  /** [C, H, W] of the features. */
  readonly featureShape: readonly [number, number, number];
  readonly provider: ExecutionProviderName;
  readonly pfnLayout: PfnLayout;
  /** Slot count of each of pfnSlots' sessions ('slotted' layout). */
  readonly slotSizes: readonly number[];
  private readonly pillarizer: Pillarizer;
  private readonly pillarFeatures: Float32Array;
  // 'slotted' layout: the pillars regrouped by slot count (grow-only), per pillar its group and row there, and
  // the value of an all-zero slot, which pillars filling their slots exactly below maxPointsPerPillar lack.
  private slotted = new Float32Array(0);
  private slottedOut = new Float32Array(0);
  private readonly pillarGroup: Uint8Array;
  // Per slot group: pillars in it, and where its input and output start (floats); one entry per group (+1).
  private readonly groupRows: Int32Array;
  private readonly groupIn: Int32Array;
  private readonly groupOut: Int32Array;
  private readonly pillarRow: Int32Array;
  private emptySlot: Float32Array | undefined;
  /** Set when the backbone takes its canvas quantised (a uint8 input; the manifest's int8 `canvas`). */
  readonly canvasQuantization: CanvasQuantization | undefined;
  // [C, H, W] float32, or [H, W, C] uint8 when the backbone takes the canvas quantised.
  private readonly canvas: Float32Array | Uint8Array;
  private readonly canvasTensor: ort.Tensor;
  private readonly features: Float32Array;
  private readonly featuresTensor: ort.Tensor;

  /**
   * `pfnSlots`: the same PFN accepting each of pfnSlotSizes(maxPointsPerPillar) slots (see loadSlotPfns); the
   * 'slotted' layout is used when it is given, else 'padded'. `canvas`: how a backbone with a uint8 input takes
   * its canvas (the manifest's models.lidar_backbone.int8.canvas); required for such a backbone, refused otherwise.
   */
  constructor(
    grid: BevGrid,
    pillar: LidarEncoderOptions,
    readonly pfn: ModelSession,
    readonly backbone: ModelSession,
    readonly pfnSlots?: readonly ModelSession[],
    canvas?: CanvasQuantization,
  ) {
    this.grid = { ...grid };
    this.provider = pfn.provider;
    this.pillarizer = new Pillarizer(grid, pillar);
    const { maxPointsPerPillar, maxPillars } = this.pillarizer;
    const canvasH = gridHeight(grid), canvasW = gridWidth(grid);
    const [C, H, W] = featureShape(grid);

    expectShape(pfn, 'pillars', 'input', [null, maxPointsPerPillar, PILLAR_FEATURE_COUNT]);
    const pfnOut = expectShape(pfn, 'pillar_features', 'output', [null, null]);
    const canvasMeta = tensorMetadata(backbone, 'bev_pillars', 'input');
    const quantized = canvasMeta.isTensor && canvasMeta.type === 'uint8';
    if (quantized && !canvas) {
      throw new ModelContractError(backbone.path, "input 'bev_pillars'", 'is uint8 (a quantised canvas) but no canvas quantisation was given (the manifest\'s models.lidar_backbone.int8.canvas)');
    }
    if (!quantized && canvas) {
      throw new ModelContractError(backbone.path, "input 'bev_pillars'", `is not uint8, yet a quantised ${canvas.layout} canvas was given for it`);
    }
    const Cpfn = typeof pfnOut[1] === 'number' ? pfnOut[1] : null;
    const bbIn = quantized
      ? expectShape(backbone, 'bev_pillars', 'input', [1, canvasH, canvasW, Cpfn], 'uint8')
      : expectShape(backbone, 'bev_pillars', 'input', [1, Cpfn, canvasH, canvasW]);
    const pillarChannels = Cpfn ?? bbIn[quantized ? 3 : 1];
    if (typeof pillarChannels !== 'number') {
      throw new ModelContractError(pfn.path, "output 'pillar_features'", 'the channel count (axis 1) must be fixed, in this model or in the backbone input');
    }
    expectShape(backbone, 'bev_features', 'output', [1, C, H, W]);
    this.pillarChannels = pillarChannels;
    this.featureShape = [C, H, W];
    this.slotSizes = pfnSlotSizes(maxPointsPerPillar);
    if (pfnSlots) {
      if (pfnSlots.length !== this.slotSizes.length) {
        throw new PerceptionInputError('pfnSlots.length', pfnSlots.length, `must be ${this.slotSizes.length}, one per slot count ${this.slotSizes.join(', ')}`);
      }
      pfnSlots.forEach((m, i) => {
        expectShape(m, 'pillars', 'input', [null, null, PILLAR_FEATURE_COUNT]);
        expectShape(m, 'pillar_features', 'output', [null, pillarChannels]);
        if (!acceptsSlots(m, this.slotSizes[i])) {
          throw new ModelContractError(m.path, "input 'pillars'", `the point-slot axis (1) must be ${this.slotSizes[i]} or dynamic`);
        }
      });
    }
    this.pfnLayout = pfnSlots ? 'slotted' : 'padded';
    this.pillarGroup = new Uint8Array(maxPillars);
    this.pillarRow = new Int32Array(maxPillars);
    this.groupRows = new Int32Array(this.slotSizes.length);
    this.groupIn = new Int32Array(this.slotSizes.length + 1);
    this.groupOut = new Int32Array(this.slotSizes.length + 1);

    this.pillarFeatures = new Float32Array(maxPillars * pillarChannels);
    this.canvasQuantization = canvas;
    if (quantized) {
      this.canvas = new Uint8Array(canvasH * canvasW * pillarChannels);
      this.canvasTensor = new ort.Tensor('uint8', this.canvas, [1, canvasH, canvasW, pillarChannels]);
    } else {
      this.canvas = new Float32Array(pillarChannels * canvasH * canvasW);
      this.canvasTensor = new ort.Tensor('float32', this.canvas, [1, pillarChannels, canvasH, canvasW]);
    }
    this.features = new Float32Array(C * H * W);
    this.featuresTensor = new ort.Tensor('float32', this.features, [1, C, H, W]);
  }

  /** Loads lidar_pfn and lidar_backbone named by a manifest, checking their sha256. */
  static async load(manifest: PerceptionManifest, loadOpts: LidarEncoderLoadOptions = {}): Promise<LidarEncoder> {
    const { pfnLayout = 'auto', ...opts } = loadOpts;
    const pfn = await createSession(manifest.models.lidar_pfn.path, { ...opts, sha256: manifest.models.lidar_pfn.sha256 });
    return owning([pfn], async () => {
      const sizes = pfnSlotSizes(manifest.pillar.maxPointsPerPillar);
      const pfnSlots = pfnLayout === 'padded' ? undefined : await loadSlotPfns(pfn, sizes, manifest.models.lidar_pfn.sha256, opts);
      const extra = (pfnSlots ?? []).filter((m) => m !== pfn);
      return owning(extra, () => LidarEncoder.loadBackbone(manifest, opts, pfn, pfnSlots));
    });
  }

  private static async loadBackbone(
    manifest: PerceptionManifest,
    opts: Omit<SessionLoadOptions, 'sha256' | 'rewrite'>,
    pfn: ModelSession,
    pfnSlots: readonly ModelSession[] | undefined,
  ): Promise<LidarEncoder> {
    // The device is settled by the first model: no second CUDA attempt (or notice) for the second.
    const backbone = await createSession(manifest.models.lidar_backbone.path, {
      ...opts,
      device: pfn.provider,
      sha256: manifest.models.lidar_backbone.sha256,
    });
    return owning([backbone], () => new LidarEncoder(manifest.grid, manifest.pillar, pfn, backbone, pfnSlots, manifest.models.lidar_backbone.canvas));
  }

  /** Encodes one point cloud (x, y, z, intensity records in the agent's LiDAR frame; `count` records, default all). */
  async encode(points: Float32Array, opts: { count?: number; out?: Float32Array } = {}): Promise<LidarEncoding> {
    const t0 = performance.now();
    const batch = this.pillarizer.pillarize(points, opts.count);
    const pillarise = elapsed(t0);
    const result = await this.encodePillars(batch, opts.out);
    result.timings = { pillarise, ...result.timings };
    return result;
  }

  /** Encodes an already pillarised frame (a batch from a Pillarizer on this encoder's grid and pillar settings). */
  async encodePillars(batch: PillarBatch, out?: Float32Array): Promise<LidarEncoding> {
    const [C, H, W] = this.featureShape;
    this.checkBatch(batch);
    if (out && out.length !== C * H * W) throw new PerceptionInputError('out.length', out.length, `must be C × H × W = ${C} × ${H} × ${W}`);
    const Cp = this.pillarChannels;

    let t = performance.now();
    await this.runPfn(batch);
    const pfn = elapsed(t);

    t = performance.now();
    // The whole canvas is zeroed (a 16 MB memset for the float canvas, 4 MB for the quantised one) rather than only
    // the previous frame's cells: zeroing the float canvas's 64 planes cell by cell was measured slower (4,400
    // pillars: 2.9 vs 2.6 ms; 6,100: 6.4 vs 4.2 ms, scatter included).
    if (this.canvas instanceof Uint8Array) {
      scatterToBevQuantized(batch, this.pillarFeatures, Cp, this.grid, this.canvasQuantization!.scale, this.canvas);
    } else {
      scatterToBev(batch, this.pillarFeatures, Cp, this.grid, this.canvas);
    }
    const scatter = elapsed(t);

    t = performance.now();
    const features = out ?? this.features;
    const fetch = out ? new ort.Tensor('float32', out, [1, C, H, W]) : this.featuresTensor;
    await this.backbone.session.run({ bev_pillars: this.canvasTensor }, { bev_features: fetch });
    const backbone = elapsed(t);

    return { features, pillars: batch, timings: { pfn, scatter, backbone } };
  }

  private checkBatch(batch: PillarBatch): void {
    if (batch.maxPointsPerPillar !== this.pillarizer.maxPointsPerPillar || batch.featureCount !== PILLAR_FEATURE_COUNT) {
      throw new PerceptionInputError('batch', `${batch.maxPointsPerPillar} points × ${batch.featureCount} features`, `must be ${this.pillarizer.maxPointsPerPillar} × ${PILLAR_FEATURE_COUNT}`);
    }
    if (batch.pillarCount > this.pillarizer.maxPillars) {
      throw new PerceptionInputError('batch.pillarCount', batch.pillarCount, `exceeds the encoder's maxPillars ${this.pillarizer.maxPillars}`);
    }
  }

  /**
   * Only the PFN, in this encoder's layout: the [pillarCount, C] pillar features of a batch, a view of the
   * encoder's own buffer that the next call overwrites.
   */
  async pillarFeaturesOf(batch: PillarBatch): Promise<Float32Array> {
    this.checkBatch(batch);
    await this.runPfn(batch);
    return this.pillarFeatures.subarray(0, batch.pillarCount * this.pillarChannels);
  }

  private async runPfn(batch: PillarBatch): Promise<void> {
    const P = batch.pillarCount;
    const Cp = this.pillarChannels;
    if (P > 0 && this.pfnSlots) {
      await this.runSlottedPfn(this.pfnSlots, batch);
    } else if (P > 0) {
      const slot = batch.maxPointsPerPillar * PILLAR_FEATURE_COUNT;
      const pillars = new ort.Tensor('float32', batch.features.subarray(0, P * slot), [P, batch.maxPointsPerPillar, PILLAR_FEATURE_COUNT]);
      const fetch = new ort.Tensor('float32', this.pillarFeatures.subarray(0, P * Cp), [P, Cp]);
      await this.pfn.session.run({ pillars }, { pillar_features: fetch });
    }
  }

  // Pillars grouped by the next slot count ≥ their point count, zero-padded to it, one ORT run per group; then
  // each pillar's row, raised to the zero slot's value where the group had no padding to give it (n = S < 32).
  private async runSlottedPfn(models: readonly ModelSession[], batch: PillarBatch): Promise<void> {
    const C = this.pillarChannels;
    const F = PILLAR_FEATURE_COUNT;
    const sizes = this.slotSizes;
    const G = sizes.length;
    const maxPoints = batch.maxPointsPerPillar;
    const { pillarCount: P, pillarStart, pointFeatures } = batch;
    const { pillarGroup, pillarRow } = this;
    if (!this.emptySlot) {
      // An all-zero slot: W·0 = 0 exactly, so this is ReLU(b), what a padded slot contributes.
      const zero = new ort.Tensor('float32', new Float32Array(F), [1, 1, F]);
      const slotOut = await models[0].session.run({ pillars: zero });
      this.emptySlot = Float32Array.from(slotOut.pillar_features.data as Float32Array);
    }
    const emptySlot = this.emptySlot;

    const rows = this.groupRows;
    rows.fill(0);
    for (let p = 0; p < P; p++) {
      const n = pillarStart[p + 1] - pillarStart[p];
      let g = 0;
      while (sizes[g] < n) g++;
      pillarGroup[p] = g;
      pillarRow[p] = rows[g]++;
    }
    // Group g's input starts at inStart[g] floats, its output at outStart[g].
    const inStart = this.groupIn, outStart = this.groupOut;
    for (let g = 0; g < G; g++) {
      inStart[g + 1] = inStart[g] + rows[g] * sizes[g] * F;
      outStart[g + 1] = outStart[g] + rows[g] * C;
    }
    if (this.slotted.length < inStart[G]) this.slotted = new Float32Array(Math.ceil(inStart[G] * 1.25));
    if (this.slottedOut.length < outStart[G]) this.slottedOut = new Float32Array(Math.ceil(outStart[G] * 1.25));
    const slotted = this.slotted;
    for (let p = 0; p < P; p++) {
      const g = pillarGroup[p];
      const dst = inStart[g] + pillarRow[p] * sizes[g] * F;
      const from = pillarStart[p] * F, to = pillarStart[p + 1] * F;
      // Element loops, not set(subarray): a view per pillar would allocate thousands of objects a frame.
      let d = dst;
      for (let i = from; i < to; i++) slotted[d++] = pointFeatures[i];
      for (const end = dst + sizes[g] * F; d < end; d++) slotted[d] = 0;
    }
    for (let g = 0; g < G; g++) {
      if (rows[g] === 0) continue;
      const pillars = new ort.Tensor('float32', slotted.subarray(inStart[g], inStart[g + 1]), [rows[g], sizes[g], F]);
      const fetch = new ort.Tensor('float32', this.slottedOut.subarray(outStart[g], outStart[g + 1]), [rows[g], C]);
      await models[g].session.run({ pillars }, { pillar_features: fetch });
    }
    const out = this.pillarFeatures, res = this.slottedOut;
    for (let p = 0, o = 0; p < P; p++, o += C) {
      const g = pillarGroup[p];
      const src = outStart[g] + pillarRow[p] * C;
      const n = pillarStart[p + 1] - pillarStart[p];
      if (n < maxPoints && n === sizes[g]) {
        for (let c = 0; c < C; c++) {
          const v = res[src + c];
          out[o + c] = v > emptySlot[c] ? v : emptySlot[c];
        }
      } else {
        for (let c = 0; c < C; c++) out[o + c] = res[src + c];
      }
    }
  }

  async dispose(): Promise<void> {
    await this.pfn.session.release();
    for (const m of this.pfnSlots ?? []) if (m !== this.pfn) await m.session.release();
    await this.backbone.session.release();
  }
}

// ---- attention fusion -----------------------------------------------------------------------------------------

export interface FusionResult {
  /** [C, H, W]: `out` when given, else the fusion's own buffer, overwritten by the next call. */
  fused: Float32Array;
  timings: StageTimings;
}

/** fusion_attention.onnx: per-cell attention across K aligned maps (ego first) → the ego's fused map. */
export class FusionAttention {
  readonly featureShape: readonly [number, number, number];
  private aligned = new Float32Array(0);
  private mask = new Float32Array(0);
  private readonly fused: Float32Array;
  private readonly fusedTensor: ort.Tensor;

  constructor(grid: BevGrid, readonly model: ModelSession) {
    const [C, H, W] = featureShape(grid);
    this.featureShape = [C, H, W];
    expectShape(model, 'aligned', 'input', [null, C, H, W]);
    expectShape(model, 'mask', 'input', [null, 1, H, W]);
    expectShape(model, 'fused', 'output', [1, C, H, W]);
    this.fused = new Float32Array(C * H * W);
    this.fusedTensor = new ort.Tensor('float32', this.fused, [1, C, H, W]);
  }

  static async load(manifest: PerceptionManifest, opts: SessionLoadOptions = {}): Promise<FusionAttention> {
    const entry = requireModel(manifest, 'fusion_attention');
    const model = await createSession(entry.path, { ...opts, sha256: entry.sha256 });
    return owning([model], () => new FusionAttention(manifest.grid, model));
  }

  /**
   * Fuses K ≥ 1 maps already warped into the ego grid ([C, H, W] each, ego first) with their coverage masks
   * ([H, W], null for full coverage, as for the ego). Cells an agent does not cover must already be 0 in its map
   * (warpToEgo's output is).
   */
  async fuse(aligned: readonly Float32Array[], masks: readonly (Float32Array | null | undefined)[], out?: Float32Array): Promise<FusionResult> {
    const [C, H, W] = this.featureShape;
    const size = C * H * W, plane = H * W, K = aligned.length;
    if (K === 0) throw new PerceptionInputError('aligned', '[]', 'needs at least the ego map');
    if (masks.length !== K) throw new PerceptionInputError('masks.length', masks.length, `must equal the number of maps (${K})`);
    if (out && out.length !== size) throw new PerceptionInputError('out.length', out.length, `must be ${size}`);
    const t = performance.now();
    // The model takes one [K, C, H, W] tensor: pack into a buffer kept for the largest K seen.
    if (this.aligned.length < K * size) {
      this.aligned = new Float32Array(K * size);
      this.mask = new Float32Array(K * plane);
    }
    for (let k = 0; k < K; k++) {
      if (aligned[k].length !== size) throw new PerceptionInputError(`aligned[${k}].length`, aligned[k].length, `must be C × H × W = ${size}`);
      this.aligned.set(aligned[k], k * size);
      const m = masks[k];
      if (m && m.length !== plane) throw new PerceptionInputError(`masks[${k}].length`, m.length, `must be H × W = ${plane}`);
      if (m) this.mask.set(m, k * plane);
      else this.mask.fill(1, k * plane, (k + 1) * plane);
    }
    const alignedTensor = new ort.Tensor('float32', this.aligned.subarray(0, K * size), [K, C, H, W]);
    const maskTensor = new ort.Tensor('float32', this.mask.subarray(0, K * plane), [K, 1, H, W]);
    const fetch = out ? new ort.Tensor('float32', out, [1, C, H, W]) : this.fusedTensor;
    await this.model.session.run({ aligned: alignedTensor, mask: maskTensor }, { fused: fetch });
    return { fused: out ?? this.fused, timings: { fusion: elapsed(t) } };
  }

  async dispose(): Promise<void> {
    await this.model.session.release();
  }
}

// ---- detection head -------------------------------------------------------------------------------------------

export interface DetectionResult {
  /** After NMS, highest score first, boxes in the frame of the BEV grid (the ego LiDAR frame). */
  detections: Detection[];
  /** Raw head outputs [A, H, W] and [7A, H, W]: the head's own buffers, overwritten by the next call. */
  clsLogits: Float32Array;
  boxDeltas: Float32Array;
  timings: StageTimings;
}

/** detection_head.onnx → decode (sigmoid, threshold, top-k per class) → rotated NMS per class. */
export class DetectionHead {
  readonly layout: AnchorLayout;
  readonly postprocess: PostprocessSettings;
  readonly featureShape: readonly [number, number, number];
  private readonly decoder: DetectionDecoder;
  private readonly clsLogits: Float32Array;
  private readonly boxDeltas: Float32Array;
  private readonly clsTensor: ort.Tensor;
  private readonly boxTensor: ort.Tensor;

  constructor(grid: BevGrid, layout: AnchorLayout, postprocess: PostprocessSettings, readonly model: ModelSession) {
    const [C, H, W] = featureShape(grid);
    const A = layout.channels.length;
    this.featureShape = [C, H, W];
    this.layout = layout;
    this.postprocess = { ...postprocess };
    expectShape(model, 'bev', 'input', [1, C, H, W]);
    expectShape(model, 'cls_logits', 'output', [1, A, H, W]);
    expectShape(model, 'box_deltas', 'output', [1, BOX_CODE_SIZE * A, H, W]);
    this.decoder = new DetectionDecoder(layout, postprocess);
    this.clsLogits = new Float32Array(A * H * W);
    this.boxDeltas = new Float32Array(BOX_CODE_SIZE * A * H * W);
    this.clsTensor = new ort.Tensor('float32', this.clsLogits, [1, A, H, W]);
    this.boxTensor = new ort.Tensor('float32', this.boxDeltas, [1, BOX_CODE_SIZE * A, H, W]);
  }

  static async load(manifest: PerceptionManifest, opts: SessionLoadOptions = {}): Promise<DetectionHead> {
    const entry = requireModel(manifest, 'detection_head');
    const model = await createSession(entry.path, { ...opts, sha256: entry.sha256 });
    return owning([model], () => new DetectionHead(manifest.grid, anchorLayout(manifest.grid, manifest.anchors), manifest.postprocess, model));
  }

  /** Detects boxes in a BEV feature map [C, H, W] (one agent's, or a fused one). */
  async detect(bev: Float32Array): Promise<DetectionResult> {
    const [C, H, W] = this.featureShape;
    if (bev.length !== C * H * W) throw new PerceptionInputError('bev.length', bev.length, `must be C × H × W = ${C} × ${H} × ${W}`);
    let t = performance.now();
    await this.model.session.run(
      { bev: new ort.Tensor('float32', bev, [1, C, H, W]) },
      { cls_logits: this.clsTensor, box_deltas: this.boxTensor },
    );
    const head = elapsed(t);
    t = performance.now();
    const candidates = this.decoder.decode(this.clsLogits, this.boxDeltas);
    const decode = elapsed(t);
    t = performance.now();
    const detections = nmsPerClass(candidates, this.postprocess.nmsIouThreshold);
    const nms = elapsed(t);
    return { detections, clsLogits: this.clsLogits, boxDeltas: this.boxDeltas, timings: { head, decode, nms } };
  }

  async dispose(): Promise<void> {
    await this.model.session.release();
  }
}

// ---- everything a manifest names ------------------------------------------------------------------------------

function requireModel(manifest: PerceptionManifest, role: ModelRole): { path: string; sha256: string } {
  const entry = manifest.models[role];
  if (!entry) throw new ModelFileError(manifest.source, `the manifest names no '${role}' model (models.${role})`);
  return entry;
}

export interface PerceptionModelsOptions {
  device?: DeviceOption;
  threads?: number;
  /** 'int8': the manifest's int8 LiDAR backbone and detection head (models/README.md, "int8 variant"); their
   * features are the float ones within quantisation error, so float and int8 agents fuse. Default float32. */
  precision?: Precision;
}

/**
 * The perception models of one manifest, loaded on one device: the LiDAR encoder always, the detection head and
 * attention fusion when the manifest names them.
 */
export class PerceptionModels {
  private constructor(
    readonly manifest: PerceptionManifest,
    readonly lidar: LidarEncoder,
    readonly head: DetectionHead | undefined,
    readonly attention: FusionAttention | undefined,
    /** Load time per model file, ms (read + sha256 + session creation). */
    readonly loadMs: Partial<Record<ModelRole, number>>,
  ) {}

  get grid(): BevGrid {
    return this.manifest.grid;
  }

  /** The execution provider every session runs on. */
  get provider(): ExecutionProviderName {
    return this.lidar.provider;
  }

  /** Set when device 'auto' fell back to the CPU; print it. */
  get notice(): string | undefined {
    return this.lidar.pfn.notice;
  }

  static async load(manifestOrPath: string | PerceptionManifest, opts: PerceptionModelsOptions = {}): Promise<PerceptionModels> {
    const given = typeof manifestOrPath === 'string' ? await loadManifest(manifestOrPath) : manifestOrPath;
    const manifest = opts.precision ? withPrecision(given, opts.precision) : given;
    const lidar = await LidarEncoder.load(manifest, opts);
    const settled = { device: lidar.provider, threads: opts.threads };
    const loaded: (LidarEncoder | DetectionHead | FusionAttention)[] = [lidar];
    try {
      const head = manifest.models.detection_head ? await DetectionHead.load(manifest, settled) : undefined;
      if (head) loaded.push(head);
      const attention = manifest.models.fusion_attention ? await FusionAttention.load(manifest, settled) : undefined;
      const loadMs: Partial<Record<ModelRole, number>> = {
        lidar_pfn: lidar.pfn.loadMs,
        lidar_backbone: lidar.backbone.loadMs,
        ...(head ? { detection_head: head.model.loadMs } : {}),
        ...(attention ? { fusion_attention: attention.model.loadMs } : {}),
      };
      return new PerceptionModels(manifest, lidar, head, attention, loadMs);
    } catch (err) {
      await Promise.all(loaded.map((m) => m.dispose()));
      throw err;
    }
  }

  /**
   * Runs the LiDAR encoder and the head once on a small synthetic frame and returns the milliseconds it took. ONNX Runtime's first run
   * of a session allocates its arena and picks kernels, several times a normal frame; a node that is about to
   * serve a 10 Hz stream pays that before its first frame instead of during it (where it would make the frames
   * queued behind it stale).
   */
  async warmUp(): Promise<number> {
    const t = performance.now();
    // One pillar per PFN slot group (the smallest count that needs it: 1, 2, 3, 5, 9, … and a full pillar), so every
    // slot size runs once; points within 0.1 m of a pillar centre 5 m ahead, pillars 1 m apart, 1 m below the sensor.
    const sizes = pfnSlotSizes(this.manifest.pillar.maxPointsPerPillar);
    const counts = sizes.map((size, i) => (i === 0 ? size : Math.min(size, sizes[i - 1] + 1)));
    counts.push(this.manifest.pillar.maxPointsPerPillar);
    const { xMin, yMin, cellSize } = this.manifest.grid;
    const centre = (v: number, min: number) => min + (Math.floor((v - min) / cellSize) + 0.5) * cellSize;
    const points = new Float32Array(counts.reduce((a, b) => a + b, 0) * 4);
    let i = 0;
    counts.forEach((n, k) => {
      const x = centre(5 + k, xMin), y = centre(0, yMin);
      for (let j = 0; j < n; j++, i += 4) points.set([x + 0.1 * Math.cos(j), y + 0.1 * Math.sin(j), -1, 0.5], i);
    });
    const { features } = await this.lidar.encode(points);
    if (this.head) await this.head.detect(features);
    // Not the attention model: nodes and the detector compute its attention in TypeScript (src/fusion
    // attention-fusion.ts); the model is the reference it is tested against.
    return performance.now() - t;
  }

  async dispose(): Promise<void> {
    await Promise.all([this.lidar.dispose(), this.head?.dispose(), this.attention?.dispose()]);
  }
}
