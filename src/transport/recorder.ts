// `v2xfuse run --record FILE.mcap`: every message of a session, as it crossed the broker, into an MCAP file (the
// robotics log format), each channel with its protobuf schema so Foxglove-compatible tools decode it too. Beside
// them the recorder writes what never crosses the broker but a viewer wants: each agent's raw LiDAR points
// (decimated), camera images and the ground-truth boxes, on channels shaped as Foxglove's PointCloud,
// CompressedImage and SceneUpdate (JSON encoding), so those also draw in Foxglove as they are.
//
// Channel layout:
//   <the MQTT topic>                           protobuf v2xfuse.v1.{FeatureFrame,ObjectList,PointCloudFrame,
//                                              AgentStatus,FusionResult}; log time = arrival at the recorder,
//                                              publish time = the header's send time; metadata v2xfuse.kind,
//                                              v2xfuse.sender
//   /dataset/ground_truth                      json foxglove.SceneUpdate, world frame, log time = capture time
//   /dataset/agent/{id}/lidar                  json foxglove.PointCloud, frame "world" with the LiDAR pose
//   /dataset/agent/{id}/camera/{name}          json foxglove.CompressedImage
//
// Chunks are zstd-compressed (one of the two chunk compressions the MCAP spec names, the one Foxglove's and the
// mcap CLI's writers default to): feature maps and base64 JSON shrink several-fold. @foxglove/wasm-zstd is the
// zstd the MCAP maintainers ship for their own readers, built to WebAssembly: no native build, same bytes anywhere.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { McapWriter, type IWritable } from '@mcap/core';
import zstd from '@foxglove/wasm-zstd';
import * as foxgloveSchemas from '@foxglove/schemas/jsonschema.js';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';
import type { CooperativeSequence, GroundTruthBox } from '../datasets/index.ts';
import { type Mat4, matrixToPose } from '../geometry/index.ts';
import { type MessageKind, decodeMessage, nsFromWire } from '../messages/index.ts';
import { MqttLink } from './mqtt-link.ts';
import { allAgentsFilter, fusionResultsFilter, parseTopic } from './topics.ts';

/** The MCAP profile string: none of the well-known ones (ros1, ros2) fits a protobuf + JSON mix. */
export const RECORDING_PROFILE = 'v2xfuse';
export const GROUND_TRUTH_CHANNEL = '/dataset/ground_truth';
export const lidarChannel = (agentId: string): string => `/dataset/agent/${agentId}/lidar`;
export const cameraChannel = (agentId: string, camera: string): string => `/dataset/agent/${agentId}/camera/${camera}`;

const PROTO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../proto');
const PROTO_FILES = ['common', 'features', 'objects', 'points', 'status', 'fusion'].map((n) => `v2xfuse/v1/${n}.proto`);

const SCHEMA_OF_KIND: Record<MessageKind, string> = {
  features: 'v2xfuse.v1.FeatureFrame',
  objects: 'v2xfuse.v1.ObjectList',
  points: 'v2xfuse.v1.PointCloudFrame',
  status: 'v2xfuse.v1.AgentStatus',
  result: 'v2xfuse.v1.FusionResult',
};

/** Colours per ground-truth class (RGBA 0..1), the same the viewer's legend shows. */
const CLASS_COLOUR: Record<string, { r: number; g: number; b: number; a: number }> = {
  vehicle: { r: 0.2, g: 0.85, b: 0.3, a: 0.35 },
  pedestrian: { r: 0.95, g: 0.8, b: 0.2, a: 0.35 },
  cyclist: { r: 0.3, g: 0.8, b: 0.95, a: 0.35 },
  other: { r: 0.7, g: 0.7, b: 0.7, a: 0.35 },
};

/** How chunks are compressed: 'zstd' (the default) or 'none' (a plain file, for tools without zstd). */
export type RecordingCompression = 'zstd' | 'none';
export const RECORDING_COMPRESSIONS: readonly RecordingCompression[] = ['zstd', 'none'];
/** zstd's own default level: on a 20-frame run 79 MB, where level 9 gives 78 MB at 6× the time and level 1 83 MB. */
const ZSTD_LEVEL = 3;

/** MCAP's decompressHandlers for what SessionRecorder writes (await zstdReady first). */
export const RECORDING_DECOMPRESS_HANDLERS = {
  zstd: (buffer: Uint8Array, decompressedSize: bigint): Uint8Array => zstd.decompress(buffer, Number(decompressedSize)),
};
/** Settles once the zstd WebAssembly module is loaded. */
export const zstdReady: Promise<unknown> = zstd.isLoaded;

