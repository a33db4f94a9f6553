// PCD (Point Cloud Library) codec: the container DAIR-V2X and OPV2V store their LiDAR sweeps in.
// Reads DATA ascii, binary and binary_compressed (LZF) with any mix of field SIZE/TYPE/COUNT; writes
// ascii and binary. Pure functions on bytes, plus thin file-reading wrappers at the end.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { DatasetFormatError } from './errors.ts';

export interface PcdField {
  name: string;
  size: number;
  type: 'F' | 'U' | 'I';
  count: number;
}

export interface PointCloud {
  fields: PcdField[];
  width: number;
  height: number;
  points: number;
  viewpoint: number[];
  /** How the data section was stored. */
  data: 'ascii' | 'binary' | 'binary_compressed';
  /** One column per field element: `name` for the first element, `name_1`, `name_2`, ... for COUNT > 1.
   * Padding fields named `_` (PCL's convention) get no column. */
  columns: Map<string, Float64Array>;
  /**
   * The stored bits of a packed colour (`rgb` / `rgba`, TYPE F, SIZE 4) read from binary data: its float64 column
   * cannot hold them all, since a bit pattern that is a signalling NaN (alpha 255, as PCL writes it, with a red of
   * 128–191) comes back quieted. ASCII data has no bits to keep.
   */
  colourBits?: Map<string, Uint32Array>;
}

type DataEncoding = 'ascii' | 'binary' | 'binary_compressed';

interface PcdHeader {
  fields: PcdField[];
  width: number;
  height: number;
  points: number;
  viewpoint: number[];
  data: DataEncoding;
  /** Byte offset of the first data byte (just past the DATA line). */
  dataStart: number;
}

const DEFAULT_VIEWPOINT = [0, 0, 0, 1, 0, 0, 0];
// A header longer than this without a DATA line is not a PCD file (real headers are ~200 bytes).
const MAX_HEADER_BYTES = 64 * 1024;
// Values per point (the sum of COUNT). PCL's widest descriptors hold a few thousand (ShapeContext1980); a COUNT
// in the millions is a damaged header, and decoding it would loop over every element even for zero points.
const MAX_VALUES_PER_POINT = 65_536;

function parseHeader(buf: Uint8Array, path: string): PcdHeader {
  const entries = new Map<string, string[]>();
  let lineStart = 0;
  let data: DataEncoding | undefined;
  let dataStart = -1;
  const limit = Math.min(buf.length, MAX_HEADER_BYTES);
  while (lineStart < limit) {
    let lineEnd = lineStart;
    while (lineEnd < limit && buf[lineEnd] !== 0x0a) lineEnd++;
    let text = latin1(buf, lineStart, lineEnd);
    const next = lineEnd + 1;
    const hash = text.indexOf('#');
    if (hash >= 0) text = text.slice(0, hash);
    const tokens = text.trim().split(/\s+/).filter((t) => t.length > 0);
    lineStart = next;
    if (tokens.length === 0) continue;
    const key = tokens[0]!.toUpperCase();
    if (key === 'DATA') {
      const kind = tokens[1]?.toLowerCase();
      if (kind !== 'ascii' && kind !== 'binary' && kind !== 'binary_compressed') {
        throw new DatasetFormatError(path, 'DATA', `unsupported data encoding "${tokens[1] ?? ''}" (expected ascii, binary or binary_compressed)`);
      }
      data = kind;
      dataStart = Math.min(next, buf.length);
      break;
    }
    // Very old PCD files say COLUMNS instead of FIELDS.
    entries.set(key === 'COLUMNS' ? 'FIELDS' : key, tokens.slice(1));
  }
  if (data === undefined) {
    throw new DatasetFormatError(path, 'DATA', 'no DATA line in the header (not a PCD file, or truncated header)');
  }

  const names = entries.get('FIELDS');
  if (!names || names.length === 0) throw new DatasetFormatError(path, 'FIELDS', 'missing or empty');
  const sizes = requireList(entries, 'SIZE', names.length, path);
  const types = requireList(entries, 'TYPE', names.length, path);
  const counts = entries.has('COUNT') ? requireList(entries, 'COUNT', names.length, path) : names.map(() => '1');

  const fields: PcdField[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (name !== '_' && seen.has(name)) throw new DatasetFormatError(path, 'FIELDS', `field "${name}" appears twice`);
    seen.add(name);
    const type = types[i]!.toUpperCase();
    if (type !== 'F' && type !== 'U' && type !== 'I') {
      throw new DatasetFormatError(path, 'TYPE', `field "${name}": type "${types[i]}" (expected F, U or I)`);
    }
    const size = parsePositiveInt(sizes[i]!, path, 'SIZE', name);
    const valid = type === 'F' ? size === 4 || size === 8 : size === 1 || size === 2 || size === 4 || size === 8;
    if (!valid) throw new DatasetFormatError(path, 'SIZE', `field "${name}": size ${size} is not supported for type ${type}`);
    const count = parsePositiveInt(counts[i]!, path, 'COUNT', name);
    fields.push({ name, size, type, count });
  }
  const values = fields.reduce((s, f) => s + f.count, 0);
  if (values > MAX_VALUES_PER_POINT) throw new DatasetFormatError(path, 'COUNT', `${values} values per point (more than ${MAX_VALUES_PER_POINT}: a damaged header)`);

  const width = parseNonNegativeInt(requireSingle(entries, 'WIDTH', path), path, 'WIDTH');
  const height = entries.has('HEIGHT') ? parseNonNegativeInt(requireSingle(entries, 'HEIGHT', path), path, 'HEIGHT') : 1;
  const points = entries.has('POINTS') ? parseNonNegativeInt(requireSingle(entries, 'POINTS', path), path, 'POINTS') : width * height;
  if (points !== width * height) {
    throw new DatasetFormatError(path, 'POINTS', `${points} points but WIDTH*HEIGHT = ${width}*${height} = ${width * height}`);
  }
  let viewpoint = DEFAULT_VIEWPOINT.slice();
  const vp = entries.get('VIEWPOINT');
  if (vp) {
    viewpoint = vp.map(Number);
    if (viewpoint.length !== 7 || viewpoint.some((v) => !Number.isFinite(v))) {
      throw new DatasetFormatError(path, 'VIEWPOINT', `expected 7 numbers, got "${vp.join(' ')}"`);
    }
  }
  return { fields, width, height, points, viewpoint, data, dataStart };
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  let s = '';
  for (let i = start; i < end; i++) s += String.fromCharCode(buf[i]!);
  return s;
}

