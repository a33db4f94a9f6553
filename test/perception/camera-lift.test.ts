import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { openDairV2XC, openOpv2v, type CameraFrame } from '../../src/datasets/index.ts';
import { type Mat4, fromRowMajor, invertAffine, invertRigid, transformPoint } from '../../src/geometry/index.ts';
import {
  CameraCalibrationError,
  CameraLiftError,
  DEFAULT_BEV_GRID,
  INVALID_SAMPLE,
  cameraCoverage,
  completeImageSizes,
  computeSamplingGrid,
  type BevGrid,
  type LiftCamera,
} from '../../src/perception/index.ts';

const OPV2V = path.resolve(process.cwd(), '../shared/data/opv2v-culver/TwoCars_1');
const DAIR = path.resolve(process.cwd(), '../shared/data/dair-v2x-c-example');

// Feature cells of 0.5 m (0.25 m pillars, stride 2) over [−10.25, 12.25): 45 × 45 cells whose centres are
// x = −10 + 0.5·col, y = −10 + 0.5·row, so (10, 0) is (row 20, col 40) and (10, 2.5) is (row 25, col 40).
const SMALL: BevGrid = { xMin: -10.25, xMax: 12.25, yMin: -10.25, yMax: 12.25, zMin: -3, zMax: 1, cellSize: 0.25, featureStride: 2, channels: 8 };
const SMALL_SIDE = 45;
const rowOf = (y: number): number => (y + 10) / 0.5;
const colOf = (x: number): number => (x + 10) / 0.5;

// Optical → LiDAR for a camera at the LiDAR origin looking along +x: optical z → +x, optical x → −y, optical y → −z.
const FORWARD: Mat4 = fromRowMajor([[0, 0, 1, 0], [-1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]]);
// Looking along −x: optical z → −x, optical x → +y, optical y → −z.
const BACKWARD: Mat4 = fromRowMajor([[0, 0, -1, 0], [1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]]);
const K_800x600 = Float64Array.from([400, 0, 400, 0, 400, 300, 0, 0, 1]);
const front: LiftCamera = { name: 'front', intrinsic: K_800x600, cameraToLidar: FORWARD, width: 800, height: 600 };
const back: LiftCamera = { name: 'back', intrinsic: K_800x600, cameraToLidar: BACKWARD, width: 800, height: 600 };

/** (u, v, valid) of camera n, height k at a cell of a lift computed on SMALL. */
function sampleAt(lift: ReturnType<typeof computeSamplingGrid>, n: number, k: number, row: number, col: number): [number, number, number] {
  const heights = lift.validDims[1];
  const at = (n * heights + k) * lift.validDims[2] + row * lift.cols + col;
  return [lift.grid[2 * at], lift.grid[2 * at + 1], lift.valid[at]];
}

/** align_corners=False: pixel centre coordinate px of a W-wide image ↔ u = (2·px + 1)/W − 1. */
const normalise = (px: number, size: number): number => (2 * (px + 0.5)) / size - 1;
const close = (a: number, b: number, tol = 1e-5): boolean => Math.abs(a - b) <= tol;

/** A one-cell grid centred on (x, y): the lift of that one point (heights pass its z). */
function pointGrid(x: number, y: number): BevGrid {
  return { xMin: x - 0.25, xMax: x + 0.25, yMin: y - 0.25, yMax: y + 0.25, zMin: -3, zMax: 1, cellSize: 0.5, featureStride: 1, channels: 1 };
}

