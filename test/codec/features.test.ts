import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32, deflateSync } from 'node:zlib';
import {
  CellIndexCoding,
  CodecError,
  EntropyCoding,
  type FeatureEncodingHeader,
  Quantization,
  decodeFeatures,
  encodeFeatures,
  parseCodecSpec,
} from '../../src/codec/index.ts';
import { seededRandom, syntheticBev } from './synthetic-bev.ts';

// A small realistic map for the full matrix of combinations (16 × 64 × 64), the shipped model's shape for the
// checks that must hold at scale.
const small = syntheticBev(16, 64, 64, 11);
const full = syntheticBev(64, 128, 128, 5);

function isCodecError(kind: CodecError['kind'], pattern: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof CodecError, `expected a CodecError, got ${String(err)}`);
    assert.equal(err.kind, kind, err.message);
    assert.match(err.message, pattern);
    assert.equal(err.userFacing, true);
    return true;
  };
}

/** The cells a spec must send, computed here independently of the codec's selection code. */
function expectedMask(spec: string, confidence: Float32Array, request: Uint8Array | undefined): Uint8Array {
  const cells = confidence.length;
  const eligible = (i: number) => !request || request[i] !== 0;
  const mask = new Uint8Array(cells);
  const selection = parseCodecSpec(spec).selection;
  if (!selection) {
    for (let i = 0; i < cells; i++) mask[i] = eligible(i) ? 1 : 0;
  } else if (selection.kind === 'threshold') {
    for (let i = 0; i < cells; i++) mask[i] = eligible(i) && confidence[i] > selection.threshold ? 1 : 0;
  } else {
    const k = selection.kind === 'topCount' ? selection.count : Math.ceil((selection.percent / 100) * cells - 1e-9);
    const order = [...Array(cells).keys()].filter(eligible).sort((a, b) => confidence[b] - confidence[a] || a - b);
    for (const i of order.slice(0, k)) mask[i] = 1;
  }
  return mask;
}

/**
 * Checks every value against the bound the codec states for its quantisation, computing each channel's scale
 * from the definition (over the values actually sent) rather than trusting the header.
 */
function assertWithinBounds(spec: string, features: Float32Array, decoded: Float32Array, mask: Uint8Array, channels: number, header: FeatureEncodingHeader): void {
  const cells = mask.length;
  const q = parseCodecSpec(spec).quantization;
  for (let c = 0; c < channels; c++) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < cells; i++) {
      if (!mask[i]) continue;
      const v = features[c * cells + i];
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    const levels = q === 'int8' ? 255 : 15;
    const halfStep = max > min ? (max - min) / levels / 2 : 0;
    if (q === 'int8' || q === 'int4') {
      // The header's scale is that step rounded to float32.
      assert.ok(Math.abs(header.channelScale[c] - 2 * halfStep) <= 2 * halfStep * 2 ** -23, `${spec} channel ${c} scale`);
      assert.equal(header.channelOffset[c], min === Infinity ? 0 : min);
    }
    for (let i = 0; i < cells; i++) {
      const x = features[c * cells + i];
      const y = decoded[c * cells + i];
      if (!mask[i]) {
        assert.equal(y, 0, `${spec}: unsent cell ${i} channel ${c} must decode to 0`);
        continue;
      }
      const err = Math.abs(x - y);
      let bound: number;
      if (q === 'raw') bound = 0;
      else if (q === 'fp16') bound = Math.abs(x) >= 2 ** -14 ? Math.abs(x) * 2 ** -11 : 2 ** -25;
      else bound = halfStep * (1 + 2 ** -20) + Math.abs(y) * 2 ** -24;
      if (err > bound) assert.fail(`${spec}: channel ${c} cell ${i}: |${x} − ${y}| = ${err} > bound ${bound}`);
    }
  }
}