function requireList(entries: Map<string, string[]>, key: string, n: number, path: string): string[] {
  const list = entries.get(key);
  if (!list) throw new DatasetFormatError(path, key, 'missing from the header');
  if (list.length !== n) throw new DatasetFormatError(path, key, `${list.length} entries for ${n} FIELDS`);
  return list;
}

function requireSingle(entries: Map<string, string[]>, key: string, path: string): string {
  const list = entries.get(key);
  if (!list || list.length !== 1) throw new DatasetFormatError(path, key, list ? `expected one value, got "${list.join(' ')}"` : 'missing from the header');
  return list[0]!;
}

function parsePositiveInt(text: string, path: string, key: string, field: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new DatasetFormatError(path, key, `field "${field}": "${text}" is not a positive integer`);
  return v;
}

function parseNonNegativeInt(text: string, path: string, key: string): number {
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < 0) throw new DatasetFormatError(path, key, `"${text}" is not a non-negative integer`);
  return v;
}

/** Column names in field order; null marks PCL padding ('_') elements that get no column. */
function columnNames(fields: PcdField[]): (string | null)[] {
  const names: (string | null)[] = [];
  for (const f of fields) {
    for (let k = 0; k < f.count; k++) names.push(f.name === '_' ? null : k === 0 ? f.name : `${f.name}_${k}`);
  }
  return names;
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Copies n scalars of one type, `stride` bytes apart starting at `offset` of `bytes`, into `out`.
 * When the scalars are aligned (and the host is little-endian, as PCD data is) a typed-array view reads
 * them directly, several times faster than DataView; otherwise DataView handles any alignment.
 */
function copyStrided(bytes: Uint8Array, offset: number, stride: number, n: number, field: PcdField, out: Float64Array): void {
  if (n === 0) return;
  const { type, size } = field;
  const absolute = bytes.byteOffset + offset;
  if (HOST_IS_LITTLE_ENDIAN && size < 8 && absolute % size === 0 && stride % size === 0) {
    const step = stride / size;
    const length = (n - 1) * step + 1;
    const view =
      type === 'F' ? new Float32Array(bytes.buffer, absolute, length)
      : type === 'U' ? (size === 1 ? new Uint8Array(bytes.buffer, absolute, length) : size === 2 ? new Uint16Array(bytes.buffer, absolute, length) : new Uint32Array(bytes.buffer, absolute, length))
      : size === 1 ? new Int8Array(bytes.buffer, absolute, length) : size === 2 ? new Int16Array(bytes.buffer, absolute, length) : new Int32Array(bytes.buffer, absolute, length);
    if (step === 1) out.set(view);
    else for (let i = 0, j = 0; i < n; i++, j += step) out[i] = view[j]!;
    return;
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let o = offset;
  if (type === 'F' && size === 4) for (let i = 0; i < n; i++, o += stride) out[i] = dv.getFloat32(o, true);
  else if (type === 'F') for (let i = 0; i < n; i++, o += stride) out[i] = dv.getFloat64(o, true);
  else if (type === 'U' && size === 1) for (let i = 0; i < n; i++, o += stride) out[i] = dv.getUint8(o);
  else if (type === 'U' && size === 2) for (let i = 0; i < n; i++, o += stride) out[i] = dv.getUint16(o, true);
  else if (type === 'U' && size === 4) for (let i = 0; i < n; i++, o += stride) out[i] = dv.getUint32(o, true);
  // 64-bit integers beyond 2^53 lose precision in a Float64Array; no LiDAR field we know of needs them.
  else if (type === 'U') for (let i = 0; i < n; i++, o += stride) out[i] = Number(dv.getBigUint64(o, true));
  else if (size === 1) for (let i = 0; i < n; i++, o += stride) out[i] = dv.getInt8(o);
  else if (size === 2) for (let i = 0; i < n; i++, o += stride) out[i] = dv.getInt16(o, true);
  else if (size === 4) for (let i = 0; i < n; i++, o += stride) out[i] = dv.getInt32(o, true);
  else for (let i = 0; i < n; i++, o += stride) out[i] = Number(dv.getBigInt64(o, true));
}

/**
 * `length` bytes from `start`, 8-byte aligned for typed-array views (float64 fields included): a view when they
 * already are, else a copy at offset 0 of its own buffer. (A Buffer's slice() is a view too, whatever its alignment.)
 */
function alignedRecords(buf: Uint8Array, start: number, length: number): Uint8Array {
  if ((buf.byteOffset + start) % 8 === 0) return buf.subarray(start, start + length);
  const out = new Uint8Array(length);
  out.set(buf.subarray(start, start + length));
  return out;
}

const isPackedColour = (f: PcdField): boolean => (f.name === 'rgb' || f.name === 'rgba') && f.type === 'F' && f.size === 4;

/** n little-endian uint32s, `stride` bytes apart from `offset` (a packed colour's bits). */
function bitsStrided(bytes: Uint8Array, offset: number, stride: number, n: number): Uint32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = new Uint32Array(n);
  for (let i = 0, o = offset; i < n; i++, o += stride) out[i] = dv.getUint32(o, true);
  return out;
}

function pointSize(fields: PcdField[]): number {
  let s = 0;
  for (const f of fields) s += f.size * f.count;
  return s;
}

/** Row-major records (DATA binary). */
function decodeBinary(buf: Uint8Array, h: PcdHeader, path: string, colourBits: Map<string, Uint32Array>): Map<string, Float64Array> {
  const stride = pointSize(h.fields);
  const need = stride * h.points;
  const have = buf.length - h.dataStart;
  // Trailing bytes are tolerated: PCL pads files it writes through mmap.
  if (have < need) {
    throw new DatasetFormatError(path, 'DATA', `binary data truncated: ${have} bytes for ${h.points} points of ${stride} bytes (${need} needed)`);
  }
  // Aligned records put aligned fields on typed-array boundaries (the header's length is arbitrary); a copy costs
  // far less than unaligned reads.
  const records = alignedRecords(buf, h.dataStart, need);
  const columns = new Map<string, Float64Array>();
  let fieldOffset = 0;
  for (const f of h.fields) {
    for (let k = 0; k < f.count; k++) {
      if (f.name !== '_') {
        const out = new Float64Array(h.points);
        copyStrided(records, fieldOffset + k * f.size, stride, h.points, f, out);
        columns.set(k === 0 ? f.name : `${f.name}_${k}`, out);
        if (k === 0 && isPackedColour(f)) colourBits.set(f.name, bitsStrided(records, fieldOffset, stride, h.points));
      }
    }
    fieldOffset += f.size * f.count;
  }
  return columns;
}

/** LZF-compressed, column-major (DATA binary_compressed): each field's values for all points, field after field. */
function decodeBinaryCompressed(buf: Uint8Array, h: PcdHeader, path: string, colourBits: Map<string, Uint32Array>): Map<string, Float64Array> {
  if (buf.length - h.dataStart < 8) {
    throw new DatasetFormatError(path, 'DATA', 'binary_compressed data truncated: no size header (8 bytes)');
  }
  const sizes = new DataView(buf.buffer, buf.byteOffset + h.dataStart, 8);
  const compressedSize = sizes.getUint32(0, true);
  const uncompressedSize = sizes.getUint32(4, true);
  const stride = pointSize(h.fields);
  if (uncompressedSize !== stride * h.points) {
    throw new DatasetFormatError(path, 'DATA', `binary_compressed uncompressed size ${uncompressedSize} != ${h.points} points * ${stride} bytes`);
  }
  const payloadStart = h.dataStart + 8;
  if (payloadStart + compressedSize > buf.length) {
    throw new DatasetFormatError(path, 'DATA', `binary_compressed data truncated: header says ${compressedSize} compressed bytes, file has ${buf.length - payloadStart}`);
  }
  // One LZF back-reference (3 bytes) yields at most 264 bytes: a larger claim is corrupt, and refusing it here
  // avoids allocating gigabytes on a damaged header.
  if (uncompressedSize > compressedSize * 88 + 32) {
    throw new DatasetFormatError(path, 'DATA', `binary_compressed sizes impossible for LZF: ${compressedSize} bytes cannot expand to ${uncompressedSize}`);
  }
  const raw = lzfDecompress(buf.subarray(payloadStart, payloadStart + compressedSize), uncompressedSize, path);
  const columns = new Map<string, Float64Array>();
  let blockStart = 0;
  for (const f of h.fields) {
    const fieldStride = f.size * f.count;
    for (let k = 0; k < f.count; k++) {
      if (f.name !== '_') {
        const out = new Float64Array(h.points);
        copyStrided(raw, blockStart + k * f.size, fieldStride, h.points, f, out);
        columns.set(k === 0 ? f.name : `${f.name}_${k}`, out);
        if (k === 0 && isPackedColour(f)) colourBits.set(f.name, bitsStrided(raw, blockStart, fieldStride, h.points));
      }
    }
    blockStart += fieldStride * h.points;
  }
  return columns;
}

/**
 * liblzf decompression. Each control byte is either a literal run (ctrl < 32: copy ctrl+1 bytes) or a
 * back-reference (length ctrl>>5, plus one extra length byte when that is 7, plus 2; distance from the low
 * 5 bits and the next byte, plus 1). Every read and write is bounds-checked; the output must come out at
 * exactly `outputSize` bytes. The input index strictly increases, so a corrupt stream cannot loop.
 */
export function lzfDecompress(input: Uint8Array, outputSize: number, path = '<buffer>'): Uint8Array {
  const out = new Uint8Array(outputSize);
  const inEnd = input.length;
  let ip = 0;
  let op = 0;
  const corrupt = (what: string): never => {
    throw new DatasetFormatError(path, 'DATA', `corrupt LZF stream at compressed byte ${ip}, output byte ${op}: ${what}`);
  };
  while (ip < inEnd) {
    const ctrl = input[ip++]!;
    if (ctrl < 32) {
      const run = ctrl + 1;
      if (ip + run > inEnd) corrupt(`literal run of ${run} bytes runs past the input end`);
      if (op + run > outputSize) corrupt(`literal run of ${run} bytes overflows the ${outputSize}-byte output`);
      // Runs are at most 32 bytes: a loop beats creating a subarray for out.set.
      for (const end = ip + run; ip < end; ) out[op++] = input[ip++]!;
    } else {
      let len = ctrl >> 5;
      if (len === 7) {
        if (ip >= inEnd) corrupt('back-reference length byte missing');
        len += input[ip++]!;
      }
      len += 2;
      if (ip >= inEnd) corrupt('back-reference distance byte missing');
      const ref = op - ((ctrl & 0x1f) << 8) - 1 - input[ip++]!;
      if (ref < 0) corrupt(`back-reference points ${op - ref} bytes back, before the output start`);
      if (op + len > outputSize) corrupt(`back-reference of ${len} bytes overflows the ${outputSize}-byte output`);
      // Byte by byte: a reference may overlap the bytes it produces (run-length style).
      for (let r = ref, end = op + len; op < end; ) out[op++] = out[r++]!;
    }
  }
  if (op !== outputSize) corrupt(`stream ended after ${op} of ${outputSize} bytes`);
  return out;
}

// Exact powers of ten: a mantissa below 2^53 times or divided by one of these is correctly rounded
// (Clinger's fast path), so the hand parser agrees with Number() bit for bit.
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));
const MAX_FAST_DIGITS = 15;

