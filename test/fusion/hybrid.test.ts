import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Detection } from '../../src/eval/index.ts';
import { identity, poseToMatrix } from '../../src/geometry/index.ts';
import { featureConfidenceMap, mergeHybrid, objectsOutsideSentCells } from '../../src/fusion/index.ts';
import { DEFAULT_BEV_GRID, featureCellSize, featureWidth, sigmoid } from '../../src/perception/index.ts';

const g = DEFAULT_BEV_GRID;
const W = featureWidth(g), S = featureCellSize(g); // 128 cells of 0.8 m
const PLANE = W * W;
const car = (x: number, y: number, score = 0.7): Detection => ({ box: { x, y, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0 }, score, cls: 'vehicle' });
const cellOf = (x: number, y: number) => Math.floor((y - g.yMin) / S) * W + Math.floor((x - g.xMin) / S);

test('hybrid sends an object only where its centre cell was not sent (or lies off the grid)', () => {
  const sent = new Uint8Array(PLANE);
  sent[cellOf(10.1, 5.1)] = 1; // the cell of the first car
  const inSent = car(10.1, 5.1), notSent = car(-20, 3), offGrid = car(60, 0);
  // A car 0.8 m (one cell) from a sent cell is not covered by it.
  const neighbour = car(10.1 + S, 5.1);
  const out = objectsOutsideSentCells([inSent, notSent, offGrid, neighbour], sent, g);
  assert.deepEqual(out, [notSent, offGrid, neighbour]);
  assert.deepEqual(objectsOutsideSentCells([inSent, notSent], new Uint8Array(PLANE).fill(1), g), [], 'everything sent: no objects');
  assert.throws(() => objectsOutsideSentCells([], new Uint8Array(3), g));
});

test('featureConfidenceMap is the max over anchors of the class probability, per cell', () => {
  const cells = 3;
  const logits = new Float32Array([0, -2, 5, /* anchor 2 */ 1, -3, 4]);
  const conf = featureConfidenceMap(logits, new Float32Array(cells));
  assert.deepEqual(Array.from(conf), [sigmoid(1), sigmoid(-2), sigmoid(5)].map(Math.fround));
  assert.throws(() => featureConfidenceMap(new Float32Array(5), new Float32Array(cells)));
});

test('mergeHybrid: the head\'s box wins over a collaborator\'s lower-scored copy; objects elsewhere are added', () => {
  const merged = mergeHybrid([car(0, 0, 0.9)], [[car(0.3, 0, 0.6), car(20, 20, 0.5)]]);
  assert.deepEqual(merged.map((d) => [d.box.x, d.score]), [[0, 0.9], [20, 0.5]]);
});
