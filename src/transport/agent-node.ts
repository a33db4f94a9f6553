// One agent node: replays one agent's frames from a dataset, runs its encoder, encodes what its fusion mode sends
// (BEV features, an object list, or its points), and publishes it over MQTT, with its status retained and a last
// will that says it went offline. Everything it measures (bytes, stage times) comes back in a summary.
import { type CodecCapabilities, assertCodecAvailable, encodeFeatures, encodePoints, parseCodecSpec, parsePointCodecSpec, formatCodecSpec, formatPointCodecSpec } from '../codec/index.ts';
import { type AgentFrame, type CooperativeFrame, openDataset } from '../datasets/index.ts';
import { type WireFreeSpace, FreeSpaceBuilder, detectionsToObjects, featureConfidenceMap, freeSpaceGrid, objectsOutsideSentCells, positionConfidenceFor, wireFreeSpace } from '../fusion/index.ts';
import type { Detection } from '../eval/index.ts';
import { matrixToPose } from '../geometry/index.ts';
import {
  type AgentStatusInit,
  type HeaderInit,
  type MessageInitOfKind,
  type MessageKind,
  SCHEMA_VERSION,
  type SigningKey,
  agentKindToWire,
  encodeMessage,
  loadSigningKey,
  nsToWire,
  signMessage,
  wire,
} from '../messages/index.ts';
import {
  AgentSensorEncoder,
  CameraEncoder,
  ChannelReducer,
  type DeviceOption,
  PerceptionModels,
  type SensorModality,
  channelReductionRatios,
  describeFeatureGrid,
  featureShape,
  type Precision,
} from '../perception/index.ts';
import { MqttLink } from './mqtt-link.ts';
import { epochNowNs } from './clock.ts';
import { collectGarbageNow } from './heap.ts';
import { pickScenario, replayAgentFrames } from './replay.ts';
import { agentTopic, replayStartTopic, replayTickTopic } from './topics.ts';

/** hybrid: the features of the cells its codec selects, plus an object list of the detections outside them. */
export type AgentFusionMode = 'intermediate' | 'late' | 'early' | 'hybrid';
export const AGENT_FUSION_MODES: readonly AgentFusionMode[] = ['intermediate', 'late', 'early', 'hybrid'];

/**
 * What a mode sends when no --codec is given. Features: Where2comm's selection (the 10 % of cells the sender's own
 * head is most confident about), int8, deflate: about 66 kB a message, where int8+deflate of every cell is about
 * 340 kB, at the same AP on the held-out intersection sequence (models/README.md). Points: 1 cm steps, deflate.
 */
export const DEFAULT_FEATURE_CODEC = 'int8+top10%+deflate';
export const DEFAULT_POINT_CODEC = '1cm+deflate';

/**
 * Frames an agent encodes, untimed and unsent, before it says it is running. With 3, the first streamed frame still
 * took 21–25 ms in the codec (5 steady) and the ego's features reached the node 73–84 ms after capture (46
 * steady); with 10, 5 ms and 55–63 ms (`run --preencode-collaborators`: three runs with 3, two with 10).
 */
const WARM_UP_FRAMES = 10;
/** Frames whose scans an agent waiting for the start reads once beforehand (5 s at 10 Hz). */
const READ_AHEAD_SCANS = 50;

/** MQTT 5 message expiry of sensor-rate messages: a broker drops them after this instead of delivering stale data. */
export const SENSOR_MESSAGE_EXPIRY_S = 1;

