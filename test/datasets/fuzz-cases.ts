// Seeded fuzz cases for the dataset readers: valid PCD (ascii, binary, binary_compressed), OPV2V frame yaml and
// DAIR-V2X-C json inputs, damaged the ways a disk, a download or a hand edit damages them (bit flips, truncation,
// inserted, deleted and repeated bytes, header lines with out-of-range or non-numeric values, structurally valid
// documents with the wrong types in them, nesting and alias bombs). Each case either parses into finite data or
// is refused with a DatasetError that names the file; anything else (TypeError, RangeError, a hang) is a bug.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { encodePcd, openDairV2XC, parsePcd, pointCloudToXyzi } from '../../src/datasets/index.ts';
import { parseOpv2vFrameYaml } from '../../src/datasets/opv2v.ts';
import { seededRandom } from '../codec/synthetic-bev.ts';

export interface FuzzCase {
  description: string;
  /** A DatasetError's `path` must start with this (the file, or the tree the case lives in). */
  pathPrefix: string;
  run(): Promise<void> | void;
}

export interface FuzzCaseSet {
  cases: Iterable<FuzzCase>;
  cleanup(): void;
}

type Random = () => number;

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const enc = new TextEncoder();
const dec = new TextDecoder('latin1');

/** Values a parser is least likely to expect where a number or a name belongs. */
const TOKENS = [
  '0', '-1', '1', '2', '3', '7', '8', '16', '255', '65535', '4294967295', '4294967296', '9007199254740993', '1e308', '1e400',
  '-0', '0x10', '1.5', '-2.5e-3', 'NaN', 'nan', 'inf', '-inf', 'Infinity', '', 'abc', '_', 'x', 'F', 'U', 'I', 'Z', '99999999999',
  '1000000000', '\u0000', '#', '\t', '\r', 'DATA', 'ascii', 'binary', 'binary_compressed',
];

const int = (random: Random, n: number) => Math.floor(random() * n);
const pick = <T>(random: Random, list: readonly T[]): T => list[int(random, list.length)]!;

/** A byte-level mutation of `base`, with what it did. */
export function mutateBytes(base: Uint8Array, random: Random): { bytes: Uint8Array; op: string } {
  const n = base.length;
  switch (int(random, 7)) {
    case 0: {
      const b = base.slice();
      const flips = 1 + int(random, 8);
      for (let f = 0; f < flips && n > 0; f++) b[int(random, n)] ^= 1 << int(random, 8);
      return { bytes: b, op: `flip ${flips} bits` };
    }
    case 1: {
      const at = int(random, n + 1);
      return { bytes: base.slice(0, at), op: `truncate at ${at}` };
    }
    case 2: {
      const at = int(random, n + 1);
      const ins = Uint8Array.from({ length: 1 + int(random, 64) }, () => int(random, 256));
      const b = new Uint8Array(n + ins.length);
      b.set(base.subarray(0, at));
      b.set(ins, at);
      b.set(base.subarray(at), at + ins.length);
      return { bytes: b, op: `insert ${ins.length} random bytes at ${at}` };
    }
    case 3: {
      const at = int(random, n + 1);
      const len = int(random, Math.max(1, n - at));
      const b = new Uint8Array(n - len);
      b.set(base.subarray(0, at));
      b.set(base.subarray(at + len), at);
      return { bytes: b, op: `delete ${len} bytes at ${at}` };
    }
    case 4: {
      const at = int(random, n + 1);
      const len = Math.min(n - at, 1 + int(random, 200));
      const b = new Uint8Array(n + len);
      b.set(base.subarray(0, at + len));
      b.set(base.subarray(at), at + len);
      return { bytes: b, op: `repeat ${len} bytes at ${at}` };
    }
    case 5: {
      const at = int(random, n + 1);
      const t = enc.encode(pick(random, TOKENS));
      const b = base.slice();
      b.set(t.subarray(0, Math.max(0, n - at)), at);
      return { bytes: b, op: `overwrite at ${at} with a token` };
    }
    default: {
      const len = int(random, 512);
      return { bytes: Uint8Array.from({ length: len }, () => int(random, 256)), op: `${len} random bytes` };
    }
  }
}

