// One configuration of the sweep, in process: the cooperative detector over the sequence with the
// configuration's codec and impairments, its detections tracked and their motion predicted as the fusion node
// does, and everything summarised under the field names of `v2xfuse run --report`.
import type { CooperativeSequence } from '../datasets/index.ts';
import { ClassAwareApAccumulator, cooperativeGroundTruth } from '../eval/index.ts';
import { CooperativeDetector, gridEvalRange } from '../fusion/index.ts';
import { type FusionResultInit, SCHEMA_VERSION, decodeMessage, encodeMessage, objectClassToWire } from '../messages/index.ts';
import type { PerceptionModels } from '../perception/index.ts';
import { ConstantVelocityPredictor, TrackedScene } from '../prediction/index.ts';
import { MultiObjectTracker } from '../tracking/index.ts';
import { type BytesStats, type Percentiles, type RunReport, type ScoredFrame, agentTopic, percentiles, scoreFusionResults } from '../transport/index.ts';
import { type SweepConfiguration, type SweepContext, configurationKey, configurationLabel } from './grid.ts';
import { SENSOR_MESSAGE_FRAMING, megabitsPerMessage, megabitsPerSecond, mqttPublishBytes } from './wire-bytes.ts';

/** One finished configuration: `v2xfuse run --report`'s fields where they mean the same, and the sweep's own. */
export interface SweepResult
  extends Pick<
    RunReport,
    'dataset' | 'scenario' | 'ego' | 'fusion' | 'codec' | 'modelId' | 'frames' | 'framesFused' | 'ap' | 'byClass' | 'tracking' | 'prediction' | 'mbpsPerAgent' | 'latencyMs' | 'dropped' | 'wallSeconds'
  > {
  key: string;
  label: string;
  lateMerge: string | null;
  impairments: { poseNoise: SweepConfiguration['poseNoise']; latencyMs: number; loss: number; seed: number };
  /**
   * Collaborators' messages on the wire (protobuf plus MQTT 5 PUBLISH framing, QoS 0 with expiry, topic as the
   * agent nodes publish on), by kind, and `all`. Hybrid sends two messages a frame: its `all` is per frame.
   */
  bytesPerMessage: Record<string, BytesStats>;
  /** The same messages' protobuf bytes alone (what `v2xfuse run` counts as message bytes). */
  protobufBytesPerMessage: Record<string, BytesStats>;
  /** The units of OpenCOOD's and Where2comm's tables, from the mean wire bytes: Mb per message and log2(bytes). */
  publishedUnits: { megabitsPerMessage: number; log2Bytes: number } | null;
}

const SENSOR_RATE_HZ = 10;
/** The run's segment of the topics counted: as long as the one `v2xfuse run` makes (run- and 8 hex digits). */
const TOPIC_RUN_SEGMENT = 'run-00000000';

function bytesStats(values: readonly number[]): BytesStats {
  const p = percentiles(values);
  return { count: p.count, mean: p.mean, p95: p.p95 };
}

/** The kind of message(s) a mode sends per collaborator per frame; hybrid's two are counted together. */
function messageKinds(c: SweepConfiguration): ('features' | 'objects' | 'points')[] {
  switch (c.fusion) {
    case 'late':
      return ['objects'];
    case 'early':
      return ['points'];
    case 'hybrid':
      return ['features', 'objects'];
    default:
      return ['features'];
  }
}

export interface RunConfigurationOptions {
  /** Called after every frame. */
  onFrame?: () => void;
}

