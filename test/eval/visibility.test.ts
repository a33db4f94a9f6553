import { test } from 'node:test';
import assert from 'node:assert/strict';
import { poseToMatrix } from '../../src/geometry/index.ts';
import type { AgentFrame, CooperativeFrame, GroundTruthBox } from '../../src/datasets/index.ts';
import { cooperativeGroundTruth, markHiddenGroundTruth } from '../../src/eval/index.ts';

// Ego at the world origin facing +x; collaborator c at world (40, 0) facing −x (yaw π), so a point at c's LiDAR
// (x, y) lies at world (40 − x, −y). Three vehicles (4 × 2 × 1.5 m, centre 0.75 m above the road, LiDARs 1.9 m up
// so centre z = −1.15 in either LiDAR frame):
//   'a' at world (10, 0): the ego's returns hit it;
//   'b' at world (30, 5): only c's returns hit it (c sees it at (10, −5));
//   'h' at world (20, −15): nobody's returns hit it.
const box = (id: string, x: number, y: number): GroundTruthBox => ({
  id, cls: 'vehicle', rawClass: 'car', box: { x, y, z: 0.75, l: 4, w: 2, h: 1.5, yaw: 0 },
});
const boxes = [box('a', 10, 0), box('b', 30, 5), box('h', 20, -15)];
let loads = 0;
const agent = (agentId: string, x: number, yaw: number, points: number[]): AgentFrame => ({
  agentId,
  kind: 'vehicle',
  timestampNs: 0n,
  lidarToWorld: poseToMatrix({ x, y: 0, z: 1.9, roll: 0, pitch: 0, yaw }),
  lidarPath: `/nowhere/${agentId}.pcd`,
  loadPoints: async () => { loads++; return new Float32Array(points); },
  cameras: [],
  boxes,
});
// Ego: two returns on 'a' (ego frame (9.5, 0.2) and (10.8, −0.5), z −1) and one on the road near 'h' but below it.
const ego = agent('e', 0, 0, [9.5, 0.2, -1, 0.5, 10.8, -0.5, -1, 0.5, 20, -15, -2.5, 0.1]);
// c: one return on 'b' (c frame (10.3, −4.6), z −1.2), one far away.
const c = agent('c', 40, Math.PI, [10.3, -4.6, -1.2, 0.5, -30, 30, -1, 0.5]);
const frame: CooperativeFrame = { frameId: '000001', index: 0, timestampNs: 0n, agents: [ego, c] };

const ignoredIds = (gt: { id: string; ignored: boolean }[]) => gt.filter((g) => g.ignored).map((g) => g.id).sort();

test('ego visibility ignores the boxes none of the ego\'s returns fall into', async () => {
  const gt = cooperativeGroundTruth(frame, 'e');
  assert.deepEqual(gt.map((g) => g.id).sort(), ['a', 'b', 'h']);
  assert.deepEqual(ignoredIds(await markHiddenGroundTruth(frame, 'e', gt, 'ego')), ['b', 'h']);
});

test('any-agent visibility counts a collaborator\'s returns, moved by its pose; none ignores nothing', async () => {
  const gt = cooperativeGroundTruth(frame, 'e');
  assert.deepEqual(ignoredIds(await markHiddenGroundTruth(frame, 'e', gt, 'any')), ['h']);
  // Out of communication range, c's returns do not count.
  assert.deepEqual(ignoredIds(await markHiddenGroundTruth(frame, 'e', gt, 'any', { commRangeM: 30 })), ['b', 'h']);
  // Two returns needed: 'a' keeps its two, 'b' with one is now unseen.
  assert.deepEqual(ignoredIds(await markHiddenGroundTruth(frame, 'e', gt, 'any', { minPoints: 2 })), ['b', 'h']);
  loads = 0;
  assert.deepEqual(ignoredIds(await markHiddenGroundTruth(frame, 'e', gt, 'none')), []);
  assert.equal(loads, 0, 'the OpenCOOD protocol reads no point cloud');
});
