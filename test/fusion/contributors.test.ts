import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Detection } from '../../src/eval/index.ts';
import { poseToMatrix } from '../../src/geometry/index.ts';
import { featureContributors, fuseLate, mergedContributors, mergeHybrid, pooledSize, quantiseConfidence, rangeContributors, weightedBoxFusion } from '../../src/fusion/index.ts';
import { DEFAULT_BEV_GRID, featureCellSize, featureWidth } from '../../src/perception/index.ts';

const g = DEFAULT_BEV_GRID;
const W = featureWidth(g), S = featureCellSize(g);
const PLANE = W * W;
const cellOf = (x: number, y: number) => Math.floor((y - g.yMin) / S) * W + Math.floor((x - g.xMin) / S);
const box = (x: number, y: number, score: number, cls: Detection['cls'] = 'vehicle'): Detection => ({ box: { x, y, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0 }, score, cls });

test('feature contributors: the ego everywhere on its grid, a collaborator only where its aligned mask holds features', () => {
  const maskB = new Float32Array(PLANE);
  maskB[cellOf(10.1, 5.1)] = 1;
  const maskC = new Float32Array(PLANE); // warped in, but nothing it sent lands here
  const dets = [box(10.1, 5.1, 0.9), box(10.1 + S, 5.1, 0.8), box(60, 0, 0.7)];
  const out = featureContributors(dets, [{ agentId: 'ego', mask: null }, { agentId: 'c', mask: maskC }, { agentId: 'b', mask: maskB }], g);
  // The neighbouring cell is not covered by B's one sent cell; a centre off the grid by no one.
  assert.deepEqual(out, [['b', 'ego'], ['ego'], []]);
  assert.throws(() => featureContributors(dets, [{ agentId: 'x', mask: new Float32Array(3) }], g), /mask of x/);
});

test('merged contributors after NMS: the kept box owns every same-class box it suppressed, and only those', () => {
  const ego = [box(10, 0, 0.9), box(-20, 5, 0.6)];
  const b = [box(10.4, 0.2, 0.8), box(30, -10, 0.75)];
  // C's box overlaps the ego's car but is a pedestrian: NMS runs per class, so it is its own detection.
  const c = [box(10.2, 0, 0.5, 'pedestrian'), box(-20.3, 5.1, 0.65)];
  const fused = fuseLate(ego, [b, c], { iouThreshold: 0.15 });
  const inputs = [
    ...ego.map((detection) => ({ detection, agents: ['ego'] })),
    ...b.map((detection) => ({ detection, agents: ['b'] })),
    ...c.map((detection) => ({ detection, agents: ['c'] })),
  ];
  const byBox = new Map(fused.map((d, k) => [d, mergedContributors(fused, inputs, 0.15)[k]]));
  assert.equal(fused.length, 4);
  assert.deepEqual(byBox.get(ego[0]), ['b', 'ego']);
  assert.deepEqual(byBox.get(b[1]), ['b']);
  assert.deepEqual(byBox.get(c[0]), ['c']);
  // C's box scored higher than the ego's there: it is the one kept, and it owns the ego's.
  assert.deepEqual(byBox.get(c[1]), ['c', 'ego']);
});

test('merged contributors in hybrid: feature contributors carry through the merge, late objects add their sender', () => {
  const fromHead = [box(10, 0, 0.9), box(-15, 8, 0.7)];
  const lateB = [box(10.3, 0.1, 0.6), box(40, 20, 0.55)];
  const merged = mergeHybrid(fromHead, [lateB], { iouThreshold: 0.15 });
  const out = mergedContributors(merged, [
    { detection: fromHead[0], agents: ['a', 'ego'] },
    { detection: fromHead[1], agents: ['ego'] },
    { detection: lateB[0], agents: ['b'] },
    { detection: lateB[1], agents: ['b'] },
  ], 0.15);
  assert.deepEqual(merged.map((d, k) => [d.box.x, out[k]]), [[10, ['a', 'b', 'ego']], [-15, ['ego']], [40, ['b']]]);
});

test('merged contributors after weighted box fusion: the members of each new box', () => {
  const a = [box(10, 0, 0.9), box(-30, 0, 0.8)];
  const b = [box(10.5, 0.3, 0.7)];
  const fused = weightedBoxFusion([a, b], { iouThreshold: 0.15 });
  const out = mergedContributors(fused, [...a.map((detection) => ({ detection, agents: ['a'] })), ...b.map((detection) => ({ detection, agents: ['b'] }))], 0.15, 'wbf');
  const at = (x: number) => out[fused.findIndex((d) => Math.abs(d.box.x - x) < 1)];
  assert.deepEqual(at(10.2), ['a', 'b']);
  assert.deepEqual(at(-30), ['a']);
});

test('range contributors (early fusion): the agents whose own grid holds the box centre', () => {
  // B sits 80 m ahead of the ego, turned around: a box 60 m ahead is 20 m in front of B too.
  const toEgo = poseToMatrix({ x: 80, y: 0, z: 0, roll: 0, pitch: 0, yaw: Math.PI });
  const out = rangeContributors([box(60, 0, 0.9), box(10, 0, 0.8), box(140, 0, 0.5)], [{ agentId: 'ego', toEgo: poseToMatrix({ x: 0, y: 0, z: 0, roll: 0, pitch: 0, yaw: 0 }) }, { agentId: 'b', toEgo }], g);
  assert.deepEqual(out, [['b'], ['ego'], []]);
});

test('the confidence map keeps each block\'s peak, quantised to a byte, and refuses a stride that cuts cells', () => {
  const H = 4, Wd = 6;
  const prob = new Float32Array(H * Wd);
  prob[0 * Wd + 1] = 0.5; // block (0, 0)
  prob[1 * Wd + 0] = 0.25;
  prob[3 * Wd + 5] = 1.2; // out of range: clamps
  prob[2 * Wd + 2] = Number.NaN; // clamps to 0
  const q = quantiseConfidence(prob, H, Wd, 2);
  assert.deepEqual(pooledSize(H, Wd, 2), { height: 2, width: 3 });
  assert.deepEqual([...q], [128, 0, 0, 0, 0, 255]);
  assert.deepEqual([...quantiseConfidence(prob, H, Wd, 1)].filter((v) => v > 0), [128, 64, 255]);
  // The output buffer is reused, and cleared, across frames.
  const again = quantiseConfidence(new Float32Array(H * Wd), H, Wd, 2, q);
  assert.equal(again, q);
  assert.deepEqual([...again], [0, 0, 0, 0, 0, 0]);
  assert.throws(() => quantiseConfidence(prob, H, Wd, 4), /stride/);
});
