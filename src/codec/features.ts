// Feature-map codec: a [C, H, W] float32 BEV map ↔ a payload plus the header fields of the FeatureEncoding proto.
//
// Stages, in this order (spec.ts): select cells → channel reduction → quantise → entropy. The learned reduction is a
// model and runs before this codec (perception's ChannelReducer): for `c<ratio>` specs the map given here is already
// the reduced [C / ratio, H, W] one, and `channels` (FeatureEncoding.channels) is C / ratio.
// Packed layout before the entropy stage:
//   [cell index section]  nothing (all cells), gap varints, or a bitmask (selection.ts), whichever is smallest
//   [values]              channel-major over the N sent cells ([C, N], cells ascending), as quantised:
//                           raw   float32 LE                         exact
//                           fp16  binary16 LE, nearest even          |x − x̂| ≤ 2^-11·|x| (|x| ≥ 2^-14), ≤ 2^-25 below
//                           int8  uint8 q, x̂ = offset + q·scale     |x − x̂| ≤ scale/2, scale = (max − min)/255
//                           int4  4-bit q, two per byte, low first   |x − x̂| ≤ scale/2, scale = (max − min)/15
//   (min, max over the channel's sent values; offset = min, so a ReLU channel's zeros come back exactly zero; each
//   bound holds up to the float32 rounding of x̂ itself, ≤ 2^-24·|x̂|.)
// Cells not sent decode to 0 and are 0 in the returned mask.
import { compress, decompress, payloadCrc32 } from './entropy.ts';
import { CodecError } from './errors.ts';
import { FLOAT16_MAX, float16Table, isNonFiniteHalf, toFloat16Bits } from './float16.ts';
import {
  bitmaskLength,
  deltaVarintLength,
  readBitmask,
  readDeltaVarints,
  selectCells,
  writeBitmask,
  writeDeltaVarints,
} from './selection.ts';
import {
  type CodecCapabilities,
  type FeatureCodecSpec,
  type QuantizationName,
  assertCodecAvailable,
  formatCodecSpec,
  parseCodecSpec,
} from './spec.ts';
import {
  CellIndexCoding,
  type CellIndexCodingValue,
  EntropyCoding,
  type EntropyCodingValue,
  Quantization,
  type QuantizationValue,
  assertLittleEndianHost,
} from './wire.ts';

assertLittleEndianHost();

/** The FeatureEncoding proto's fields (same names as the generated code), enums as their numbers. */
export interface FeatureEncodingHeader {
  /** Canonical codec spec, for people and reports; decoding reads the fields below. */
  spec: string;
  quantization: QuantizationValue;
  cellIndexCoding: CellIndexCodingValue;
  selectedCells: number;
  entropyCoding: EntropyCodingValue;
  entropyLevel: number;
  channels: number;
  height: number;
  width: number;
  /** int8 / int4: one per channel; empty otherwise. */
  channelScale: number[];
  channelOffset: number[];
  /** Payload length before the entropy stage. */
  packedBytes: number;
  /** CRC-32 of the payload as sent. */
  payloadCrc32: number;
}

/**
 * What decodeFeatures accepts: the encoder's header, or a FeatureEncoding as decoded from the wire, whose fields
 * protobufjs types as optional and whose enums may hold any number. Every field is checked before use.
 */
export type FeatureEncodingFields = {
  [K in keyof FeatureEncodingHeader]?: (K extends 'channelScale' | 'channelOffset' ? number[] : K extends 'spec' ? string : number) | null;
};

export interface EncodeFeaturesOptions extends CodecCapabilities {
  /** [H, W] row-major, computed on the sender (e.g. the max detection score per cell). Needed by top/thr stages. */
  confidence?: Float32Array;
  /** [H, W] row-major from the receiver: cells with 0 are never sent (ANDed in before any top-k). */
  request?: Uint8Array;
}

export interface EncodedFeatures {
  payload: Uint8Array;
  header: FeatureEncodingHeader;
  /** Exact payload bytes (the FeatureFrame on the wire adds its header; src/messages gives the message's bytes). */
  bytes: number;
  /** [H, W]: 1 where the cell was sent (what the receiver's decode mask will be). */
  mask: Uint8Array;
}

export interface DecodeFeaturesOptions {
  /** Refuse headers announcing more than this many values (C·H·W); protects against hostile headers. */
  maxValues?: number;
  /** Reused output of C·H·W floats (zeroed here), to avoid a 4 MB allocation per frame. */
  out?: Float32Array;
  /** Reused output of H·W bytes. */
  mask?: Uint8Array;
}