/** Parses one decimal number from bytes [start, end); NaN when the token is not a number. */
function parseNumberToken(buf: Uint8Array, start: number, end: number): number {
  let i = start;
  let negative = false;
  const first = buf[i];
  if (first === 0x2d || first === 0x2b) {
    negative = first === 0x2d;
    i++;
  }
  let mantissa = 0;
  let digits = 0; // significant digits accumulated
  let sawDigit = false;
  let exp10 = 0;
  let fast = true;
  for (; i < end; i++) {
    const c = buf[i]! - 0x30;
    if (c < 0 || c > 9) break;
    sawDigit = true;
    if (mantissa === 0 && c === 0) continue;
    if (digits < MAX_FAST_DIGITS) {
      mantissa = mantissa * 10 + c;
      digits++;
    } else fast = false;
  }
  if (i < end && buf[i] === 0x2e) {
    i++;
    for (; i < end; i++) {
      const c = buf[i]! - 0x30;
      if (c < 0 || c > 9) break;
      sawDigit = true;
      if (mantissa === 0 && c === 0) {
        exp10--;
        continue;
      }
      if (digits < MAX_FAST_DIGITS) {
        mantissa = mantissa * 10 + c;
        digits++;
        exp10--;
      } else fast = false;
    }
  }
  if (!sawDigit) return slowNumber(buf, start, end);
  if (i < end && (buf[i] === 0x65 || buf[i] === 0x45)) {
    i++;
    let expNegative = false;
    if (buf[i] === 0x2d || buf[i] === 0x2b) {
      expNegative = buf[i] === 0x2d;
      i++;
    }
    let e = 0;
    let expDigits = 0;
    for (; i < end; i++) {
      const c = buf[i]! - 0x30;
      if (c < 0 || c > 9) break;
      if (e < 100000) e = e * 10 + c;
      expDigits++;
    }
    if (expDigits === 0) return NaN;
    exp10 += expNegative ? -e : e;
  }
  if (i !== end) return NaN;
  if (fast) {
    if (mantissa === 0) return negative ? -0 : 0;
    if (exp10 >= 0 && exp10 <= 22) {
      const v = mantissa * POW10[exp10]!;
      return negative ? -v : v;
    }
    if (exp10 < 0 && exp10 >= -22) {
      const v = mantissa / POW10[-exp10]!;
      return negative ? -v : v;
    }
  }
  return Number(latin1(buf, start, end));
}

