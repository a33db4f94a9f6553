// The model manifest (models/manifest.json): which ONNX files make up a perception model, their sha256, and the
// BEV grid, pillar layout, anchors and post-processing they were trained with. DESIGN.md makes the manifest the
// source of truth for the grid; the runtime refuses a model file whose bytes do not match its recorded hash, so a
// half-copied or swapped model fails loudly instead of producing plausible boxes.
//
// Format (formatVersion 1), paths relative to the manifest's folder:
// {
//   "formatVersion": 1,
//   "modelId": "pp-opv2v-2026-11-21",                 // travels in feature messages; receivers compare it
//   "description": "...",                              // optional, free text
//   "grid": { xMin, xMax, yMin, yMax, zMin, zMax, cellSize, featureStride, channels },
//   "pillar": { "maxPointsPerPillar": 32, "maxPillars": 16000, "features": ["x", "y", ..., "zMinusCenterZ"] },
//   "anchors": [ { "cls": "vehicle", "l": 4.5, "w": 2.0, "h": 1.6, "z": -0.9, "yaws": [0, 1.5707963] }, ... ],
//   "postprocess": { "scoreThreshold": 0.2, "nmsIouThreshold": 0.15, "preNmsTopK": 1000 },   // optional
//   "models": {
//     "lidar_pfn":        { "file": "lidar_pfn.onnx", "sha256": "<64 hex>" },
//     "lidar_backbone":   { "file": "lidar_backbone.onnx", "sha256": "...",
//                           "int8": { "file": "lidar_backbone_int8.onnx", "sha256": "...", "calibration": {...},
//                                     "canvas": { "layout": "NHWC", "type": "uint8", "scale": 0.025115862488746643, "zeroPoint": 0 } } },
//                                                   // canvas: the int8 backbone takes the canvas quantised (optional)
//     "detection_head":   { ... },                     // optional; both may name an int8 variant (QDQ, opt-in:
//                                                      //   `withPrecision(manifest, 'int8')`, tools/train/quantize.py)
//     "fusion_attention": { ... },                     // optional
//     "camera_backbone":  { ... },                     // optional, with camera_lift and "camera" below:
//     "camera_lift":      { ... },                     //   images → image features → BEV features
//     "channel_reduction": {                           // optional: learned channel reduction, codec stage c<ratio>
//       "16": { "encoder": { "file": "channel_encoder_c16.onnx", "sha256": "..." },   // [1, C, H, W] → [1, C/16, H, W]
//               "decoder": { "file": "channel_decoder_c16.onnx", "sha256": "..." } }, // and back
//       ...
//     },
//     "motion_predictor": { "file": "predictor.onnx", "sha256": "...", "modelId": "...",   // optional: src/prediction's
//       "rateHz": 10, "historySteps": 10, "horizonSteps": 30, "modes": 6,              // learned predictor, its
//       "agentClasses": ["vehicle", ...], "inputs": [...], "outputs": [...], "training": {...}, "metrics": {...} }   // card
//   },
//   "camera": { "width": 256, "height": 192, "heights": [-1.7, ...], "minDepth": 0.5,   // with the camera models:
//               "mean": [r, g, b], "std": [r, g, b], "lidarFusion": "max" }          // their input contract
// }
// Unknown top-level keys are allowed (a model card, training metadata); unknown keys inside the parts the runtime
// reads are refused, because a misspelt field there would silently fall back to a default.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { ObjectClass } from '../datasets/index.ts';
import { type AnchorClassSpec } from './anchors.ts';
import { BevGridError, validateGrid, type BevGrid } from './grid.ts';
import { PILLAR_FEATURE_NAMES, type CanvasQuantization } from './pillarize.ts';

export const MANIFEST_FORMAT_VERSION = 1;

/** Defaults of OpenCOOD's OPV2V PointPillars configs (postprocess: score_threshold 0.20, nms_thresh 0.15). */
export const DEFAULT_POSTPROCESS: Readonly<PostprocessSettings> = Object.freeze({
  scoreThreshold: 0.2,
  nmsIouThreshold: 0.15,
  preNmsTopK: 1000,
});

