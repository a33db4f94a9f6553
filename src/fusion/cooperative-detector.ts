// One cooperative detection step, as the fusion node performs it: encode every agent's LiDAR frame, align the
// collaborators' BEV features with the ego grid, fuse, run the head. The message path (later) replaces "encode
// every agent here" with "decode what the agents sent", and keeps the rest.
// Late and early fusion already send what they would send on the wire through the real encoders and decoders
// (object lists through protobuf, points through the point codec and protobuf), so their accuracy is that of
// the message path and their byte counts are those of the messages.
import type { AgentFrame, CooperativeFrame } from '../datasets/index.ts';
import { decodePoints, encodePoints, parsePointCodecSpec, type PointCodecSpec } from '../codec/index.ts';
import { invertRigid, matrixToPose, multiply, type Mat4 } from '../geometry/index.ts';
import { type HeaderInit, SCHEMA_VERSION, agentKindToWire, decodeMessage, encodeMessage, nsToWire } from '../messages/index.ts';
import { LidarEncoder, featureShape, gridHeight, gridWidth, type PerceptionModels, type StageTimings } from '../perception/index.ts';
import type { Detection } from '../eval/index.ts';
import { DEFAULT_POINT_CODEC, MergedCloudEncoder, type SenderPoints, mergePointClouds, mergedLength } from './early.ts';
import { MEASURED_POSITION_CONFIDENCE, type PositionConfidence, detectionsToObjects, fuseLate, objectsToDetections } from './late.ts';
import { maxFuse, warpToEgo } from './warp.ts';

/**
 * none: ego features only. max: element-wise max over aligned maps. attention: the trained attention model.
 * late: every agent detects on its own points, object lists merged by NMS. early: every agent's points merged in
 * the ego frame, one detection over them.
 */
export type FusionMode = 'none' | 'max' | 'attention' | 'late' | 'early';

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
}

export interface CooperativeDetection {
  detections: Detection[];
  /** Agents whose features went into the fusion, ego first. */
  agents: string[];
  /** Summed over agents for the per-agent stages. */
  timings: StageTimings & { warp?: number; objectCodec?: number; lateFusion?: number; pointCodec?: number; merge?: number };
  /**
   * late and early: the bytes of each agent's message this frame (ObjectList or PointCloudFrame with its header,
   * unsigned, as encodeMessage writes it), by agent id, the ego's own included (its agent node publishes too).
   * Undefined for none and the feature-fusion modes (their feature bytes depend on a codec chosen elsewhere).
   */
  bytes?: Record<string, number>;
  /** Occupied cells the encoder(s) could not give a pillar (maxPillars reached), summed over this frame's encodes. */
  droppedPillars: number;
}

export class FusionConfigError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'FusionConfigError';
  }
}

function poseOf(agent: AgentFrame, noisy: boolean): Mat4 {
  return noisy && agent.noisyLidarToWorld ? agent.noisyLidarToWorld : agent.lidarToWorld;
}

export class CooperativeDetector {
  private readonly encoded: Float32Array[] = [];
  private readonly warped: Float32Array[] = [];
  private readonly masks: Float32Array[] = [];
  private readonly fused: Float32Array;
  private readonly commRangeM: number;
  private readonly noisyPoses: boolean;
  private readonly pointCodec: PointCodecSpec;
  private readonly positionConfidence: PositionConfidence;
  private merged = new Float32Array(0);
  private readonly earlyMaxPillars: number | undefined;
  private readonly earlyEncoder: MergedCloudEncoder;

  constructor(readonly models: PerceptionModels, readonly mode: FusionMode, opts: CooperativeDetectorOptions = {}) {
    if (!models.head) throw new FusionConfigError(`${models.manifest.source}: the manifest names no detection_head model`);
    if (mode === 'attention' && !models.attention) throw new FusionConfigError(`${models.manifest.source}: --fusion attention needs a fusion_attention model in the manifest`);
    const [C, H, W] = featureShape(models.grid);
    this.fused = new Float32Array(C * H * W);
    this.commRangeM = opts.commRangeM ?? 70;
    this.noisyPoses = opts.noisyPoses ?? false;
    this.pointCodec = parsePointCodecSpec(opts.pointCodec ?? DEFAULT_POINT_CODEC);
    if (opts.earlyMaxPillars !== undefined && !(Number.isInteger(opts.earlyMaxPillars) && opts.earlyMaxPillars >= 1)) {
      throw new FusionConfigError(`earlyMaxPillars = ${opts.earlyMaxPillars}: must be a positive integer`);
    }
    this.earlyMaxPillars = opts.earlyMaxPillars;
    this.earlyEncoder = new MergedCloudEncoder(models, opts.earlyMaxPillars);
    this.positionConfidence =
      opts.positionConfidence ??
      (models.manifest.modelId === MEASURED_POSITION_CONFIDENCE.modelId ? MEASURED_POSITION_CONFIDENCE.confidence : { x: 0, y: 0, z: 0 });
  }

