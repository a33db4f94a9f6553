import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type Admission,
  type MessageGateOptions,
  type MessageKind,
  type MessageRejection,
  type RejectionReason,
  MESSAGE_KINDS,
  MessageGate,
  REJECTION_REASONS,
  RejectionLog,
  TrustList,
  encodeMessage,
  generateSigningKey,
  signMessage,
  signingKeyFromPem,
  v2xfuse,
  wire,
} from '../../src/messages/index.ts';
import {
  BEV,
  CAPTURE_NS,
  CHANNELS,
  ENCODED_FEATURES,
  HEIGHT,
  MODEL_ID,
  NOW_NS,
  POINTS,
  POINT_STEP_M,
  RECEIVER_GRID,
  WIDTH,
  featuresInit,
  objectsInit,
  pointsInit,
  sampleBytes,
  sampleInit,
  sampleSender,
  statusInit,
} from './sample-messages.ts';

const MS = 1_000_000n;

function gate(extra: Partial<MessageGateOptions> = {}): MessageGate {
  return new MessageGate({ expectedModelId: MODEL_ID, grid: RECEIVER_GRID, maxAgeMs: 500, maxFutureMs: 100, requireSignatures: false, ...extra });
}

function rejected<K extends MessageKind>(a: Admission<K>, reason: RejectionReason, detail?: RegExp): MessageRejection {
  assert.equal(a.ok, false, `expected '${reason}', the message was admitted`);
  const r = a as MessageRejection;
  assert.equal(r.reason, reason, `expected '${reason}', got '${r.reason}': ${r.detail}`);
  if (detail) assert.match(r.detail, detail);
  return r;
}

const pair100 = generateSigningKey();
const key100 = signingKeyFromPem(pair100.privateKeyPem);
const pairFusion = generateSigningKey();
const keyFusion = signingKeyFromPem(pairFusion.privateKeyPem);
const trust = TrustList.fromKeys({
  '100': [{ keyId: pair100.keyId, publicKeyPem: pair100.publicKeyPem }],
  'fusion-100': [{ keyId: pairFusion.keyId, publicKeyPem: pairFusion.publicKeyPem }],
});

test('a valid message of every kind is admitted, signed or not', () => {
  for (const kind of MESSAGE_KINDS) {
    const bytes = sampleBytes(kind);
    const a = gate().admit(kind, sampleSender(kind), bytes, NOW_NS);
    assert.ok(a.ok, `${kind}: ${!a.ok && a.reason}: ${!a.ok && a.detail}`);
    assert.equal(a.kind, kind);
    assert.equal(a.sequence, 7);
    assert.equal(a.captureTimeNs, CAPTURE_NS);
    assert.equal(a.sendTimeNs, CAPTURE_NS + 20n * MS);
    assert.equal(a.byteLength, bytes.byteLength);
    assert.equal(a.keyId, undefined);

    const signed = signMessage(kind, bytes, kind === 'result' ? keyFusion : key100);
    const s = gate({ trust, requireSignatures: true }).admit(kind, sampleSender(kind), signed, NOW_NS);
    assert.ok(s.ok, `${kind} signed: ${!s.ok && s.reason}: ${!s.ok && s.detail}`);
    assert.equal(s.keyId, kind === 'result' ? pairFusion.keyId : pair100.keyId);
  }
});

test('features are decoded once, into the caller\'s buffers, within the int8 codec bound of the original', () => {
  const out = new Float32Array(CHANNELS * HEIGHT * WIDTH).fill(123);
  const mask = new Uint8Array(HEIGHT * WIDTH);
  const a = gate().admit('features', '100', sampleBytes('features'), NOW_NS, { out, mask });
  assert.ok(a.ok);
  assert.equal(a.payload.features, out, 'decoded into the buffer given');
  assert.equal(a.payload.mask, mask);
  const cells = HEIGHT * WIDTH;
  let sent = 0;
  for (let i = 0; i < cells; i++) sent += mask[i];
  assert.equal(sent, ENCODED_FEATURES.header.selectedCells);
  assert.deepEqual(mask, ENCODED_FEATURES.mask);
  for (let c = 0; c < CHANNELS; c++) {
    const bound = ENCODED_FEATURES.header.channelScale[c] / 2 + 1e-6;
    for (let i = 0; i < cells; i++) {
      const x = BEV.features[c * cells + i];
      const y = out[c * cells + i];
      if (mask[i]) assert.ok(Math.abs(x - y) <= bound, `channel ${c} cell ${i}: ${y} vs ${x} (bound ${bound})`);
      else assert.equal(y, 0, 'cells not sent are 0, whatever the buffer held');
    }
  }
});