/** nan / inf spellings that C printf produces (PCL writes non-finite points as "nan"). */
function slowNumber(buf: Uint8Array, start: number, end: number): number {
  const token = latin1(buf, start, end).toLowerCase();
  if (token === 'nan' || token === '-nan' || token === '+nan') return NaN;
  if (token === 'inf' || token === '+inf' || token === 'infinity' || token === '+infinity') return Infinity;
  if (token === '-inf' || token === '-infinity') return -Infinity;
  return NaN;
}

function isNanToken(buf: Uint8Array, start: number, end: number): boolean {
  const token = latin1(buf, start, end).toLowerCase();
  return token === 'nan' || token === '-nan' || token === '+nan';
}

/** DATA ascii: one point per line, values separated by spaces or tabs. */
function decodeAscii(buf: Uint8Array, h: PcdHeader, path: string): Map<string, Float64Array> {
  const names = columnNames(h.fields);
  const perPoint = names.length;
  // Which field each value belongs to, for error messages.
  const fieldOf: string[] = [];
  for (const f of h.fields) for (let k = 0; k < f.count; k++) fieldOf.push(f.name);
  // Each value takes at least one character and one separator: refuse a POINTS the data cannot hold before
  // allocating columns for it.
  const available = buf.length - h.dataStart;
  if (h.points > 0 && available < h.points * perPoint * 2 - 1) {
    throw new DatasetFormatError(path, 'POINTS', `ascii data of ${available} bytes cannot hold the ${h.points} points the header declares`);
  }
  const outs: (Float64Array | null)[] = names.map((n) => (n === null ? null : new Float64Array(h.points)));

  let point = 0;
  let value = 0;
  let i = h.dataStart;
  const end = buf.length;
  while (i < end) {
    const c = buf[i]!;
    if (c === 0x0a) {
      if (value !== 0) {
        if (value !== perPoint) {
          throw new DatasetFormatError(path, fieldOf[value]!, `ascii point ${point}: ${value} values on its line, expected ${perPoint}`);
        }
        point++;
        value = 0;
      }
      i++;
      continue;
    }
    if (c === 0x20 || c === 0x09 || c === 0x0d) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < end) {
      const d = buf[j]!;
      if (d === 0x20 || d === 0x09 || d === 0x0d || d === 0x0a) break;
      j++;
    }
    if (point >= h.points) {
      throw new DatasetFormatError(path, 'POINTS', `ascii data has more than the ${h.points} points the header declares`);
    }
    if (value >= perPoint) {
      throw new DatasetFormatError(path, fieldOf[perPoint - 1]!, `ascii point ${point}: more than ${perPoint} values on its line`);
    }
    const v = parseNumberToken(buf, i, j);
    if (Number.isNaN(v) && !isNanToken(buf, i, j)) {
      throw new DatasetFormatError(path, fieldOf[value]!, `ascii point ${point}: "${latin1(buf, i, Math.min(j, i + 40))}" is not a number`);
    }
    const out = outs[value];
    if (out) out[point] = v;
    value++;
    i = j;
  }
  if (value !== 0) {
    if (value !== perPoint) {
      throw new DatasetFormatError(path, fieldOf[value]!, `ascii point ${point}: ${value} values on its line, expected ${perPoint}`);
    }
    point++;
  }
  if (point !== h.points) {
    throw new DatasetFormatError(path, 'POINTS', `ascii data has ${point} points, header declares ${h.points}`);
  }
  const columns = new Map<string, Float64Array>();
  names.forEach((n, k) => {
    if (n !== null) columns.set(n, outs[k]!);
  });
  return columns;
}

