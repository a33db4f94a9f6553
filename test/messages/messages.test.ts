import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CellIndexCoding, EntropyCoding, Quantization, decodeFeatures, decodePoints, encodeFeatures, encodePoints } from '../../src/codec/index.ts';
import {
  FeatureFrame,
  MessageDecodeError,
  SCHEMA_VERSION,
  SIGNATURE_FIELD,
  agentKindFromWire,
  agentKindToWire,
  countFromWire,
  decodeHeader,
  decodeMessage,
  encodeMessage,
  nsFromWire,
  nsToWire,
  objectClassFromWire,
  objectClassToWire,
  signedNsFromWire,
  signedNsToWire,
  splitSignature,
  wire,
} from '../../src/messages/index.ts';
import { syntheticBev } from '../codec/synthetic-bev.ts';

const CAPTURE_NS = 1_700_000_000_123_456_789n; // beyond 2^53: a number would lose the last digits

function header(senderId = 'cav-302', sequence = 7) {
  return {
    schemaVersion: SCHEMA_VERSION,
    senderId,
    senderKind: agentKindToWire('vehicle'),
    sequence,
    captureTimeNs: nsToWire(CAPTURE_NS),
    senderPose: { x: 512.25, y: -33.5, z: 1.9, roll: 0.01, pitch: -0.02, yaw: 1.2, covariance: [0.04, 0.04, 0.09, 1e-4, 1e-4, 4e-4] },
    modelId: 'pp-v2xfuse-mixed-s1',
  };
}

test('the codec enum constants are the generated enums', () => {
  assert.equal(Quantization.FLOAT32, wire.Quantization.QUANTIZATION_FLOAT32);
  assert.equal(Quantization.FP16, wire.Quantization.QUANTIZATION_FP16);
  assert.equal(Quantization.INT8, wire.Quantization.QUANTIZATION_INT8);
  assert.equal(Quantization.INT4, wire.Quantization.QUANTIZATION_INT4);
  assert.equal(CellIndexCoding.ALL_CELLS, wire.CellIndexCoding.CELL_INDEX_CODING_ALL_CELLS);
  assert.equal(CellIndexCoding.DELTA_VARINT, wire.CellIndexCoding.CELL_INDEX_CODING_DELTA_VARINT);
  assert.equal(CellIndexCoding.BITMASK, wire.CellIndexCoding.CELL_INDEX_CODING_BITMASK);
  assert.equal(EntropyCoding.NONE, wire.EntropyCoding.ENTROPY_CODING_NONE);
  assert.equal(EntropyCoding.DEFLATE, wire.EntropyCoding.ENTROPY_CODING_DEFLATE);
  assert.equal(EntropyCoding.BROTLI, wire.EntropyCoding.ENTROPY_CODING_BROTLI);
});

test('a feature frame carries the codec header through the wire and decodes to the same map', () => {
  const { features, confidence, channels, height, width } = syntheticBev(8, 32, 32, 2);
  const enc = encodeFeatures(features, height, width, channels, 'int8+top10%+deflate', { confidence });
  const grid = { xMin: -51.2, xMax: 51.2, yMin: -51.2, yMax: 51.2, zMin: -3, zMax: 1, cellSize: 0.4, featureStride: 8, channels, height, width };
  // The codec header is the proto's FeatureEncoding field for field: it goes in as is.
  const bytes = encodeMessage('features', { header: header(), grid, encoding: enc.header, payload: enc.payload });
  const frame = decodeMessage('features', bytes);
  assert.ok(frame instanceof FeatureFrame);
  assert.equal(frame.header?.schemaVersion, 1);
  assert.equal(frame.header?.senderId, 'cav-302');
  assert.equal(nsFromWire(frame.header?.captureTimeNs), CAPTURE_NS);
  assert.equal(frame.header?.senderPose?.x, 512.25);
  assert.deepEqual((frame.header?.senderPose?.covariance ?? []).map((v) => Math.fround(v)), [0.04, 0.04, 0.09, 1e-4, 1e-4, 4e-4].map(Math.fround));
  assert.equal(frame.grid?.cellSize, Math.fround(0.4));
  assert.equal(frame.encoding?.spec, 'int8+top10%+deflate');
  // Scales and offsets are float32 on the wire and already float32 in the codec: unchanged.
  assert.deepEqual(frame.encoding?.channelScale, enc.header.channelScale);
  const dec = decodeFeatures(frame.payload, frame.encoding ?? {});
  const direct = decodeFeatures(enc.payload, enc.header);
  assert.deepEqual(dec.features, direct.features);
  // The message costs the payload plus a small header.
  assert.ok(bytes.byteLength > enc.bytes && bytes.byteLength < enc.bytes + 300, `${bytes.byteLength} vs payload ${enc.bytes}`);
});

