import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { readPcdXyzi } from '../../src/datasets/index.ts';
import { CodecError, EntropyCoding, type PointCloudEncodingFields, decodePoints, encodePoints } from '../../src/codec/index.ts';
import { seededRandom } from './synthetic-bev.ts';

const DAIR_VEHICLE_PCD = path.resolve(
  process.cwd(),
  '../shared/data/dair-v2x-c-example/cooperative-vehicle-infrastructure/vehicle-side/velodyne/015377.pcd',
);

function assertWithinStep(original: Float32Array, decoded: Float32Array, step: number, intensityMax: number, origin = [0, 0, 0]): void {
  const n = decoded.length / 4;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) {
      const x = original[4 * i + k];
      const y = decoded[4 * i + k];
      // step/2, plus float32's rounding of the decoded coordinate.
      const bound = step / 2 + Math.abs(y) * 2 ** -24 + Math.abs(origin[k]) * 2 ** -52;
      if (Math.abs(x - y) > bound) assert.fail(`point ${i} axis ${k}: |${x} − ${y}| > ${bound}`);
    }
    const di = Math.abs(original[4 * i + 3] - decoded[4 * i + 3]);
    if (di > intensityMax / 510 + 1e-7) assert.fail(`point ${i} intensity off by ${di}`);
  }
}

test('a real DAIR-V2X vehicle sweep round-trips within step/2, compresses, and loses only what 5 mm cannot reach', async () => {
  const points = await readPcdXyzi(DAIR_VEHICLE_PCD);
  const n = points.length / 4;
  assert.ok(n > 50000, `expected ~62k points, read ${n}`);
  for (const spec of ['1cm+deflate', '1cm+brotli', '1cm']) {
    const enc = encodePoints(points, spec);
    assert.equal(enc.droppedPoints, 0, spec);
    assert.equal(enc.header.pointCount, n);
    assert.equal(enc.header.packedBytes, 7 * n);
    assert.equal(enc.bytes, enc.payload.byteLength);
    const dec = decodePoints(enc.payload, enc.header);
    assert.equal(dec.count, n);
    assertWithinStep(points, dec.points, enc.header.stepM, 1);
    if (spec !== '1cm') assert.ok(enc.bytes < 5 * n, `${spec}: ${enc.bytes} bytes for ${n} points`);
  }
  // At 5 mm an int16 reaches ±163.84 m: the sweep's farthest returns are dropped, and only those.
  const reach = 32767.5 * Math.fround(0.005);
  const kept: number[] = [];
  for (let i = 0; i < n; i++) {
    if ([0, 1, 2].every((k) => Math.abs(points[4 * i + k]) < reach)) kept.push(...points.subarray(4 * i, 4 * i + 4));
  }
  const fine = encodePoints(points, '5mm+brotli');
  assert.ok(fine.droppedPoints > 0);
  assert.equal(fine.droppedPoints, n - kept.length / 4);
  assertWithinStep(new Float32Array(kept), decodePoints(fine.payload, fine.header).points, fine.header.stepM, 1);
});

test('known layout: delta planes of int16 steps, low bytes first, then intensity', () => {
  const points = new Float32Array([0.01, -0.02, 1.0, 0.5, 0.03, -0.02, 1.0, 1.0]);
  const enc = encodePoints(points, '1cm');
  // x: q = 1, 3 → deltas 1, 2; y: q = −2, −2 → 0xfffe, 0; z: q = 100, 100 → 100, 0; intensity 128, 255.
  assert.deepEqual([...enc.payload], [1, 2, 0, 0, 0xfe, 0, 0xff, 0, 100, 0, 0, 0, 128, 255]);
  assert.equal(enc.header.stepM, Math.fround(0.01));
  assert.equal(enc.header.entropyCoding, EntropyCoding.NONE);
  assert.equal(enc.header.spec, '1cm');
});