test('a point straight ahead lands on the principal point; one 2.5 m to the left at pixel 300', () => {
  const lift = computeSamplingGrid([front], SMALL, { heights: [0, -1], imageWidth: 800, imageHeight: 600 });
  assert.deepEqual(lift.gridDims, [1, 2, SMALL_SIDE * SMALL_SIDE, 2]);
  assert.deepEqual(lift.validDims, [1, 2, SMALL_SIDE * SMALL_SIDE]);
  assert.equal(lift.rows, SMALL_SIDE);
  assert.equal(lift.cols, SMALL_SIDE);

  // (10, 0, 0): p_cam = (0, 0, 10) → (400, 300): u = 2·400.5/800 − 1 = 0.00125, v = 2·300.5/600 − 1 = 0.0016667.
  const [u, v, ok] = sampleAt(lift, 0, 0, rowOf(0), colOf(10));
  assert.equal(ok, 1);
  assert.ok(close(u, 0.00125), `u ${u}`);
  assert.ok(close(v, 0.0016667), `v ${v}`);

  // (10, 2.5, 0): p_cam = (−2.5, 0, 10) → px = 400 − 400·2.5/10 = 300: u = 2·300.5/800 − 1 = −0.24875.
  const [u2, v2, ok2] = sampleAt(lift, 0, 0, rowOf(2.5), colOf(10));
  assert.equal(ok2, 1);
  assert.ok(close(u2, -0.24875), `u ${u2}`);
  assert.ok(close(v2, 0.0016667), `v ${v2}`);

  // Height −1 (1 m below the camera): p_cam = (0, 1, 10) → py = 300 + 400·1/10 = 340, v = 2·340.5/600 − 1 = 0.135.
  const [u3, v3, ok3] = sampleAt(lift, 0, 1, rowOf(0), colOf(10));
  assert.equal(ok3, 1);
  assert.ok(close(u3, 0.00125));
  assert.ok(close(v3, 0.135), `v ${v3}`);
});

test('points behind the camera, closer than minDepth or outside the image are invalid (−2, valid 0)', () => {
  const lift = computeSamplingGrid([front], SMALL, { heights: [0], imageWidth: 800, imageHeight: 600 });
  for (let row = 0; row < SMALL_SIDE; row++) {
    for (let col = 0; col < SMALL_SIDE; col++) {
      const x = -10 + 0.5 * col;
      if (x >= 0.5) continue;
      assert.deepEqual(sampleAt(lift, 0, 0, row, col), [INVALID_SAMPLE, INVALID_SAMPLE, 0], `x = ${x} is not ≥ 0.5 m in front`);
    }
  }
  // Exactly minDepth (0.5 m) ahead on the axis is in; raising minDepth drops it.
  assert.equal(sampleAt(lift, 0, 0, rowOf(0), colOf(0.5))[2], 1);
  const stricter = computeSamplingGrid([front], SMALL, { heights: [0], imageWidth: 800, imageHeight: 600, minDepth: 0.6 });
  assert.equal(sampleAt(stricter, 0, 0, rowOf(0), colOf(0.5))[2], 0);
  assert.equal(sampleAt(stricter, 0, 0, rowOf(0), colOf(1))[2], 1);

  // (10, 12): px = 400 − 400·1.2 = −80, left of the image: invalid.
  assert.deepEqual(sampleAt(lift, 0, 0, rowOf(12), colOf(10)), [INVALID_SAMPLE, INVALID_SAMPLE, 0]);
  // (10, 10): px = 0, the centre of the first pixel column: valid at u = 2·0.5/800 − 1.
  const [u, , ok] = sampleAt(lift, 0, 0, rowOf(10), colOf(10));
  assert.equal(ok, 1);
  assert.ok(close(u, normalise(0, 800)));
  // (5, −5): px = 800, half a pixel past the right edge (799.5): invalid. (5, 0, height −3.75) would be below the
  // image: py = 300 + 400·3.75/5 = 600 > 599.5.
  assert.equal(sampleAt(lift, 0, 0, rowOf(-5), colOf(5))[2], 0);
  const low = computeSamplingGrid([front], SMALL, { heights: [-3.75, -3.7], imageWidth: 800, imageHeight: 600 });
  assert.equal(sampleAt(low, 0, 0, rowOf(0), colOf(5))[2], 0);
  // py = 300 + 400·3.7/5 = 596: inside.
  assert.ok(close(sampleAt(low, 0, 1, rowOf(0), colOf(5))[1], normalise(596, 600)));
});