export const MODEL_ROLES = ['lidar_pfn', 'lidar_backbone', 'detection_head', 'fusion_attention', 'camera_backbone', 'camera_lift'] as const;
export type ModelRole = (typeof MODEL_ROLES)[number];

/**
 * Numeric precision of the convolution-heavy models: 'float32' (the trained files) or 'int8' (their post-training
 * QDQ quantisation, models.<role>.int8, for ONNX Runtime's CPU provider). Only lidar_backbone and detection_head
 * have int8 variants; the other models are cheap or element-wise.
 */
export const PRECISIONS = ['float32', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];
export const QUANTIZABLE_ROLES = ['lidar_backbone', 'detection_head'] as const satisfies readonly ModelRole[];

/** A manifest the runtime cannot use; `field` is the dotted path inside it ('' for the file as a whole). */
export class ManifestError extends Error {
  readonly userFacing = true;
  constructor(readonly manifestPath: string, readonly field: string, detail: string) {
    super(`model manifest ${manifestPath}${field ? `: ${field}` : ''}: ${detail}`);
    this.name = new.target.name;
  }
}

export interface PostprocessSettings {
  /** Keep anchors with sigmoid score strictly above this (OpenCOOD: torch.gt). */
  scoreThreshold: number;
  /** Suppress a box whose BEV IoU with a kept, higher-scoring box of its class is above this. */
  nmsIouThreshold: number;
  /** Highest-scoring candidates per class that go into NMS. */
  preNmsTopK: number;
}

export interface ModelFileEntry {
  /** Absolute path of the ONNX file. */
  path: string;
  /** As written in the manifest. */
  file: string;
  /** Lower-case hex. */
  sha256: string;
  /** The int8 (QDQ) variant of the same weights (lidar_backbone, detection_head), when the manifest names one. */
  int8?: ModelFileEntry;
  /** An int8 lidar_backbone that takes its canvas quantised (uint8, channels last): how to quantise it. */
  canvas?: CanvasQuantization;
}

/** One learned channel-reduction pair (codec stage `c<ratio>`): the sender's encoder and the receiver's decoder. */
export interface ChannelReductionEntry {
  /** C / reducedChannels. */
  ratio: number;
  /** Channels of the reduced map, grid.channels / ratio. */
  reducedChannels: number;
  encoder: ModelFileEntry;
  decoder: ModelFileEntry;
}

/**
 * The camera models' input contract (manifest `camera`): the image tensor size, the heights (LiDAR frame, m)
 * sampled in every BEV pillar, the lift's minimum depth, the per-channel normalisation, and how an agent with
 * LiDAR and cameras combines the two feature maps.
 */
export interface CameraModelSettings {
  width: number;
  height: number;
  heights: number[];
  minDepth: number;
  mean: [number, number, number];
  std: [number, number, number];
  /** 'max': element-wise max of the LiDAR and camera BEV features (both non-negative). */
  lidarFusion: 'max';
}

export interface PerceptionManifest {
  /** Absolute path of the manifest file. */
  source: string;
  formatVersion: number;
  modelId: string;
  description?: string;
  grid: BevGrid;
  pillar: { maxPointsPerPillar: number; maxPillars: number; features: string[] };
  anchors: AnchorClassSpec[];
  postprocess: PostprocessSettings;
  models: Partial<Record<ModelRole, ModelFileEntry>> & Record<'lidar_pfn' | 'lidar_backbone', ModelFileEntry>;
  /** The channel-reduction pairs (models.channel_reduction), by increasing ratio; empty when the manifest has none. */
  channelReduction: ChannelReductionEntry[];
  /** Present when the manifest ships the camera models (camera_backbone, camera_lift). */
  camera?: CameraModelSettings;
  /** models.motion_predictor, when the manifest ships a learned motion predictor. */
  motionPredictor?: MotionPredictorEntry;
  /** The precision `models` resolves to: 'float32' as loaded, 'int8' after withPrecision(manifest, 'int8'). */
  precision: Precision;
  /** The models that precision actually swapped in (a head without an int8 file stays float32); empty for float32. */
  int8Roles: ModelRole[];
}

