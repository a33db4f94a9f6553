import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { encodePcd, lzfDecompress, parsePcd, parsePcdXyzi, pointCloudToXyzi, readPcd, readPcdXyzi, type PointCloud } from '../../src/datasets/pcd.ts';
import { DatasetFormatError } from '../../src/datasets/errors.ts';

const DATA = path.resolve(process.cwd(), '../shared/data');
const DAIR = path.join(DATA, 'dair-v2x-c-example/cooperative-vehicle-infrastructure');
const VEHICLE_PCD = path.join(DAIR, 'vehicle-side/velodyne/015372.pcd');
const INFRA_PCD = path.join(DAIR, 'infrastructure-side/velodyne/000016.pcd');
const OPV2V_PCD = path.join(DATA, 'opv2v-lidar/000070.pcd');

/** POINTS as the header text says it, read without the codec. */
function headerPoints(file: string): number {
  const head = readFileSync(file).subarray(0, 512).toString('latin1');
  const m = /^POINTS (\d+)$/m.exec(head);
  assert.ok(m, `no POINTS line in ${file}`);
  return Number(m[1]);
}

function ascii(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function header(fields: string, size: string, type: string, points: number, data: string, extra = ''): string {
  return `# hand-built\nVERSION 0.7\nFIELDS ${fields}\nSIZE ${size}\nTYPE ${type}\n${extra}WIDTH ${points}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS ${points}\nDATA ${data}\n`;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u32le(...values: number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(4 * i, v, true));
  return out;
}

function expectFormatError(fn: () => unknown, file: string, field: string, detail?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof DatasetFormatError, `expected DatasetFormatError, got ${String(err)}`);
    assert.equal(err.path, file);
    assert.equal(err.field, field);
    assert.ok(err.message.includes(file), err.message);
    if (detail) assert.match(err.message, detail);
    return true;
  });
}

function range(col: Float64Array | Float32Array, start = 0, step = 1): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = start; i < col.length; i += step) {
    if (col[i]! < lo) lo = col[i]!;
    if (col[i]! > hi) hi = col[i]!;
  }
  return [lo, hi];
}

// Parse each real cloud once for the whole file.
const vehicle = await readPcd(VEHICLE_PCD);
const infra = await readPcd(INFRA_PCD);
const opv2v = await readPcd(OPV2V_PCD);

test('DAIR vehicle cloud: binary_compressed with mixed SIZE/TYPE decodes to the values an independent decoder gives', () => {
  assert.deepEqual(vehicle.fields, [
    { name: 'x', size: 4, type: 'F', count: 1 },
    { name: 'y', size: 4, type: 'F', count: 1 },
    { name: 'z', size: 4, type: 'F', count: 1 },
    { name: 'intensity', size: 1, type: 'U', count: 1 },
    { name: 'timestamp', size: 8, type: 'F', count: 1 },
  ]);
  assert.equal(vehicle.points, headerPoints(VEHICLE_PCD));
  assert.equal(vehicle.points, 62400);
  assert.deepEqual(vehicle.viewpoint, [0, 0, 0, 1, 0, 0, 0]);
  // Reference values from a separate Python LZF decoder written for this test (struct.unpack on the columns).
  const x = vehicle.columns.get('x')!;
  const y = vehicle.columns.get('y')!;
  const z = vehicle.columns.get('z')!;
  const intensity = vehicle.columns.get('intensity')!;
  const timestamp = vehicle.columns.get('timestamp')!;
  assert.deepEqual([x[0], y[0], z[0], intensity[0], timestamp[0]], [-55.01288986206055, -1.4841563701629639, 7.677671909332275, 75, 1626240241.6044354]);
  assert.deepEqual([x[1000], y[1000], z[1000], intensity[1000], timestamp[1000]], [-31.54684829711914, 6.590214252471924, 0.5200636982917786, 92, 1626240241.6081529]);
  assert.deepEqual([x[62399], y[62399], z[62399], intensity[62399], timestamp[62399]], [-52.33151626586914, -0.4859200716018677, 4.559284687042236, 39, 1626240241.7044797]);
  let sumX = 0;
  for (const v of x) sumX += v;
  assert.ok(Math.abs(sumX - 151136.38793476287) < 1e-6, `sum of x ${sumX}`);
});

