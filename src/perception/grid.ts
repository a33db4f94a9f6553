// The bird's-eye-view grid every LiDAR/camera encoder, codec and fusion step agrees on (DESIGN.md: "One grid
// description ... lives in the model manifest and travels in every feature message").
//
// Convention (the same as OpenCOOD's, whose voxel coords are (z, y, x) and whose canvas is [C, ny, nx]):
//   - BEV tensors are [C, H, W], H along y, W along x, row-major (x varies fastest).
//   - Row 0 is yMin, column 0 is xMin (no flip: row r grows with y, column c grows with x).
//   - Cell (row r, col c) covers x ∈ [xMin + c·s, xMin + (c+1)·s) and y ∈ [yMin + r·s, yMin + (r+1)·s),
//     s = cellSize: lower edges inclusive, upper edges exclusive, so x = xMax is outside the grid.
//   - The cell of a point is floor((x − xMin) / s), exactly as spconv's VoxelGenerator computes it.
//   - z is not gridded: a pillar spans the whole [zMin, zMax) (OpenCOOD's voxel_size z = zMax − zMin).

/** Any field of a BevGrid that makes it unusable; `field` names it, `value` is what was given. */
export class BevGridError extends Error {
  constructor(readonly field: string, readonly value: unknown, detail: string) {
    super(`BEV grid: ${field} = ${String(value)}: ${detail}`);
    this.name = new.target.name;
  }
}

export interface BevGrid {
  /** Metric range in the agent frame (metres); lower bounds inclusive, upper bounds exclusive. */
  xMin: number;
  xMax: number;
  yMin: number;
  yMax: number;
  zMin: number;
  zMax: number;
  /** Pillar (grid cell) edge length, metres. */
  cellSize: number;
  /** Downsampling from the pillar grid to the feature map the backbone outputs. */
  featureStride: number;
  /** Feature channels at the backbone output. */
  channels: number;
}

/**
 * Ego-centred 360° grid: ±51.2 m in x and y at 0.4 m pillars (256 × 256), 128 × 128 features at stride 2.
 * z is relative to the LiDAR (about 1.9 m above the road on OPV2V cars): −3..1 m, as OpenCOOD's OPV2V configs
 * (`cav_lidar_range: [-140.8, -40, -3, 140.8, 40, 1]`, DerrickXuNu/OpenCOOD opencood/hypes_yaml/
 * point_pillar_intermediate_fusion.yaml); we trade their long forward strip for a square that covers all
 * directions. `channels` is a placeholder: the model manifest is the source of truth for a trained model.
 */
export const DEFAULT_BEV_GRID: Readonly<BevGrid> = Object.freeze({
  xMin: -51.2,
  xMax: 51.2,
  yMin: -51.2,
  yMax: 51.2,
  zMin: -3,
  zMax: 1,
  cellSize: 0.4,
  featureStride: 2,
  channels: 64,
});

// Ranges are decimal metres and may have been through float32 on the wire (102.4 / float32(0.4) = 255.9999962):
// a cell count is accepted within this many cells of an integer. A real mistake (0.3 m cells on 102.4 m gives
// 341.33) is far outside it.
const CELL_COUNT_TOLERANCE = 1e-3;

function cellCount(extent: number, cellSize: number): number {
  return Math.round(extent / cellSize);
}

/** Cells along x (W of a [C, H, W] pillar canvas). */
export function gridWidth(g: BevGrid): number {
  return cellCount(g.xMax - g.xMin, g.cellSize);
}

/** Cells along y (H of a [C, H, W] pillar canvas). */
export function gridHeight(g: BevGrid): number {
  return cellCount(g.yMax - g.yMin, g.cellSize);
}

/** Width (along x) of the backbone's output feature map. */
export function featureWidth(g: BevGrid): number {
  return gridWidth(g) / g.featureStride;
}

/** Height (along y) of the backbone's output feature map. */
export function featureHeight(g: BevGrid): number {
  return gridHeight(g) / g.featureStride;
}

/** Edge length in metres of one cell of the backbone's output feature map. */
export function featureCellSize(g: BevGrid): number {
  return g.cellSize * g.featureStride;
}

/** Shape [C, H, W] of the backbone's output feature map. */
export function featureShape(g: BevGrid): [channels: number, height: number, width: number] {
  return [g.channels, featureHeight(g), featureWidth(g)];
}

/** A grid with its feature map's shape: what every feature message carries (BevGrid in features.proto) and what a
 * receiver's gate compares it with. A fresh plain object of the grid's own fields. */
export function describeFeatureGrid(g: BevGrid): BevGrid & { height: number; width: number } {
  const [channels, height, width] = featureShape(g);
  return {
    xMin: g.xMin, xMax: g.xMax, yMin: g.yMin, yMax: g.yMax, zMin: g.zMin, zMax: g.zMax,
    cellSize: g.cellSize, featureStride: g.featureStride, channels, height, width,
  };
}

