// One cooperative detection step, as the fusion node performs it: encode every agent's LiDAR frame, align the
// collaborators' BEV features with the ego grid, fuse, run the head. The message path (later) replaces "encode
// every agent here" with "decode what the agents sent", and keeps the rest.
// Late and early fusion already send what they would send on the wire through the real encoders and decoders
// (object lists through protobuf, points through the point codec and protobuf), so their accuracy is that of
// the message path and their byte counts are those of the messages; feature fusion does the same when given a
// feature codec, and hybrid always does.
//
// What a collaborator's message goes through, in order (each optional): latency (its frame from `latencyMs`
// earlier, aligned with its pose at capture time), pose noise (OpenCOOD's Gaussian on x, y, yaw of the pose it
// carries), selection (at most `maxAgents`, at most `budgetBytes` of collaborator messages per frame), loss (a
// seeded Bernoulli draw per message). The ego's own data and pose are never impaired: everything is measured in
// its frame.
import type { AgentFrame, CooperativeFrame, CooperativeSequence } from '../datasets/index.ts';
import { decodeFeatures, decodePoints, encodeFeatures, encodePoints, parseCodecSpec, parsePointCodecSpec, type FeatureCodecSpec, type PointCodecSpec } from '../codec/index.ts';
import { invertRigid, matrixToPose, multiply, transformBox, type Mat4 } from '../geometry/index.ts';
import { type FeatureFrameInit, type HeaderInit, SCHEMA_VERSION, agentKindToWire, decodeMessage, encodeMessage, nsToWire } from '../messages/index.ts';
import { ChannelReducer, describeFeatureGrid, featureShape, type LidarEncoderPool, type PerceptionModels, type PooledEncoding, type StageTimings } from '../perception/index.ts';
import { type AgentSensorEncoder, type FleetPlanOptions, type SensorModality, planFleet } from '../perception/index.ts';
import type { Detection } from '../eval/index.ts';
import { MultiObjectTracker, type Track } from '../tracking/index.ts';
import { type ConsistencyOptions, type ConsistencyVerdict, DEFAULT_CONSISTENCY, attributeToCollaborator, filterConsistent } from './consistency.ts';
import { DEFAULT_POINT_CODEC, MergedCloudEncoder, type SenderPoints, mergePointClouds, mergedLength } from './early.ts';
import { type FreeSpaceMap, FreeSpaceBuilder, freeSpaceGrid } from './free-space.ts';
import { checkFeatureViews } from './own-map.ts';
import { featureConfidenceMap, mergeHybrid, objectsOutsideSentCells } from './hybrid.ts';
import { type PoseNoiseStd, applyPoseNoise, messageLost, samplePoseNoise } from './impairments.ts';
import { type FeatureMotion, compensateFeatureMotion, compensateObjectMotion, featureMotionsFromTracks } from './feature-motion.ts';
import { compensateLatency, delayedFrameIndex } from './latency.ts';
import { type PositionConfidence, positionConfidenceFor, detectionsToObjects, fuseLate, objectsToDetections } from './late.ts';
import { meanFuse } from './mean-fusion.ts';
import { attentionFuse } from './attention-fusion.ts';
import { type SelectionCandidate, type SelectionSkipReason, coverageFraction, fieldOfViewFraction, selectAgents } from './selection.ts';
import { maxFuse, warpToEgo } from './warp.ts';
import { weightedBoxFusion } from './wbf.ts';

/**
 * none: ego features only. max / mean: element-wise max / masked mean over aligned maps. attention: the trained
 * attention model. late: every agent detects on its own points, object lists merged by NMS or WBF. early: every
 * agent's points merged in the ego frame, one detection over them. hybrid: features of the cells a collaborator
 * sends (its codec's top-k) fused with the ego's, plus its objects whose centre cell it did not send, merged after
 * the head by NMS.
 */
export type FusionMode = 'none' | 'max' | 'mean' | 'attention' | 'late' | 'early' | 'hybrid';

/** How late fusion merges the object lists: OpenCOOD's score-ordered NMS, or weighted box fusion. */
export type LateMerge = 'nms' | 'wbf';

/** The feature codec hybrid sends its cells with when none is given: int8 values, the 10 % most confident cells. */
export const DEFAULT_HYBRID_CODEC = 'int8+top10%';

