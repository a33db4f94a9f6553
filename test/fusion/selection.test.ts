import { test } from 'node:test';
import assert from 'node:assert/strict';
import { identity, poseToMatrix } from '../../src/geometry/index.ts';
import { FusionInputError, coverageFraction, fieldOfViewFraction, selectAgents, type SelectionCandidate } from '../../src/fusion/index.ts';
import { DEFAULT_BEV_GRID } from '../../src/perception/index.ts';

test('coverageFraction: all of the grid for the ego itself, half when shifted by half the grid, none beyond it', () => {
  assert.equal(coverageFraction(identity(), DEFAULT_BEV_GRID), 1);
  // The grid is 102.4 m wide: an agent 51.2 m ahead covers exactly the front half of the ego's cells.
  assert.equal(coverageFraction(poseToMatrix({ x: 51.2, y: 0, z: 0, roll: 0, pitch: 0, yaw: 0 }), DEFAULT_BEV_GRID), 0.5);
  assert.equal(coverageFraction(poseToMatrix({ x: 51.2, y: 51.2, z: 0, roll: 0, pitch: 0, yaw: 0 }), DEFAULT_BEV_GRID), 0.25);
  assert.equal(coverageFraction(poseToMatrix({ x: 0, y: 150, z: 0, roll: 0, pitch: 0, yaw: 1 }), DEFAULT_BEV_GRID), 0);
});

test('fieldOfViewFraction counts the ego cells where the agent has returns its encoder keeps', () => {
  const cells = 128 * 128;
  // Two points in one 0.8 m cell, one in another, one above the grid's z range (1 m), one outside its x range.
  const pts = new Float32Array([0.1, 0.1, -1, 0.5, 0.3, 0.2, -1.5, 0.5, 10.1, 0.1, -1, 0.5, 5, 5, 2, 0.5, 60, 0, -1, 0.5]);
  assert.equal(fieldOfViewFraction(pts, identity(), DEFAULT_BEV_GRID), 2 / cells);
  // 50 m ahead of the ego, the point at x = 10.1 lands at 60.1 m: off the ego's grid; the one at 0.1 at 50.1 m: on it.
  assert.equal(fieldOfViewFraction(pts, poseToMatrix({ x: 50, y: 0, z: 0, roll: 0, pitch: 0, yaw: 0 }), DEFAULT_BEV_GRID), 1 / cells);
  // Turned by 90°: (10.1, 0.1) lands at (−0.1, 10.1), still its own cell.
  assert.equal(fieldOfViewFraction(pts, poseToMatrix({ x: 0, y: 0, z: 0, roll: 0, pitch: 0, yaw: Math.PI / 2 }), DEFAULT_BEV_GRID), 2 / cells);
  assert.throws(() => fieldOfViewFraction(new Float32Array(5), identity(), DEFAULT_BEV_GRID), FusionInputError);
});

const cand = (agentId: string, coverage: number, distanceM: number, bytes?: number): SelectionCandidate => ({ agentId, coverage, distanceM, bytes });

test('selectAgents ranks by coverage, then distance, and stops at maxAgents', () => {
  const s = selectAgents([cand('far', 0.6, 60), cand('near', 0.6, 20), cand('wide', 0.9, 65), cand('blind', 0, 10)], { maxAgents: 2 });
  assert.deepEqual(s.chosen, ['wide', 'near']);
  assert.deepEqual(s.skipped, [{ agentId: 'far', reason: 'max-agents' }, { agentId: 'blind', reason: 'no-overlap' }]);
  assert.equal(selectAgents([cand('a', 0.5, 1)], { maxAgents: 0 }).chosen.length, 0);
});

test('selectAgents never exceeds the byte budget, and fills it with a cheaper lower-ranked message when a big one does not fit', () => {
  const s = selectAgents([cand('a', 0.9, 10, 600), cand('b', 0.8, 10, 500), cand('c', 0.7, 10, 300), cand('d', 0.6, 10, 100)], { budgetBytes: 1000 });
  assert.deepEqual(s.chosen, ['a', 'c', 'd']);
  assert.deepEqual(s.skipped, [{ agentId: 'b', reason: 'budget' }]);
  assert.equal(s.bytes, 1000, 'exactly at the budget is allowed');

  // Many random cases: the chosen bytes stay within the budget, and no skipped candidate would still have fit.
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  for (let trial = 0; trial < 500; trial++) {
    const n = 1 + Math.floor(rand() * 8);
    const cs = Array.from({ length: n }, (_, i) => cand(`x${i}`, 0.01 + rand(), rand() * 70, Math.floor(rand() * 200_000)));
    const budget = Math.floor(rand() * 400_000);
    const r = selectAgents(cs, { budgetBytes: budget });
    const sum = r.chosen.reduce((a, id) => a + cs.find((c) => c.agentId === id)!.bytes!, 0);
    assert.equal(r.bytes, sum);
    assert.ok(sum <= budget, `trial ${trial}: ${sum} > ${budget}`);
    for (const k of r.skipped) assert.ok(cs.find((c) => c.agentId === k.agentId)!.bytes! + sum > budget, `trial ${trial}: ${k.agentId} would have fit`);
    assert.equal(r.chosen.length + r.skipped.length, n);
  }
});

test('selectAgents refuses a budget over candidates without bytes, and bad limits', () => {
  assert.throws(() => selectAgents([cand('a', 0.5, 1)], { budgetBytes: 10 }), FusionInputError);
  assert.throws(() => selectAgents([], { maxAgents: 1.5 }), FusionInputError);
  assert.throws(() => selectAgents([], { budgetBytes: -1 }), FusionInputError);
});