test('point clouds, object lists, status and fusion results round-trip', () => {
  const points = new Float32Array([1.234, -5.678, -1.5, 0.25, 30, 20, 0.1, 1]);
  const pc = encodePoints(points, '1cm+deflate');
  const pcFrame = decodeMessage('points', encodeMessage('points', { header: header(), encoding: pc.header, payload: pc.payload }));
  assert.deepEqual(decodePoints(pcFrame.payload, pcFrame.encoding ?? {}).points, decodePoints(pc.payload, pc.header).points);
  assert.equal(pcFrame.encoding?.stepM, Math.fround(0.01));

  const objects = decodeMessage(
    'objects',
    encodeMessage('objects', {
      header: header(),
      objects: [
        {
          objectId: 65535,
          measurementDeltaNs: signedNsToWire(-25_000_000n),
          position: { x: 12.5, y: -3.25, z: -0.9, xConfidence: 0.3, yConfidence: 0.3, zConfidence: 0.5 },
          velocity: { x: 8, y: 0.5, z: 0 },
          dimensions: { x: 4.5, y: 2, z: 1.6 },
          yaw: 0.1,
          objectClass: objectClassToWire('pedestrian'),
          classConfidence: 0.8,
          existenceConfidence: 0.9,
        },
        { objectId: 2 },
      ],
    }),
  );
  assert.equal(objects.objects.length, 2);
  const [first, second] = objects.objects;
  assert.equal(first.objectId, 65535);
  assert.equal(signedNsFromWire(first.measurementDeltaNs), -25_000_000n);
  assert.equal(first.position?.y, -3.25);
  assert.equal(objectClassFromWire(first.objectClass), 'pedestrian');
  assert.equal(second.velocity, null, 'an absent velocity stays absent: not estimated');
  assert.equal(objectClassFromWire(second.objectClass), undefined);

  const status = decodeMessage(
    'status',
    encodeMessage('status', {
      header: header('rsu-1'),
      state: wire.AgentState.AGENT_STATE_RUNNING,
      fusionMode: wire.FusionMode.FUSION_MODE_INTERMEDIATE,
      codec: 'int8+top10%+deflate',
      bytesPublished: nsToWire(5_000_000_000n),
    }),
  );
  assert.equal(status.state, wire.AgentState.AGENT_STATE_RUNNING);
  assert.equal(countFromWire(status.bytesPublished), 5_000_000_000);
  assert.equal(agentKindFromWire(status.header?.senderKind), 'vehicle');

  const result = decodeMessage(
    'result',
    encodeMessage('result', {
      header: header('fusion-302'),
      mode: wire.FusionMode.FUSION_MODE_INTERMEDIATE,
      detections: [{ box: { x: 1, y: 2, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0.5 }, objectClass: 1, score: 0.75 }],
      tracks: [{ trackId: 4, predictions: [{ probability: 1, waypoints: [{ timeOffsetS: 0.5, x: 3, y: 2 }, { timeOffsetS: 1, x: 5, y: 2 }] }] }],
      contributions: [{ agentId: 'rsu-1', mode: wire.FusionMode.FUSION_MODE_INTERMEDIATE, used: true, bytes: 51234, captureTimeNs: nsToWire(CAPTURE_NS - 40_000_000n) }],
      latencies: [{ stage: 'fuse', ms: 3.5 }],
    }),
  );
  assert.equal(result.detections[0].box?.l, 4.5);
  assert.equal(result.tracks[0].predictions?.[0].waypoints?.[1].x, 5);
  assert.equal(result.contributions[0].bytes, 51234);
  assert.equal(nsFromWire(result.contributions[0].captureTimeNs), CAPTURE_NS - 40_000_000n);
});

test('64-bit conversions: bigint in, bigint out, at the edges', () => {
  for (const ns of [0n, 1n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 64n - 1n]) {
    const bytes = encodeMessage('status', { header: { captureTimeNs: nsToWire(ns) } });
    assert.equal(nsFromWire(decodeMessage('status', bytes).header?.captureTimeNs), ns);
  }
  for (const ns of [-1n, -(2n ** 63n), 2n ** 63n - 1n, -25n]) {
    const bytes = encodeMessage('objects', { objects: [{ measurementDeltaNs: signedNsToWire(ns) }] });
    assert.equal(signedNsFromWire(decodeMessage('objects', bytes).objects[0].measurementDeltaNs), ns);
  }
  // fixed64 is 8 bytes on the wire after its 1-byte tag (field 5, wire type 1 = 0x29).
  const headerBytes = wire.Header.encode({ captureTimeNs: nsToWire(0x0102030405060708n) }).finish();
  assert.deepEqual([...headerBytes], [0x29, 8, 7, 6, 5, 4, 3, 2, 1]);
  assert.throws(() => nsToWire(-1n), /does not fit an unsigned 64-bit field/);
  assert.throws(() => nsToWire(2n ** 64n), /does not fit/);
  assert.equal(nsFromWire(undefined), 0n);
});

