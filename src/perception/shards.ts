// Training shards: the one data path from a dataset to tools/train. TypeScript reads the dataset and pillarises
// with the very Pillarizer the runtime uses; Python (numpy only) reads these files and trains. So the pillar
// features, the agent → ego transforms and the cooperative ground truth are each defined once, here and in
// src/eval, never re-implemented in Python.
//
// Layout (docs: models/README.md and tools/train/README.md):
//   OUT/index.json        one JSON object: grid, pillar layout, classes, anchors, ground-truth rule, samples[]
//   OUT/samples/NNNNNN.bin one file per dataset frame (numbered over all scenarios, in order). It holds each
//                         agent's pillars ONCE, and per sample (one ego) that sample's transforms and boxes: with
//                         --ego all every agent of a frame is an ego and would otherwise repeat every other
//                         agent's pillars (4 agents: 16 pillar sets instead of 4).
// A sample's `arrays` lists {name, dtype, shape, offset, byteLength} within its `file`; all little-endian,
// offsets 16-byte aligned. Per agent k of the sample (ego first, then the frame's order):
//   points_k        float16 [N_k, 10]  the kept points' pillar features, packed: pillar p's points are rows
//                                      sum(num_points_k[0..p−1]) .. + num_points_k[p] − 1, in Pillarizer order.
//                                      Padding to [P, 32, 10] is numpy's job (zeros, as the Pillarizer's).
//   num_points_k    uint8   [P_k]      points per pillar (1..maxPointsPerPillar ≤ 255)
//   coords_k        int16   [P_k, 2]   (row = y index, col = x index) of each pillar
//   agent_to_ego_k  float32 [4, 4]     agent LiDAR → ego LiDAR, row-major, from the datasets' true poses
// Once per sample:
//   gt_boxes        float32 [G, 7]     x, y, z, l, w, h, yaw in the EGO LiDAR frame
//   gt_classes      int8    [G]        index into index.json `classes`
//   gt_points       int32   [G, K]     points of agent k inside box g among those within the grid's range (what
//                                      its pillars can show); lets training ignore boxes nobody in the sample saw
// Ground-truth ids are strings (CARLA actor ids, DAIR track ids): they live in the sample's JSON entry (`gtIds`).
// With ExportTrainingOptions.cameras, per agent k also (N_k = the agent's cameras, in the dataset's order; Z heights):
//   images_k        float16 [N_k, 3, Hc, Wc]         loadCameraBatch's tensors (camera-image.ts: sharp resize, RGB,
//                                                    normalised), exactly what the runtime feeds the camera model
//   sampling_grid_k float16 [N_k, Z, H·W, 2]         computeSamplingGrid (camera-lift.ts) from the agent's
//                                                    calibration: the geometry stays in TypeScript
//   camera_valid_k  uint8   [N_k, Z, H·W]            its validity mask
// float16 puts a grid coordinate at most 2.4e-4 off (0.1 px of an 800-px image): far below the feature stride.
//
// Why float16 for the features: it halves the shards (a few GB for a training set) and its error is at most half
// a unit in the last place: 1.6 cm on |x|, |y| ∈ [32, 51.2) m, ≤ 0.4 mm on the sub-metre offsets that carry the
// pillar's shape, ≤ 2.4e-4 on intensity. LiDAR range noise is larger than that.
import { toFloat16Bits } from '../codec/index.ts';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Mat4, countPointsInBox, identity, invertRigid, relativeTransform, transformBox } from '../geometry/index.ts';
import type { AgentFrame, AgentKind, CooperativeFrame, Dataset, ObjectClass } from '../datasets/index.ts';
import { type EvalGroundTruthBox, type EvalRange, cooperativeGroundTruth } from '../eval/index.ts';
import { type AnchorClassSpec, DEFAULT_ANCHORS } from './anchors.ts';
import { type BevGrid, DEFAULT_BEV_GRID, validateGrid } from './grid.ts';
import { computeSamplingGrid, DEFAULT_MIN_DEPTH } from './camera-lift.ts';
import { IMAGENET_MEAN, IMAGENET_STD, completeImageSizes, loadCameraBatch } from './camera-image.ts';
import { PILLAR_FEATURE_COUNT, PILLAR_FEATURE_NAMES, type PillarBatch, Pillarizer } from './pillarize.ts';

export const SHARD_FORMAT = 'v2xfuse-training-shards';
export const SHARD_FORMAT_VERSION = 1;