test('DAIR vehicle cloud: per-point timestamps span one 10 Hz sweep starting at the data_info LiDAR time', () => {
  const [t0, t1] = range(vehicle.columns.get('timestamp')!);
  // vehicle-side/data_info.json: velodyne/015372.pcd pointcloud_timestamp 1626240241604435 µs.
  assert.ok(Math.abs(t0 * 1e6 - 1626240241604435) < 1000, `first point time ${t0}`);
  assert.ok(t1 - t0 > 0.09 && t1 - t0 < 0.11, `sweep duration ${t1 - t0} s`);
});

test('DAIR vehicle cloud to xyzi: uint8 intensity scaled into 0..1, every point kept', () => {
  const xyzi = pointCloudToXyzi(vehicle, VEHICLE_PCD);
  assert.equal(xyzi.length, 4 * vehicle.points);
  const [lo, hi] = range(xyzi, 3, 4);
  assert.ok(lo >= 0 && hi <= 1, `intensity ${lo}..${hi}`);
  assert.equal(xyzi[3], Math.fround(75 / 255));
  assert.equal(xyzi[0], Math.fround(-55.01288986206055));
});

test('DAIR infrastructure clouds: float32 x y z intensity, intensity already 0..1, counts match headers', async () => {
  assert.equal(infra.points, headerPoints(INFRA_PCD));
  assert.equal(infra.points, 54786);
  assert.deepEqual(infra.fields.map((f) => `${f.name}:${f.type}${f.size}`), ['x:F4', 'y:F4', 'z:F4', 'intensity:F4']);
  const x = infra.columns.get('x')!;
  assert.deepEqual([x[0], infra.columns.get('y')![0], infra.columns.get('z')![0]], [23.80005645751953, -26.174894332885742, 3.8954169750213623]);
  assert.equal(infra.columns.get('intensity')![1000], 0.0784313753247261);
  const xyzi = pointCloudToXyzi(infra, INFRA_PCD);
  const [lo, hi] = range(xyzi, 3, 4);
  assert.ok(lo >= 0 && hi <= 1);
  // The RSU LiDAR looks forward: no point behind it.
  assert.ok(range(xyzi, 0, 4)[0] >= 0);
  const another = path.join(DAIR, 'infrastructure-side/velodyne/000025.pcd');
  assert.equal((await readPcdXyzi(another)).length, 4 * headerPoints(another));
});

test('OPV2V ascii clouds: intensity is the red byte of the packed rgb float, range within 120 m', async () => {
  assert.equal(opv2v.points, headerPoints(OPV2V_PCD));
  assert.equal(opv2v.points, 56443);
  // First data line: "-99.28540039 9.034032701e-05 3.467117786 1.570386984e-38"; the rgb float's bit pattern is
  // 0x00ab0000 (red 171), worked out with Python's struct.
  assert.equal(opv2v.columns.get('x')![0], -99.28540039);
  assert.equal(opv2v.columns.get('y')![0], 9.034032701e-5);
  const xyzi = pointCloudToXyzi(opv2v, OPV2V_PCD);
  assert.equal(xyzi[3], Math.fround(171 / 255));
  const bits = new Uint32Array(new Float32Array(opv2v.columns.get('rgb')!).buffer);
  assert.ok(bits.every((b) => (b & 0xff00ffff) === 0), 'green, blue and alpha are zero');

  for (const stem of ['000070', '000072', '000074', '000076', '000078']) {
    const file = path.join(DATA, 'opv2v-lidar', `${stem}.pcd`);
    const cloud = stem === '000070' ? xyzi : await readPcdXyzi(file);
    assert.equal(cloud.length, 4 * headerPoints(file), file);
    let maxRange = 0;
    for (let i = 0; i < cloud.length; i += 4) {
      maxRange = Math.max(maxRange, Math.hypot(cloud[i]!, cloud[i + 1]!, cloud[i + 2]!));
      // Red bytes are whole multiples of 1/255.
      const red = cloud[i + 3]! * 255;
      assert.ok(Math.abs(red - Math.round(red)) < 1e-4 && red >= 0 && red <= 255);
    }
    assert.ok(maxRange > 100 && maxRange <= 120.5, `${file}: max range ${maxRange}`);
  }
});