export interface CooperativeDetectorOptions {
  /** Collaborators farther than this (2D, LiDAR to LiDAR) are not used; OpenCOOD's 70 m. */
  commRangeM?: number;
  /** Use each agent's GPS-noisy pose when the dataset has one (what a real deployment knows), else the true pose. */
  noisyPoses?: boolean;
  /** early: the point codec the clouds travel with (src/codec spec grammar); default '1cm+deflate'. */
  pointCodec?: string;
  /**
   * late: 95 % half-width of the object positions sent. Default: the measured one when the manifest is the model
   * it was measured for (MEASURED_POSITION_CONFIDENCE), else 0 (unavailable).
   */
  positionConfidence?: PositionConfidence;
  /**
   * early: pillar budget of the merged cloud. Default: the manifest's maxPillars per agent in the frame, at most
   * one per grid cell. K agents' points occupy up to K times the cells of one, and a single-agent budget would
   * drop the cells opened last, i.e. the collaborators' (intersection seed 102, 20 frames, 4 agents: 1,807 cells
   * per frame at 16,000, vehicle AP@0.5 0.817; none and 0.852 with this default). Only memory grows with it
   * (~1.5 kB per pillar: 32 points × 10 features plus 64 PFN outputs, float32): the PFN runs on the pillars filled.
   */
  earlyMaxPillars?: number;
  /**
   * max / mean / attention: when given, collaborators' features travel through this feature codec and a
   * FeatureFrame message (bytes counted, cells not sent left out of the fusion); hybrid: the codec of its feature
   * part, default DEFAULT_HYBRID_CODEC, and it must select cells (top / thr).
   */
  featureCodec?: string;
  /** late (and hybrid's object part): merge by 'nms' (default) or 'wbf'. */
  lateMerge?: LateMerge;
  /** Gaussian error on each collaborator's pose (OpenCOOD's model); none by default. */
  poseNoise?: PoseNoiseStd;
  /** Each collaborator message is lost with this probability; default 0. */
  lossProbability?: number;
  /** Seed of pose noise and loss (draws keyed by seed, frame and agent); default 0. */
  seed?: number;
  /** Collaborators' messages are this old (ms): their frame from that long before the ego's. Needs the sequence. */
  latencyMs?: number;
  /**
   * late: move each old object by its velocity over the gap (fitted over the sender's last four object lists,
   * DAIR-V2X's TCLF with a short history). max / mean / attention / hybrid: move the features of each moving
   * object of an old map by its velocity over the gap, the velocity from the detector's own tracks of its fused
   * detections (src/fusion/feature-motion.ts); hybrid's objects move with them. Every mode aligns old messages with
   * the capture-time pose regardless (src/fusion/latency.ts).
   */
  compensate?: boolean;
  /** At most this many collaborators per frame (see selection.ts for the ranking). */
  maxAgents?: number;
  /** At most this many bytes of collaborator messages per frame; needs messages with bytes (not raw feature modes). */
  budgetBytes?: number;
  /**
   * Which sensors each agent encodes with (detect --modality; src/perception/sensor-fusion.ts planFleet) and the
   * encoder that follows the plan. Without it every agent uses its LiDAR. Feature modes only.
   */
  sensors?: { encoder: AgentSensorEncoder; plan: FleetPlanOptions };
  /** Intermediate / hybrid: encode a frame's LiDAR agents at once on these worker threads (`detect --workers N`)
   * instead of one after another on this one; the same features. The caller owns the pool. */
  encoderPool?: LidarEncoderPool;
  /**
   * Leave out collaborators the ego's own data contradicts (consistency.ts, as the fusion node's
   * --consistency-check): the ego's free-space map, built from its LiDAR each frame (free-space.ts), against each
   * collaborator's objects in the ego frame; late fusion also runs the agreement test with the ego's and the others'
   * lists. Feature modes (max, mean, attention, hybrid) have no object list to judge, so a collaborator's objects
   * are what the detection head finds on its map alone (one more head pass per collaborator, on the map as decoded
   * in its own frame, the boxes then moved into the ego frame), plus
   * hybrid's object list, and only the free-space test runs (its agreement would need the ego's own head pass too,
   * and honest single-agent lists agree too little to tell much). With featureTest 'leave-one-out' (or 'both') the
   * feature modes also fuse once more without each collaborator and blame it for the fused detections in the ego's
   * free space that exist only with it (consistency.ts attributeToCollaborator). An excluded collaborator
   * contributes nothing that frame (FrameLinks.skipped reason 'inconsistent'). Not for none or early.
   */
  consistencyCheck?: boolean | ConsistencyOptions;
  /**
   * Feature modes: called with each collaborator's BEV features (its own frame, before its codec) so that a
   * reliability experiment can alter them as a malicious sender would (tools/reliability/attack-ap.ts).
   */
  alterSenderFeatures?: (agentId: string, features: Float32Array, frameIndex: number) => void | Promise<void>;
}

/** What happened to the collaborators in range this frame. */
export interface FrameLinks {
  /** Collaborators within communication range, in frame order. */
  inRange: string[];
  /** Fused, in the order fused. */
  used: string[];
  /** Not fused, each with why: no message that old yet, not chosen, or lost. */
  skipped: { agentId: string; reason: SelectionSkipReason | 'no-message' | 'lost' | 'inconsistent' }[];
  /** Bytes of the collaborators' messages chosen (lost ones included: they were sent). */
  collaboratorBytes: number;
  /** Per collaborator fused, how old its message was (ms). */
  ageMs: Record<string, number>;
  /** With consistencyCheck: the verdict on each collaborator that reached the check (excluded ones included). */
  consistency?: ConsistencyVerdict[];
}

export interface CooperativeDetection {
  detections: Detection[];
  /** Agents whose features went into the fusion, ego first. */
  agents: string[];
  /** Summed over agents for the per-agent stages. */
  timings: StageTimings & { warp?: number; objectCodec?: number; lateFusion?: number; pointCodec?: number; merge?: number; featureCodec?: number; freeSpace?: number; consistencyHead?: number; consistency?: number; consistencyFusion?: number };
  /**
   * The bytes of each agent's message this frame, by agent id, for the messages fused. late and early: the
   * ObjectList or PointCloudFrame with its header, unsigned, as encodeMessage writes it, the ego's own included
   * (its agent node publishes too). Feature modes with a codec and hybrid: collaborators' FeatureFrame (plus, for
   * hybrid, ObjectList) bytes; the ego's features never leave it. Undefined for none and feature modes without a codec.
   */
  bytes?: Record<string, number>;
  /** Occupied cells the encoder(s) could not give a pillar (maxPillars reached), summed over this frame's encodes. */
  droppedPillars: number;
  /** Collaborators in range and what became of them. */
  links: FrameLinks;
}

export class FusionConfigError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'FusionConfigError';
  }
}

/** Moves a collaborator the consistency check excludes from used to skipped ('inconsistent'). */
function markInconsistent(info: FrameLinks, id: string): void {
  info.used = info.used.filter((x) => x !== id);
  delete info.ageMs[id];
  info.skipped.push({ agentId: id, reason: 'inconsistent' });
}

function poseOf(agent: AgentFrame, noisy: boolean): Mat4 {
  return noisy && agent.noisyLidarToWorld ? agent.noisyLidarToWorld : agent.lidarToWorld;
}

const FEATURE_MODES: readonly FusionMode[] = ['max', 'mean', 'attention', 'hybrid'];

/** A collaborator's message as the receiver has it: what it captured, when, and with which pose. */
interface Link {
  agent: AgentFrame;
  captureIndex: number;
  /** The pose the message carries (noise included), and sender → ego through it. */
  pose: Mat4;
  toEgo: Mat4;
  ageMs: number;
}

/** What a collaborator sent, decoded by the receiver, before fusion. */
interface Received {
  link: Link;
  bytes: number;
  /** late / hybrid: objects in the ego frame. */
  objects?: Detection[];
  /** early: points in the sender's frame. */
  points?: Float32Array;
  /** feature modes: aligned features and mask, in the detector's per-slot buffers. */
  features?: Float32Array;
  mask?: Float32Array;
  /** feature modes: the map as decoded, in the sender's frame (what the consistency check runs the head on). */
  senderFeatures?: Float32Array;
  /** Latency compensation: copies of features and mask (and hybrid's objects) with the moving objects moved. */
  moved?: { features: Float32Array; mask: Float32Array; objects?: Detection[] };
}

type Timings = CooperativeDetection['timings'];

function addTimings(into: Timings, t: Record<string, number | undefined>): void {
  for (const [k, v] of Object.entries(t)) (into as Record<string, number>)[k] = ((into as Record<string, number>)[k] ?? 0) + (v ?? 0);
}