test('the normalised coordinates do not depend on the resized tensor size (align_corners=False)', () => {
  const full = computeSamplingGrid([front], SMALL, { heights: [0, -1], imageWidth: 800, imageHeight: 600 });
  const half = computeSamplingGrid([front], SMALL, { heights: [0, -1], imageWidth: 400, imageHeight: 300 });
  assert.deepEqual(half.grid, full.grid);
  assert.deepEqual(half.valid, full.valid);
  // px = 300 in the 800-wide original is, after a centre-aligned resize to 400, at (300 + 0.5)·400/800 − 0.5 =
  // 149.75; grid_sample un-normalises u to ((u + 1)·W − 1)/2 on the 400-wide tensor, which must give that pixel.
  const [u] = sampleAt(half, 0, 0, rowOf(2.5), colOf(10));
  assert.ok(close(((u + 1) * 400 - 1) / 2, 149.75, 1e-3), `u ${u}`);
  // And py = 340 in the 600-high original is at 340.5·300/600 − 0.5 = 169.75 in the 300-high tensor.
  const [, v] = sampleAt(half, 0, 1, rowOf(0), colOf(10));
  assert.ok(close(((v + 1) * 300 - 1) / 2, 169.75, 1e-3), `v ${v}`);
});

test('layout [N, Z, H·W, 2]: camera, then height, then row (y), then column (x)', () => {
  const lift = computeSamplingGrid([front, back], SMALL, { heights: [0, -1], imageWidth: 800, imageHeight: 600 });
  assert.deepEqual(lift.gridDims, [2, 2, SMALL_SIDE * SMALL_SIDE, 2]);
  // The back camera sees (−10, 2.5, −1) as p_cam = (2.5, 1, 10) → (500, 340): x right is +y seen from behind.
  const [u, v, ok] = sampleAt(lift, 1, 1, rowOf(2.5), colOf(-10));
  assert.equal(ok, 1);
  assert.ok(close(u, normalise(500, 800)));
  assert.ok(close(v, normalise(340, 600)));
  // The same flat index by hand: ((1·2 + 1)·45·45 + 25·45 + 0).
  const at = 3 * 2025 + 25 * 45 + 0;
  assert.equal(lift.valid[at], 1);
  assert.equal(lift.grid[2 * at], u);
  // The front camera does not see it, nor does the back camera see (10, 0).
  assert.equal(sampleAt(lift, 0, 1, rowOf(2.5), colOf(-10))[2], 0);
  assert.equal(sampleAt(lift, 1, 0, rowOf(0), colOf(10))[2], 0);
  // A skewed grid (rows ≠ cols) keeps rows along y.
  const tall: BevGrid = { ...SMALL, xMin: -0.25, xMax: 12.25 };
  const t = computeSamplingGrid([front], tall, { heights: [0], imageWidth: 800, imageHeight: 600 });
  assert.equal(t.rows, 45);
  assert.equal(t.cols, 25);
  // (10, 2.5): col (10 + 0.25)/0.5 − 0.5 = 20, row 25.
  assert.ok(close(t.grid[2 * (25 * 25 + 20)], -0.24875));
});

test('a general affine calibration is inverted exactly, not as a rigid transform', () => {
  // LiDAR → camera with a shear and an anisotropic scale, as DAIR's infrastructure calibration has.
  const lidarToCamera = fromRowMajor([[0.1, -1.1, 0.05, 0.3], [0.02, 0.1, -0.9, 1.2], [1.0, 0.1, 0.2, -0.4], [0, 0, 0, 1]]);
  const camera: LiftCamera = { intrinsic: K_800x600, cameraToLidar: invertAffine(lidarToCamera), width: 800, height: 600 };
  const lift = computeSamplingGrid([camera], SMALL, { heights: [-0.5], imageWidth: 200, imageHeight: 150 });
  let checked = 0;
  for (const [x, y] of [[8, 1], [11, -3], [5, 2.5], [3, 0]] as const) {
    // By hand: p_cam = A·p + t row by row, then the pinhole.
    const xc = 0.1 * x - 1.1 * y + 0.05 * -0.5 + 0.3;
    const yc = 0.02 * x + 0.1 * y - 0.9 * -0.5 + 1.2;
    const zc = 1.0 * x + 0.1 * y + 0.2 * -0.5 - 0.4;
    const px = (400 * xc) / zc + 400;
    const py = (400 * yc) / zc + 300;
    const [u, v, ok] = sampleAt(lift, 0, 0, rowOf(y), colOf(x));
    assert.equal(ok, 1, `(${x}, ${y}) → (${px}, ${py})`);
    assert.ok(close(u, normalise(px, 800)), `u ${u} vs ${normalise(px, 800)}`);
    assert.ok(close(v, normalise(py, 600)), `v ${v} vs ${normalise(py, 600)}`);
    checked++;
  }
  assert.equal(checked, 4);
});

