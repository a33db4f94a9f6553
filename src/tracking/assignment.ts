// Linear assignment for data association and for the evaluation's per-frame matching.
//
// AB3DMOT associates with scipy.optimize.linear_sum_assignment (xinshuoweng/AB3DMOT, AB3DMOT_libs/matching.py), whose
// solver is the shortest-augmenting-path method of Jonker–Volgenant in the rectangular form of D. F. Crouse, "On
// implementing 2D rectangular assignment algorithms", IEEE TAES 52(4), 2016 (scipy/optimize/_lsap.c,
// rectangular_lsap.cpp). This file is that algorithm: O(n²m) for n ≤ m, exact, rectangular without padding.
// The npm candidates (munkres, munkres-js, linear-sum-assignment, hungarian-on3) were considered; the project takes
// no new dependency for this stage, and ~80 lines checked against brute force (test/tracking/assignment.test.ts)
// are cheaper to own than a package whose matrix layout (nested arrays) would force a copy per frame anyway.
//
// AB3DMOT's greedy matcher (matching.py greedy_matching, after eddyhkchiu/mahalanobis_3d_multi_object_tracking):
// pairs taken in ascending cost order, each row and column at most once.

/** The assignment could not be completed: a row has no finite-cost column left. */
export class AssignmentError extends Error {
  constructor(readonly rows: number, readonly cols: number, detail: string) {
    super(`assignment of ${rows}×${cols}: ${detail}`);
    this.name = new.target.name;
  }
}

/**
 * Minimum-cost assignment solver with reusable buffers. Costs are row-major, rows × cols, finite (use a large
 * finite cost for "forbidden" and filter afterwards, as AB3DMOT and the KITTI devkit do). Every row of the smaller
 * side is assigned.
 */
export class AssignmentSolver {
  private u = new Float64Array(0);
  private v = new Float64Array(0);
  private spc = new Float64Array(0);
  private path = new Int32Array(0);
  private col4row = new Int32Array(0);
  private row4col = new Int32Array(0);
  private sr = new Uint8Array(0);
  private sc = new Uint8Array(0);
  private remaining = new Int32Array(0);
  private transposed = new Float64Array(0);

  private ensure(nr: number, nc: number): void {
    if (this.u.length < nr) {
      this.u = new Float64Array(nr);
      this.col4row = new Int32Array(nr);
      this.sr = new Uint8Array(nr);
    }
    if (this.v.length < nc) {
      this.v = new Float64Array(nc);
      this.spc = new Float64Array(nc);
      this.path = new Int32Array(nc);
      this.row4col = new Int32Array(nc);
      this.sc = new Uint8Array(nc);
      this.remaining = new Int32Array(nc);
    }
  }

  /**
   * Solves the assignment; writes, for each row, the assigned column or −1 into `rowToCol` (length ≥ rows).
   * Returns the number of pairs (min(rows, cols)).
   */
  solve(cost: ArrayLike<number>, rows: number, cols: number, rowToCol: Int32Array): number {
    if (cost.length < rows * cols) throw new AssignmentError(rows, cols, `cost has ${cost.length} entries`);
    rowToCol.fill(-1, 0, rows);
    if (rows === 0 || cols === 0) return 0;
    for (let k = 0; k < rows * cols; k++) {
      if (!Number.isFinite(cost[k])) throw new AssignmentError(rows, cols, `cost[${k}] = ${cost[k]} is not finite`);
    }
    // The algorithm needs rows ≤ cols; solve the transpose otherwise.
    if (rows > cols) {
      if (this.transposed.length < rows * cols) this.transposed = new Float64Array(rows * cols);
      const t = this.transposed;
      for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = cost[i * cols + j];
      this.run(t, cols, rows);
      for (let j = 0; j < cols; j++) rowToCol[this.col4row[j]] = j;
      return cols;
    }
    this.run(cost, rows, cols);
    for (let i = 0; i < rows; i++) rowToCol[i] = this.col4row[i];
    return rows;
  }

  private run(cost: ArrayLike<number>, nr: number, nc: number): void {
    this.ensure(nr, nc);
    const { u, v, spc, path, col4row, row4col, sr, sc, remaining } = this;
    u.fill(0, 0, nr);
    v.fill(0, 0, nc);
    col4row.fill(-1, 0, nr);
    row4col.fill(-1, 0, nc);
    path.fill(-1, 0, nc);
    for (let curRow = 0; curRow < nr; curRow++) {
      // Dijkstra-like search for the shortest augmenting path from curRow (reduced costs are non-negative).
      let minVal = 0;
      let numRemaining = nc;
      for (let it = 0; it < nc; it++) remaining[it] = nc - it - 1;
      sr.fill(0, 0, nr);
      sc.fill(0, 0, nc);
      spc.fill(Infinity, 0, nc);
      let sink = -1;
      let i = curRow;
      while (sink === -1) {
        let index = -1;
        let lowest = Infinity;
        sr[i] = 1;
        for (let it = 0; it < numRemaining; it++) {
          const j = remaining[it];
          const r = minVal + cost[i * nc + j] - u[i] - v[j];
          if (r < spc[j]) {
            path[j] = i;
            spc[j] = r;
          }
          // Ties go to an unassigned column: it ends the search sooner.
          if (spc[j] < lowest || (spc[j] === lowest && row4col[j] === -1)) {
            lowest = spc[j];
            index = it;
          }
        }
        minVal = lowest;
        if (!Number.isFinite(minVal) || index < 0) throw new AssignmentError(nr, nc, `row ${curRow} cannot be assigned`);
        const j = remaining[index];
        if (row4col[j] === -1) sink = j;
        else i = row4col[j];
        sc[j] = 1;
        remaining[index] = remaining[--numRemaining];
      }
      // Dual update.
      u[curRow] += minVal;
      for (let r = 0; r < nr; r++) if (sr[r] && r !== curRow) u[r] += minVal - spc[col4row[r]];
      for (let c = 0; c < nc; c++) if (sc[c]) v[c] -= minVal - spc[c];
      // Augment along the path back to curRow.
      let j = sink;
      for (;;) {
        const r = path[j];
        row4col[j] = r;
        const prev = col4row[r];
        col4row[r] = j;
        j = prev;
        if (r === curRow) break;
      }
    }
  }
}

const sharedSolver = new AssignmentSolver();

/** Minimum-cost assignment (scipy's linear_sum_assignment): for each row its column, or −1 when rows > cols. */
export function linearSumAssignment(cost: ArrayLike<number>, rows: number, cols: number): Int32Array {
  const out = new Int32Array(rows);
  sharedSolver.solve(cost, rows, cols, out);
  return out;
}

/**
 * AB3DMOT's greedy matching: all (row, col) pairs in ascending cost order (stable: row-major order on ties), a pair
 * taken when both its row and its column are still free. Writes each row's column or −1 into `rowToCol`.
 */
export function greedyAssignment(cost: ArrayLike<number>, rows: number, cols: number, rowToCol: Int32Array = new Int32Array(rows)): Int32Array {
  rowToCol.fill(-1, 0, rows);
  const n = rows * cols;
  if (n === 0) return rowToCol;
  const order = new Int32Array(n);
  for (let k = 0; k < n; k++) order[k] = k;
  order.sort((a, b) => cost[a] - cost[b] || a - b);
  const colTaken = new Uint8Array(cols);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(order[k] / cols), j = order[k] % cols;
    if (rowToCol[i] === -1 && !colTaken[j]) {
      rowToCol[i] = j;
      colTaken[j] = 1;
    }
  }
  return rowToCol;
}