/** Replaces one number in a text with an unexpected token. */
function mutateNumber(text: string, random: Random): { text: string; op: string } {
  const numbers = [...text.matchAll(/-?\d+(\.\d+)?([eE][-+]?\d+)?/g)];
  if (numbers.length === 0) return { text, op: 'no number to replace' };
  const m = pick(random, numbers);
  const token = pick(random, TOKENS);
  return { text: text.slice(0, m.index) + token + text.slice(m.index! + m[0].length), op: `number ${JSON.stringify(m[0])} → ${JSON.stringify(token)}` };
}

/** A JSON-able value of an unexpected type or size. */
function strangeValue(random: Random): unknown {
  switch (int(random, 12)) {
    case 0: return null;
    case 1: return true;
    case 2: return 'text';
    case 3: return 1e308;
    case 4: return -1;
    case 5: return [];
    case 6: return {};
    case 7: return '1.5';
    case 8: return [1, 2];
    case 9: return { x: 1 };
    case 10: return 0;
    default: return Array.from({ length: 20 }, (_, i) => i);
  }
}

/** Replaces, deletes or renames one node of a parsed document. */
function mutateTree(doc: unknown, random: Random): { doc: unknown; op: string } {
  const copy = structuredClone(doc);
  const nodes: { parent: Record<string, unknown> | unknown[]; key: string | number; path: string }[] = [];
  const walk = (v: unknown, path: string) => {
    if (Array.isArray(v)) v.forEach((c, i) => (nodes.push({ parent: v, key: i, path: `${path}[${i}]` }), walk(c, `${path}[${i}]`)));
    else if (v && typeof v === 'object') for (const [k, c] of Object.entries(v)) (nodes.push({ parent: v as Record<string, unknown>, key: k, path: `${path}.${k}` }), walk(c, `${path}.${k}`));
  };
  walk(copy, '');
  if (nodes.length === 0) return { doc: strangeValue(random), op: 'replace the document' };
  const node = pick(random, nodes);
  const action = int(random, 4);
  if (action === 0) {
    if (Array.isArray(node.parent)) node.parent.splice(node.key as number, 1);
    else delete node.parent[node.key as string];
    return { doc: copy, op: `delete ${node.path}` };
  }
  if (action === 1 && !Array.isArray(node.parent)) {
    const p = node.parent;
    p[`${String(node.key)}_x`] = p[node.key as string];
    delete p[node.key as string];
    return { doc: copy, op: `rename ${node.path}` };
  }
  const value = strangeValue(random);
  (node.parent as Record<string | number, unknown>)[node.key] = value;
  return { doc: copy, op: `${node.path} = ${JSON.stringify(value)?.slice(0, 40)}` };
}

// ------------------------------------------------------------------------------------------------------- PCD

/** liblzf stream of literal runs only (a valid stream every decoder must accept). */
function lzfLiterals(raw: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < raw.length; i += 32) {
    const run = Math.min(32, raw.length - i);
    out.push(run - 1, ...raw.subarray(i, i + run));
  }
  return Uint8Array.from(out);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) (out.set(p, o), (o += p.length));
  return out;
}

/** x y z (F4), intensity (U1), 3 padding bytes ('_', COUNT 3), ring (U2), column-major and LZF-compressed. */
function binaryCompressedPcd(points: number): Uint8Array {
  const header =
    'VERSION 0.7\nFIELDS x y z intensity _ ring\nSIZE 4 4 4 1 1 2\nTYPE F F F U U U\nCOUNT 1 1 1 1 3 1\n' +
    `WIDTH ${points}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS ${points}\nDATA binary_compressed\n`;
  const stride = 4 + 4 + 4 + 1 + 3 + 2;
  const raw = new Uint8Array(stride * points);
  const dv = new DataView(raw.buffer);
  let o = 0;
  for (const axis of [0, 1, 2]) for (let i = 0; i < points; i++, o += 4) dv.setFloat32(o, (axis + 1) * i * 0.5, true);
  for (let i = 0; i < points; i++) raw[o++] = i * 7;
  o += 3 * points;
  for (let i = 0; i < points; i++, o += 2) dv.setUint16(o, i % 32, true);
  const compressed = lzfLiterals(raw);
  const sizes = new Uint8Array(8);
  new DataView(sizes.buffer).setUint32(0, compressed.length, true);
  new DataView(sizes.buffer).setUint32(4, raw.length, true);
  return concat(enc.encode(header), sizes, compressed);
}