export class RecorderError extends Error {
  readonly userFacing = true;
  constructor(readonly path: string, detail: string) {
    super(`recording ${path}: ${detail}`);
    this.name = 'RecorderError';
  }
}

let cachedDescriptorSet: Uint8Array | undefined;

/**
 * The wire schema as one self-contained FileDescriptorSet (what MCAP's protobuf schema encoding carries), built from
 * the same .proto files the generated code comes from.
 */
export function wireDescriptorSet(): Uint8Array {
  if (cachedDescriptorSet) return cachedDescriptorSet;
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(PROTO_ROOT, target);
  root.loadSync(PROTO_FILES, { keepCase: true });
  root.resolveAll();
  const set = (root as unknown as { toDescriptor(syntax: string): protobuf.Message }).toDescriptor('proto3');
  cachedDescriptorSet = (descriptor as unknown as { FileDescriptorSet: protobuf.Type }).FileDescriptorSet.encode(set).finish();
  return cachedDescriptorSet;
}

class FileWritable implements IWritable {
  #offset = 0n;
  constructor(private readonly handle: FileHandle) {}
  async write(buffer: Uint8Array): Promise<void> {
    await this.handle.write(buffer);
    this.#offset += BigInt(buffer.byteLength);
  }
  position(): bigint {
    return this.#offset;
  }
}

export interface RecordingSummary {
  path: string;
  /** Messages written, per channel topic. */
  messages: Record<string, number>;
  bytes: number;
  /** Camera images the dataset lists but whose files are not there (a sequence simulated without images). */
  imagesMissing: number;
}

export interface DatasetRecordingOptions {
  frames: number;
  /** Frames are stamped with the ego's capture times (the results' header.capture_time_ns). */
  egoId: string;
  /** The replay epoch the agents stamp capture times from (`agent --epoch-ns`). */
  epochNs: bigint;
  /** Keep every n-th LiDAR point (default 2): a viewer needs the shape, not every return. */
  pointStride?: number;
  /** Record camera images (default true). */
  cameras?: boolean;
}

function quaternionOf(roll: number, pitch: number, yaw: number) {
  // R = Rz(yaw)·Ry(pitch)·Rx(roll), the project's convention (src/geometry).
  const cr = Math.cos(roll / 2), sr = Math.sin(roll / 2);
  const cp = Math.cos(pitch / 2), sp = Math.sin(pitch / 2);
  const cy = Math.cos(yaw / 2), sy = Math.sin(yaw / 2);
  return {
    w: cr * cp * cy + sr * sp * sy,
    x: sr * cp * cy - cr * sp * sy,
    y: cr * sp * cy + sr * cp * sy,
    z: cr * cp * sy - sr * sp * cy,
  };
}

function foxglovePose(m: Mat4) {
  const p = matrixToPose(m);
  return { position: { x: p.x, y: p.y, z: p.z }, orientation: quaternionOf(p.roll, p.pitch, p.yaw) };
}

function foxgloveTime(ns: bigint) {
  return { sec: Number(ns / 1_000_000_000n), nsec: Number(ns % 1_000_000_000n) };
}

/** Every n-th point of an x, y, z, intensity cloud, as little-endian float32 bytes. */
export function decimatePoints(points: Float32Array, stride: number): Uint8Array {
  const n = Math.ceil(points.length / 4 / stride);
  const out = new Float32Array(n * 4);
  for (let i = 0, o = 0; i < points.length / 4; i += stride, o += 4) out.set(points.subarray(i * 4, i * 4 + 4), o);
  return new Uint8Array(out.buffer);
}

/** A foxglove.SceneUpdate of ground-truth cubes (world frame); each entity's id is the dataset's object id. */
export function groundTruthScene(boxes: readonly GroundTruthBox[], captureNs: bigint) {
  return {
    deletions: [{ timestamp: foxgloveTime(captureNs), type: 1, id: '' }],
    entities: boxes.map((b) => ({
      timestamp: foxgloveTime(captureNs),
      frame_id: 'world',
      id: b.id,
      lifetime: { sec: 0, nsec: 0 },
      frame_locked: false,
      metadata: [{ key: 'class', value: b.cls }, { key: 'raw_class', value: b.rawClass }],
      arrows: [], cylinders: [], lines: [], models: [], spheres: [], texts: [], triangles: [],
      cubes: [{
        pose: { position: { x: b.box.x, y: b.box.y, z: b.box.z }, orientation: quaternionOf(0, 0, b.box.yaw) },
        size: { x: b.box.l, y: b.box.w, z: b.box.h },
        color: CLASS_COLOUR[b.cls] ?? CLASS_COLOUR.other,
      }],
    })),
  };
}