function sampleXyzi(n: number): Float32Array {
  const xyzi = new Float32Array(4 * n);
  let seed = 12345;
  const rand = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  for (let i = 0; i < n; i++) {
    xyzi[4 * i] = (rand() - 0.5) * 240;
    xyzi[4 * i + 1] = (rand() - 0.5) * 1e-3 * 10 ** Math.floor(rand() * 6);
    xyzi[4 * i + 2] = rand() < 0.1 ? 0 : (rand() - 0.5) * 8;
    xyzi[4 * i + 3] = rand();
  }
  xyzi.set([1e-40, -3.4e38, 0.1, 0, -0, 1.5, 2 ** -20, 1], 0); // denormal, huge, inexact decimal, signed zeros
  return xyzi;
}

function sameBits(a: number, b: number): boolean {
  const f = new Float32Array([a, b]);
  const u = new Uint32Array(f.buffer);
  return u[0] === u[1];
}

for (const data of ['binary', 'ascii'] as const) {
  test(`encodePcd → parsePcd round trip, ${data}, float intensity: every float bit-exact`, () => {
    const xyzi = sampleXyzi(500);
    const bytes = encodePcd(xyzi, { data, intensity: 'float' });
    const pc = parsePcd(bytes);
    assert.deepEqual(pc.fields.map((f) => f.name), ['x', 'y', 'z', 'intensity']);
    const back = pointCloudToXyzi(pc);
    assert.equal(back.length, xyzi.length);
    for (let i = 0; i < xyzi.length; i++) assert.ok(sameBits(back[i]!, xyzi[i]!), `value ${i}: ${back[i]} vs ${xyzi[i]}`);
  });

  test(`encodePcd → parsePcd round trip, ${data}, rgb intensity: xyz exact, intensity quantised to the red byte`, () => {
    const xyzi = sampleXyzi(500);
    const bytes = encodePcd(xyzi, { data, intensity: 'rgb' });
    const pc = parsePcd(bytes);
    assert.deepEqual(pc.fields.map((f) => f.name), ['x', 'y', 'z', 'rgb']);
    const back = pointCloudToXyzi(pc);
    for (let i = 0; i < xyzi.length; i += 4) {
      for (let k = 0; k < 3; k++) assert.ok(sameBits(back[i + k]!, xyzi[i + k]!));
      assert.equal(back[i + 3], Math.fround(Math.round(xyzi[i + 3]! * 255) / 255));
    }
  });
}

test('encodePcd is deterministic and writes the documented header', () => {
  const xyzi = new Float32Array([1, 2, 3, 0.5, -4.25, 0.1, 1e-7, 1]);
  const a = encodePcd(xyzi, { data: 'ascii', intensity: 'float' });
  assert.deepEqual(a, encodePcd(xyzi, { data: 'ascii', intensity: 'float' }));
  assert.equal(
    new TextDecoder().decode(a),
    '# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n' +
      'WIDTH 2\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 2\nDATA ascii\n1 2 3 0.5\n-4.25 0.1 1e-7 1\n',
  );
  // rgb mode: intensity 1 → red 255 → bits 0x00ff0000.
  const b = encodePcd(new Float32Array([0, 0, 0, 1]), { data: 'binary', intensity: 'rgb' });
  assert.deepEqual([...b.subarray(b.length - 4)], [0x00, 0x00, 0xff, 0x00]);
  assert.match(new TextDecoder().decode(b.subarray(0, b.length - 16)), /FIELDS x y z rgb\n[\s\S]*DATA binary\n$/);
});

