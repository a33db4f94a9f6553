// Ray queries against the simulator's world (ground plane z = 0 plus yaw-oriented boxes).
// A LiDAR scan casts ~100k rays per agent per frame, so the world is bucketed into a 2D uniform grid over the
// primitives' bird's-eye-view footprints, and a ray walks only the cells its BEV projection crosses
// (Amanatides–Woo DDA), nearest first, stopping as soon as the best hit lies before the next cell boundary.
// Box data is packed into one Float64Array so the per-ray loop touches no objects and allocates nothing.

import type { Scene, ScenePrimitive } from './scene.ts';

export interface RayHit {
  /** Ray parameter of the hit: the distance when the direction is a unit vector. */
  t: number;
  /** Index into scene.primitives, -1 for the ground plane. */
  primitive: number;
  /** Outward unit surface normal at the hit, world frame. */
  nx: number;
  ny: number;
  nz: number;
}

/** Packed per-primitive record: centre, half extents, cos/sin of yaw, top z. */
const BOX_STRIDE = 9;
/** Hits closer than this along the ray are ignored, so a ray starting on a surface does not hit it again. */
const T_EPSILON = 1e-9;
/** Above this many cells the grid coarsens: a sprawling scene must not cost more memory than it saves time. */
const MAX_GRID_CELLS = 1 << 20;

export class SceneIndex {
  readonly scene: Scene;
  readonly cellSize: number;
  /** Grid origin and size; cell (ix, iy) covers [minX + ix·cellSize, +cellSize) × [minY + iy·cellSize, +cellSize). */
  readonly minX: number;
  readonly minY: number;
  readonly cellsX: number;
  readonly cellsY: number;
  /** Highest point of any primitive: a ray above it and going up can hit only the sky. */
  readonly maxTopZ: number;
  /** CSR buckets: primitives of cell c are cellItems[cellStart[c] .. cellStart[c + 1]). */
  readonly cellStart: Int32Array;
  readonly cellItems: Int32Array;
  /** Highest primitive top per cell, so a ray passing above a cell skips its boxes. */
  readonly cellTopZ: Float64Array;
  /** BOX_STRIDE numbers per primitive: cx, cy, cz, l/2, w/2, h/2, cos yaw, sin yaw, top z. */
  readonly boxes: Float64Array;
  /** Per-ray visit stamps so a box spanning several cells is tested once per ray. */
  readonly visitStamp: Uint32Array;
  rayStamp = 0;

