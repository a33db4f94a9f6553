// Aligning a collaborator's BEV feature map with the ego's grid, and max fusion of aligned maps.
//
// The warp is the one training uses (models/README.md, "Warping in training"), so that features fused here look
// like the features the head was trained on: torch.nn.functional.grid_sample(agent map, grid, mode='bilinear',
// padding_mode='zeros', align_corners=False), with the sampling grid built from the 2D rigid part of
// agentToEgo (yaw = atan2(R10, R00), translation tx, ty; roll, pitch and tz are dropped):
//   ego feature cell (row r, col c), s = cellSize · featureStride:
//     p_ego   = (xMin + (c + 0.5)·s, yMin + (r + 0.5)·s)
//     p_agent = R(−yaw) · (p_ego − (tx, ty))                      (inverse of agentToEgo)
//     u = 2·(x_agent − xMin)/(W·s) − 1,   v = 2·(y_agent − yMin)/(H·s) − 1     (grid[..., 0] = u, [..., 1] = v)
//   grid_sample with align_corners=False reads pixel coordinates ix = ((u + 1)·W − 1)/2 = (x_agent − xMin)/s − 0.5
//   (and iy likewise), i.e. column c's centre is ix = c; it blends the four neighbouring cells bilinearly and
//   counts cells outside the map as 0.
// Both maps share one grid description (agents send features on the manifest's grid, each in its own frame).
// Coverage mask: 1 where p_agent lies inside the agent's map, x ∈ [xMin, xMax) and y ∈ [yMin, yMax) (u, v in
// [−1, 1)); within half a cell outside it the warped features are a partial blend with the zero padding, as in
// training, but the mask says 0.

import type { Mat4 } from '../geometry/index.ts';
import { featureCellSize, featureHeight, featureWidth, type BevGrid } from '../perception/index.ts';

/** Inputs the fusion helpers cannot use; `field` names the argument. */
export class FusionInputError extends Error {
  constructor(readonly field: string, readonly value: unknown, detail: string) {
    super(`${field} = ${String(value)}: ${detail}`);
    this.name = new.target.name;
  }
}

/**
 * The checks every element-wise fusion of aligned maps makes (maxFuse, meanFuse, attentionFuse): at least one map,
 * one mask per map, every map of one size, masks of one plane that divides it, an `out` of that size that is none
 * of the inputs. Returns the output buffer (`out`, or a new one) and the map's layout.
 */
export function checkAlignedMaps(
  features: readonly Float32Array[],
  masks: readonly (Float32Array | null | undefined)[],
  out: Float32Array | undefined,
): { fused: Float32Array; size: number; plane: number; channels: number } {
  const K = features.length;
  if (K === 0) throw new FusionInputError('features', '[]', 'needs at least one map');
  if (masks.length !== K) throw new FusionInputError('masks.length', masks.length, `must equal the number of maps (${K})`);
  const size = features[0].length;
  for (let k = 1; k < K; k++) {
    if (features[k].length !== size) throw new FusionInputError(`features[${k}].length`, features[k].length, `differs from features[0] (${size})`);
  }
  const fused = out ?? new Float32Array(size);
  if (fused.length !== size) throw new FusionInputError('out.length', fused.length, `must be ${size}`);
  if (features.includes(fused)) throw new FusionInputError('out', 'an input map', 'must not alias the inputs');
  const given = masks.find((m) => m);
  const plane = given ? given.length : size;
  if (size % plane !== 0) throw new FusionInputError('masks[].length', plane, `is not one plane of a ${size}-value map`);
  for (let k = 0; k < K; k++) {
    const m = masks[k];
    if (m && m.length !== plane) throw new FusionInputError(`masks[${k}].length`, m.length, `differs from the other masks (${plane})`);
  }
  return { fused, size, plane, channels: size / plane };
}

export interface WarpResult {
  /** [C, H, W] in the ego grid. */
  features: Float32Array;
  /** [H, W]: 1 where the ego cell's sample point falls inside the agent's map, else 0. */
  mask: Float32Array;
}

// Per-cell bilinear taps, computed once per warp and reused for every channel. The channel loop then streams
// four planes at a time through one read of the taps (64 x 128 x 128 on one core: ~10 ms one channel per pass,
// ~6 ms four). Grown on demand, shared by all calls: JS is single-threaded and no call keeps a reference past
// its return.
let tapIndex = new Int32Array(0);
let tapWeight = new Float64Array(0);

function ensureTapCapacity(plane: number): void {
  if (tapIndex.length < 4 * plane) {
    tapIndex = new Int32Array(4 * plane);
    tapWeight = new Float64Array(4 * plane);
  }
}

// The cells a selection-coded map covers, compacted: their taps, so that the channel loop visits only them.
let activeCell = new Int32Array(0);