/**
 * Writes one session into an MCAP file. Messages reach it from its own MQTT subscription (it is one more
 * subscriber, as a logger on a vehicle would be) and, for the dataset channels, from recordSequence.
 */
export class SessionRecorder {
  readonly #writer: McapWriter;
  readonly #handle: FileHandle;
  readonly #path: string;
  // McapWriter corrupts the file if calls overlap: every write goes through this chain.
  #queue: Promise<unknown> = Promise.resolve();
  #failure: Error | undefined;
  readonly #schemas = new Map<string, number>();
  readonly #channels = new Map<string, number>();
  readonly #sequence = new Map<number, number>();
  readonly #counts: Record<string, number> = {};
  #imagesMissing = 0;
  #link: MqttLink | undefined;
  #closed = false;

  private constructor(path: string, handle: FileHandle, compression: RecordingCompression) {
    this.#path = path;
    this.#handle = handle;
    this.#writer = new McapWriter({
      writable: new FileWritable(handle),
      useChunks: true,
      chunkSize: 1 << 20,
      ...(compression === 'zstd' ? { compressChunk: (data: Uint8Array) => ({ compression: 'zstd', compressedData: zstd.compress(data, ZSTD_LEVEL) }) } : {}),
    });
  }

  /** Creates (or truncates) the file and writes the MCAP header. */
  static async create(path: string, opts: { compression?: RecordingCompression } = {}): Promise<SessionRecorder> {
    const compression = opts.compression ?? 'zstd';
    if (compression === 'zstd') await zstdReady;
    let handle: FileHandle;
    try {
      handle = await open(path, 'w');
    } catch (err) {
      throw new RecorderError(path, (err as Error).message);
    }
    const r = new SessionRecorder(path, handle, compression);
    await r.#enqueue(() => r.#writer.start({ profile: RECORDING_PROFILE, library: 'v2xfuse' }));
    return r;
  }

  /** Subscribes to every agent's and fusion node's messages of `session` on the broker at `brokerUrl`. */
  async follow(brokerUrl: string, session: string): Promise<void> {
    this.#link = await MqttLink.connect({ url: brokerUrl, clientId: `v2xfuse-recorder-${session}` });
    this.#link.onMessage((topic, payload, arrivalNs) => {
      const parsed = parseTopic(topic);
      if (!parsed || this.#closed) return;
      // The payload buffer is MQTT.js's: copy before the write is queued.
      void this.writeWireMessage(topic, parsed.kind, parsed.id, payload.slice(), arrivalNs).catch(() => {});
    });
    // QoS 1: a recording that silently misses results is worse than a slower one.
    await this.#link.subscribe([allAgentsFilter(session), fusionResultsFilter(session)], 1);
  }

  /** One message as it crossed the broker, on a channel named after its topic. */
  writeWireMessage(topic: string, kind: MessageKind, sender: string, payload: Uint8Array, logTimeNs: bigint): Promise<void> {
    let publishNs = logTimeNs;
    try {
      const sent = nsFromWire(decodeMessage(kind, payload).header?.sendTimeNs);
      if (sent > 0n) publishNs = sent;
    } catch {
      // A malformed message is recorded as it came: a recording is evidence too.
    }
    return this.#enqueue(async () => {
      const schemaId = await this.#schema(SCHEMA_OF_KIND[kind], 'protobuf', () => wireDescriptorSet());
      const channelId = await this.#channel(topic, schemaId, 'protobuf', { 'v2xfuse.kind': kind, 'v2xfuse.sender': sender });
      await this.#add(channelId, topic, logTimeNs, publishNs, payload);
    });
  }

  /**
   * The dataset side of a replay: per frame, ground truth and each agent's points (and camera images), stamped with
   * the capture time the ego agent puts on that frame, so a viewer lines them up with the results.
   */
  async recordSequence(seq: CooperativeSequence, opts: DatasetRecordingOptions): Promise<void> {
    const stride = Math.max(1, Math.floor(opts.pointStride ?? 2));
    const t0 = (await seq.frame(0)).timestampNs;
    for (let i = 0; i < opts.frames; i++) {
      const frame = await seq.frame(i);
      const ego = frame.agents.find((a) => a.agentId === opts.egoId);
      if (!ego) continue;
      // As run.ts stamps the replay: the run's epoch plus the ego's offset into the sequence.
      const captureNs = opts.epochNs + BigInt(Math.round(Number(ego.timestampNs - t0)));
      const byId = new Map<string, GroundTruthBox>();
      for (const box of frame.cooperativeBoxes ?? frame.agents.flatMap((a) => a.boxes)) if (!byId.has(box.id)) byId.set(box.id, box);
      await this.writeJson(GROUND_TRUTH_CHANNEL, 'foxglove.SceneUpdate', captureNs, groundTruthScene([...byId.values()], captureNs));
      for (const agent of frame.agents) {
        const data = decimatePoints(await agent.loadPoints(), stride);
        await this.writeJson(lidarChannel(agent.agentId), 'foxglove.PointCloud', captureNs, {
          timestamp: foxgloveTime(captureNs),
          frame_id: 'world',
          pose: foxglovePose(agent.lidarToWorld),
          point_stride: 16,
          fields: [
            { name: 'x', offset: 0, type: 7 },
            { name: 'y', offset: 4, type: 7 },
            { name: 'z', offset: 8, type: 7 },
            { name: 'intensity', offset: 12, type: 7 },
          ],
          data: Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64'),
        }, { 'v2xfuse.sender': agent.agentId, 'v2xfuse.kind': agent.kind });
        if (opts.cameras === false) continue;
        for (const cam of agent.cameras) {
          let bytes: Buffer;
          try {
            bytes = await readFile(cam.path);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
            this.#imagesMissing++;
            continue;
          }
          const format = cam.path.toLowerCase().endsWith('.png') ? 'png' : 'jpeg';
          await this.writeJson(cameraChannel(agent.agentId, cam.name), 'foxglove.CompressedImage', captureNs, {
            timestamp: foxgloveTime(captureNs),
            frame_id: `${agent.agentId}/${cam.name}`,
            data: bytes.toString('base64'),
            format,
          }, { 'v2xfuse.sender': agent.agentId });
        }
      }
    }
  }

  /** A JSON message on a channel whose schema is one of Foxglove's (by its full name, e.g. foxglove.PointCloud). */
  writeJson(topic: string, schemaName: string, logTimeNs: bigint, message: unknown, metadata: Record<string, string> = {}): Promise<void> {
    const data = new TextEncoder().encode(JSON.stringify(message));
    return this.#enqueue(async () => {
      const schemaId = await this.#schema(schemaName, 'jsonschema', () => {
        const short = schemaName.replace(/^foxglove\./, '') as keyof typeof foxgloveSchemas;
        const schema = foxgloveSchemas[short];
        if (!schema) throw new RecorderError(this.#path, `no Foxglove schema named ${schemaName}`);
        return new TextEncoder().encode(JSON.stringify(schema));
      });
      const channelId = await this.#channel(topic, schemaId, 'json', metadata);
      await this.#add(channelId, topic, logTimeNs, logTimeNs, data);
    });
  }

  /** Stops following the broker, writes the summary and index, closes the file. */
  async close(): Promise<RecordingSummary> {
    if (!this.#closed) {
      this.#closed = true;
      await this.#link?.end().catch(() => {});
      await this.#enqueue(() => this.#writer.end());
      await this.#handle.close();
    }
    if (this.#failure) throw new RecorderError(this.#path, this.#failure.message);
    return { path: this.#path, messages: { ...this.#counts }, bytes: (await stat(this.#path)).size, imagesMissing: this.#imagesMissing };
  }

  async #schema(name: string, encoding: string, data: () => Uint8Array): Promise<number> {
    let id = this.#schemas.get(name);
    if (id === undefined) {
      id = await this.#writer.registerSchema({ name, encoding, data: data() });
      this.#schemas.set(name, id);
    }
    return id;
  }

  async #channel(topic: string, schemaId: number, messageEncoding: string, metadata: Record<string, string>): Promise<number> {
    let id = this.#channels.get(topic);
    if (id === undefined) {
      id = await this.#writer.registerChannel({ topic, schemaId, messageEncoding, metadata: new Map(Object.entries(metadata)) });
      this.#channels.set(topic, id);
    }
    return id;
  }

  async #add(channelId: number, topic: string, logTime: bigint, publishTime: bigint, data: Uint8Array): Promise<void> {
    const sequence = (this.#sequence.get(channelId) ?? 0) + 1;
    this.#sequence.set(channelId, sequence);
    await this.#writer.addMessage({ channelId, sequence, logTime, publishTime, data });
    this.#counts[topic] = (this.#counts[topic] ?? 0) + 1;
  }

  #enqueue<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(() => {
      if (this.#failure) throw this.#failure;
      return work();
    });
    // The first failure (a full disk) sticks: later writes fail fast and close() reports it.
    this.#queue = next.catch((err: Error) => {
      this.#failure ??= err;
    });
    return next;
  }
}