  constructor(scene: Scene, cellSize = 4) {
    if (!(cellSize > 0) || !Number.isFinite(cellSize)) {
      throw new RangeError(`SceneIndex: cellSize must be a positive finite number of metres, got ${cellSize}`);
    }
    this.scene = scene;
    const primitives = scene.primitives;
    const count = primitives.length;
    const boxes = new Float64Array(count * BOX_STRIDE);
    // BEV axis-aligned bounds of every footprint, used for bucketing.
    const bounds = new Float64Array(count * 4);
    let minX = Infinity;
    let minY = Infinity;
    let maxX = -Infinity;
    let maxY = -Infinity;
    let maxTopZ = -Infinity;
    for (let i = 0; i < count; i++) {
      const p = primitives[i];
      if (!Number.isFinite(p.x + p.y + p.z + p.l + p.w + p.h + p.yaw)) throw nonFinitePrimitiveError(i, p);
      const c = Math.cos(p.yaw);
      const s = Math.sin(p.yaw);
      const hl = Math.abs(p.l) / 2;
      const hw = Math.abs(p.w) / 2;
      const hh = Math.abs(p.h) / 2;
      const o = i * BOX_STRIDE;
      boxes[o] = p.x;
      boxes[o + 1] = p.y;
      boxes[o + 2] = p.z;
      boxes[o + 3] = hl;
      boxes[o + 4] = hw;
      boxes[o + 5] = hh;
      boxes[o + 6] = c;
      boxes[o + 7] = s;
      boxes[o + 8] = p.z + hh;
      const ex = Math.abs(c) * hl + Math.abs(s) * hw;
      const ey = Math.abs(s) * hl + Math.abs(c) * hw;
      bounds[i * 4] = p.x - ex;
      bounds[i * 4 + 1] = p.y - ey;
      bounds[i * 4 + 2] = p.x + ex;
      bounds[i * 4 + 3] = p.y + ey;
      minX = Math.min(minX, p.x - ex);
      minY = Math.min(minY, p.y - ey);
      maxX = Math.max(maxX, p.x + ex);
      maxY = Math.max(maxY, p.y + ey);
      maxTopZ = Math.max(maxTopZ, p.z + hh);
    }
    if (count === 0) {
      minX = minY = 0;
      maxX = maxY = 0;
    }
    let size = cellSize;
    let cellsX = Math.max(1, Math.ceil((maxX - minX) / size));
    let cellsY = Math.max(1, Math.ceil((maxY - minY) / size));
    while (cellsX * cellsY > MAX_GRID_CELLS) {
      size *= 2;
      cellsX = Math.max(1, Math.ceil((maxX - minX) / size));
      cellsY = Math.max(1, Math.ceil((maxY - minY) / size));
    }
    this.cellSize = size;
    this.minX = minX;
    this.minY = minY;
    this.cellsX = cellsX;
    this.cellsY = cellsY;
    this.maxTopZ = maxTopZ;
    this.boxes = boxes;

    // Two passes (count, then fill) build the CSR buckets without per-cell arrays.
    const cellCount = cellsX * cellsY;
    const cellStart = new Int32Array(cellCount + 1);
    const cellTopZ = new Float64Array(cellCount).fill(-Infinity);
    const cellRange = (i: number): [number, number, number, number] => [
      clampInt(Math.floor((bounds[i * 4] - minX) / size), 0, cellsX - 1),
      clampInt(Math.floor((bounds[i * 4 + 1] - minY) / size), 0, cellsY - 1),
      clampInt(Math.floor((bounds[i * 4 + 2] - minX) / size), 0, cellsX - 1),
      clampInt(Math.floor((bounds[i * 4 + 3] - minY) / size), 0, cellsY - 1),
    ];
    for (let i = 0; i < count; i++) {
      const [x0, y0, x1, y1] = cellRange(i);
      const top = boxes[i * BOX_STRIDE + 8];
      for (let iy = y0; iy <= y1; iy++) {
        for (let ix = x0; ix <= x1; ix++) {
          const cell = iy * cellsX + ix;
          cellStart[cell + 1]++;
          if (top > cellTopZ[cell]) cellTopZ[cell] = top;
        }
      }
    }
    for (let cell = 0; cell < cellCount; cell++) cellStart[cell + 1] += cellStart[cell];
    const cellItems = new Int32Array(cellStart[cellCount]);
    const fill = cellStart.slice(0, cellCount);
    for (let i = 0; i < count; i++) {
      const [x0, y0, x1, y1] = cellRange(i);
      for (let iy = y0; iy <= y1; iy++) {
        for (let ix = x0; ix <= x1; ix++) cellItems[fill[iy * cellsX + ix]++] = i;
      }
    }
    this.cellStart = cellStart;
    this.cellItems = cellItems;
    this.cellTopZ = cellTopZ;
    this.visitStamp = new Uint32Array(count);
  }

  /** A fresh stamp for one ray; on wrap-around the stamps are cleared so no box looks visited by mistake. */
  nextRayStamp(): number {
    if (this.rayStamp >= 0xfffffffe) {
      this.visitStamp.fill(0);
      this.rayStamp = 0;
    }
    return ++this.rayStamp;
  }
}

function nonFinitePrimitiveError(i: number, p: ScenePrimitive): RangeError {
  const field = (['x', 'y', 'z', 'l', 'w', 'h', 'yaw'] as const).find((f) => !Number.isFinite(p[f]));
  return new RangeError(`SceneIndex: primitive ${i} (objectId ${p.objectId}, ${p.surface}) has non-finite ${field} = ${field ? p[field] : '?'}`);
}

