// The agent and fusion hot paths as the nodes run them (src/transport/agent-node.ts, fusion-node.ts), in process
// and without MQTT, so each stage can be timed alone. The stages section, the throughput section and the memory
// workers share them.
import { type FeatureCodecSpec, decodeFeatures, encodeFeatures, parseCodecSpec } from '../../src/codec/index.ts';
import type { Detection } from '../../src/eval/index.ts';
import { attentionFuse, featureConfidenceMap, maxFuse, warpToEgo } from '../../src/fusion/index.ts';
import { type Box7, type Mat4, invertRigid, matrixToPose, multiply, poseToMatrix, transformBox } from '../../src/geometry/index.ts';
import { type MessageOfKind, SCHEMA_VERSION, decodeMessage, encodeMessage, nsToWire } from '../../src/messages/index.ts';
import { type PerceptionModels, featureShape } from '../../src/perception/index.ts';
import { MotionPredictor, predictTracks } from '../../src/prediction/index.ts';
import { MultiObjectTracker } from '../../src/tracking/index.ts';
import type { Samples } from './common.ts';

export const DEFAULT_CODEC = 'int8+top10%+deflate';

/** One agent: points → features → confidence → codec → protobuf bytes, timing each stage into `samples`. */
export class AgentPipeline {
  private readonly confidence: Float32Array;
  private readonly spec: FeatureCodecSpec;
  private sequence = 0;
  readonly C: number;
  readonly H: number;
  readonly W: number;

  constructor(readonly models: PerceptionModels, codec = DEFAULT_CODEC) {
    [this.C, this.H, this.W] = featureShape(models.grid);
    this.confidence = new Float32Array(this.H * this.W);
    this.spec = parseCodecSpec(codec);
  }

  async run(agentId: string, points: Float32Array, pose: Mat4, captureNs: bigint, samples?: Samples): Promise<{ bytes: Uint8Array; features: Float32Array }> {
    const { models, H, W, C } = this;
    const enc = await models.lidar.encode(points);
    for (const [k, v] of Object.entries(enc.timings)) samples?.add(k, v as number);
    let t = performance.now();
    const r = await models.head!.detect(enc.features);
    samples?.add('agentHead', performance.now() - t);
    t = performance.now();
    featureConfidenceMap(r.clsLogits, this.confidence);
    samples?.add('confidence', performance.now() - t);
    t = performance.now();
    const coded = encodeFeatures(enc.features, H, W, C, this.spec, { confidence: this.confidence });
    samples?.add('codecEncode', performance.now() - t);
    t = performance.now();
    const p = matrixToPose(pose);
    const bytes = encodeMessage('features', {
      header: {
        schemaVersion: SCHEMA_VERSION, senderId: agentId, sequence: ++this.sequence, captureTimeNs: nsToWire(captureNs),
        sendTimeNs: nsToWire(captureNs), senderPose: { x: p.x, y: p.y, z: p.z, roll: p.roll, pitch: p.pitch, yaw: p.yaw },
        modelId: models.manifest.modelId,
      },
      grid: { ...models.grid, channels: C, height: H, width: W },
      encoding: { ...coded.header, channelReductionRatio: 0 },
      payload: coded.payload,
    });
    samples?.add('protobufEncode', performance.now() - t);
    return { bytes, features: enc.features };
  }

  /** The agent's confidence map of its last run (what top-k selection used). */
  get lastConfidence(): Float32Array {
    return this.confidence;
  }
}

function poseOf(m: MessageOfKind['features']): { x: number; y: number; z: number; roll: number; pitch: number; yaw: number } {
  const p = m.header?.senderPose;
  return { x: p?.x ?? 0, y: p?.y ?? 0, z: p?.z ?? 0, roll: p?.roll ?? 0, pitch: p?.pitch ?? 0, yaw: p?.yaw ?? 0 };
}

/** The fusion node's work on one ego frame: decode, align, fuse, head, track, predict; buffers kept across frames. */
export class FusionPipeline {
  readonly C: number;
  readonly H: number;
  readonly W: number;
  private decoded: { features: Float32Array; mask: Uint8Array }[] = [];
  private warped: Float32Array[] = [];
  private masks: Float32Array[] = [];
  private readonly fused: Float32Array;
  private readonly tracker = new MultiObjectTracker({ motion: 'cv' });
  private readonly histories = new Map<number, Box7[]>();
  private frame = 0;