/** Mixed types and counts in ascii: F8, I2 with COUNT 2, U4. */
function mixedAsciiPcd(): Uint8Array {
  const lines = ['# mixed', 'VERSION .7', 'FIELDS x y z normal intensity', 'SIZE 8 8 8 2 4', 'TYPE F F F I U', 'COUNT 1 1 1 2 1', 'WIDTH 3', 'HEIGHT 1', 'POINTS 3', 'DATA ascii'];
  lines.push('1.5 -2 3e1 -7 8 100', '0 0 0 0 0 0', 'nan 1 2 3 4 5');
  return enc.encode(lines.join('\n') + '\n');
}

function pcdBases(): { name: string; bytes: Uint8Array }[] {
  const random = seededRandom(7);
  const xyzi = Float32Array.from({ length: 4 * 12 }, (_, i) => (i % 4 === 3 ? random() : (random() - 0.5) * 80));
  return [
    { name: 'ascii rgb', bytes: encodePcd(xyzi, { data: 'ascii', intensity: 'rgb' }) },
    { name: 'binary float', bytes: encodePcd(xyzi, { data: 'binary', intensity: 'float' }) },
    { name: 'binary_compressed', bytes: binaryCompressedPcd(10) },
    { name: 'ascii mixed', bytes: mixedAsciiPcd() },
  ];
}

function headerEnd(bytes: Uint8Array): number {
  const text = dec.decode(bytes.subarray(0, Math.min(bytes.length, 4096)));
  const m = /^DATA[^\n]*\n/m.exec(text);
  return m ? m.index + m[0].length : 0;
}

/** Mutates one header line: a token replaced, the line deleted, repeated, or moved after DATA. */
function mutatePcdHeader(bytes: Uint8Array, random: Random): { bytes: Uint8Array; op: string } {
  const end = headerEnd(bytes);
  const lines = dec.decode(bytes.subarray(0, end)).split('\n').slice(0, -1);
  const body = bytes.subarray(end);
  const k = int(random, lines.length);
  const tokens = lines[k]!.split(' ');
  let op: string;
  switch (int(random, 5)) {
    case 0:
    case 1: {
      const t = 1 + int(random, Math.max(1, tokens.length - 1));
      const token = pick(random, TOKENS);
      op = `header line ${JSON.stringify(lines[k])}: token ${t} → ${JSON.stringify(token)}`;
      tokens[t] = token;
      lines[k] = tokens.join(' ');
      break;
    }
    case 2:
      op = `delete header line ${JSON.stringify(lines[k])}`;
      lines.splice(k, 1);
      break;
    case 3:
      op = `repeat header line ${JSON.stringify(lines[k])}`;
      lines.splice(k, 0, lines[k]!);
      break;
    default: {
      const token = pick(random, TOKENS);
      op = `header line ${JSON.stringify(lines[k])}: append ${JSON.stringify(token)}`;
      lines[k] += ` ${token}`;
    }
  }
  return { bytes: concat(enc.encode(lines.map((l) => `${l}\n`).join('')), body), op };
}

/** The compressed-size header of a binary_compressed file set to values a corrupt file may hold. */
function mutateCompressedSizes(bytes: Uint8Array, random: Random): { bytes: Uint8Array; op: string } {
  const end = headerEnd(bytes);
  const b = bytes.slice();
  const dv = new DataView(b.buffer, end, 8);
  const values = [0, 1, 8, 0xffffffff, 0x7fffffff, dv.getUint32(0, true) - 1, dv.getUint32(4, true) + 1, int(random, 2 ** 32)];
  const which = int(random, 2);
  const v = pick(random, values) >>> 0;
  dv.setUint32(which * 4, v, true);
  return { bytes: b, op: `${which === 0 ? 'compressed' : 'uncompressed'} size → ${v}` };
}