test('malformed bytes throw MessageDecodeError naming the kind', () => {
  const good = encodeMessage('features', { header: header(), payload: new Uint8Array(100) });
  for (const bad of [good.subarray(0, good.length - 5), Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), Uint8Array.from([0x0f])]) {
    assert.throws(
      () => decodeMessage('features', bad),
      (err: unknown) => err instanceof MessageDecodeError && err.kind === 'features' && err.reason === 'malformed' && /^malformed features message \(\d+ bytes\): /.test(err.message),
    );
  }
});

test('splitSignature returns exactly the bytes the sender signed, wherever the signature field sits', () => {
  const unsigned = encodeMessage('objects', { header: header(), objects: [{ objectId: 1 }, { objectId: 2 }] });
  const signature = { ecdsaP256Sha256: new Uint8Array(64).fill(0xab), keyId: 'k1' };
  const signed = encodeMessage('objects', { header: header(), objects: [{ objectId: 1 }, { objectId: 2 }], signature });
  assert.equal(SIGNATURE_FIELD, 15);
  const split = splitSignature('objects', signed);
  assert.deepEqual(split.signed, unsigned);
  assert.equal(split.signed.buffer, signed.buffer, 'signature last: a view, no copy');
  assert.deepEqual(wire.Signature.decode(split.signature as Uint8Array).keyId, 'k1');
  assert.deepEqual(splitSignature('objects', unsigned), { signed: unsigned, signature: undefined });

  // Another encoder might put the signature first: the split still recovers the same signed bytes.
  const sigRecord = signed.subarray(unsigned.length);
  const reordered = new Uint8Array(signed.length);
  reordered.set(sigRecord, 0);
  reordered.set(unsigned, sigRecord.length);
  const split2 = splitSignature('objects', reordered);
  assert.deepEqual(split2.signed, unsigned);
  assert.deepEqual(split2.signature, split.signature);

  assert.throws(() => splitSignature('objects', signed.subarray(0, signed.length - 1)), /malformed objects message .*: field 15 runs past the end/);
  const twice = new Uint8Array([...signed, ...sigRecord]);
  assert.throws(() => splitSignature('objects', twice), /two signature fields/);
  assert.throws(() => splitSignature('objects', Uint8Array.from([0x0b])), /wire type 3/);
});

test('decodeHeader reads the header alone, as the full decode does, wherever it sits', () => {
  const init = {
    header: header('fusion-302', 41),
    mode: wire.FusionMode.FUSION_MODE_INTERMEDIATE,
    detections: Array.from({ length: 30 }, (_, k) => ({ box: { x: k, y: 2, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0.5 }, objectClass: 1, score: 0.5 })),
    tracks: [{ trackId: 4, predictions: [{ probability: 1, waypoints: [{ timeOffsetS: 0.5, x: 3, y: 2 }] }] }],
    signature: { ecdsaP256Sha256: new Uint8Array(64).fill(7), keyId: 'k1' },
  };
  const bytes = encodeMessage('result', init);
  const h = decodeHeader('result', bytes);
  assert.equal(nsFromWire(h.captureTimeNs), CAPTURE_NS);
  assert.equal(h.senderId, 'fusion-302');
  assert.equal(h.sequence, 41);
  assert.deepEqual(h.toJSON(), (decodeMessage('result', bytes).header as typeof h).toJSON());

  // The header moved behind the other fields, and written twice (the last wins, as protobufjs decodes it).
  const headerRecord = encodeMessage('status', { header: header('first', 1) });
  const later = encodeMessage('status', { header: header('second', 2) });
  const body = encodeMessage('result', { ...init, header: undefined });
  const reordered = new Uint8Array([...body, ...headerRecord, ...later]);
  assert.equal(decodeHeader('result', reordered).senderId, 'second');
  assert.equal(decodeMessage('result', reordered).header?.senderId, 'second');
  assert.equal(nsFromWire(decodeHeader('result', body).captureTimeNs), 0n, 'no header: an empty one');

  assert.throws(() => decodeHeader('result', bytes.subarray(0, bytes.length - 3)), (err: unknown) => err instanceof MessageDecodeError && err.kind === 'result');
  assert.throws(() => decodeHeader('result', Uint8Array.from([0x08, 0x01])), /header field has wire type 0/);
  // A header record whose own contents are broken.
  assert.throws(() => decodeHeader('status', Uint8Array.from([0x0a, 0x02, 0x29, 0x01])), /malformed status message \(4 bytes\): header: /);
});