/** Every object class a shard's ground truth may carry; `gt_classes` indexes into this list. */
export const SHARD_CLASSES: readonly ObjectClass[] = Object.freeze(['vehicle', 'pedestrian', 'cyclist', 'other']);

export type ShardDType = 'float16' | 'float32' | 'int8' | 'uint8' | 'int16' | 'int32';

const DTYPE_BYTES: Record<ShardDType, number> = { float16: 2, float32: 4, int8: 1, uint8: 1, int16: 2, int32: 4 };

export interface ShardArray {
  name: string;
  dtype: ShardDType;
  shape: number[];
  /** Byte offset within the sample's file. */
  offset: number;
  byteLength: number;
}

export interface ShardAgent {
  id: string;
  kind: AgentKind;
  /** Pillars kept (P_k) and points kept in them (N_k). */
  pillars: number;
  points: number;
  /** Points in the agent's cloud, and those the Pillarizer dropped (out of range, full pillars, maxPillars). */
  inputPoints: number;
  droppedPoints: number;
  /** 2D distance of the agent's LiDAR from the ego's, metres. */
  distanceM: number;
  /** Added to the z of this agent's points before pillarising (ExportTrainingOptions.zOffsetByKind). */
  zOffsetM: number;
  /** With camera export: the agent's camera names, in the order of images_k / sampling_grid_k. */
  cameras?: string[];
}

export interface ShardSample {
  /** Path of the .bin relative to the shard folder. */
  file: string;
  scenario: string;
  frameId: string;
  frameIndex: number;
  /** Nanoseconds, as a decimal string (JSON has no 64-bit integers). */
  timestampNs: string;
  ego: string;
  /** Ego first, then every other agent within communication range, in the frame's order. */
  agents: ShardAgent[];
  gtCount: number;
  /** Object ids of gt_boxes rows, in order. */
  gtIds: string[];
  arrays: ShardArray[];
}

export interface ShardIndex {
  format: typeof SHARD_FORMAT;
  version: number;
  dataset: { root: string; format: string; scenarios: string[] };
  grid: BevGrid;
  commRangeM: number;
  zOffsetByKind: Partial<Record<AgentKind, number>>;
  /** How gt_boxes were chosen (the rule, so evaluation can match it). */
  groundTruth: { rule: string; range: EvalRange; rangeTest: 'corners' | 'centre'; includeEgoBox: boolean };
  pillar: {
    maxPointsPerPillar: number;
    maxPillars: number;
    features: string[];
    layout: 'packed';
    dtype: 'float16';
  };
  classes: ObjectClass[];
  /** The detection head's anchors the shards propose to the trainer (anchors.ts DEFAULT_ANCHORS, the contract's). */
  anchors: AnchorClassSpec[];
  endianness: 'little';
  /** Present when the export holds camera inputs (ExportTrainingOptions.cameras). */
  camera?: ShardCameraLayout;
  samples: ShardSample[];
}

/** How the camera inputs were made: the camera model's input size, the lift's heights, the normalisation. */
export interface ShardCameraLayout {
  width: number;
  height: number;
  heights: number[];
  minDepth: number;
  mean: number[];
  std: number[];
  dtype: 'float16';
}

export interface ExportCameraOptions {
  /** Size of the image tensors (the camera model's input). */
  width: number;
  height: number;
  /** z values (LiDAR frame) sampled in every BEV pillar. */
  heights: readonly number[];
  /** Default DEFAULT_MIN_DEPTH. */
  minDepth?: number;
}

export interface ExportTrainingOptions {
  /** 'first': the sequence's first agent; 'all': every agent of every frame in turn; else an agent id. */
  ego: 'first' | 'all' | string;
  /** Collaborators farther than this (2D LiDAR distance) from the ego are left out. Default 70 m (OpenCOOD). */
  commRangeM?: number;
  grid?: BevGrid;
  maxPillars?: number;
  maxPointsPerPillar?: number;
  /**
   * Metres added to the z of an agent's points before pillarising, by agent kind. The grid's z range is relative to
   * the LiDAR and assumes a car roof (~1.9 m): a roadside LiDAR on a 6 m pole sees the road at z ≈ −6, below the
   * range, so without a shift (4.1 m there) its pillars hold only what is more than 3 m above the road. The runtime
   * agent must apply the same shift. Default: none.
   */
  zOffsetByKind?: Partial<Record<AgentKind, number>>;
  /**
   * Also write each agent's camera images and sampling grids (the camera encoder's inputs; see the header). Agents
   * without cameras get N_k = 0.
   */
  cameras?: ExportCameraOptions;
  /** Replace an existing export in outDir (its index.json and samples/). */
  overwrite?: boolean;
  onProgress?: (doneFrames: number, totalFrames: number, scenario: string) => void;
}