test('out buffers are reused and fully overwritten', () => {
  const opts = { heights: [0, -1], imageWidth: 800, imageHeight: 600 };
  const first = computeSamplingGrid([front], SMALL, opts);
  const again = computeSamplingGrid([back], SMALL, opts, first);
  assert.equal(again.grid, first.grid);
  assert.equal(again.valid, first.valid);
  const fresh = computeSamplingGrid([back], SMALL, opts);
  assert.deepEqual(again.grid, fresh.grid);
  assert.deepEqual(again.valid, fresh.valid);
  // Longer buffers come back as views of the needed length; shorter ones are refused.
  const big = { grid: new Float32Array(fresh.grid.length + 10), valid: new Float32Array(fresh.valid.length + 5) };
  const view = computeSamplingGrid([back], SMALL, opts, big);
  assert.equal(view.grid.length, fresh.grid.length);
  assert.equal(view.grid.buffer, big.grid.buffer);
  assert.throws(() => computeSamplingGrid([front, back], SMALL, opts, first), CameraLiftError);
});

test('unusable cameras and options are refused with the camera and field named', () => {
  const opts = { heights: [0], imageWidth: 800, imageHeight: 600 };
  assert.throws(
    () => computeSamplingGrid([{ name: 'cam_front', intrinsic: K_800x600, cameraToLidar: FORWARD }], SMALL, opts),
    (err: unknown) => err instanceof CameraCalibrationError && err.userFacing && /cam_front/.test(err.message) && err.field === 'width/height',
  );
  const singular = fromRowMajor([[0, 0, 1, 0], [0, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]]);
  assert.throws(() => computeSamplingGrid([{ ...front, cameraToLidar: singular }], SMALL, opts), (err: unknown) => err instanceof CameraCalibrationError && err.field === 'cameraToLidar');
  assert.throws(() => computeSamplingGrid([{ ...front, intrinsic: [400, 0, 400, 0, 400, 300, 0, 0, 2] }], SMALL, opts), (err: unknown) => err instanceof CameraCalibrationError && err.field === 'intrinsic');
  assert.throws(() => computeSamplingGrid([front], SMALL, { ...opts, heights: [] }), (err: unknown) => err instanceof CameraLiftError && err.field === 'heights');
  assert.throws(() => computeSamplingGrid([front], SMALL, { ...opts, imageWidth: 0 }), (err: unknown) => err instanceof CameraLiftError && err.field === 'imageWidth');
  assert.throws(() => computeSamplingGrid([front], SMALL, { ...opts, minDepth: -1 }), (err: unknown) => err instanceof CameraLiftError && err.field === 'minDepth');
});

test('coverage counts the cells any camera sees, optionally within a range', () => {
  const lift = computeSamplingGrid([front], SMALL, { heights: [0], imageWidth: 800, imageHeight: 600 });
  // By hand: at height 0 a cell is seen when x ≥ 0.5 and −0.5 ≤ 400 − 400·y/x ≤ 799.5, i.e. −0.99875 ≤ y/x ≤ 1.00125.
  let expected = 0;
  let expectedNear = 0;
  for (let row = 0; row < SMALL_SIDE; row++) {
    for (let col = 0; col < SMALL_SIDE; col++) {
      const x = -10 + 0.5 * col, y = -10 + 0.5 * row;
      const seen = x >= 0.5 && y / x >= -0.99875 && y / x <= 1.00125;
      if (seen) expected++;
      if (seen && Math.hypot(x, y) <= 5) expectedNear++;
    }
  }
  const all = cameraCoverage(lift, SMALL);
  assert.equal(all.covered, expected);
  assert.equal(all.cells, SMALL_SIDE * SMALL_SIDE);
  assert.ok(close(all.fraction, expected / (SMALL_SIDE * SMALL_SIDE), 1e-12));
  const near = cameraCoverage(lift, SMALL, { maxRange: 5 });
  assert.equal(near.covered, expectedNear);
  // Front and back cameras together see more than either.
  const both = cameraCoverage(computeSamplingGrid([front, back], SMALL, { heights: [0], imageWidth: 8, imageHeight: 6 }), SMALL);
  assert.ok(both.covered > all.covered);
  assert.throws(() => cameraCoverage(lift, DEFAULT_BEV_GRID), CameraLiftError);
  assert.throws(() => cameraCoverage(lift, SMALL, { heightIndex: 1 }), CameraLiftError);
});

