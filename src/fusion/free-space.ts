// Free space seen by the ego's own LiDAR, and the ghost check built on it. A beam that travels from the sensor to a
// return, low enough over the ground that a car would have stopped it, proves that no car stood in the cells it
// crossed. A collaborator that reports a car whose footprint lies in such cells, with no ego return inside, claims
// something the ego's own sensor contradicts: a fabricated object (or a grossly misplaced one).
//
// Why this and not "nobody else saw it": single-agent detectors agree on only 30–60 % of what two agents both
// cover (occlusion, range, the detector's misses), so an unconfirmed object is weak evidence, and a list that is
// half ghosts still looks honest to the agreement check (consistency.ts). Free space is strong evidence where it
// exists and silent where it does not: cells behind an occluder, beyond the ego's range or above the beams are
// unknown and contradict nothing, so an honest collaborator reporting a car the ego cannot see is never blamed.
//
// The map is a BEV grid in the ego's LiDAR frame, three states per cell: unknown, free (a low beam crossed it and
// no return above the ground lies in it), occupied (a return above the ground lies in it). Built from the ego's
// points by marking each beam's stretch in a polar grid, then dropping that into the BEV grid; typed arrays, reused
// from frame to frame. It travels from the
// ego agent to its fusion node as two bit planes (wireFreeSpace / freeSpaceFromWire), deflate-compressed.
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { Detection } from '../eval/index.ts';
import { FusionInputError } from './warp.ts';

/** A free-space grid: cell (row, col) covers x in [xMin + col·cellSize, +cellSize), y likewise with row. */
export interface FreeSpaceGrid {
  xMin: number;
  yMin: number;
  cellSize: number;
  width: number;
  height: number;
}

export const CELL_UNKNOWN = 0;
export const CELL_FREE = 1;
export const CELL_OCCUPIED = 2;

/** A grid and one state per cell (CELL_UNKNOWN / CELL_FREE / CELL_OCCUPIED), row-major (row = y). */
export interface FreeSpaceMap {
  grid: FreeSpaceGrid;
  state: Uint8Array;
}

export interface FreeSpaceOptions {
  /** Ground height in the sensor frame, m. Default: estimated per frame as the most common point height (in a
   * scene seen by a roof or pole LiDAR most returns are from the road). */
  groundZ?: number;
  /** A beam proves a cell free where it runs between these heights above the ground, m: low enough that a car's
   * body (1.4 m and taller) would have stopped it, high enough not to be a beam grazing the road. Default 0.2, 1.2. */
  beamBandM?: readonly [number, number];
  /** A return at least this high above the ground occupies its cell, m (lower: the road). Default 0.3. */
  occupiedAboveGroundM?: number;
  /** Values per point in the cloud (x, y, z, intensity): default 4. */
  stride?: number;
}

export const DEFAULT_FREE_SPACE: Readonly<Required<Omit<FreeSpaceOptions, 'groundZ'>>> = Object.freeze({
  beamBandM: [0.2, 1.2] as const,
  occupiedAboveGroundM: 0.3,
  stride: 4,
});

// Ground estimate: a histogram of point heights, 0.1 m bins over [-12, 6) m around the sensor.
const Z_BIN = 0.1;
const Z_LOW = -12;
const Z_BINS = 180;

/** The most common point height (0.1 m bins), m; NaN for an empty cloud. */
export function estimateGroundZ(points: Float32Array, stride = 4, histogram = new Uint32Array(Z_BINS)): number {
  histogram.fill(0);
  for (let i = 2; i < points.length; i += stride) {
    const b = Math.floor((points[i]! - Z_LOW) / Z_BIN);
    if (b >= 0 && b < Z_BINS) histogram[b]!++;
  }
  let best = -1;
  let bestCount = 0;
  for (let b = 0; b < Z_BINS; b++) if (histogram[b]! > bestCount) (best = b), (bestCount = histogram[b]!);
  return best < 0 ? NaN : Z_LOW + (best + 0.5) * Z_BIN;
}

/**
 * Builds free-space maps on one grid, reusing its buffers: build() overwrites the map it returned last time.
 */
export class FreeSpaceBuilder {
  readonly map: FreeSpaceMap;
  private readonly crossed: Uint8Array;
  private readonly occupied: Uint8Array;
  private readonly histogram = new Uint32Array(Z_BINS);
  private readonly o: Required<Omit<FreeSpaceOptions, 'groundZ'>> & { groundZ?: number };
  // Beams are marked in a polar grid first (azimuth bin × range bin), each beam's stretch in the band as +1 at its
  // start and −1 past its end: O(1) per beam instead of a walk of up to ~180 steps, then one prefix sum per azimuth
  // bin and one pass that drops covered polar cells into the Cartesian grid. Polar bins are fine enough that no
  // Cartesian cell within the grid's corners falls between two azimuth bins (0.25° is 0.32 m at 73 m).
  private readonly rangeBins: number;
  private readonly rangeStep: number;
  private readonly coverage: Int32Array;
  private readonly cosAz: Float64Array;
  private readonly sinAz: Float64Array;

