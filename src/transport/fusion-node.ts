// The fusion node: receives every agent's messages, admits them through the message gate (size, schema, model,
// grid, signature, replay, time), and for each ego frame waits for the collaborators up to a deadline, then
// aligns what arrived by the poses in the messages, fuses, runs the head and publishes a FusionResult.
// Whatever goes wrong with one message (rejected, late, missing) costs that message only: it is counted by
// reason and the node goes on, ego-only if need be.
import { deflateSync } from 'node:zlib';
import { encodeFeatures, parseCodecSpec } from '../codec/index.ts';
import type { Detection } from '../eval/index.ts';
import { type AttributedDetection, attentionFuse, type ConsistencyOptions, type ConsistencyVerdict, type FreeSpaceMap, MergedCloudEncoder, checkFeatureViews, freeSpaceFromWire, featureConfidenceMap, featureContributors, filterConsistent, mergedContributors, pooledSize, quantiseConfidence, rangeContributors, fuseLate, maxFuse, meanFuse, mergeHybrid, mergePointClouds, mergedLength, objectsToDetections, warpToEgo, weightedBoxFusion } from '../fusion/index.ts';
import { type TrackedMotion, compensateFeatureMotion, featureMotionsFromTracks } from '../fusion/index.ts';
import { type Mat4, identity, invertRigid, multiply, poseToMatrix } from '../geometry/index.ts';
import {
  type FusionResultInit,
  MessageGate,
  type MessageKind,
  type MessageOfKind,
  RejectionLog,
  SCHEMA_VERSION,
  type SigningKey,
  TrustList,
  agentKindToWire,
  encodeMessage,
  loadSigningKey,
  nsToWire,
  objectClassToWire,
  signMessage,
  wire,
} from '../messages/index.ts';
import { ChannelReducer, type DeviceOption, PerceptionModels, type Precision, channelReductionRatios, describeFeatureGrid, featureShape } from '../perception/index.ts';
import { ConstantVelocityPredictor, CtrvPredictor, MotionPredictor, TrackedScene, type TrajectoryPredictor } from '../prediction/index.ts';
import { MultiObjectTracker, type MotionModel } from '../tracking/index.ts';
import { MqttLink } from './mqtt-link.ts';
import { epochNowNs } from './clock.ts';
import { collectGarbageNow } from './heap.ts';
import { allAgentsFilter, fusionResultTopic, parseTopic } from './topics.ts';

/** hybrid: collaborators' features for the cells they sent, plus their objects outside those cells (CoSDH's idea). */
export type NodeFusionMode = 'none' | 'intermediate' | 'late' | 'early' | 'hybrid';
export const NODE_FUSION_MODES: readonly NodeFusionMode[] = ['none', 'intermediate', 'late', 'early', 'hybrid'];

const DATA_KIND: Record<Exclude<NodeFusionMode, 'none'>, 'features' | 'objects' | 'points'> = {
  intermediate: 'features',
  late: 'objects',
  early: 'points',
  hybrid: 'features',
};

export interface FusionNodeOptions {
  egoId: string;
  /** The node's id in its result topic (and its MQTT user name under the ACLs of deploy/mosquitto); default fusion-{ego}. */
  fusionId?: string;
  session: string;
  broker: string;
  username?: string;
  password?: string;
  /** What the agents send and how it is fused; 'none' uses the ego's own features only. */
  mode: NodeFusionMode;
  /** Intermediate fusion: the trained attention (default when the manifest has it) or element-wise max. */
  combine?: 'attention' | 'max' | 'mean';
  /** Late fusion: leave out a collaborator whose objects the ego and the others contradict (src/fusion
   * consistency.ts, CP-Guard's idea; catches shifted objects), and, when the ego's object lists carry its
   * free-space map (agent --free-space), those reporting objects where the ego's beams saw free space (ghosts;
   * free-space.ts). Intermediate / hybrid, when the ego's features carry its map: the in-process detector's own-map
   * test (src/fusion own-map.ts), the head run on each collaborator's map alone and its cars (plus hybrid's objects)
   * judged by free space. Off by default. */
  consistencyCheck?: boolean | ConsistencyOptions;
  /** Intermediate / hybrid: a collaborator's map captured before the ego frame has its moving objects' features moved
   * by their tracked velocity over the gap (src/fusion/feature-motion.ts; needs tracking). Off by default. */
  compensate?: boolean;
  /** Late fusion: merge the object lists by score-aware NMS (OpenCOOD's, the default) or weighted box fusion. */
  lateMerge?: 'nms' | 'wbf';
  /** What the ego sends in 'none' mode (its features, by default). */
  models: string;
  device?: DeviceOption;
  threads?: number;
  /** float32 (default) or int8: the manifest's int8 backbone and head (PerceptionModelsOptions.precision). */
  precision?: Precision;
  /** How long an ego frame waits for collaborators after it arrived, ms. */
  deadlineMs: number;
  /** Collaborators to wait for; others are fused when they happen to be there in time. Default: every agent whose
   * retained status says it is running. */
  expect?: string[];
  /** A collaborator's message is used for an ego frame when their capture times differ by at most this, ms. */
  maxOffsetMs?: number;
  /** Collaborators farther than this from the ego (by the poses they send), m; OpenCOOD's 70 m. */
  commRangeM?: number;
  /** Admission: messages older / newer than the node's clock by more than this are refused ('stale' / 'future'). */
  maxAgeMs?: number;
  maxFutureMs?: number;
  /** 'wall': the node's clock is the wall clock (live and paced replay). 'replay': the newest ego capture time
   * plus the wall time since it arrived (as-fast-as-possible replay, where capture times are a replay clock). */
  clock?: 'wall' | 'replay';
  trustPath?: string;
  requireSignatures?: boolean;
  signingKeyPath?: string;
  /** Track the fused detections (AB3DMOT-style, in the world frame by the ego's pose); default true. */
  tracking?: boolean;
  /** The tracker's motion model; default 'cv' (AB3DMOT's). */
  motion?: MotionModel;
  /** Who predicts each track's next 3 s: the manifest's learned predictor (default when it has one), 'cv', 'ctrv',
   * or 'none'. Needs tracking. */
  predictor?: 'learned' | 'cv' | 'ctrv' | 'none';
  /** Stop once the ego agent's status says it went offline and its last frame is fused. */
  exitWhenEgoOffline?: boolean;
  /** Put the head's confidence in each result (FusionResult.confidence_map), max-pooled over stride × stride feature
   * cells; 0: leave it out. Default 2 (64 × 64 for the shipped grid, about 1.3 kB deflated). Not in late fusion,
   * where the node runs no head. */
  confidenceMapStride?: number;
  signal?: AbortSignal;
  log?: (line: string) => void;
  onResult?: (result: FusionResultInit, bytes: number) => void;
}