// A binary_compressed cloud built by hand: 3 points, FIELDS x y z intensity, SIZE 4 4 4 1, TYPE F F F U.
// Column-major payload (39 bytes): x = 1,1,1 (00 00 80 3f ×3), y = 2,2,2 (00 00 00 40 ×3), z = 0 ×3, intensity ff 80 00.
// LZF stream, worked out by hand:
//   03 00 00 80 3f   literal run of 4 bytes (ctrl 3 = length-1)                           → out 0..3
//   c0 03            back-reference: len (6)+2 = 8, distance 3+1 = 4 (copies x twice)    → out 4..11
//   03 00 00 00 40   literal run of 4                                                      → out 12..15
//   c0 03            back-reference 8 bytes, distance 4                                    → out 16..23
//   00 00            literal run of 1 (one zero byte)                                      → out 24
//   e0 02 00         long back-reference: len 7 + 2 (extra byte) + 2 = 11, distance 1:
//                    overlaps its own output, a run of zeros                              → out 25..35
//   02 ff 80 00      literal run of 3                                                      → out 36..38
const HAND_LZF = new Uint8Array([0x03, 0x00, 0x00, 0x80, 0x3f, 0xc0, 0x03, 0x03, 0x00, 0x00, 0x00, 0x40, 0xc0, 0x03, 0x00, 0x00, 0xe0, 0x02, 0x00, 0x02, 0xff, 0x80, 0x00]);

function handCompressedPcd(stream = HAND_LZF, uncompressed = 39, declaredCompressed = stream.length): Uint8Array {
  return concat(ascii(header('x y z intensity', '4 4 4 1', 'F F F U', 3, 'binary_compressed', 'COUNT 1 1 1 1\n')), u32le(declaredCompressed, uncompressed), stream);
}

test('hand-built binary_compressed cloud: literal runs, a back-reference and an overlapping long back-reference', () => {
  const pc = parsePcd(handCompressedPcd(), 'hand.pcd');
  assert.deepEqual([...pc.columns.get('x')!], [1, 1, 1]);
  assert.deepEqual([...pc.columns.get('y')!], [2, 2, 2]);
  assert.deepEqual([...pc.columns.get('z')!], [0, 0, 0]);
  assert.deepEqual([...pc.columns.get('intensity')!], [255, 128, 0]);
  assert.deepEqual([...pointCloudToXyzi(pc)], [1, 2, 0, 1, 1, 2, 0, Math.fround(128 / 255), 1, 2, 0, 0]);
  // Trailing bytes after the compressed block are tolerated (PCL pads the files it writes; DAIR's have ~3.9 kB of zeros).
  const padded = concat(handCompressedPcd(), new Uint8Array(100));
  assert.deepEqual([...parsePcd(padded).columns.get('intensity')!], [255, 128, 0]);
});

test('corrupt LZF streams throw DatasetFormatError instead of reading or writing out of bounds', () => {
  const file = 'bad.pcd';
  // Back-reference before the start of the output.
  expectFormatError(() => parsePcd(handCompressedPcd(new Uint8Array([0x00, 0x01, 0xc0, 0x05, ...HAND_LZF.subarray(14)])), file), file, 'DATA', /before the output start/);
  // Literal run longer than the remaining input.
  expectFormatError(() => lzfDecompress(new Uint8Array([0x05, 0x01, 0x02]), 6, file), file, 'DATA', /past the input end/);
  // Back-reference that would write past the declared output size.
  expectFormatError(() => lzfDecompress(new Uint8Array([0x00, 0x07, 0xe0, 0xff, 0x00]), 40, file), file, 'DATA', /overflows/);
  // Stream cut off: fewer bytes than the header promises.
  expectFormatError(() => parsePcd(handCompressedPcd(HAND_LZF.subarray(0, 16)), file), file, 'DATA', /ended after/);
  // Long back-reference missing its length byte.
  expectFormatError(() => lzfDecompress(new Uint8Array([0x00, 0x07, 0xe0]), 40, file), file, 'DATA', /length byte missing/);
  // Compressed size larger than the file.
  expectFormatError(() => parsePcd(handCompressedPcd(HAND_LZF, 39, 500), file), file, 'DATA', /truncated/);
  // Uncompressed size that does not match POINTS × point size.
  expectFormatError(() => parsePcd(handCompressedPcd(HAND_LZF, 40), file), file, 'DATA', /uncompressed size 40/);
  // A size no LZF stream of that length can expand to (refused before allocating the output).
  const huge = concat(ascii(header('x', '4', 'F', 5e8, 'binary_compressed')), u32le(3, 2e9), new Uint8Array([0, 0, 0]));
  expectFormatError(() => parsePcd(huge, file), file, 'DATA', /impossible for LZF/);
  // No room for the two size words.
  expectFormatError(() => parsePcd(ascii(header('x y z', '4 4 4', 'F F F', 1, 'binary_compressed')), file), file, 'DATA', /size header/);
});