// Frames kept for latency (the message's frame and the one before it, for each of a few lags); object lists kept
// for compensation (each sender's list is needed again as the "previous" one a frame later).
const FRAME_CACHE = 12;
const OBJECT_CACHE = 32;
/** Object lists a latency-compensated message's velocities are fitted over: it and the three before it (300 ms). */
const COMPENSATION_HISTORY = 4;
/** Tracks older than this (ms before the frame) are not a motion source: the tracker starts over. */
const TRACK_HORIZON_MS = 500;

export class CooperativeDetector {
  private readonly encoded: Float32Array[] = [];
  private readonly warped: Float32Array[] = [];
  private readonly movedMaps: Float32Array[] = [];
  private readonly movedMasks: Float32Array[] = [];
  private readonly masks: Float32Array[] = [];
  private readonly fused: Float32Array;
  private readonly confidence: Float32Array;
  private readonly commRangeM: number;
  private readonly noisyPoses: boolean;
  private readonly pointCodec: PointCodecSpec;
  private readonly featureCodec: FeatureCodecSpec | undefined;
  /** Loaded on first use when the feature codec has a `c<ratio>` stage. */
  private reducer: ChannelReducer | undefined;
  private readonly positionConfidence: PositionConfidence;
  private merged = new Float32Array(0);
  private readonly earlyMaxPillars: number | undefined;
  private readonly earlyEncoder: MergedCloudEncoder;
  private readonly opts: CooperativeDetectorOptions;
  private frameCache: { seq: CooperativeSequence | undefined; frames: Map<number, CooperativeFrame> } = { seq: undefined, frames: new Map() };
  private readonly objectCache = new Map<string, { objects: Detection[]; bytes: number }>();
  /** The grid a FeatureFrame carries (what the agent node sends), so that feature bytes are those of the wire. */
  private readonly wireGrid: NonNullable<FeatureFrameInit['grid']>;

  /**
   * Feature-mode compensation's motion source: a tracker over this detector's fused detections (world frame), as
   * the fusion node runs one; `tracks` are those of the frame at `lastNs`. Reset for another sequence or ego, or
   * when frames jump back or skip past TRACK_HORIZON_MS.
   */
  private motion: { seq: CooperativeSequence | undefined; egoId: string; tracker: MultiObjectTracker; originNs: bigint; lastNs: bigint; tracks: Track[] } | undefined;

  /** consistencyCheck: the ego's free-space map, rebuilt each frame in its buffers. */
  private readonly freeSpace: FreeSpaceBuilder | undefined;
  private readonly consistency: ConsistencyOptions | undefined;
  /** This frame's free-space map, as keepConsistent built it (undefined: no check, or a camera-only ego). */
  private frameFreeSpace: FreeSpaceMap | undefined;

  /** This frame's sensors per agent (null: left out), when opts.sensors is given. */
  private framePlan: Map<string, SensorModality | null> | undefined;
  /** encoderPool: this frame's LiDAR encodings, started together, each into the buffer its agent is encoded into. */
  private readonly prefetched = new Map<AgentFrame, Promise<PooledEncoding>>();

  constructor(readonly models: PerceptionModels, readonly mode: FusionMode, opts: CooperativeDetectorOptions = {}) {
    if (!models.head) throw new FusionConfigError(`${models.manifest.source}: the manifest names no detection_head model`);
    if (mode === 'attention' && !models.attention) throw new FusionConfigError(`${models.manifest.source}: --fusion attention needs a fusion_attention model in the manifest`);
    const [C, H, W] = featureShape(models.grid);
    this.fused = new Float32Array(C * H * W);
    this.confidence = new Float32Array(H * W);
    this.commRangeM = opts.commRangeM ?? 70;
    this.noisyPoses = opts.noisyPoses ?? false;
    this.pointCodec = parsePointCodecSpec(opts.pointCodec ?? DEFAULT_POINT_CODEC);
    if (opts.earlyMaxPillars !== undefined && !(Number.isInteger(opts.earlyMaxPillars) && opts.earlyMaxPillars >= 1)) {
      throw new FusionConfigError(`earlyMaxPillars = ${opts.earlyMaxPillars}: must be a positive integer`);
    }
    if (opts.featureCodec !== undefined && !FEATURE_MODES.includes(mode)) {
      throw new FusionConfigError(`--codec ${opts.featureCodec}: a feature codec applies to max, mean, attention and hybrid, not ${mode}`);
    }
    const codecText = mode === 'hybrid' ? (opts.featureCodec ?? DEFAULT_HYBRID_CODEC) : opts.featureCodec;
    this.featureCodec = codecText === undefined ? undefined : parseCodecSpec(codecText);
    if (mode === 'hybrid' && !this.featureCodec!.selection) {
      throw new FusionConfigError(`--codec ${codecText}: hybrid sends only some cells, so its codec needs a cell selection (e.g. int8+top10%)`);
    }
    if (opts.lateMerge !== undefined && mode !== 'late' && mode !== 'hybrid') throw new FusionConfigError(`--late-merge applies to late and hybrid fusion, not ${mode}`);
    const check = (name: string, v: number | undefined, ok: (v: number) => boolean, rule: string) => {
      if (v !== undefined && !ok(v)) throw new FusionConfigError(`${name} = ${v}: ${rule}`);
    };
    check('lossProbability', opts.lossProbability, (v) => v >= 0 && v <= 1, 'must lie in [0, 1]');
    check('latencyMs', opts.latencyMs, (v) => Number.isFinite(v) && v >= 0, 'must be a finite number ≥ 0');
    check('maxAgents', opts.maxAgents, (v) => Number.isInteger(v) && v >= 0, 'must be an integer ≥ 0');
    check('budgetBytes', opts.budgetBytes, (v) => Number.isFinite(v) && v >= 0, 'must be a finite number ≥ 0');
    check('seed', opts.seed, (v) => Number.isInteger(v), 'must be an integer');
    if (opts.poseNoise) check('poseNoise', Math.min(opts.poseNoise.posM, opts.poseNoise.yawDeg), (v) => v >= 0, 'stds must be ≥ 0');
    if (opts.budgetBytes !== undefined && (mode === 'max' || mode === 'mean' || mode === 'attention') && !this.featureCodec) {
      throw new FusionConfigError(`--budget-bytes with --fusion ${mode} needs --codec: raw features have no message to count`);
    }
    const g = models.grid;
    this.wireGrid = describeFeatureGrid(g);
    this.opts = opts;
    if (opts.sensors && opts.sensors.plan.modality !== 'lidar' && (mode === 'late' || mode === 'early')) {
      throw new FusionConfigError(`--modality ${opts.sensors.plan.modality}: ${mode} fusion runs on LiDAR only (camera features fuse in the feature modes)`);
    }
    this.earlyMaxPillars = opts.earlyMaxPillars;
    this.earlyEncoder = new MergedCloudEncoder(models, opts.earlyMaxPillars);
    this.positionConfidence = opts.positionConfidence ?? positionConfidenceFor(models.manifest.modelId);
    if (opts.consistencyCheck && (mode === 'none' || mode === 'early')) {
      throw new FusionConfigError(`--consistency-check applies to late, hybrid, max, mean and attention fusion, not ${mode}`);
    }
    if (opts.alterSenderFeatures && !FEATURE_MODES.includes(mode)) throw new FusionConfigError(`alterSenderFeatures applies to feature fusion, not ${mode}`);
    this.consistency = opts.consistencyCheck ? (opts.consistencyCheck === true ? {} : opts.consistencyCheck) : undefined;
    this.freeSpace = this.consistency ? new FreeSpaceBuilder(freeSpaceGrid(g)) : undefined;
  }