interface Admitted {
  kind: 'features' | 'objects' | 'points';
  sender: string;
  sequence: number;
  captureNs: bigint;
  sendNs: bigint;
  arrivalNs: bigint;
  pose: Mat4;
  bytes: number;
  codec: string;
  message: MessageOfKind['features'] | MessageOfKind['objects'] | MessageOfKind['points'];
  /** Decoded by the gate: the feature map (a pooled buffer) and its sent-cell mask, or the points. */
  features?: { features: Float32Array; mask: Uint8Array };
  /** Settles once `features` holds the full map (a channel-reduced message is expanded by the learned decoder). */
  ready?: Promise<void>;
  points?: Float32Array;
  /** Went into at least one fused frame. */
  used: boolean;
}

/** A collaborator's message matched to an ego frame; hybrid: its object list too (`objectsInEgo`: as the
 * consistency check left it, ego frame). */
interface FrameCollaborator {
  m: Admitted;
  toEgo: Mat4;
  objects?: Admitted;
  objectsInEgo?: Detection[];
}

interface PendingFrame {
  ego: Admitted;
  timer: NodeJS.Timeout;
}

export interface FusionNodeSummary {
  egoId: string;
  mode: NodeFusionMode;
  /** What the node actually ran with (defaults resolved). */
  settings: { combine?: string; lateMerge?: string; compensate?: boolean; tracking: boolean; motion?: string; predictor: string };
  modelId: string;
  protocolVersion: number;
  framesFused: number;
  /** Refused messages by reason, and by agent then reason. */
  dropped: Record<string, number>;
  droppedByAgent: Record<string, Record<string, number>>;
  /** Collaborator messages that missed their ego frame (arrived after its deadline, or never matched one). */
  unused: Record<string, number>;
  /** Per stage, one value (ms) per fused frame; 'wait' is the time an ego frame waited for collaborators. */
  stageMs: Record<string, number[]>;
  /** arrival − send per received message (same machine clock: the transport's own latency), ms. */
  transportMs: number[];
  reconnects: number;
}

export class FusionNodeError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'FusionNodeError';
  }
}

// Per collaborator: enough for one that runs far ahead of the ego in an as-fast-as-possible replay. Each
// buffered feature message holds its decoded map (4 MB for the shipped grid).
const BUFFERED_PER_AGENT = 24;
/** Feature cells per confidence-map cell along each axis when not set (FusionNodeOptions.confidenceMapStride). */
export const DEFAULT_CONFIDENCE_MAP_STRIDE = 2;
const IDENTITY: Mat4 = identity();
const REPLAY_TIME_WINDOW_MS = 3_600_000;

function poseMatrix(p: { x?: number | null; y?: number | null; z?: number | null; roll?: number | null; pitch?: number | null; yaw?: number | null } | null | undefined): Mat4 {
  return poseToMatrix({ x: p?.x ?? 0, y: p?.y ?? 0, z: p?.z ?? 0, roll: p?.roll ?? 0, pitch: p?.pitch ?? 0, yaw: p?.yaw ?? 0 });
}

