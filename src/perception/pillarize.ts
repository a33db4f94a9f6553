// PointPillars pillarisation on typed arrays, and the scatter of per-pillar features back onto the BEV canvas.
// The agent runs this in front of the ONNX pillar feature net; tools/train reads the very same output, so the
// features are defined once, here.
//
// Grouping follows spconv 2.x Point2VoxelCPU::point_to_voxel_static (what OpenCOOD's SpVoxelPreprocessor calls,
// DerrickXuNu/OpenCOOD opencood/data_utils/pre_processor/sp_voxel_preprocessor.py), with one voxel spanning the
// whole z range (OpenCOOD's voxel_size [s, s, zMax − zMin]):
//   - a point's cell is floor((p − min) / size) per axis; outside [0, cells) it is dropped;
//   - points are visited in input order; a point whose cell has no pillar yet opens one, unless maxPillars are
//     already open: then the point is dropped (and so is every later point of that cell), but points of cells
//     that already have a pillar are still taken. First come, first served, so the result is deterministic;
//   - a pillar keeps its first maxPointsPerPillar points; later ones are dropped.
//
// Per-point features follow OpenCOOD's PillarVFE (credited there to OpenPCDet;
// opencood/models/sub_modules/pillar_vfe.py, e.g. CAVISE/OpenCOOD) with use_absolute_xyz = true and
// with_distance = false, the setting of every OpenCOOD PointPillars config (e.g. opencood/hypes_yaml/
// point_pillar_intermediate_fusion.yaml):
//   [x, y, z, intensity,                           the raw point (voxel_features)
//    x − x̄, y − ȳ, z − z̄,                          f_cluster: offset from the mean of the pillar's kept points
//    x − xc, y − yc, z − zc]                         f_center: offset from the pillar centre; zc = (zMin + zMax) / 2
// so F = 10 (the original PointPillars paper has 9, without z − zc; OpenPCDet/OpenCOOD add it). PillarVFE
// multiplies padded slots by a mask; here they are simply zero, which is the same tensor. The ONNX pillar
// feature net therefore takes these features as they are and must not recompute them.

import { gridHeight, gridWidth, validateGrid, type BevGrid } from './grid.ts';

/** Floats per input point: x, y, z, intensity (the layout every dataset reader returns). */
export const POINT_STRIDE = 4;

/** Names of the per-point features, in tensor order. */
export const PILLAR_FEATURE_NAMES = [
  'x',
  'y',
  'z',
  'intensity',
  'xMinusMeanX',
  'yMinusMeanY',
  'zMinusMeanZ',
  'xMinusCenterX',
  'yMinusCenterY',
  'zMinusCenterZ',
] as const;

export const PILLAR_FEATURE_COUNT = PILLAR_FEATURE_NAMES.length;

/** Bad input to the Pillarizer or the scatter; `field` names the argument or option. */
export class PillarizeError extends Error {
  constructor(readonly field: string, readonly value: unknown, detail: string) {
    super(`${field} = ${String(value)}: ${detail}`);
    this.name = new.target.name;
  }
}

export interface PillarizerOptions {
  /** Points kept per pillar (OpenCOOD: max_points_per_voxel = 32). */
  maxPointsPerPillar?: number;
  /** Pillars kept per frame; fixes the first dimension of the ONNX input. */
  maxPillars?: number;
}

/**
 * One frame's pillars. The arrays are the Pillarizer's own buffers at full capacity (fixed shapes for the
 * ONNX model): rows past pillarCount, and slots past numPoints[p] within a pillar, are zero. The next
 * pillarize() call overwrites them; copy what must outlive it.
 */