// ---- real calibration ----------------------------------------------------------------------------------------------

/** K · inverse(cameraToLidar) · p with the rigid inverse Rᵀ(p − t) written out: independent of the lift's code. */
function projectByHand(cam: CameraFrame, x: number, y: number, z: number): { px: number; py: number; depth: number } {
  const m = cam.cameraToLidar;
  const d = [x - m[3], y - m[7], z - m[11]];
  const cx = m[0] * d[0] + m[4] * d[1] + m[8] * d[2];
  const cy = m[1] * d[0] + m[5] * d[1] + m[9] * d[2];
  const cz = m[2] * d[0] + m[6] * d[1] + m[10] * d[2];
  const K = cam.intrinsic;
  return { px: (K[0] * cx + K[1] * cy) / cz + K[2], py: (K[4] * cy) / cz + K[5], depth: cz };
}

test('OPV2V: four cameras see nearly all ground cells within 30 m; a box ahead projects where K·E⁻¹·p says', async () => {
  const dataset = await openOpv2v(OPV2V);
  const frame = await dataset.scenarios[0].frame(0);
  const ego = frame.agents[0];
  assert.equal(ego.cameras.length, 4);
  const heights = [-1.9, -1.2, -0.5, 0.2];
  const lift = computeSamplingGrid(ego.cameras, DEFAULT_BEV_GRID, { heights, imageWidth: 400, imageHeight: 300 });
  assert.deepEqual(lift.gridDims, [4, 4, 128 * 128, 2]);
  // Measured 0.949 on road level (the blind spots are the wedges between the 100°-wide views next to the car).
  const ground = cameraCoverage(lift, DEFAULT_BEV_GRID, { heightIndex: 0, maxRange: 30 });
  assert.ok(ground.fraction > 0.9, `coverage ${ground.fraction}`);
  // camera0 sits 3 m ahead of the LiDAR looking forward, camera3 1.5 m behind looking back: with minDepth 0.5,
  // camera0 sees nothing with x < 3.5 and camera3 nothing with x > −2.
  const cells = 128 * 128;
  for (let i = 0; i < cells; i++) {
    const x = DEFAULT_BEV_GRID.xMin + ((i % 128) + 0.5) * 0.8;
    if (x < 3.5) for (let k = 0; k < 4; k++) assert.equal(lift.valid[(0 * 4 + k) * cells + i], 0);
    if (x > -2) for (let k = 0; k < 4; k++) assert.equal(lift.valid[(3 * 4 + k) * cells + i], 0);
  }

  // The nearest ground-truth vehicle within 30° of straight ahead (CAV 302's view: car 322 at about 10 m).
  const worldToLidar = invertRigid(ego.lidarToWorld);
  const ahead = ego.boxes
    .map((b) => transformPoint(worldToLidar, b.box.x, b.box.y, b.box.z))
    .filter(([x, y]) => x > 5 && Math.abs(Math.atan2(y, x)) < Math.PI / 6)
    .sort((a, b) => Math.hypot(a[0], a[1]) - Math.hypot(b[0], b[1]))[0];
  assert.ok(ahead, 'a vehicle ahead of the ego');
  const [bx, by, bz] = ahead;
  const one = computeSamplingGrid(ego.cameras, pointGrid(bx, by), { heights: [bz], imageWidth: 400, imageHeight: 300 });
  ego.cameras.forEach((cam, n) => {
    const p = projectByHand(cam, bx, by, bz);
    const inside = p.depth >= 0.5 && p.px >= -0.5 && p.px <= 799.5 && p.py >= -0.5 && p.py <= 599.5;
    assert.equal(one.valid[n], inside ? 1 : 0, `${cam.name}`);
    if (inside) {
      assert.ok(close(one.grid[2 * n], normalise(p.px, 800)), `${cam.name} u`);
      assert.ok(close(one.grid[2 * n + 1], normalise(p.py, 600)), `${cam.name} v`);
    }
  });
  assert.equal(one.valid[0], 1, 'camera0 sees the car ahead');
  assert.equal(one.valid[3], 0, 'the rear camera does not');
  // The car's centre, about 1 m below the LiDAR and 0.9 m below camera0, is below the image centre.
  assert.ok(one.grid[1] > 0);
});

