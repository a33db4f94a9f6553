// Attention fusion computed only where it changes anything. The attention of fusion_attention.onnx (OpenCOOD's
// AttFusion, tools/train/model.py AttentionFusion) has no weights: per cell, the ego's feature vector is the query,
// every agent's vector at that cell is key and value, scores are dot products / √C, agents whose mask is 0 at the
// cell get −1e9 before the softmax. Where no collaborator covers a cell the softmax has one term and the result is
// the ego's own vector, bit for bit; with selection-coded collaborators (a tenth of their cells each) that is most
// of the map. So: the ego's map, then the softmax only on cells some collaborator covers. On a real frame with three
// top-10 % collaborators it takes 4.5–4.9 ms against the model's 12.6 ms (tools/bench/fusion-frame.ts), which also
// packs the four maps into one tensor first; test/fusion/attention-fusion.test.ts holds it to the model's output.
// A masked agent's vector is read only when its weight is not 0 (7.0–7.3 ms when every agent's was).
import { checkAlignedMaps } from './warp.ts';

// Scratch grown on demand, shared (single-threaded; no reference kept past a call).
let cells = new Int32Array(0);
let values = new Float64Array(0);
let weights = new Float64Array(0);
let gatheredFlags = new Uint8Array(0);

/** One cell's C values of a [C, H, W] map into v[at .. at + C). */
function gather(f: Float32Array, cell: number, plane: number, C: number, v: Float64Array, at: number): void {
  for (let c = 0, i = cell, o = at; c < C; c++, i += plane, o++) v[o] = f[i];
}

/** The score the model gives an agent its mask leaves out (a finite stand-in for −∞, as exported). */
const MASKED_SCORE = -1e9;

/**
 * out[:, cell] = Σ_k w_k · features[k][:, cell], w = softmax_k(features[0][:, cell] · features[k][:, cell] / √C, with
 * MASKED_SCORE for an agent whose mask is 0 there). A null mask covers every cell (the ego's own map). All maps are
 * [C, H, W] in the ego grid, the ego first; masks are [H, W]. `out` (length C·H·W) must not be one of the inputs.
 */
export function attentionFuse(features: readonly Float32Array[], masks: readonly (Float32Array | null | undefined)[], out?: Float32Array): Float32Array {
  const K = features.length;
  const { fused, plane, channels: C } = checkAlignedMaps(features, masks, out);
  const ego = features[0];
  const egoMask = masks[0];

  // The cells where the softmax has more than the ego's term: some collaborator covers them, or the ego itself
  // does not (then its term is masked too, as the model does).
  if (cells.length < plane) cells = new Int32Array(plane);
  const list = cells;
  let n = 0;
  for (let cell = 0; cell < plane; cell++) {
    let other = egoMask ? !(egoMask[cell] > 0) : false;
    for (let k = 1; k < K && !other; k++) {
      const m = masks[k];
      other = !m || m[cell] > 0;
    }
    if (other) list[n++] = cell;
  }
  fused.set(ego);
  if (n === 0) return fused;

  // One cell at a time: its K × C values gathered once, then scores, softmax and the weighted sum from them (one
  // pass over the maps; two channel-major passes, scores then sum, took 1.5× as long).
  if (values.length < K * C) {
    values = new Float64Array(K * C);
    weights = new Float64Array(K);
  }
  const v = values, wk = weights;
  const scale = 1 / Math.sqrt(C);
  const gathered = gatheredFlags.length < K ? (gatheredFlags = new Uint8Array(K)) : gatheredFlags;
  for (let j = 0; j < n; j++) {
    const cell = list[j];
    gathered.fill(0);
    let top = -Infinity;
    for (let k = 0; k < K; k++) {
      const m = masks[k];
      let s = MASKED_SCORE;
      // The ego's vector is the query, so it is always read; another agent's only where its mask lets it in (or if
      // its weight turns out not to be 0, below): most covered cells are covered by one collaborator of three.
      if (k === 0 || !m || m[cell] > 0) {
        gather(features[k], cell, plane, C, v, k * C);
        gathered[k] = 1;
      }
      if (!m || m[cell] > 0) {
        s = 0;
        for (let c = 0, o = k * C; c < C; c++, o++) s += v[c] * v[o];
        s *= scale;
      }
      wk[k] = s;
      if (s > top) top = s;
    }
    let sum = 0;
    for (let k = 0; k < K; k++) {
      wk[k] = Math.exp(wk[k] - top);
      sum += wk[k];
      // A masked agent's weight is exp(−1e9 − top) = 0 unless every agent is masked here (a uniform softmax).
      if (wk[k] !== 0 && !gathered[k]) {
        gather(features[k], cell, plane, C, v, k * C);
        gathered[k] = 1;
      }
    }
    for (let c = 0, i = cell; c < C; c++, i += plane) {
      let x = 0;
      for (let k = 0; k < K; k++) if (wk[k] !== 0) x += wk[k] * v[k * C + c];
      fused[i] = x / sum;
    }
  }
  return fused;
}
