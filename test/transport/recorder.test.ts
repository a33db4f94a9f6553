import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { McapIndexedReader, type McapTypes } from '@mcap/core';
import protobuf from 'protobufjs';
// Adds Root.fromDescriptor: what a Foxglove-style reader does with the schema stored in the file.
import 'protobufjs/ext/descriptor/index.js';
import { openDataset } from '../../src/datasets/index.ts';
import { encodeMessage, nsToWire } from '../../src/messages/index.ts';
import { RECORDING_DECOMPRESS_HANDLERS, SessionRecorder, decimatePoints, zstdReady } from '../../src/transport/index.ts';
import { projectRoot, runCli } from '../cli/helpers.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');

const rootFromDescriptor = (bytes: Uint8Array): protobuf.Root =>
  (protobuf.Root as unknown as { fromDescriptor(b: Uint8Array): protobuf.Root }).fromDescriptor(bytes);

interface ReadBack {
  reader: McapIndexedReader;
  messages: { topic: string; schema: McapTypes.TypedMcapRecords['Schema']; channel: McapTypes.TypedMcapRecords['Channel']; message: McapTypes.TypedMcapRecords['Message'] }[];
  close(): Promise<void>;
}

async function readMcap(path: string): Promise<ReadBack> {
  const handle = await open(path);
  const size = (await handle.stat()).size;
  await zstdReady;
  const reader = await McapIndexedReader.Initialize({
    // As a Foxglove-compatible reader does: zstd is one of the two chunk compressions the MCAP spec names.
    decompressHandlers: RECORDING_DECOMPRESS_HANDLERS,
    readable: {
      size: async () => BigInt(size),
      read: async (offset: bigint, length: bigint) => {
        const buf = new Uint8Array(Number(length));
        await handle.read(buf, 0, buf.byteLength, Number(offset));
        return buf;
      },
    },
  });
  const messages: ReadBack['messages'] = [];
  for await (const message of reader.readMessages()) {
    const channel = reader.channelsById.get(message.channelId)!;
    messages.push({ topic: channel.topic, channel, schema: reader.schemasById.get(channel.schemaId)!, message });
  }
  return { reader, messages, close: () => handle.close() };
}

test('decimatePoints keeps every n-th x, y, z, intensity point', () => {
  const points = Float32Array.from({ length: 5 * 4 }, (_, i) => i);
  const kept = new Float32Array(decimatePoints(points, 2).buffer);
  assert.deepEqual([...kept], [0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19]);
});

