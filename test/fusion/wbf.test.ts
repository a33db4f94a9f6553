import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Detection } from '../../src/eval/index.ts';
import { weightedBoxFusion } from '../../src/fusion/index.ts';

const det = (x: number, y: number, score: number, extra: Partial<Detection['box']> = {}, cls: Detection['cls'] = 'vehicle'): Detection => ({
  box: { x, y, z: -1, l: 4, w: 2, h: 1.6, yaw: 0, ...extra },
  score,
  cls,
});
const close = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) < tol;

test('WBF of two overlapping boxes from two agents is their score-weighted average, score the mean', () => {
  const [f, ...rest] = weightedBoxFusion([[det(0, 0, 0.9, { l: 4, h: 1.5 })], [det(0.4, 0.2, 0.3, { l: 5, h: 1.9, z: -0.6 })]]);
  assert.equal(rest.length, 0);
  // Weights 0.9 and 0.3 (sum 1.2): x = 0.12 / 1.2, y = 0.06 / 1.2, l = (3.6 + 1.5) / 1.2, …
  assert.ok(close(f.box.x, 0.1) && close(f.box.y, 0.05), JSON.stringify(f.box));
  assert.ok(close(f.box.l, 4.25) && close(f.box.h, 1.6) && close(f.box.z, -0.9) && close(f.box.w, 2));
  // Mean of 0.9 and 0.3, times min(T, N) / N = 2 / 2.
  assert.ok(close(f.score, 0.6));
  assert.equal(f.cls, 'vehicle');
});

test('WBF: a box seen by one of two agents keeps its place with its score halved; max mode keeps the score', () => {
  const lists = [[det(0, 0, 0.8)], [det(30, 0, 0.6)]];
  const fused = weightedBoxFusion(lists);
  assert.deepEqual(fused.map((d) => [d.box.x, +d.score.toFixed(9)]), [[0, 0.4], [30, 0.3]]);
  assert.deepEqual(weightedBoxFusion(lists, { scoreMode: 'max' }).map((d) => d.score), [0.8, 0.6]);
});

test('WBF yaw: circular mean across ±π, and a box turned by 180° averages as the same box', () => {
  const [wrap] = weightedBoxFusion([[det(0, 0, 0.5, { yaw: Math.PI - 0.1 })], [det(0, 0, 0.5, { yaw: -Math.PI + 0.1 })]]);
  assert.ok(close(Math.abs(wrap.box.yaw), Math.PI, 1e-9), `got ${wrap.box.yaw}, a naive mean gives 0`);
  const [flip] = weightedBoxFusion([[det(0, 0, 0.6, { yaw: 0.1 })], [det(0, 0, 0.6, { yaw: Math.PI + 0.1 })]]);
  assert.ok(close(flip.box.yaw, 0.1), `got ${flip.box.yaw}: must stay along the boxes, not sideways`);
});

test('WBF keeps classes apart, leaves far boxes alone, and applies the range mask', () => {
  const fused = weightedBoxFusion([[det(0, 0, 0.9), det(50, 0, 0.9)], [det(0, 0, 0.5, {}, 'pedestrian')]], {
    range: { xMin: -51.2, xMax: 51.2, yMin: -51.2, yMax: 51.2 },
  });
  // The vehicle at 50 m (l = 4) has corners at 52 m, beyond 51.2 m: dropped. The pedestrian on the car does not merge with it.
  assert.deepEqual(fused.map((d) => d.cls).sort(), ['pedestrian', 'vehicle']);
  assert.ok(fused.every((d) => d.box.x === 0));
  // Three agents, one object seen by all three: score = mean (no rescale penalty).
  const three = weightedBoxFusion([[det(0, 0, 0.9)], [det(0.1, 0, 0.6)], [det(-0.1, 0, 0.3)]]);
  assert.equal(three.length, 1);
  assert.ok(close(three[0].score, 0.6) && close(three[0].box.x, (0 + 0.06 - 0.03) / 1.8));
});
