// The page's data path without a browser: envelope framing, the store's frames and per-agent stats, and the
// payload decoders checked against the project's own codecs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeFeatures, encodePoints } from '../../src/codec/index.ts';
import { encodeMessage, nsToWire } from '../../src/messages/index.ts';
import { type Envelope, EnvelopeFormatError, decodeEnvelopes, encodeEnvelopes } from '../../src/viewer/index.ts';
import { cloudPoints, sentCells } from '../../src/viewer/web/payload.ts';
import { ViewerStore } from '../../src/viewer/web/store.ts';
import { wire } from '../../src/viewer/web/wire.ts';

const T0 = 1_763_000_000_123_456_789n; // beyond 2^53: a double would lose the last digits

function result(captureNs: bigint, contributions: { agentId: string; bytes: number; used: boolean; refusedReason?: string; latencyMs?: number }[]): Envelope {
  return {
    kind: 'result', sender: 'fusion-a', session: 's1', logNs: captureNs + 5_000_000n,
    data: encodeMessage('result', { header: { senderId: 'fusion-a', captureTimeNs: nsToWire(captureNs) }, contributions, detections: [{ box: { x: 1, y: 2, z: 0, l: 4, w: 2, h: 1.5, yaw: 0 }, score: 0.8 }] }),
  };
}

test('envelopes survive framing, 64-bit log times included, and a truncated stream is refused', () => {
  const list: Envelope[] = [
    { kind: 'gt', sender: '', session: '', logNs: T0, data: new TextEncoder().encode('{"entities":[]}') },
    { kind: 'camera', sender: 'a', session: 's', camera: 'front', logNs: T0 + 1n, data: new Uint8Array([1, 2, 3]) },
  ];
  const bytes = encodeEnvelopes(list);
  const back = decodeEnvelopes(bytes);
  assert.equal(back.length, 2);
  assert.equal(back[0].logNs, T0);
  assert.equal(back[1].camera, 'front');
  assert.deepEqual([...back[1].data], [1, 2, 3]);
  assert.throws(() => decodeEnvelopes(bytes.subarray(0, bytes.length - 1)), EnvelopeFormatError);
});

test('the store orders frames by exact capture time and computes bytes, Mbps, drops and latency per agent', () => {
  const store = new ViewerStore();
  // Arrival order differs from capture order; the two times differ only in the last nanosecond.
  store.add(result(T0 + 100_000_001n, [{ agentId: 'ego', bytes: 1000, used: true, latencyMs: 10 }, { agentId: 'b', bytes: 0, used: false, refusedReason: 'stale' }]));
  store.add(result(T0 + 1n, [{ agentId: 'ego', bytes: 3000, used: true, latencyMs: 30 }, { agentId: 'b', bytes: 50_000, used: true, latencyMs: 40 }]));
  assert.deepEqual(store.frames(), [T0 + 1n, T0 + 100_000_001n]);
  assert.equal(store.framePeriodS(), 0.1);
  const stats = Object.fromEntries(store.stats(1).map((s) => [s.id, s]));
  assert.equal(stats.ego.meanBytes, 2000);
  assert.ok(Math.abs(stats.ego.mbps - (2000 * 8) / 0.1 / 1e6) < 1e-9);
  assert.equal(stats.ego.meanLatencyMs, 20);
  assert.equal(stats.b.dropped, 1);
  assert.deepEqual(stats.b.dropReasons, { stale: 1 });
  assert.equal(stats.b.refusedReason, 'stale');
  // Up to frame 0 only: nothing dropped yet.
  assert.equal(store.stats(0).find((s) => s.id === 'b')!.dropped, 0);
});

