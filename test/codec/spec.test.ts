import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CodecError,
  assertCodecAvailable,
  canonicalCodecSpec,
  decodeFeatures,
  encodeFeatures,
  formatCodecSpec,
  formatPointCodecSpec,
  parseCodecSpec,
  parsePointCodecSpec,
} from '../../src/codec/index.ts';

function specError(text: string, pattern: RegExp): void {
  assert.throws(
    () => parseCodecSpec(text),
    (err: unknown) => err instanceof CodecError && err.kind === 'spec' && err.userFacing && pattern.test(err.message),
    `'${text}' should fail with ${pattern}`,
  );
}

test('the issue examples parse to the stages they name', () => {
  assert.deepEqual(parseCodecSpec('int8+top10%+deflate'), {
    quantization: 'int8',
    selection: { kind: 'topPercent', percent: 10 },
    entropy: { coder: 'deflate', level: 6 },
  });
  assert.deepEqual(parseCodecSpec('int4+thr0.3+brotli'), {
    quantization: 'int4',
    selection: { kind: 'threshold', threshold: 0.3 },
    entropy: { coder: 'brotli', level: 5 },
  });
  assert.deepEqual(parseCodecSpec('c16+int4'), { quantization: 'int4', channelReduction: { ratio: 16 } });
  assert.deepEqual(parseCodecSpec('raw'), { quantization: 'raw' });
  assert.deepEqual(parseCodecSpec('fp16'), { quantization: 'fp16' });
  assert.deepEqual(parseCodecSpec('top500+brotli11'), { quantization: 'raw', selection: { kind: 'topCount', count: 500 }, entropy: { coder: 'brotli', level: 11 } });
  assert.deepEqual(parseCodecSpec('int8+top0.5%'), { quantization: 'int8', selection: { kind: 'topPercent', percent: 0.5 } });
});

test('canonical form: fixed stage order, lower case, default levels omitted, raw only when alone', () => {
  const cases: Array<[string, string]> = [
    ['int8+top10%+deflate', 'int8+top10%+deflate'],
    ['TOP10%+INT8+Deflate6', 'int8+top10%+deflate'],
    [' top10% + int8 + deflate ', 'int8+top10%+deflate'],
    ['thr0.30+int4+brotli5', 'int4+thr0.3+brotli'],
    ['int4+c16', 'c16+int4'],
    ['raw', 'raw'],
    ['raw+deflate9', 'deflate9'],
    ['raw+top.5%', 'top0.5%'],
    ['top10.0%+fp16+brotli0', 'fp16+top10%+brotli0'],
  ];
  for (const [typed, canonical] of cases) {
    assert.equal(canonicalCodecSpec(typed), canonical, typed);
    // Canonical text parses back to the same spec.
    assert.deepEqual(parseCodecSpec(canonical), parseCodecSpec(typed), canonical);
    assert.equal(formatCodecSpec(parseCodecSpec(canonical)), canonical);
  }
});