test('a wire message written by the recorder decodes with the schema stored in the file alone', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-recorder-'));
  try {
    const path = join(dir, 'one.mcap');
    const rec = await SessionRecorder.create(path);
    const bytes = encodeMessage('result', {
      header: { senderId: 'fusion-7', captureTimeNs: nsToWire(123n), sendTimeNs: nsToWire(456n) },
      detections: [{ box: { x: 1, y: 2, z: 0, l: 4, w: 2, h: 1.5, yaw: 0.3 }, score: 0.9 }],
      tracks: [{ trackId: 5, predictions: [{ probability: 1, waypoints: [{ timeOffsetS: 1, x: 3, y: 4 }] }] }],
    });
    await rec.writeWireMessage('v2xfuse/v1/s/fusion/fusion-7/result', 'result', 'fusion-7', bytes, 1000n);
    const summary = await rec.close();
    assert.equal(summary.messages['v2xfuse/v1/s/fusion/fusion-7/result'], 1);

    const back = await readMcap(path);
    try {
      assert.equal(back.reader.header.profile, 'v2xfuse');
      assert.deepEqual(back.reader.chunkIndexes.map((c) => c.compression), ['zstd']);
      assert.equal(back.messages.length, 1);
      const [m] = back.messages;
      assert.equal(m.schema.encoding, 'protobuf');
      assert.equal(m.channel.messageEncoding, 'protobuf');
      assert.equal(m.channel.metadata.get('v2xfuse.kind'), 'result');
      assert.equal(m.message.logTime, 1000n);
      // The header's send time becomes the publish time.
      assert.equal(m.message.publishTime, 456n);
      // A Foxglove-style reader has only the file: the FileDescriptorSet must hold every type the message uses.
      const root = rootFromDescriptor(m.schema.data);
      const type = root.lookupType(m.schema.name);
      const decoded = type.toObject(type.decode(m.message.data), { longs: String }) as {
        detections: { box: { l: number }; score: number }[];
        tracks: { trackId: number; predictions: { waypoints: { x: number }[] }[] }[];
      };
      assert.equal(decoded.detections[0].box.l, 4);
      assert.ok(Math.abs(decoded.detections[0].score - 0.9) < 1e-6);
      assert.equal(decoded.tracks[0].trackId, 5);
      assert.equal(decoded.tracks[0].predictions[0].waypoints[0].x, 3);
    } finally {
      await back.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('chunks are zstd-compressed by default, stored plain on request, and read back the same either way', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-recorder-'));
  try {
    // A dense feature map's worth of repetitive bytes: what makes recordings large.
    const payload = encodeMessage('features', { header: { senderId: 'a', captureTimeNs: nsToWire(5n) }, payload: new Uint8Array(600_000).map((_, i) => (i * 7) % 13) });
    const sizes: Record<string, number> = {};
    for (const compression of ['zstd', 'none'] as const) {
      const path = join(dir, `${compression}.mcap`);
      const rec = await SessionRecorder.create(path, { compression });
      for (let i = 0; i < 4; i++) await rec.writeWireMessage('v2xfuse/v1/s/agent/a/features', 'features', 'a', payload, BigInt(i + 1));
      sizes[compression] = (await rec.close()).bytes;
      const back = await readMcap(path);
      try {
        assert.ok(back.reader.chunkIndexes.length >= 2, 'several 1 MB chunks');
        assert.ok(back.reader.chunkIndexes.every((c) => c.compression === (compression === 'zstd' ? 'zstd' : '')), compression);
        assert.equal(back.messages.length, 4);
        assert.deepEqual(back.messages[3].message.data, payload);
      } finally {
        await back.close();
      }
    }
    assert.ok(sizes.zstd < sizes.none / 20, `zstd ${sizes.zstd} B vs plain ${sizes.none} B`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a camera image the dataset lists but does not have is left out and counted, not a failed recording', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-recorder-'));
  try {
    const copy = join(dir, 'fixture');
    await cp(FIXTURE, copy, { recursive: true });
    await rm(join(copy, '100', '000028_camera2.png'));
    const seq = (await openDataset(copy)).scenarios[0];
    const rec = await SessionRecorder.create(join(dir, 'gap.mcap'));
    await rec.recordSequence(seq, { frames: 1, egoId: '100', epochNs: 1_000_000_000n });
    const summary = await rec.close();
    assert.equal(summary.imagesMissing, 1);
    const frame0 = await seq.frame(0);
    const images = Object.entries(summary.messages).filter(([topic]) => topic.includes('/camera/')).reduce((n, [, v]) => n + v, 0);
    assert.equal(images, frame0.agents.reduce((n, a) => n + a.cameras.length, 0) - 1);
    assert.equal(summary.messages['/dataset/agent/100/camera/camera2'], undefined);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('run --record writes results, status, features, points and ground truth of every frame', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-recorder-'));
  try {
    const path = join(dir, 'run.mcap');
    const run = await runCli(['run', FIXTURE, '--frames', '2', '--record', path], 170_000);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /recorded \d+ messages/);
    const back = await readMcap(path);
    try {
      const byKind = (kind: string) => back.messages.filter((m) => m.channel.metadata.get('v2xfuse.kind') === kind);
      const results = byKind('result');
      assert.equal(results.length, 2);
      assert.equal(results[0].schema.name, 'v2xfuse.v1.FusionResult');
      const statuses = byKind('status');
      const ds = await openDataset(FIXTURE);
      const seq = ds.scenarios[0];
      const agentIds = seq.agents.map((a) => a.id).sort();
      assert.deepEqual([...new Set(statuses.map((m) => m.channel.metadata.get('v2xfuse.sender')))].sort(), agentIds);
      assert.equal(byKind('features').length, 2 * agentIds.length);

      // Dataset channels line up with the results: same capture time per frame.
      const root = rootFromDescriptor(results[0].schema.data);
      const resultType = root.lookupType('v2xfuse.v1.FusionResult');
      const captureNs = results.map((r) => {
        const obj = resultType.toObject(resultType.decode(r.message.data), { longs: String }) as { header: { captureTimeNs: string } };
        return BigInt(obj.header.captureTimeNs);
      }).sort();
      const gt = back.messages.filter((m) => m.topic === '/dataset/ground_truth');
      assert.equal(gt.length, 2);
      assert.equal(gt[0].schema.name, 'foxglove.SceneUpdate');
      assert.equal(gt[0].channel.messageEncoding, 'json');
      assert.deepEqual(gt.map((m) => m.message.logTime).sort(), captureNs);
      const frame0 = await seq.frame(0);
      const gtIds = new Set(frame0.agents.flatMap((a) => a.boxes.map((b) => b.id)));
      const scene = JSON.parse(new TextDecoder().decode(gt[0].message.data)) as { entities: { id: string; cubes: { size: { x: number } }[] }[] };
      assert.equal(scene.entities.length, gtIds.size);
      assert.ok(scene.entities.every((e) => gtIds.has(e.id) && e.cubes.length === 1 && e.cubes[0].size.x > 0));

      const ego = frame0.agents[0];
      const cloudMsg = back.messages.find((m) => m.topic === `/dataset/agent/${ego.agentId}/lidar` && m.message.logTime === captureNs[0])!;
      assert.equal(cloudMsg.schema.name, 'foxglove.PointCloud');
      const cloud = JSON.parse(new TextDecoder().decode(cloudMsg.message.data)) as { data: string; point_stride: number; pose: { position: { x: number } } };
      const points = await ego.loadPoints();
      const data = new Float32Array(new Uint8Array(Buffer.from(cloud.data, 'base64')).buffer);
      assert.equal(data.length / 4, Math.ceil(points.length / 4 / 2));
      assert.deepEqual([...data.subarray(4, 8)], [...points.subarray(8, 12)]);
      assert.ok(Math.abs(cloud.pose.position.x - ego.lidarToWorld[3]) < 1e-9);
      assert.ok(back.messages.some((m) => m.schema.name === 'foxglove.CompressedImage'));
    } finally {
      await back.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