export interface PillarBatch {
  /** [maxPillars, maxPointsPerPillar, featureCount], zero-padded. */
  readonly features: Float32Array;
  /** [maxPillars, 2]: (row = y index, col = x index) of each pillar, as cellOf gives them. */
  readonly coords: Int32Array;
  /** [maxPillars]: points kept in each pillar (0 past pillarCount). */
  readonly numPoints: Int32Array;
  /**
   * The same kept points' features without padding, [keptPoints, featureCount] in its first rows: pillar p's points
   * are rows pillarStart[p] .. pillarStart[p + 1] − 1, in slot order. Grow-only: a frame with more kept points
   * than any before replaces it with a larger buffer (rows past keptPoints are stale).
   */
  pointFeatures: Float32Array;
  /** [maxPillars + 1]: first row of each pillar in pointFeatures; pillarStart[pillarCount] = keptPoints. */
  readonly pillarStart: Int32Array;
  readonly maxPillars: number;
  readonly maxPointsPerPillar: number;
  readonly featureCount: number;
  /** Pillars filled this frame (rows 0 .. pillarCount − 1 are valid). */
  pillarCount: number;
  /** Points given this frame. */
  inputPoints: number;
  /** Points that made it into a pillar. */
  keptPoints: number;
  /** Points left out for any reason: inputPoints − keptPoints. */
  droppedPoints: number;
  /** Of droppedPoints, those outside the grid's x, y or z range (NaN included). */
  outOfRangePoints: number;
  /** Occupied cells that got no pillar because maxPillars were already open. */
  droppedPillars: number;
}

const NO_PILLAR = -1;
// A cell refused a pillar this frame: later points of the cell are dropped without re-counting the pillar.
const REFUSED_CELL = -2;

export class Pillarizer {
  readonly grid: BevGrid;
  readonly maxPointsPerPillar: number;
  readonly maxPillars: number;
  private readonly width: number;
  private readonly height: number;
  private readonly batch: PillarBatch;
  // Pillar index per cell (row-major [H, W]); kept all NO_PILLAR between calls by undoing only touched cells.
  private readonly cellToPillar: Int32Array;
  private readonly refusedCells: Int32Array;
  private readonly sumX: Float64Array;
  private readonly sumY: Float64Array;
  private readonly sumZ: Float64Array;
  // Our own record of the last frame's pillars: the batch's fields are readable (and writable) by callers.
  private lastPillarCount = 0;

  constructor(grid: BevGrid, opts: PillarizerOptions = {}) {
    this.grid = { ...validateGrid(grid) };
    const maxPointsPerPillar = opts.maxPointsPerPillar ?? 32;
    const maxPillars = opts.maxPillars ?? 16000;
    if (!Number.isInteger(maxPointsPerPillar) || maxPointsPerPillar < 1) {
      throw new PillarizeError('maxPointsPerPillar', maxPointsPerPillar, 'must be a positive integer');
    }
    if (!Number.isInteger(maxPillars) || maxPillars < 1) {
      throw new PillarizeError('maxPillars', maxPillars, 'must be a positive integer');
    }
    this.maxPointsPerPillar = maxPointsPerPillar;
    this.maxPillars = maxPillars;
    this.width = gridWidth(this.grid);
    this.height = gridHeight(this.grid);
    const cells = this.width * this.height;
    this.cellToPillar = new Int32Array(cells).fill(NO_PILLAR);
    this.refusedCells = new Int32Array(Math.max(0, cells - maxPillars));
    this.sumX = new Float64Array(maxPillars);
    this.sumY = new Float64Array(maxPillars);
    this.sumZ = new Float64Array(maxPillars);
    this.batch = {
      features: new Float32Array(maxPillars * maxPointsPerPillar * PILLAR_FEATURE_COUNT),
      coords: new Int32Array(maxPillars * 2),
      numPoints: new Int32Array(maxPillars),
      pointFeatures: new Float32Array(0),
      pillarStart: new Int32Array(maxPillars + 1),
      maxPillars,
      maxPointsPerPillar,
      featureCount: PILLAR_FEATURE_COUNT,
      pillarCount: 0,
      inputPoints: 0,
      keptPoints: 0,
      droppedPoints: 0,
      outOfRangePoints: 0,
      droppedPillars: 0,
    };
  }