export async function runConfiguration(
  seq: CooperativeSequence,
  models: PerceptionModels,
  c: SweepConfiguration,
  ctx: SweepContext,
  opts: RunConfigurationOptions = {},
): Promise<SweepResult> {
  const t0 = performance.now();
  const featureMode = c.fusion === 'max' || c.fusion === 'mean' || c.fusion === 'attention' || c.fusion === 'hybrid';
  const detector = new CooperativeDetector(models, c.fusion, {
    featureCodec: featureMode && c.codec ? c.codec : undefined,
    pointCodec: c.fusion === 'early' && c.codec ? c.codec : undefined,
    lateMerge: c.lateMerge ?? undefined,
    poseNoise: c.poseNoise ?? undefined,
    latencyMs: c.latencyMs || undefined,
    lossProbability: c.loss || undefined,
    seed: ctx.seed,
  });
  const evalRange = gridEvalRange(models.grid);
  const acc = new ClassAwareApAccumulator(undefined, models.manifest.anchors.map((a) => a.cls));
  const scene = new TrackedScene(new MultiObjectTracker({ motion: 'cv' }), new ConstantVelocityPredictor());
  const scored: ScoredFrame[] = [];
  const timings: Record<string, number[]> = {};
  const kinds = messageKinds(c);
  const wire: number[] = [];
  const protobuf: number[] = [];
  const perAgentWire: Record<string, number[]> = {};
  const dropped: Record<string, number> = {};
  let firstNs: bigint | undefined;
  let frames = 0;

  const end = Math.min(seq.frameCount, ctx.fromFrame + ctx.frames);
  for (let i = ctx.fromFrame; i < end; i++) {
    const frame = await seq.frame(i);
    const ego = frame.agents.find((a) => a.agentId === ctx.ego);
    if (!ego) continue;
    const r = await detector.detectFrame(frame, ctx.ego, seq);
    acc.addFrame(r.detections, cooperativeGroundTruth(frame, ctx.ego, { evalRange }));
    for (const [k, v] of Object.entries(r.timings)) (timings[k] ??= []).push(v as number);
    for (const s of r.links.skipped) dropped[s.reason] = (dropped[s.reason] ?? 0) + 1;
    for (const [agentId, b] of Object.entries(r.bytes ?? {})) {
      if (agentId === ctx.ego) continue; // the ego's own messages stay in the vehicle
      const framing = kinds.reduce((sum, kind) => sum + mqttPublishBytes(agentTopic(TOPIC_RUN_SEGMENT, agentId, kind), 0, SENSOR_MESSAGE_FRAMING), 0);
      protobuf.push(b);
      wire.push(b + framing);
      (perAgentWire[agentId] ??= []).push(b + framing);
    }

    // Tracking in the world frame (the ego moves), reported in the ego frame of this capture: as the fusion node.
    firstNs ??= frame.timestampNs;
    const stepped = await scene.step(Number(frame.timestampNs - firstNs) / 1e9, r.detections, ego.lidarToWorld);
    (timings.track ??= []).push(stepped.timings.track);
    (timings.predict ??= []).push(stepped.timings.predict);
    const init: FusionResultInit = {
      header: { schemaVersion: SCHEMA_VERSION, senderId: 'sweep', sequence: i },
      detections: r.detections.map((d) => ({ box: { ...d.box }, objectClass: objectClassToWire(d.cls ?? 'vehicle'), score: d.score })),
      tracks: stepped.objects.map(({ track, box, trajectories }) => ({
        trackId: track.id,
        box: { ...box },
        objectClass: objectClassToWire(track.cls),
        score: track.score,
        predictions: trajectories,
      })),
    };
    // Through the wire type, as a subscriber scores what the fusion node published.
    scored.push({ index: i, captureNs: frame.timestampNs, result: decodeMessage('result', encodeMessage('result', init)) });
    frames++;
    opts.onFrame?.();
  }

  // Tracking and prediction from the published-style results; AP from the detector's own accumulator.
  const scores = await scoreFusionResults(seq, ctx.ego, scored, evalRange, new ClassAwareApAccumulator(undefined, models.manifest.anchors.map((a) => a.cls)));
  const result = acc.result('global');
  const kindName = kinds.join('+');
  const bytesPerMessage: Record<string, BytesStats> = {};
  const protobufBytesPerMessage: Record<string, BytesStats> = {};
  if (wire.length) {
    bytesPerMessage[kindName] = bytesStats(wire);
    bytesPerMessage.all = bytesStats(wire);
    protobufBytesPerMessage[kindName] = bytesStats(protobuf);
    protobufBytesPerMessage.all = bytesStats(protobuf);
  }
  const meanWire = wire.length ? bytesPerMessage.all.mean : Number.NaN;
  const latencyMs: Record<string, Percentiles> = {};
  for (const [k, v] of Object.entries(timings)) latencyMs[k] = percentiles(v);
  return {
    key: configurationKey(c, ctx),
    label: configurationLabel(c),
    dataset: ctx.dataset,
    scenario: ctx.scenario,
    ego: ctx.ego,
    fusion: c.fusion,
    codec: c.codec ?? (c.fusion === 'late' ? 'objects' : c.fusion === 'none' ? '–' : 'raw (in process, not sent)'),
    lateMerge: c.lateMerge,
    impairments: { poseNoise: c.poseNoise, latencyMs: c.latencyMs, loss: c.loss, seed: ctx.seed },
    modelId: ctx.modelId,
    frames,
    framesFused: frames,
    ap: Object.fromEntries(Object.entries(result.vehicle).map(([k, v]) => [k, v.ap])),
    byClass: Object.fromEntries(
      Object.entries(result.byClass).map(([cls, r]) => [cls, Object.fromEntries(Object.entries(r!).map(([k, v]) => [k, { ap: v.ap, tp: v.tp, fp: v.fp, gt: v.gt }]))]),
    ),
    ...(scores.tracking ? { tracking: scores.tracking } : {}),
    ...(scores.prediction ? { prediction: scores.prediction } : {}),
    bytesPerMessage,
    protobufBytesPerMessage,
    mbpsPerAgent: Object.fromEntries(Object.entries(perAgentWire).map(([id, v]) => [id, megabitsPerSecond(percentiles(v).mean, SENSOR_RATE_HZ)])),
    publishedUnits: Number.isFinite(meanWire) ? { megabitsPerMessage: megabitsPerMessage(meanWire), log2Bytes: Math.log2(meanWire) } : null,
    latencyMs,
    dropped,
    wallSeconds: (performance.now() - t0) / 1000,
  };
}