test('points are decoded within half a quantisation step', () => {
  const a = gate().admit('points', '100', sampleBytes('points'), NOW_NS);
  assert.ok(a.ok);
  assert.equal(a.payload.count, POINTS.length / 4);
  for (let i = 0; i < POINTS.length; i++) {
    if (i % 4 === 3) continue;
    assert.ok(Math.abs(a.payload.points[i] - POINTS[i]) <= POINT_STEP_M / 2 + 1e-4, `value ${i}`);
  }
});

test('oversized: refused before decoding, with per-kind limits', () => {
  const bytes = sampleBytes('features');
  rejected(gate({ maxBytes: { features: bytes.byteLength - 1 } }).admit('features', '100', bytes, NOW_NS), 'oversized', /the limit for features is/);
  assert.ok(gate({ maxBytes: { features: bytes.byteLength } }).admit('features', '100', bytes, NOW_NS).ok);
  // The limit applies to the kind named; others keep the default.
  assert.ok(gate({ maxBytes: { objects: 10 } }).admit('features', '100', bytes, NOW_NS).ok);
  // Garbage over the limit is refused as oversized, not malformed: the size is checked first.
  rejected(gate({ maxBytes: 64 }).admit('status', '100', new Uint8Array(65).fill(0xff), NOW_NS), 'oversized');
});

test('malformed: bytes that do not parse, missing parts, bad covariance and out-of-range enums', () => {
  const bytes = sampleBytes('objects');
  rejected(gate().admit('objects', '100', bytes.subarray(0, bytes.length - 3), NOW_NS), 'malformed', /runs past the end|index out of range/);
  rejected(gate().admit('features', '100', encodeMessage('features', { ...featuresInit(), header: null }), NOW_NS), 'malformed', /header is missing/);
  rejected(gate().admit('features', '100', encodeMessage('features', { ...featuresInit(), grid: null }), NOW_NS), 'malformed', /grid is missing/);
  rejected(gate().admit('points', '100', encodeMessage('points', { ...pointsInit(), encoding: null }), NOW_NS), 'malformed', /encoding is missing/);
  const noPose = objectsInit();
  noPose.header = { ...noPose.header, senderPose: null };
  rejected(gate().admit('objects', '100', encodeMessage('objects', noPose), NOW_NS), 'malformed', /senderPose is missing/);
  const cov = objectsInit();
  cov.header = { ...cov.header, senderPose: { ...cov.header?.senderPose, covariance: [1, 2, 3, 4, 5] } };
  rejected(gate().admit('objects', '100', encodeMessage('objects', cov), NOW_NS), 'malformed', /covariance has 5 values/);
  const cls = objectsInit();
  cls.objects = [{ ...cls.objects?.[0], objectClass: 99 as v2xfuse.v1.ObjectClass }];
  rejected(gate().admit('objects', '100', encodeMessage('objects', cls), NOW_NS), 'malformed', /objects\[0\]\.objectClass = 99/);
  rejected(gate().admit('status', '100', encodeMessage('status', statusInit({}, 17 as v2xfuse.v1.AgentState)), NOW_NS), 'malformed', /state = 17/);
  const quant = featuresInit();
  quant.encoding = { ...quant.encoding, quantization: 0 as v2xfuse.v1.Quantization };
  rejected(gate().admit('features', '100', encodeMessage('features', quant), NOW_NS), 'malformed', /quantization = 0/);
  const score = objectsInit();
  score.objects = [{ ...score.objects?.[0], existenceConfidence: 1.5 }];
  rejected(gate().admit('objects', '100', encodeMessage('objects', score), NOW_NS), 'malformed', /existenceConfidence = 1.5/);
  // A kilometre-long box: finite, yet every footprint check downstream would pay for it.
  const huge = objectsInit();
  huge.objects = [{ ...huge.objects?.[0], dimensions: { x: 1e6, y: 2, z: 1.6 } }];
  rejected(gate().admit('objects', '100', encodeMessage('objects', huge), NOW_NS), 'malformed', /over 50 m/);
  const bus = objectsInit();
  bus.objects = [{ ...bus.objects?.[0], dimensions: { x: 18, y: 2.55, z: 3.2 } }];
  assert.ok(gate().admit('objects', '100', encodeMessage('objects', bus), NOW_NS).ok);
});