function checkCloud(pc: ReturnType<typeof parsePcd>, path: string): void {
  for (const [name, col] of pc.columns) if (col.length !== pc.points) throw new Error(`invariant: column ${name} has ${col.length} values for ${pc.points} points`);
  if (pc.columns.has('x') && pc.columns.has('y') && pc.columns.has('z')) {
    const xyzi = pointCloudToXyzi(pc, path);
    if (xyzi.length % 4 !== 0) throw new Error('invariant: xyzi not a multiple of 4');
    for (let i = 0; i < xyzi.length; i++) if (i % 4 !== 3 && !Number.isFinite(xyzi[i]!)) throw new Error(`invariant: non-finite coordinate ${xyzi[i]} kept at ${i}`);
  }
}

function pcdCases(seed: number, count: number): FuzzCaseSet {
  const random = seededRandom(seed);
  const bases = pcdBases();
  const path = '/fuzz/cloud.pcd';
  function* gen(): Generator<FuzzCase> {
    // The unmutated bases must parse: otherwise every case would only test the error path.
    for (const b of bases) yield { description: `${b.name} unmutated`, pathPrefix: path, run: () => checkCloud(parsePcd(b.bytes, path), path) };
    // Headers that once made the reader loop over a billion elements (a COUNT in the billions, even for no points).
    for (const data of ['ascii', 'binary', 'binary_compressed']) {
      for (const width of [0, 1]) {
        const bytes = enc.encode(`FIELDS x y z i\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1000000000\nWIDTH ${width}\nDATA ${data}\n1 2 3 4\n`);
        yield { description: `${data}, WIDTH ${width}, COUNT 1e9`, pathPrefix: path, run: () => checkCloud(parsePcd(bytes, path), path) };
      }
    }
    for (let i = 0; i < count; i++) {
      const base = pick(random, bases);
      const r = int(random, 10);
      const m = r < 4 ? mutatePcdHeader(base.bytes, random)
        : r < 5 && base.name === 'binary_compressed' ? mutateCompressedSizes(base.bytes, random)
        : r < 9 ? mutateBytes(base.bytes, random)
        : mutateBytes(mutatePcdHeader(base.bytes, random).bytes, random);
      yield { description: `${base.name}: ${m.op}`, pathPrefix: path, run: () => checkCloud(parsePcd(m.bytes, path), path) };
    }
  }
  return { cases: gen(), cleanup: () => {} };
}

// ----------------------------------------------------------------------------------------------- OPV2V yaml