  /**
   * consistencyCheck: the collaborators the ego's data does not contradict. `egoObjects`: the ego's own list (late,
   * for the agreement test); feature modes judge each collaborator by a head pass over its decoded map plus its
   * object list (hybrid; own-map.ts). A kept collaborator's objects in the ego's free space (at most the tolerated few) are
   * dropped from its list, as filterConsistent does. Fills `info`.
   */
  private async keepConsistent(ego: AgentFrame, used: Received[], info: FrameLinks, timings: Timings, egoObjects: Detection[] | undefined): Promise<Received[]> {
    if (!this.consistency || used.length === 0) return used;
    let t = performance.now();
    // A camera-only ego has no LiDAR to see free space with: the agreement test alone (late), or nothing.
    const ownLidar = (this.framePlan?.get(ego.agentId) ?? 'lidar') !== 'camera';
    const map: FreeSpaceMap | undefined = ownLidar ? this.freeSpace!.build(await ego.loadPoints()) : undefined;
    this.frameFreeSpace = map;
    addTimings(timings, { freeSpace: performance.now() - t });
    t = performance.now();
    let out: Received[];
    let verdicts: ConsistencyVerdict[];
    if (FEATURE_MODES.includes(this.mode)) {
      // The own-map test (own-map.ts, as the fusion node runs it); leave-one-out alone needs no head pass here.
      const ownMap = (this.consistency.featureTest ?? DEFAULT_CONSISTENCY.featureTest) !== 'leave-one-out';
      const views = used.map((r) => ({ id: r.link.agent.agentId, toEgo: r.link.toEgo, features: ownMap ? r.senderFeatures : undefined, objects: r.objects, r }));
      const checked = await checkFeatureViews(this.models.head!, { id: ego.agentId, freeSpace: map }, views, this.consistency);
      if (ownMap) addTimings(timings, { consistencyHead: checked.headMs });
      t += checked.headMs;
      verdicts = checked.verdicts;
      out = checked.kept.map((v) => (v.objects ? { ...v.r, objects: v.objects } : v.r));
    } else {
      const views = used.map((r) => ({ id: r.link.agent.agentId, detections: r.objects ?? [], x: r.link.toEgo[3], y: r.link.toEgo[7], r }));
      const filtered = filterConsistent({ id: ego.agentId, detections: egoObjects ?? [], x: 0, y: 0, freeSpace: map }, views, this.consistency);
      verdicts = filtered.verdicts;
      out = filtered.kept.map(({ r, detections }) => (r.objects ? { ...r, objects: detections as Detection[] } : r));
    }
    info.consistency = verdicts;
    for (const v of verdicts) if (v.exclude) markInconsistent(info, v.id);
    addTimings(timings, { consistency: performance.now() - t });
    return out;
  }

  /**
   * Feature modes, featureTest 'leave-one-out' / 'both': one more fusion and head pass without each collaborator;
   * those blamed for more than maxContradictions fused detections in the ego's free space are left out, and the
   * fusion without them is what the frame reports. A kept collaborator's blamed detections (the tolerated few) are
   * dropped from it, as filterConsistent drops a kept list's objects in free space. Fills `info` (verdicts'
   * `attributed` scores, exclusions).
   */
  private async leaveOneOut(
    used: Received[], withAll: Detection[], info: FrameLinks, timings: Timings,
    fuseWithout: (rest: Received[]) => Promise<Detection[]>,
  ): Promise<{ used: Received[]; detections: Detection[] }> {
    const test = this.consistency?.featureTest ?? DEFAULT_CONSISTENCY.featureTest;
    const map = this.frameFreeSpace;
    if (!this.consistency || test === 'own-map' || !map || used.length === 0) return { used, detections: withAll };
    const t = performance.now();
    const max = this.consistency.leaveOneOut?.maxContradictions ?? DEFAULT_CONSISTENCY.leaveOneOut.maxContradictions!;
    const excluded: { r: Received; without: Detection[] }[] = [];
    const blamed: Detection[] = [];
    for (const r of used) {
      const without = await fuseWithout(used.filter((x) => x !== r));
      const attributed = attributeToCollaborator(map, withAll, without, this.consistency);
      const id = r.link.agent.agentId;
      const v = info.consistency?.find((x) => x.id === id);
      if (v) v.attributed = attributed.map((d) => d.score);
      if (attributed.length <= max) {
        blamed.push(...attributed);
        continue;
      }
      excluded.push({ r, without });
      if (v) Object.assign(v, { exclude: true, reason: 'free-space' });
      markInconsistent(info, id);
    }
    let detections = withAll;
    if (excluded.length > 0) {
      used = used.filter((r) => !excluded.some((e) => e.r === r));
      detections = excluded.length === 1 ? excluded[0]!.without : await fuseWithout(used);
    }
    if (blamed.length > 0) {
      // By position: after an exclusion the detections are another fusion's objects.
      const r2 = (this.consistency.matchDistanceM ?? DEFAULT_CONSISTENCY.matchDistanceM) ** 2;
      detections = detections.filter((d) => !blamed.some((b) => (b.box.x - d.box.x) ** 2 + (b.box.y - d.box.y) ** 2 <= r2 && d.score <= b.score));
    }
    addTimings(timings, { consistencyFusion: performance.now() - t });
    return { used, detections };
  }

  private buffer(list: Float32Array[], k: number, size: number): Float32Array {
    while (list.length <= k) list.push(new Float32Array(size));
    return list[k];
  }