/**
 * Resamples an agent's feature map [C, H, W] (features on `grid`'s feature map, in the agent's frame) into the
 * ego's grid; see the file comment for the exact formula. `out` / `outMask` are filled when given (lengths C·H·W
 * and H·W), otherwise allocated. The input is only read, so `features` must not alias `out`.
 *
 * `sent` ([H, W], the decoder's mask) is for a map the agent sent only part of (top-k selection), whose other
 * cells are zeros: an ego cell is then covered when its sample point is inside the map and at least half its
 * bilinear weight falls on sent cells (the sent mask warped like the features, ≥ 0.5). Only covered cells are
 * resampled; the others get 0 and mask 0, which is what fusion makes of them anyway. With a 10 % selection the
 * warp does a tenth of the work.
 */
export function warpToEgo(features: Float32Array, agentToEgo: Mat4, grid: BevGrid, out?: Float32Array, outMask?: Float32Array, sent?: Uint8Array): WarpResult {
  const W = featureWidth(grid);
  const H = featureHeight(grid);
  const s = featureCellSize(grid);
  const plane = W * H;
  if (agentToEgo.length !== 16) throw new FusionInputError('agentToEgo.length', agentToEgo.length, 'must be 16 (a 4x4 row-major matrix)');
  const C = features.length / plane;
  if (!Number.isInteger(C) || C < 1) {
    throw new FusionInputError('features.length', features.length, `is not a whole number of ${H} × ${W} feature planes`);
  }
  const warped = out ?? new Float32Array(features.length);
  const mask = outMask ?? new Float32Array(plane);
  if (warped.length !== features.length) throw new FusionInputError('out.length', warped.length, `must be ${features.length} (C × H × W)`);
  if (mask.length !== plane) throw new FusionInputError('outMask.length', mask.length, `must be ${plane} (H × W)`);
  if (warped === features) throw new FusionInputError('out', 'features', 'must not be the input buffer');
  if (sent && sent.length !== plane) throw new FusionInputError('sent.length', sent.length, `must be ${plane} (H × W)`);

  const yaw = Math.atan2(agentToEgo[4], agentToEgo[0]);
  const cos = Math.cos(yaw), sin = Math.sin(yaw);
  const tx = agentToEgo[3], ty = agentToEgo[7];
  const { xMin, yMin } = grid;
  const xMax = xMin + W * s, yMax = yMin + H * s;

  ensureTapCapacity(plane);
  const index = tapIndex, weight = tapWeight;
  for (let r = 0, cell = 0; r < H; r++) {
    const dy = yMin + (r + 0.5) * s - ty;
    for (let c = 0; c < W; c++, cell++) {
      const dx = xMin + (c + 0.5) * s - tx;
      const xa = cos * dx + sin * dy;
      const ya = -sin * dx + cos * dy;
      mask[cell] = xa >= xMin && xa < xMax && ya >= yMin && ya < yMax ? 1 : 0;
      const ix = (xa - xMin) / s - 0.5;
      const iy = (ya - yMin) / s - 0.5;
      const x0 = Math.floor(ix), y0 = Math.floor(iy);
      const fx = ix - x0, fy = iy - y0;
      const t = 4 * cell;
      // Taps outside the map get weight 0 and a harmless index, keeping the channel loop branch-free.
      const x0In = x0 >= 0 && x0 < W, x1In = x0 + 1 >= 0 && x0 + 1 < W;
      const y0In = y0 >= 0 && y0 < H, y1In = y0 + 1 >= 0 && y0 + 1 < H;
      const row0 = y0 * W, row1 = row0 + W;
      index[t] = y0In && x0In ? row0 + x0 : 0;
      weight[t] = y0In && x0In ? (1 - fx) * (1 - fy) : 0;
      index[t + 1] = y0In && x1In ? row0 + x0 + 1 : 0;
      weight[t + 1] = y0In && x1In ? fx * (1 - fy) : 0;
      index[t + 2] = y1In && x0In ? row1 + x0 : 0;
      weight[t + 2] = y1In && x0In ? (1 - fx) * fy : 0;
      index[t + 3] = y1In && x1In ? row1 + x0 + 1 : 0;
      weight[t + 3] = y1In && x1In ? fx * fy : 0;
    }
  }

  if (sent) {
    warpSelected(features, C, plane, sent, warped, mask);
    return { features: warped, mask };
  }

  let ch = 0;
  for (; ch + 3 < C; ch += 4) {
    const base = ch * plane;
    const a = features.subarray(base, base + plane);
    const b = features.subarray(base + plane, base + 2 * plane);
    const c = features.subarray(base + 2 * plane, base + 3 * plane);
    const d = features.subarray(base + 3 * plane, base + 4 * plane);
    for (let cell = 0, t = 0; cell < plane; cell++, t += 4) {
      const i0 = index[t], i1 = index[t + 1], i2 = index[t + 2], i3 = index[t + 3];
      const w0 = weight[t], w1 = weight[t + 1], w2 = weight[t + 2], w3 = weight[t + 3];
      const o = base + cell;
      warped[o] = w0 * a[i0] + w1 * a[i1] + w2 * a[i2] + w3 * a[i3];
      warped[o + plane] = w0 * b[i0] + w1 * b[i1] + w2 * b[i2] + w3 * b[i3];
      warped[o + 2 * plane] = w0 * c[i0] + w1 * c[i1] + w2 * c[i2] + w3 * c[i3];
      warped[o + 3 * plane] = w0 * d[i0] + w1 * d[i1] + w2 * d[i2] + w3 * d[i3];
    }
  }
  for (; ch < C; ch++) {
    const base = ch * plane;
    const src = features.subarray(base, base + plane);
    for (let cell = 0, t = 0; cell < plane; cell++, t += 4) {
      warped[base + cell] =
        weight[t] * src[index[t]] +
        weight[t + 1] * src[index[t + 1]] +
        weight[t + 2] * src[index[t + 2]] +
        weight[t + 3] * src[index[t + 3]];
    }
  }
  return { features: warped, mask };
}

