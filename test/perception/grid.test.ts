import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BevGridError,
  DEFAULT_BEV_GRID,
  cellCenter,
  cellOf,
  featureCellOf,
  featureCellSize,
  featureHeight,
  featureShape,
  featureWidth,
  gridHeight,
  gridWidth,
  gridsEqual,
  validateGrid,
  type BevGrid,
} from '../../src/perception/index.ts';

// Non-square on purpose: a swap of H and W, or of x and y, shows up as a wrong shape or cell.
const TALL: BevGrid = { xMin: 0, xMax: 4, yMin: -2, yMax: 4, zMin: -3, zMax: 1, cellSize: 1, featureStride: 2, channels: 8 };

test('the default grid is 256 × 256 pillars of 0.4 m and a 64 × 128 × 128 feature map', () => {
  assert.doesNotThrow(() => validateGrid(DEFAULT_BEV_GRID));
  assert.equal(gridWidth(DEFAULT_BEV_GRID), 256);
  assert.equal(gridHeight(DEFAULT_BEV_GRID), 256);
  assert.equal(featureWidth(DEFAULT_BEV_GRID), 128);
  assert.equal(featureHeight(DEFAULT_BEV_GRID), 128);
  assert.deepEqual(featureShape(DEFAULT_BEV_GRID), [64, 128, 128]);
  assert.ok(Math.abs(featureCellSize(DEFAULT_BEV_GRID) - 0.8) < 1e-12);
});

test('W runs along x and H along y', () => {
  assert.equal(gridWidth(TALL), 4);
  assert.equal(gridHeight(TALL), 6);
  assert.deepEqual(featureShape(TALL), [8, 3, 2]);
});

test('cellOf: lower edges inclusive, upper edges exclusive, row along y from yMin', () => {
  const g = DEFAULT_BEV_GRID;
  assert.deepEqual(cellOf(g, -51.2, -51.2), { row: 0, col: 0 });
  assert.equal(cellOf(g, 51.2, 0), undefined);
  assert.equal(cellOf(g, 0, 51.2), undefined);
  assert.equal(cellOf(g, -51.21, 0), undefined);
  assert.equal(cellOf(g, 0, -51.21), undefined);
  assert.deepEqual(cellOf(g, 51.19, 51.19), { row: 255, col: 255 });
  // (0 + 51.2) / 0.4 = 128 exactly: the origin is the lower-left corner of cell (128, 128).
  assert.deepEqual(cellOf(g, 0, 0), { row: 128, col: 128 });
  assert.deepEqual(cellOf(g, -0.01, -0.01), { row: 127, col: 127 });
  // x picks the column, y the row.
  assert.deepEqual(cellOf(g, 10, -20), { row: 78, col: 153 });
  assert.deepEqual(cellOf(TALL, 3.5, -1.5), { row: 0, col: 3 });
  assert.deepEqual(cellOf(TALL, 0, 3.99), { row: 5, col: 0 });
  assert.equal(cellOf(TALL, 4, 0), undefined);
  assert.equal(cellOf(TALL, Number.NaN, 0), undefined);
  assert.equal(cellOf(TALL, 0, Number.NaN), undefined);
  // A float32 point written as -51.2 is -51.20000076...: just outside.
  assert.equal(cellOf(g, Math.fround(-51.2), 0), undefined);
});

test('cellCenter is the middle of the cell cellOf assigns', () => {
  assert.deepEqual(cellCenter(TALL, 0, 0), { x: 0.5, y: -1.5 });
  assert.deepEqual(cellCenter(TALL, 5, 3), { x: 3.5, y: 3.5 });
  const c = cellCenter(DEFAULT_BEV_GRID, 0, 255);
  assert.ok(Math.abs(c.x - 51.0) < 1e-9 && Math.abs(c.y + 51.0) < 1e-9);
  for (const [row, col] of [[0, 0], [17, 200], [255, 255], [128, 3]] as const) {
    const { x, y } = cellCenter(DEFAULT_BEV_GRID, row, col);
    assert.deepEqual(cellOf(DEFAULT_BEV_GRID, x, y), { row, col });
  }
});