  private buffer(list: Float32Array[], k: number, size: number): Float32Array {
    while (list.length <= k) list.push(new Float32Array(size));
    return list[k];
  }

  /** The agents a frame's ego fuses with: itself first, then those within communication range (true positions). */
  participants(frame: CooperativeFrame, egoId: string): AgentFrame[] {
    const ego = frame.agents.find((a) => a.agentId === egoId);
    if (!ego) throw new FusionConfigError(`frame ${frame.frameId}: no agent '${egoId}' (agents: ${frame.agents.map((a) => a.agentId).join(', ')})`);
    if (this.mode === 'none') return [ego];
    const ex = ego.lidarToWorld[3], ey = ego.lidarToWorld[7];
    const others = frame.agents.filter((a) => a !== ego && Math.hypot(a.lidarToWorld[3] - ex, a.lidarToWorld[7] - ey) <= this.commRangeM);
    return [ego, ...others];
  }

  async detectFrame(frame: CooperativeFrame, egoId: string): Promise<CooperativeDetection> {
    if (this.mode === 'late') return this.detectLate(frame, egoId);
    if (this.mode === 'early') return this.detectEarly(frame, egoId);
    const agents = this.participants(frame, egoId);
    let droppedPillars = 0;
    const [C, H, W] = featureShape(this.models.grid);
    const timings: CooperativeDetection['timings'] = {};
    const add = (t: StageTimings & { warp?: number }) => {
      for (const [k, v] of Object.entries(t)) (timings as Record<string, number>)[k] = ((timings as Record<string, number>)[k] ?? 0) + (v ?? 0);
    };
    const egoPose = poseOf(agents[0], this.noisyPoses);
    const worldToEgo = invertRigid(egoPose);
    const aligned: Float32Array[] = [];
    const masks: (Float32Array | null)[] = [];
    for (let k = 0; k < agents.length; k++) {
      const points = await agents[k].loadPoints();
      const enc = await this.models.lidar.encode(points, { out: this.buffer(this.encoded, k, C * H * W) });
      add(enc.timings);
      droppedPillars += enc.pillars.droppedPillars;
      if (k === 0) {
        aligned.push(enc.features);
        masks.push(null);
        continue;
      }
      const t = performance.now();
      const agentToEgo = multiply(worldToEgo, poseOf(agents[k], this.noisyPoses));
      const w = warpToEgo(enc.features, agentToEgo, this.models.grid, this.buffer(this.warped, k, C * H * W), this.buffer(this.masks, k, H * W));
      add({ warp: performance.now() - t });
      aligned.push(w.features);
      masks.push(w.mask);
    }
    let bev: Float32Array;
    if (aligned.length === 1) {
      bev = aligned[0];
    } else if (this.mode === 'attention') {
      const r = await this.models.attention!.fuse(aligned, masks, this.fused);
      add(r.timings);
      bev = r.fused;
    } else {
      const t = performance.now();
      bev = maxFuse(aligned, masks, this.fused);
      add({ fusion: performance.now() - t });
    }
    const result = await this.models.head!.detect(bev);
    add(result.timings);
    return { detections: result.detections, agents: agents.map((a) => a.agentId), timings, droppedPillars };
  }

  /** The header an agent's message carries (unsigned, send time not stamped): what its bytes are counted with. */
  private header(frame: CooperativeFrame, agent: AgentFrame): HeaderInit {
    const pose = matrixToPose(poseOf(agent, this.noisyPoses));
    return {
      schemaVersion: SCHEMA_VERSION,
      senderId: agent.agentId,
      senderKind: agentKindToWire(agent.kind),
      sequence: frame.index,
      captureTimeNs: nsToWire(agent.timestampNs),
      senderPose: pose,
      modelId: this.models.manifest.modelId,
    };
  }