export function parsePcd(buf: Uint8Array, sourcePath = '<buffer>'): PointCloud {
  const h = parseHeader(buf, sourcePath);
  const colourBits = new Map<string, Uint32Array>();
  const columns =
    h.data === 'ascii' ? decodeAscii(buf, h, sourcePath)
    : h.data === 'binary' ? decodeBinary(buf, h, sourcePath, colourBits)
    : decodeBinaryCompressed(buf, h, sourcePath, colourBits);
  return {
    fields: h.fields, width: h.width, height: h.height, points: h.points, viewpoint: h.viewpoint, data: h.data, columns,
    ...(colourBits.size ? { colourBits } : {}),
  };
}

export async function readPcd(path: string): Promise<PointCloud> {
  return parsePcd(await readFile(path), path);
}

// Scratch for reinterpreting a float32's bits (packed rgb).
const bitsF32 = new Float32Array(1);
const bitsU32 = new Uint32Array(bitsF32.buffer);

/**
 * x, y, z, intensity records (stride 4) with intensity in 0..1, dropping points whose x, y or z is not finite.
 * Intensity: an `intensity` field (uint8 scaled by 1/255, other integer types by their full range, floats
 * as stored), else the red byte of a packed `rgb`/`rgba` field (OPV2V), else 0.
 */