  /** The agents a frame's ego fuses with: itself first, then those within communication range (true positions). */
  participants(frame: CooperativeFrame, egoId: string): AgentFrame[] {
    const ego = frame.agents.find((a) => a.agentId === egoId);
    if (!ego) throw new FusionConfigError(`frame ${frame.frameId}: no agent '${egoId}' (agents: ${frame.agents.map((a) => a.agentId).join(', ')})`);
    const plan = this.opts.sensors ? planFleet(frame.agents, egoId, this.opts.sensors.plan) : undefined;
    this.framePlan = plan;
    if (plan?.get(egoId) === null) throw new FusionConfigError(`--modality ${this.opts.sensors!.plan.modality}: the ego ${egoId} (${ego.kind}) has no sensor in that plan`);
    if (this.mode === 'none') return [ego];
    const ex = ego.lidarToWorld[3], ey = ego.lidarToWorld[7];
    const others = frame.agents.filter(
      (a) => a !== ego && plan?.get(a.agentId) !== null && Math.hypot(a.lidarToWorld[3] - ex, a.lidarToWorld[7] - ey) <= this.commRangeM,
    );
    return [ego, ...others];
  }

  /** An agent's BEV features with the sensors this frame's plan gives it (its LiDAR without a plan). */
  private async encodeAgent(agent: AgentFrame, out: Float32Array): Promise<{ features: Float32Array; timings: StageTimings; pillars: { droppedPillars: number } }> {
    const pre = this.prefetched.get(agent);
    if (pre) {
      this.prefetched.delete(agent);
      const r = await pre;
      if (r.features !== out) out.set(r.features);
      return { features: out, timings: r.timings, pillars: { droppedPillars: r.droppedPillars } };
    }
    const modality = this.framePlan?.get(agent.agentId) ?? 'lidar';
    if (!this.opts.sensors || modality === 'lidar') return this.models.lidar.encode(await agent.loadPoints(), { out });
    const r = await this.opts.sensors.encoder.encode(agent, modality, out);
    return { features: r.features, timings: r.timings, pillars: { droppedPillars: r.droppedPillars } };
  }

  /** Frame `index` of `seq`, from a small cache (latency reads the same earlier frames again and again). */
  private async frameAt(seq: CooperativeSequence, index: number): Promise<CooperativeFrame> {
    if (this.frameCache.seq !== seq) this.frameCache = { seq, frames: new Map() };
    const cache = this.frameCache.frames;
    let f = cache.get(index);
    if (!f) {
      f = await seq.frame(index);
      cache.set(index, f);
      if (cache.size > FRAME_CACHE) cache.delete(cache.keys().next().value!);
    }
    return f;
  }

  /** The earlier frame a message `latencyMs` old comes from (delayedFrameIndex over the sequence's timestamps). */
  private async delayedFrame(seq: CooperativeSequence, frame: CooperativeFrame, latencyMs: number): Promise<CooperativeFrame | undefined> {
    const target = frame.timestampNs - BigInt(Math.round(latencyMs * 1e6));
    const stamps: bigint[] = [frame.timestampNs];
    let lo = frame.index;
    while (lo > 0 && stamps[0] > target) {
      lo--;
      stamps.unshift((await this.frameAt(seq, lo)).timestampNs);
    }
    const j = delayedFrameIndex(stamps, stamps.length - 1, latencyMs);
    if (j === undefined) return undefined;
    return j + lo === frame.index ? frame : this.frameAt(seq, j + lo);
  }

  /** The pose a sender's message of frame `captureIndex` carries: its (noisy) pose plus the simulated error. */
  private senderPose(agent: AgentFrame, captureIndex: number): Mat4 {
    const pose = poseOf(agent, this.noisyPoses);
    const std = this.opts.poseNoise;
    if (!std || (std.posM === 0 && std.yawDeg === 0)) return pose;
    return applyPoseNoise(pose, samplePoseNoise(std, this.opts.seed ?? 0, captureIndex, agent.agentId));
  }

  /** Collaborators in range → the messages the receiver has from them (latency applied), and those it has none from. */
  private async links(frame: CooperativeFrame, agents: AgentFrame[], worldToEgo: Mat4, seq: CooperativeSequence | undefined): Promise<{ links: Link[]; info: FrameLinks }> {
    const info: FrameLinks = { inRange: agents.slice(1).map((a) => a.agentId), used: [], skipped: [], collaboratorBytes: 0, ageMs: {} };
    const latency = this.opts.latencyMs ?? 0;
    let source: CooperativeFrame | undefined = frame;
    if (latency > 0 && agents.length > 1) {
      if (!seq) throw new FusionConfigError('latency needs the sequence (detectFrame(frame, ego, sequence)) to find earlier frames');
      source = await this.delayedFrame(seq, frame, latency);
    }
    const links: Link[] = [];
    for (const current of agents.slice(1)) {
      const agent = source?.agents.find((a) => a.agentId === current.agentId);
      if (!source || !agent) {
        info.skipped.push({ agentId: current.agentId, reason: 'no-message' });
        continue;
      }
      const pose = this.senderPose(agent, source.index);
      links.push({ agent, captureIndex: source.index, pose, toEgo: multiply(worldToEgo, pose), ageMs: Number(frame.timestampNs - agent.timestampNs) / 1e6 });
    }
    return { links, info };
  }

  /** Selection (maxAgents, budgetBytes) then loss, over what the collaborators sent; fills `info`. */
  private async choose(received: Received[], egoPose: Mat4, info: FrameLinks, frameIndex: number): Promise<Received[]> {
    let chosen = received;
    const { maxAgents, budgetBytes } = this.opts;
    if (maxAgents !== undefined || budgetBytes !== undefined) {
      const ex = egoPose[3], ey = egoPose[7];
      const candidates: SelectionCandidate[] = [];
      for (const r of received) {
        // A camera-only agent has no returns to go by: the square of its grid stands in for its field of view.
        const lidar = (this.framePlan?.get(r.link.agent.agentId) ?? 'lidar') !== 'camera';
        candidates.push({
          agentId: r.link.agent.agentId,
          distanceM: Math.hypot(r.link.pose[3] - ex, r.link.pose[7] - ey),
          coverage: lidar ? fieldOfViewFraction(await r.link.agent.loadPoints(), r.link.toEgo, this.models.grid) : coverageFraction(r.link.toEgo, this.models.grid),
          bytes: r.bytes,
        });
      }
      const sel = selectAgents(candidates, { maxAgents, budgetBytes });
      info.skipped.push(...sel.skipped);
      chosen = sel.chosen.map((id) => received.find((r) => r.link.agent.agentId === id)!);
    }
    info.collaboratorBytes = chosen.reduce((a, r) => a + r.bytes, 0);
    const p = this.opts.lossProbability ?? 0;
    const kept = chosen.filter((r) => {
      if (!messageLost(p, this.opts.seed ?? 0, frameIndex, r.link.agent.agentId)) return true;
      info.skipped.push({ agentId: r.link.agent.agentId, reason: 'lost' });
      return false;
    });
    for (const r of kept) {
      info.used.push(r.link.agent.agentId);
      info.ageMs[r.link.agent.agentId] = r.link.ageMs;
    }
    return kept;
  }