test('random damage to a real compressed cloud gives a DatasetFormatError or a cloud, never anything else', () => {
  const original = readFileSync(VEHICLE_PCD);
  const dataStart = original.indexOf('DATA binary_compressed\n') + 'DATA binary_compressed\n'.length;
  // Damage the first 2 kB of the stream and cut it to 4 kB: decompression then fails or ends early, quickly.
  const base = original.subarray(0, dataStart + 8 + 4096);
  let seed = 7;
  let errors = 0;
  for (let trial = 0; trial < 40; trial++) {
    const damaged = Uint8Array.from(base);
    for (let k = 0; k < 4; k++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      damaged[dataStart + 8 + (seed % 2048)] = seed >>> 24;
    }
    new DataView(damaged.buffer).setUint32(dataStart, 4096, true);
    try {
      parsePcd(damaged, 'damaged.pcd');
    } catch (err) {
      assert.ok(err instanceof DatasetFormatError, String(err));
      errors++;
    }
  }
  assert.equal(errors, 40);
});

test('binary: truncated data, mixed types and COUNT > 1 columns', () => {
  // FIELDS x y z normal(count 3, float64) label (int16): 4+4+4+24+2 = 38 bytes per point, unaligned.
  const head = ascii(header('x y z normal label', '4 4 4 8 2', 'F F F F I', 2, 'binary', 'COUNT 1 1 1 3 1\n'));
  const body = new Uint8Array(76);
  const view = new DataView(body.buffer);
  for (let p = 0; p < 2; p++) {
    const o = 38 * p;
    view.setFloat32(o, 1.5 + p, true);
    view.setFloat32(o + 4, -2 - p, true);
    view.setFloat32(o + 8, 0.25, true);
    view.setFloat64(o + 12, 0.1 * (p + 1), true);
    view.setFloat64(o + 20, 0.2, true);
    view.setFloat64(o + 28, 0.3, true);
    view.setInt16(o + 36, p === 0 ? -7 : 300, true);
  }
  const pc = parsePcd(concat(head, body), 'mixed.pcd');
  assert.deepEqual([...pc.columns.keys()], ['x', 'y', 'z', 'normal', 'normal_1', 'normal_2', 'label']);
  assert.deepEqual([...pc.columns.get('x')!], [1.5, 2.5]);
  assert.deepEqual([...pc.columns.get('normal')!], [0.1, 0.2]);
  assert.deepEqual([...pc.columns.get('normal_2')!], [0.3, 0.3]);
  assert.deepEqual([...pc.columns.get('label')!], [-7, 300]);
  expectFormatError(() => parsePcd(concat(head, body.subarray(0, 75)), 'short.pcd'), 'short.pcd', 'DATA', /truncated: 75 bytes/);
});

test('non-finite points are dropped from xyzi; nan in ascii is read, not rejected', () => {
  const text = header('x y z intensity', '4 4 4 1', 'F F F U', 4, 'ascii') + '1 2 3 255\nnan nan nan 0\n4 5 inf 10\n-1e2 .5 +2E-1 0\n';
  const pc = parsePcd(ascii(text), 'nan.pcd');
  assert.ok(Number.isNaN(pc.columns.get('x')![1]!));
  assert.deepEqual([...pointCloudToXyzi(pc)], [1, 2, 3, 1, -100, 0.5, Math.fround(0.2), 0]);
});