/** Runs until the signal aborts (or, with exitWhenEgoOffline, until the ego's replay ends). */
export async function runFusionNode(o: FusionNodeOptions): Promise<FusionNodeSummary> {
  const log = o.log ?? (() => {});
  const models = await PerceptionModels.load(o.models, { device: o.device, threads: o.threads, precision: o.precision });
  if (models.notice) log(models.notice);
  // The first run of each ONNX session is several frames long: pay it now, not on the first frame of the stream.
  await models.warmUp();
  if (!models.head) throw new FusionNodeError(`${o.models}: the manifest names no detection_head model`);
  const combine = o.combine ?? (models.attention ? 'attention' : 'max');
  if (combine === 'attention' && !models.attention) throw new FusionNodeError(`${o.models}: attention fusion needs a fusion_attention model in the manifest`);
  const [C, H, W] = featureShape(models.grid);
  const plane = H * W;
  const trust = o.trustPath ? await TrustList.load(o.trustPath) : undefined;
  if (o.requireSignatures && !trust) throw new FusionNodeError('signatures are required but no trust list was given (--trust FILE)');
  const key: SigningKey | undefined = o.signingKeyPath ? await loadSigningKey(o.signingKeyPath) : undefined;
  const maxOffsetNs = BigInt(Math.round((o.maxOffsetMs ?? 50) * 1e6));
  const commRangeM = o.commRangeM ?? 70;
  const clock = o.clock ?? 'wall';
  const fusionId = o.fusionId ?? `fusion-${o.egoId}`;
  const dataKind = o.mode === 'none' ? 'features' : DATA_KIND[o.mode];
  const tracking = o.tracking ?? true;
  const tracker = tracking ? new MultiObjectTracker({ motion: o.motion ?? 'cv' }) : undefined;
  const predictorChoice = !tracking ? 'none' : o.predictor ?? (models.manifest.motionPredictor ? 'learned' : 'cv');
  let predictor: TrajectoryPredictor | undefined;
  if (predictorChoice === 'learned') {
    if (!models.manifest.motionPredictor) throw new FusionNodeError(`${o.models}: --predictor learned needs models.motion_predictor in the manifest`);
    predictor = await MotionPredictor.fromEntry(models.manifest.motionPredictor, { device: models.provider, threads: o.threads });
  } else if (predictorChoice === 'cv') predictor = new ConstantVelocityPredictor();
  else if (predictorChoice === 'ctrv') predictor = new CtrvPredictor();
  const scene = tracker ? new TrackedScene(tracker, predictor) : undefined;
  // compensate: the tracks of the last fused frame (its ego frame), the motion source for older collaborator maps.
  let lastTracks: { objects: TrackedMotion[]; egoPose: Mat4; captureNs: bigint } | undefined;
  let firstCaptureNs: bigint | undefined;

  // The learned channel decoders of the manifest, to expand `c<ratio>` features (small models: load them all).
  const reducers = new Map<number, ChannelReducer>();
  for (const r of channelReductionRatios(models.manifest)) reducers.set(r, await ChannelReducer.load(models.manifest, r, { device: models.provider, threads: o.threads }));
  const rejections = new RejectionLog((line) => log(line));
  const gate = new MessageGate({
    log: rejections,
    expectedModelId: models.manifest.modelId,
    grid: describeFeatureGrid(models.grid),
    // On a replay clock (as fast as possible) capture times run ahead of or behind the wall clock by as much as
    // the replay is faster or slower than real time: what matters there is each message's match with its ego
    // frame (maxOffsetMs), so the admission window is only a sanity bound.
    maxAgeMs: o.maxAgeMs ?? (clock === 'wall' ? 1000 : REPLAY_TIME_WINDOW_MS),
    maxFutureMs: o.maxFutureMs ?? (clock === 'wall' ? 500 : REPLAY_TIME_WINDOW_MS),
    trust,
    requireSignatures: o.requireSignatures ?? false,
    channelReductionRatios: [...reducers.keys()],
  });

  const summary: FusionNodeSummary = {
    egoId: o.egoId, mode: o.mode, modelId: models.manifest.modelId, protocolVersion: 0, framesFused: 0,
    settings: {
      ...(o.mode === 'intermediate' || o.mode === 'hybrid' ? { combine, compensate: !!o.compensate } : {}), ...(o.mode === 'late' ? { lateMerge: o.lateMerge ?? 'nms' } : {}),
      tracking, ...(tracking ? { motion: o.motion ?? 'cv' } : {}), predictor: predictorChoice,
    },
    dropped: {}, droppedByAgent: {}, unused: {}, stageMs: {}, transportMs: [], reconnects: 0,
  };
  // The warm-up runs the frame path's own functions; what it times is not counted.
  let warming = false;
  const stage = (name: string, ms: number) => {
    if (!warming) (summary.stageMs[name] ??= []).push(ms);
  };

  const confidenceStride = o.confidenceMapStride ?? DEFAULT_CONFIDENCE_MAP_STRIDE;
  const confidenceSize = confidenceStride > 0 ? pooledSize(H, W, confidenceStride) : undefined;
  const confidenceProb = new Float32Array(plane);
  let confidenceCells: Uint8Array | undefined;
  // The head's outputs are its own buffers, overwritten by the next frame: read them before the next detect.
  const confidenceMapOf = (clsLogits: Float32Array): FusionResultInit['confidenceMap'] => {
    if (!confidenceSize) return undefined;
    const t0 = performance.now();
    confidenceCells = quantiseConfidence(featureConfidenceMap(clsLogits, confidenceProb), H, W, confidenceStride, confidenceCells);
    const g = models.grid;
    const map = {
      width: confidenceSize.width, height: confidenceSize.height, stride: confidenceStride,
      xMin: g.xMin, xMax: g.xMax, yMin: g.yMin, yMax: g.yMax,
      entropyCoding: wire.EntropyCoding.ENTROPY_CODING_DEFLATE, cells: deflateSync(confidenceCells),
    };
    stage('confidence', performance.now() - t0);
    return map;
  };

  // Per agent: the newest admitted messages of the mode's kind, oldest first; its live state from status.
  const buffered = new Map<string, Admitted[]>();
  // Hybrid mode: each collaborator's object lists beside its features.
  const bufferedObjects = new Map<string, Admitted[]>();
  const liveState = new Map<string, number>();
  const pending: PendingFrame[] = [];
  let newestEgo: { captureNs: bigint; arrivalNs: bigint } | undefined;
  let egoFinished = false;
  let stopped = false;
  let link: MqttLink | undefined;
  let sequence = 0;

  // Drops that are not the gate's (a message that came too late, or for another fusion mode), by reason.
  const nodeDrops: Record<string, number> = {};
  const drop = (reason: string) => (nodeDrops[reason] = (nodeDrops[reason] ?? 0) + 1);
  // Decoded feature maps live as long as their message is buffered: a pool, so a frame allocates nothing.
  const mapPool: { features: Float32Array; mask: Uint8Array }[] = [];
  const takeMap = () => mapPool.pop() ?? { features: new Float32Array(C * H * W), mask: new Uint8Array(plane) };
  const release = (m: Admitted) => {
    if (m.features) mapPool.push(m.features);
    m.features = undefined;
  };
  // Working buffers, reused every frame.
  const mergedEncoder = new MergedCloudEncoder(models);
  let mergedPoints: Float32Array | undefined;
  const warped: Float32Array[] = [];
  const masks: Float32Array[] = [];
  const fused = new Float32Array(C * H * W);
  const buffer = (list: Float32Array[], k: number, size: number) => {
    while (list.length <= k) list.push(new Float32Array(size));
    return list[k];
  };

  const nowNs = (): bigint => {
    const wall = epochNowNs();
    if (clock === 'wall' || !newestEgo) return wall;
    return newestEgo.captureNs + (wall - newestEgo.arrivalNs);
  };

  const isWaitedFor = (agent: string): boolean => {
    if (agent === o.egoId) return false;
    const state = liveState.get(agent);
    if (state === wire.AgentState.AGENT_STATE_OFFLINE || state === wire.AgentState.AGENT_STATE_FAILED) return false;
    if (o.expect) return o.expect.includes(agent);
    return state === wire.AgentState.AGENT_STATE_RUNNING || state === wire.AgentState.AGENT_STATE_STARTING;
  };

  const ready = (frame: PendingFrame): boolean => {
    if (o.mode === 'none') return true;
    const t = frame.ego.captureNs;
    const waited = o.expect ?? [...liveState.keys()];
    for (const agent of waited) {
      if (!isWaitedFor(agent)) continue;
      // Its frame for t is in once it sent anything at or after t − offset (later ones would be farther); in
      // hybrid mode, its features and its object list.
      for (const map of o.mode === 'hybrid' ? [buffered, bufferedObjects] : [buffered]) {
        const list = map.get(agent);
        if (!list || list.length === 0 || list[list.length - 1].captureNs < t - maxOffsetNs) return false;
      }
    }
    return true;
  };

  // A `c<ratio>` message decodes to channels / ratio planes at the start of the map buffer; the learned decoder
  // turns them back into the full map, in place.
  const expandReduced = async (m: MessageOfKind['features'], map: { features: Float32Array; mask: Uint8Array }): Promise<void> => {
    const ratio = m.encoding?.channelReductionRatio ?? 0;
    if (ratio <= 1) return;
    const t0 = performance.now();
    const reducer = reducers.get(ratio)!;
    try {
      const reduced = map.features.slice(0, reducer.reducedChannels * plane);
      await reducer.expand(reduced, map.features);
    } catch (err) {
      // The message then contributes nothing (its mask says no cell was sent); said once, counted.
      map.mask.fill(0);
      if (!nodeDrops['expand-error']) log(`channel decoder c${ratio} failed: ${(err as Error).message}`);
      drop('expand-error');
    }
    stage('expand', performance.now() - t0);
  };

  const nearest = (agent: string, t: bigint, from = buffered): Admitted | undefined => {
    let best: Admitted | undefined;
    let bestGap = maxOffsetNs + 1n;
    for (const m of from.get(agent) ?? []) {
      const gap = m.captureNs > t ? m.captureNs - t : t - m.captureNs;
      if (gap < bestGap) {
        best = m;
        bestGap = gap;
      }
    }
    return best;
  };

  const consistencyOptions: ConsistencyOptions = o.consistencyCheck === true || !o.consistencyCheck ? {} : o.consistencyCheck;
  /** The free-space map the ego's message carries (agent --free-space); a corrupt one is counted and checked without. */
  const egoFreeSpace = (ego: Admitted): FreeSpaceMap | undefined => {
    const wireMap = (ego.message as MessageOfKind['objects'] | MessageOfKind['features']).freeSpace;
    if (!wireMap) return undefined;
    try {
      return freeSpaceFromWire({ xMin: wireMap.xMin ?? 0, yMin: wireMap.yMin ?? 0, cellSize: wireMap.cellSize ?? 0, width: wireMap.width ?? 0, height: wireMap.height ?? 0, planes: wireMap.planes ?? new Uint8Array(0) });
    } catch (err) {
      if (!nodeDrops['free-space-corrupt']) log(`ego free-space map unusable, checked without it: ${(err as Error).message}`);
      drop('free-space-corrupt');
      return undefined;
    }
  };
  /** Marks the collaborators a consistency verdict excludes as refused ('inconsistent') and counts them. */
  const refuseInconsistent = (verdicts: readonly ConsistencyVerdict[], collaborators: readonly FrameCollaborator[], contributions: NonNullable<FusionResultInit['contributions']>) => {
    for (const v of verdicts) {
      if (!v.exclude) continue;
      drop('inconsistent');
      const c = contributions.find((x) => x.agentId === v.id);
      if (c) Object.assign(c, { used: false, refusedReason: 'inconsistent' });
      const x = collaborators.find((y) => y.m.sender === v.id);
      if (x) {
        x.m.used = false;
        if (x.objects) x.objects.used = false;
      }
    }
  };

  const tracksToWire = (objects: Awaited<ReturnType<TrackedScene['step']>>['objects']): NonNullable<FusionResultInit['tracks']> =>
    objects.map(({ track, box, velocity, trajectories }) => ({
      trackId: track.id,
      box: { ...box },
      objectClass: objectClassToWire(track.cls),
      score: track.score,
      velocityX: velocity.x,
      velocityY: velocity.y,
      ageFrames: track.age,
      hits: track.hits,
      covariance: [track.variance.x, track.variance.y, track.variance.z, track.variance.yaw, track.variance.l, track.variance.w, track.variance.h, track.variance.vx, track.variance.vy, track.variance.vz],
      yawRate: track.yawRate,
      timeSinceUpdate: track.timeSinceUpdate,
      predictions: trajectories,
    }));

  async function fuseFrame(frame: PendingFrame, deadlineHit: boolean): Promise<void> {
    const ego = frame.ego;
    const t = ego.captureNs;
    stage('wait', Number(epochNowNs() - ego.arrivalNs) / 1e6);
    const startedMs = Number(epochNowNs() - t) / 1e6;
    const worldToEgo = invertRigid(ego.pose);
    const contributions: NonNullable<FusionResultInit['contributions']> = [];
    const contribution = (m: Admitted, used: boolean, refused = '') => ({
      agentId: m.sender, mode: modeWire, used, refusedReason: refused, sequence: m.sequence,
      captureTimeNs: nsToWire(m.captureNs), latencyMs: Number(m.arrivalNs - (clock === 'wall' ? m.captureNs : m.sendNs)) / 1e6,
      bytes: m.bytes, codec: m.codec,
      ...(m.kind === 'features' ? { selectedCells: (m.message as MessageOfKind['features']).encoding?.selectedCells ?? 0 } : {}),
      ...(m.kind === 'objects' ? { objects: (m.message as MessageOfKind['objects']).objects.length } : {}),
      ...(m.kind === 'points' ? { points: (m.message as MessageOfKind['points']).encoding?.pointCount ?? 0 } : {}),
    });
    contributions.push(contribution(ego, true));
    const collaborators: FrameCollaborator[] = [];
    if (o.mode !== 'none') {
      // Everyone who sent something, and everyone the node was told to wait for (so a no-show is reported).
      for (const agent of new Set([...buffered.keys(), ...(o.expect ?? [])])) {
        if (agent === o.egoId) continue;
        const m = nearest(agent, t);
        if (!m) {
          const state = liveState.get(agent);
          const gone = state === wire.AgentState.AGENT_STATE_OFFLINE || state === wire.AgentState.AGENT_STATE_FAILED;
          if (gone && o.expect?.includes(agent)) contributions.push({ agentId: agent, mode: modeWire, used: false, refusedReason: 'offline' });
          else if (isWaitedFor(agent) && deadlineHit) contributions.push({ agentId: agent, mode: modeWire, used: false, refusedReason: 'deadline' });
          continue;
        }
        const dist = Math.hypot(m.pose[3] - ego.pose[3], m.pose[7] - ego.pose[7]);
        if (dist > commRangeM) {
          contributions.push(contribution(m, false, 'out-of-range'));
          continue;
        }
        m.used = true;
        const objects = o.mode === 'hybrid' ? nearest(agent, t, bufferedObjects) : undefined;
        if (objects) objects.used = true;
        collaborators.push({ m, toEgo: multiply(worldToEgo, m.pose), objects });
        const c = contribution(m, true);
        if (objects) {
          c.bytes += objects.bytes;
          Object.assign(c, { objects: (objects.message as MessageOfKind['objects']).objects.length });
        }
        contributions.push(c);
      }
    }

    let detections: Detection[];
    // Per detection, the agents whose data went into it (Detection.contributing_agents).
    let contributors: string[][] = [];
    let confidenceMap: FusionResultInit['confidenceMap'];
    let tm = performance.now();
    if (o.mode === 'late') {
      const egoDet = objectsToDetections((ego.message as MessageOfKind['objects']).objects, IDENTITY);
      let others = collaborators.map((c) => objectsToDetections((c.m.message as MessageOfKind['objects']).objects, c.toEgo));
      let otherIds = collaborators.map((c) => c.m.sender);
      stage('align', performance.now() - tm);
      if (o.consistencyCheck) {
        // CP-Guard's idea: an agent whose objects the ego and the others do not see where they should is left out.
        tm = performance.now();
        const views = collaborators.map((c, k) => ({ id: c.m.sender, detections: others[k], x: c.toEgo[3], y: c.toEgo[7] }));
        // The ego's free-space map, when its agent sends one (agent --free-space): the ghost check.
        const freeSpace = egoFreeSpace(ego);
        const { kept, verdicts } = filterConsistent({ id: o.egoId, detections: egoDet, x: 0, y: 0, freeSpace }, views, consistencyOptions);
        refuseInconsistent(verdicts, collaborators, contributions);
        others = kept.map((v) => v.detections as Detection[]);
        otherIds = kept.map((v) => v.id);
        stage('consistency', performance.now() - tm);
      }
      tm = performance.now();
      const g = models.grid;
      const range = { xMin: g.xMin, xMax: g.xMax, yMin: g.yMin, yMax: g.yMax };
      detections = o.lateMerge === 'wbf'
        ? weightedBoxFusion([egoDet, ...others], { range })
        : fuseLate(egoDet, others, { iouThreshold: models.manifest.postprocess.nmsIouThreshold, range });
      stage('fuse', performance.now() - tm);
      const inputs: AttributedDetection[] = [egoDet, ...others].flatMap((list, k) => list.map((detection) => ({ detection, agents: [k === 0 ? o.egoId : otherIds[k - 1]] })));
      contributors = mergedContributors(detections, inputs, models.manifest.postprocess.nmsIouThreshold, o.lateMerge === 'wbf' ? 'wbf' : 'nms');
    } else if (o.mode === 'early') {
      // The gate decoded the points on arrival (its time is in 'admit').
      const others = collaborators.map((c) => ({ points: c.m.points!, senderToEgo: c.toEgo }));
      const need = mergedLength(ego.points!, others);
      if (!mergedPoints || mergedPoints.length < need) mergedPoints = new Float32Array(Math.ceil(need * 1.25));
      const merged = mergePointClouds(ego.points!, others, mergedPoints);
      stage('align', performance.now() - tm);
      const enc = await mergedEncoder.encoderFor(1 + others.length).encode(merged);
      for (const [k, v] of Object.entries(enc.timings)) stage(k, v as number);
      const r = await models.head!.detect(enc.features);
      for (const [k, v] of Object.entries(r.timings)) stage(k, v as number);
      detections = r.detections;
      confidenceMap = confidenceMapOf(r.clsLogits);
      // One merged cloud: who contributed is whose sensor range holds the box.
      contributors = rangeContributors(detections, [{ agentId: o.egoId, toEgo: IDENTITY }, ...collaborators.map((c) => ({ agentId: c.m.sender, toEgo: c.toEgo }))], models.grid);
    } else {
      // The gate decoded every map on arrival (its time is in 'admit'); reduced ones are expanded by now.
      await Promise.all([ego.ready, ...collaborators.map((c) => c.m.ready)]);
      if (o.consistencyCheck && collaborators.length > 0) {
        // The in-process detector's own-map test (src/fusion own-map.ts): the head on each collaborator's map alone,
        // its boxes (and hybrid's objects) judged against the ego's free space, which its features carry.
        tm = performance.now();
        const freeSpace = egoFreeSpace(ego);
        if (!freeSpace && !nodeDrops['no-free-space']) log(`ego ${o.egoId} sends no free-space map with its features (agent --free-space): the consistency check has nothing to judge by`);
        if (!freeSpace) drop('no-free-space');
        else {
          const views = collaborators.map((c) => ({
            id: c.m.sender, toEgo: c.toEgo, features: c.m.features!.features, c,
            ...(c.objects ? { objects: objectsToDetections((c.objects.message as MessageOfKind['objects']).objects, c.toEgo) } : {}),
          }));
          const { kept, verdicts, headMs } = await checkFeatureViews(models.head!, { id: o.egoId, freeSpace }, views, consistencyOptions);
          refuseInconsistent(verdicts, collaborators, contributions);
          collaborators.splice(0, collaborators.length, ...kept.map((v) => (v.objects ? { ...v.c, objectsInEgo: v.objects } : v.c)));
          stage('consistency-head', headMs);
        }
        stage('consistency', performance.now() - tm);
      }
      const egoMap = ego.features!.features;
      const aligned: Float32Array[] = [egoMap];
      const alignedMasks: (Float32Array | null)[] = [null];
      let alignMs = 0;
      for (let k = 0; k < collaborators.length; k++) {
        const d = collaborators[k].m.features!;
        tm = performance.now();
        // Cells the sender did not send are zeros, not features: they stay out of the fusion like cells outside its
        // map, and a selection-coded map is warped only where it was sent.
        const w = warpToEgo(d.features, collaborators[k].toEgo, models.grid, buffer(warped, k, C * H * W), buffer(masks, k, plane), d.mask.includes(0) ? d.mask : undefined);
        const captured = collaborators[k].m.captureNs;
        if (o.compensate && lastTracks && captured < t && t - lastTracks.captureNs <= 500_000_000n) {
          const s = (ns: bigint) => Number(ns - lastTracks!.captureNs) / 1e9;
          const motions = featureMotionsFromTracks(lastTracks.objects, multiply(worldToEgo, lastTracks.egoPose), { trackS: 0, captureS: s(captured), nowS: s(t) });
          if (motions.length > 0) compensateFeatureMotion(w.features, w.mask, motions, models.grid);
        }
        alignMs += performance.now() - tm;
        aligned.push(w.features);
        alignedMasks.push(w.mask);
      }
      stage('align', alignMs);
      tm = performance.now();
      let bev = egoMap;
      if (aligned.length > 1) {
        // The model's parameter-free attention, computed only where a collaborator covers a cell (attention-fusion.ts).
        if (combine === 'attention') bev = attentionFuse(aligned, alignedMasks, fused);
        else if (combine === 'mean') bev = meanFuse(aligned, alignedMasks, fused);
        else bev = maxFuse(aligned, alignedMasks, fused);
      }
      stage('fuse', performance.now() - tm);
      const r = await models.head!.detect(bev);
      for (const [k, v] of Object.entries(r.timings)) stage(k, v as number);
      detections = r.detections;
      confidenceMap = confidenceMapOf(r.clsLogits);
      contributors = featureContributors(detections, [{ agentId: o.egoId, mask: null }, ...collaborators.map((c, k) => ({ agentId: c.m.sender, mask: alignedMasks[k + 1] }))], models.grid);
      if (o.mode === 'hybrid') {
        // The objects each collaborator saw outside the cells it sent, merged with the fused detections by NMS.
        tm = performance.now();
        const lateLists = collaborators.flatMap((c) => (c.objects ? [{ agentId: c.m.sender, detections: c.objectsInEgo ?? objectsToDetections((c.objects.message as MessageOfKind['objects']).objects, c.toEgo) }] : []));
        const g = models.grid;
        const fromFeatures = detections.map((detection, k) => ({ detection, agents: contributors[k] }));
        detections = mergeHybrid(detections, lateLists.map((l) => l.detections), { iouThreshold: models.manifest.postprocess.nmsIouThreshold, range: { xMin: g.xMin, xMax: g.xMax, yMin: g.yMin, yMax: g.yMax } });
        const fromObjects = lateLists.flatMap((l) => l.detections.map((detection) => ({ detection, agents: [l.agentId] })));
        contributors = mergedContributors(detections, [...fromFeatures, ...fromObjects], models.manifest.postprocess.nmsIouThreshold, 'nms');
        stage('hybrid', performance.now() - tm);
      }
    }

    // Tracking in the world frame (the ego moves), reported in the ego frame of this capture time.
    let tracks: NonNullable<FusionResultInit['tracks']> = [];
    if (scene) {
      firstCaptureNs ??= t;
      const stepped = await scene.step(Number(t - firstCaptureNs) / 1e9, detections, ego.pose);
      if (o.compensate) lastTracks = { objects: stepped.objects, egoPose: ego.pose, captureNs: t };
      tracks = tracksToWire(stepped.objects);
      stage('track', stepped.timings.track);
      if (predictor) stage('predict', stepped.timings.predict);
    }

    const result: FusionResultInit = {
      header: {
        schemaVersion: SCHEMA_VERSION, senderId: fusionId, senderKind: ego.message.header?.senderKind ?? agentKindToWire('vehicle'),
        sequence: ++sequence, captureTimeNs: nsToWire(t), sendTimeNs: nsToWire(epochNowNs()),
        senderPose: ego.message.header?.senderPose ?? null,
        modelId: models.manifest.modelId,
      },
      mode: modeWire,
      detections: detections.map((d, k) => ({ box: { ...d.box }, objectClass: objectClassToWire(d.cls ?? 'vehicle'), score: d.score, contributingAgents: contributors[k] ?? [] })),
      tracks,
      contributions,
      // This frame's stages; those timed after the result is sent (its own sending, the stations) are not known yet.
      latencies: Object.entries(summary.stageMs).filter(([s]) => s !== 'result' && !s.startsWith('sinceCapture.')).map(([s, v]) => ({ stage: s, ms: v[v.length - 1] })),
      ...(confidenceMap ? { confidenceMap } : {}),
    };
    tm = performance.now();
    const bytes = encodeMessage('result', result);
    const signed = key ? signMessage('result', bytes, key) : bytes;
    await link!.publish(fusionResultTopic(o.session, fusionId), signed, { qos: 0, expirySeconds: 1 });
    stage('result', performance.now() - tm);
    summary.framesFused++;
    if (clock === 'wall') {
      // Where a frame's end-to-end latency went, each from its capture time (the agents' clocks are this node's).
      const since = (ns: bigint) => Number(ns - t) / 1e6;
      stage('sinceCapture.ego', since(ego.arrivalNs));
      if (collaborators.length > 0) stage('sinceCapture.collaborators', Math.max(...collaborators.map((c) => since(c.m.arrivalNs))));
      stage('sinceCapture.start', startedMs);
      stage('sinceCapture.published', since(epochNowNs()));
    }
    o.onResult?.(result, signed.byteLength);
  }
  const modeWire = ({ none: wire.FusionMode.FUSION_MODE_NONE, intermediate: wire.FusionMode.FUSION_MODE_INTERMEDIATE, late: wire.FusionMode.FUSION_MODE_LATE, early: wire.FusionMode.FUSION_MODE_EARLY, hybrid: wire.FusionMode.FUSION_MODE_HYBRID } as const)[o.mode];

  let pumping = false;
  let newestFusedNs: bigint | undefined;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  async function pump(): Promise<void> {
    if (pumping) return;
    pumping = true;
    try {
      while (pending.length > 0) {
        const head = pending[0];
        const deadlineHit = Number(epochNowNs() - head.ego.arrivalNs) / 1e6 >= o.deadlineMs;
        if (!ready(head) && !deadlineHit && !stopped) break;
        pending.shift();
        clearTimeout(head.timer);
        // The gate admits a frame overtaken by later ones (its replay window); one older than a frame already
        // tracked cannot be, the tracker only steps forward: refused as 'overtaken'. Without tracking it is fused.
        if (scene && newestFusedNs !== undefined && head.ego.captureNs < newestFusedNs) {
          drop('overtaken');
          release(head.ego);
          continue;
        }
        if (newestFusedNs === undefined || head.ego.captureNs > newestFusedNs) newestFusedNs = head.ego.captureNs;
        try {
          await fuseFrame(head, deadlineHit);
        } catch (err) {
          // One frame failing must not stop the node; it is counted, and said once.
          if (!nodeDrops['fusion-error']) log(`ego frame at ${head.ego.captureNs} ns not fused: ${(err as Error).message}`);
          drop('fusion-error');
        } finally {
          release(head.ego);
        }
      }
      if (egoFinished && pending.length === 0 && o.exitWhenEgoOffline) finish();
    } finally {
      pumping = false;
    }
  }

  const onMessage = (topic: string, payload: Uint8Array, arrivalNs: bigint) => {
    const parsed = parseTopic(topic);
    if (!parsed || parsed.session !== o.session || parsed.role !== 'agent') return;
    const kind = parsed.kind as MessageKind;
    if (kind !== 'status' && kind !== dataKind && !(o.mode === 'hybrid' && kind === 'objects')) {
      drop('wrong-mode');
      if (nodeDrops['wrong-mode'] === 1) log(`agent ${parsed.id} sends ${kind}; this node fuses ${dataKind} (${o.mode}): ignored, and counted`);
      return;
    }
    const map = kind === 'features' ? takeMap() : undefined;
    const tm = performance.now();
    const r = gate.admit(kind, parsed.id, payload, nowNs(), map ? { out: map.features, mask: map.mask } : {});
    stage('admit', performance.now() - tm);
    if (!r.ok) {
      if (map) mapPool.push(map);
      return;
    }
    const header = r.message.header!;
    if (kind === 'status') {
      const state = (r.message as MessageOfKind['status']).state;
      liveState.set(parsed.id, state);
      if (parsed.id === o.egoId && (state === wire.AgentState.AGENT_STATE_OFFLINE || state === wire.AgentState.AGENT_STATE_FAILED)) egoFinished = true;
      void pump();
      return;
    }
    const sendNs = r.sendTimeNs;
    if (sendNs > 0n) summary.transportMs.push(Number(arrivalNs - sendNs) / 1e6);
    const m: Admitted = {
      kind: kind as Admitted['kind'], sender: parsed.id, sequence: r.sequence, captureNs: r.captureTimeNs, sendNs, arrivalNs,
      pose: poseMatrix(header.senderPose), bytes: payload.byteLength,
      codec: kind === 'features' ? (r.message as MessageOfKind['features']).encoding?.spec ?? '' : kind === 'points' ? (r.message as MessageOfKind['points']).encoding?.spec ?? '' : 'objects',
      message: r.message as Admitted['message'],
      features: kind === 'features' ? map : undefined,
      ready: kind === 'features' ? expandReduced(r.message as MessageOfKind['features'], map!) : undefined,
      points: kind === 'points' ? (r.payload as { points: Float32Array }).points : undefined,
      used: false,
    };
    if (!liveState.has(parsed.id)) liveState.set(parsed.id, wire.AgentState.AGENT_STATE_RUNNING);
    if (parsed.id === o.egoId) {
      newestEgo = { captureNs: m.captureNs, arrivalNs };
      const frame: PendingFrame = { ego: m, timer: setTimeout(() => void pump(), o.deadlineMs + 1) };
      // In capture order: a frame that arrives late (overtaken on the link) goes before the ones captured after it.
      let k = pending.length;
      while (k > 0 && pending[k - 1].ego.captureNs > m.captureNs) k--;
      pending.splice(k, 0, frame);
    } else {
      const into = kind === 'objects' && o.mode === 'hybrid' ? bufferedObjects : buffered;
      const list = into.get(parsed.id) ?? [];
      // Oldest first, by capture time, whatever order the link delivered them in.
      let k = list.length;
      while (k > 0 && list[k - 1].captureNs > m.captureNs) k--;
      list.splice(k, 0, m);
      // A message leaves the buffer once no ego frame can match it any more (older than the oldest frame still
      // to fuse, by more than the offset), or when the agent runs so far ahead that the cap is reached.
      const horizon = (pending[0]?.ego.captureNs ?? newestEgo?.captureNs ?? 0n) - maxOffsetNs;
      while (list.length > 0 && (list.length > BUFFERED_PER_AGENT || (list[0].captureNs < horizon && list.length > 1))) {
        const old = list.shift()!;
        if (!old.used) summary.unused[old.sender] = (summary.unused[old.sender] ?? 0) + 1;
        release(old);
      }
      into.set(parsed.id, list);
    }
    void pump();
  };

  // The first frames through code V8 has not compiled yet, into buffers the kernel has not mapped yet, cost several
  // times a steady frame (the first fused frame took 400 ms), and a live node then stays behind its stream for
  // seconds. So before it listens the node runs its own frame path a few times on a synthetic map: decode (a full
  // map and a selection), warp, fuse, head, a throwaway tracker with the node's predictor, a result message; and
  // fills the map pool, touched, for the maps one frame holds. Nothing here is counted in the summary.
  const warmUpFramePath = async (rounds: number) => {
    const agents = (o.expect?.length ?? 3) + 1;
    const maps = Array.from({ length: 2 * agents }, takeMap);
    for (const m of maps) m.features.fill(0);
    const src = new Float32Array(C * H * W);
    for (let i = 0; i < src.length; i += 7) src[i] = (i % 13) * 0.1;
    const confidence = new Float32Array(plane).map((_, i) => ((i * 7919) % 1000) / 1000);
    const toEgo = poseToMatrix({ x: 7.3, y: -2.1, z: 0, roll: 0, pitch: 0, yaw: 0.3 });
    const scratch = new MultiObjectTracker({ motion: o.motion ?? 'cv' });
    const throwaway = new TrackedScene(scratch, predictor);
    // The messages go through a gate of their own, as MQTT delivers them (a Buffer): warming the decoder on the
    // codec's own Uint8Arrays left V8 code for another object shape, which the first real message threw away
    // (in a profile its decoding loop took 14 ms, its admission 31 against 1.3 at the median).
    const warmGate = new MessageGate({
      log: new RejectionLog(() => {}), expectedModelId: models.manifest.modelId, grid: describeFeatureGrid(models.grid),
      maxAgeMs: 60_000, maxFutureMs: 60_000, requireSignatures: false, channelReductionRatios: [...reducers.keys()],
    });
    const wireGrid = describeFeatureGrid(models.grid);
    const warmUpPose = { x: 1.25, y: 2.5, z: 0.125, roll: 0.001, pitch: 0.002, yaw: 0.3 };
    let warmUpRefused = false;
    const coded = Array.from({ length: agents }, (_, k) => encodeFeatures(src, H, W, C, parseCodecSpec(k === 0 ? 'int8' : 'int8+top10%+deflate'), { confidence }));
    for (let r = 0; r < rounds; r++) {
      const now = epochNowNs();
      const decoded = coded.map((c, k) => {
        const sender = `warm-up-${k}`;
        const bytes = Buffer.from(encodeMessage('features', {
          header: { schemaVersion: SCHEMA_VERSION, senderId: sender, senderKind: agentKindToWire('vehicle'), sequence: r + 1, captureTimeNs: nsToWire(now), sendTimeNs: nsToWire(now), senderPose: warmUpPose, modelId: models.manifest.modelId },
          grid: wireGrid, encoding: { ...c.header, channelReductionRatio: 0 }, payload: c.payload,
        }));
        const admitted = warmGate.admit('features', sender, bytes, now, { out: maps[k].features, mask: maps[k].mask });
        // Not expected: the warm-up then goes on with the maps as they are, without having warmed the decoder.
        if (!admitted.ok && !warmUpRefused) {
          warmUpRefused = true;
          log(`warm-up message refused (${admitted.reason}: ${admitted.detail}): the first frames will decode cold`);
        }
        return maps[k];
      });
      const aligned: Float32Array[] = [decoded[0].features];
      const alignedMasks: (Float32Array | null)[] = [null];
      // As many collaborators as the node expects (ONNX Runtime plans each input shape on its first run).
      for (let k = 1; k < agents; k++) {
        const d = decoded[k];
        const w = warpToEgo(d.features, toEgo, models.grid, buffer(warped, k - 1, C * H * W), buffer(masks, k - 1, plane), d.mask.includes(0) ? d.mask : undefined);
        aligned.push(w.features);
        alignedMasks.push(w.mask);
      }
      const bev = combine === 'attention' ? attentionFuse(aligned, alignedMasks, fused) : combine === 'mean' ? meanFuse(aligned, alignedMasks, fused) : maxFuse(aligned, alignedMasks, fused);
      const head = await models.head!.detect(bev);
      const confidenceMap = confidenceMapOf(head.clsLogits);
      // Cars moving a metre a frame, some missed now and then, so the tracker associates, starts and ends tracks and
      // the predictor predicts.
      // Every value a non-integer, as the head's are: V8 stores an integer-valued field as a small integer, and the
      // first real box then changed the objects' layout and threw the tracker's optimised code away.
      const cars: Detection[] = Array.from({ length: 40 }, (_, j) => ({
        box: { x: -60.25 + 3 * j + r, y: 30.5 - 1.5 * j, z: -1.05, l: 4.5, w: 1.9, h: 1.6, yaw: 0.05 + 0.1 * j }, score: 0.3 + 0.015 * j, cls: 'vehicle' as const,
      })).filter((_, j) => (j + r) % 5 !== 0);
      const stepped = await throwaway.step(r * 0.1, [...cars, ...head.detections.slice(0, 20)], IDENTITY);
      const contributors = featureContributors(cars, [{ agentId: o.egoId, mask: null }, { agentId: 'warm-up', mask: alignedMasks[1] ?? null }], models.grid);
      // The result as fuseFrame builds it, signed when the node signs.
      const bytes = encodeMessage('result', {
        header: { schemaVersion: SCHEMA_VERSION, senderId: fusionId, senderKind: agentKindToWire('vehicle'), sequence: 0, captureTimeNs: nsToWire(now), sendTimeNs: nsToWire(epochNowNs()), senderPose: warmUpPose, modelId: models.manifest.modelId },
        mode: modeWire,
        detections: cars.map((d, k) => ({ box: { ...d.box }, objectClass: objectClassToWire(d.cls ?? 'vehicle'), score: d.score, contributingAgents: contributors[k] ?? [] })),
        tracks: tracksToWire(stepped.objects),
        contributions: Array.from({ length: agents }, (_, k) => ({ agentId: `warm-up-${k}`, mode: modeWire, used: true, refusedReason: '', sequence: r + 1, captureTimeNs: nsToWire(now), latencyMs: 50, bytes: 60_000, codec: 'int8', selectedCells: 1_600 })),
        latencies: [{ stage: 'warm-up', ms: 1 }],
        ...(confidenceMap ? { confidenceMap } : {}),
      });
      if (key) signMessage('result', bytes, key);
    }
    mapPool.push(...maps);
  };
  // 8 rounds left the first real frame's warp at 31–45 ms (4 steady); 24 brought it to 4–17 ms.
  warming = true;
  if (o.mode !== 'late' && o.mode !== 'early') await warmUpFramePath(24);
  warming = false;
  collectGarbageNow();

  try {
    link = await MqttLink.connect({ url: o.broker, clientId: `v2xfuse-${o.session}-${fusionId}`, username: o.username, password: o.password });
    summary.protocolVersion = link.protocolVersion;
    link.onMessage(onMessage);
    await link.subscribe([allAgentsFilter(o.session)], 0);
    log(`fusion node for ego ${o.egoId} (${o.mode}${o.mode === 'intermediate' || o.mode === 'hybrid' ? `, ${combine}` : o.mode === 'late' ? `, ${o.lateMerge ?? 'nms'}` : ''}) listening on ${o.broker}, session ${o.session}`);
    const aborted = new Promise<void>((resolve) => {
      if (o.signal?.aborted) resolve();
      o.signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    await Promise.race([finished, aborted]);
    stopped = true;
    await pump();
    summary.reconnects = link.stats.reconnects;
    for (const list of [...buffered.values(), ...bufferedObjects.values()]) for (const m of list) if (!m.used) summary.unused[m.sender] = (summary.unused[m.sender] ?? 0) + 1;
    const counts = rejections.counts();
    summary.dropped = { ...(counts.byReason as Record<string, number>), ...nodeDrops };
    summary.droppedByAgent = counts.byAgent as Record<string, Record<string, number>>;
    return summary;
  } finally {
    for (const p of pending) clearTimeout(p.timer);
    await link?.end();
    if (predictor instanceof MotionPredictor) await predictor.release();
    for (const r of reducers.values()) await r.dispose();
    await models.dispose();
  }
}
