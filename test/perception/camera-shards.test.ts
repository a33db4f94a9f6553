// export-training --cameras: the camera inputs training reads must be exactly what the runtime feeds the camera
// model (one data path): the images as loadCameraBatch makes them, the sampling grid as computeSamplingGrid makes
// it from the same calibration, both only rounded to float16.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDataset } from '../../src/datasets/index.ts';
import {
  DEFAULT_BEV_GRID,
  ShardExportError,
  completeImageSizes,
  computeSamplingGrid,
  exportTrainingShards,
  loadCameraBatch,
  type ShardIndex,
} from '../../src/perception/index.ts';

const FIXTURE = path.resolve(import.meta.dirname, '../../datasets/fixture/fixture-s1');
const CAMERA = { width: 64, height: 48, heights: [-1.7, -0.5] };

// binary16 → number from the IEEE 754 definition (independent of the encoder used by the export).
function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

test('export-training with cameras writes the runtime camera tensors and sampling grids per agent', async () => {
  const out = await mkdtemp(path.join(tmpdir(), 'v2xfuse-camera-shards-'));
  try {
    const ds = await openDataset(FIXTURE);
    const summary = await exportTrainingShards(ds, out, { ego: 'first', cameras: CAMERA });
    assert.equal(summary.samples, 3);
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as ShardIndex;
    assert.deepEqual(index.camera, { ...CAMERA, minDepth: 0.5, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], dtype: 'float16' });

    const sample = index.samples[0];
    const frame = await ds.scenarios[0].frame(0);
    assert.equal(sample.frameId, frame.frameId);
    const blob = await readFile(path.join(out, sample.file));
    const array = (name: string) => {
      const a = sample.arrays.find((x) => x.name === name);
      assert.ok(a, `no array ${name}`);
      return { ...a, bytes: blob.subarray(a.offset, a.offset + a.byteLength) };
    };
    let checkedRsu = false;
    for (const [k, meta] of sample.agents.entries()) {
      const agent = frame.agents.find((a) => a.agentId === meta.id)!;
      const cameras = await completeImageSizes(agent.cameras);
      assert.deepEqual(meta.cameras, cameras.map((c) => c.name));
      const n = cameras.length;
      checkedRsu ||= agent.kind === 'rsu' && n === 1;

      const images = array(`images_${k}`);
      assert.equal(images.dtype, 'float16');
      assert.deepEqual(images.shape, [n, 3, CAMERA.height, CAMERA.width]);
      const expected = await loadCameraBatch(cameras, CAMERA);
      const halves = new Uint16Array(images.bytes.buffer.slice(images.bytes.byteOffset, images.bytes.byteOffset + images.byteLength));
      let worst = 0;
      for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(halfToNumber(halves[i]) - expected[i]));
      assert.ok(worst <= 2 ** -9, `image values differ by ${worst} (> float16 rounding of |x| < 4)`);

      const lift = computeSamplingGrid(cameras, DEFAULT_BEV_GRID, { heights: CAMERA.heights, imageWidth: CAMERA.width, imageHeight: CAMERA.height });
      const grid = array(`sampling_grid_${k}`);
      assert.deepEqual(grid.shape, [n, 2, 128 * 128, 2]);
      const g = new Uint16Array(grid.bytes.buffer.slice(grid.bytes.byteOffset, grid.bytes.byteOffset + grid.byteLength));
      worst = 0;
      for (let i = 0; i < lift.grid.length; i++) worst = Math.max(worst, Math.abs(halfToNumber(g[i]) - lift.grid[i]));
      assert.ok(worst <= 2 ** -11, `grid coordinates differ by ${worst}`);
      const valid = array(`camera_valid_${k}`);
      assert.equal(valid.dtype, 'uint8');
      assert.deepEqual(Array.from(valid.bytes), Array.from(lift.valid));
      assert.ok(lift.valid.some((v) => v === 1), `agent ${meta.id}: no BEV cell is seen by its cameras`);
    }
    assert.ok(checkedRsu, 'the fixture RSU (one camera) was checked');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('export-training refuses camera options that cannot make a tensor', async () => {
  const ds = await openDataset(FIXTURE);
  await assert.rejects(exportTrainingShards(ds, '/nonexistent/never-written', { ego: 'first', cameras: { ...CAMERA, width: 0 } }), (err: unknown) => {
    assert.ok(err instanceof ShardExportError);
    assert.equal(err.field, 'cameras.width');
    return true;
  });
  await assert.rejects(exportTrainingShards(ds, '/nonexistent/never-written', { ego: 'first', cameras: { ...CAMERA, heights: [] } }), ShardExportError);
});