test('header problems name the file and the field', () => {
  const f = 'h.pcd';
  expectFormatError(() => parsePcd(ascii(header('x y z', '4 4 4', 'F F F', 1, 'ascii').replace('POINTS 1', 'POINTS 2')), f), f, 'POINTS', /WIDTH\*HEIGHT/);
  expectFormatError(() => parsePcd(ascii(header('x y z', '4 3 4', 'F F F', 1, 'ascii')), f), f, 'SIZE', /"y": size 3/);
  expectFormatError(() => parsePcd(ascii(header('x y z', '4 4 4', 'F F X', 1, 'ascii')), f), f, 'TYPE', /"z"/);
  expectFormatError(() => parsePcd(ascii(header('x y z', '4 4', 'F F F', 1, 'ascii')), f), f, 'SIZE', /2 entries for 3 FIELDS/);
  expectFormatError(() => parsePcd(ascii(header('x y z', '4 4 4', 'F F F', 1, 'lzma')), f), f, 'DATA', /lzma/);
  expectFormatError(() => parsePcd(ascii('VERSION 0.7\nFIELDS x\n'), f), f, 'DATA', /no DATA line/);
  expectFormatError(() => parsePcd(new Uint8Array(0), f), f, 'DATA');
  expectFormatError(() => parsePcd(ascii(header('x x z', '4 4 4', 'F F F', 1, 'ascii')), f), f, 'FIELDS', /twice/);
  expectFormatError(() => pointCloudToXyzi(parsePcd(ascii(header('x y', '4 4', 'F F', 1, 'ascii') + '1 2\n')), f), f, 'z', /missing/);
});

test('ascii data problems name the point and the field', () => {
  const f = 'a.pcd';
  const head = header('x y z intensity', '4 4 4 4', 'F F F F', 2, 'ascii');
  expectFormatError(() => parsePcd(ascii(head + '10 20 30 40\n1 2 3\n'), f), f, 'intensity', /point 1: 3 values/);
  expectFormatError(() => parsePcd(ascii(head + '1 2 3 4\n1 2 zz 4\n'), f), f, 'z', /point 1: "zz"/);
  expectFormatError(() => parsePcd(ascii(head + '1.5 2.5 3.5 4.5\n'), f), f, 'POINTS', /1 points, header declares 2/);
  // A POINTS the data cannot possibly hold is refused before any column is allocated.
  expectFormatError(() => parsePcd(ascii(header('x', '4', 'F', 1e9, 'ascii') + '1\n'), f), f, 'POINTS', /cannot hold the 1000000000 points/);
  expectFormatError(() => parsePcd(ascii(head + '1 2 3 4\n1 2 3 4\n1 2 3 4\n'), f), f, 'POINTS', /more than the 2 points/);
  expectFormatError(() => parsePcd(ascii(head + '1 2 3 4 5\n1 2 3 4\n'), f), f, 'intensity', /more than 4 values/);
  // A last line without its newline and Windows line ends are fine.
  const pc: PointCloud = parsePcd(ascii(head.replace(/\n/g, '\r\n') + '1 2 3 4\r\n5 6 7 8'), f);
  assert.deepEqual([...pc.columns.get('intensity')!], [4, 8]);
});

// parsePcdXyzi's single pass over DATA binary must give what the general path gives, value for value, and leave
// every other layout to it.
function generalXyzi(bytes: Uint8Array): Float32Array {
  return pointCloudToXyzi(parsePcd(bytes));
}

function assertSameCloud(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(sameBits(a[i]!, b[i]!), `${what}: value ${i}: ${a[i]} vs ${b[i]}`);
}