const YAML_ATTACKS: { name: string; text: () => string }[] = [
  { name: 'nesting bomb', text: () => `lidar_pose: ${'['.repeat(20_000)}${']'.repeat(20_000)}\nvehicles: {}\n` },
  {
    name: 'alias bomb',
    text: () => {
      let s = 'a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n';
      for (let k = 1; k < 12; k++) s += `a${k}: &a${k} [${Array(10).fill(`*a${k - 1}`).join(', ')}]\n`;
      return `${s}lidar_pose: *a11\nvehicles: {}\n`;
    },
  },
  { name: 'unknown tags', text: () => 'lidar_pose: !!binary aGVsbG8=\nvehicles: !!js/function "function () {}"\n' },
  { name: 'tab indentation', text: () => 'lidar_pose:\n\t- 1\n\t- 2\nvehicles: {}\n' },
  { name: 'infinite pose', text: () => 'lidar_pose: [.inf, 0, 0, 0, 0, 0]\nvehicles: {}\n' },
  { name: 'nan box', text: () => 'lidar_pose: [0, 0, 0, 0, 0, 0]\nvehicles:\n  7: {angle: [0, .nan, 0], center: [0, 0, 0], extent: [1, 1, 1], location: [0, 0, 0]}\n' },
  { name: 'huge pose', text: () => 'lidar_pose: [1e308, 1e308, 0, 0, 0, 0]\nvehicles:\n  7: {angle: [0, 0, 0], center: [1e308, 0, 0], extent: [1e308, 1, 1], location: [1e308, 0, 0]}\n' },
  { name: 'duplicate keys', text: () => 'lidar_pose: [0, 0, 0, 0, 0, 0]\nlidar_pose: [1, 0, 0, 0, 0, 0]\nvehicles: {}\n' },
  { name: 'several documents', text: () => 'lidar_pose: [0, 0, 0, 0, 0, 0]\nvehicles: {}\n---\nlidar_pose: 1\n' },
  { name: 'NUL and BOM', text: () => '\ufefflidar_pose: [0, 0, 0, 0, 0, 0]\u0000\nvehicles: {}\n' },
  { name: 'long line', text: () => `lidar_pose: [${Array(200_000).fill('1').join(',')}]\nvehicles: {}\n` },
  { name: 'prototype keys', text: () => 'lidar_pose: [0, 0, 0, 0, 0, 0]\n__proto__: {vehicles: 1}\nvehicles:\n  __proto__: {angle: 1}\n' },
];

/** Non-finite values in what the reader returns are silent corruption: refuse them or keep them out. */
function checkFrameRecord(r: ReturnType<typeof parseOpv2vFrameYaml>): void {
  const finite = (v: ArrayLike<number>, what: string) => {
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) throw new Error(`invariant: ${what} holds ${v[i]}`);
  };
  finite(r.lidarToWorld, 'lidarToWorld');
  if (r.noisyLidarToWorld) finite(r.noisyLidarToWorld, 'noisyLidarToWorld');
  for (const b of r.boxes) finite(Object.values(b.box), `box ${b.id}`);
  for (const c of r.cameras) (finite(c.intrinsic, `${c.name} intrinsic`), finite(c.cameraToLidar, `${c.name} cameraToLidar`));
}

function opv2vCases(seed: number, count: number): FuzzCaseSet {
  const random = seededRandom(seed);
  const file = join(REPO, 'datasets/fixture/fixture-s1/100/000028.yaml');
  const base = readFileSync(file, 'utf8');
  const doc = parseYaml(base) as unknown;
  const path = '/fuzz/100/000028.yaml';
  const run = (text: string) => () => checkFrameRecord(parseOpv2vFrameYaml(text, path));
  function* gen(): Generator<FuzzCase> {
    yield { description: 'unmutated', pathPrefix: path, run: run(base) };
    for (const a of YAML_ATTACKS) yield { description: a.name, pathPrefix: path, run: run(a.text()) };
    for (let i = 0; i < count; i++) {
      const r = int(random, 3);
      if (r === 0) {
        const m = mutateTree(doc, random);
        yield { description: `tree: ${m.op}`, pathPrefix: path, run: run(stringifyYaml(m.doc)) };
      } else if (r === 1) {
        const m = mutateNumber(base, random);
        yield { description: `text: ${m.op}`, pathPrefix: path, run: run(m.text) };
      } else {
        const m = mutateBytes(enc.encode(base), random);
        yield { description: `bytes: ${m.op}`, pathPrefix: path, run: run(new TextDecoder().decode(m.bytes)) };
      }
    }
  }
  return { cases: gen(), cleanup: () => {} };
}

// --------------------------------------------------------------------------------------------- DAIR json

const rigid = (t: number[]) => ({ rotation: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], translation: [[t[0]], [t[1]], [t[2]]] });
const dims = { h: '1.5', w: '1.8', l: '4.2' };

