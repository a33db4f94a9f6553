import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import {
  DEFAULT_BEV_GRID,
  PILLAR_FEATURE_COUNT,
  PillarizeError,
  Pillarizer,
  cellOf,
  gridHeight,
  gridWidth,
  quantizeToUint8,
  scatterToBev,
  scatterToBevQuantized,
  type BevGrid,
  type PillarBatch,
} from '../../src/perception/index.ts';

// 4 cells along x, 6 along y (non-square, so a row/col swap is caught), 1 m cells, z −3..1 (pillar z centre −1).
const GRID: BevGrid = { xMin: 0, xMax: 4, yMin: 0, yMax: 6, zMin: -3, zMax: 1, cellSize: 1, featureStride: 2, channels: 4 };
const F = PILLAR_FEATURE_COUNT;

function cloud(...records: number[][]): Float32Array {
  return new Float32Array(records.flat());
}

function slot(batch: PillarBatch, pillar: number, k: number): number[] {
  const base = (pillar * batch.maxPointsPerPillar + k) * F;
  return Array.from(batch.features.subarray(base, base + F));
}

function assertClose(actual: number[], expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) < 1e-6, `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

/** Every value of the batch's buffers past the valid data is zero. */
function assertPaddingZero(batch: PillarBatch): void {
  const perPillar = batch.maxPointsPerPillar * F;
  for (let p = 0; p < batch.maxPillars; p++) {
    const validEnd = p < batch.pillarCount ? batch.numPoints[p] * F : 0;
    for (let i = validEnd; i < perPillar; i++) {
      if (batch.features[p * perPillar + i] !== 0) assert.fail(`features of pillar ${p}, value ${i} is not zero`);
    }
    if (p >= batch.pillarCount) {
      assert.equal(batch.numPoints[p], 0, `numPoints[${p}]`);
      assert.equal(batch.coords[2 * p], 0, `coords[${p}].row`);
      assert.equal(batch.coords[2 * p + 1], 0, `coords[${p}].col`);
    }
  }
}

test('three points in one pillar and one in another: features by hand', () => {
  const pillarizer = new Pillarizer(GRID, { maxPointsPerPillar: 4, maxPillars: 8 });
  const batch = pillarizer.pillarize(
    cloud(
      [2.25, 1.5, 0.5, 0.1], // pillar A: row 1, col 2 (x ∈ [2, 3), y ∈ [1, 2))
      [0.5, 5.5, -1.5, 0.9], // pillar B: row 5, col 0
      [2.75, 1.25, -0.5, 0.2], // A
      [2.0, 1.0, 0.75, 0.3], // A, on the cell's lower corner
    ),
  );
  assert.equal(batch.featureCount, 10);
  assert.equal(batch.pillarCount, 2);
  assert.deepEqual(Array.from(batch.coords.subarray(0, 4)), [1, 2, 5, 0]);
  assert.deepEqual(Array.from(batch.numPoints.subarray(0, 2)), [3, 1]);
  assert.equal(batch.inputPoints, 4);
  assert.equal(batch.keptPoints, 4);
  assert.equal(batch.droppedPoints, 0);
  assert.equal(batch.droppedPillars, 0);

  // A: mean (7/3, 1.25, 0.25); centre (2.5, 1.5, −1).
  assertClose(slot(batch, 0, 0), [2.25, 1.5, 0.5, 0.1, -1 / 12, 0.25, 0.25, -0.25, 0, 1.5], 'A point 0');
  assertClose(slot(batch, 0, 1), [2.75, 1.25, -0.5, 0.2, 5 / 12, 0, -0.75, 0.25, -0.25, 0.5], 'A point 1');
  assertClose(slot(batch, 0, 2), [2.0, 1.0, 0.75, 0.3, -1 / 3, -0.25, 0.5, -0.5, -0.5, 1.75], 'A point 2');
  // B: one point, so it is its own mean; centre (0.5, 5.5, −1).
  assertClose(slot(batch, 1, 0), [0.5, 5.5, -1.5, 0.9, 0, 0, 0, 0, 0, -0.5], 'B point 0');
  assertPaddingZero(batch);
});

test('points outside x, y or z are dropped and counted; lower bounds are inside, upper bounds outside', () => {
  const pillarizer = new Pillarizer(GRID, { maxPointsPerPillar: 8, maxPillars: 8 });
  const batch = pillarizer.pillarize(
    cloud(
      [-0.001, 1, 0, 0], // x < xMin
      [4, 1, 0, 0], // x = xMax
      [1, -0.5, 0, 0], // y < yMin
      [1, 6, 0, 0], // y = yMax
      [1, 1, 1, 0], // z = zMax
      [1, 1, -3.5, 0], // z < zMin
      [Number.NaN, 1, 0, 0],
      [1, 1, Number.NaN, 0],
      [0, 0, -3, 0.5], // x = xMin, y = yMin, z = zMin: kept, cell (0, 0)
      [3.999, 5.999, 0.999, 0.5], // kept, cell (5, 3)
    ),
  );
  assert.equal(batch.inputPoints, 10);
  assert.equal(batch.outOfRangePoints, 8);
  assert.equal(batch.droppedPoints, 8);
  assert.equal(batch.keptPoints, 2);
  assert.equal(batch.pillarCount, 2);
  assert.deepEqual(Array.from(batch.coords.subarray(0, 4)), [0, 0, 5, 3]);
  assert.equal(batch.droppedPillars, 0);
  assertPaddingZero(batch);
});

test('a full pillar keeps its first points; the mean is over the kept ones', () => {
  const pillarizer = new Pillarizer(GRID, { maxPointsPerPillar: 2, maxPillars: 4 });
  const batch = pillarizer.pillarize(
    cloud(
      [1.25, 2.5, 0, 0.1],
      [1.75, 2.5, -1, 0.2],
      [1.5, 2.25, -2, 0.3], // same cell (2, 1): dropped
      [3.5, 0.5, 0, 0.4], // another cell: kept
      [1.5, 2.75, -2.5, 0.5], // (2, 1) again: dropped
    ),
  );
  assert.equal(batch.pillarCount, 2);
  assert.deepEqual(Array.from(batch.numPoints.subarray(0, 2)), [2, 1]);
  assert.equal(batch.keptPoints, 3);
  assert.equal(batch.droppedPoints, 2);
  assert.equal(batch.outOfRangePoints, 0);
  assert.equal(batch.droppedPillars, 0);
  // Mean of the two kept points (1.5, 2.5, −0.5), not of all four of the cell.
  assertClose(slot(batch, 0, 0), [1.25, 2.5, 0, 0.1, -0.25, 0, 0.5, -0.25, 0, 1], 'first kept');
  assertClose(slot(batch, 0, 1), [1.75, 2.5, -1, 0.2, 0.25, 0, -0.5, 0.25, 0, 0], 'second kept');
  assertPaddingZero(batch);
});

test('past maxPillars, new cells are refused first come first served; open pillars still take points', () => {
  const pillarizer = new Pillarizer(GRID, { maxPointsPerPillar: 4, maxPillars: 2 });
  const batch = pillarizer.pillarize(
    cloud(
      [0.5, 0.5, 0, 0], // cell a (0, 0): pillar 0
      [1.5, 0.5, 0, 0], // cell b (0, 1): pillar 1
      [2.5, 0.5, 0, 0], // cell c (0, 2): refused
      [0.25, 0.25, 0, 0], // a: kept
      [2.25, 0.25, 0, 0], // c: dropped, c not counted twice
      [3.5, 4.5, 0, 0], // cell d (4, 3): refused
      [1.25, 0.75, 0, 0], // b: kept
    ),
  );
  assert.equal(batch.pillarCount, 2);
  assert.deepEqual(Array.from(batch.coords), [0, 0, 0, 1]);
  assert.deepEqual(Array.from(batch.numPoints), [2, 2]);
  assert.equal(batch.droppedPillars, 2);
  assert.equal(batch.droppedPoints, 3);
  assert.equal(batch.outOfRangePoints, 0);
  assert.equal(batch.keptPoints, 4);
});

function randomCloud(n: number, seed: number, spread: number): Float32Array {
  // Small LCG: deterministic, independent of the code under test.
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const out = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    out[4 * i] = (next() * 2 - 1) * spread;
    out[4 * i + 1] = (next() * 2 - 1) * spread;
    out[4 * i + 2] = -3.5 + next() * 5;
    out[4 * i + 3] = next();
  }
  return out;
}

function assertSameBatch(actual: PillarBatch, expected: PillarBatch): void {
  for (const k of ['pillarCount', 'inputPoints', 'keptPoints', 'droppedPoints', 'outOfRangePoints', 'droppedPillars'] as const) {
    assert.equal(actual[k], expected[k], k);
  }
  assert.ok(Buffer.from(actual.coords.buffer).equals(Buffer.from(expected.coords.buffer)), 'coords differ');
  assert.ok(Buffer.from(actual.numPoints.buffer).equals(Buffer.from(expected.numPoints.buffer)), 'numPoints differ');
  assert.ok(Buffer.from(actual.features.buffer).equals(Buffer.from(expected.features.buffer)), 'features differ');
}

test('a second, smaller cloud leaves no stale data: the batch equals a fresh Pillarizer’s', () => {
  const opts = { maxPointsPerPillar: 8, maxPillars: 300 };
  const reused = new Pillarizer(DEFAULT_BEV_GRID, opts);
  // Dense first frame: full pillars, refused cells, out-of-range points.
  const big = reused.pillarize(randomCloud(20000, 1, 8));
  assert.equal(big.pillarCount, 300);
  assert.ok(big.droppedPillars > 0 && big.droppedPoints > big.outOfRangePoints && big.outOfRangePoints > 0);
  // Same area, fewer points: hits cells that were pillars or refused in the first frame.
  const small = randomCloud(150, 2, 8);
  const second = reused.pillarize(small);
  assert.ok(second.pillarCount < 300 && second.droppedPillars === 0);
  assertSameBatch(second, new Pillarizer(DEFAULT_BEV_GRID, opts).pillarize(small));
  assertPaddingZero(second);
  // And an empty frame empties the batch.
  const empty = reused.pillarize(new Float32Array(0));
  assertSameBatch(empty, new Pillarizer(DEFAULT_BEV_GRID, opts).pillarize(new Float32Array(0)));
  assert.equal(empty.pillarCount, 0);
});

test('count limits the records read; bad arguments are refused', () => {
  const pillarizer = new Pillarizer(GRID, { maxPointsPerPillar: 4, maxPillars: 4 });
  const batch = pillarizer.pillarize(cloud([0.5, 0.5, 0, 0], [1.5, 1.5, 0, 0], [2.5, 2.5, 0, 0]), 2);
  assert.equal(batch.inputPoints, 2);
  assert.equal(batch.pillarCount, 2);
  assert.throws(() => pillarizer.pillarize(new Float32Array(6)), PillarizeError);
  assert.throws(() => pillarizer.pillarize(new Float32Array(8), 3), PillarizeError);
  assert.throws(() => new Pillarizer(GRID, { maxPillars: 0 }), PillarizeError);
  assert.throws(() => new Pillarizer(GRID, { maxPointsPerPillar: 2.5 }), PillarizeError);
  assert.throws(() => new Pillarizer({ ...GRID, cellSize: 0.7 }), /whole number of cells/);
});

test('coords and raw xyz agree with cellOf for every kept point', () => {
  const grid = DEFAULT_BEV_GRID;
  const batch = new Pillarizer(grid).pillarize(randomCloud(30000, 7, 60));
  assert.ok(batch.pillarCount > 1000 && batch.outOfRangePoints > 0);
  let checked = 0;
  for (let p = 0; p < batch.pillarCount; p++) {
    for (let k = 0; k < batch.numPoints[p]; k++) {
      const [x, y, z] = slot(batch, p, k);
      const cell = cellOf(grid, x, y);
      assert.ok(cell, `kept point (${x}, ${y}) is outside the grid`);
      assert.equal(cell.row, batch.coords[2 * p], 'row');
      assert.equal(cell.col, batch.coords[2 * p + 1], 'col');
      assert.ok(z >= grid.zMin && z < grid.zMax);
      checked++;
    }
  }
  assert.equal(checked, batch.keptPoints);
  assert.equal(batch.keptPoints + batch.droppedPoints, batch.inputPoints);
});

test('scatterToBev puts pillar p channel c at [c, row, col] and zeroes the canvas each call', () => {
  const W = gridWidth(GRID); // 4
  const H = gridHeight(GRID); // 6
  const C = 3;
  const pillarizer = new Pillarizer(GRID, { maxPointsPerPillar: 2, maxPillars: 4 });
  const first = pillarizer.pillarize(cloud([2.5, 1.5, 0, 0], [0.5, 5.5, 0, 0])); // (1, 2), (5, 0)
  // Rows past pillarCount (as the fixed-shape ONNX output has) must be ignored.
  const pillarFeatures = new Float32Array([11, 12, 13, 21, 22, 23, 99, 99, 99, 99, 99, 99]);
  const canvas = scatterToBev(first, pillarFeatures, C, GRID);
  assert.equal(canvas.length, C * H * W);
  const expected = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) {
    expected[c * H * W + 1 * W + 2] = 11 + c;
    expected[c * H * W + 5 * W + 0] = 21 + c;
  }
  assert.deepEqual(canvas, expected);

  const second = pillarizer.pillarize(cloud([3.5, 0.5, 0, 0])); // (0, 3)
  const again = scatterToBev(second, new Float32Array([7, 8, 9]), C, GRID, canvas);
  assert.equal(again, canvas);
  const expected2 = new Float32Array(C * H * W);
  for (let c = 0; c < C; c++) expected2[c * H * W + 0 * W + 3] = 7 + c;
  assert.deepEqual(canvas, expected2);

  assert.throws(() => scatterToBev(second, new Float32Array(2), C, GRID), PillarizeError);
  assert.throws(() => scatterToBev(second, new Float32Array(3), C, GRID, new Float32Array(10)), PillarizeError);
  // A batch from a bigger grid does not fit this canvas.
  const wide = new Pillarizer(DEFAULT_BEV_GRID, { maxPillars: 4 }).pillarize(cloud([50, 50, 0, 0]));
  assert.throws(() => scatterToBev(wide, new Float32Array(3), C, GRID), /another grid/);
});

test('quantizeToUint8 is ONNX QuantizeLinear to uint8, zero point 0: float32 quotient, ties to even, saturated', () => {
  const s = 0.5;
  // Worked by hand: x / 0.5 = 2x.
  assert.deepEqual([0, 0.2, 0.25, 0.75, 1.25, 1.75, 3, 127.25, 127.75].map((x) => quantizeToUint8(x, s)), [0, 0, 0, 2, 2, 4, 6, 254, 255]);
  assert.deepEqual([-1, -0, NaN, 200, Infinity].map((x) => quantizeToUint8(x, s)), [0, 0, 0, 255, 255]);
  // With the shipped canvas scale: 0.06278965622186661 / s is 2.5 exactly, a tie, so 2 (even), where Math.round
  // gives 3; 0.21348483860492706 / s is 8.5000003 in float64 (Math.round: 9) but 8.5 in float32, QuantizeLinear's
  // arithmetic, so 8 (found by a search over the float32 neighbours of every (k + 0.5) · s).
  const shipped = Math.fround(0.025115862488746643);
  assert.equal(quantizeToUint8(0.06278965622186661, shipped), 2);
  assert.equal(quantizeToUint8(0.21348483860492706, shipped), 8);
});

test('scatterToBevQuantized writes quantizeToUint8 of pillar p channel c at [row, col, c], channels last, and zeroes the rest', () => {
  const W = gridWidth(GRID); // 4
  const H = gridHeight(GRID); // 6
  const C = 3;
  const scale = Math.fround(0.025115862488746643); // the shipped canvas scale
  const pillarizer = new Pillarizer(GRID, { maxPointsPerPillar: 2, maxPillars: 4 });
  const batch = pillarizer.pillarize(cloud([2.5, 1.5, 0, 0], [0.5, 5.5, 0, 0])); // (1, 2), (5, 0)
  const features = new Float32Array([0.1, 2.0, 9.0, -0.3, 0, 6.4, 99, 99, 99]);
  const canvas = scatterToBevQuantized(batch, features, C, GRID, scale);
  assert.equal(canvas.length, H * W * C);
  const expected = new Uint8Array(H * W * C);
  for (let c = 0; c < C; c++) {
    expected[(1 * W + 2) * C + c] = quantizeToUint8(features[c], scale);
    expected[(5 * W + 0) * C + c] = quantizeToUint8(features[C + c], scale);
  }
  assert.deepEqual(canvas, expected);
  assert.deepEqual([...canvas.subarray((1 * W + 2) * C, (1 * W + 2) * C + C)], [4, 80, 255], '0.1/s = 3.98, 2/s = 79.6, 9/s saturates');

  // Every value near a rounding boundary, where the scatter's float64 shortcut and the exact float32 quotient could
  // part: k + 0.5 steps and their float32 neighbours, for every k.
  const many = new Pillarizer(DEFAULT_BEV_GRID, { maxPointsPerPillar: 1, maxPillars: 300 });
  const points: number[][] = [];
  for (let i = 0; i < 260; i++) points.push([-50 + (i % 200) * 0.4 + 0.2, -50 + Math.floor(i / 200) * 0.4 + 0.2, 0, 0]);
  const big = many.pillarize(cloud(...points));
  const Cb = 6;
  const values = new Float32Array(big.pillarCount * Cb);
  for (let p = 0; p < big.pillarCount; p++) {
    const half = Math.fround((p - 2 + 0.5) * scale);
    const bits = new Int32Array(new Float32Array([half]).buffer)[0];
    const near = (d: number) => new Float32Array(new Int32Array([bits + d]).buffer)[0];
    values.set([half, near(-1), near(1), near(-3), near(3), Math.fround((p - 2) * scale)], p * Cb);
  }
  const out = scatterToBevQuantized(big, values, Cb, DEFAULT_BEV_GRID, scale);
  const Wd = gridWidth(DEFAULT_BEV_GRID);
  let checked = 0;
  for (let p = 0; p < big.pillarCount; p++) {
    const cell = big.coords[2 * p] * Wd + big.coords[2 * p + 1];
    for (let c = 0; c < Cb; c++, checked++) {
      assert.equal(out[cell * Cb + c], quantizeToUint8(values[p * Cb + c], scale), `pillar ${p} channel ${c}: ${values[p * Cb + c]}`);
    }
  }
  assert.equal(checked, 260 * Cb);

  assert.throws(() => scatterToBevQuantized(batch, features, C, GRID, 0), PillarizeError);
  assert.throws(() => scatterToBevQuantized(batch, features, C, GRID, scale, new Uint8Array(10)), PillarizeError);
  const wide = new Pillarizer(DEFAULT_BEV_GRID, { maxPillars: 4 }).pillarize(cloud([50, 50, 0, 0]));
  assert.throws(() => scatterToBevQuantized(wide, new Float32Array(3), C, GRID, scale), /another grid/);
});

test('timing on 30k–120k point clouds (printed, not asserted)', () => {
  const pillarizer = new Pillarizer(DEFAULT_BEV_GRID);
  for (const n of [30000, 120000]) {
    const points = randomCloud(n, n, 70);
    pillarizer.pillarize(points);
    const start = performance.now();
    const repeats = 5;
    let batch: PillarBatch | undefined;
    for (let r = 0; r < repeats; r++) batch = pillarizer.pillarize(points);
    const ms = (performance.now() - start) / repeats;
    console.log(`# pillarize ${n} uniform points over ±70 m: ${ms.toFixed(2)} ms, ${batch?.pillarCount} pillars`);
  }
});