export function pointCloudToXyzi(pc: PointCloud, sourcePath = '<point cloud>'): Float32Array {
  const x = pc.columns.get('x');
  const y = pc.columns.get('y');
  const z = pc.columns.get('z');
  for (const [name, col] of [['x', x], ['y', y], ['z', z]] as const) {
    if (!col) throw new DatasetFormatError(sourcePath, name, 'field missing; a LiDAR cloud needs x, y and z');
  }
  const n = pc.points;
  let kept = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isFinite(x![i]!) && Number.isFinite(y![i]!) && Number.isFinite(z![i]!)) kept++;
  }

  const intensityField = pc.fields.find((f) => f.name === 'intensity');
  const rgbField = pc.fields.find((f) => f.name === 'rgb' || f.name === 'rgba');
  let intensity: Float64Array | undefined;
  let scale = 1;
  let packed: PcdField | undefined;
  let storedBits: Uint32Array | undefined;
  if (intensityField) {
    intensity = pc.columns.get('intensity')!;
    const bits = 8 * intensityField.size;
    if (intensityField.type === 'U') scale = 1 / (2 ** bits - 1);
    else if (intensityField.type === 'I') scale = 1 / (2 ** (bits - 1) - 1);
  } else if (rgbField) {
    intensity = pc.columns.get(rgbField.name)!;
    packed = rgbField;
    storedBits = pc.colourBits?.get(rgbField.name);
  }

  const out = new Float32Array(kept * 4);
  let o = 0;
  for (let i = 0; i < n; i++) {
    const px = x![i]!;
    const py = y![i]!;
    const pz = z![i]!;
    if (!Number.isFinite(px) || !Number.isFinite(py) || !Number.isFinite(pz)) continue;
    out[o] = px;
    out[o + 1] = py;
    out[o + 2] = pz;
    let v = 0;
    if (intensity) {
      if (packed) {
        let bits: number;
        if (storedBits) bits = storedBits[i]!;
        else if (packed.type === 'F') {
          // A packed colour is a bit pattern stored as a float: recover the pattern. (Binary data keeps the
          // stored bits above; from ASCII text, or a PointCloud built by hand, a signalling-NaN pattern, alpha 255
          // with a red of 128–191, comes back quieted.)
          bitsF32[0] = intensity[i]!;
          bits = bitsU32[0]!;
        } else bits = intensity[i]! >>> 0;
        v = ((bits >>> 16) & 0xff) / 255;
      } else v = intensity[i]! * scale;
    }
    out[o + 3] = v;
    o += 4;
  }
  return out;
}