function clampInt(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * Nearest hit of the ray o + t·d, 0 < t ≤ maxRange, among the scene's boxes and the ground plane z = 0.
 * Boxes are seen from outside only: a ray starting inside a box (a sensor inside its own vehicle's cabin box)
 * passes out through it. The ground is hit from above only. Writes the hit into `hit` and returns true, or
 * returns false (and leaves `hit` untouched) on a miss. `d` need not be normalised; t is then in units of |d|.
 */
export function intersectRay(
  index: SceneIndex,
  ox: number, oy: number, oz: number,
  dx: number, dy: number, dz: number,
  maxRange: number,
  hit: RayHit,
): boolean {
  let best = maxRange;
  let bestPrimitive = -2;
  let bestNx = 0;
  let bestNy = 0;
  let bestNz = 0;

  if (dz < 0 && oz > 0) {
    const tGround = -oz / dz;
    if (tGround <= best) {
      best = tGround;
      bestPrimitive = -1;
      bestNz = 1;
    }
  }

  const boxCount = index.visitStamp.length;
  if (boxCount > 0 && (dz <= 0 || oz < index.maxTopZ)) {
    // The part of the ray that can meet a box: inside the grid's BEV rectangle and below the highest top.
    let tEnter = 0;
    let tExit = best;
    if (dz > 0) tExit = Math.min(tExit, (index.maxTopZ - oz) / dz);
    else if (dz < 0 && oz > index.maxTopZ) tEnter = (index.maxTopZ - oz) / dz;
    const cellSize = index.cellSize;
    const gridMinX = index.minX;
    const gridMinY = index.minY;
    const cellsX = index.cellsX;
    const cellsY = index.cellsY;
    const gridMaxX = gridMinX + cellsX * cellSize;
    const gridMaxY = gridMinY + cellsY * cellSize;
    if (dx !== 0) {
      const ta = (gridMinX - ox) / dx;
      const tb = (gridMaxX - ox) / dx;
      tEnter = Math.max(tEnter, Math.min(ta, tb));
      tExit = Math.min(tExit, Math.max(ta, tb));
    } else if (ox < gridMinX || ox > gridMaxX) {
      tExit = -1;
    }
    if (dy !== 0) {
      const ta = (gridMinY - oy) / dy;
      const tb = (gridMaxY - oy) / dy;
      tEnter = Math.max(tEnter, Math.min(ta, tb));
      tExit = Math.min(tExit, Math.max(ta, tb));
    } else if (oy < gridMinY || oy > gridMaxY) {
      tExit = -1;
    }

    if (tEnter <= tExit) {
      const px = ox + dx * tEnter;
      const py = oy + dy * tEnter;
      let ix = clampInt(Math.floor((px - gridMinX) / cellSize), 0, cellsX - 1);
      let iy = clampInt(Math.floor((py - gridMinY) / cellSize), 0, cellsY - 1);
      const stepX = dx > 0 ? 1 : dx < 0 ? -1 : 0;
      const stepY = dy > 0 ? 1 : dy < 0 ? -1 : 0;
      const tDeltaX = stepX !== 0 ? cellSize / Math.abs(dx) : Infinity;
      const tDeltaY = stepY !== 0 ? cellSize / Math.abs(dy) : Infinity;
      let tNextX = stepX > 0 ? (gridMinX + (ix + 1) * cellSize - ox) / dx
        : stepX < 0 ? (gridMinX + ix * cellSize - ox) / dx : Infinity;
      let tNextY = stepY > 0 ? (gridMinY + (iy + 1) * cellSize - oy) / dy
        : stepY < 0 ? (gridMinY + iy * cellSize - oy) / dy : Infinity;

      const stamp = index.nextRayStamp();
      const visit = index.visitStamp;
      const boxes = index.boxes;
      const cellStart = index.cellStart;
      const cellItems = index.cellItems;
      const cellTopZ = index.cellTopZ;
      let tCellEnter = tEnter;

      for (;;) {
        const tCellExit = tNextX < tNextY ? tNextX : tNextY;
        const cell = iy * cellsX + ix;
        const start = cellStart[cell];
        const end = cellStart[cell + 1];
        // The ray's lowest z inside this cell; a ray passing wholly above every box here tests none of them.
        const zLow = dz >= 0 ? oz + dz * tCellEnter : oz + dz * (tCellExit < best ? tCellExit : best);
        if (start < end && zLow <= cellTopZ[cell]) {
          for (let k = start; k < end; k++) {
            const i = cellItems[k];
            if (visit[i] === stamp) continue;
            visit[i] = stamp;
            const o = i * BOX_STRIDE;
            // Into the box frame: translate to its centre, rotate by -yaw.
            const c = boxes[o + 6];
            const s = boxes[o + 7];
            const rx = ox - boxes[o];
            const ry = oy - boxes[o + 1];
            const lx = c * rx + s * ry;
            const ly = c * ry - s * rx;
            const lz = oz - boxes[o + 2];
            const ldx = c * dx + s * dy;
            const ldy = c * dy - s * dx;
            const hl = boxes[o + 3];
            const hw = boxes[o + 4];
            const hh = boxes[o + 5];
            // Slab test; `axis` remembers which slab the ray entered last (the face hit), signed by the face.
            let tNear = -Infinity;
            let tFar = Infinity;
            let axis = 0;
            if (ldx !== 0) {
              const inv = 1 / ldx;
              let t0 = (-hl - lx) * inv;
              let t1 = (hl - lx) * inv;
              let face = -1;
              if (t0 > t1) { const tmp = t0; t0 = t1; t1 = tmp; face = 1; }
              if (t0 > tNear) { tNear = t0; axis = face; }
              if (t1 < tFar) tFar = t1;
            } else if (lx < -hl || lx > hl) continue;
            if (ldy !== 0) {
              const inv = 1 / ldy;
              let t0 = (-hw - ly) * inv;
              let t1 = (hw - ly) * inv;
              let face = -2;
              if (t0 > t1) { const tmp = t0; t0 = t1; t1 = tmp; face = 2; }
              if (t0 > tNear) { tNear = t0; axis = face; }
              if (t1 < tFar) tFar = t1;
            } else if (ly < -hw || ly > hw) continue;
            if (dz !== 0) {
              const inv = 1 / dz;
              let t0 = (-hh - lz) * inv;
              let t1 = (hh - lz) * inv;
              let face = -3;
              if (t0 > t1) { const tmp = t0; t0 = t1; t1 = tmp; face = 3; }
              if (t0 > tNear) { tNear = t0; axis = face; }
              if (t1 < tFar) tFar = t1;
            } else if (lz < -hh || lz > hh) continue;
            if (tNear > tFar || tNear <= T_EPSILON || tNear >= best) continue;
            best = tNear;
            bestPrimitive = i;
            // Outward normal of the entered face, rotated back by +yaw.
            if (axis === 1 || axis === -1) {
              bestNx = axis * c;
              bestNy = axis * s;
              bestNz = 0;
            } else if (axis === 2 || axis === -2) {
              const sign = axis > 0 ? 1 : -1;
              bestNx = -sign * s;
              bestNy = sign * c;
              bestNz = 0;
            } else {
              bestNx = 0;
              bestNy = 0;
              bestNz = axis > 0 ? 1 : -1;
            }
          }
        }
        if (best <= tCellExit || tCellExit >= tExit) break;
        tCellEnter = tCellExit;
        if (tNextX < tNextY) {
          ix += stepX;
          if (ix < 0 || ix >= cellsX) break;
          tNextX += tDeltaX;
        } else {
          iy += stepY;
          if (iy < 0 || iy >= cellsY) break;
          tNextY += tDeltaY;
        }
      }
    }
  }

  if (bestPrimitive === -2) return false;
  hit.t = best;
  hit.primitive = bestPrimitive;
  // `+ 0` turns the -0 of a sign flip into 0, so normals print and compare as plain zeros.
  hit.nx = bestNx + 0;
  hit.ny = bestNy + 0;
  hit.nz = bestNz + 0;
  return true;
}