  /**
   * Groups `count` x, y, z, intensity records (all of `points` by default) into pillars. Returns the same
   * PillarBatch object every call, its buffers overwritten.
   */
  pillarize(points: Float32Array, count = Math.floor(points.length / POINT_STRIDE)): PillarBatch {
    if (points.length % POINT_STRIDE !== 0) {
      throw new PillarizeError('points.length', points.length, `must be a multiple of ${POINT_STRIDE} (x, y, z, intensity records)`);
    }
    if (!Number.isInteger(count) || count < 0 || count * POINT_STRIDE > points.length) {
      throw new PillarizeError('count', count, `must be an integer in 0..${points.length / POINT_STRIDE} (records in points)`);
    }
    this.clearPreviousFrame();

    const { features, coords, numPoints } = this.batch;
    const { cellToPillar, refusedCells, sumX, sumY, sumZ } = this;
    const { xMin, yMin, zMin, zMax, cellSize } = this.grid;
    const width = this.width;
    const height = this.height;
    const maxPoints = this.maxPointsPerPillar;
    const maxPillars = this.maxPillars;
    const F = PILLAR_FEATURE_COUNT;

    let pillarCount = 0;
    let kept = 0;
    let outOfRange = 0;
    let refused = 0;

    for (let i = 0, o = 0; i < count; i++, o += POINT_STRIDE) {
      const x = points[o];
      const y = points[o + 1];
      const z = points[o + 2];
      // The same formula as cellOf (grid.ts); the negated test also rejects NaN.
      const col = Math.floor((x - xMin) / cellSize);
      const row = Math.floor((y - yMin) / cellSize);
      if (!(col >= 0 && col < width && row >= 0 && row < height && z >= zMin && z < zMax)) {
        outOfRange++;
        continue;
      }
      const cell = row * width + col;
      let p = cellToPillar[cell];
      if (p < 0) {
        if (p === REFUSED_CELL) continue;
        if (pillarCount === maxPillars) {
          cellToPillar[cell] = REFUSED_CELL;
          refusedCells[refused++] = cell;
          continue;
        }
        p = pillarCount++;
        cellToPillar[cell] = p;
        coords[2 * p] = row;
        coords[2 * p + 1] = col;
      }
      const n = numPoints[p];
      if (n === maxPoints) continue;
      const base = (p * maxPoints + n) * F;
      features[base] = x;
      features[base + 1] = y;
      features[base + 2] = z;
      features[base + 3] = points[o + 3];
      sumX[p] += x;
      sumY[p] += y;
      sumZ[p] += z;
      numPoints[p] = n + 1;
      kept++;
    }

    const batch = this.batch;
    if (batch.pointFeatures.length < kept * F) {
      // Grow with headroom so a slowly rising point count does not reallocate every frame.
      batch.pointFeatures = new Float32Array(Math.min(Math.ceil(kept * 1.25), maxPillars * maxPoints) * F);
    }
    const packed = batch.pointFeatures;
    const pillarStart = batch.pillarStart;
    const zCenter = zMin + (zMax - zMin) / 2;
    let row = 0;
    for (let p = 0; p < pillarCount; p++) {
      const n = numPoints[p];
      pillarStart[p] = row;
      const meanX = sumX[p] / n;
      const meanY = sumY[p] / n;
      const meanZ = sumZ[p] / n;
      const xCenter = xMin + (coords[2 * p + 1] + 0.5) * cellSize;
      const yCenter = yMin + (coords[2 * p] + 0.5) * cellSize;
      for (let k = 0, base = p * maxPoints * F; k < n; k++, base += F) {
        const px = features[base];
        const py = features[base + 1];
        const pz = features[base + 2];
        features[base + 4] = px - meanX;
        features[base + 5] = py - meanY;
        features[base + 6] = pz - meanZ;
        features[base + 7] = px - xCenter;
        features[base + 8] = py - yCenter;
        features[base + 9] = pz - zCenter;
        // F = 10, spelled out: a subarray per point would allocate 30k views a frame.
        const dst = row * F;
        packed[dst] = px;
        packed[dst + 1] = py;
        packed[dst + 2] = pz;
        packed[dst + 3] = features[base + 3];
        packed[dst + 4] = features[base + 4];
        packed[dst + 5] = features[base + 5];
        packed[dst + 6] = features[base + 6];
        packed[dst + 7] = features[base + 7];
        packed[dst + 8] = features[base + 8];
        packed[dst + 9] = features[base + 9];
        row++;
      }
    }
    pillarStart[pillarCount] = row;

    // Leave the cell map clean for the next frame: only the cells this frame touched.
    for (let p = 0; p < pillarCount; p++) cellToPillar[coords[2 * p] * width + coords[2 * p + 1]] = NO_PILLAR;
    for (let t = 0; t < refused; t++) cellToPillar[refusedCells[t]] = NO_PILLAR;

    this.lastPillarCount = pillarCount;
    batch.pillarCount = pillarCount;
    batch.inputPoints = count;
    batch.keptPoints = kept;
    batch.droppedPoints = count - kept;
    batch.outOfRangePoints = outOfRange;
    batch.droppedPillars = refused;
    return batch;
  }

