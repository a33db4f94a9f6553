// Hybrid fusion (the idea of CoSDH, "CoSDH: Communication-efficient collaborative perception via supply-demand
// awareness and intermediate-late hybridization", CVPR 2025): a collaborator sends BEV features only for its most
// confident cells (the codec's top-k selection) and, for the objects it detected whose centre cell it did not
// send, the objects themselves. The receiver fuses the features it got with its own, runs the head, and merges
// the result with those late objects by per-class NMS (fuseLate), so nothing the collaborator saw is lost for
// want of bandwidth, and the cells that matter most still get feature-level fusion.
import type { Detection } from '../eval/index.ts';
import { featureCellOf, featureHeight, featureWidth, sigmoid, type BevGrid } from '../perception/index.ts';
import { type FuseLateOptions, fuseLate } from './late.ts';
import { FusionInputError } from './warp.ts';

/**
 * Max class probability per BEV cell over the head's anchors (clsLogits [A, H, W]): the confidence map Where2comm
 * selects cells by, and what the codec's top-k ranks. `out` has H·W values.
 */
export function featureConfidenceMap(clsLogits: Float32Array, out: Float32Array): Float32Array {
  const cells = out.length;
  const anchors = clsLogits.length / cells;
  if (!Number.isInteger(anchors) || anchors < 1) throw new FusionInputError('clsLogits.length', clsLogits.length, `is not a whole number of ${cells}-cell planes`);
  for (let c = 0; c < cells; c++) {
    let best = -Infinity;
    for (let a = 0; a < anchors; a++) {
      const v = clsLogits[a * cells + c];
      if (v > best) best = v;
    }
    out[c] = sigmoid(best);
  }
  return out;
}

/**
 * The detections (boxes in the sender's frame, on the sender's grid) whose centre falls in a feature cell the
 * sender did not send (sent[row·W + col] = 0) or outside its grid: what hybrid fusion sends as objects.
 */
export function objectsOutsideSentCells(detections: readonly Detection[], sent: Uint8Array, grid: BevGrid): Detection[] {
  const W = featureWidth(grid), H = featureHeight(grid);
  if (sent.length !== W * H) throw new FusionInputError('sent.length', sent.length, `must be H × W = ${H * W}`);
  return detections.filter((d) => {
    const cell = featureCellOf(grid, d.box.x, d.box.y);
    return cell < 0 || sent[cell] === 0;
  });
}

/**
 * The receiver's hybrid merge: the head's detections on the fused features plus every collaborator's late objects
 * (already in the ego frame), by per-class NMS and the range mask, as fuseLate.
 */
export function mergeHybrid(intermediate: readonly Detection[], lateObjects: readonly (readonly Detection[])[], opts: FuseLateOptions = {}): Detection[] {
  return fuseLate(intermediate, lateObjects, opts);
}