export interface ExportTrainingSummary {
  outDir: string;
  frames: number;
  samples: number;
  /** Frames without the requested ego (ego = an id): skipped. */
  framesWithoutEgo: number;
  bytes: number;
  /** Mean agents per sample, pillars per agent, ground-truth boxes per sample. */
  meanAgents: number;
  meanPillars: number;
  meanGtBoxes: number;
  /** Agent frames in which the Pillarizer hit maxPillars. */
  agentFramesAtPillarCap: number;
  warnings: string[];
}

/** A user-fixable problem with an export (existing output, unknown ego id, bad options). */
export class ShardExportError extends Error {
  readonly userFacing = true;
  constructor(readonly field: string, detail: string) {
    super(`export-training: ${field}: ${detail}`);
    this.name = new.target.name;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sample file assembly

const ALIGN = 16;

/** Collects arrays into one file image; offsets are 16-byte aligned so numpy views need no copy. */
class SampleFileBuilder {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  add(name: string, dtype: ShardDType, shape: number[], bytes: Uint8Array): ShardArray {
    const expected = shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (bytes.byteLength !== expected) throw new RangeError(`${name}: ${bytes.byteLength} bytes for shape [${shape}] ${dtype} (${expected})`);
    const pad = (ALIGN - (this.size % ALIGN)) % ALIGN;
    if (pad) {
      this.chunks.push(new Uint8Array(pad));
      this.size += pad;
    }
    const entry: ShardArray = { name, dtype, shape, offset: this.size, byteLength: bytes.byteLength };
    this.chunks.push(bytes);
    this.size += bytes.byteLength;
    return entry;
  }

  get byteLength(): number {
    return this.size;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

const asBytes = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

interface PackedPillars {
  points: Uint16Array;
  numPoints: Uint8Array;
  coords: Int16Array;
  pillars: number;
  keptPoints: number;
}

/** Copies the Pillarizer's reused buffers into packed arrays before its next call overwrites them. */
export function packPillars(batch: PillarBatch): PackedPillars {
  const P = batch.pillarCount;
  const F = batch.featureCount;
  if (batch.maxPointsPerPillar > 255) throw new ShardExportError('maxPointsPerPillar', 'must be ≤ 255 (num_points is uint8)');
  let total = 0;
  for (let p = 0; p < P; p++) total += batch.numPoints[p];
  const points = new Uint16Array(total * F);
  const numPoints = new Uint8Array(P);
  const coords = new Int16Array(P * 2);
  let o = 0;
  for (let p = 0; p < P; p++) {
    const n = batch.numPoints[p];
    numPoints[p] = n;
    coords[2 * p] = batch.coords[2 * p];
    coords[2 * p + 1] = batch.coords[2 * p + 1];
    const base = p * batch.maxPointsPerPillar * F;
    for (let i = 0; i < n * F; i++) points[o++] = toFloat16Bits(batch.features[base + i]);
  }
  return { points, numPoints, coords, pillars: P, keptPoints: total };
}

// ---------------------------------------------------------------------------------------------------------------
// Export

const planeDistance = (a: Mat4, b: Mat4): number => Math.hypot(a[3] - b[3], a[7] - b[7]);

interface AgentPillars {
  packed: PackedPillars;
  inputPoints: number;
  droppedPoints: number;
  /** The agent's points within the grid's range (its own frame, unshifted), for counting points inside boxes. */
  visible: Float32Array;
  arrays: { points: ShardArray; numPoints: ShardArray; coords: ShardArray };
  cameras?: { names: string[]; images: ShardArray; grid: ShardArray; valid: ShardArray };
}

const toFloat16Array = (values: Float32Array): Uint16Array => {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toFloat16Bits(values[i]);
  return out;
};

/** An agent's camera inputs, as the runtime's camera encoder computes them, added to `builder`. */
async function addCameraArrays(agent: AgentFrame, grid: BevGrid, cam: ExportCameraOptions, builder: SampleFileBuilder): Promise<NonNullable<AgentPillars['cameras']>> {
  const cameras = await completeImageSizes(agent.cameras);
  const images = await loadCameraBatch(cameras, { width: cam.width, height: cam.height });
  const lift = computeSamplingGrid(cameras, grid, { heights: cam.heights, imageWidth: cam.width, imageHeight: cam.height, minDepth: cam.minDepth });
  const n = cameras.length;
  const valid = new Uint8Array(lift.valid.length);
  for (let i = 0; i < valid.length; i++) valid[i] = lift.valid[i];
  return {
    names: cameras.map((c) => c.name),
    images: builder.add('images', 'float16', [n, 3, cam.height, cam.width], asBytes(toFloat16Array(images))),
    grid: builder.add('sampling_grid', 'float16', [...lift.gridDims], asBytes(toFloat16Array(lift.grid))),
    valid: builder.add('camera_valid', 'uint8', [...lift.validDims], valid),
  };
}

function shiftZ(cloud: Float32Array, offset: number): Float32Array {
  const out = Float32Array.from(cloud);
  for (let i = 2; i < out.length; i += 4) out[i] += offset;
  return out;
}

/** The x, y, z, i records the Pillarizer can use (inside the grid once z is shifted), in unshifted coordinates. */
function pointsInRange(cloud: Float32Array, grid: BevGrid, zOffset: number): Float32Array {
  const out = new Float32Array(cloud.length);
  let n = 0;
  for (let i = 0; i + 3 < cloud.length; i += 4) {
    const x = cloud[i], y = cloud[i + 1], z = cloud[i + 2] + zOffset;
    if (x >= grid.xMin && x < grid.xMax && y >= grid.yMin && y < grid.yMax && z >= grid.zMin && z < grid.zMax) {
      out.set(cloud.subarray(i, i + 4), n);
      n += 4;
    }
  }
  return out.slice(0, n);
}

function egoIdsOf(frame: CooperativeFrame, ego: string, firstAgent: string): string[] {
  if (ego === 'all') return frame.agents.map((a) => a.agentId);
  const id = ego === 'first' ? firstAgent : ego;
  return frame.agents.some((a) => a.agentId === id) ? [id] : [];
}

/**
 * Pillarises every frame of `dataset` and writes training samples (one per frame and chosen ego) to `outDir`.
 * Returns what was written; the index is written last, so a folder with an index.json is complete.
 */
export async function exportTrainingShards(dataset: Dataset, outDir: string, opts: ExportTrainingOptions): Promise<ExportTrainingSummary> {
  const grid = validateGrid({ ...(opts.grid ?? DEFAULT_BEV_GRID) });
  const commRangeM = opts.commRangeM ?? 70;
  if (!(commRangeM >= 0)) throw new ShardExportError('commRangeM', `must be a non-negative number, got ${commRangeM}`);
  if (!opts.ego) throw new ShardExportError('ego', "must be 'first', 'all' or an agent id");
  if (opts.ego !== 'first' && opts.ego !== 'all') {
    const known = dataset.scenarios.flatMap((s) => s.agents.map((a) => a.id));
    if (!known.includes(opts.ego)) {
      throw new ShardExportError('ego', `no agent '${opts.ego}' in ${dataset.root} (agents: ${[...new Set(known)].join(', ') || 'none'})`);
    }
  }
  const pillarizer = new Pillarizer(grid, { maxPillars: opts.maxPillars, maxPointsPerPillar: opts.maxPointsPerPillar });
  for (const [kind, offset] of Object.entries(opts.zOffsetByKind ?? {})) {
    if (!Number.isFinite(offset)) throw new ShardExportError('zOffsetByKind', `${kind}: must be a finite number of metres, got ${offset}`);
  }
  const zOffsetOf = (kind: AgentKind): number => opts.zOffsetByKind?.[kind] ?? 0;
  const cameraOpts = opts.cameras;
  if (cameraOpts) {
    for (const f of ['width', 'height'] as const) {
      if (!Number.isInteger(cameraOpts[f]) || cameraOpts[f] < 1) throw new ShardExportError(`cameras.${f}`, `must be a positive integer, got ${cameraOpts[f]}`);
    }
    if (cameraOpts.heights.length === 0 || !cameraOpts.heights.every(Number.isFinite)) {
      throw new ShardExportError('cameras.heights', `need one or more finite heights (m), got [${cameraOpts.heights.join(', ')}]`);
    }
  }

  const indexPath = path.join(outDir, 'index.json');
  const samplesDir = path.join(outDir, 'samples');
  const existing = await readFile(indexPath).then(() => true, () => false);
  if (existing) {
    if (!opts.overwrite) throw new ShardExportError('--out', `${outDir} already holds an export (${indexPath}); pass --overwrite to replace it`);
    await rm(indexPath);
    await rm(samplesDir, { recursive: true, force: true });
  }
  await mkdir(samplesDir, { recursive: true });

  // Boxes whose eight BEV corners lie inside the grid's x/y range (OpenCOOD's mask_boxes_outside_range rule on the
  // training range); no z bound, so tall vehicles (whose tops leave the LiDAR's z range) still train as vehicles.
  const gtRange: EvalRange = { xMin: grid.xMin, xMax: grid.xMax, yMin: grid.yMin, yMax: grid.yMax };
  const gtRule = { rule: 'cooperativeGroundTruth (src/eval): union over agents within commRangeM, deduplicated by id, ego box dropped', range: gtRange, rangeTest: 'corners' as const, includeEgoBox: false };

  const samples: ShardSample[] = [];
  const warnings: string[] = [];
  const totalFrames = dataset.scenarios.reduce((n, s) => n + s.frameCount, 0);
  let doneFrames = 0;
  let fileNumber = 0;
  let bytes = 0;
  let framesWithoutEgo = 0;
  let agentFramesAtPillarCap = 0;
  let sumAgents = 0;
  let sumPillars = 0;
  let pillarSets = 0;
  let sumGt = 0;

  for (const sequence of dataset.scenarios) {
    const firstAgent = sequence.agents[0]?.id ?? '';
    for (let fi = 0; fi < sequence.frameCount; fi++) {
      const frame = await sequence.frame(fi);
      const egoIds = egoIdsOf(frame, opts.ego, firstAgent);
      if (egoIds.length === 0) {
        framesWithoutEgo++;
        doneFrames++;
        opts.onProgress?.(doneFrames, totalFrames, sequence.name);
        continue;
      }
      const file = path.posix.join('samples', `${String(fileNumber++).padStart(6, '0')}.bin`);
      const builder = new SampleFileBuilder();
      const pillarsByAgent = new Map<string, AgentPillars>();

      // Each agent is pillarised and written once per frame, whichever samples (egos) include it.
      const pillarsOf = async (agent: AgentFrame): Promise<AgentPillars> => {
        const known = pillarsByAgent.get(agent.agentId);
        if (known) return known;
        const cloud = await agent.loadPoints();
        const zOffset = zOffsetOf(agent.kind);
        const batch = pillarizer.pillarize(zOffset === 0 ? cloud : shiftZ(cloud, zOffset));
        if (batch.droppedPillars > 0) agentFramesAtPillarCap++;
        const packed = packPillars(batch);
        const visible = pointsInRange(cloud, grid, zOffset);
        // Named per sample below (points_k …): k depends on the ego.
        const entry: AgentPillars = {
          packed,
          inputPoints: batch.inputPoints,
          droppedPoints: batch.droppedPoints,
          visible,
          arrays: {
            points: builder.add('points', 'float16', [packed.keptPoints, PILLAR_FEATURE_COUNT], asBytes(packed.points)),
            numPoints: builder.add('num_points', 'uint8', [packed.pillars], asBytes(packed.numPoints)),
            coords: builder.add('coords', 'int16', [packed.pillars, 2], asBytes(packed.coords)),
          },
          cameras: cameraOpts ? await addCameraArrays(agent, grid, cameraOpts, builder) : undefined,
        };
        pillarsByAgent.set(agent.agentId, entry);
        sumPillars += packed.pillars;
        pillarSets++;
        return entry;
      };

      for (const egoId of egoIds) {
        const ego = frame.agents.find((a) => a.agentId === egoId)!;
        const members = [ego, ...frame.agents.filter((a) => a !== ego && planeDistance(a.lidarToWorld, ego.lidarToWorld) <= commRangeM)];
        const arrays: ShardArray[] = [];
        const agents: ShardAgent[] = [];
        const agentToEgo: Mat4[] = [];
        for (const [k, agent] of members.entries()) {
          const pillars = await pillarsOf(agent);
          const a = pillars.arrays;
          arrays.push({ ...a.points, name: `points_${k}` }, { ...a.numPoints, name: `num_points_${k}` }, { ...a.coords, name: `coords_${k}` });
          const toEgo = agent === ego ? identity() : relativeTransform(agent.lidarToWorld, ego.lidarToWorld);
          agentToEgo.push(toEgo);
          arrays.push(builder.add(`agent_to_ego_${k}`, 'float32', [4, 4], asBytes(Float32Array.from(toEgo))));
          const cams = pillars.cameras;
          if (cams) {
            arrays.push({ ...cams.images, name: `images_${k}` }, { ...cams.grid, name: `sampling_grid_${k}` }, { ...cams.valid, name: `camera_valid_${k}` });
          }
          agents.push({
            id: agent.agentId,
            kind: agent.kind,
            pillars: pillars.packed.pillars,
            points: pillars.packed.keptPoints,
            inputPoints: pillars.inputPoints,
            droppedPoints: pillars.droppedPoints,
            distanceM: planeDistance(agent.lidarToWorld, ego.lidarToWorld),
            zOffsetM: zOffsetOf(agent.kind),
            ...(pillars.cameras ? { cameras: pillars.cameras.names } : {}),
          });
        }

        const gt = cooperativeGroundTruth(frame, egoId, { commRangeM, evalRange: gtRange, rangeTest: 'corners', includeEgoBox: false });
        const G = gt.length;
        const K = members.length;
        const boxes = new Float32Array(G * 7);
        const classes = new Int8Array(G);
        const seenBy = new Int32Array(G * K);
        for (const [g, b] of gt.entries()) {
          boxes.set([b.box.x, b.box.y, b.box.z, b.box.l, b.box.w, b.box.h, b.box.yaw], g * 7);
          classes[g] = SHARD_CLASSES.indexOf(b.cls);
        }
        for (let k = 0; k < K; k++) {
          const egoToAgent = invertRigid(agentToEgo[k]);
          const visible = pillarsByAgent.get(members[k].agentId)!.visible;
          for (let g = 0; g < G; g++) seenBy[g * K + k] = countPointsInBox(transformBox(egoToAgent, gt[g].box), visible);
        }
        arrays.push(
          builder.add('gt_boxes', 'float32', [G, 7], asBytes(boxes)),
          builder.add('gt_classes', 'int8', [G], asBytes(classes)),
          builder.add('gt_points', 'int32', [G, K], asBytes(seenBy)),
        );
        samples.push({
          file,
          scenario: sequence.name,
          frameId: frame.frameId,
          frameIndex: frame.index,
          timestampNs: frame.timestampNs.toString(),
          ego: egoId,
          agents,
          gtCount: G,
          gtIds: gt.map((b: EvalGroundTruthBox) => b.id),
          arrays,
        });
        sumAgents += K;
        sumGt += G;
      }
      await writeFile(path.join(outDir, file), builder.bytes());
      bytes += builder.byteLength;
      doneFrames++;
      opts.onProgress?.(doneFrames, totalFrames, sequence.name);
    }
  }

  const index: ShardIndex = {
    format: SHARD_FORMAT,
    version: SHARD_FORMAT_VERSION,
    dataset: { root: dataset.root, format: dataset.format, scenarios: dataset.scenarios.map((s) => s.name) },
    grid,
    commRangeM,
    groundTruth: gtRule,
    zOffsetByKind: { ...opts.zOffsetByKind },
    pillar: {
      maxPointsPerPillar: pillarizer.maxPointsPerPillar,
      maxPillars: pillarizer.maxPillars,
      features: [...PILLAR_FEATURE_NAMES],
      layout: 'packed',
      dtype: 'float16',
    },
    classes: [...SHARD_CLASSES],
    anchors: DEFAULT_ANCHORS.map((a) => ({ ...a, yaws: [...a.yaws] })),
    endianness: 'little',
    ...(cameraOpts
      ? {
          camera: {
            width: cameraOpts.width,
            height: cameraOpts.height,
            heights: [...cameraOpts.heights],
            minDepth: cameraOpts.minDepth ?? DEFAULT_MIN_DEPTH,
            mean: [...IMAGENET_MEAN],
            std: [...IMAGENET_STD],
            dtype: 'float16' as const,
          },
        }
      : {}),
    samples,
  };
  await writeFile(indexPath, JSON.stringify(index));
  warnings.push(...dataset.warnings);
  if (samples.length === 0) warnings.push(`no sample written: no frame has the ego '${opts.ego}'`);
  return {
    outDir,
    frames: doneFrames - framesWithoutEgo,
    samples: samples.length,
    framesWithoutEgo,
    bytes,
    meanAgents: samples.length ? sumAgents / samples.length : 0,
    meanPillars: pillarSets ? sumPillars / pillarSets : 0,
    meanGtBoxes: samples.length ? sumGt / samples.length : 0,
    agentFramesAtPillarCap,
    warnings,
  };
}
