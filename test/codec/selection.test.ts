// Top-k selection finds the k-th largest confidence by selection rather than a sort, and the feature codec checks
// finiteness only on the values it sends: both must choose and refuse exactly what the sort-based rule would.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeFeatures, encodeFeatures, parseCodecSpec, selectCells } from '../../src/codec/index.ts';

/** The rule as documented: the k largest eligible cells, ties at the k-th value going to the lower indices. */
function referenceTopK(confidence: Float32Array, k: number, request?: Uint8Array): number[] {
  const eligible = [...confidence.keys()].filter((i) => !request || request[i] !== 0);
  if (k >= eligible.length) return eligible;
  const order = [...eligible].sort((a, b) => confidence[b] - confidence[a] || a - b);
  return order.slice(0, k).sort((a, b) => a - b);
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

test('selectCells top-k matches the sort-based rule, with heavy ties, negative zero and request maps', () => {
  const rand = seeded(7);
  for (let trial = 0; trial < 300; trial++) {
    const cells = 1 + Math.floor(rand() * 400);
    // Quantised confidences make many ties at the k-th value; some -0 and negatives.
    const confidence = new Float32Array(cells).map(() => (rand() < 0.3 ? Math.floor(rand() * 4) / 4 : rand()) * (rand() < 0.05 ? -1 : 1));
    const request = rand() < 0.5 ? new Uint8Array(cells).map(() => (rand() < 0.7 ? 1 : 0)) : undefined;
    const k = Math.floor(rand() * (cells + 2));
    const got = selectCells(cells, { kind: 'topCount', count: k }, confidence, request);
    assert.deepEqual([...got], referenceTopK(confidence, k, request), `trial ${trial}: ${cells} cells, k ${k}`);
  }
});

test('a selected payload refuses a non-finite value only where it is sent, and round-trips through the run-length deflate', () => {
  const H = 16, W = 16, C = 3, cells = H * W;
  const features = new Float32Array(C * cells).map((_, i) => (i % 7) / 7);
  const confidence = new Float32Array(cells).map((_, i) => (i < 32 ? 1 : 0));
  features[1 * cells + 200] = NaN; // cell 200 has confidence 0: not among the top 32
  const spec = parseCodecSpec('int8+top12.5%+deflate');
  const coded = encodeFeatures(features, H, W, C, spec, { confidence });
  assert.equal(coded.header.selectedCells, 32);
  const out = decodeFeatures(coded.payload, coded.header);
  for (let c = 0; c < C; c++) {
    for (let cell = 0; cell < cells; cell++) {
      const want = cell < 32 ? features[c * cells + cell] : 0;
      assert.ok(Math.abs(out.features[c * cells + cell] - want) <= 6 / 7 / 255 / 2 + 1e-6, `channel ${c} cell ${cell}`);
    }
  }
  features[2 * cells + 5] = Infinity; // cell 5 is sent
  assert.throws(() => encodeFeatures(features, H, W, C, spec, { confidence }), /channel 2, row 0, col 5 is Infinity/);
  // Dense: every value travels, so the unsent-cell NaN is refused too.
  features[2 * cells + 5] = 0;
  assert.throws(() => encodeFeatures(features, H, W, C, 'int8+deflate'), /channel 1, row 12, col 8 is NaN/);
});
