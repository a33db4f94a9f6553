// Early fusion: the collaborators' raw points, moved into the ego frame and appended to the ego's own, feed the
// ego's encoder as one point cloud (OpenCOOD's early fusion, opencood/data_utils/datasets/early_fusion_dataset.py:
// project each CAV's points with its transformation_matrix to the ego, concatenate). The ego's points come first:
// the pillariser opens pillars in input order, so when a merged cloud fills every pillar slot the ego's own cells
// are the ones kept.
import type { Mat4 } from '../geometry/index.ts';
import { LidarEncoder, gridHeight, gridWidth, type PerceptionModels } from '../perception/index.ts';
import { FusionInputError } from './warp.ts';

/** Floats per point record: x, y, z, intensity (the dataset readers' and the point codec's layout). */
export const MERGED_POINT_STRIDE = 4;

/** The point codec travelling early-fusion clouds by default: 1 cm steps, deflate (src/codec/points.ts). */
export const DEFAULT_POINT_CODEC = '1cm+deflate';

export interface SenderPoints {
  /** x, y, z, intensity records in the sender's agent frame. */
  points: Float32Array;
  /** Sender agent frame → ego agent frame. */
  senderToEgo: Mat4;
}

/** Floats mergePointClouds writes for these inputs (the size an `out` buffer needs). */
export function mergedLength(ego: Float32Array, others: readonly SenderPoints[]): number {
  let n = ego.length;
  for (const o of others) n += o.points.length;
  return n;
}

/**
 * The ego's points followed by every sender's points transformed into the ego frame (x, y, z through
 * senderToEgo; intensity copied). Writes into `out` when given (its length must be at least mergedLength; the
 * caller keeps one buffer across frames) and returns the filled part: `out.subarray(0, mergedLength)`, a view,
 * not a copy. Without `out` a new array is allocated.
 */
export function mergePointClouds(ego: Float32Array, others: readonly SenderPoints[], out?: Float32Array): Float32Array {
  const S = MERGED_POINT_STRIDE;
  if (ego.length % S !== 0) throw new FusionInputError('ego.length', ego.length, `is not a whole number of ${S}-float points`);
  others.forEach((o, k) => {
    if (o.points.length % S !== 0) throw new FusionInputError(`others[${k}].points.length`, o.points.length, `is not a whole number of ${S}-float points`);
    if (o.senderToEgo.length !== 16 || !o.senderToEgo.every(Number.isFinite)) {
      throw new FusionInputError(`others[${k}].senderToEgo`, `[${Array.from(o.senderToEgo).join(', ')}]`, 'must be 16 finite numbers (a 4x4 row-major matrix)');
    }
  });
  const total = mergedLength(ego, others);
  const dst = out ? out.subarray(0, total) : new Float32Array(total);
  if (dst.length < total) throw new FusionInputError('out.length', out!.length, `must be at least ${total} (the merged points' floats)`);
  for (const o of others) if (o.points.buffer === dst.buffer && o.points.byteLength > 0) throw new FusionInputError('out', 'a sender\'s points', 'must not share memory with the inputs');
  dst.set(ego, 0);
  let at = ego.length;
  for (const { points, senderToEgo: m } of others) {
    const m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3];
    const m4 = m[4], m5 = m[5], m6 = m[6], m7 = m[7];
    const m8 = m[8], m9 = m[9], m10 = m[10], m11 = m[11];
    for (let i = 0; i < points.length; i += S, at += S) {
      const x = points[i], y = points[i + 1], z = points[i + 2];
      dst[at] = m0 * x + m1 * y + m2 * z + m3;
      dst[at + 1] = m4 * x + m5 * y + m6 * z + m7;
      dst[at + 2] = m8 * x + m9 * y + m10 * z + m11;
      dst[at + 3] = points[i + 3];
    }
  }
  return dst;
}

/**
 * The ego's encoder (the same loaded ONNX models) with a pillar budget for a merged cloud: the manifest's
 * maxPillars per agent, at most one per grid cell, unless `maxPillars` fixes it. Four merged clouds overflow one
 * agent's budget, and the pillars dropped would be the collaborators'. Grown on demand and kept (~1.5 kB a pillar).
 */
export class MergedCloudEncoder {
  private grown: { encoder: LidarEncoder; maxPillars: number } | undefined;

  constructor(readonly models: PerceptionModels, readonly maxPillars?: number) {}

  encoderFor(agentCount: number): LidarEncoder {
    const lidar = this.models.lidar;
    const pillar = this.models.manifest.pillar;
    const cells = gridWidth(this.models.grid) * gridHeight(this.models.grid);
    const want = this.maxPillars ?? Math.min(cells, pillar.maxPillars * agentCount);
    if (want <= pillar.maxPillars) return lidar;
    if (!this.grown || this.grown.maxPillars < want) {
      this.grown = { encoder: new LidarEncoder(this.models.grid, { ...pillar, maxPillars: want }, lidar.pfn, lidar.backbone, undefined, lidar.canvasQuantization), maxPillars: want };
    }
    return this.grown.encoder;
  }
}