  /** Each agent → its agent frame → ego frame, through the poses the fusion node would know. */
  private toEgo(agents: AgentFrame[]): Mat4[] {
    const worldToEgo = invertRigid(poseOf(agents[0], this.noisyPoses));
    return agents.map((a) => multiply(worldToEgo, poseOf(a, this.noisyPoses)));
  }

  private async detectLate(frame: CooperativeFrame, egoId: string): Promise<CooperativeDetection> {
    const agents = this.participants(frame, egoId);
    const timings: CooperativeDetection['timings'] = {};
    const add = (t: Record<string, number | undefined>) => {
      for (const [k, v] of Object.entries(t)) (timings as Record<string, number>)[k] = ((timings as Record<string, number>)[k] ?? 0) + (v ?? 0);
    };
    const toEgo = this.toEgo(agents);
    const bytes: Record<string, number> = {};
    const perAgent: Detection[][] = [];
    let droppedPillars = 0;
    for (let k = 0; k < agents.length; k++) {
      const enc = await this.models.lidar.encode(await agents[k].loadPoints());
      add(enc.timings);
      droppedPillars += enc.pillars.droppedPillars;
      const own = await this.models.head!.detect(enc.features);
      add(own.timings);
      const t = performance.now();
      const message = encodeMessage('objects', {
        header: this.header(frame, agents[k]),
        objects: detectionsToObjects(own.detections, { positionConfidence: this.positionConfidence }),
      });
      bytes[agents[k].agentId] = message.byteLength;
      perAgent.push(objectsToDetections(decodeMessage('objects', message).objects, toEgo[k]));
      add({ objectCodec: performance.now() - t });
    }
    const t = performance.now();
    const g = this.models.grid;
    const detections = fuseLate(perAgent[0], perAgent.slice(1), {
      iouThreshold: this.models.manifest.postprocess.nmsIouThreshold,
      range: { xMin: g.xMin, xMax: g.xMax, yMin: g.yMin, yMax: g.yMax },
    });
    add({ lateFusion: performance.now() - t });
    return { detections, agents: agents.map((a) => a.agentId), timings, bytes, droppedPillars };
  }

  private async detectEarly(frame: CooperativeFrame, egoId: string): Promise<CooperativeDetection> {
    const agents = this.participants(frame, egoId);
    const [C, H, W] = featureShape(this.models.grid);
    const timings: CooperativeDetection['timings'] = {};
    const add = (t: Record<string, number | undefined>) => {
      for (const [k, v] of Object.entries(t)) (timings as Record<string, number>)[k] = ((timings as Record<string, number>)[k] ?? 0) + (v ?? 0);
    };
    const toEgo = this.toEgo(agents);
    const bytes: Record<string, number> = {};
    const received: Float32Array[] = [];
    let t = performance.now();
    for (let k = 0; k < agents.length; k++) {
      const points = await agents[k].loadPoints();
      t = performance.now();
      const enc = encodePoints(points, this.pointCodec);
      const message = encodeMessage('points', { header: this.header(frame, agents[k]), encoding: enc.header, payload: enc.payload });
      bytes[agents[k].agentId] = message.byteLength;
      const decoded = decodeMessage('points', message);
      received.push(decodePoints(decoded.payload, decoded.encoding ?? {}).points);
      add({ pointCodec: performance.now() - t });
    }
    t = performance.now();
    const others: SenderPoints[] = received.slice(1).map((points, i) => ({ points, senderToEgo: toEgo[i + 1] }));
    const total = mergedLength(received[0], others);
    // One buffer kept across frames, grown with headroom: a frame with a few more points must not reallocate.
    if (this.merged.length < total) this.merged = new Float32Array(Math.ceil(total * 1.25));
    const merged = mergePointClouds(received[0], others, this.merged);
    add({ merge: performance.now() - t });
    const enc = await this.earlyEncoder.encoderFor(agents.length).encode(merged, { out: this.buffer(this.encoded, 0, C * H * W) });
    add(enc.timings);
    const result = await this.models.head!.detect(enc.features);
    add(result.timings);
    return { detections: result.detections, agents: agents.map((a) => a.agentId), timings, bytes, droppedPillars: enc.pillars.droppedPillars };
  }
}