/** DATA binary records of `fields` (name, SIZE, TYPE), one point per row of `rows`, behind a header of any length. */
function binaryCloud(fields: [string, number, 'F' | 'U' | 'I'][], rows: number[][], comment = ''): Uint8Array {
  const stride = fields.reduce((s, f) => s + f[1], 0);
  const body = new Uint8Array(stride * rows.length);
  const view = new DataView(body.buffer);
  rows.forEach((row, r) => {
    let o = r * stride;
    fields.forEach(([, size, type], k) => {
      const v = row[k]!;
      if (type === 'F') size === 4 ? view.setFloat32(o, v, true) : view.setFloat64(o, v, true);
      else if (size === 1) view.setUint8(o, v);
      else if (size === 2) view.setUint16(o, v, true);
      else if (type === 'U') view.setUint32(o, v, true);
      else view.setInt32(o, v, true);
      o += size;
    });
  });
  const head = `# ${comment}\n` + header(fields.map((f) => f[0]).join(' '), fields.map((f) => f[1]).join(' '), fields.map((f) => f[2]).join(' '), rows.length, 'binary');
  return concat(ascii(head), body);
}

test('parsePcdXyzi: the single binary pass gives the general path\'s values, NaN points dropped, any header length', () => {
  const rows = [
    [1.5, -2.25, 0.125, 0.75, 7],
    [NaN, 1, 2, 0.5, 8],
    [3, Infinity, 2, 0.5, 9],
    [-0.1, 0.2, -3e-39, 1, 10],
    [100, 200, -1.75, 0, 11],
  ];
  // Header lengths 0..3 mod 4 put the records on every alignment.
  for (const comment of ['', 'a', 'ab', 'abc']) {
    const floatI = binaryCloud([['x', 4, 'F'], ['y', 4, 'F'], ['z', 4, 'F'], ['intensity', 4, 'F']], rows.map((r) => r.slice(0, 4)), comment);
    const fast = parsePcdXyzi(floatI);
    assertSameCloud(fast, generalXyzi(floatI), `float intensity, comment '${comment}'`);
    // As readFile gives it: a Buffer, whose slice() is a view that keeps the header's misalignment.
    assertSameCloud(parsePcdXyzi(Buffer.from(floatI)), fast, `float intensity in a Buffer, comment '${comment}'`);
    assert.equal(fast.length, 12, 'the NaN and the infinite point are dropped');
    assert.deepEqual([...fast.subarray(0, 4)], [1.5, -2.25, 0.125, 0.75]);
  }
  // Fields in another order, with extra 4-byte fields beside them; intensity as U4 and I4 (scaled by their range).
  for (const t of ['U', 'I'] as const) {
    const ints = rows.map((r) => [r[4]!, r[2]!, 2 ** 30 + r[4]!, r[0]!, r[1]!]);
    const bytes = binaryCloud([['ring', 4, 'U'], ['z', 4, 'F'], ['intensity', 4, t], ['x', 4, 'F'], ['y', 4, 'F']], ints);
    const fast = parsePcdXyzi(bytes);
    assertSameCloud(fast, generalXyzi(bytes), `intensity ${t}4 between other fields`);
    assert.equal(fast[3], Math.fround((2 ** 30 + 7) / (t === 'U' ? 2 ** 32 - 1 : 2 ** 31 - 1)));
  }
  // Packed rgb (OPV2V, the simulator): the red byte.
  const xyzi = sampleXyzi(300);
  for (const intensity of ['rgb', 'float'] as const) {
    const bytes = encodePcd(xyzi, { data: 'binary', intensity });
    assertSameCloud(parsePcdXyzi(bytes), generalXyzi(bytes), `encodePcd binary, ${intensity}`);
  }
  // No intensity at all: zero.
  const bare = binaryCloud([['x', 4, 'F'], ['y', 4, 'F'], ['z', 4, 'F']], rows.map((r) => r.slice(0, 3)));
  assertSameCloud(parsePcdXyzi(bare), generalXyzi(bare), 'no intensity');
});