function gridError(g: BevGrid): BevGridError {
  try {
    validateGrid(g);
  } catch (e) {
    assert.ok(e instanceof BevGridError, `expected a BevGridError, got ${String(e)}`);
    return e;
  }
  assert.fail(`grid ${JSON.stringify(g)} was accepted`);
}

test('validateGrid names the field that makes the grid unusable', () => {
  const d = DEFAULT_BEV_GRID;
  const cell = gridError({ ...d, cellSize: 0.3 });
  assert.equal(cell.field, 'cellSize');
  assert.match(cell.message, /whole number of cells/);
  assert.equal(gridError({ ...d, cellSize: 0 }).field, 'cellSize');
  assert.equal(gridError({ ...d, cellSize: -0.4 }).field, 'cellSize');
  const stride = gridError({ ...d, featureStride: 3 });
  assert.equal(stride.field, 'featureStride');
  assert.match(stride.message, /256 × 256/);
  assert.equal(gridError({ ...d, featureStride: 1.5 }).field, 'featureStride');
  assert.equal(gridError({ ...d, featureStride: 0 }).field, 'featureStride');
  assert.equal(gridError({ ...d, xMax: -60 }).field, 'xMax');
  assert.equal(gridError({ ...d, yMax: d.yMin }).field, 'yMax');
  assert.equal(gridError({ ...d, zMax: -3 }).field, 'zMax');
  assert.equal(gridError({ ...d, xMin: Number.NaN }).field, 'xMin');
  assert.equal(gridError({ ...d, channels: 0 }).field, 'channels');
  assert.equal(gridError({ ...d, channels: 63.5 }).field, 'channels');
  const { zMax: _omitted, ...missing } = d;
  assert.equal(gridError(missing as BevGrid).field, 'zMax');
  // A grid whose y range alone is off.
  assert.match(gridError({ ...d, yMax: 51.0 }).message, /y range/);
});

test('a grid that went through float32 is still valid and still equal', () => {
  const f = Math.fround;
  const g32: BevGrid = {
    ...DEFAULT_BEV_GRID,
    xMin: f(-51.2), xMax: f(51.2), yMin: f(-51.2), yMax: f(51.2), cellSize: f(0.4),
  };
  assert.doesNotThrow(() => validateGrid(g32));
  assert.equal(gridWidth(g32), 256);
  assert.ok(gridsEqual(DEFAULT_BEV_GRID, g32));
});

test('gridsEqual refuses any difference that would misalign features', () => {
  const d = DEFAULT_BEV_GRID;
  assert.ok(gridsEqual(d, { ...d }));
  assert.equal(gridsEqual(d, { ...d, xMin: -51.201, xMax: 51.199 }), false);
  assert.equal(gridsEqual(d, { ...d, yMin: -51.6, yMax: 51.6 }), false);
  assert.equal(gridsEqual(d, { ...d, zMax: 2 }), false);
  assert.equal(gridsEqual(d, { ...d, cellSize: 0.2 }), false);
  assert.equal(gridsEqual(d, { ...d, featureStride: 4 }), false);
  assert.equal(gridsEqual(d, { ...d, channels: 128 }), false);
});

test('featureCellOf: the feature-map cell of a point, row-major, −1 outside the map', () => {
  // Shipped grid: ±51.2 m, 0.4 m pillars, stride 2 → 0.8 m cells, 128 × 128.
  const g = DEFAULT_BEV_GRID;
  assert.equal(featureCellOf(g, -51.2, -51.2), 0);
  assert.equal(featureCellOf(g, -51.2 + 0.79, -51.2 + 0.81), 128);
  assert.equal(featureCellOf(g, 0, 0), 64 * 128 + 64);
  assert.equal(featureCellOf(g, 51.19, 51.19), 128 * 128 - 1);
  assert.equal(featureCellOf(g, 51.2, 0), -1, 'the upper edge is outside');
  assert.equal(featureCellOf(g, Number.NaN, 0), -1);
});