  constructor(readonly models: PerceptionModels, readonly predictor: MotionPredictor | undefined, readonly combine: 'attention' | 'max' = 'attention') {
    [this.C, this.H, this.W] = featureShape(models.grid);
    this.fused = new Float32Array(this.C * this.H * this.W);
  }

  private slot<T>(list: T[], k: number, make: () => T): T {
    while (list.length <= k) list.push(make());
    return list[k];
  }

  /** Decodes a collaborator's message bytes into buffer k (protobuf, then the feature codec). */
  decode(k: number, bytes: Uint8Array, samples?: Samples): { features: Float32Array; mask: Uint8Array; pose: Mat4 } {
    const { C, H, W } = this;
    let t = performance.now();
    const m = decodeMessage('features', bytes);
    samples?.add('protobufDecode', performance.now() - t);
    t = performance.now();
    const buf = this.slot(this.decoded, k, () => ({ features: new Float32Array(C * H * W), mask: new Uint8Array(H * W) }));
    const d = decodeFeatures(m.payload, m.encoding ?? {}, { out: buf.features, mask: buf.mask });
    samples?.add('codecDecode', performance.now() - t);
    return { features: d.features, mask: d.mask, pose: poseMatrixOf(m) };
  }

  /** Fuses the ego's own map with decoded collaborators (their poses in the world), then head, track, predict. */
  async fuse(
    egoMap: Float32Array,
    egoPose: Mat4,
    collaborators: readonly { features: Float32Array; mask: Uint8Array; pose: Mat4 }[],
    samples?: Samples,
    opts: { track?: boolean; combine?: 'attention' | 'max' } = {},
  ): Promise<Detection[]> {
    const { models, C, H, W } = this;
    const plane = H * W;
    const worldToEgo = invertRigid(egoPose);
    const aligned: Float32Array[] = [egoMap];
    const alignedMasks: (Float32Array | null)[] = [null];
    let t = performance.now();
    for (let k = 0; k < collaborators.length; k++) {
      const d = collaborators[k];
      const toEgo = multiply(worldToEgo, d.pose);
      const w = warpToEgo(d.features, toEgo, models.grid, this.slot(this.warped, k, () => new Float32Array(C * plane)), this.slot(this.masks, k, () => new Float32Array(plane)), d.mask.includes(0) ? d.mask : undefined);
      aligned.push(w.features);
      alignedMasks.push(w.mask);
    }
    samples?.add('align', performance.now() - t);
    t = performance.now();
    let bev = egoMap;
    const combine = opts.combine ?? this.combine;
    if (aligned.length > 1) {
      bev = combine === 'attention' ? attentionFuse(aligned, alignedMasks, this.fused) : maxFuse(aligned, alignedMasks, this.fused);
    }
    samples?.add('fuse', performance.now() - t);
    const r = await models.head!.detect(bev);
    for (const [k, v] of Object.entries(r.timings)) samples?.add(k, v as number);
    if (opts.track !== false) await this.track(r.detections, egoPose, worldToEgo, samples);
    return r.detections;
  }

  private async track(detections: Detection[], egoToWorld: Mat4, worldToEgo: Mat4, samples?: Samples): Promise<void> {
    let t = performance.now();
    const live = this.tracker.update(
      this.frame++ * 0.1,
      detections.map((d) => ({ box: transformBox(egoToWorld, d.box), score: d.score, cls: d.cls })),
    );
    const seen = new Set<number>();
    for (const track of live) {
      seen.add(track.id);
      const h = this.histories.get(track.id) ?? [];
      h.push(track.box);
      if (h.length > 10) h.shift();
      this.histories.set(track.id, h);
    }
    for (const id of this.histories.keys()) if (!seen.has(id)) this.histories.delete(id);
    samples?.add('track', performance.now() - t);
    if (this.predictor && live.length > 0) {
      t = performance.now();
      await predictTracks(
        live.map((track) => ({ trackId: track.id, cls: track.cls, boxes: this.histories.get(track.id)!.map((b) => transformBox(worldToEgo, b)) })),
        this.predictor,
      );
      samples?.add('predict', performance.now() - t);
    }
  }
}

export function poseMatrixOf(m: MessageOfKind['features']): Mat4 {
  return poseToMatrix(poseOf(m));
}