  constructor(readonly grid: FreeSpaceGrid, opts: FreeSpaceOptions = {}) {
    checkGrid(grid);
    this.o = { ...DEFAULT_FREE_SPACE, ...opts };
    const cells = grid.width * grid.height;
    this.map = { grid, state: new Uint8Array(cells) };
    this.crossed = new Uint8Array(cells);
    this.occupied = new Uint8Array(cells);
    const { xMin, yMin, cellSize, width, height } = grid;
    const xMax = xMin + width * cellSize, yMax = yMin + height * cellSize;
    const reach = Math.max(Math.hypot(xMin, yMin), Math.hypot(xMin, yMax), Math.hypot(xMax, yMin), Math.hypot(xMax, yMax));
    this.rangeStep = cellSize * 0.25;
    this.rangeBins = Math.ceil(reach / this.rangeStep) + 2;
    this.coverage = new Int32Array(AZIMUTH_BINS * this.rangeBins);
    this.cosAz = new Float64Array(AZIMUTH_BINS);
    this.sinAz = new Float64Array(AZIMUTH_BINS);
    for (let a = 0; a < AZIMUTH_BINS; a++) {
      const az = -Math.PI + (a + 0.5) * (2 * Math.PI / AZIMUTH_BINS);
      this.cosAz[a] = Math.cos(az);
      this.sinAz[a] = Math.sin(az);
    }
  }

  /** The free-space map of one sweep: `points` x, y, z, … per point in the sensor frame (sensor at the origin). */
  build(points: Float32Array, groundZ = this.o.groundZ): FreeSpaceMap {
    const { xMin, yMin, cellSize, width, height } = this.grid;
    const stride = this.o.stride;
    const ground = groundZ ?? estimateGroundZ(points, stride, this.histogram);
    this.crossed.fill(0);
    this.occupied.fill(0);
    const state = this.map.state;
    if (!Number.isFinite(ground)) {
      state.fill(CELL_UNKNOWN);
      return this.map;
    }
    const zLow = ground + this.o.beamBandM[0];
    const zHigh = ground + this.o.beamBandM[1];
    const zOccupied = ground + this.o.occupiedAboveGroundM;
    const xMax = xMin + width * cellSize;
    const yMax = yMin + height * cellSize;
    const coverage = this.coverage, rangeBins = this.rangeBins, rangeStep = this.rangeStep;
    coverage.fill(0);
    const azScale = AZIMUTH_BINS / (2 * Math.PI);
    // Stop half a cell short of the return: its own cell is judged by the return, not by the beam.
    const shortOfReturn = cellSize * 0.5;
    for (let i = 0; i + 2 < points.length; i += stride) {
      const x = points[i]!, y = points[i + 1]!, z = points[i + 2]!;
      if (!Number.isFinite(x) || !Number.isFinite(y) || !Number.isFinite(z)) continue;
      if (z >= zOccupied && x >= xMin && x < xMax && y >= yMin && y < yMax) {
        this.occupied[Math.floor((y - yMin) / cellSize) * width + Math.floor((x - xMin) / cellSize)] = 1;
      }
      // The part of the beam (origin → point, height s·z) inside the band: s in [zLow/z, zHigh/z] ∩ [0, 1].
      let s0: number, s1: number;
      if (z === 0) {
        if (zLow > 0 || zHigh < 0) continue;
        (s0 = 0), (s1 = 1);
      } else {
        const a = zLow / z, b = zHigh / z;
        (s0 = Math.max(0, Math.min(a, b))), (s1 = Math.min(1, Math.max(a, b)));
      }
      if (s1 <= s0) continue;
      const range = Math.sqrt(x * x + y * y); // Math.hypot is several times slower in V8, and no overflow is possible here
      const from = s0 * range, to = s1 * range - shortOfReturn;
      if (to <= from) continue;
      let az = Math.floor((Math.atan2(y, x) + Math.PI) * azScale);
      if (az >= AZIMUTH_BINS) az = AZIMUTH_BINS - 1;
      const r0 = Math.ceil(from / rangeStep);
      const r1 = Math.min(rangeBins - 1, Math.floor(to / rangeStep) + 1);
      if (r1 <= r0) continue;
      coverage[az * rangeBins + r0]!++;
      coverage[az * rangeBins + r1]!--;
    }
    for (let a = 0; a < AZIMUTH_BINS; a++) {
      const c = this.cosAz[a]!, sn = this.sinAz[a]!;
      const row0 = a * rangeBins;
      let covered = 0;
      for (let r = 0; r < rangeBins; r++) {
        covered += coverage[row0 + r]!;
        if (covered <= 0) continue;
        const px = c * r * rangeStep, py = sn * r * rangeStep;
        if (px < xMin || px >= xMax || py < yMin || py >= yMax) continue;
        this.crossed[Math.floor((py - yMin) / cellSize) * width + Math.floor((px - xMin) / cellSize)] = 1;
      }
    }
    for (let c = 0; c < state.length; c++) state[c] = this.occupied[c] ? CELL_OCCUPIED : this.crossed[c] ? CELL_FREE : CELL_UNKNOWN;
    return this.map;
  }
}

