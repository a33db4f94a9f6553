import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bevIoU, type Box7 } from '../../src/geometry/index.ts';
import {
  DEFAULT_BEV_GRID,
  DetectionDecoder,
  anchorBox,
  anchorLayout,
  decodeBox,
  decodeDetections,
  encodeBox,
  generateAnchors,
  type BevGrid,
} from '../../src/perception/index.ts';
import { DEFAULT_ANCHORS } from '../../src/perception/anchors.ts';

function assertBoxClose(actual: Box7, expected: Box7, tol = 1e-9): void {
  for (const k of ['x', 'y', 'z', 'l', 'w', 'h', 'yaw'] as const) {
    assert.ok(Math.abs(actual[k] - expected[k]) <= tol, `${k}: ${actual[k]} vs ${expected[k]}`);
  }
}

test('anchorLayout on the default grid: 4 channels (vehicle 0, π/2, pedestrian 0, π/2) on the 128 x 128 feature map', () => {
  const layout = anchorLayout(DEFAULT_BEV_GRID, DEFAULT_ANCHORS);
  assert.deepEqual(layout.channels.map((c) => [c.cls, c.yaw]), [
    ['vehicle', 0],
    ['vehicle', Math.PI / 2],
    ['pedestrian', 0],
    ['pedestrian', Math.PI / 2],
  ]);
  assert.deepEqual([layout.width, layout.height, layout.cellSize], [128, 128, 0.8]);
  // First cell centre: −51.2 + 0.4; cell (row 127, col 5): x = −51.2 + 5.5·0.8 = −46.8, y = 51.2 − 0.4 = 50.8.
  assertBoxClose(anchorBox(layout, 1, 0, 0), { x: -50.8, y: -50.8, z: -0.9, l: 4.5, w: 2, h: 1.6, yaw: Math.PI / 2 });
  assertBoxClose(anchorBox(layout, 2, 127, 5), { x: -46.8, y: 50.8, z: -1, l: 0.6, w: 0.6, h: 1.75, yaw: 0 });
  // generateAnchors is laid out [A, H, W, 7] in the same order.
  const all = generateAnchors(layout);
  assert.equal(all.length, 4 * 128 * 128 * 7);
  const at = (a: number, r: number, c: number): number[] => Array.from(all.subarray(((a * 128 + r) * 128 + c) * 7, ((a * 128 + r) * 128 + c + 1) * 7));
  const expected = anchorBox(layout, 2, 127, 5);
  assert.deepEqual(at(2, 127, 5).map((v) => Math.round(v * 1e5) / 1e5), [expected.x, expected.y, expected.z, expected.l, expected.w, expected.h, expected.yaw].map((v) => Math.round(Math.fround(v) * 1e5) / 1e5));
});

test('encodeBox: the SECOND residuals, by hand', () => {
  const anchor: Box7 = { x: 10, y: -4, z: -0.9, l: 4.5, w: 2, h: 1.6, yaw: 0 };
  const d = Math.hypot(4.5, 2); // 4.924428900898052
  const box: Box7 = { x: 10 + 0.5 * d, y: -4 - 0.25 * d, z: -0.9 + 0.8, l: 9, w: 1, h: 1.6, yaw: 0.3 };
  const e = Array.from(encodeBox(box, anchor));
  const want = [0.5, -0.25, 0.5, Math.log(2), Math.log(0.5), 0, 0.3];
  e.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-12, `delta ${i}: ${v} vs ${want[i]}`));
});

test('decode(encode(box)) == box for yaws within ±π/2 of the anchor; beyond, the same BEV box turned by π', () => {
  const anchors: Box7[] = [
    { x: 0.4, y: 0.4, z: -0.9, l: 4.5, w: 2, h: 1.6, yaw: 0 },
    { x: -3.6, y: 7.2, z: -1, l: 0.6, w: 0.6, h: 1.75, yaw: Math.PI / 2 },
  ];
  const boxes: Box7[] = [
    { x: 1.3, y: -0.2, z: -0.7, l: 4.1, w: 1.9, h: 1.5, yaw: 0.4 },
    { x: -2.0, y: 1.0, z: -1.2, l: 5.2, w: 2.3, h: 2.1, yaw: -1.5 },
    { x: -3.3, y: 7.9, z: -0.8, l: 0.5, w: 0.7, h: 1.8, yaw: 2.9 },
  ];
  for (const anchor of anchors) {
    for (const box of boxes) {
      const back = decodeBox(encodeBox(box, anchor), anchor);
      const within = Math.abs(((box.yaw - anchor.yaw + 3 * Math.PI) % (2 * Math.PI)) - Math.PI) < Math.PI / 2;
      if (within) {
        assertBoxClose(back, box);
      } else {
        assertBoxClose(back, { ...box, yaw: box.yaw > 0 ? box.yaw - Math.PI : box.yaw + Math.PI });
        assert.ok(Math.abs(bevIoU(back, box) - 1) < 1e-9);
      }
    }
  }
  // dθ is wrapped to [−π/2, π/2): yaw 3.0 against anchor 0 encodes as 3 − π.
  assert.ok(Math.abs(encodeBox({ ...boxes[0], yaw: 3 }, anchors[0])[6] - (3 - Math.PI)) < 1e-12);
  assert.ok(Math.abs(encodeBox({ ...boxes[0], yaw: -Math.PI / 2 }, anchors[0])[6] + Math.PI / 2) < 1e-12);
});