test('errors name the stage and what was expected', () => {
  specError('int8+xyz', /^unknown stage 'xyz' in 'int8\+xyz': expected one of raw, fp16, int8, int4, top<count>, top<percent>%, thr<confidence>, c<ratio>, deflate\[1-9\], brotli\[0-11\]$/);
  specError('', /^empty codec spec/);
  specError('int8++deflate', /empty stage in 'int8\+\+deflate'/);
  specError('int8+fp16', /two quantisation stages in 'int8\+fp16' \('int8' and 'fp16'\)/);
  specError('top10%+thr0.2', /two selection stages/);
  specError('deflate+brotli', /'deflate' must be the last stage|two entropy stages/);
  specError('deflate+int8', /'deflate' must be the last stage in 'deflate\+int8'/);
  specError('int8+deflate10', /deflate level 10 in 'int8\+deflate10' is out of range: expected deflate1 \.\. deflate9/);
  specError('brotli12', /brotli level 12/);
  specError('deflate0', /deflate level 0/);
  specError('top0', /cell count must be a whole number ≥ 1/);
  specError('top0%', /percentage must be in \(0, 100\]/);
  specError('top150%', /percentage must be in \(0, 100\]/);
  specError('thr1', /threshold is a confidence in \[0, 1\)/);
  specError('thr30', /threshold is a confidence/);
  specError('c1', /ratio must be a whole number ≥ 2/);
  specError('top', /'top' needs a number/);
  specError('fp32', /float32 is 'raw'/);
  specError('zstd', /zstd is not in Node 20's zlib/);
  specError('top-5%', /unknown stage 'top-5%'/);
  specError('thr1e-3', /unknown stage 'thr1e-3'/);
});

test('c16 parses but is refused as unavailable until the manifest has a channel-reduction model', () => {
  const spec = parseCodecSpec('c16+int4');
  assert.throws(
    () => assertCodecAvailable(spec),
    (err: unknown) =>
      err instanceof CodecError && err.kind === 'unavailable' && err.message === "codec 'c16+int4': c16 not available: no channel-reduction model in the manifest",
  );
  assert.throws(() => assertCodecAvailable(spec, { channelReductionRatios: [4] }), /the manifest has channel-reduction models for c4 only/);
  assert.doesNotThrow(() => assertCodecAvailable(spec, { channelReductionRatios: [4, 16] }));
  assert.doesNotThrow(() => assertCodecAvailable(parseCodecSpec('int8+top10%+deflate')));
});

test('c16+int8 passes when the capabilities list ratio 16 (a manifest with that pair), and only then', () => {
  const spec = parseCodecSpec('c16+int8');
  assert.deepEqual(spec, { quantization: 'int8', channelReduction: { ratio: 16 } });
  assert.doesNotThrow(() => assertCodecAvailable(spec, { channelReductionRatios: [4, 16, 64] }));
  assert.doesNotThrow(() => assertCodecAvailable(spec, { channelReductionRatios: [16] }));
  for (const ratios of [undefined, [], [4, 64], [8, 32]]) {
    assert.throws(
      () => assertCodecAvailable(spec, ratios === undefined ? {} : { channelReductionRatios: ratios }),
      (err: unknown) => err instanceof CodecError && err.kind === 'unavailable' && /^codec 'c16\+int8': c16 not available: /.test(err.message),
      `ratios ${JSON.stringify(ratios)}`,
    );
  }
  // The encoder runs the same check, and then encodes the reduced map it is given: C/16 channels in the header.
  const reduced = new Float32Array(4 * 8 * 8).map((_, i) => (i % 7) * 0.25);
  const encoded = encodeFeatures(reduced, 8, 8, 4, spec, { channelReductionRatios: [16] });
  assert.equal(encoded.header.channels, 4);
  assert.equal(encoded.header.spec, 'c16+int8');
  const back = decodeFeatures(encoded.payload, encoded.header).features;
  assert.ok(back.every((v, i) => Math.abs(v - reduced[i]) <= 1.5 / 255 / 2 + 1e-6), 'int8 bound on the reduced map');
  assert.throws(() => encodeFeatures(reduced, 8, 8, 4, spec, { channelReductionRatios: [4] }), /c16 not available: the manifest has channel-reduction models for c4 only/);
});

test('point codec specs: step in mm / cm / m, optional entropy stage', () => {
  assert.deepEqual(parsePointCodecSpec('1cm+deflate'), { stepM: 0.01, entropy: { coder: 'deflate', level: 6 } });
  assert.deepEqual(parsePointCodecSpec('5mm'), { stepM: 0.005 });
  assert.equal(parsePointCodecSpec('0.02m+brotli9').stepM, 0.02);
  assert.equal(formatPointCodecSpec(parsePointCodecSpec('10mm+DEFLATE')), '1cm+deflate');
  assert.equal(formatPointCodecSpec(parsePointCodecSpec('1.5cm')), '1.5cm');
  assert.equal(formatPointCodecSpec(parsePointCodecSpec('0.5mm+brotli')), '0.5mm+brotli');
  assert.throws(() => parsePointCodecSpec('deflate'), /has no quantisation step/);
  assert.throws(() => parsePointCodecSpec('1cm+int8'), /unknown stage 'int8' in '1cm\+int8': expected one of <step>mm/);
  assert.throws(() => parsePointCodecSpec('2m'), /step must be between 0.1mm and 1m/);
  assert.throws(() => parsePointCodecSpec('deflate+1cm'), /must be the last stage/);
});