test('every quantisation × selection × entropy combination round-trips within its stated bound', () => {
  const { features, confidence, channels, height, width } = small;
  const request = new Uint8Array(height * width);
  for (let i = 0; i < request.length; i++) request[i] = (i % width) < width / 2 ? 1 : 0; // the receiver wants the left half
  const selections = ['', 'top10%', 'top1%', 'top300', 'thr0.3', 'thr0.9'];
  let combos = 0;
  for (const quantization of ['raw', 'fp16', 'int8', 'int4']) {
    for (const selection of selections) {
      for (const entropy of ['', 'deflate', 'brotli', 'deflate1']) {
        for (const withRequest of [false, true]) {
          if (withRequest && entropy !== 'deflate') continue; // the request map is orthogonal to the entropy stage
          const spec = [quantization, selection, entropy].filter(Boolean).join('+');
          const req = withRequest ? request : undefined;
          const enc = encodeFeatures(features, height, width, channels, spec, { confidence, request: req });
          assert.equal(enc.bytes, enc.payload.byteLength, spec);
          const expected = expectedMask(spec, confidence, req);
          assert.deepEqual(enc.mask, expected, `${spec}: encoder mask`);
          const dec = decodeFeatures(enc.payload, enc.header);
          assert.deepEqual(dec.mask, expected, `${spec}: decoder mask`);
          assert.equal(enc.header.selectedCells, expected.reduce((n, m) => n + m, 0));
          assertWithinBounds(spec, features, dec.features, dec.mask, channels, enc.header);
          combos++;
        }
      }
    }
  }
  assert.equal(combos, 4 * 6 * 4 + 4 * 6);
});

test('full-size 64×128×128 map: dense sizes are exactly C·H·W × bytes per value; errors within bounds', () => {
  const { features, confidence, channels, height, width } = full;
  const values = channels * height * width;
  const expectedBytes: Record<string, number> = { raw: 4 * values, fp16: 2 * values, int8: values, int4: values / 2 };
  for (const spec of ['raw', 'fp16', 'int8', 'int4']) {
    const enc = encodeFeatures(features, height, width, channels, spec);
    assert.equal(enc.bytes, expectedBytes[spec], spec);
    assert.equal(enc.header.cellIndexCoding, CellIndexCoding.ALL_CELLS);
    const dec = decodeFeatures(enc.payload, enc.header);
    assertWithinBounds(spec, features, dec.features, dec.mask, channels, enc.header);
  }
  // raw is bit-exact.
  const raw = decodeFeatures(...encodeArgs(encodeFeatures(features, height, width, channels, 'raw')));
  assert.deepEqual(raw.features, features);
  // The compressed sparse spec of the issue: 10 % of cells as varints or bitmask, int8, deflate.
  const enc = encodeFeatures(features, height, width, channels, 'int8+top10%+deflate', { confidence });
  assert.equal(enc.header.selectedCells, Math.ceil(0.1 * height * width));
  assert.ok(enc.bytes < 0.1 * values, `int8+top10%+deflate: ${enc.bytes} bytes`);
  const dec = decodeFeatures(enc.payload, enc.header);
  assertWithinBounds('int8+top10%+deflate', features, dec.features, dec.mask, channels, enc.header);
});

function encodeArgs(enc: { payload: Uint8Array; header: FeatureEncodingHeader }): [Uint8Array, FeatureEncodingHeader] {
  return [enc.payload, enc.header];
}

test('packed layout by hand: int8 codes, int4 nibbles low first, varint gaps, bitmask bits', () => {
  // One channel of four cells: min 0, max 2.55 → scale float32(0.01); codes 0, 100, 200, 255.
  const int8 = encodeFeatures(new Float32Array([0, 1, 2, 2.55]), 1, 4, 1, 'int8');
  assert.deepEqual([...int8.payload], [0, 100, 200, 255]);
  assert.equal(int8.header.channelScale[0], Math.fround(2.55 / 255));
  assert.equal(int8.header.channelOffset[0], 0);
  assert.equal(int8.header.payloadCrc32, crc32(Uint8Array.from([0, 100, 200, 255])) >>> 0);

  // int4 with min 0, max 15 → scale 1: codes 0, 15, 5, 10 → bytes 0xF0, 0xA5.
  const int4 = encodeFeatures(new Float32Array([0, 15, 5, 10]), 2, 2, 1, 'int4');
  assert.deepEqual([...int4.payload], [0xf0, 0xa5]);

  // 512 cells, top 3 of them by confidence (cells 3, 4 and 300): gaps 3, 0, 295 → 03 00 A7 02, then the values.
  const confidence = new Float32Array(512);
  confidence[3] = 0.9;
  confidence[4] = 0.8;
  confidence[300] = 0.7;
  const features = new Float32Array(512);
  features[3] = 1.5;
  features[300] = -2;
  const sparse = encodeFeatures(features, 16, 32, 1, 'top3', { confidence });
  assert.equal(sparse.header.cellIndexCoding, CellIndexCoding.DELTA_VARINT);
  const expectedValues = new Uint8Array(new Float32Array([1.5, 0, -2]).buffer);
  assert.deepEqual([...sparse.payload], [0x03, 0x00, 0xa7, 0x02, ...expectedValues]);

  // 16 cells, 9 above the threshold: varints take 9 bytes, the bitmask 2, so the bitmask is chosen.
  const dense16 = new Float32Array(16).map((_, i) => (i < 9 ? 0.9 : 0.1));
  const masked = encodeFeatures(new Float32Array(16).fill(1), 4, 4, 1, 'int8+thr0.5', { confidence: dense16 });
  assert.equal(masked.header.cellIndexCoding, CellIndexCoding.BITMASK);
  assert.deepEqual([...masked.payload.subarray(0, 2)], [0xff, 0x01]);
  assert.equal(masked.bytes, 2 + 9);
});