/**
 * The x, y, z, intensity records of a PCD file's bytes, as pointCloudToXyzi(parsePcd(buf)) gives them (the same
 * values, bit for bit). DATA binary with 4-byte x, y, z and a 4-byte (or absent) intensity/rgb takes one pass over
 * the records without the per-field float64 columns: this is every sweep OPV2V and the simulator write, and the
 * columns cost an agent 3-4 ms and 6 MB of garbage per 100k-point frame. Everything else goes the general way.
 * (A packed colour is read from its bits, as the general path reads binary data: PointCloud.colourBits.)
 */
export function parsePcdXyzi(buf: Uint8Array, sourcePath = '<buffer>'): Float32Array {
  const h = parseHeader(buf, sourcePath);
  return (h.data === 'binary' && binaryXyzi(buf, h)) || pointCloudToXyzi(parsePcd(buf, sourcePath), sourcePath);
}

export async function readPcdXyzi(path: string): Promise<Float32Array> {
  // Read synchronously: fs.promises.readFile takes a 1.7 MB sweep in 512 kB chunks, each a trip through the thread
  // pool and the event loop, and on a busy machine those trips were most of an agent's 'load' time (p50 6.5 against
  // 2.9 ms, p95 12 against 8, with two CPU hogs beside it). An agent node reads its sweep when it needs it. (With
  // `detect --workers`, a frame's sweeps are now read one after another, ~2–3 ms each, before the first is handed to
  // a worker; the reads had overlapped in the thread pool.)
  return parsePcdXyzi(readFileSync(path), path);
}

/** The single-pass reader of parsePcdXyzi, or undefined for a layout it does not take. */
function binaryXyzi(buf: Uint8Array, h: PcdHeader): Float32Array | undefined {
  if (!HOST_IS_LITTLE_ENDIAN) return undefined;
  // A repeated name makes "the" x (or intensity) ambiguous; the general path settles it its own way.
  if (new Set(h.fields.map((f) => f.name)).size !== h.fields.length) return undefined;
  const stride = pointSize(h.fields);
  if (stride % 4 !== 0) return undefined;
  // Word offsets of the fields read; every field before them must keep them 4-byte aligned (they do: stride % 4).
  const wordOf = new Map<string, { word: number; field: PcdField }>();
  let offset = 0;
  for (const f of h.fields) {
    if (offset % 4 === 0 && f.size === 4 && !wordOf.has(f.name)) wordOf.set(f.name, { word: offset / 4, field: f });
    offset += f.size * f.count;
  }
  const x = wordOf.get('x'), y = wordOf.get('y'), z = wordOf.get('z');
  if (!x || !y || !z || x.field.type !== 'F' || y.field.type !== 'F' || z.field.type !== 'F') return undefined;
  // Intensity as pointCloudToXyzi takes it: an intensity field first, else a packed rgb/rgba.
  const intensityField = h.fields.find((f) => f.name === 'intensity');
  const rgbField = intensityField ? undefined : h.fields.find((f) => f.name === 'rgb' || f.name === 'rgba');
  const source = intensityField ?? rgbField;
  const intensity = source ? wordOf.get(source.name) : undefined;
  if (source && (!intensity || intensity.field !== source)) return undefined;
  const need = stride * h.points;
  if (buf.length - h.dataStart < need) return undefined; // the general path names the truncation
  // Aligned records (a memcpy when the header's length is not a multiple of 8), then word reads.
  const records = alignedRecords(buf, h.dataStart, need);
  const f32 = new Float32Array(records.buffer, records.byteOffset, need / 4);
  const words = stride / 4;
  const n = h.points;
  const out = new Float32Array(n * 4);
  const xw = x.word, yw = y.word, zw = z.word;
  // Intensity: none (0), the red byte of a packed colour's bit pattern whatever TYPE it declares, or a number
  // scaled as pointCloudToXyzi scales it.
  const iw = intensity?.word ?? 0;
  const u32 = new Uint32Array(records.buffer, records.byteOffset, need / 4);
  const t = intensityField?.type;
  const view = t === 'U' ? u32 : t === 'I' ? new Int32Array(records.buffer, records.byteOffset, need / 4) : f32;
  const scale = t === 'U' ? 1 / (2 ** 32 - 1) : t === 'I' ? 1 / (2 ** 31 - 1) : 1;
  const kind = rgbField ? 2 : intensityField ? 1 : 0;
  let kept = 0;
  for (let i = 0, r = 0; i < n; i++, r += words) {
    const px = f32[r + xw], py = f32[r + yw], pz = f32[r + zw];
    if (px - px !== 0 || py - py !== 0 || pz - pz !== 0) continue;
    const o = 4 * kept++;
    out[o] = px; out[o + 1] = py; out[o + 2] = pz;
    out[o + 3] = kind === 2 ? ((u32[r + iw] >>> 16) & 0xff) / 255 : kind === 1 ? view[r + iw] * scale : 0;
  }
  return kept === n ? out : out.slice(0, 4 * kept);
}