/** A one-pair DAIR-V2X-C tree with every json file the reader opens (no images: cameras are left out). */
function dairTree(): Record<string, string | Uint8Array> {
  const xyzi = Float32Array.from({ length: 4 * 6 }, (_, i) => (i % 4 === 3 ? 0.5 : i));
  const worldCorners = [[5, 1, 0], [5, -1, 0], [1, -1, 0], [1, 1, 0], [5, 1, 1.5], [5, -1, 1.5], [1, -1, 1.5], [1, 1, 1.5]];
  return {
    'cooperative/data_info.json': JSON.stringify([{
      vehicle_pointcloud_path: 'vehicle-side/velodyne/000001.pcd', vehicle_image_path: 'vehicle-side/image/000001.jpg',
      infrastructure_pointcloud_path: 'infrastructure-side/velodyne/000002.pcd', infrastructure_image_path: 'infrastructure-side/image/000002.jpg',
      cooperative_label_path: 'cooperative/label_world/000001.json', system_error_offset: { delta_x: 0.5, delta_y: '-0.3' },
    }]),
    'vehicle-side/data_info.json': JSON.stringify([{
      pointcloud_path: 'velodyne/000001.pcd', pointcloud_timestamp: '1626155123000000', image_path: 'image/000001.jpg', image_timestamp: '1626155123000000',
      calib_novatel_to_world_path: 'calib/novatel_to_world/000001.json', calib_lidar_to_novatel_path: 'calib/lidar_to_novatel/000001.json',
      calib_lidar_to_camera_path: 'calib/lidar_to_camera/000001.json', calib_camera_intrinsic_path: 'calib/camera_intrinsic/000001.json',
      label_lidar_std_path: 'label/lidar/000001.json',
    }]),
    'infrastructure-side/data_info.json': JSON.stringify([{
      pointcloud_path: 'velodyne/000002.pcd', pointcloud_timestamp: 1626155123010000, image_path: 'image/000002.jpg', image_timestamp: '1626155123010000',
      calib_virtuallidar_to_world_path: 'calib/virtuallidar_to_world/000002.json', calib_virtuallidar_to_camera_path: 'calib/virtuallidar_to_camera/000002.json',
      calib_camera_intrinsic_path: 'calib/camera_intrinsic/000002.json', label_lidar_std_path: 'label/virtuallidar/000002.json',
    }]),
    'cooperative/label_world/000001.json': JSON.stringify([{ type: 'car', id: 3, '3d_dimensions': dims, '3d_location': { x: 3, y: 0, z: 0.75 }, world_8_points: worldCorners }]),
    'vehicle-side/calib/novatel_to_world/000001.json': JSON.stringify(rigid([100, 200, 0])),
    'vehicle-side/calib/lidar_to_novatel/000001.json': JSON.stringify({ transform: { rotation: [[1, 0, 0], [0, 1, 0], [0, 0, 1]], translation: [0, 0, 1.8] } }),
    'vehicle-side/calib/lidar_to_camera/000001.json': JSON.stringify(rigid([0, 0.5, 0])),
    'vehicle-side/calib/camera_intrinsic/000001.json': JSON.stringify({ cam_K: [1000, 0, 960, 0, 1000, 540, 0, 0, 1], cam_D: [0, 0, 0, 0, 0] }),
    'vehicle-side/label/lidar/000001.json': JSON.stringify([{ type: 'Car', track_id: '1', '3d_dimensions': dims, '3d_location': { x: '10', y: '2', z: '-1' }, rotation: '0.3' }]),
    'infrastructure-side/calib/virtuallidar_to_world/000002.json': JSON.stringify(rigid([120, 190, 5])),
    'infrastructure-side/calib/virtuallidar_to_camera/000002.json': JSON.stringify(rigid([0, 0, 0])),
    'infrastructure-side/calib/camera_intrinsic/000002.json': JSON.stringify({ cam_K: [1000, 0, 960, 0, 1000, 540, 0, 0, 1], width: 1920, height: 1080 }),
    'infrastructure-side/label/virtuallidar/000002.json': JSON.stringify([{ type: 'Pedestrian', id: 9, '3d_dimensions': { h: 1.7, w: 0.6, l: 0.6 }, '3d_location': { x: 20, y: -4, z: -5 }, rotation: -1.2 }]),
    'vehicle-side/velodyne/000001.pcd': encodePcd(xyzi, { data: 'binary', intensity: 'float' }),
    'infrastructure-side/velodyne/000002.pcd': encodePcd(xyzi, { data: 'ascii', intensity: 'rgb' }),
  };
}