test('header fields say how the payload was made', () => {
  const { features, confidence, channels, height, width } = small;
  const enc = encodeFeatures(features, height, width, channels, 'TOP10%+INT4+BROTLI7', { confidence });
  assert.equal(enc.header.spec, 'int4+top10%+brotli7');
  assert.equal(enc.header.quantization, Quantization.INT4);
  assert.equal(enc.header.entropyCoding, EntropyCoding.BROTLI);
  assert.equal(enc.header.entropyLevel, 7);
  assert.deepEqual([enc.header.channels, enc.header.height, enc.header.width], [channels, height, width]);
  assert.equal(enc.header.channelScale.length, channels);
  const plain = encodeFeatures(features, height, width, channels, 'fp16');
  assert.equal(plain.header.entropyCoding, EntropyCoding.NONE);
  assert.deepEqual(plain.header.channelScale, []);
});

test('top-k ties go to the lower cell index; a request map limits the eligible cells before counting', () => {
  const confidence = new Float32Array([0.5, 0.9, 0.5, 0.5, 0.1, 0.9]);
  const features = new Float32Array(6).fill(1);
  assert.deepEqual([...encodeFeatures(features, 1, 6, 1, 'top3', { confidence }).mask], [1, 1, 0, 0, 0, 1]);
  assert.deepEqual([...encodeFeatures(features, 1, 6, 1, 'top4', { confidence }).mask], [1, 1, 1, 0, 0, 1]);
  const request = Uint8Array.from([0, 0, 1, 1, 1, 1]);
  assert.deepEqual([...encodeFeatures(features, 1, 6, 1, 'top3', { confidence, request }).mask], [0, 0, 1, 1, 0, 1]);
  // No selection stage: the request alone decides.
  assert.deepEqual([...encodeFeatures(features, 1, 6, 1, 'int8', { request }).mask], [0, 0, 1, 1, 1, 1]);
  // Threshold is strict, as Where2comm's `>`.
  assert.deepEqual([...encodeFeatures(features, 1, 6, 1, 'thr0.5', { confidence }).mask], [0, 1, 0, 0, 0, 1]);
  // Nothing passes: a valid, empty message.
  const none = encodeFeatures(features, 1, 6, 1, 'int8+thr0.95+deflate', { confidence });
  assert.equal(none.header.selectedCells, 0);
  const dec = decodeFeatures(none.payload, none.header);
  assert.deepEqual([...dec.features], [0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...dec.mask], [0, 0, 0, 0, 0, 0]);
});

test('constant channels and exact zeros survive int8 / int4 exactly', () => {
  const cells = 8;
  const features = new Float32Array(3 * cells);
  features.fill(0.75, cells, 2 * cells); // channel 1 constant
  for (let i = 0; i < cells; i++) features[2 * cells + i] = i % 2 ? 3.3 : 0; // channel 2: zeros and one level
  for (const spec of ['int8', 'int4']) {
    const enc = encodeFeatures(features, 2, 4, 3, spec);
    assert.equal(enc.header.channelScale[1], 0);
    const dec = decodeFeatures(enc.payload, enc.header);
    assert.deepEqual(dec.features, features, spec);
  }
});

test('decode reuses caller buffers and clears what the previous frame left in them', () => {
  const { features, confidence, channels, height, width } = small;
  const out = new Float32Array(channels * height * width).fill(9);
  const mask = new Uint8Array(height * width).fill(7);
  const enc = encodeFeatures(features, height, width, channels, 'int8+top1%', { confidence });
  const dec = decodeFeatures(enc.payload, enc.header, { out, mask });
  assert.equal(dec.features, out);
  assert.equal(dec.mask, mask);
  assert.deepEqual(mask, enc.mask);
  assert.equal(out.reduce((n, v, i) => n + (mask[i % (height * width)] ? 0 : v !== 0 ? 1 : 0), 0), 0);
  assert.throws(() => decodeFeatures(enc.payload, enc.header, { out: new Float32Array(5) }), isCodecError('input', /options.out has 5 values/));
});