  /**
   * Detects in the ego's frame. `sequence` (the frame's own) is needed only with latency, to find the
   * collaborators' earlier frames.
   */
  async detectFrame(frame: CooperativeFrame, egoId: string, sequence?: CooperativeSequence): Promise<CooperativeDetection> {
    const agents = this.participants(frame, egoId);
    const egoPose = poseOf(agents[0], this.noisyPoses);
    const worldToEgo = invertRigid(egoPose);
    const { links, info } = await this.links(frame, agents, worldToEgo, sequence);
    if (this.mode === 'late') return this.detectLate(frame, agents[0], links, info, egoPose, worldToEgo, sequence);
    if (this.mode === 'early') return this.detectEarly(frame, agents[0], links, info, egoPose);
    return this.detectFeatures(frame, agents[0], links, info, egoPose, worldToEgo, sequence);
  }

  /** Whether feature-mode compensation is on: it needs the detector to see the frames before the scored ones. */
  get tracksFusedDetections(): boolean {
    return !!this.opts.compensate && (this.opts.latencyMs ?? 0) > 0 && FEATURE_MODES.includes(this.mode);
  }

  /** The moving objects of a message captured at `captureNs`, from the tracks of the frames before (none without). */
  private featureMotions(frame: CooperativeFrame, egoId: string, seq: CooperativeSequence | undefined, captureNs: bigint, worldToEgo: Mat4): FeatureMotion[] {
    const m = this.motion;
    if (!m || m.seq !== seq || m.egoId !== egoId || !(m.lastNs < frame.timestampNs) || captureNs >= frame.timestampNs) return [];
    if (frame.timestampNs - m.lastNs > BigInt(TRACK_HORIZON_MS) * 1_000_000n) return [];
    const s = (ns: bigint) => Number(ns - m.originNs) / 1e9;
    return featureMotionsFromTracks(m.tracks, worldToEgo, { trackS: s(m.lastNs), captureS: s(captureNs), nowS: s(frame.timestampNs) });
  }

  /**
   * Feeds this frame's fused detections (ego frame) to the motion tracker, starting it over when the frames jump.
   * They must be the detections of the maps as received, not of the compensated ones: a compensated object is
   * reported v·Δt ahead, which the tracker would read as more speed, which moves it farther the next frame (with
   * Δt three frames, a parked car whose track picked up 1 m/s of jitter ran away to 6 m/s within a few frames on the
   * intersection test sequence, and compensation cost AP@0.5 instead of gaining it). Hence the second head pass.
   */
  private trackFused(frame: CooperativeFrame, egoId: string, seq: CooperativeSequence | undefined, egoPose: Mat4, detections: readonly Detection[]): void {
    let m = this.motion;
    const t = frame.timestampNs;
    if (!m || m.seq !== seq || m.egoId !== egoId || !(m.lastNs < t) || t - m.lastNs > BigInt(TRACK_HORIZON_MS) * 1_000_000n) {
      m = this.motion = { seq, egoId, tracker: new MultiObjectTracker({ motion: 'cv' }), originNs: t, lastNs: t, tracks: [] };
    }
    m.tracks = m.tracker.update(Number(t - m.originNs) / 1e9, detections.map((d) => ({ box: transformBox(egoPose, d.box), score: d.score, cls: d.cls })));
    m.lastNs = t;
  }

