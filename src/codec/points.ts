// Point-cloud codec for early fusion: x, y, z quantised to a step as int16 offsets from an origin, intensity as
// uint8, then entropy-coded. |x − x̂| ≤ step/2 per coordinate (plus the float32 rounding of x̂, ≤ 2^-24·|x̂|);
// intensity within intensityMax/510 for intensities in [0, intensityMax]. At 1 cm an int16 reaches ±327.67 m from
// the origin, beyond any LiDAR's useful range; points outside it, or with a non-finite field, are dropped and
// counted (droppedPoints), never clamped to a wrong position.
//
// Packed layout (n = pointCount), byte planes so that the entropy coder sees like next to like:
//   for x, y, z in turn: the n low bytes, then the n high bytes, of d_i = q_i − q_(i−1) (q_(−1) = 0) modulo 2^16,
//   where q_i = round((v_i − origin) / step); then n intensity bytes.
// LiDAR drivers emit points in scan order, where neighbours are close: the deltas are small and their high bytes
// mostly 0x00 / 0xff. Measured with 1cm+deflate: an OPV2V sweep (56,474 points) takes 124 kB with deltas, 152 kB
// without; a DAIR-V2X vehicle sweep (62,491 points, in a less regular order) 273 kB with, 262 kB without.
import { compress, decompress, payloadCrc32 } from './entropy.ts';
import { CodecError } from './errors.ts';
import { type PointCodecSpec, formatPointCodecSpec, parsePointCodecSpec } from './spec.ts';
import { EntropyCoding, type EntropyCodingValue } from './wire.ts';

/** The PointCloudEncoding proto's fields (same names as the generated code), enums as their numbers. */
export interface PointCloudEncodingHeader {
  spec: string;
  /** The step as float32 (what the proto carries, and what both ends compute with). */
  stepM: number;
  originX: number;
  originY: number;
  originZ: number;
  pointCount: number;
  intensityMax: number;
  entropyCoding: EntropyCodingValue;
  entropyLevel: number;
  packedBytes: number;
  payloadCrc32: number;
  droppedPoints: number;
}

/** What decodePoints accepts: the encoder's header or a PointCloudEncoding decoded from the wire (checked here). */
export type PointCloudEncodingFields = {
  [K in keyof PointCloudEncodingHeader]?: (K extends 'spec' ? string : number) | null;
};

export interface EncodePointsOptions {
  /** Floats per point record; x, y, z, intensity are the first four. Default 4 (the dataset readers' layout). */
  stride?: number;
  /** Records to encode; default all of `points`. */
  count?: number;
  /** Quantisation origin in the agent frame (metres); default the LiDAR itself. */
  origin?: { x: number; y: number; z: number };
  /** Intensity that maps to 255 (1 for OPV2V and DAIR's 0–1 intensities, 255 for raw uint8 ones). Default 1. */
  intensityMax?: number;
}

export interface EncodedPoints {
  payload: Uint8Array;
  header: PointCloudEncodingHeader;
  /** Exact payload bytes. */
  bytes: number;
  droppedPoints: number;
}

export interface DecodePointsOptions {
  /** Refuse headers announcing more points than this. Default 4,194,304 (a 128-beam LiDAR sends ~240k). */
  maxPoints?: number;
}

export interface DecodedPoints {
  /** x, y, z, intensity per point (stride 4), in the sender's agent frame. */
  points: Float32Array;
  count: number;
}

export const DEFAULT_MAX_POINTS = 1 << 22;
const PACKED_BYTES_PER_POINT = 7;

export function encodePoints(points: Float32Array, spec: string | PointCodecSpec, options: EncodePointsOptions = {}): EncodedPoints {
  const parsed = typeof spec === 'string' ? parsePointCodecSpec(spec) : spec;
  const stride = options.stride ?? 4;
  if (!Number.isInteger(stride) || stride < 4) throw new CodecError('input', `stride = ${stride}: must be an integer ≥ 4 (x, y, z, intensity first)`);
  const count = options.count ?? Math.floor(points.length / stride);
  if (!Number.isInteger(count) || count < 0 || count * stride > points.length) {
    throw new CodecError('input', `count = ${count}: must be an integer in 0..${Math.floor(points.length / stride)} (records of ${stride} floats)`);
  }
  const step = Math.fround(parsed.stepM);
  if (!(step > 0)) throw new CodecError('input', `step ${parsed.stepM} m: must be > 0`);
  const origin = options.origin ?? { x: 0, y: 0, z: 0 };
  if (![origin.x, origin.y, origin.z].every(Number.isFinite)) throw new CodecError('input', `origin (${origin.x}, ${origin.y}, ${origin.z}): must be finite`);
  const intensityMax = Math.fround(options.intensityMax ?? 1);
  if (!(intensityMax > 0 && Number.isFinite(intensityMax))) throw new CodecError('input', `intensityMax = ${options.intensityMax}: must be a finite number > 0`);

  // Quantise the kept points first: the planes' offsets depend on how many survive.
  const qx = new Int16Array(count);
  const qy = new Int16Array(count);
  const qz = new Int16Array(count);
  const qi = new Uint8Array(count);
  let kept = 0;
  for (let p = 0; p < count; p++) {
    const o = p * stride;
    const x = Math.round((points[o] - origin.x) / step);
    const y = Math.round((points[o + 1] - origin.y) / step);
    const z = Math.round((points[o + 2] - origin.z) / step);
    const intensity = points[o + 3];
    // NaN fails every comparison, so non-finite points are dropped here too.
    if (!(x >= -32768 && x <= 32767 && y >= -32768 && y <= 32767 && z >= -32768 && z <= 32767 && intensity - intensity === 0)) continue;
    qx[kept] = x;
    qy[kept] = y;
    qz[kept] = z;
    const ratio = intensity / intensityMax;
    qi[kept] = Math.round((ratio > 1 ? 1 : ratio > 0 ? ratio : 0) * 255);
    kept++;
  }

  const packed = new Uint8Array(PACKED_BYTES_PER_POINT * kept);
  writeDeltaPlanes(qx, kept, packed, 0);
  writeDeltaPlanes(qy, kept, packed, 2 * kept);
  writeDeltaPlanes(qz, kept, packed, 4 * kept);
  packed.set(qi.subarray(0, kept), 6 * kept);

  const payload = parsed.entropy ? compress(packed, parsed.entropy) : packed;
  const header: PointCloudEncodingHeader = {
    spec: formatPointCodecSpec(parsed),
    stepM: step,
    originX: origin.x,
    originY: origin.y,
    originZ: origin.z,
    pointCount: kept,
    intensityMax,
    entropyCoding: !parsed.entropy ? EntropyCoding.NONE : parsed.entropy.coder === 'deflate' ? EntropyCoding.DEFLATE : EntropyCoding.BROTLI,
    entropyLevel: parsed.entropy?.level ?? 0,
    packedBytes: packed.byteLength,
    payloadCrc32: payloadCrc32(payload),
    droppedPoints: count - kept,
  };
  return { payload, header, bytes: payload.byteLength, droppedPoints: count - kept };
}