export interface DecodedFeatures {
  /** [C, H, W]; cells not sent are 0. */
  features: Float32Array;
  /** [H, W]; 1 where the cell was sent. */
  mask: Uint8Array;
}

/** 16.7 M values: 16× the shipped model's 64 × 128 × 128 map. */
export const DEFAULT_MAX_FEATURE_VALUES = 1 << 24;

const LEVELS: Record<'int8' | 'int4', number> = { int8: 255, int4: 15 };

const QUANTIZATION_VALUE: Record<QuantizationName, QuantizationValue> = {
  raw: Quantization.FLOAT32,
  fp16: Quantization.FP16,
  int8: Quantization.INT8,
  int4: Quantization.INT4,
};

function valueBytes(quantization: QuantizationValue, values: number): number {
  switch (quantization) {
    case Quantization.FLOAT32:
      return values * 4;
    case Quantization.FP16:
      return values * 2;
    case Quantization.INT8:
      return values;
    case Quantization.INT4:
      return Math.ceil(values / 2);
  }
}

function checkShape(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new CodecError('input', `${name} = ${value}: must be a positive integer`);
}

/**
 * Encodes a [C, H, W] float32 feature map (row-major, W fastest) with a codec spec such as `int8+top10%+deflate`.
 * Throws CodecError: 'spec' for a spec that does not parse, 'unavailable' for `c<ratio>` without that ratio in
 * `options.channelReductionRatios`, 'input' for a wrong length, a non-finite value, a missing confidence map or an fp16 overflow.
 */
export function encodeFeatures(
  features: Float32Array,
  height: number,
  width: number,
  channels: number,
  spec: string | FeatureCodecSpec,
  options: EncodeFeaturesOptions = {},
): EncodedFeatures {
  const parsed = typeof spec === 'string' ? parseCodecSpec(spec) : spec;
  assertCodecAvailable(parsed, options);
  checkShape('height', height);
  checkShape('width', width);
  checkShape('channels', channels);
  const cells = height * width;
  if (features.length !== channels * cells) {
    throw new CodecError('input', `features have ${features.length} values, expected C·H·W = ${channels}·${height}·${width} = ${channels * cells}`);
  }
  const notFinite = (c: number, cell: number, v: number): CodecError =>
    new CodecError('input', `features: channel ${c}, row ${Math.floor(cell / width)}, col ${cell % width} is ${v}: only finite values can be sent`);

  const dense = !parsed.selection && !options.request;
  const indices = dense ? undefined : selectCells(cells, parsed.selection, options.confidence, options.request);
  const sent = indices ? indices.length : cells;
  const selected = indices !== undefined && sent < cells;
  // Only the values that travel must be finite: with a selection they are checked as they are gathered below
  // (a tenth of the map for top10%), otherwise all of them here.
  const affine = parsed.quantization === 'int8' || parsed.quantization === 'int4';
  // int8 / int4 check as they find each channel's range (one pass over the map fewer).
  if (!selected && !affine) {
    for (let i = 0; i < features.length; i++) {
      const v = features[i];
      if (v - v !== 0) throw notFinite(Math.floor(i / cells), i % cells, v);
    }
  }

  let cellIndexCoding: CellIndexCodingValue = CellIndexCoding.ALL_CELLS;
  let indexBytes = 0;
  if (indices && selected) {
    const varintBytes = deltaVarintLength(indices);
    const maskBytes = bitmaskLength(cells);
    cellIndexCoding = varintBytes <= maskBytes ? CellIndexCoding.DELTA_VARINT : CellIndexCoding.BITMASK;
    indexBytes = Math.min(varintBytes, maskBytes);
  }

  // [C, N] values: the map itself when every cell goes, else gathered.
  let values = features;
  if (indices && selected) {
    values = new Float32Array(channels * sent);
    for (let c = 0; c < channels; c++) {
      const src = c * cells;
      const dst = c * sent;
      for (let i = 0; i < sent; i++) {
        const v = features[src + indices[i]];
        if (v - v !== 0) throw notFinite(c, indices[i], v);
        values[dst + i] = v;
      }
    }
  }

  const quantization = QUANTIZATION_VALUE[parsed.quantization];
  const packed = new Uint8Array(indexBytes + valueBytes(quantization, channels * sent));
  if (cellIndexCoding === CellIndexCoding.DELTA_VARINT) writeDeltaVarints(indices as Int32Array, packed, 0);
  else if (cellIndexCoding === CellIndexCoding.BITMASK) writeBitmask(indices as Int32Array, packed, 0);

  const channelScale: number[] = [];
  const channelOffset: number[] = [];
  const at = indexBytes;
  switch (parsed.quantization) {
    case 'raw':
      packed.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength), at);
      break;
    case 'fp16':
      packFloat16(values, packed, at, sent);
      break;
    case 'int8':
    case 'int4':
      packAffine(values, channels, sent, LEVELS[parsed.quantization], packed, at, channelScale, channelOffset, selected ? undefined : (c, i, v) => notFinite(c, i, v));
      break;
  }

  const payload = parsed.entropy ? compress(packed, parsed.entropy, { runLengthOnly: selected }) : packed;
  const mask = new Uint8Array(cells);
  if (indices) for (let i = 0; i < sent; i++) mask[indices[i]] = 1;
  else mask.fill(1);

  const header: FeatureEncodingHeader = {
    spec: formatCodecSpec(parsed),
    quantization,
    cellIndexCoding,
    selectedCells: sent,
    entropyCoding: !parsed.entropy ? EntropyCoding.NONE : parsed.entropy.coder === 'deflate' ? EntropyCoding.DEFLATE : EntropyCoding.BROTLI,
    entropyLevel: parsed.entropy?.level ?? 0,
    channels,
    height,
    width,
    channelScale,
    channelOffset,
    packedBytes: packed.byteLength,
    payloadCrc32: payloadCrc32(payload),
  };
  return { payload, header, bytes: payload.byteLength, mask };
}