/** The learned motion predictor's file and contract (models/README.md, src/prediction). */
export interface MotionPredictorEntry extends ModelFileEntry {
  modelId?: string;
  /** Rate of the history steps and the predicted waypoints, Hz. */
  rateHz: number;
  historySteps: number;
  horizonSteps: number;
  modes: number;
  /** The one-hot order of the model's agent_class input. */
  agentClasses: ObjectClass[];
}

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const positive = finite.refine((v) => v > 0, 'must be > 0');
const positiveInt = z.number().int().positive();
const objectClass = z.enum(['vehicle', 'pedestrian', 'cyclist', 'other'] satisfies ObjectClass[]);

const gridSchema = z
  .object({
    xMin: finite, xMax: finite, yMin: finite, yMax: finite, zMin: finite, zMax: finite,
    cellSize: positive, featureStride: positiveInt, channels: positiveInt,
  })
  .strict();

const modelFileSchema = z
  .object({
    file: z.string().min(1),
    sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (sha256 of the file)'),
  })
  .strict();

// An int8 variant: its file and hash, plus how it was calibrated (a card: not read by the runtime).
// The scale is the model's float32 QuantizeLinear scale: the encoder quantises with it in float32 arithmetic, so a
// value float32 cannot hold would quantise differently from the model's own calibration.
const canvasQuantizationSchema = z
  .object({
    layout: z.literal('NHWC'),
    type: z.literal('uint8'),
    scale: z.number().positive().finite().refine((v) => Math.fround(v) === v, 'must be a float32 value (the model\'s QuantizeLinear scale as float32 holds it)'),
    zeroPoint: z.literal(0),
  })
  .strict();
const quantizedFileSchema = modelFileSchema
  .extend({ canvas: canvasQuantizationSchema.optional(), calibration: z.record(z.string(), z.unknown()).optional() })
  .strict();
const quantizableFileSchema = modelFileSchema.extend({ int8: quantizedFileSchema.optional() }).strict();

const manifestSchema = z.looseObject({
  formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
  modelId: z.string().min(1),
  description: z.string().optional(),
  grid: gridSchema,
  pillar: z
    .object({ maxPointsPerPillar: positiveInt, maxPillars: positiveInt, features: z.array(z.string()) })
    .strict(),
  anchors: z
    .array(z.object({ cls: objectClass, l: positive, w: positive, h: positive, z: finite, yaws: z.array(finite).min(1) }).strict())
    .min(1),
  postprocess: z
    .object({
      scoreThreshold: finite.refine((v) => v >= 0 && v < 1, 'must be in [0, 1)').optional(),
      nmsIouThreshold: finite.refine((v) => v >= 0 && v <= 1, 'must be in [0, 1]').optional(),
      preNmsTopK: positiveInt.optional(),
    })
    .strict()
    .optional(),
  models: z
    .object({
      lidar_pfn: modelFileSchema,
      lidar_backbone: quantizableFileSchema,
      detection_head: quantizableFileSchema.optional(),
      fusion_attention: modelFileSchema.optional(),
      camera_backbone: modelFileSchema.optional(),
      camera_lift: modelFileSchema.optional(),
      motion_predictor: modelFileSchema
        .extend({
          modelId: z.string().min(1).optional(),
          rateHz: positive,
          historySteps: positiveInt,
          horizonSteps: positiveInt,
          modes: positiveInt,
          agentClasses: z.array(objectClass).min(1),
          // The model card: tensor shapes, training data, measured metrics (not read by the runtime).
          inputs: z.array(z.unknown()).optional(),
          outputs: z.array(z.unknown()).optional(),
          training: z.record(z.string(), z.unknown()).optional(),
          metrics: z.record(z.string(), z.unknown()).optional(),
        })
        .strict()
        .optional(),
      channel_reduction: z
        .record(
          z.string().regex(/^[1-9]\d*$/, 'must be the reduction ratio as a whole number, e.g. "16"'),
          z.object({ encoder: modelFileSchema, decoder: modelFileSchema }).strict(),
        )
        .optional(),
    })
    .strict(),
  camera: z
    .object({
      width: positiveInt,
      height: positiveInt,
      heights: z.array(finite).min(1),
      minDepth: finite.refine((v) => v >= 0, 'must be ≥ 0'),
      mean: z.tuple([finite, finite, finite]),
      std: z.tuple([positive, positive, positive]),
      lidarFusion: z.literal('max'),
    })
    .strict()
    .optional(),
});