export interface AgentNodeOptions {
  agentId: string;
  session: string;
  /** A dataset folder any reader opens; the agent replays its own frames of one scenario. */
  dataset: string;
  /** Which scenario (sequence) of the dataset, by name; default the first. */
  scenario?: string;
  broker: string;
  username?: string;
  password?: string;
  mode: AgentFusionMode;
  /** Feature codec (intermediate) or point codec (early); objects (late) need none. */
  codec?: string;
  /** Send the free-space map of its own LiDAR with each object list (late) or feature map (intermediate, hybrid): the
   * ego agent does, for its fusion node's consistency check (src/fusion/free-space.ts). Not early, not camera-only. */
  freeSpace?: boolean;
  rateHz: number;
  /** Take frame i only once the replay clock (replayTickTopic, published by `v2xfuse run`) says i: every agent
   * captures "at the same time", as synchronised sensors do. With rateHz 0. */
  lockstep?: boolean;
  /** Capture time of the sequence's first frame; shared by every agent of a run. Default: now. */
  epochNs?: bigint;
  /** Take the epoch from the run's start message (replayStartTopic), published once every agent says it is
   * running, instead of epochNs: agents that prepare first (preencode) start together. */
  waitForStart?: boolean;
  /**
   * Encode every frame before the replay starts, then publish each at its capture time plus the time its own
   * encoding took. An agent with a computer of its own, emulated on a machine it shares with the others: its
   * messages arrive when they would, without taking CPU from the nodes being measured. With rateHz > 0.
   */
  preencode?: boolean;
  /** Paced: skip a frame whose successor is already due (a live sensor's queue of one; ReplayOptions.latestOnly);
   * skipped frames are listed in the summary. */
  latestOnly?: boolean;
  maxFrames?: number;
  models: string;
  device?: DeviceOption;
  threads?: number;
  /** float32 (default) or int8: the manifest's int8 backbone and head (PerceptionModelsOptions.precision). */
  precision?: Precision;
  skipMissing?: boolean;
  /** Send the GPS-noisy pose the dataset records (what a real agent knows) instead of the true one. */
  noisyPoses?: boolean;
  /** Which sensors make its BEV features: LiDAR (default), its cameras, or both (element-wise max); the camera
   * models come from the manifest. Early fusion sends points, so it is LiDAR only. */
  modality?: SensorModality;
  /** PEM private key (ECDSA P-256) to sign every message with. */
  signingKeyPath?: string;
  signal?: AbortSignal;
  log?: (line: string) => void;
  onFrame?: (done: number, total: number) => void;
}

type FramePart =
  | { kind: 'features'; body: Omit<MessageInitOfKind['features'], 'header'> }
  | { kind: 'objects'; body: Omit<MessageInitOfKind['objects'], 'header'> }
  | { kind: 'points'; body: Omit<MessageInitOfKind['points'], 'header'> };

/** Waits for the run's start message (a retained decimal epoch in ns) on `topic`; an epoch more than a minute old is
 * a leftover of an earlier run on a reused session, not this one's start, and is ignored. */
async function waitForEpoch(link: MqttLink, topic: string, signal?: AbortSignal): Promise<bigint> {
  if (signal?.aborted) throw new AgentNodeError('stopped before the replay started');
  let unsubscribe = () => {};
  let onAbort = () => {};
  try {
    return await new Promise<bigint>((resolve, reject) => {
      unsubscribe = link.onMessage((t, payload) => {
        if (t !== topic) return;
        const text = new TextDecoder().decode(payload);
        if (!/^\d{1,20}$/.test(text)) return;
        const epochNs = BigInt(text);
        if (epochNs >= epochNowNs() - 60_000_000_000n) resolve(epochNs);
      });
      onAbort = () => reject(new AgentNodeError('stopped before the replay started'));
      signal?.addEventListener('abort', onAbort, { once: true });
      link.subscribe(topic, 1).catch(reject);
    });
  } finally {
    unsubscribe();
    signal?.removeEventListener('abort', onAbort);
  }
}

export interface AgentFrameRecord {
  index: number;
  captureNs: string;
  /** Wall clock when the agent took the frame, and when its message left; ns since the Unix epoch. */
  startWallNs: string;
  publishWallNs: string;
  bytes: number;
}

export interface AgentNodeSummary {
  agentId: string;
  kind: 'vehicle' | 'rsu';
  mode: AgentFusionMode;
  codec: string;
  modelId: string;
  protocolVersion: number;
  frames: number;
  /** Wire bytes of each message published, by kind (the status messages included). */
  messageBytes: Partial<Record<MessageKind, number[]>>;
  /** Per stage, one value (ms) per frame. */
  stageMs: Record<string, number[]>;
  perFrame: AgentFrameRecord[];
  /** latestOnly: the frames skipped because the agent was still busy when the next one was due. */
  skipped?: { index: number; captureNs: string }[];
  reconnects: number;
}

