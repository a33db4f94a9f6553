// Mean fusion: the masked average of the aligned maps, the "mean" baseline beside max and learned attention
// (OpenCOOD's intermediate baselines average or max the warped features). A cell a collaborator does not cover is
// left out of the average rather than counted as a zero, so the ego's features are not halved at the edge of a
// collaborator's view.
import { checkAlignedMaps } from './warp.ts';

// Covering agents per cell; grown on demand and shared (single-threaded, no reference kept past a call).
let coverCount = new Float32Array(0);

/**
 * out[c, cell] = mean over agents k whose mask covers the cell (mask > 0) of features[k][c, cell]; 0 where no
 * agent covers it. A null mask means the agent covers every cell (the ego's own map). All maps are [C, H, W] in
 * the ego grid; masks are [H, W]. `out` (length C·H·W) is filled when given and must not be one of the inputs.
 */
export function meanFuse(features: readonly Float32Array[], masks: readonly (Float32Array | null | undefined)[], out?: Float32Array): Float32Array {
  const K = features.length;
  const { fused, plane, channels: C } = checkAlignedMaps(features, masks, out);

  // Per-cell count of covering agents, then one pass per map adds its covered cells; a final pass divides.
  if (coverCount.length < plane) coverCount = new Float32Array(plane);
  const count = coverCount;
  count.fill(0, 0, plane);
  for (let k = 0; k < K; k++) {
    const m = masks[k];
    for (let cell = 0; cell < plane; cell++) if (!m || m[cell] > 0) count[cell]++;
  }
  fused.fill(0);
  for (let k = 0; k < K; k++) {
    const f = features[k];
    const m = masks[k];
    for (let ch = 0; ch < C; ch++) {
      for (let cell = 0, i = ch * plane; cell < plane; cell++, i++) if (!m || m[cell] > 0) fused[i] += f[i];
    }
  }
  for (let ch = 0; ch < C; ch++) {
    for (let cell = 0, i = ch * plane; cell < plane; cell++, i++) if (count[cell] > 1) fused[i] /= count[cell];
  }
  return fused;
}
