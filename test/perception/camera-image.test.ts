import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import {
  CameraImageError,
  CameraTensorOptionsError,
  completeImageSizes,
  loadCameraBatch,
  loadCameraTensor,
  readImageSize,
} from '../../src/perception/index.ts';

const CAMERA_DIR = path.resolve(process.cwd(), '../shared/data/opv2v-camera');
const cameraPng = (k: number): string => path.join(CAMERA_DIR, `000759_camera${k}.png`);
const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

const scratch = mkdtemp(path.join(os.tmpdir(), 'v2xfuse-camera-image-'));
after(async () => rm(await scratch, { recursive: true, force: true }));

/** A PNG of `width × height` whose pixel (x, y) has the RGB `colour(x, y)`. */
async function writePng(name: string, width: number, height: number, colour: (x: number, y: number) => [number, number, number]): Promise<string> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) raw.set(colour(x, y), (y * width + x) * 3);
  }
  const file = path.join(await scratch, name);
  await writeFile(file, await sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer());
  return file;
}

test('a real 800×600 OPV2V image becomes a finite [3, 150, 200] tensor with sane channel means', async () => {
  const tensor = await loadCameraTensor(cameraPng(0), { width: 200, height: 150 });
  assert.equal(tensor.length, 3 * 150 * 200);
  const plane = 150 * 200;
  for (let ch = 0; ch < 3; ch++) {
    // (0 − mean)/std .. (1 − mean)/std is the whole range a normalised 8-bit value can take.
    const lo = -MEAN[ch] / STD[ch] - 1e-6, hi = (1 - MEAN[ch]) / STD[ch] + 1e-6;
    let sum = 0;
    let min = Infinity, max = -Infinity;
    for (let i = ch * plane; i < (ch + 1) * plane; i++) {
      const v = tensor[i];
      assert.ok(Number.isFinite(v) && v >= lo && v <= hi, `channel ${ch} value ${v}`);
      sum += v;
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    const mean = sum / plane;
    // A street scene is neither black nor white on average, and has contrast.
    assert.ok(mean > -1.5 && mean < 1.5, `channel ${ch} mean ${mean}`);
    assert.ok(max - min > 1, `channel ${ch} range ${min}..${max}`);
  }
});

test('with mean 0 and std 1 values are pixel / 255; the default statistics are applied per RGB channel', async () => {
  const raw = await loadCameraTensor(cameraPng(1), { width: 40, height: 30, mean: [0, 0, 0], std: [1, 1, 1] });
  const norm = await loadCameraTensor(cameraPng(1), { width: 40, height: 30 });
  const plane = 40 * 30;
  for (let i = 0; i < raw.length; i++) {
    const ch = Math.floor(i / plane);
    assert.ok(Math.abs(raw[i] * 255 - Math.round(raw[i] * 255)) < 1e-3, 'an 8-bit level');
    assert.ok(Math.abs(norm[i] - (raw[i] - MEAN[ch]) / STD[ch]) < 1e-5);
  }
});

test('planes are R, G, B and the fill resize stretches the whole image onto the tensor (no crop)', async () => {
  // 40×20: the left half pure red, the right half pure blue. A 10×10 fill keeps red in column 0 and blue in
  // column 9; a crop ('cover') or letterbox ('contain') would not.
  const file = await writePng('halves.png', 40, 20, (x) => (x < 20 ? [255, 0, 0] : [0, 0, 255]));
  const t = await loadCameraTensor(file, { width: 10, height: 10, mean: [0, 0, 0], std: [1, 1, 1] });
  const plane = 100;
  for (let row = 0; row < 10; row++) {
    const left = row * 10, right = row * 10 + 9;
    assert.deepEqual([t[left], t[plane + left], t[2 * plane + left]], [1, 0, 0], `row ${row} left`);
    assert.deepEqual([t[right], t[plane + right], t[2 * plane + right]], [0, 0, 1], `row ${row} right`);
  }
  const red = await loadCameraTensor(file, { width: 10, height: 10 });
  assert.ok(Math.abs(red[0] - (1 - 0.485) / 0.229) < 1e-5);
  assert.ok(Math.abs(red[plane] - (0 - 0.456) / 0.224) < 1e-5);
  assert.ok(Math.abs(red[2 * plane] - (0 - 0.406) / 0.225) < 1e-5);
});

test('grey and RGBA images come out as three channels', async () => {
  const dir = await scratch;
  const grey = path.join(dir, 'grey.png');
  await writeFile(grey, await sharp(Buffer.alloc(8 * 6, 128), { raw: { width: 8, height: 6, channels: 1 } }).png().toBuffer());
  const t = await loadCameraTensor(grey, { width: 4, height: 3, mean: [0, 0, 0], std: [1, 1, 1] });
  assert.equal(t.length, 3 * 4 * 3);
  for (const v of t) assert.ok(Math.abs(v - 128 / 255) < 1e-6, `${v}`);
  const rgba = path.join(dir, 'rgba.png');
  const px = Buffer.alloc(8 * 6 * 4);
  for (let i = 0; i < 48; i++) px.set([10, 200, 30, 255], 4 * i);
  await writeFile(rgba, await sharp(px, { raw: { width: 8, height: 6, channels: 4 } }).png().toBuffer());
  const u = await loadCameraTensor(rgba, { width: 4, height: 3, mean: [0, 0, 0], std: [1, 1, 1] });
  assert.deepEqual([u[0], u[12], u[24]].map((v) => Math.round(v * 255)), [10, 200, 30]);
});

test('out is reused; a batch stacks the cameras in order', async () => {
  const opts = { width: 80, height: 60 };
  const out = new Float32Array(3 * 60 * 80);
  assert.equal(await loadCameraTensor(cameraPng(2), opts, out), out);
  await assert.rejects(loadCameraTensor(cameraPng(2), opts, new Float32Array(10)), CameraTensorOptionsError);

  const cameras = [0, 1, 2, 3].map((k) => ({ path: cameraPng(k), width: 800, height: 600 }));
  const batch = await loadCameraBatch(cameras, opts);
  const per = 3 * 60 * 80;
  assert.equal(batch.length, 4 * per);
  for (const k of [0, 3]) {
    const single = await loadCameraTensor(cameraPng(k), opts);
    assert.deepEqual(batch.subarray(k * per, (k + 1) * per), single);
  }
  // Different cameras, different pixels.
  assert.notDeepEqual(batch.subarray(0, per), batch.subarray(per, 2 * per));
});

test('a camera whose image is not the size its calibration says is refused', async () => {
  await assert.rejects(
    loadCameraBatch([{ path: cameraPng(0), width: 1920, height: 1080 }], { width: 40, height: 30 }),
    (err: unknown) => err instanceof CameraImageError && err.imagePath === cameraPng(0) && /800 × 600/.test(err.message),
  );
});

test('a missing or corrupt file is a user-facing error naming the path', async () => {
  const missing = path.join(await scratch, 'nope', 'camera0.png');
  await assert.rejects(loadCameraTensor(missing, { width: 20, height: 15 }), (err: unknown) => {
    assert.ok(err instanceof CameraImageError);
    assert.equal(err.userFacing, true);
    assert.equal(err.imagePath, missing);
    assert.ok(err.message.includes(missing) && /no such file/.test(err.message), err.message);
    return true;
  });
  const corrupt = path.join(await scratch, 'corrupt.png');
  await writeFile(corrupt, Buffer.from('\x89PNG\r\n\x1a\nthis is not a png'));
  await assert.rejects(loadCameraTensor(corrupt, { width: 20, height: 15 }), (err: unknown) => err instanceof CameraImageError && err.message.includes(corrupt));
  await assert.rejects(readImageSize(missing), (err: unknown) => err instanceof CameraImageError && /no such file/.test(err.message));
  await assert.rejects(readImageSize(corrupt), (err: unknown) => err instanceof CameraImageError && err.message.includes(corrupt));
  await assert.rejects(loadCameraTensor(cameraPng(0), { width: 0, height: 15 }), CameraTensorOptionsError);
  await assert.rejects(loadCameraTensor(cameraPng(0), { width: 20, height: 15, std: [1, 0, 1] }), CameraTensorOptionsError);
});

test('image sizes come from the header when the dataset does not state them', async () => {
  assert.deepEqual(await readImageSize(cameraPng(3)), { width: 800, height: 600 });
  const stated = { path: '/does/not/matter.png', width: 10, height: 5 };
  const [a, b] = await completeImageSizes([stated, { path: cameraPng(0) }]);
  assert.equal(a, stated);
  assert.deepEqual(b, { path: cameraPng(0), width: 800, height: 600 });
});