  private async detectFeatures(
    frame: CooperativeFrame,
    ego: AgentFrame,
    links: Link[],
    info: FrameLinks,
    egoPose: Mat4,
    worldToEgo: Mat4,
    seq: CooperativeSequence | undefined,
  ): Promise<CooperativeDetection> {
    const [C, H, W] = featureShape(this.models.grid);
    const size = C * H * W;
    const timings: Timings = {};
    let droppedPillars = 0;
    const codec = this.featureCodec;
    const hybrid = this.mode === 'hybrid';
    const g = this.models.grid;
    const range = { xMin: g.xMin, xMax: g.xMax, yMin: g.yMin, yMax: g.yMax };
    const compensate = this.tracksFusedDetections;

    // With worker threads, every LiDAR agent of the frame starts encoding now, into the buffer it is read from below.
    const pool = this.opts.encoderPool;
    // Jobs a failed frame left running write into these buffers: let them finish first.
    await Promise.allSettled(this.prefetched.values());
    this.prefetched.clear();
    if (pool) {
      [ego, ...links.map((l) => l.agent)].forEach((agent, k) => {
        if ((this.framePlan?.get(agent.agentId) ?? 'lidar') !== 'lidar' || this.prefetched.has(agent)) return;
        const out = this.buffer(this.encoded, k, size);
        const job = agent.loadPoints().then((points) => pool.encode(points, out));
        job.catch(() => {}); // awaited (and thrown) where the agent is encoded; a frame that stops early drops it
        this.prefetched.set(agent, job);
      });
    }

    // Every collaborator with a message: encode (on the sender), send through the codec, align (on the receiver).
    const received: Received[] = [];
    for (let k = 0; k < links.length; k++) {
      const link = links[k];
      const enc = await this.encodeAgent(link.agent, this.buffer(this.encoded, k + 1, size));
      addTimings(timings, enc.timings);
      droppedPillars += enc.pillars.droppedPillars;
      if (this.opts.alterSenderFeatures) await this.opts.alterSenderFeatures(link.agent.agentId, enc.features, link.captureIndex);
      let features = enc.features;
      let sent: Uint8Array | undefined;
      let bytes = 0;
      let objects: Detection[] | undefined;
      if (codec) {
        let own: Detection[] = [];
        if (codec.selection) {
          const r = await this.models.head!.detect(enc.features);
          addTimings(timings, { confidence: r.timings.head });
          featureConfidenceMap(r.clsLogits, this.confidence);
          own = r.detections;
        }
        const t = performance.now();
        // `c<ratio>`: the manifest's learned encoder shrinks the channels on the sender, its decoder restores them.
        const ratio = codec.channelReduction?.ratio;
        let map = enc.features;
        let channels = C;
        if (ratio !== undefined) {
          this.reducer ??= await ChannelReducer.load(this.models.manifest, ratio, { device: this.models.provider });
          map = (await this.reducer.reduce(enc.features)).reduced;
          channels = this.reducer.reducedChannels;
        }
        const coded = encodeFeatures(map, H, W, channels, codec, { confidence: codec.selection ? this.confidence : undefined, channelReductionRatios: ratio ? [ratio] : [] });
        const header = this.header(link.agent, link.captureIndex, link.pose);
        const message = encodeMessage('features', { header, grid: this.wireGrid, encoding: { ...coded.header, channelReductionRatio: ratio ?? 0 }, payload: coded.payload });
        bytes += message.byteLength;
        const decoded = decodeMessage('features', message);
        const full = this.buffer(this.encoded, k + 1, size);
        const out = decodeFeatures(decoded.payload, decoded.encoding ?? {}, { out: full.subarray(0, channels * H * W) });
        if (this.reducer && ratio !== undefined) await this.reducer.expand(out.features.slice(), full);
        features = full;
        if (codec.selection) sent = out.mask;
        if (hybrid) {
          const list = encodeMessage('objects', {
            header: this.header(link.agent, link.captureIndex, link.pose),
            objects: detectionsToObjects(objectsOutsideSentCells(own, coded.mask, g), { positionConfidence: this.positionConfidence }),
          });
          bytes += list.byteLength;
          objects = objectsToDetections(decodeMessage('objects', list).objects, link.toEgo);
        }
        addTimings(timings, { featureCodec: performance.now() - t });
      }
      const t = performance.now();
      // A selection-coded map covers only the cells it sent (and is warped only there).
      const w = warpToEgo(features, link.toEgo, g, this.buffer(this.warped, k + 1, size), this.buffer(this.masks, k + 1, H * W), sent);
      addTimings(timings, { warp: performance.now() - t });
      let moved: Received['moved'];
      if (compensate && link.ageMs > 0) {
        const tc = performance.now();
        const motions = this.featureMotions(frame, ego.agentId, seq, link.agent.timestampNs, worldToEgo);
        if (motions.length > 0) {
          // On copies: the tracker is fed what the maps as received give (see trackFused).
          const mf = this.buffer(this.movedMaps, k + 1, size), mm = this.buffer(this.movedMasks, k + 1, H * W);
          mf.set(w.features);
          mm.set(w.mask);
          compensateFeatureMotion(mf, mm, motions, g);
          moved = { features: mf, mask: mm, objects: objects && compensateObjectMotion(objects, motions, { grid: g }) };
        }
        addTimings(timings, { compensation: performance.now() - tc });
      }
      received.push({ link, bytes, objects, features: w.features, mask: w.mask, senderFeatures: features, moved });
    }
    let used = await this.keepConsistent(ego, await this.choose(received, egoPose, info, frame.index), info, timings, undefined);

    const egoEnc = await this.encodeAgent(ego, this.buffer(this.encoded, 0, size));
    addTimings(timings, egoEnc.timings);
    droppedPillars += egoEnc.pillars.droppedPillars;
    const method = hybrid ? (this.models.attention ? 'attention' : 'max') : this.mode;
    const fuseAndDetect = async (maps: Float32Array[], masks: (Float32Array | null)[], late: Detection[][], timings: Timings): Promise<Detection[]> => {
      let bev: Float32Array;
      if (maps.length === 1) {
        bev = maps[0];
      } else {
        // Attention: the model's parameter-free attention, computed only where a collaborator covers a cell.
        const t = performance.now();
        bev = method === 'attention' ? attentionFuse(maps, masks, this.fused) : method === 'mean' ? meanFuse(maps, masks, this.fused) : maxFuse(maps, masks, this.fused);
        addTimings(timings, { fusion: performance.now() - t });
      }
      const result = await this.models.head!.detect(bev);
      addTimings(timings, result.timings);
      if (!hybrid) return result.detections;
      const t = performance.now();
      const merged = this.opts.lateMerge === 'wbf'
        ? weightedBoxFusion([result.detections, ...late], { iouThreshold: this.models.manifest.postprocess.nmsIouThreshold, range })
        : mergeHybrid(result.detections, late, { iouThreshold: this.models.manifest.postprocess.nmsIouThreshold, range });
      addTimings(timings, { lateFusion: performance.now() - t });
      return merged;
    };
    const fuseReceived = (rs: Received[], t: Timings) => fuseAndDetect([egoEnc.features, ...rs.map((r) => r.features!)], [null, ...rs.map((r) => r.mask!)], rs.map((r) => r.objects ?? []), t);
    let asReceived = await fuseReceived(used, timings);
    // Its passes' stage timings kept apart: they are the check's cost, reported as consistencyFusion.
    const checked = await this.leaveOneOut(used, asReceived, info, timings, (rest) => fuseReceived(rest, {}));
    used = checked.used;
    asReceived = checked.detections;
    let detections = asReceived;
    if (used.some((r) => r.moved)) {
      // A second fusion and head pass, over the maps with their moving objects moved: what is reported.
      detections = await fuseAndDetect(
        [egoEnc.features, ...used.map((r) => r.moved?.features ?? r.features!)],
        [null, ...used.map((r) => r.moved?.mask ?? r.mask!)],
        used.map((r) => r.moved?.objects ?? r.objects ?? []),
        timings,
      );
    }
    if (compensate) this.trackFused(frame, ego.agentId, seq, egoPose, asReceived);
    const bytes = codec ? Object.fromEntries(used.map((r) => [r.link.agent.agentId, r.bytes])) : undefined;
    return { detections, agents: [ego.agentId, ...info.used], timings, ...(bytes ? { bytes } : {}), droppedPillars, links: info };
  }

  /** The header an agent's message carries (unsigned, send time not stamped): what its bytes are counted with. */
  private header(agent: AgentFrame, captureIndex: number, pose: Mat4): HeaderInit {
    return {
      schemaVersion: SCHEMA_VERSION,
      senderId: agent.agentId,
      senderKind: agentKindToWire(agent.kind),
      sequence: captureIndex,
      captureTimeNs: nsToWire(agent.timestampNs),
      senderPose: matrixToPose(pose),
      modelId: this.models.manifest.modelId,
    };
  }