test('a packed colour whose bits are a signalling NaN (alpha 255, as PCL writes it, red 128–191) keeps its red byte', () => {
  // 0xff8a0000: alpha 255, red 138 (0x8a). As a float32 that is a NaN whose quiet bit (22) is 0; through a float64,
  // V8 sets that bit and the red byte would read 0xca = 202.
  const rows = [[1, 2, 3, 0xff8a0000], [4, 5, 6, 0xff400000], [7, 8, 9, 0x00ab0000]];
  const body = new Uint8Array(16 * rows.length);
  const view = new DataView(body.buffer);
  rows.forEach((r, i) => { view.setFloat32(16 * i, r[0]!, true); view.setFloat32(16 * i + 4, r[1]!, true); view.setFloat32(16 * i + 8, r[2]!, true); view.setUint32(16 * i + 12, r[3]!, true); });
  const bytes = concat(ascii(header('x y z rgb', '4 4 4 4', 'F F F F', rows.length, 'binary')), body);
  const want = [138, 64, 171].map((red) => Math.fround(red / 255));
  const general = pointCloudToXyzi(parsePcd(bytes));
  assert.deepEqual([general[3], general[7], general[11]], want, 'the general path, DATA binary');
  const fast = parsePcdXyzi(bytes);
  assert.deepEqual([fast[3], fast[7], fast[11]], want, 'the single pass');
});

test('parsePcdXyzi: layouts the single pass does not take go the general way, with its values and its errors', () => {
  const rows = [[1, 2, 3, 200, 0.5], [4, 5, 6, 17, 0.25]];
  // uint8 intensity (DAIR-V2X's vehicle side; stride 13), float64 coordinates, an ascii file: general path.
  const u8 = binaryCloud([['x', 4, 'F'], ['y', 4, 'F'], ['z', 4, 'F'], ['intensity', 1, 'U']], rows.map((r) => r.slice(0, 4)));
  assertSameCloud(parsePcdXyzi(u8), generalXyzi(u8), 'uint8 intensity');
  assert.equal(parsePcdXyzi(u8)[3], Math.fround(200 / 255));
  const f64 = binaryCloud([['x', 8, 'F'], ['y', 8, 'F'], ['z', 8, 'F'], ['intensity', 4, 'F']], rows.map((r) => [r[0]!, r[1]!, r[2]!, r[4]!]));
  assertSameCloud(parsePcdXyzi(f64), generalXyzi(f64), 'float64 coordinates');
  const text = encodePcd(sampleXyzi(50), { data: 'ascii', intensity: 'rgb' });
  assertSameCloud(parsePcdXyzi(text), generalXyzi(text), 'ascii');
  // Truncated records: the general path's error, naming the source.
  const whole = binaryCloud([['x', 4, 'F'], ['y', 4, 'F'], ['z', 4, 'F'], ['intensity', 4, 'F']], rows.map((r) => [r[0]!, r[1]!, r[2]!, r[4]!]));
  expectFormatError(() => parsePcdXyzi(whole.subarray(0, whole.length - 3), 'cut.pcd'), 'cut.pcd', 'DATA', /truncated/);
});

test('readPcdXyzi: DATA binary sweeps from disk (the single pass) as the general path reads them, any header length', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'v2xfuse-pcd-'));
  try {
    // The simulator's layout (x y z rgb, DATA binary), behind comments that move the records to every alignment.
    const body = encodePcd(sampleXyzi(2000), { data: 'binary', intensity: 'rgb' });
    for (const pad of ['', '#\n', '#a\n', '#ab\n', '#abc\n', '#abcdefg\n']) {
      const file = path.join(dir, `pad${pad.length}.pcd`);
      writeFileSync(file, concat(ascii(pad), body));
      const bytes = readFileSync(file);
      assertSameCloud(await readPcdXyzi(file), pointCloudToXyzi(parsePcd(bytes, file), file), file);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readPcdXyzi reads the real DAIR-V2X sweeps (binary_compressed) as the general path does', async () => {
  for (const file of [VEHICLE_PCD, INFRA_PCD]) {
    const bytes = readFileSync(file);
    assertSameCloud(await readPcdXyzi(file), pointCloudToXyzi(parsePcd(bytes, file), file), file);
  }
});
