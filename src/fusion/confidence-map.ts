// The fused confidence a result can carry (FusionResult.confidence_map): the head's per-cell probability
// (featureConfidenceMap), max-pooled so that a peak survives the coarser grid, quantised to one byte per cell.
import { FusionInputError } from './warp.ts';

/** Map cells along each axis for `stride`, which must divide both (a map cell is whole feature cells). */
export function pooledSize(height: number, width: number, stride: number): { height: number; width: number } {
  if (!Number.isInteger(stride) || stride < 1 || height % stride !== 0 || width % stride !== 0) {
    throw new FusionInputError('stride', stride, `must be a positive integer dividing the ${height} × ${width} feature grid`);
  }
  return { height: height / stride, width: width / stride };
}

/**
 * prob (H·W, 0..1, row-major) → (H/stride)·(W/stride) bytes, each round(255 · the max of its stride × stride block).
 * `out` is reused when it has the right length.
 */
export function quantiseConfidence(prob: Float32Array, height: number, width: number, stride: number, out?: Uint8Array): Uint8Array {
  if (prob.length !== height * width) throw new FusionInputError('prob.length', prob.length, `must be H × W = ${height * width}`);
  const size = pooledSize(height, width, stride);
  const cells = size.height * size.width;
  const q = out && out.length === cells ? out : new Uint8Array(cells);
  q.fill(0);
  for (let r = 0; r < height; r++) {
    const row = ((r / stride) | 0) * size.width;
    for (let c = 0; c < width; c++) {
      const p = prob[r * width + c];
      // NaN and out-of-range probabilities clamp: one bad cell must not make the map undrawable.
      const v = p > 0 ? (p < 1 ? Math.round(p * 255) : 255) : 0;
      const i = row + ((c / stride) | 0);
      if (v > q[i]) q[i] = v;
    }
  }
  return q;
}