export class AgentNodeError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'AgentNodeError';
  }
}

/** Replays, encodes and publishes one agent's frames; resolves with what it measured once the sequence ends. */
export async function runAgentNode(o: AgentNodeOptions): Promise<AgentNodeSummary> {
  const log = o.log ?? (() => {});
  const ds = await openDataset(o.dataset, { skipMissing: o.skipMissing });
  const seq = pickScenario(ds.scenarios, o.scenario, ds.root);
  const info = seq.agents.find((a) => a.id === o.agentId);
  if (!info) throw new AgentNodeError(`--id ${o.agentId}: no such agent in ${seq.name} (agents: ${seq.agents.map((a) => a.id).join(', ')})`);

  // Parse the codec before anything slow, so a typo fails at once.
  const sendsFeatures = o.mode === 'intermediate' || o.mode === 'hybrid';
  const featureSpec = sendsFeatures ? parseCodecSpec(o.codec ?? DEFAULT_FEATURE_CODEC) : undefined;
  const pointSpec = o.mode === 'early' ? parsePointCodecSpec(o.codec ?? DEFAULT_POINT_CODEC) : undefined;
  if (o.mode === 'late' && o.codec !== undefined) throw new AgentNodeError(`--codec ${o.codec}: late fusion sends object lists, which take no codec`);
  const codecName = featureSpec ? formatCodecSpec(featureSpec) : pointSpec ? formatPointCodecSpec(pointSpec) : 'objects';
  const key: SigningKey | undefined = o.signingKeyPath ? await loadSigningKey(o.signingKeyPath) : undefined;

  const modality = o.modality ?? 'lidar';
  if (modality !== 'lidar' && o.mode === 'early') throw new AgentNodeError(`--modality ${modality}: early fusion sends LiDAR points; use intermediate, hybrid or late`);
  const models = await PerceptionModels.load(o.models, { device: o.device, threads: o.threads, precision: o.precision });
  if (models.notice) log(models.notice);
  // The first run of each ONNX session is several frames long: pay it now, not on the first frame of the stream.
  await models.warmUp();
  // Camera agents: the manifest's camera encoder beside the LiDAR one (loadPoints is then not called for 'camera').
  let camera: CameraEncoder | undefined;
  let sensors: AgentSensorEncoder | undefined;
  if (modality !== 'lidar') {
    if (!models.manifest.camera) throw new AgentNodeError(`--modality ${modality}: ${o.models} has no camera models (camera_backbone, camera_lift)`);
    camera = await CameraEncoder.load(models.manifest, { device: models.provider, threads: o.threads });
    sensors = new AgentSensorEncoder(models.lidar, camera);
  }
  const needsHead = o.mode === 'late' || o.mode === 'hybrid' || featureSpec?.selection !== undefined;
  if (needsHead && !models.head) throw new AgentNodeError(`${o.models}: ${o.mode === 'late' ? 'late fusion' : `codec ${codecName}`} needs the detection head, and the manifest names none`);
  const capabilities: CodecCapabilities = { channelReductionRatios: channelReductionRatios(models.manifest) };
  // `c<ratio>`: the manifest's learned encoder shrinks the channels before quantisation (codec.ts refuses ratios the
  // manifest lacks, with the ones it has).
  const ratio = featureSpec?.channelReduction?.ratio;
  let reducer: ChannelReducer | undefined;
  if (ratio !== undefined) {
    assertCodecAvailable(featureSpec!, capabilities);
    reducer = await ChannelReducer.load(models.manifest, ratio, { device: models.provider, threads: o.threads });
  }
  const [C, H, W] = featureShape(models.grid);
  const confidence = new Float32Array(H * W);
  const encoded = new Float32Array(C * H * W);
  // Late and hybrid objects state the position confidence measured for this model (as the in-process detector).
  const positionConfidence = positionConfidenceFor(models.manifest.modelId);
  const wireGrid = describeFeatureGrid(models.grid);
  if (o.freeSpace && (o.mode === 'early' || modality === 'camera')) throw new AgentNodeError(`--free-space: only late, intermediate or hybrid fusion with LiDAR sends a free-space map (mode ${o.mode}, modality ${modality})`);
  const freeSpace = o.freeSpace ? new FreeSpaceBuilder(freeSpaceGrid(models.grid)) : undefined;

  const summary: AgentNodeSummary = {
    agentId: o.agentId, kind: info.kind, mode: o.mode, codec: codecName, modelId: models.manifest.modelId,
    protocolVersion: 0, frames: 0, messageBytes: {}, stageMs: {}, perFrame: [], reconnects: 0,
  };
  let warming = false;
  const stage = (name: string, ms: number) => {
    if (!warming) (summary.stageMs[name] ??= []).push(ms);
  };
  const sequenceOf: Partial<Record<MessageKind, number>> = {};
  let bytesPublished = 0;

  const header = (kind: MessageKind, captureNs: bigint, pose?: Float64Array): HeaderInit => {
    const p = pose ? matrixToPose(pose) : undefined;
    return {
      schemaVersion: SCHEMA_VERSION,
      senderId: o.agentId,
      senderKind: agentKindToWire(info.kind),
      sequence: (sequenceOf[kind] = (sequenceOf[kind] ?? 0) + 1),
      captureTimeNs: nsToWire(captureNs),
      sendTimeNs: nsToWire(epochNowNs()),
      ...(p ? { senderPose: { x: p.x, y: p.y, z: p.z, roll: p.roll, pitch: p.pitch, yaw: p.yaw } } : {}),
      modelId: models.manifest.modelId,
    };
  };
  const serialize = <K extends MessageKind>(kind: K, message: MessageInitOfKind[K]): Uint8Array => {
    const bytes = encodeMessage(kind, message);
    return key ? signMessage(kind, bytes, key) : bytes;
  };
  // A status describes the agent now, so it is stamped now: in a paced replay the first frame's capture time is
  // still in the future when the agent says it is running.
  const statusBytes = (state: number, detail: string): Uint8Array => {
    const status: AgentStatusInit = {
      header: header('status', epochNowNs()),
      state,
      fusionMode: ({ intermediate: wire.FusionMode.FUSION_MODE_INTERMEDIATE, late: wire.FusionMode.FUSION_MODE_LATE, early: wire.FusionMode.FUSION_MODE_EARLY, hybrid: wire.FusionMode.FUSION_MODE_HYBRID } as const)[o.mode],
      codec: codecName,
      frameRateHz: o.rateHz,
      framesPublished: summary.frames,
      bytesPublished,
      ...(sendsFeatures ? { grid: wireGrid } : {}),
      detail,
    };
    return serialize('status', status);
  };
  const statusTopic = agentTopic(o.session, o.agentId, 'status');
  let epochNs = o.epochNs ?? epochNowNs();
  if (o.preencode && !(o.rateHz > 0)) throw new AgentNodeError('--preencode needs a paced replay (--rate above 0): it publishes each frame when it is due');

  // One frame's messages, without their headers (stamped when sent): features, objects or points; hybrid sends
  // features and then the object list for what they leave out.
  const freeSpaceOf = (points: Float32Array): WireFreeSpace | undefined => {
    if (!freeSpace) return undefined;
    const t = performance.now();
    const free = wireFreeSpace(freeSpace.build(points));
    stage('free-space', performance.now() - t);
    return free;
  };
  const encodeFrame = async (agent: AgentFrame): Promise<FramePart[]> => {
    let t = performance.now();
    // A camera-only agent has no points to load.
    const points = modality === 'camera' ? new Float32Array(0) : await agent.loadPoints();
    stage('load', performance.now() - t);
    if (o.mode === 'early') {
      t = performance.now();
      const enc = encodePoints(points, pointSpec!);
      stage('codec', performance.now() - t);
      return [{ kind: 'points', body: { encoding: enc.header, payload: enc.payload } }];
    }
    const enc = modality === 'lidar'
      ? await models.lidar.encode(points)
      : await sensors!.encode(agent, modality, encoded);
    for (const [k, v] of Object.entries(enc.timings)) stage(k, v as number);
    if (o.mode === 'late') {
      const r = await models.head!.detect(enc.features);
      for (const [k, v] of Object.entries(r.timings)) stage(k, v as number);
      const free = freeSpaceOf(points);
      return [{ kind: 'objects', body: { objects: detectionsToObjects(r.detections, { positionConfidence }), ...(free ? { freeSpace: free } : {}) } }];
    }
    let own: Detection[] = [];
    if (featureSpec!.selection || o.mode === 'hybrid') {
      const r = await models.head!.detect(enc.features);
      stage('confidence', (r.timings.head ?? 0));
      featureConfidenceMap(r.clsLogits, confidence);
      own = r.detections;
    }
    let map = enc.features;
    if (reducer) {
      const r = await reducer.reduce(map);
      stage('reduce', r.timings.reduce ?? 0);
      map = r.reduced;
    }
    t = performance.now();
    const coded = encodeFeatures(map, H, W, reducer ? reducer.reducedChannels : C, featureSpec!, { ...capabilities, confidence });
    stage('codec', performance.now() - t);
    const free = freeSpaceOf(points);
    const parts: FramePart[] = [{
      kind: 'features',
      body: { grid: wireGrid, encoding: { ...coded.header, channelReductionRatio: reducer ? reducer.ratio : 0 }, payload: coded.payload, ...(free ? { freeSpace: free } : {}) },
    }];
    // What the features leave out, the object list carries: the sender's own detections outside its sent cells.
    if (o.mode === 'hybrid') {
      parts.push({ kind: 'objects', body: { objects: detectionsToObjects(objectsOutsideSentCells(own, coded.mask, models.grid), { positionConfidence }) } });
    }
    return parts;
  };

  let link: MqttLink | undefined;
  try {
    link = await MqttLink.connect({
      url: o.broker,
      clientId: `v2xfuse-agent-${o.session}-${o.agentId}`,
      username: o.username,
      password: o.password,
      // The broker publishes this if the agent vanishes without a clean goodbye.
      will: { topic: statusTopic, payload: statusBytes(wire.AgentState.AGENT_STATE_OFFLINE, 'connection lost'), retain: true, qos: 1 },
    });
    summary.protocolVersion = link.protocolVersion;
    const publish = async (kind: 'features' | 'objects' | 'points' | 'status', bytes: Uint8Array, retain = false) => {
      const topic = agentTopic(o.session, o.agentId, kind);
      await link!.publish(topic, bytes, retain ? { qos: 1, retain: true } : { qos: 0, expirySeconds: SENSOR_MESSAGE_EXPIRY_S });
      (summary.messageBytes[kind] ??= []).push(bytes.byteLength);
      bytesPublished += bytes.byteLength;
    };
    // Lockstep: the newest frame index the replay clock allows, and who waits for it.
    let tick = -1;
    let tickWaiter: (() => void) | undefined;
    if (o.lockstep) {
      const tickTopic = replayTickTopic(o.session);
      link.onMessage((topic, payload) => {
        if (topic !== tickTopic) return;
        const n = Number(new TextDecoder().decode(payload));
        if (Number.isInteger(n) && n > tick) {
          tick = n;
          tickWaiter?.();
        }
      });
      await link.subscribe(tickTopic, 1);
    }
    const waitForTick = (index: number) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (tick >= index || o.signal?.aborted) {
            tickWaiter = undefined;
            resolve();
          }
        };
        tickWaiter = check;
        o.signal?.addEventListener('abort', check, { once: true });
        check();
      });
    await publish('status', statusBytes(wire.AgentState.AGENT_STATE_STARTING, `${ds.format} ${seq.name}`), true);

    const total = Math.min(seq.frameCount, o.maxFrames ?? Infinity);
    let done = 0;
    // Preencoded frames, by index, with the milliseconds their encoding took (loading the scan included, as live).
    const prepared = new Map<number, { parts: FramePart[]; encodeMs: number }>();
    // An agent told to wait for the start reads its frames' metadata first, so that the replay parses nothing.
    const frameCache = o.waitForStart || o.preencode ? new Map<number, CooperativeFrame>() : undefined;
    // Warming the ONNX sessions is not enough: the first whole frame (reading the scan, pillarising, the codec and
    // the message encoder, first met by the JIT) took 340 ms, and a paced agent then stayed behind for 30 frames.
    // Untimed passes over the first frames before the agent says it is running (one was not enough: the next four
    // still took up to twice a steady frame).
    warming = true;
    for await (const f of replayAgentFrames(seq, o.agentId, { rateHz: 0, epochNs: 0n, maxFrames: Math.min(WARM_UP_FRAMES, o.maxFrames ?? Infinity), signal: o.signal })) {
      const pose = f.agent.lidarToWorld;
      for (const part of await encodeFrame(f.agent)) {
        serialize(part.kind, { ...part.body, header: header(part.kind, f.captureNs, pose) } as MessageInitOfKind[typeof part.kind]);
        delete sequenceOf[part.kind]; // the first frame sent is still sequence 1
      }
    }
    warming = false;
    if (frameCache) {
      for await (const f of replayAgentFrames(seq, o.agentId, { rateHz: 0, epochNs: 0n, maxFrames: o.maxFrames, signal: o.signal, cache: frameCache })) {
        if (o.signal?.aborted) break;
        if (!o.preencode) {
          // Read once, so that the first scans are in the page cache: a replay's file reads stand for a sensor
          // driver's memory, and cold ones had cost the first frames 15-40 ms each. Only the first few seconds:
          // after that the replay reads as it goes, and a long sequence need not be read twice before it starts.
          if (modality !== 'camera' && f.index < READ_AHEAD_SCANS) await f.agent.loadPoints();
          continue;
        }
        const t = performance.now();
        const parts = await encodeFrame(f.agent);
        prepared.set(f.index, { parts, encodeMs: performance.now() - t });
      }
      if (o.preencode) log(`agent ${o.agentId}: ${prepared.size} frames encoded ahead`);
    }
    collectGarbageNow();
    await publish('status', statusBytes(wire.AgentState.AGENT_STATE_RUNNING, `${ds.format} ${seq.name}`), true);
    if (o.waitForStart) epochNs = await waitForEpoch(link, replayStartTopic(o.session), o.signal);

    const latestOnly = !!o.latestOnly && o.rateHz > 0 && !o.lockstep;
    if (latestOnly) summary.skipped = [];
    const onSkip = (index: number, captureNs: bigint) => summary.skipped!.push({ index, captureNs: captureNs.toString() });
    for await (const f of replayAgentFrames(seq, o.agentId, { rateHz: o.rateHz, epochNs, maxFrames: o.maxFrames, signal: o.signal, cache: frameCache, latestOnly, onSkip })) {
      if (o.lockstep) await waitForTick(f.index);
      if (o.signal?.aborted) break;
      const startWall = epochNowNs();
      const ahead = prepared.get(f.index);
      let parts: FramePart[];
      if (ahead) {
        // The frame is due now; its own computer would have needed encodeMs to send it.
        await new Promise((r) => setTimeout(r, ahead.encodeMs));
        parts = ahead.parts;
      } else {
        parts = await encodeFrame(f.agent);
      }
      const pose = (o.noisyPoses && f.agent.noisyLidarToWorld) || f.agent.lidarToWorld;
      let bytes = 0;
      const t = performance.now();
      for (const part of parts) {
        const message = serialize(part.kind, { ...part.body, header: header(part.kind, f.captureNs, pose) } as MessageInitOfKind[typeof part.kind]);
        await publish(part.kind, message);
        bytes += message.byteLength;
      }
      stage('publish', performance.now() - t);
      summary.frames++;
      summary.perFrame.push({ index: f.index, captureNs: f.captureNs.toString(), startWallNs: startWall.toString(), publishWallNs: epochNowNs().toString(), bytes });
      o.onFrame?.(++done, total);
    }
    await publish('status', statusBytes(wire.AgentState.AGENT_STATE_OFFLINE, `finished: ${summary.frames} frames`), true);
    summary.reconnects = link.stats.reconnects;
    return summary;
  } catch (err) {
    if (link) {
      const detail = err instanceof Error ? err.message : String(err);
      await link.publish(statusTopic, statusBytes(wire.AgentState.AGENT_STATE_FAILED, detail), { qos: 1, retain: true }).catch(() => {});
    }
    throw err;
  } finally {
    await link?.end();
    await reducer?.dispose();
    await camera?.dispose();
    await models.dispose();
  }
}