const JSON_ATTACKS: { name: string; text: () => string }[] = [
  { name: 'nesting bomb', text: () => `${'['.repeat(200_000)}${']'.repeat(200_000)}` },
  { name: 'huge number', text: () => '[{"type": "car", "3d_dimensions": {"h": 1e400, "w": "1e999", "l": 1}, "3d_location": {"x": 0, "y": 0, "z": 0}, "rotation": 0}]' },
  { name: 'BOM', text: () => '\ufeff[]' },
  { name: 'empty', text: () => '' },
  { name: 'prototype keys', text: () => '{"__proto__": {"rotation": 1}, "constructor": 2}' },
];

async function readDairFrame(root: string): Promise<void> {
  const ds = await openDairV2XC(root);
  const seq = ds.scenarios[0]!;
  for (let i = 0; i < seq.frameCount; i++) {
    const frame = await seq.frame(i);
    for (const a of frame.agents) {
      for (const v of a.lidarToWorld) if (!Number.isFinite(v)) throw new Error(`invariant: ${a.agentId} lidarToWorld holds ${v}`);
      for (const b of a.boxes) for (const v of Object.values(b.box)) if (!Number.isFinite(v)) throw new Error(`invariant: ${a.agentId} box ${b.id} holds ${v}`);
      const points = await a.loadPoints();
      if (points.length % 4 !== 0) throw new Error('invariant: points not xyzi');
    }
    for (const b of frame.cooperativeBoxes ?? []) for (const v of Object.values(b.box)) if (!Number.isFinite(v)) throw new Error(`invariant: cooperative box ${b.id} holds ${v}`);
  }
}

function dairCases(seed: number, count: number): FuzzCaseSet {
  const random = seededRandom(seed);
  const root = mkdtempSync(join(tmpdir(), 'v2xfuse-dair-fuzz-'));
  const files = dairTree();
  const write = (rel: string, content: string | Uint8Array) => {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), content);
  };
  for (const [rel, content] of Object.entries(files)) write(rel, content);
  const jsonFiles = Object.keys(files).filter((f) => f.endsWith('.json'));
  const withFile = (rel: string, content: string | Uint8Array, description: string): FuzzCase => ({
    description: `${rel}: ${description}`,
    pathPrefix: root,
    async run() {
      write(rel, content);
      try {
        await readDairFrame(root);
      } finally {
        write(rel, files[rel]!);
      }
    },
  });
  function* gen(): Generator<FuzzCase> {
    yield { description: 'unmutated', pathPrefix: root, run: () => readDairFrame(root) };
    for (const a of JSON_ATTACKS) yield withFile(pick(random, jsonFiles), a.text(), a.name);
    for (let i = 0; i < count; i++) {
      const rel = int(random, 12) === 0 ? pick(random, Object.keys(files).filter((f) => f.endsWith('.pcd'))) : pick(random, jsonFiles);
      const original = files[rel]!;
      const r = int(random, 3);
      if (rel.endsWith('.pcd') || r === 0) {
        const m = mutateBytes(typeof original === 'string' ? enc.encode(original) : original, random);
        yield withFile(rel, m.bytes, `bytes: ${m.op}`);
      } else if (r === 1) {
        const m = mutateTree(JSON.parse(original as string), random);
        yield withFile(rel, JSON.stringify(m.doc) ?? 'null', `tree: ${m.op}`);
      } else {
        const m = mutateNumber(original as string, random);
        yield withFile(rel, m.text, `text: ${m.op}`);
      }
    }
  }
  return { cases: gen(), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export function fuzzCases(suite: 'pcd' | 'opv2v' | 'dair', seed: number, count: number): FuzzCaseSet {
  if (suite === 'pcd') return pcdCases(seed, count);
  if (suite === 'opv2v') return opv2vCases(seed, count);
  return dairCases(seed, count);
}