/** Azimuth bins of the polar beam grid: 0.25°. */
const AZIMUTH_BINS = 1440;

/** The free-space grid over a BEV range at `cellSize` (default 0.8 m, the feature grid's cell: 128 × 128 over the
 * shipped ±51.2 m, 2 kB per bit plane before compression). */
export function freeSpaceGrid(range: { xMin: number; xMax: number; yMin: number; yMax: number }, cellSize = 0.8): FreeSpaceGrid {
  return { xMin: range.xMin, yMin: range.yMin, cellSize, width: Math.round((range.xMax - range.xMin) / cellSize), height: Math.round((range.yMax - range.yMin) / cellSize) };
}

function checkGrid(g: FreeSpaceGrid): void {
  for (const f of ['xMin', 'yMin', 'cellSize'] as const) if (!Number.isFinite(g[f])) throw new FusionInputError(`grid.${f}`, g[f], 'is not finite');
  if (!(g.cellSize > 0)) throw new FusionInputError('grid.cellSize', g.cellSize, 'must be > 0');
  for (const f of ['width', 'height'] as const) {
    if (!Number.isInteger(g[f]) || g[f] < 1 || g[f] > MAX_FREE_SPACE_SIDE) throw new FusionInputError(`grid.${f}`, g[f], `must be an integer 1..${MAX_FREE_SPACE_SIDE}`);
  }
}

/** Largest grid side a receiver accepts: 2048 cells (a 1.6 km square at 0.8 m). */
export const MAX_FREE_SPACE_SIDE = 2048;

// ---------------------------------------------------------------------------------------------------------------
// The ghost check

export interface GhostCheckOptions {
  /** An object contradicts the map when at least this share of its footprint is free. Default 0.6: a detection
   * off by its usual half metre overlaps free space with one edge; a ghost in open road lies wholly in it. */
  minFreeShare?: number;
  /** …and at most this many footprint samples hold an ego return (0: any return inside clears the object). */
  maxOccupiedSamples?: number;
  /** …and at least this share of its footprint lies on the map (objects beyond the ego's grid are not judged). */
  minOnMap?: number;
  /** A collaborator is excluded when it makes more contradictions than this in one frame. Default 1 (two
   * excludes), a margin for an honest detector's occasional false alarm in open road; see the README's
   * measurements (tools/reliability/attack-ap.ts). */
  maxContradictions?: number;
  /** Detections below this score are not judged. Default 0.3 (consistency.ts's). */
  minScore?: number;
  /** Objects with a smaller footprint are not judged, m². Default 3: a pedestrian or cyclist fills part of a
   * 0.8 m cell and beams pass beside it through the same cell, so free space cannot rule it out; cars (~8 m²) span
   * a dozen cells. */
  minFootprintM2?: number;
}

export const DEFAULT_GHOST_CHECK: Readonly<Required<GhostCheckOptions>> = Object.freeze({
  minFreeShare: 0.6,
  maxOccupiedSamples: 0,
  minOnMap: 0.5,
  maxContradictions: 1,
  minScore: 0.3,
  minFootprintM2: 3,
});

/** How a box's footprint falls on the map: samples on a lattice of half a cell over the box, by cell state. */
export interface FootprintCount {
  samples: number;
  free: number;
  occupied: number;
  unknown: number;
  /** Samples off the grid. */
  outside: number;
}