test('unknown-version and sender-mismatch', () => {
  const v2 = objectsInit();
  v2.header = { ...v2.header, schemaVersion: 2 };
  rejected(gate().admit('objects', '100', encodeMessage('objects', v2), NOW_NS), 'unknown-version', /schema version 2/);
  rejected(gate().admit('objects', '101', sampleBytes('objects'), NOW_NS), 'sender-mismatch', /"100", the topic "101"/);
});

test('stale and future capture times, with status exempt from the age limit by default', () => {
  const old = sampleBytes('objects', { captureNs: NOW_NS - 501n * MS });
  rejected(gate().admit('objects', '100', old, NOW_NS), 'stale', /captured 501\.0 ms ago/);
  assert.ok(gate().admit('objects', '100', sampleBytes('objects', { captureNs: NOW_NS - 499n * MS }), NOW_NS).ok);
  rejected(gate().admit('objects', '100', sampleBytes('objects', { captureNs: NOW_NS + 101n * MS }), NOW_NS), 'future');
  assert.ok(gate().admit('objects', '100', sampleBytes('objects', { captureNs: NOW_NS + 99n * MS }), NOW_NS).ok);
  // A retained status or a last will arrives long after it was signed.
  const oldStatus = sampleBytes('status', { captureNs: NOW_NS - 3_600_000n * MS });
  assert.ok(gate().admit('status', '100', oldStatus, NOW_NS).ok);
  rejected(gate({ maxAgeMs: { status: 60_000 } }).admit('status', '100', oldStatus, NOW_NS), 'stale');
});

test('unsigned, unknown-sender and bad-signature when signatures are required', () => {
  const g = () => gate({ trust, requireSignatures: true });
  rejected(g().admit('objects', '100', sampleBytes('objects'), NOW_NS), 'unsigned');
  const stranger = signingKeyFromPem(generateSigningKey().privateKeyPem);
  const fromStranger = signMessage('objects', sampleBytes('objects', { senderId: '102' }), stranger);
  rejected(g().admit('objects', '102', fromStranger, NOW_NS), 'unknown-sender', /'102' is not in trust list/);
  // Agent 100's message signed with another key: as good as forged.
  rejected(g().admit('objects', '100', signMessage('objects', sampleBytes('objects'), stranger), NOW_NS), 'bad-signature', /key id/);
  const signed = signMessage('objects', sampleBytes('objects'), key100);
  const tampered = signed.slice();
  tampered[40] ^= 0x01;
  rejected(g().admit('objects', '100', tampered, NOW_NS), 'bad-signature');
});

test('signatures optional: unsigned and unknown senders pass, a known sender\'s bad signature does not', () => {
  const g = () => gate({ trust, requireSignatures: false });
  const plain = g().admit('objects', '100', sampleBytes('objects'), NOW_NS);
  assert.ok(plain.ok && plain.keyId === undefined);
  const stranger = signingKeyFromPem(generateSigningKey().privateKeyPem);
  const unknown = g().admit('objects', '102', signMessage('objects', sampleBytes('objects', { senderId: '102' }), stranger), NOW_NS);
  assert.ok(unknown.ok && unknown.keyId === undefined);
  rejected(g().admit('objects', '100', signMessage('objects', sampleBytes('objects'), stranger), NOW_NS), 'bad-signature');
  assert.throws(() => new MessageGate({ requireSignatures: true }), /needs a trust list/);
});