function writeDeltaPlanes(q: Int16Array, n: number, out: Uint8Array, at: number): void {
  let previous = 0;
  for (let i = 0; i < n; i++) {
    const d = (q[i] - previous) & 0xffff;
    previous = q[i];
    out[at + i] = d & 0xff;
    out[at + n + i] = d >>> 8;
  }
}

function corrupt(detail: string): CodecError {
  return new CodecError('corrupt', `corrupt point-cloud payload: ${detail}`);
}

function finite(header: PointCloudEncodingFields, field: 'stepM' | 'originX' | 'originY' | 'originZ' | 'intensityMax'): number {
  const v = header[field];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw corrupt(`header ${field} = ${String(v)}: expected a finite number`);
  return v;
}

export function decodePoints(payload: Uint8Array, header: PointCloudEncodingFields, options: DecodePointsOptions = {}): DecodedPoints {
  const n = header.pointCount;
  const maxPoints = options.maxPoints ?? DEFAULT_MAX_POINTS;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw corrupt(`header pointCount = ${String(n)}: expected an integer ≥ 0`);
  if (n > maxPoints) throw corrupt(`header pointCount = ${n} exceeds the ${maxPoints}-point limit`);
  const packedBytes = header.packedBytes;
  if (packedBytes !== PACKED_BYTES_PER_POINT * n) throw corrupt(`header packedBytes = ${String(packedBytes)}, expected ${PACKED_BYTES_PER_POINT} × ${n} points`);
  const step = finite(header, 'stepM');
  if (!(step > 0)) throw corrupt(`header stepM = ${step}: expected a step > 0`);
  const originX = finite(header, 'originX');
  const originY = finite(header, 'originY');
  const originZ = finite(header, 'originZ');
  const intensityMax = finite(header, 'intensityMax');
  if (!(intensityMax > 0)) throw corrupt(`header intensityMax = ${intensityMax}: expected a number > 0`);
  const crc = payloadCrc32(payload);
  const announced = header.payloadCrc32;
  if (typeof announced !== 'number' || crc !== announced >>> 0) {
    throw corrupt(`checksum mismatch (CRC-32 0x${crc.toString(16)}, header says ${typeof announced === 'number' ? `0x${(announced >>> 0).toString(16)}` : String(announced)})`);
  }

  let packed: Uint8Array;
  switch (header.entropyCoding) {
    case EntropyCoding.NONE:
      if (payload.byteLength !== packedBytes) throw corrupt(`${payload.byteLength} payload bytes, the header announces ${packedBytes}`);
      packed = payload;
      break;
    case EntropyCoding.DEFLATE:
    case EntropyCoding.BROTLI:
      packed = decompress(payload, header.entropyCoding === EntropyCoding.DEFLATE ? 'deflate' : 'brotli', packedBytes, 'point-cloud payload');
      break;
    default:
      throw corrupt(`header entropyCoding = ${String(header.entropyCoding)}: unknown`);
  }

  const out = new Float32Array(4 * n);
  readDeltaPlanes(packed, n, 0, originX, step, out, 0);
  readDeltaPlanes(packed, n, 2 * n, originY, step, out, 1);
  readDeltaPlanes(packed, n, 4 * n, originZ, step, out, 2);
  const intensityStep = intensityMax / 255;
  for (let i = 0; i < n; i++) out[4 * i + 3] = packed[6 * n + i] * intensityStep;
  return { points: out, count: n };
}

function readDeltaPlanes(packed: Uint8Array, n: number, at: number, origin: number, step: number, out: Float32Array, field: number): void {
  let q = 0;
  for (let i = 0; i < n; i++) {
    const d = packed[at + i] | (packed[at + n + i] << 8);
    // Sum modulo 2^16, read back as int16: the encoder's wrap-around deltas undo exactly.
    q = (((q + d) & 0xffff) << 16) >> 16;
    out[4 * i + field] = origin + q * step;
  }
}