test('the store counts sequence gaps as lost messages and follows a newer run', () => {
  const store = new ViewerStore();
  for (const seq of [1, 2, 5]) {
    store.add({ kind: 'features', sender: 'b', session: 's1', logNs: T0, data: encodeMessage('features', { header: { senderId: 'b', sequence: seq, captureTimeNs: nsToWire(T0 + BigInt(seq)) } }) });
  }
  store.add(result(T0, [{ agentId: 'b', bytes: 10, used: true }]));
  assert.equal(store.stats(0).find((s) => s.id === 'b')!.dropReasons.lost, 2);
  // A retained status of an old run does not switch; a result of a new run does.
  store.add({ kind: 'status', sender: 'x', session: 's0', logNs: T0, data: encodeMessage('status', { header: { senderId: 'x' } }) });
  assert.equal(store.session, 's1');
  store.add({ ...result(T0 + 7n, []), session: 's2' });
  assert.equal(store.session, 's2');
  assert.deepEqual(store.frames(), [T0 + 7n]);
});

test('ground truth and recorded clouds (Foxglove JSON) are read into boxes and points', () => {
  const store = new ViewerStore();
  const yaw = 0.7;
  const scene = { entities: [{ id: '42', metadata: [{ key: 'class', value: 'vehicle' }], cubes: [{ pose: { position: { x: 5, y: 6, z: 1 }, orientation: { x: 0, y: 0, z: Math.sin(yaw / 2), w: Math.cos(yaw / 2) } }, size: { x: 4, y: 2, z: 1.5 } }] }] };
  store.add({ kind: 'gt', sender: '', session: '', logNs: T0, data: new TextEncoder().encode(JSON.stringify(scene)) });
  const box = store.gt.get(T0)![0];
  assert.equal(box.cls, 'vehicle');
  assert.ok(Math.abs(box.yaw - yaw) < 1e-9);
  assert.equal(box.l, 4);
  const pts = new Float32Array([1, 2, 3, 0.5, 4, 5, 6, 1]);
  const cloud = { timestamp: { sec: Number(T0 / 1_000_000_000n), nsec: Number(T0 % 1_000_000_000n) }, point_stride: 16, pose: { position: { x: 0, y: 0, z: 0 }, orientation: { x: 0, y: 0, z: 0, w: 1 } }, data: Buffer.from(pts.buffer).toString('base64') };
  store.add({ kind: 'lidar', sender: 'a', session: '', logNs: 0n, data: new TextEncoder().encode(JSON.stringify(cloud)) });
  assert.deepEqual([...store.agents.get('a')!.clouds.get(T0)!.points], [...pts]);
});

test('cells sent decode from the payload exactly as the codec selected them', async () => {
  const H = 24, W = 20, C = 4;
  const features = new Float32Array(C * H * W).map((_, i) => Math.sin(i * 0.37) * ((i * 7919) % 13));
  for (const spec of ['int8+top10%+deflate', 'fp16+top30%', 'int8+top60%+deflate', 'raw']) {
    const confidence = new Float32Array(H * W).map((_, i) => ((i * 2654435761) % 1000) / 1000);
    const enc = encodeFeatures(features, H, W, C, spec, { confidence });
    const frame = wire.FeatureFrame.decode(encodeMessage('features', { encoding: enc.header as never, payload: enc.payload }));
    const mask = await sentCells(frame);
    assert.ok(mask, spec);
    assert.deepEqual([...mask], [...enc.mask], spec);
  }
});

test('early-fusion points decode from the payload within the codec step', async () => {
  const points = new Float32Array(200 * 4).map((_, i) => (i % 4 === 3 ? (i % 7) / 7 : Math.sin(i) * 40));
  const enc = encodePoints(points, '1cm+deflate');
  const frame = wire.PointCloudFrame.decode(encodeMessage('points', { encoding: enc.header as never, payload: enc.payload }));
  const decoded = (await cloudPoints(frame))!;
  assert.equal(decoded.length, points.length);
  for (let i = 0; i < points.length; i++) {
    assert.ok(Math.abs(decoded[i] - points[i]) <= (i % 4 === 3 ? 1 / 255 + 1e-6 : 0.005 + 1e-6), `value ${i}: ${decoded[i]} vs ${points[i]}`);
  }
});