/** Counts the footprint of a box (ego frame) on the map; pass `out` to reuse one object. */
export function footprintOnMap(map: FreeSpaceMap, box: Detection['box'], out: FootprintCount = { samples: 0, free: 0, occupied: 0, unknown: 0, outside: 0 }): FootprintCount {
  const { xMin, yMin, cellSize, width, height } = map.grid;
  out.samples = out.free = out.occupied = out.unknown = out.outside = 0;
  const step = cellSize * 0.5;
  // Half-cell samples, but never more per side than the grid could tell apart: a box kilometres long (a hostile
  // sender's) must not cost billions of steps.
  const cap = 2 * Math.max(width, height);
  const nl = Math.min(cap, Math.max(1, Math.round(box.l / step))), nw = Math.min(cap, Math.max(1, Math.round(box.w / step)));
  const c = Math.cos(box.yaw), s = Math.sin(box.yaw);
  for (let i = 0; i < nl; i++) {
    const u = ((i + 0.5) / nl - 0.5) * box.l;
    for (let j = 0; j < nw; j++) {
      const v = ((j + 0.5) / nw - 0.5) * box.w;
      const col = Math.floor((box.x + c * u - s * v - xMin) / cellSize);
      const row = Math.floor((box.y + s * u + c * v - yMin) / cellSize);
      out.samples++;
      if (col < 0 || col >= width || row < 0 || row >= height) {
        out.outside++;
        continue;
      }
      const st = map.state[row * width + col];
      if (st === CELL_FREE) out.free++;
      else if (st === CELL_OCCUPIED) out.occupied++;
      else out.unknown++;
    }
  }
  return out;
}

const scratch: FootprintCount = { samples: 0, free: 0, occupied: 0, unknown: 0, outside: 0 };

/** Whether the ego's free space contradicts a detection (ego frame): mostly free, on the map, no return inside. */
export function contradictsFreeSpace(map: FreeSpaceMap, d: Detection, opts: GhostCheckOptions = {}): boolean {
  const o = { ...DEFAULT_GHOST_CHECK, ...opts };
  if (d.score < o.minScore || !(d.box.l * d.box.w >= o.minFootprintM2)) return false;
  const f = footprintOnMap(map, d.box, scratch);
  const onMap = f.samples - f.outside;
  if (onMap === 0 || onMap < o.minOnMap * f.samples) return false;
  return f.occupied <= o.maxOccupiedSamples && f.free >= o.minFreeShare * onMap;
}

/** Counts a collaborator's detections (ego frame) that the ego's free space contradicts. */
export function countContradictions(map: FreeSpaceMap, detections: readonly Detection[], opts: GhostCheckOptions = {}): number {
  let n = 0;
  for (const d of detections) if (contradictsFreeSpace(map, d, opts)) n++;
  return n;
}

// ---------------------------------------------------------------------------------------------------------------
// On the wire: the grid plus two bit planes (free, then occupied; bit k of byte k >> 3, LSB first, cell order
// row-major), deflate-compressed together. Unknown = neither bit. Free space is large connected regions and
// occupied cells are sparse, so both compress well.

export interface WireFreeSpace {
  xMin: number;
  yMin: number;
  cellSize: number;
  width: number;
  height: number;
  /** deflate (raw) of the two bit planes. */
  planes: Uint8Array;
}

/** The map as it travels (allocates: it is a message). */
export function wireFreeSpace(map: FreeSpaceMap): WireFreeSpace {
  const { xMin, yMin, cellSize, width, height } = map.grid;
  const cells = width * height;
  const planeBytes = Math.ceil(cells / 8);
  const raw = new Uint8Array(2 * planeBytes);
  for (let c = 0; c < cells; c++) {
    const st = map.state[c];
    if (st === CELL_FREE) raw[c >> 3] |= 1 << (c & 7);
    else if (st === CELL_OCCUPIED) raw[planeBytes + (c >> 3)] |= 1 << (c & 7);
  }
  return { xMin, yMin, cellSize, width, height, planes: deflateRawSync(raw, { level: 9 }) };
}

/** A received map. Throws FusionInputError (naming the field) when the grid or the planes do not add up. */
export function freeSpaceFromWire(w: WireFreeSpace): FreeSpaceMap {
  const grid = { xMin: w.xMin, yMin: w.yMin, cellSize: w.cellSize, width: w.width, height: w.height };
  checkGrid(grid);
  const cells = grid.width * grid.height;
  const planeBytes = Math.ceil(cells / 8);
  let raw: Buffer;
  try {
    // Bounded: a deflate bomb stops at the size the grid announces.
    raw = inflateRawSync(w.planes, { maxOutputLength: 2 * planeBytes });
  } catch (err) {
    throw new FusionInputError('freeSpace.planes', w.planes.byteLength, `do not inflate to ${2 * planeBytes} bytes: ${(err as Error).message}`);
  }
  if (raw.byteLength !== 2 * planeBytes) throw new FusionInputError('freeSpace.planes', raw.byteLength, `inflated bytes, expected ${2 * planeBytes} for ${grid.width} × ${grid.height} cells`);
  const state = new Uint8Array(cells);
  for (let c = 0; c < cells; c++) {
    const free = (raw[c >> 3]! >> (c & 7)) & 1;
    const occ = (raw[planeBytes + (c >> 3)]! >> (c & 7)) & 1;
    state[c] = occ ? CELL_OCCUPIED : free ? CELL_FREE : CELL_UNKNOWN;
  }
  return { grid, state };
}