test('replay: per sender and kind; copies refused, later sequences report the gap; restarts with a later capture time pass', () => {
  const g = gate();
  const first = sampleBytes('objects', { sequence: 10 });
  assert.ok(g.admit('objects', '100', first, NOW_NS).ok);
  rejected(g.admit('objects', '100', first, NOW_NS), 'replay', /sequence 10 was admitted already/);
  // Another kind and another sender keep their own windows.
  assert.ok(g.admit('features', '100', sampleBytes('features', { sequence: 3 }), NOW_NS).ok);
  assert.ok(g.admit('objects', '101', sampleBytes('objects', { senderId: '101', sequence: 1 }), NOW_NS).ok);
  // Same capture time, later sequence (two messages of one frame); then a gap of 2 is reported.
  const a11 = g.admit('objects', '100', sampleBytes('objects', { sequence: 11 }), NOW_NS);
  assert.ok(a11.ok && a11.missed === 0 && !a11.restarted && !a11.late);
  const a14 = g.admit('objects', '100', sampleBytes('objects', { sequence: 14, captureNs: CAPTURE_NS + 100n * MS }), NOW_NS + 100n * MS);
  assert.ok(a14.ok && a14.missed === 2);
  // A later sequence with an earlier capture time is an old message (an old run's, say): refused.
  rejected(g.admit('objects', '100', sampleBytes('objects', { sequence: 50, captureNs: CAPTURE_NS + 50n * MS }), NOW_NS + 100n * MS), 'replay', /earlier run/);
  // The sender restarted: sequence 0 again, capture time moved on.
  const restart = g.admit('objects', '100', sampleBytes('objects', { sequence: 0, captureNs: CAPTURE_NS + 200n * MS }), NOW_NS + 200n * MS);
  assert.ok(restart.ok && restart.restarted);
  // And the pre-restart messages do not come back in behind it, not even ones never seen (12, 13).
  rejected(g.admit('objects', '100', sampleBytes('objects', { sequence: 14, captureNs: CAPTURE_NS + 100n * MS }), NOW_NS + 200n * MS), 'replay');
  rejected(g.admit('objects', '100', sampleBytes('objects', { sequence: 12, captureNs: CAPTURE_NS + 90n * MS }), NOW_NS + 200n * MS), 'replay', /before the sender's restart/);
});

/** Object lists of sender `id` at 10 Hz: sequence n captured n × 100 ms after CAPTURE_NS. */
const frame = (n: number, id = '100') => sampleBytes('objects', { senderId: id, sequence: n, captureNs: CAPTURE_NS + BigInt(n) * 100n * MS });
const at = (n: number) => CAPTURE_NS + BigInt(n) * 100n * MS + 50n * MS;

test('replay window: a message overtaken by later ones is admitted once; its copy is refused', () => {
  const g = gate({ maxAgeMs: Infinity });
  assert.ok(g.admit('objects', '100', frame(1), at(1)).ok);
  // 2 and 3 overtaken by 4 (a jittery link): still admitted, marked late, no gap reported for them.
  const a4 = g.admit('objects', '100', frame(4), at(4));
  assert.ok(a4.ok && a4.missed === 2 && !a4.late);
  const a3 = g.admit('objects', '100', frame(3), at(4));
  assert.ok(a3.ok && a3.late && a3.missed === 0 && !a3.restarted, JSON.stringify(!a3.ok && a3));
  const a2 = g.admit('objects', '100', frame(2), at(4));
  assert.ok(a2.ok && a2.late);
  for (const n of [1, 2, 3, 4]) rejected(g.admit('objects', '100', frame(n), at(5)), 'replay', /admitted already/);
  // The window moved on; 5 is new.
  assert.ok(g.admit('objects', '100', frame(5), at(5)).ok);
});

test('replay window: anything older than the window is refused, seen or not; the edge of the window is admitted', () => {
  const g = gate({ maxAgeMs: Infinity, replayWindow: 64 });
  assert.ok(g.admit('objects', '100', frame(100), at(100)).ok);
  rejected(g.admit('objects', '100', frame(36), at(100)), 'replay', /older than the window of 64/);
  assert.ok(g.admit('objects', '100', frame(37), at(100)).ok, 'top − 63 is the oldest number inside the window');
  rejected(g.admit('objects', '100', frame(37), at(100)), 'replay');
  // A jump past a whole window forgets every bit: numbers the ring reuses are not mistaken for seen ones.
  assert.ok(g.admit('objects', '100', frame(300), at(300)).ok);
  // 292 and 293 use the ring slots of 100 and 37 (mod 64), seen before the jump: they must read as unseen.
  assert.ok(g.admit('objects', '100', frame(292), at(300)).ok);
  assert.ok(g.admit('objects', '100', frame(293), at(300)).ok);
  assert.ok(g.admit('objects', '100', frame(299), at(300)).ok);
  rejected(g.admit('objects', '100', frame(236), at(300)), 'replay', /older than the window/);
  // replayWindow 1 is the strict order.
  const strict = gate({ maxAgeMs: Infinity, replayWindow: 1 });
  assert.ok(strict.admit('objects', '100', frame(5), at(5)).ok);
  rejected(strict.admit('objects', '100', frame(4), at(5)), 'replay', /older than the window of 1/);
  assert.throws(() => gate({ replayWindow: 0 }), /replayWindow = 0/);
});

test('replay window: per sender (and kind), one sender\'s window does not move another\'s', () => {
  const g = gate({ maxAgeMs: Infinity });
  assert.ok(g.admit('objects', '100', frame(200), at(200)).ok);
  // 101 is far behind 100: its own numbers count, none refused as older than 100's window.
  assert.ok(g.admit('objects', '101', frame(3, '101'), at(200)).ok);
  assert.ok(g.admit('objects', '101', frame(1, '101'), at(200)).ok);
  rejected(g.admit('objects', '101', frame(1, '101'), at(200)), 'replay');
  // 100's sequence 3 was never seen by 100's window, but it is older than that window.
  rejected(g.admit('objects', '100', frame(3), at(200)), 'replay', /older than the window/);
  // Another kind of 100: its own window.
  assert.ok(g.admit('features', '100', sampleBytes('features', { sequence: 3, captureNs: CAPTURE_NS + 300n * MS }), at(200)).ok);
  // Staleness still goes by capture time: inside the window but captured too long ago.
  const aged = gate({ maxAgeMs: 500 });
  assert.ok(aged.admit('objects', '100', frame(10), at(10)).ok);
  rejected(aged.admit('objects', '100', frame(4), at(10)), 'stale');
  assert.ok(aged.admit('objects', '100', frame(7), at(10)).ok);
});

test('a forged or corrupt message does not advance the sequence', () => {
  const g = gate({ trust, requireSignatures: true });
  assert.ok(g.admit('objects', '100', signMessage('objects', sampleBytes('objects', { sequence: 1 }), key100), NOW_NS).ok);
  const stranger = signingKeyFromPem(generateSigningKey().privateKeyPem);
  rejected(g.admit('objects', '100', signMessage('objects', sampleBytes('objects', { sequence: 1000 }), stranger), NOW_NS), 'bad-signature');
  // A genuine message that fails a later check (here its payload) is not remembered either.
  const bad = featuresInit({ sequence: 1000 });
  bad.payload = ENCODED_FEATURES.payload.slice();
  bad.payload[5] ^= 0xff;
  rejected(g.admit('features', '100', signMessage('features', encodeMessage('features', bad), key100), NOW_NS), 'corrupt', /checksum/);
  assert.ok(g.admit('objects', '100', signMessage('objects', sampleBytes('objects', { sequence: 2 }), key100), NOW_NS).ok);
  assert.ok(g.admit('features', '100', signMessage('features', sampleBytes('features', { sequence: 2 }), key100), NOW_NS).ok);
});

test('a STARTING status lets a sender begin again earlier in time; a late OFFLINE last will is still admitted', () => {
  const g = gate({ maxAgeMs: Infinity });
  assert.ok(g.admit('features', '100', sampleBytes('features', { sequence: 500, captureNs: CAPTURE_NS }), NOW_NS).ok);
  assert.ok(g.admit('status', '100', encodeMessage('status', statusInit({ sequence: 50, captureNs: CAPTURE_NS })), NOW_NS).ok);
  // Without the announcement, a dataset replayed from its start looks like a replay.
  const early = sampleBytes('features', { sequence: 0, captureNs: CAPTURE_NS - 10_000n * MS });
  rejected(g.admit('features', '100', early, NOW_NS), 'replay');
  const starting = encodeMessage('status', statusInit({ sequence: 51, captureNs: CAPTURE_NS }, wire.AgentState.AGENT_STATE_STARTING));
  assert.ok(g.admit('status', '100', starting, NOW_NS).ok);
  assert.ok(g.admit('features', '100', early, NOW_NS).ok);

  // The last will was signed at connect time (sequence 0, an early capture time) and arrives after later statuses.
  const will = encodeMessage('status', statusInit({ sequence: 0, captureNs: CAPTURE_NS - 60_000n * MS }, wire.AgentState.AGENT_STATE_OFFLINE));
  assert.ok(g.admit('status', '100', will, NOW_NS).ok);
  // It does not reset the order: the old RUNNING status is still a replay.
  rejected(g.admit('status', '100', encodeMessage('status', statusInit({ sequence: 50, captureNs: CAPTURE_NS })), NOW_NS), 'replay');
});

test('wrong-model for features and object lists', () => {
  rejected(gate().admit('features', '100', sampleBytes('features', { modelId: 'other-model' }), NOW_NS), 'wrong-model', /"other-model"/);
  rejected(gate().admit('objects', '100', sampleBytes('objects', { modelId: '' }), NOW_NS), 'wrong-model');
  // Points carry no model's output; an unset expectation accepts any model.
  assert.ok(gate().admit('points', '100', sampleBytes('points', { modelId: 'other-model' }), NOW_NS).ok);
  assert.ok(gate({ expectedModelId: undefined }).admit('features', '100', sampleBytes('features', { modelId: 'other-model' }), NOW_NS).ok);
});

test('grid-mismatch: another cell size, stride or shape; float32 rounding of the receiver\'s grid is not a mismatch', () => {
  const cell = featuresInit();
  cell.grid = { ...cell.grid, cellSize: 0.5 };
  rejected(gate().admit('features', '100', encodeMessage('features', cell), NOW_NS), 'grid-mismatch', /grid\.cellSize = 0\.5/);
  const stride = featuresInit();
  stride.grid = { ...stride.grid, featureStride: 4 };
  rejected(gate().admit('features', '100', encodeMessage('features', stride), NOW_NS), 'grid-mismatch', /featureStride/);
  const range = featuresInit();
  range.grid = { ...range.grid, xMax: 51.3 };
  rejected(gate().admit('features', '100', encodeMessage('features', range), NOW_NS), 'grid-mismatch', /xMax/);
  const shape = featuresInit();
  shape.encoding = { ...shape.encoding, height: HEIGHT / 2 };
  rejected(gate().admit('features', '100', encodeMessage('features', shape), NOW_NS), 'grid-mismatch', /encoding\.height = 16, but grid\.height = 32/);
  rejected(gate({ grid: undefined }).admit('features', '100', sampleBytes('features'), NOW_NS), 'grid-mismatch', /no BEV grid configured/);
  // The wire's grid is float32 (51.2 → 51.200000762939453); the receiver's numbers are float64.
  const wireGrid = wire.BevGrid.decode(wire.BevGrid.encode(featuresInit().grid ?? {}).finish());
  assert.notEqual(wireGrid.xMax, RECEIVER_GRID.xMax);
  assert.ok(gate().admit('features', '100', sampleBytes('features'), NOW_NS).ok);
});

test('non-finite: pose, boxes, object fields, feature scales and offsets, point origin', () => {
  const pose = objectsInit();
  pose.header = { ...pose.header, senderPose: { ...pose.header?.senderPose, yaw: NaN } };
  rejected(gate().admit('objects', '100', encodeMessage('objects', pose), NOW_NS), 'non-finite', /header\.senderPose\.yaw is NaN/);
  const cov = objectsInit();
  cov.header = { ...cov.header, senderPose: { ...cov.header?.senderPose, covariance: [1, 1, 1, 1, Infinity, 1] } };
  rejected(gate().admit('objects', '100', encodeMessage('objects', cov), NOW_NS), 'non-finite', /covariance\[4\]/);
  const obj = objectsInit();
  obj.objects = [obj.objects?.[0] ?? {}, { ...obj.objects?.[1], position: { x: Infinity, y: 0, z: 0 } }];
  rejected(gate().admit('objects', '100', encodeMessage('objects', obj), NOW_NS), 'non-finite', /objects\[1\]\.position\.x is Infinity/);
  const vel = objectsInit();
  vel.objects = [{ ...vel.objects?.[0], velocity: { x: NaN } }];
  rejected(gate().admit('objects', '100', encodeMessage('objects', vel), NOW_NS), 'non-finite', /velocity\.x/);
  const scale = featuresInit();
  const scales = [...(scale.encoding?.channelScale ?? [])];
  scales[3] = NaN;
  scale.encoding = { ...scale.encoding, channelScale: scales };
  rejected(gate().admit('features', '100', encodeMessage('features', scale), NOW_NS), 'non-finite', /channelScale\[3\] is NaN/);
  const offset = featuresInit();
  offset.encoding = { ...offset.encoding, channelOffset: (offset.encoding?.channelOffset ?? []).map((v, i) => (i === 0 ? -Infinity : v)) };
  rejected(gate().admit('features', '100', encodeMessage('features', offset), NOW_NS), 'non-finite', /channelOffset\[0\]/);
  const origin = pointsInit();
  origin.encoding = { ...origin.encoding, originX: Infinity };
  rejected(gate().admit('points', '100', encodeMessage('points', origin), NOW_NS), 'non-finite', /encoding\.originX/);
  const result = sampleInit('result');
  result.detections = [{ box: { x: NaN, y: 0, z: 0, l: 1, w: 1, h: 1, yaw: 0 }, objectClass: 1, score: 0.5 }];
  rejected(gate().admit('result', 'fusion-100', encodeMessage('result', result), NOW_NS), 'non-finite', /detections\[0\]\.box\.x/);
});

test('corrupt: payload damage caught by the codec (checksum, announced sizes)', () => {
  const flipped = featuresInit();
  flipped.payload = ENCODED_FEATURES.payload.slice();
  flipped.payload[flipped.payload.length - 1] ^= 0x10;
  rejected(gate().admit('features', '100', encodeMessage('features', flipped), NOW_NS), 'corrupt', /checksum mismatch/);
  const count = pointsInit();
  count.encoding = { ...count.encoding, pointCount: 5_000_000, packedBytes: 35_000_000 };
  rejected(gate().admit('points', '100', encodeMessage('points', count), NOW_NS), 'corrupt', /limit/);
  const cells = featuresInit();
  cells.encoding = { ...cells.encoding, selectedCells: HEIGHT * WIDTH + 1 };
  rejected(gate().admit('features', '100', encodeMessage('features', cells), NOW_NS), 'corrupt');
});

test('internal: buffers that do not fit the receiver\'s grid are this node\'s fault, not the sender\'s', () => {
  const a = gate().admit('features', '100', sampleBytes('features'), NOW_NS, { out: new Float32Array(10) });
  rejected(a, 'internal', /options\.out has 10 values/);
});

test('RejectionLog counts by reason and agent and logs each (agent, reason) once, with its detail', () => {
  const lines: string[] = [];
  const log = new RejectionLog((line) => lines.push(line));
  const g = gate({ log });
  assert.equal(g.rejections, log);
  const stale = sampleBytes('objects', { captureNs: NOW_NS - 10_000n * MS });
  for (let i = 0; i < 3; i++) g.admit('objects', '100', stale, NOW_NS);
  g.admit('objects', '101', stale, NOW_NS); // sender-mismatch: the header says 100
  g.admit('objects', '101', sampleBytes('objects', { senderId: '101', captureNs: NOW_NS - 10_000n * MS }), NOW_NS);
  g.admit('features', '100', Uint8Array.from([0xff]), NOW_NS);
  assert.ok(g.admit('objects', '100', sampleBytes('objects'), NOW_NS).ok, 'admissions are not counted as rejections');
  assert.deepEqual(log.counts(), {
    total: 6,
    byReason: { stale: 4, 'sender-mismatch': 1, malformed: 1 },
    byAgent: { '100': { stale: 3, malformed: 1 }, '101': { 'sender-mismatch': 1, stale: 1 } },
  });
  assert.equal(lines.length, 4, lines.join('\n'));
  assert.match(lines[0], /^refused objects message from agent "100" \(\d+ bytes\): stale: captured 10000\.0 ms ago/);
  for (const reason of Object.keys(log.counts().byReason)) assert.ok((REJECTION_REASONS as readonly string[]).includes(reason));
});

test('admit never throws, whatever it is handed', () => {
  const g = gate({ trust, requireSignatures: true });
  const weird: unknown[] = [new Uint8Array(0), Uint8Array.from([0x08, 0x80]), new Uint8Array(1000)];
  for (const bytes of weird) {
    const a = g.admit('features', '100', bytes as Uint8Array, NOW_NS);
    assert.equal(a.ok, false);
  }
  rejected(g.admit('nonsense' as MessageKind, '100', sampleBytes('objects'), NOW_NS), 'malformed', /unknown message kind/);
});

test('an object list\'s free-space map is checked for shape before anyone inflates it', () => {
  const ok = objectsInit();
  ok.freeSpace = { xMin: -51.2, yMin: -51.2, cellSize: 0.8, width: 128, height: 128, planes: Uint8Array.from([1, 2, 3]) };
  assert.ok(gate().admit('objects', '100', encodeMessage('objects', ok), NOW_NS).ok);
  const huge = objectsInit();
  huge.freeSpace = { ...ok.freeSpace, width: 100_000 };
  rejected(gate().admit('objects', '100', encodeMessage('objects', huge), NOW_NS), 'malformed', /freeSpace\.width = 100000/);
  const cell = objectsInit();
  cell.freeSpace = { ...ok.freeSpace, cellSize: NaN };
  rejected(gate().admit('objects', '100', encodeMessage('objects', cell), NOW_NS), 'non-finite', /freeSpace\.cellSize/);
  const empty = objectsInit();
  empty.freeSpace = { ...ok.freeSpace, planes: new Uint8Array(0) };
  rejected(gate().admit('objects', '100', encodeMessage('objects', empty), NOW_NS), 'malformed', /planes is empty/);
});

test('a feature frame\'s free-space map is checked as an object list\'s is', () => {
  const map = { xMin: -51.2, yMin: -51.2, cellSize: 0.8, width: 128, height: 128, planes: Uint8Array.from([1, 2, 3]) };
  assert.ok(gate().admit('features', '100', encodeMessage('features', { ...featuresInit(), freeSpace: map }), NOW_NS).ok);
  rejected(gate().admit('features', '100', encodeMessage('features', { ...featuresInit(), freeSpace: { ...map, height: 0 } }), NOW_NS), 'malformed', /freeSpace\.height = 0/);
  rejected(gate().admit('features', '100', encodeMessage('features', { ...featuresInit(), freeSpace: { ...map, xMin: Infinity } }), NOW_NS), 'non-finite', /freeSpace\.xMin/);
  rejected(gate().admit('features', '100', encodeMessage('features', { ...featuresInit(), freeSpace: { ...map, planes: new Uint8Array(0) } }), NOW_NS), 'malformed', /planes is empty/);
});
