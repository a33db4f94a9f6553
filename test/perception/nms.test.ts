import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bevIoU, type Box7 } from '../../src/geometry/index.ts';
import { nmsPerClass, rotatedNms } from '../../src/perception/index.ts';

const car = (x: number, y: number, yaw = 0): Box7 => ({ x, y, z: -0.9, l: 4, w: 2, h: 1.6, yaw });

test('rotatedNms: two 4 x 2 boxes offset along x overlap with IoU 2(4 − dx) / (16 − 2(4 − dx)); suppressed only above 0.15', () => {
  // dx = 2.9: IoU = 2.2 / 13.8 = 0.159 > 0.15 → suppressed. dx = 3.0: IoU = 2 / 14 = 0.143 → kept.
  assert.ok(Math.abs(bevIoU(car(0, 0), car(2.9, 0)) - 2.2 / 13.8) < 1e-12);
  assert.deepEqual(rotatedNms([car(0, 0), car(2.9, 0)], [0.9, 0.8]), [0]);
  assert.deepEqual(rotatedNms([car(0, 0), car(3.0, 0)], [0.9, 0.8]), [0, 1]);
  // Order of the input does not matter, the score does; the kept index is the stronger box.
  assert.deepEqual(rotatedNms([car(2.9, 0), car(0, 0)], [0.8, 0.9]), [1]);
});

test('rotatedNms: the same box turned by 90° (4 x 2 over 2 x 4: IoU 4 / 12) is suppressed; disjoint boxes are not', () => {
  assert.ok(Math.abs(bevIoU(car(0, 0), car(0, 0, Math.PI / 2)) - 1 / 3) < 1e-12);
  assert.deepEqual(rotatedNms([car(0, 0), car(0, 0, Math.PI / 2)], [0.5, 0.6]), [1]);
  assert.deepEqual(rotatedNms([car(0, 0), car(10, 0), car(0, 10)], [0.3, 0.2, 0.1]), [0, 1, 2]);
});

test('rotatedNms: greedy chain — A suppresses B, so B does not suppress C though they overlap', () => {
  const a = car(0, 0), b = car(2, 0), c = car(4, 0);
  assert.ok(bevIoU(a, b) > 0.15 && bevIoU(b, c) > 0.15 && bevIoU(a, c) === 0);
  assert.deepEqual(rotatedNms([c, b, a], [0.7, 0.8, 0.9]), [2, 0]);
});

test('rotatedNms: a rotated box whose axis-aligned extents overlap but whose polygon does not is kept', () => {
  // Diagonal 4 x 0.5 box at 45° and a small box in the empty corner of its bounding square.
  const diag: Box7 = { x: 0, y: 0, z: 0, l: 4, w: 0.5, h: 1, yaw: Math.PI / 4 };
  const corner: Box7 = { x: -1.1, y: 1.1, z: 0, l: 0.6, w: 0.6, h: 1, yaw: 0 };
  assert.equal(bevIoU(diag, corner), 0);
  assert.deepEqual(rotatedNms([diag, corner], [0.9, 0.8]), [0, 1]);
});

test('rotatedNms: equal scores keep input order; maxOutput caps the kept boxes', () => {
  assert.deepEqual(rotatedNms([car(0, 0), car(10, 0), car(20, 0)], [0.5, 0.5, 0.5]), [0, 1, 2]);
  assert.deepEqual(rotatedNms([car(0, 0), car(10, 0), car(20, 0)], [0.1, 0.5, 0.3], 0.15, 2), [1, 2]);
  assert.throws(() => rotatedNms([car(0, 0)], [0.1, 0.2]), RangeError);
});

test('nmsPerClass: a pedestrian under a car box survives; two cars do not; output sorted by score', () => {
  const ped: Box7 = { x: 0.5, y: 0, z: -1, l: 0.6, w: 0.6, h: 1.75, yaw: 0 };
  const out = nmsPerClass([
    { box: car(0, 0), score: 0.9, cls: 'vehicle' },
    { box: car(1, 0), score: 0.8, cls: 'vehicle' },
    { box: ped, score: 0.95, cls: 'pedestrian' },
    { box: car(30, 0), score: 0.3 }, // no class: a vehicle
  ]);
  assert.deepEqual(out.map((d) => [d.cls, d.score]), [['pedestrian', 0.95], ['vehicle', 0.9], [undefined, 0.3]]);
});

test('rotatedNms on 1000 random boxes: no two kept boxes overlap above the threshold, every dropped box is covered by a stronger kept one', () => {
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const boxes: Box7[] = [];
  const scores: number[] = [];
  for (let i = 0; i < 1000; i++) {
    boxes.push({ x: rand() * 60 - 30, y: rand() * 60 - 30, z: -1, l: 3.5 + rand() * 1.5, w: 1.6 + rand() * 0.6, h: 1.6, yaw: rand() * 2 * Math.PI - Math.PI });
    scores.push(rand());
  }
  const kept = rotatedNms(boxes, scores, 0.15);
  const keptSet = new Set(kept);
  for (let i = 1; i < kept.length; i++) assert.ok(scores[kept[i - 1]] >= scores[kept[i]]);
  for (let i = 0; i < kept.length; i++) {
    for (let j = i + 1; j < kept.length; j++) assert.ok(bevIoU(boxes[kept[i]], boxes[kept[j]]) <= 0.15);
  }
  for (let j = 0; j < boxes.length; j++) {
    if (keptSet.has(j)) continue;
    assert.ok(kept.some((i) => scores[i] >= scores[j] && bevIoU(boxes[i], boxes[j]) > 0.15), `box ${j} dropped without cause`);
  }
  assert.ok(kept.length > 100 && kept.length < 1000);
});