function fieldPath(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${String(k)}`)).join('');
}

/**
 * Checks a parsed manifest object and resolves its model paths against `source`'s folder. Throws a ManifestError
 * naming the first offending field. Does not touch the model files (the runtime hashes them when it loads them).
 */
export function parseManifest(json: unknown, source: string): PerceptionManifest {
  const result = manifestSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    let p = [...issue.path];
    if (issue.code === 'unrecognized_keys' && issue.keys.length >= 1) p = [...p, issue.keys[0]];
    // A record key that fails its pattern (models.channel_reduction) reports the pattern's own message inside.
    const detail =
      issue.code === 'unrecognized_keys' ? 'unknown field' : issue.code === 'invalid_key' ? (issue.issues[0]?.message ?? issue.message) : issue.message;
    throw new ManifestError(source, fieldPath(p), detail);
  }
  const m = result.data;
  let grid: BevGrid;
  try {
    grid = validateGrid({ ...m.grid });
  } catch (err) {
    if (err instanceof BevGridError) throw new ManifestError(source, `grid.${err.field}`, err.message);
    throw err;
  }
  // The Pillarizer defines the per-point features; a model trained on another layout would run and be wrong.
  if (m.pillar.features.join(',') !== PILLAR_FEATURE_NAMES.join(',')) {
    throw new ManifestError(
      source,
      'pillar.features',
      `[${m.pillar.features.join(', ')}] differs from the Pillarizer's [${PILLAR_FEATURE_NAMES.join(', ')}]`,
    );
  }
  const seen = new Set<string>();
  m.anchors.forEach((a, i) => {
    if (seen.has(a.cls)) throw new ManifestError(source, `anchors[${i}].cls`, `'${a.cls}' is listed twice`);
    seen.add(a.cls);
  });
  const dir = path.dirname(path.resolve(source));
  const models: Partial<Record<ModelRole, ModelFileEntry>> = {};
  for (const role of MODEL_ROLES) {
    const entry: { file: string; sha256: string; int8?: { file: string; sha256: string; canvas?: { scale: number } } } | undefined = m.models[role];
    if (!entry) continue;
    models[role] = { file: entry.file, path: path.resolve(dir, entry.file), sha256: entry.sha256.toLowerCase() };
    if (entry.int8) {
      models[role].int8 = { file: entry.int8.file, path: path.resolve(dir, entry.int8.file), sha256: entry.int8.sha256.toLowerCase() };
      if (entry.int8.canvas) {
        // Only the backbone has a canvas input.
        if (role !== 'lidar_backbone') throw new ManifestError(source, `models.${role}.int8.canvas`, 'only lidar_backbone takes a canvas');
        models[role].int8.canvas = { layout: 'NHWC', type: 'uint8', scale: entry.int8.canvas.scale };
      }
    }
  }
  const channelReduction: ChannelReductionEntry[] = [];
  for (const [key, pair] of Object.entries(m.models.channel_reduction ?? {})) {
    const ratio = Number(key);
    // The pair maps C → C / ratio channels: a ratio that does not divide C cannot be what the models do.
    if (ratio < 2 || grid.channels % ratio !== 0) {
      throw new ManifestError(source, `models.channel_reduction.${key}`, `ratio ${key} must be ≥ 2 and divide grid.channels (${grid.channels})`);
    }
    const file = (e: { file: string; sha256: string }): ModelFileEntry => ({ file: e.file, path: path.resolve(dir, e.file), sha256: e.sha256.toLowerCase() });
    channelReduction.push({ ratio, reducedChannels: grid.channels / ratio, encoder: file(pair.encoder), decoder: file(pair.decoder) });
  }
  channelReduction.sort((a, b) => a.ratio - b.ratio);
  // The camera models are only usable together and with their input contract.
  const cameraParts = [m.models.camera_backbone, m.models.camera_lift, m.camera];
  if (cameraParts.some(Boolean) && !cameraParts.every(Boolean)) {
    const missing = !m.models.camera_backbone ? 'models.camera_backbone' : !m.models.camera_lift ? 'models.camera_lift' : 'camera';
    throw new ManifestError(source, missing, 'missing: camera_backbone, camera_lift and camera come together');
  }
  return {
    source: path.resolve(source),
    formatVersion: m.formatVersion,
    modelId: m.modelId,
    description: m.description,
    grid,
    pillar: { ...m.pillar },
    anchors: m.anchors.map((a) => ({ ...a, yaws: [...a.yaws] })),
    postprocess: { ...DEFAULT_POSTPROCESS, ...m.postprocess },
    models: models as PerceptionManifest['models'],
    channelReduction,
    ...(m.models.motion_predictor ? { motionPredictor: motionPredictorEntry(m.models.motion_predictor, dir) } : {}),
    ...(m.camera ? { camera: { ...m.camera, heights: [...m.camera.heights], mean: [...m.camera.mean], std: [...m.camera.std] } } : {}),
    precision: 'float32',
    int8Roles: [],
  };
}