function packFloat16(values: Float32Array, out: Uint8Array, at: number, sent: number): void {
  for (let i = 0; i < values.length; i++) {
    const h = toFloat16Bits(values[i]);
    if (isNonFiniteHalf(h)) {
      throw new CodecError('input', `features: channel ${Math.floor(i / sent)} holds ${values[i]}, beyond fp16's ±${FLOAT16_MAX}: use int8 or raw`);
    }
    out[at + 2 * i] = h & 0xff;
    out[at + 2 * i + 1] = h >>> 8;
  }
}

/**
 * Per-channel affine quantisation to `levels` + 1 codes. offset = the channel's min, scale = (max − min) / levels
 * rounded to float32 (what the proto carries, so both ends compute with the same numbers); q = round((x − offset) /
 * scale) clamped to 0..levels. In exact arithmetic |x − (offset + q·scale)| ≤ scale/2: x − offset ∈ [0, max − min]
 * and (max − min) / scale differs from `levels` by at most levels·2^-24, far less than the half step of headroom.
 */
function packAffine(
  values: Float32Array,
  channels: number,
  sent: number,
  levels: number,
  out: Uint8Array,
  at: number,
  channelScale: number[],
  channelOffset: number[],
  /** Given, every value is checked finite (the error for the first that is not, by channel and cell). */
  notFinite?: (channel: number, cell: number, value: number) => Error,
): void {
  const nibbles = levels === 15;
  for (let c = 0; c < channels; c++) {
    const start = c * sent;
    let min = Infinity;
    let max = -Infinity;
    // NaN passes both comparisons, ±Infinity becomes min or max: either way a non-finite value shows in the sum.
    let check = 0;
    for (let i = start; i < start + sent; i++) {
      const v = values[i];
      check += v - v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (notFinite && check !== 0) {
      for (let i = start; i < start + sent; i++) if (values[i] - values[i] !== 0) throw notFinite(c, i - start, values[i]);
    }
    if (sent === 0) min = max = 0;
    const offset = min;
    const scale = max > min ? Math.fround((max - min) / levels) : 0;
    channelOffset.push(offset);
    channelScale.push(scale);
    // Every value is ≥ offset, so q ≥ 0, and rounding is floor(x + 0.5) (half the time of Math.round here); only
    // float rounding can push the largest past `levels`.
    if (nibbles) {
      for (let i = start; i < start + sent; i++) {
        let q = scale === 0 ? 0 : Math.round((values[i] - offset) / scale);
        if (q > levels) q = levels;
        out[at + (i >>> 1)] |= (i & 1) === 0 ? q : q << 4;
      }
    } else if (scale > 0) {
      for (let i = start; i < start + sent; i++) {
        const q = ((values[i] - offset) / scale + 0.5) | 0;
        out[at + i] = q > levels ? levels : q;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

function corrupt(detail: string): CodecError {
  return new CodecError('corrupt', `corrupt feature payload: ${detail}`);
}

function headerInteger(header: FeatureEncodingFields, field: keyof FeatureEncodingHeader, min: number): number {
  const v = header[field] as unknown;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw corrupt(`header ${field} = ${String(v)}: expected an integer ≥ ${min}`);
  return v;
}

function isKnown<T extends number>(table: Record<string, T>, value: unknown): value is T {
  return typeof value === 'number' && (Object.values(table) as number[]).includes(value);
}

/**
 * Decodes a payload with its FeatureEncoding header back into a [C, H, W] map and the [H, W] mask of cells sent.
 * Checks everything it reads (checksum, enums, lengths, index ranges, finiteness) and throws CodecError (kind
 * 'corrupt') naming the first thing wrong; it never reads past the payload and never inflates past packedBytes.
 */
export function decodeFeatures(payload: Uint8Array, header: FeatureEncodingFields, options: DecodeFeaturesOptions = {}): DecodedFeatures {
  const quantization = header.quantization;
  const cellIndexCoding = header.cellIndexCoding;
  const entropyCoding = header.entropyCoding;
  if (!isKnown(Quantization, quantization)) throw corrupt(`header quantization = ${String(quantization)}: unknown`);
  if (!isKnown(CellIndexCoding, cellIndexCoding)) throw corrupt(`header cellIndexCoding = ${String(cellIndexCoding)}: unknown`);
  if (!isKnown(EntropyCoding, entropyCoding)) throw corrupt(`header entropyCoding = ${String(entropyCoding)}: unknown`);
  const channels = headerInteger(header, 'channels', 1);
  const height = headerInteger(header, 'height', 1);
  const width = headerInteger(header, 'width', 1);
  const sent = headerInteger(header, 'selectedCells', 0);
  const packedBytes = headerInteger(header, 'packedBytes', 0);
  const cells = height * width;
  const maxValues = options.maxValues ?? DEFAULT_MAX_FEATURE_VALUES;
  if (channels * cells > maxValues) throw corrupt(`header shape ${channels}×${height}×${width} exceeds the ${maxValues}-value limit`);
  if (sent > cells) throw corrupt(`header selectedCells = ${sent} exceeds the ${cells} cells of the map`);

  const values = channels * sent;
  const expectedValueBytes = valueBytes(quantization, values);
  const indexBytes = packedBytes - expectedValueBytes;
  switch (cellIndexCoding) {
    case CellIndexCoding.ALL_CELLS:
      if (sent !== cells) throw corrupt(`header says all cells but selectedCells = ${sent} of ${cells}`);
      if (indexBytes !== 0) throw corrupt(`header packedBytes = ${packedBytes}, expected ${expectedValueBytes} for ${values} values`);
      break;
    case CellIndexCoding.BITMASK:
      if (indexBytes !== bitmaskLength(cells)) throw corrupt(`header packedBytes = ${packedBytes}, expected ${bitmaskLength(cells) + expectedValueBytes} (bitmask + values)`);
      break;
    case CellIndexCoding.DELTA_VARINT:
      // Each gap is 1..5 varint bytes.
      if (indexBytes < sent || indexBytes > 5 * sent) throw corrupt(`header packedBytes = ${packedBytes} leaves ${indexBytes} bytes for ${sent} cell indices`);
      break;
  }

  const scales = header.channelScale ?? [];
  const offsets = header.channelOffset ?? [];
  const affine = quantization === Quantization.INT8 || quantization === Quantization.INT4;
  if (affine) {
    if (scales.length !== channels || offsets.length !== channels) {
      throw corrupt(`header has ${scales.length} channel scales and ${offsets.length} offsets, expected ${channels} of each`);
    }
    const top = quantization === Quantization.INT8 ? 255 : 15;
    for (let c = 0; c < channels; c++) {
      const s = scales[c];
      const o = offsets[c];
      if (!(s >= 0) || !Number.isFinite(o) || !Number.isFinite(Math.fround(o + top * s))) {
        throw corrupt(`header channel ${c}: scale ${s}, offset ${o} are not finite non-negative numbers`);
      }
    }
  }

  const crc = payloadCrc32(payload);
  const announced = header.payloadCrc32;
  if (typeof announced !== 'number' || crc !== announced >>> 0) {
    throw corrupt(`checksum mismatch (CRC-32 ${hex(crc)}, header says ${typeof announced === 'number' ? hex(announced) : String(announced)}): the payload was damaged in transit`);
  }

  let packed: Uint8Array;
  if (entropyCoding === EntropyCoding.NONE) {
    if (payload.byteLength !== packedBytes) throw corrupt(`${payload.byteLength} payload bytes, the header announces ${packedBytes}`);
    packed = payload;
  } else {
    packed = decompress(payload, entropyCoding === EntropyCoding.DEFLATE ? 'deflate' : 'brotli', packedBytes, 'feature payload');
  }

  const out = options.out ?? new Float32Array(channels * cells);
  if (out.length !== channels * cells) throw new CodecError('input', `options.out has ${out.length} values, the header's map has ${channels * cells}`);
  const mask = options.mask ?? new Uint8Array(cells);
  if (mask.length !== cells) throw new CodecError('input', `options.mask has ${mask.length} values, the header's map has ${cells}`);
  // Every value is written when all cells were sent: only a selection leaves cells to zero.
  if (sent !== cells) out.fill(0);
  mask.fill(0);

  let indices: Int32Array | undefined;
  if (cellIndexCoding === CellIndexCoding.DELTA_VARINT) {
    indices = new Int32Array(sent);
    const end = readDeltaVarints(packed, 0, indexBytes, sent, cells, indices);
    if (end !== indexBytes) throw corrupt(`cell index section: ${indexBytes - end} bytes left after ${sent} indices`);
  } else if (cellIndexCoding === CellIndexCoding.BITMASK) {
    indices = new Int32Array(sent);
    readBitmask(packed, 0, cells, sent, indices);
  }
  if (indices) for (let i = 0; i < sent; i++) mask[indices[i]] = 1;
  else mask.fill(1);

  unpackValues(packed, indexBytes, quantization, channels, sent, cells, indices, scales, offsets, out);
  return { features: out, mask };
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}

function unpackValues(
  packed: Uint8Array,
  at: number,
  quantization: QuantizationValue,
  channels: number,
  sent: number,
  cells: number,
  indices: Int32Array | undefined,
  scales: number[],
  offsets: number[],
  out: Float32Array,
): void {
  if (quantization === Quantization.FLOAT32 && !indices && at === 0) {
    // Dense float32: one copy of the bytes into the (aligned) output.
    new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(packed.subarray(0, out.byteLength));
    for (let i = 0; i < out.length; i++) {
      const v = out[i];
      if (v - v !== 0) throw corrupt(`value ${i} (channel ${Math.floor(i / cells)}) is ${v}`);
    }
    return;
  }
  if (quantization === Quantization.INT8) {
    // The common case (every agent's default codec) in a loop of its own: ~5x faster than the general one below.
    for (let c = 0; c < channels; c++) {
      const from = at + c * sent;
      const dst = c * cells;
      const scale = scales[c];
      const offset = offsets[c];
      if (indices) for (let i = 0; i < sent; i++) out[dst + indices[i]] = offset + packed[from + i] * scale;
      else for (let i = 0; i < sent; i++) out[dst + i] = offset + packed[from + i] * scale;
    }
    return;
  }
  const view = new DataView(packed.buffer, packed.byteOffset, packed.byteLength);
  const half = quantization === Quantization.FP16 ? float16Table() : undefined;
  for (let c = 0; c < channels; c++) {
    const base = c * sent;
    const dst = c * cells;
    const scale = scales[c];
    const offset = offsets[c];
    for (let i = 0; i < sent; i++) {
      const j = base + i;
      let v: number;
      switch (quantization) {
        case Quantization.FLOAT32:
          v = view.getFloat32(at + 4 * j, true);
          if (v - v !== 0) throw corrupt(`value ${j} (channel ${c}) is ${v}`);
          break;
        case Quantization.FP16: {
          const bits = packed[at + 2 * j] | (packed[at + 2 * j + 1] << 8);
          if (isNonFiniteHalf(bits)) throw corrupt(`fp16 value ${j} (channel ${c}) is not finite`);
          v = (half as Float32Array)[bits];
          break;
        }
        case Quantization.INT4: {
          const b = packed[at + (j >>> 1)];
          v = offset + ((j & 1) === 0 ? b & 0x0f : b >>> 4) * scale;
          break;
        }
      }
      out[dst + (indices ? indices[i] : i)] = v;
    }
  }
}
