// Channel-reduced features (codec stage c<ratio>) at the gate: admitted only when the receiver has that ratio's
// decoder, with channels = grid.channels / ratio, decoded into the first planes of the caller's full-size buffer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeFeatures } from '../../src/codec/index.ts';
import { MessageGate, encodeMessage } from '../../src/messages/index.ts';
import { CHANNELS, HEIGHT, MODEL_ID, NOW_NS, RECEIVER_GRID, WIDTH, featuresInit } from './sample-messages.ts';

const RATIO = 4;
const REDUCED = CHANNELS / RATIO;
const reduced = Float32Array.from({ length: REDUCED * HEIGHT * WIDTH }, (_, i) => Math.sin(i * 0.37));
const coded = encodeFeatures(reduced, HEIGHT, WIDTH, REDUCED, 'c4+fp16', { channelReductionRatios: [RATIO] });

function bytes(ratio: number, channels = REDUCED): Uint8Array {
  const init = featuresInit();
  return encodeMessage('features', { ...init, encoding: { ...coded.header, channels, channelReductionRatio: ratio }, payload: coded.payload });
}

const gate = (ratios: number[]) =>
  new MessageGate({ expectedModelId: MODEL_ID, grid: RECEIVER_GRID, requireSignatures: false, maxAgeMs: Infinity, channelReductionRatios: ratios });

test('a c4 map is admitted by a receiver with the c4 decoder and lands in the first planes of the buffer', () => {
  const out = new Float32Array(CHANNELS * HEIGHT * WIDTH).fill(-7);
  const r = gate([4, 16]).admit('features', '100', bytes(RATIO), NOW_NS, { out, mask: new Uint8Array(HEIGHT * WIDTH) });
  assert.equal(r.ok, true, r.ok ? '' : `${r.reason}: ${r.detail}`);
  for (let i = 0; i < reduced.length; i += 97) assert.ok(Math.abs(out[i] - reduced[i]) < 2e-3, `value ${i}`);
});

test('a ratio the receiver cannot expand is refused as unsupported-codec; a channel count that does not fit is a grid mismatch', () => {
  const r1 = gate([16]).admit('features', '100', bytes(RATIO), NOW_NS);
  assert.equal(r1.ok, false);
  assert.equal(!r1.ok && r1.reason, 'unsupported-codec');
  const r2 = gate([4]).admit('features', '100', bytes(RATIO, REDUCED + 1), NOW_NS);
  assert.equal(!r2.ok && r2.reason, 'grid-mismatch');
  // Without the ratio field the same reduced payload does not match the grid's channels.
  const r3 = gate([4]).admit('features', '100', bytes(0), NOW_NS);
  assert.equal(!r3.ok && r3.reason, 'grid-mismatch');
});