  /**
   * A sender's object list of one frame, as the receiver decodes it (boxes in the sender's frame), and its bytes.
   * Cached by sender and frame: compensation needs each list again as the "previous" one.
   */
  private async senderObjects(agent: AgentFrame, captureIndex: number, pose: Mat4, timings: Timings, dropped: { n: number }): Promise<{ objects: Detection[]; bytes: number }> {
    const key = `${agent.agentId}@${captureIndex}`;
    const hit = this.objectCache.get(key);
    if (hit) return hit;
    const [C, H, W] = featureShape(this.models.grid);
    const enc = await this.models.lidar.encode(await agent.loadPoints(), { out: this.buffer(this.encoded, 0, C * H * W) });
    addTimings(timings, enc.timings);
    dropped.n += enc.pillars.droppedPillars;
    const own = await this.models.head!.detect(enc.features);
    addTimings(timings, own.timings);
    const t = performance.now();
    const message = encodeMessage('objects', {
      header: this.header(agent, captureIndex, pose),
      objects: detectionsToObjects(own.detections, { positionConfidence: this.positionConfidence }),
    });
    const identity = new Float64Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    const entry = { objects: objectsToDetections(decodeMessage('objects', message).objects, identity), bytes: message.byteLength };
    addTimings(timings, { objectCodec: performance.now() - t });
    // Only compensation reads a list twice; without it a cache would only hold memory.
    if (this.opts.compensate && (this.opts.latencyMs ?? 0) > 0) {
      this.objectCache.set(key, entry);
      if (this.objectCache.size > OBJECT_CACHE) this.objectCache.delete(this.objectCache.keys().next().value!);
    }
    return entry;
  }

  private async detectLate(
    frame: CooperativeFrame,
    ego: AgentFrame,
    links: Link[],
    info: FrameLinks,
    egoPose: Mat4,
    worldToEgo: Mat4,
    seq: CooperativeSequence | undefined,
  ): Promise<CooperativeDetection> {
    const timings: Timings = {};
    const dropped = { n: 0 };
    const received: Received[] = [];
    const compensate = this.opts.compensate && (this.opts.latencyMs ?? 0) > 0;
    const own = await this.senderObjects(ego, frame.index, egoPose, timings, dropped);
    for (const link of links) {
      const sent = await this.senderObjects(link.agent, link.captureIndex, link.pose, timings, dropped);
      let objects = sent.objects.map((d) => ({ ...d, box: transformBox(link.toEgo, d.box) }));
      if (compensate && seq && link.ageMs > 0 && link.captureIndex > 0) {
        const t = performance.now();
        // The sender's lists before this one (each a message it sent earlier), all in the ego frame of now, each
        // through its own capture pose: a static frame, so the sender's own motion cancels and what is left is the
        // objects' motion.
        const history: Detection[][] = [objects];
        // Seconds before the newest list, from the integer nanoseconds (epoch nanoseconds overflow float64 precision).
        const times: number[] = [0];
        for (let back = 1; back < COMPENSATION_HISTORY && link.captureIndex - back >= 0; back++) {
          const earlier = await this.frameAt(seq, link.captureIndex - back);
          const agent = earlier.agents.find((a) => a.agentId === link.agent.agentId);
          if (!agent || !(agent.timestampNs < link.agent.timestampNs)) break;
          const pose = this.senderPose(agent, earlier.index);
          const list = await this.senderObjects(agent, earlier.index, pose, timings, dropped);
          const toEgo = multiply(worldToEgo, pose);
          history.unshift(list.objects.map((d) => ({ ...d, box: transformBox(toEgo, d.box) })));
          times.unshift(Number(agent.timestampNs - link.agent.timestampNs) / 1e9);
        }
        if (history.length >= 2) objects = compensateLatency(history, times, link.ageMs / 1000);
        addTimings(timings, { compensation: performance.now() - t });
      }
      received.push({ link, bytes: sent.bytes, objects });
    }
    const used = await this.keepConsistent(ego, await this.choose(received, egoPose, info, frame.index), info, timings, own.objects);
    const bytes: Record<string, number> = { [ego.agentId]: own.bytes };
    for (const r of used) bytes[r.link.agent.agentId] = r.bytes;
    const t = performance.now();
    const g = this.models.grid;
    const range = { xMin: g.xMin, xMax: g.xMax, yMin: g.yMin, yMax: g.yMax };
    const iouThreshold = this.models.manifest.postprocess.nmsIouThreshold;
    const lists = used.map((r) => r.objects!);
    const detections = this.opts.lateMerge === 'wbf'
      ? weightedBoxFusion([own.objects, ...lists], { iouThreshold, range })
      : fuseLate(own.objects, lists, { iouThreshold, range });
    addTimings(timings, { lateFusion: performance.now() - t });
    return { detections, agents: [ego.agentId, ...info.used], timings, bytes, droppedPillars: dropped.n, links: info };
  }

  private async detectEarly(frame: CooperativeFrame, ego: AgentFrame, links: Link[], info: FrameLinks, egoPose: Mat4): Promise<CooperativeDetection> {
    const [C, H, W] = featureShape(this.models.grid);
    const timings: Timings = {};
    const send = async (agent: AgentFrame, captureIndex: number, pose: Mat4): Promise<{ points: Float32Array; bytes: number }> => {
      const points = await agent.loadPoints();
      const t = performance.now();
      const enc = encodePoints(points, this.pointCodec);
      const message = encodeMessage('points', { header: this.header(agent, captureIndex, pose), encoding: enc.header, payload: enc.payload });
      const decoded = decodeMessage('points', message);
      const out = { points: decodePoints(decoded.payload, decoded.encoding ?? {}).points, bytes: message.byteLength };
      addTimings(timings, { pointCodec: performance.now() - t });
      return out;
    };
    const own = await send(ego, frame.index, egoPose);
    const received: Received[] = [];
    for (const link of links) {
      const r = await send(link.agent, link.captureIndex, link.pose);
      received.push({ link, bytes: r.bytes, points: r.points });
    }
    const used = await this.choose(received, egoPose, info, frame.index);
    const bytes: Record<string, number> = { [ego.agentId]: own.bytes };
    for (const r of used) bytes[r.link.agent.agentId] = r.bytes;
    const t = performance.now();
    const others: SenderPoints[] = used.map((r) => ({ points: r.points!, senderToEgo: r.link.toEgo }));
    const total = mergedLength(own.points, others);
    // One buffer kept across frames, grown with headroom: a frame with a few more points must not reallocate.
    if (this.merged.length < total) this.merged = new Float32Array(Math.ceil(total * 1.25));
    const merged = mergePointClouds(own.points, others, this.merged);
    addTimings(timings, { merge: performance.now() - t });
    const enc = await this.earlyEncoder.encoderFor(1 + used.length).encode(merged, { out: this.buffer(this.encoded, 0, C * H * W) });
    addTimings(timings, enc.timings);
    const result = await this.models.head!.detect(enc.features);
    addTimings(timings, result.timings);
    return { detections: result.detections, agents: [ego.agentId, ...info.used], timings, bytes, droppedPillars: enc.pillars.droppedPillars, links: info };
  }
}
