import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/sim/index.ts';
import { AssignmentError, AssignmentSolver, greedyAssignment, linearSumAssignment } from '../../src/tracking/index.ts';

/** Seeded (the simulator's generator), so a failure reproduces. */
function rng(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.next();
}

/** Minimum total cost over every injective map of the smaller side into the larger. */
function bruteForce(cost: number[], rows: number, cols: number): number {
  let best = Infinity;
  const transpose = rows > cols;
  const n = transpose ? cols : rows, m = transpose ? rows : cols;
  const at = (i: number, j: number): number => (transpose ? cost[j * cols + i] : cost[i * cols + j]);
  const used = new Array<boolean>(m).fill(false);
  const go = (i: number, acc: number): void => {
    if (i === n) {
      best = Math.min(best, acc);
      return;
    }
    for (let j = 0; j < m; j++) {
      if (used[j]) continue;
      used[j] = true;
      go(i + 1, acc + at(i, j));
      used[j] = false;
    }
  };
  go(0, 0);
  return best;
}

test('linearSumAssignment reaches the brute-force optimum on 300 random matrices, square and rectangular both ways', () => {
  const r = rng(42);
  const solver = new AssignmentSolver();
  for (let trial = 0; trial < 300; trial++) {
    const rows = 1 + Math.floor(r() * 6), cols = 1 + Math.floor(r() * 6);
    // Integer costs make ties frequent, the case that breaks a sloppy augmenting step.
    const cost = Array.from({ length: rows * cols }, () => (trial % 2 ? Math.floor(r() * 5) : r() * 10 - 5));
    const out = new Int32Array(rows);
    const pairs = solver.solve(cost, rows, cols, out);
    assert.equal(pairs, Math.min(rows, cols));
    const cols_ = [...out].filter((c) => c >= 0);
    assert.equal(new Set(cols_).size, cols_.length, 'a column assigned twice');
    let total = 0;
    out.forEach((c, i) => (total += c >= 0 ? cost[i * cols + c] : 0));
    assert.ok(Math.abs(total - bruteForce(cost, rows, cols)) < 1e-9, `trial ${trial}: ${rows}×${cols} total ${total}`);
  }
});

test('linearSumAssignment: a hand case and the empty cases', () => {
  // Row 0 → col 1 (1), row 1 → col 0 (2), row 2 → col 2 (2): total 5; the greedy choice of (1,1)=0 first gives 7.
  assert.deepEqual([...linearSumAssignment([4, 1, 3, 2, 0, 5, 3, 2, 2], 3, 3)], [1, 0, 2]);
  assert.deepEqual([...linearSumAssignment([], 0, 3)], []);
  assert.deepEqual([...linearSumAssignment([], 2, 0)], [-1, -1]);
  // More rows than columns: one row stays unassigned.
  assert.deepEqual([...linearSumAssignment([5, 1, 0], 3, 1)], [-1, -1, 0]);
});

test('a non-finite cost is refused with the entry named', () => {
  assert.throws(() => linearSumAssignment([0, Infinity], 1, 2), (e: unknown) => e instanceof AssignmentError && /cost\[1\]/.test(e.message));
});

test('greedyAssignment takes pairs in ascending cost order, as AB3DMOT greedy_matching', () => {
  // (1,1)=0 first, then (0,0)=4 is the only free pair left for row 0 besides (0,2)=3 → row 0 takes col 2.
  assert.deepEqual([...greedyAssignment([4, 1, 3, 2, 0, 5], 2, 3)], [2, 1]);
});