// A 3 x 2 feature map (W x H) with the contract's 4 anchors: small enough to fill by hand.
const tinyGrid: BevGrid = { xMin: 0, xMax: 4.8, yMin: -1.6, yMax: 1.6, zMin: -3, zMax: 1, cellSize: 0.8, featureStride: 2, channels: 1 };
const layout = anchorLayout(tinyGrid, DEFAULT_ANCHORS);
const W = 3, H = 2, A = 4, plane = W * H;
const logit = (p: number): number => Math.log(p / (1 - p));

function emptyOutputs(): { cls: Float32Array; box: Float32Array } {
  return { cls: new Float32Array(A * plane).fill(-10), box: new Float32Array(7 * A * plane) };
}

test('decode: sigmoid scores strictly above the threshold, boxes from channel a·7 + k at the right cell and anchor', () => {
  assert.deepEqual([layout.width, layout.height, layout.cellSize], [W, H, 1.6]);
  const { cls, box } = emptyOutputs();
  // Vehicle, yaw π/2 anchor (a = 1), row 1, col 2: anchor centre (0 + 2.5·1.6, −1.6 + 1.5·1.6) = (4, 0.8).
  const cell = 1 * W + 2;
  cls[1 * plane + cell] = 2; // score 0.8808
  const deltas = [0.1, -0.2, 0.25, Math.log(1.1), Math.log(0.9), 0, 0.05];
  deltas.forEach((v, k) => (box[(1 * 7 + k) * plane + cell] = v));
  // Pedestrian yaw 0 (a = 2), row 0, col 0 at exactly-ish the threshold: just below is dropped, just above kept.
  cls[2 * plane + 0] = logit(0.2) - 1e-4;
  cls[3 * plane + 1] = logit(0.2) + 1e-4;
  const dets = decodeDetections(layout, cls, box, { scoreThreshold: 0.2 });
  assert.equal(dets.length, 2);
  const [veh, ped] = dets;
  assert.equal(veh.cls, 'vehicle');
  assert.ok(Math.abs(veh.score - 1 / (1 + Math.exp(-2))) < 1e-7);
  const d = Math.hypot(4.5, 2);
  assertBoxClose(veh.box, { x: 4 + 0.1 * d, y: 0.8 - 0.2 * d, z: -0.9 + 0.25 * 1.6, l: 4.5 * 1.1, w: 2 * 0.9, h: 1.6, yaw: Math.PI / 2 + 0.05 }, 1e-6);
  assert.equal(ped.cls, 'pedestrian');
  // a = 3 (pedestrian, π/2), cell 1 = row 0, col 1: centre (2.4, −0.8); zero deltas give the anchor itself.
  assertBoxClose(ped.box, { x: 2.4, y: -0.8, z: -1, l: 0.6, w: 0.6, h: 1.75, yaw: Math.PI / 2 }, 1e-6);
});

test('decode: top-k per class keeps the k best of each class in descending score, ties in anchor order', () => {
  const { cls, box } = emptyOutputs();
  // Vehicles: 5 candidates with scores 0.3, 0.9, 0.5, 0.7, 0.5; pedestrians: 2 candidates.
  const vehicle = [[0, 0, 0.3], [0, 3, 0.9], [1, 1, 0.5], [1, 4, 0.7], [1, 5, 0.5]] as const;
  for (const [a, c, p] of vehicle) cls[a * plane + c] = logit(p);
  cls[2 * plane + 2] = logit(0.6);
  cls[3 * plane + 2] = logit(0.4);
  const decoder = new DetectionDecoder(layout, { scoreThreshold: 0.2, preNmsTopK: 3 });
  const dets = decoder.decode(cls, box);
  const summary = dets.map((det) => [det.cls, Math.round(det.score * 100) / 100, Math.round(det.box.x * 10) / 10, Math.round(det.box.yaw * 100) / 100]);
  assert.deepEqual(summary, [
    ['vehicle', 0.9, 0.8, 0], // a 0, cell 3 = row 1, col 0 → x 0.8
    ['vehicle', 0.7, 2.4, 1.57], // a 1, cell 4 = row 1, col 1
    ['vehicle', 0.5, 2.4, 1.57], // a 1, cell 1 (tie at 0.5 with cell 5: the earlier anchor index wins)
    ['pedestrian', 0.6, 4, 0],
    ['pedestrian', 0.4, 4, 1.57],
  ]);
  // The decoder is reusable across frames: the same input gives the same output.
  assert.deepEqual(decoder.decode(cls, box).map((det) => det.score), dets.map((det) => det.score));
  assert.throws(() => decoder.decode(new Float32Array(3), box), /clsLogits.length/);
});

test('decode: no candidate above the threshold gives no detections; threshold and top-k are validated', () => {
  const { cls, box } = emptyOutputs();
  assert.deepEqual(decodeDetections(layout, cls, box), []);
  assert.throws(() => new DetectionDecoder(layout, { scoreThreshold: 1 }), /scoreThreshold/);
  assert.throws(() => new DetectionDecoder(layout, { preNmsTopK: 0 }), /preNmsTopK/);
});