/** The channel loop of warpToEgo for a partly sent map, over the taps already in tapIndex / tapWeight. */
function warpSelected(features: Float32Array, C: number, plane: number, sent: Uint8Array, warped: Float32Array, mask: Float32Array): void {
  const index = tapIndex, weight = tapWeight;
  if (activeCell.length < plane) activeCell = new Int32Array(plane);
  let n = 0;
  for (let cell = 0, t = 0; cell < plane; cell++, t += 4) {
    if (mask[cell] === 0) continue;
    const covered = weight[t] * sent[index[t]] + weight[t + 1] * sent[index[t + 1]] + weight[t + 2] * sent[index[t + 2]] + weight[t + 3] * sent[index[t + 3]];
    // In float32, as the sent mask warped like a feature plane was compared before.
    if (Math.fround(covered) < 0.5) {
      mask[cell] = 0;
      continue;
    }
    // Compacted in place: entry n's taps move down to slot n (n ≤ cell, so nothing unread is overwritten).
    activeCell[n] = cell;
    const d = 4 * n;
    index[d] = index[t]; index[d + 1] = index[t + 1]; index[d + 2] = index[t + 2]; index[d + 3] = index[t + 3];
    weight[d] = weight[t]; weight[d + 1] = weight[t + 1]; weight[d + 2] = weight[t + 2]; weight[d + 3] = weight[t + 3];
    n++;
  }
  warped.fill(0);
  // Cell by cell, all channels of a cell at once: the covered cells lie in clusters (a top-k map sends the cells
  // around objects), so a cell's taps reuse the cache lines of the cell before it in every plane. Channel by channel,
  // each plane was visited in scattered places and the warp was memory-bound: 6.7 → 3.7 ms for a real frame's three
  // collaborators (tools/bench/fusion-frame.ts), the same values (the same products in the same order).
  const end = C * plane;
  for (let j = 0, t = 0; j < n; j++, t += 4) {
    const i0 = index[t], i1 = index[t + 1], i2 = index[t + 2], i3 = index[t + 3];
    const w0 = weight[t], w1 = weight[t + 1], w2 = weight[t + 2], w3 = weight[t + 3];
    for (let base = 0, o = activeCell[j]; base < end; base += plane, o += plane) {
      warped[o] = w0 * features[base + i0] + w1 * features[base + i1] + w2 * features[base + i2] + w3 * features[base + i3];
    }
  }
}

let coveredCell = new Int32Array(0);

/**
 * Max fusion: out[c, cell] = max over agents k whose mask covers the cell (mask > 0) of features[k][c, cell]; 0
 * where no agent covers it. A null mask means the agent covers every cell (the ego's own map). All maps are
 * [C, H, W] in the ego grid; masks are [H, W]. `out` (length C·H·W) must not be one of the inputs.
 */
export function maxFuse(features: readonly Float32Array[], masks: readonly (Float32Array | null | undefined)[], out?: Float32Array): Float32Array {
  const K = features.length;
  const { fused, size, plane, channels: C } = checkAlignedMaps(features, masks, out);

  // The ego (null mask) usually comes first: start from a copy of it rather than from −∞, and when any agent
  // covers everything no cell can be left at −∞.
  let first = 0;
  if (!masks[0]) {
    fused.set(features[0]);
    first = 1;
  } else {
    fused.fill(-Infinity);
  }
  for (let k = first; k < K; k++) {
    const f = features[k];
    const m = masks[k];
    if (!m) {
      for (let i = 0; i < size; i++) if (f[i] > fused[i]) fused[i] = f[i];
      continue;
    }
    // The covered cells once, then every channel over them alone: a selection-coded collaborator covers ~10 %.
    // Cell by cell, as the warp (3.5 → 2.7 ms for a real frame's three collaborators, the copy of the ego included).
    if (coveredCell.length < plane) coveredCell = new Int32Array(plane);
    let n = 0;
    for (let cell = 0; cell < plane; cell++) if (m[cell] > 0) coveredCell[n++] = cell;
    for (let j = 0; j < n; j++) {
      for (let i = coveredCell[j]; i < size; i += plane) {
        if (f[i] > fused[i]) fused[i] = f[i];
      }
    }
  }
  if (masks.every((m) => m)) for (let i = 0; i < size; i++) if (fused[i] === -Infinity) fused[i] = 0;
  return fused;
}
