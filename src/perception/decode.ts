// From the detection head's raw outputs to scored boxes, before NMS (OpenCOOD VoxelPostprocessor.post_process:
// sigmoid, `prob > score_threshold`, delta_to_boxes3d). Per class: candidates above the threshold, the top-k by
// score, each decoded against its anchor. Tensors (batch 1 dropped): cls_logits [A, H, W], box_deltas [7A, H, W]
// with channel a·7 + k. OpenCOOD also drops boxes with implausible size or z after NMS; the trained head plus the
// per-class anchors make that rare here, so it is left out.

import type { Detection } from '../eval/index.ts';
import type { ObjectClass } from '../datasets/index.ts';
import { BOX_CODE_SIZE, decodeBox, type AnchorLayout } from './anchors.ts';

export const DEFAULT_SCORE_THRESHOLD = 0.2;
export const DEFAULT_PRE_NMS_TOP_K = 1000;

export interface DecodeOptions {
  /** Keep anchors whose sigmoid score is strictly above this (default 0.2). */
  scoreThreshold?: number;
  /** At most this many candidates per class, highest scores first (default 1000). */
  preNmsTopK?: number;
}

export class DecodeError extends Error {
  constructor(readonly field: string, readonly value: unknown, detail: string) {
    super(`decode: ${field} = ${String(value)}: ${detail}`);
    this.name = new.target.name;
  }
}

export function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * Decodes one frame's head outputs against an anchor layout. Holds its scratch buffers, so decoding a stream of
 * frames allocates only the returned detections.
 */
export class DetectionDecoder {
  readonly layout: AnchorLayout;
  readonly scoreThreshold: number;
  readonly preNmsTopK: number;
  private readonly plane: number;
  private readonly candidateIndex: Int32Array;
  private readonly candidateScore: Float64Array;
  private readonly sortScratch: Float64Array;
  // Anchor channels of each class, in the class order of the layout.
  private readonly classChannels: number[][];
  private readonly logitThreshold: number;

  constructor(layout: AnchorLayout, opts: DecodeOptions = {}) {
    const scoreThreshold = opts.scoreThreshold ?? DEFAULT_SCORE_THRESHOLD;
    const preNmsTopK = opts.preNmsTopK ?? DEFAULT_PRE_NMS_TOP_K;
    if (!(scoreThreshold >= 0 && scoreThreshold < 1)) throw new DecodeError('scoreThreshold', scoreThreshold, 'must be in [0, 1)');
    if (!Number.isInteger(preNmsTopK) || preNmsTopK < 1) throw new DecodeError('preNmsTopK', preNmsTopK, 'must be a positive integer');
    this.layout = layout;
    this.scoreThreshold = scoreThreshold;
    this.preNmsTopK = preNmsTopK;
    this.plane = layout.width * layout.height;
    this.classChannels = layout.classes.map(() => []);
    layout.channels.forEach((ch, a) => this.classChannels[ch.classIndex].push(a));
    const perClassMax = Math.max(...this.classChannels.map((c) => c.length)) * this.plane;
    this.candidateIndex = new Int32Array(perClassMax);
    this.candidateScore = new Float64Array(perClassMax);
    this.sortScratch = new Float64Array(perClassMax);
    // Compare logits, not sigmoids, in the scan: one subtraction per anchor instead of an exp. The margin keeps
    // anchors whose float sigmoid lands just above the threshold; the exact test runs on the survivors.
    this.logitThreshold = scoreThreshold === 0 ? -Infinity : Math.log(scoreThreshold / (1 - scoreThreshold)) - 1e-6;
  }

  /** Candidates of every class, each class's block in descending score (ties: anchor order), before NMS. */
  decode(clsLogits: Float32Array, boxDeltas: Float32Array): Detection[] {
    const A = this.layout.channels.length;
    const plane = this.plane;
    if (clsLogits.length !== A * plane) {
      throw new DecodeError('clsLogits.length', clsLogits.length, `must be A × H × W = ${A} × ${this.layout.height} × ${this.layout.width}`);
    }
    if (boxDeltas.length !== BOX_CODE_SIZE * A * plane) {
      throw new DecodeError('boxDeltas.length', boxDeltas.length, `must be 7A × H × W = ${BOX_CODE_SIZE * A} × ${this.layout.height} × ${this.layout.width}`);
    }
    const out: Detection[] = [];
    for (let k = 0; k < this.classChannels.length; k++) this.decodeClass(k, clsLogits, boxDeltas, out);
    return out;
  }

  private decodeClass(classIndex: number, clsLogits: Float32Array, boxDeltas: Float32Array, out: Detection[]): void {
    const { plane, candidateIndex, candidateScore, scoreThreshold } = this;
    const logitThreshold = this.logitThreshold;
    let count = 0;
    for (const a of this.classChannels[classIndex]) {
      for (let i = a * plane, end = i + plane; i < end; i++) {
        const logit = clsLogits[i];
        if (logit > logitThreshold) {
          const score = sigmoid(logit);
          if (score > scoreThreshold) {
            candidateIndex[count] = i;
            candidateScore[count] = score;
            count++;
          }
        }
      }
    }
    if (count === 0) return;

    let order: number[];
    if (count > this.preNmsTopK) {
      // The k-th largest score by a native numeric sort of a copy; then everything above it, and ties at it in
      // anchor order until k are taken.
      const sorted = this.sortScratch.subarray(0, count);
      sorted.set(candidateScore.subarray(0, count));
      sorted.sort();
      const kth = sorted[count - this.preNmsTopK];
      let above = 0;
      for (let c = 0; c < count; c++) if (candidateScore[c] > kth) above++;
      let tiesLeft = this.preNmsTopK - above;
      order = [];
      for (let c = 0; c < count; c++) {
        const s = candidateScore[c];
        if (s > kth || (s === kth && tiesLeft-- > 0)) order.push(c);
      }
    } else {
      order = Array.from({ length: count }, (_, c) => c);
    }
    order.sort((p, q) => candidateScore[q] - candidateScore[p] || p - q);

    const { layout } = this;
    const { width, cellSize, xMin, yMin } = layout;
    const cls: ObjectClass = layout.classes[classIndex];
    const deltas = new Float64Array(BOX_CODE_SIZE);
    for (const c of order) {
      const index = candidateIndex[c];
      const a = Math.floor(index / plane);
      const cell = index - a * plane;
      const row = Math.floor(cell / width);
      const col = cell - row * width;
      for (let k = 0; k < BOX_CODE_SIZE; k++) deltas[k] = boxDeltas[(a * BOX_CODE_SIZE + k) * plane + cell];
      const ch = layout.channels[a];
      const anchor = { x: xMin + (col + 0.5) * cellSize, y: yMin + (row + 0.5) * cellSize, z: ch.z, l: ch.l, w: ch.w, h: ch.h, yaw: ch.yaw };
      out.push({ box: decodeBox(deltas, anchor), score: candidateScore[c], cls });
    }
  }
}

/** One-off decode (allocates a decoder); see DetectionDecoder for streams of frames. */
export function decodeDetections(layout: AnchorLayout, clsLogits: Float32Array, boxDeltas: Float32Array, opts: DecodeOptions = {}): Detection[] {
  return new DetectionDecoder(layout, opts).decode(clsLogits, boxDeltas);
}