test('encoder refuses what it cannot send faithfully', () => {
  const f = new Float32Array([1, 2, 3, 4]);
  assert.throws(() => encodeFeatures(f, 2, 2, 2, 'int8'), isCodecError('input', /features have 4 values, expected C·H·W = 2·2·2 = 8/));
  assert.throws(() => encodeFeatures(f, 2, 0, 1, 'int8'), isCodecError('input', /width = 0: must be a positive integer/));
  assert.throws(() => encodeFeatures(new Float32Array([1, NaN, 3, 4]), 2, 2, 1, 'int8'), isCodecError('input', /channel 0, row 0, col 1 is NaN/));
  assert.throws(() => encodeFeatures(new Float32Array([1, 2, 7e4, 4]), 2, 2, 1, 'fp16'), isCodecError('input', /beyond fp16's ±65504/));
  assert.throws(() => encodeFeatures(f, 2, 2, 1, 'int8+top10%'), isCodecError('input', /needs a confidence map of 4 cells/));
  assert.throws(() => encodeFeatures(f, 2, 2, 1, 'int8+top10%', { confidence: new Float32Array(3) }), isCodecError('input', /confidence map has 3 values/));
  assert.throws(() => encodeFeatures(f, 2, 2, 1, 'c16+int4'), isCodecError('unavailable', /c16 not available: no channel-reduction model in the manifest/));
  assert.throws(() => encodeFeatures(f, 2, 2, 1, 'int8+xyz'), isCodecError('spec', /unknown stage 'xyz'/));
});

// ---------------------------------------------------------------------------------------------------------------
// Bad input on the receiving side

function withCrc(header: FeatureEncodingHeader, payload: Uint8Array, changes: Partial<FeatureEncodingHeader> = {}): FeatureEncodingHeader {
  return { ...header, ...changes, payloadCrc32: crc32(payload) >>> 0 };
}

test('truncated, damaged or lying payloads throw a corrupt CodecError naming what is wrong', () => {
  const { features, confidence, channels, height, width } = small;
  const dense = encodeFeatures(features, height, width, channels, 'int8');
  const cut = dense.payload.subarray(0, dense.payload.byteLength - 10);
  assert.throws(() => decodeFeatures(cut, dense.header), isCodecError('corrupt', /checksum mismatch/));
  assert.throws(() => decodeFeatures(cut, withCrc(dense.header, cut)), isCodecError('corrupt', /65526 payload bytes, the header announces 65536/));

  const deflated = encodeFeatures(features, height, width, channels, 'int8+top10%+deflate', { confidence });
  const flipped = deflated.payload.slice();
  flipped[flipped.length >> 1] ^= 0x5a;
  assert.throws(() => decodeFeatures(flipped, deflated.header), isCodecError('corrupt', /checksum mismatch/));
  assert.throws(() => decodeFeatures(flipped, withCrc(deflated.header, flipped)), isCodecError('corrupt', /deflate stream (does not decompress|holds)/));
  const truncated = deflated.payload.subarray(0, 100);
  assert.throws(() => decodeFeatures(truncated, withCrc(deflated.header, truncated)), isCodecError('corrupt', /deflate stream does not decompress/));

  // A zip bomb: a megabyte of zeros compressed to a kilobyte, announced as 64 bytes.
  const bomb = new Uint8Array(deflateSync(new Uint8Array(1 << 20)));
  const bombHeader = withCrc({ ...dense.header, entropyCoding: EntropyCoding.DEFLATE, channels: 1, height: 8, width: 8, selectedCells: 64, channelScale: [1], channelOffset: [0], packedBytes: 64 }, bomb);
  assert.throws(() => decodeFeatures(bomb, bombHeader), isCodecError('corrupt', /expands past the 64 bytes the header announces/));

  const varints = encodeFeatures(features, height, width, channels, 'int8+top1%', { confidence });
  assert.equal(varints.header.cellIndexCoding, CellIndexCoding.DELTA_VARINT);
  const bigGap = varints.payload.slice();
  bigGap[0] = 0xff;
  bigGap[1] = 0xff; // the first gap becomes ≥ 16,383 + …: past the 4,096-cell map
  assert.throws(() => decodeFeatures(bigGap, withCrc(varints.header, bigGap)), isCodecError('corrupt', /cell index section: cell \d+ \(entry \d of \d+\) is outside the 4096-cell map/));

  const bitmask = encodeFeatures(features, height, width, channels, 'int8+top40%', { confidence });
  assert.equal(bitmask.header.cellIndexCoding, CellIndexCoding.BITMASK);
  const extraBit = bitmask.payload.slice();
  const unset = [...Array(512).keys()].find((i) => extraBit[i] !== 0xff) as number;
  extraBit[unset] = 0xff;
  assert.throws(() => decodeFeatures(extraBit, withCrc(bitmask.header, extraBit)), isCodecError('corrupt', /more cells set than the \d+ the header announces|cells set, the header announces/));

  const fp16 = encodeFeatures(features, height, width, channels, 'fp16');
  const nanHalf = fp16.payload.slice();
  nanHalf[0] = 0x00;
  nanHalf[1] = 0x7e;
  assert.throws(() => decodeFeatures(nanHalf, withCrc(fp16.header, nanHalf)), isCodecError('corrupt', /fp16 value 0 \(channel 0\) is not finite/));

  const header = dense.header;
  assert.throws(() => decodeFeatures(dense.payload, { ...header, quantization: 9 }), isCodecError('corrupt', /header quantization = 9: unknown/));
  assert.throws(() => decodeFeatures(dense.payload, { ...header, entropyCoding: 0 }), isCodecError('corrupt', /header entropyCoding = 0: unknown/));
  assert.throws(() => decodeFeatures(dense.payload, { ...header, channels: 2 ** 20 }), isCodecError('corrupt', /exceeds the 16777216-value limit/));
  assert.throws(() => decodeFeatures(dense.payload, { ...header, height: -1 }), isCodecError('corrupt', /header height = -1/));
  assert.throws(() => decodeFeatures(dense.payload, { ...header, selectedCells: 5000 }), isCodecError('corrupt', /selectedCells = 5000 exceeds the 4096 cells/));
  assert.throws(() => decodeFeatures(dense.payload, { ...header, channelScale: header.channelScale.slice(1) }), isCodecError('corrupt', /15 channel scales and 16 offsets, expected 16/));
  assert.throws(() => decodeFeatures(dense.payload, { ...header, channelScale: header.channelScale.map((s, i) => (i === 3 ? NaN : s)) }), isCodecError('corrupt', /header channel 3: scale NaN/));
  assert.throws(() => decodeFeatures(dense.payload, { ...header, packedBytes: 100 }), isCodecError('corrupt', /packedBytes = 100, expected 65536/));
});

test('fuzz: random mutations of payload and header either decode or throw CodecError, nothing else', () => {
  const random = seededRandom(99);
  const { features, confidence, channels, height, width } = syntheticBev(4, 16, 16, 3);
  const specs = ['raw', 'fp16+top20%', 'int8+thr0.3+deflate', 'int4+top10+brotli', 'int8+top60%'];
  const encoded = specs.map((s) => encodeFeatures(features, height, width, channels, s, { confidence }));
  const fields: Array<keyof FeatureEncodingHeader> = ['quantization', 'cellIndexCoding', 'selectedCells', 'entropyCoding', 'channels', 'height', 'width', 'packedBytes'];
  let decoded = 0;
  for (let round = 0; round < 400; round++) {
    const enc = encoded[round % encoded.length];
    let payload = enc.payload.slice();
    let header: FeatureEncodingHeader = { ...enc.header };
    const what = random();
    if (what < 0.4) {
      for (let k = 0; k < 1 + random() * 4; k++) payload[Math.floor(random() * payload.length)] = Math.floor(random() * 256);
    } else if (what < 0.6) {
      payload = payload.subarray(0, Math.floor(random() * payload.length));
    } else {
      const field = fields[Math.floor(random() * fields.length)];
      header = { ...header, [field]: Math.floor(random() * 40) - 2 };
    }
    // Half the time fix the checksum, so the mutation reaches the deeper checks.
    if (random() < 0.5) header.payloadCrc32 = crc32(payload) >>> 0;
    try {
      const dec = decodeFeatures(payload, header);
      for (const v of dec.features) assert.ok(Number.isFinite(v), 'decoded values are finite');
      decoded++;
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
    }
  }
  // Some mutations are harmless (a changed float32 byte with a fixed checksum); most are caught.
  assert.ok(decoded < 400);
});