/**
 * The manifest with lidar_backbone and detection_head resolved to `precision`. 'int8' needs the backbone's int8
 * variant (it is what the option is for); a head without one stays float32. Everything else (grid, modelId, the
 * other models) is unchanged: the int8 backbone computes the same features within its quantisation error, so its
 * messages stay compatible with float receivers.
 */
export function withPrecision(manifest: PerceptionManifest, precision: Precision): PerceptionManifest {
  if (!PRECISIONS.includes(precision)) throw new ManifestError(manifest.source, '', `precision '${String(precision)}' is not one of ${PRECISIONS.join(', ')}`);
  if (precision === manifest.precision) return manifest;
  if (manifest.precision !== 'float32') throw new ManifestError(manifest.source, '', `already resolved to ${manifest.precision}`);
  if (!manifest.models.lidar_backbone.int8) {
    throw new ManifestError(manifest.source, 'models.lidar_backbone.int8', 'missing: this manifest ships no int8 backbone (tools/train/quantize.py --install writes one)');
  }
  const models = { ...manifest.models };
  const int8Roles: ModelRole[] = [];
  for (const role of QUANTIZABLE_ROLES) {
    const int8 = manifest.models[role]?.int8;
    if (int8) {
      models[role] = { ...int8 };
      int8Roles.push(role);
    }
  }
  return { ...manifest, models, precision, int8Roles };
}

function motionPredictorEntry(
  e: { file: string; sha256: string; modelId?: string; rateHz: number; historySteps: number; horizonSteps: number; modes: number; agentClasses: ObjectClass[] },
  dir: string,
): MotionPredictorEntry {
  const { file, sha256, modelId, rateHz, historySteps, horizonSteps, modes, agentClasses } = e;
  return {
    file, path: path.resolve(dir, file), sha256: sha256.toLowerCase(),
    ...(modelId ? { modelId } : {}),
    rateHz, historySteps, horizonSteps, modes, agentClasses: [...agentClasses],
  };
}

/** The channel-reduction ratios a manifest has pairs for: what the codec's CodecCapabilities.channelReductionRatios wants. */
export function channelReductionRatios(manifest: PerceptionManifest): number[] {
  return manifest.channelReduction.map((e) => e.ratio);
}

/** Reads and checks models/manifest.json (or any manifest path). */
export async function loadManifest(manifestPath: string): Promise<PerceptionManifest> {
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ManifestError(manifestPath, '', code === 'ENOENT' ? 'no such file' : `cannot read: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(manifestPath, '', `not valid JSON: ${(err as Error).message}`);
  }
  return parseManifest(json, manifestPath);
}