/** Throws a BevGridError naming the first field that makes the grid unusable; returns the grid otherwise. */
export function validateGrid<G extends BevGrid>(g: G): G {
  const fields = ['xMin', 'xMax', 'yMin', 'yMax', 'zMin', 'zMax', 'cellSize', 'featureStride', 'channels'] as const;
  for (const f of fields) {
    const v = (g as Partial<BevGrid>)[f];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new BevGridError(f, v, 'must be a finite number');
  }
  if (!(g.cellSize > 0)) throw new BevGridError('cellSize', g.cellSize, 'must be > 0');
  for (const [lo, hi] of [['xMin', 'xMax'], ['yMin', 'yMax'], ['zMin', 'zMax']] as const) {
    if (!(g[hi] > g[lo])) throw new BevGridError(hi, g[hi], `must be greater than ${lo} = ${g[lo]}`);
  }
  for (const [axis, lo, hi] of [['x', 'xMin', 'xMax'], ['y', 'yMin', 'yMax']] as const) {
    const cells = (g[hi] - g[lo]) / g.cellSize;
    if (Math.abs(cells - Math.round(cells)) > CELL_COUNT_TOLERANCE) {
      throw new BevGridError(
        'cellSize',
        g.cellSize,
        `the ${axis} range ${g[lo]}..${g[hi]} (${g[hi] - g[lo]} m) is not a whole number of cells (${cells})`,
      );
    }
  }
  if (!Number.isInteger(g.featureStride) || g.featureStride < 1) {
    throw new BevGridError('featureStride', g.featureStride, 'must be a positive integer');
  }
  if (!Number.isInteger(g.channels) || g.channels < 1) {
    throw new BevGridError('channels', g.channels, 'must be a positive integer');
  }
  const w = gridWidth(g);
  const h = gridHeight(g);
  if (w % g.featureStride !== 0 || h % g.featureStride !== 0) {
    throw new BevGridError('featureStride', g.featureStride, `must divide the grid size ${w} × ${h} (W × H)`);
  }
  return g;
}

// Grids arrive through the wire schema, where metric fields may be float32: 0.4 comes back as 0.4000000059604645.
// A relative tolerance of 1e-6 absorbs that round trip (float32 carries ~6e-8) yet rejects any real difference
// (a 1 mm change of a 51.2 m bound is 2e-5).
const GRID_RELATIVE_TOLERANCE = 1e-6;

function sameMetric(a: number, b: number): boolean {
  return Math.abs(a - b) <= GRID_RELATIVE_TOLERANCE * Math.max(1, Math.abs(a), Math.abs(b));
}

/**
 * True when features computed on grid `a` can be used cell for cell on grid `b`: same range, cell size, stride
 * and channel count (metric fields up to a float32 round trip; integers exactly).
 */
export function gridsEqual(a: BevGrid, b: BevGrid): boolean {
  return (
    sameMetric(a.xMin, b.xMin) &&
    sameMetric(a.xMax, b.xMax) &&
    sameMetric(a.yMin, b.yMin) &&
    sameMetric(a.yMax, b.yMax) &&
    sameMetric(a.zMin, b.zMin) &&
    sameMetric(a.zMax, b.zMax) &&
    sameMetric(a.cellSize, b.cellSize) &&
    a.featureStride === b.featureStride &&
    a.channels === b.channels
  );
}

export interface GridCell {
  /** Index along y (0 at yMin). */
  row: number;
  /** Index along x (0 at xMin). */
  col: number;
}

/**
 * The pillar-grid cell holding (x, y), or undefined outside [xMin, xMax) × [yMin, yMax) (and for NaN).
 * The Pillarizer assigns points with this very formula, so coords it emits agree with cellOf.
 */
export function cellOf(g: BevGrid, x: number, y: number): GridCell | undefined {
  const col = Math.floor((x - g.xMin) / g.cellSize);
  const row = Math.floor((y - g.yMin) / g.cellSize);
  if (!(col >= 0 && col < gridWidth(g) && row >= 0 && row < gridHeight(g))) return undefined;
  return { row, col };
}

/**
 * Row-major index (row · W + col) of the feature-map cell holding (x, y), or −1 outside the map (and for NaN): where a
 * box centre lands on a map the head reads, a mask or a sent-cell bitmap.
 */
export function featureCellOf(g: BevGrid, x: number, y: number): number {
  const s = featureCellSize(g), W = featureWidth(g), H = featureHeight(g);
  const col = Math.floor((x - g.xMin) / s);
  const row = Math.floor((y - g.yMin) / s);
  return col >= 0 && col < W && row >= 0 && row < H ? row * W + col : -1;
}

/** Centre of pillar-grid cell (row, col) in the agent frame (metres). */
export function cellCenter(g: BevGrid, row: number, col: number): { x: number; y: number } {
  return { x: g.xMin + (col + 0.5) * g.cellSize, y: g.yMin + (row + 0.5) * g.cellSize };
}