export interface EncodePcdOptions {
  data: 'binary' | 'ascii';
  /** 'rgb': FIELDS x y z rgb, intensity in the red byte of a packed float (OPV2V, readable by open3d/OpenCOOD);
   * 'float': FIELDS x y z intensity, all float32. */
  intensity: 'rgb' | 'float';
}

/** The packed-rgb bit pattern for an intensity: red byte = round(clamp(i, 0, 1) * 255), green = blue = 0. */
function intensityToRgbBits(i: number): number {
  const clamped = i > 1 ? 1 : i >= 0 ? i : 0; // NaN → 0
  return Math.round(clamped * 255) << 16;
}

/** Shortest decimal (up to 9 significant digits) that reads back as the same float32. */
function formatFloat32(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (v === 0) return Object.is(v, -0) ? '-0' : '0';
  for (let p = 6; p <= 9; p++) {
    const s = v.toPrecision(p);
    if (Math.fround(Number(s)) === v) return trimZeros(s);
  }
  return trimZeros(v.toPrecision(9));
}

function trimZeros(s: string): string {
  const e = s.indexOf('e');
  let mant = e >= 0 ? s.slice(0, e) : s;
  const exp = e >= 0 ? s.slice(e) : '';
  if (mant.includes('.')) mant = mant.replace(/0+$/, '').replace(/\.$/, '');
  return mant + exp;
}

export function encodePcd(xyzi: Float32Array, opts: EncodePcdOptions): Uint8Array {
  if (xyzi.length % 4 !== 0) throw new RangeError(`encodePcd: xyzi length ${xyzi.length} is not a multiple of 4`);
  const n = xyzi.length / 4;
  const lastField = opts.intensity === 'rgb' ? 'rgb' : 'intensity';
  const header =
    '# .PCD v0.7 - Point Cloud Data file format\n' +
    'VERSION 0.7\n' +
    `FIELDS x y z ${lastField}\n` +
    'SIZE 4 4 4 4\n' +
    'TYPE F F F F\n' +
    'COUNT 1 1 1 1\n' +
    `WIDTH ${n}\n` +
    'HEIGHT 1\n' +
    'VIEWPOINT 0 0 0 1 0 0 0\n' +
    `POINTS ${n}\n` +
    `DATA ${opts.data}\n`;
  const headerBytes = new TextEncoder().encode(header);

  if (opts.data === 'binary') {
    const out = new Uint8Array(headerBytes.length + n * 16);
    out.set(headerBytes, 0);
    const view = new DataView(out.buffer, headerBytes.length, n * 16);
    for (let i = 0, o = 0; i < n; i++, o += 16) {
      view.setFloat32(o, xyzi[4 * i]!, true);
      view.setFloat32(o + 4, xyzi[4 * i + 1]!, true);
      view.setFloat32(o + 8, xyzi[4 * i + 2]!, true);
      if (opts.intensity === 'rgb') view.setUint32(o + 12, intensityToRgbBits(xyzi[4 * i + 3]!), true);
      else view.setFloat32(o + 12, xyzi[4 * i + 3]!, true);
    }
    return out;
  }

  const lines: string[] = new Array(n);
  for (let i = 0; i < n; i++) {
    let last: number;
    if (opts.intensity === 'rgb') {
      bitsU32[0] = intensityToRgbBits(xyzi[4 * i + 3]!);
      last = bitsF32[0]!;
    } else last = xyzi[4 * i + 3]!;
    lines[i] = `${formatFloat32(xyzi[4 * i]!)} ${formatFloat32(xyzi[4 * i + 1]!)} ${formatFloat32(xyzi[4 * i + 2]!)} ${formatFloat32(last)}`;
  }
  const body = new TextEncoder().encode(n > 0 ? lines.join('\n') + '\n' : '');
  const out = new Uint8Array(headerBytes.length + body.length);
  out.set(headerBytes, 0);
  out.set(body, headerBytes.length);
  return out;
}