  // Zeroes exactly what the previous frame wrote, so output buffers read as freshly zeroed.
  private clearPreviousFrame(): void {
    const { features, coords, numPoints } = this.batch;
    const slot = this.maxPointsPerPillar * PILLAR_FEATURE_COUNT;
    for (let p = 0; p < this.lastPillarCount; p++) {
      const start = p * slot;
      features.fill(0, start, start + numPoints[p] * PILLAR_FEATURE_COUNT);
      numPoints[p] = 0;
      this.batch.pillarStart[p + 1] = 0;
      coords[2 * p] = 0;
      coords[2 * p + 1] = 0;
      this.sumX[p] = 0;
      this.sumY[p] = 0;
      this.sumZ[p] = 0;
    }
    this.lastPillarCount = 0;
    this.batch.pillarCount = 0;
  }
}

/** Coords from a Pillarizer on a different grid would land in the wrong cells or off the canvas. */
function checkPillarsOnGrid(batch: PillarBatch, width: number, height: number): void {
  const coords = batch.coords;
  for (let p = 0; p < batch.pillarCount; p++) {
    if (coords[2 * p] >= height || coords[2 * p + 1] >= width) {
      throw new PillarizeError(
        'grid',
        `${width} × ${height}`,
        `pillar ${p} at (row ${coords[2 * p]}, col ${coords[2 * p + 1]}) is outside it: the batch comes from another grid`,
      );
    }
  }
}

/**
 * PointPillarScatter (OpenCOOD opencood/models/sub_modules/point_pillar_scatter.py): writes pillar p's C features
 * to out[c, row, col] of a [C, H, W] canvas, H along y and W along x, after zeroing the whole canvas; cells
 * without a pillar stay zero. `pillarFeatures` is [rows, C] with rows ≥ pillarCount (the ONNX output for all
 * maxPillars rows is fine; rows past pillarCount are ignored).
 */
export function scatterToBev(
  batch: PillarBatch,
  pillarFeatures: Float32Array,
  C: number,
  grid: BevGrid,
  out?: Float32Array,
): Float32Array {
  if (!Number.isInteger(C) || C < 1) throw new PillarizeError('C', C, 'must be a positive integer');
  const width = gridWidth(grid);
  const height = gridHeight(grid);
  const plane = width * height;
  const pillarCount = batch.pillarCount;
  if (pillarFeatures.length < pillarCount * C) {
    throw new PillarizeError('pillarFeatures.length', pillarFeatures.length, `must hold ${pillarCount} pillars × ${C} channels`);
  }
  const canvas = out ?? new Float32Array(C * plane);
  if (canvas.length !== C * plane) {
    throw new PillarizeError('out.length', canvas.length, `must be C × H × W = ${C} × ${height} × ${width}`);
  }
  checkPillarsOnGrid(batch, width, height);
  const coords = batch.coords;
  canvas.fill(0);
  // Channel-major: each pass writes within one [H, W] plane. Measured faster than pillar-major, whose writes
  // jump a whole plane apart (16000 pillars × 64 channels: 8.5 → 4.5 ms in isolation, 8.6 → 7.0 ms in
  // tools/bench-pillarize.ts).
  for (let c = 0; c < C; c++) {
    const planeStart = c * plane;
    for (let p = 0, src = c; p < pillarCount; p++, src += C) {
      canvas[planeStart + coords[2 * p] * width + coords[2 * p + 1]] = pillarFeatures[src];
    }
  }
  return canvas;
}