/** The DAIR label file of a camera's frame: the lidar (vehicle) or virtuallidar (infrastructure) label. */
async function dairLabels(cam: CameraFrame, kind: 'vehicle' | 'rsu'): Promise<{ '2d_box': Record<'xmin' | 'ymin' | 'xmax' | 'ymax', number>; '3d_location': Record<'x' | 'y' | 'z', number> }[]> {
  const side = path.dirname(path.dirname(cam.path));
  const stem = path.basename(cam.path, path.extname(cam.path));
  return JSON.parse(await readFile(path.join(side, 'label', kind === 'rsu' ? 'virtuallidar' : 'lidar', `${stem}.json`), 'utf8'));
}

test('DAIR: the vehicle camera sees only ahead, the affine infrastructure camera works, labels land in their 2D boxes', async () => {
  const dataset = await openDairV2XC(DAIR, { skipMissing: true });
  const frame = await dataset.scenarios[0].frame(0);
  for (const agent of frame.agents) {
    assert.equal(agent.cameras.length, 1, agent.agentId);
    // DAIR's vehicle intrinsics carry no image size: read it from the JPEG header.
    const cameras = await completeImageSizes(agent.cameras);
    assert.deepEqual([cameras[0].width, cameras[0].height], [1920, 1080]);
    const lift = computeSamplingGrid(cameras, DEFAULT_BEV_GRID, { heights: [-1.6, -0.5], imageWidth: 480, imageHeight: 272 });
    let valid = 0;
    for (let i = 0; i < lift.valid.length; i++) {
      if (lift.valid[i] === 0) continue;
      valid++;
      const x = DEFAULT_BEV_GRID.xMin + ((i % 128) + 0.5) * 0.8;
      assert.ok(x > 0, `${agent.agentId}: a cell at x = ${x} behind the camera is valid`);
    }
    assert.ok(valid > 1000, `${agent.agentId}: ${valid} valid samples`);

    // Every labelled object's 3D centre should project into its annotated 2D box (give or take the lens
    // distortion the lift ignores): measured 16 of 16 projecting into the vehicle image within 5 px and 15 of 16
    // on the infrastructure (a far traffic cone 8 px off).
    const labels = await dairLabels(cameras[0], agent.kind);
    let projected = 0;
    let inBox = 0;
    for (const label of labels) {
      const { x, y, z } = label['3d_location'];
      const one = computeSamplingGrid(cameras, pointGrid(x, y), { heights: [z], imageWidth: 480, imageHeight: 272 });
      if (one.valid[0] === 0) continue;
      projected++;
      const px = ((one.grid[0] + 1) * 1920) / 2 - 0.5;
      const py = ((one.grid[1] + 1) * 1080) / 2 - 0.5;
      const b = label['2d_box'];
      const margin = 5;
      if (px >= b.xmin - margin && px <= b.xmax + margin && py >= b.ymin - margin && py <= b.ymax + margin) inBox++;
    }
    assert.ok(projected >= 10, `${agent.agentId}: ${projected} labels project into the image`);
    assert.ok(inBox / projected >= 0.9, `${agent.agentId}: ${inBox} of ${projected} centres inside their 2D box`);
  }
});