test('origin, stride, intensity scale; points beyond the int16 reach or non-finite are dropped and counted', () => {
  const random = seededRandom(5);
  const stride = 5;
  const n = 2000;
  const points = new Float32Array(n * stride);
  for (let i = 0; i < n; i++) {
    points[i * stride] = 100 + (random() - 0.5) * 400; // reach from the origin x = 100 at 1 cm: ±327.67 m
    points[i * stride + 1] = (random() - 0.5) * 200;
    points[i * stride + 2] = random() * 4 - 2;
    points[i * stride + 3] = Math.round(random() * 255);
    points[i * stride + 4] = 42; // a field the codec does not carry
  }
  points[7 * stride] = 100 + 400; // 400 m from the origin: out of reach
  points[8 * stride + 1] = NaN;
  points[9 * stride + 3] = Infinity;
  const origin = { x: 100, y: 0, z: 0 };
  const enc = encodePoints(points, '1cm+brotli', { stride, origin, intensityMax: 255 });
  assert.equal(enc.droppedPoints, 3);
  assert.equal(enc.header.droppedPoints, 3);
  assert.equal(enc.header.originX, 100);
  const kept = new Float32Array(4 * (n - 3));
  for (let i = 0, k = 0; i < n; i++) {
    if (i === 7 || i === 8 || i === 9) continue;
    kept.set(points.subarray(i * stride, i * stride + 4), 4 * k++);
  }
  const dec = decodePoints(enc.payload, enc.header);
  assert.equal(dec.count, n - 3);
  assertWithinStep(kept, dec.points, enc.header.stepM, 255, [100, 0, 0]);
  // uint8 intensities with intensityMax 255 come back exactly.
  for (let i = 0; i < n - 3; i++) assert.equal(dec.points[4 * i + 3], kept[4 * i + 3]);
});

test('corrupt point payloads throw CodecError; an empty cloud is valid', () => {
  const empty = encodePoints(new Float32Array(0), '1cm+deflate');
  assert.equal(decodePoints(empty.payload, empty.header).count, 0);

  const points = new Float32Array(400).map((_, i) => (i % 4 === 3 ? 0.5 : i * 0.01));
  const enc = encodePoints(points, '1cm+deflate');
  const fix = (payload: Uint8Array, h: PointCloudEncodingFields = {}): PointCloudEncodingFields => ({ ...enc.header, ...h, payloadCrc32: crc32(payload) >>> 0 });
  const cut = enc.payload.subarray(0, enc.payload.length - 3);
  const isCorrupt = (pattern: RegExp) => (err: unknown) => err instanceof CodecError && err.kind === 'corrupt' && pattern.test(err.message);
  assert.throws(() => decodePoints(cut, enc.header), isCorrupt(/checksum mismatch/));
  assert.throws(() => decodePoints(cut, fix(cut)), isCorrupt(/deflate stream does not decompress/));
  assert.throws(() => decodePoints(enc.payload, fix(enc.payload, { pointCount: 101 })), isCorrupt(/packedBytes = 700, expected 7 × 101 points/));
  assert.throws(() => decodePoints(enc.payload, fix(enc.payload, { pointCount: 1e9, packedBytes: 7e9 })), isCorrupt(/exceeds the 4194304-point limit/));
  assert.throws(() => decodePoints(enc.payload, fix(enc.payload, { stepM: 0 })), isCorrupt(/stepM = 0/));
  assert.throws(() => decodePoints(enc.payload, fix(enc.payload, { entropyCoding: 7 })), isCorrupt(/entropyCoding = 7: unknown/));
  assert.throws(() => decodePoints(enc.payload, fix(enc.payload, { packedBytes: 7 * 100, pointCount: 100, entropyCoding: EntropyCoding.NONE })), isCorrupt(/payload bytes, the header announces 700/));
  assert.throws(() => encodePoints(points, '1cm', { stride: 3 }), /stride = 3: must be an integer ≥ 4/);
  assert.throws(() => encodePoints(points, '1cm', { count: 101 }), /count = 101: must be an integer in 0..100/);
});