/**
 * How an int8 backbone takes its canvas (manifest models.lidar_backbone.int8.canvas): already quantised, uint8
 * [1, H, W, C] (channels last), q = QuantizeLinear(x, scale, zero point 0). Its graph then starts at its first
 * quantised convolution, without quantising and transposing a 16 MB float canvas first.
 */
export interface CanvasQuantization {
  readonly layout: 'NHWC';
  readonly type: 'uint8';
  /** x ≈ q · scale: the float32 value of the QuantizeLinear scale the canvas was calibrated with. */
  readonly scale: number;
}

/**
 * ONNX QuantizeLinear to uint8 with zero point 0, as ONNX Runtime computes it: x / scale in float32, rounded half to
 * even, saturated to 0..255. (float32 division done in float64 and rounded once is the float32 quotient exactly.)
 */
export function quantizeToUint8(x: number, scale: number): number {
  const v = Math.fround(x / scale);
  if (!(v > 0)) return 0; // negatives, zero and NaN
  if (v >= 255) return 255;
  let q = Math.round(v);
  if (q - v === 0.5 && (q & 1) === 1) q--; // Math.round takes ties up; QuantizeLinear to even
  return q;
}

/**
 * scatterToBev for a quantised canvas: pillar p's C features, quantised (quantizeToUint8), to out[row, col, c] of a
 * [H, W, C] byte canvas, after zeroing it (4 MB here, against the float canvas's 16). Channels last, each pillar's
 * features land in C adjacent bytes.
 */
export function scatterToBevQuantized(
  batch: PillarBatch,
  pillarFeatures: Float32Array,
  C: number,
  grid: BevGrid,
  scale: number,
  out?: Uint8Array,
): Uint8Array {
  if (!Number.isInteger(C) || C < 1) throw new PillarizeError('C', C, 'must be a positive integer');
  if (!(scale > 0) || !Number.isFinite(scale)) throw new PillarizeError('scale', scale, 'must be a positive finite number');
  const width = gridWidth(grid);
  const height = gridHeight(grid);
  const pillarCount = batch.pillarCount;
  if (pillarFeatures.length < pillarCount * C) {
    throw new PillarizeError('pillarFeatures.length', pillarFeatures.length, `must hold ${pillarCount} pillars × ${C} channels`);
  }
  const canvas = out ?? new Uint8Array(C * width * height);
  if (canvas.length !== C * width * height) {
    throw new PillarizeError('out.length', canvas.length, `must be H × W × C = ${height} × ${width} × ${C}`);
  }
  checkPillarsOnGrid(batch, width, height);
  const coords = batch.coords;
  canvas.fill(0);
  // x · (1 / scale) in float64 is within 2e-5 of QuantizeLinear's float32 x / scale over 0..255, so it rounds the
  // same unless it lies that close to a half: those few go through quantizeToUint8 itself. (The division for every
  // value made this scatter slower than the float one: 3.6 against 2.6 ms.)
  const inverse = 1 / scale;
  for (let p = 0, src = 0; p < pillarCount; p++) {
    const dst = (coords[2 * p] * width + coords[2 * p + 1]) * C;
    for (let c = 0; c < C; c++, src++) {
      const x = pillarFeatures[src];
      const shifted = x * inverse + 0.5;
      let q = 0;
      if (shifted >= 255.5) q = 255;
      else if (shifted > 0.5) {
        q = shifted | 0;
        const frac = shifted - q;
        if (frac < 1e-4 || frac > 1 - 1e-4) q = quantizeToUint8(x, scale);
      }
      canvas[dst + c] = q;
    }
  }
  return canvas;
}
