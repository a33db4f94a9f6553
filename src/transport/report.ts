// The run report: what a user reads after `v2xfuse run` — accuracy next to bytes, bandwidth, latency and drops.
// Pure: it is computed from the nodes' summaries and the evaluator's AP, so it is testable without processes.
import type { AgentNodeSummary } from './agent-node.ts';
import type { FusionNodeSummary } from './fusion-node.ts';
import type { PredictionSummary, TrackingSummary } from './score.ts';

export interface Percentiles {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  p99: number;
}

/** Nearest-rank percentiles (the value at rank ceil(p·n)); NaN for an empty list. */
export function percentiles(values: readonly number[]): Percentiles {
  const n = values.length;
  if (n === 0) return { count: 0, mean: Number.NaN, p50: Number.NaN, p95: Number.NaN, p99: Number.NaN };
  const s = [...values].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))];
  return { count: n, mean: s.reduce((a, b) => a + b, 0) / n, p50: rank(0.5), p95: rank(0.95), p99: rank(0.99) };
}

export interface BytesStats {
  count: number;
  mean: number;
  p95: number;
}

export interface RunReport {
  dataset: string;
  scenario: string;
  ego: string;
  fusion: string;
  /** The fusion node's settings as it ran (combine, late merge, tracking motion model, predictor). */
  fusionSettings: FusionNodeSummary['settings'];
  codec: string;
  broker: string;
  protocolVersion: number;
  modelId: string;
  frames: number;
  framesFused: number;
  /** Vehicle AP (BEV, OpenCOOD's rules) by IoU threshold. */
  ap: Record<string, number>;
  byClass: Record<string, Record<string, { ap: number; tp: number; fp: number; gt: number }>>;
  /** The fusion node's tracks, by AB3DMOT's metrics (vehicles, BEV IoU ≥ 0.25); absent without tracking. */
  tracking?: TrackingSummary;
  /** The tracks' predicted trajectories against where the matched objects went (vehicles); absent without. */
  prediction?: PredictionSummary;
  /** Wire bytes of the collaborators' messages (what crosses a V2X link), by kind; `all` = every data message. */
  bytesPerMessage: Record<string, BytesStats>;
  /** The ego's messages to its own fusion node stay in the vehicle; counted apart. */
  egoBytesPerMessage: Record<string, BytesStats>;
  /** The fusion node's result messages as the evaluator received them, and the confidence map inside them. */
  resultBytesPerMessage?: { all: BytesStats; confidenceMap?: BytesStats };
  /** What each collaborator sends per frame (all its data messages) at the 10 Hz sensor rate, megabits per second. */
  mbpsPerAgent: Record<string, number>;
  /** Per stage, ms: agent stages (summed over agents' frames), transport, fusion stages, and end to end. */
  latencyMs: Record<string, Percentiles>;
  /** Refused or unused messages by reason. */
  dropped: Record<string, number>;
  droppedByAgent: Record<string, Record<string, number>>;
  /** Per agent: frames published, and frames the fusion node used. */
  agents: Record<string, { kind: string; framesPublished: number; framesUsed: number; reconnects: number }>;
  wallSeconds: number;
}

const SENSOR_RATE_HZ = 10;
const DATA_KINDS = ['features', 'objects', 'points'] as const;

function bytesStats(values: readonly number[]): BytesStats {
  const p = percentiles(values);
  return { count: p.count, mean: p.mean, p95: p.p95 };
}

export interface ReportInputs {
  dataset: string;
  scenario: string;
  ego: string;
  fusion: string;
  codec: string;
  broker: string;
  frames: number;
  agents: AgentNodeSummary[];
  fusionNode: FusionNodeSummary;
  ap: RunReport['ap'];
  byClass: RunReport['byClass'];
  /** Per fused frame: wall time from the ego agent taking its frame to the result reaching the evaluator, ms. */
  endToEndMs: number[];
  /** Per fused frame: wire bytes of the result message, and of its confidence map (frames that carry one). */
  resultBytes?: number[];
  confidenceMapBytes?: number[];
  /** Per agent, how many of its messages went into a fused frame. */
  framesUsed: Record<string, number>;
  /** Drops the evaluator saw (e.g. collaborators that missed their deadline), by reason. */
  extraDropped?: Record<string, number>;
  tracking?: TrackingSummary;
  prediction?: PredictionSummary;
  wallSeconds: number;
}

export function buildRunReport(i: ReportInputs): RunReport {
  const collaborators = i.agents.filter((a) => a.agentId !== i.ego);
  const ego = i.agents.find((a) => a.agentId === i.ego);
  const byKind = (agents: AgentNodeSummary[]) => {
    const out: Record<string, BytesStats> = {};
    const all: number[] = [];
    for (const kind of DATA_KINDS) {
      const v = agents.flatMap((a) => a.messageBytes[kind] ?? []);
      if (v.length === 0) continue;
      out[kind] = bytesStats(v);
      all.push(...v);
    }
    const status = agents.flatMap((a) => a.messageBytes.status ?? []);
    if (status.length) out.status = bytesStats(status);
    out.all = bytesStats(all);
    return out;
  };
  const mbpsPerAgent: Record<string, number> = {};
  for (const a of collaborators) {
    // Per frame, not per message: a hybrid agent sends two messages a frame.
    const v = a.perFrame.length ? a.perFrame.map((f) => f.bytes) : DATA_KINDS.flatMap((k) => a.messageBytes[k] ?? []);
    if (v.length) mbpsPerAgent[a.agentId] = (percentiles(v).mean * 8 * SENSOR_RATE_HZ) / 1e6;
  }
  const latencyMs: Record<string, Percentiles> = {};
  const agentStages = new Map<string, number[]>();
  for (const a of i.agents) for (const [stage, v] of Object.entries(a.stageMs)) agentStages.set(stage, [...(agentStages.get(stage) ?? []), ...v]);
  for (const [stage, v] of agentStages) latencyMs[`agent.${stage}`] = percentiles(v);
  latencyMs.transport = percentiles(i.fusionNode.transportMs);
  for (const [stage, v] of Object.entries(i.fusionNode.stageMs)) latencyMs[`fusion.${stage}`] = percentiles(v);
  latencyMs.endToEnd = percentiles(i.endToEndMs);

  const dropped: Record<string, number> = { ...i.fusionNode.dropped };
  for (const n of Object.values(i.fusionNode.unused)) if (n > 0) dropped.unused = (dropped.unused ?? 0) + n;
  for (const [reason, n] of Object.entries(i.extraDropped ?? {})) dropped[reason] = (dropped[reason] ?? 0) + n;

  return {
    dataset: i.dataset,
    scenario: i.scenario,
    ego: i.ego,
    fusion: i.fusion,
    fusionSettings: i.fusionNode.settings,
    codec: i.codec,
    broker: i.broker,
    protocolVersion: i.fusionNode.protocolVersion,
    modelId: i.fusionNode.modelId,
    frames: i.frames,
    framesFused: i.fusionNode.framesFused,
    ap: i.ap,
    byClass: i.byClass,
    ...(i.tracking ? { tracking: i.tracking } : {}),
    ...(i.prediction ? { prediction: i.prediction } : {}),
    bytesPerMessage: byKind(collaborators),
    egoBytesPerMessage: ego ? byKind([ego]) : {},
    ...(i.resultBytes?.length
      ? { resultBytesPerMessage: { all: bytesStats(i.resultBytes), ...(i.confidenceMapBytes?.length ? { confidenceMap: bytesStats(i.confidenceMapBytes) } : {}) } }
      : {}),
    mbpsPerAgent,
    latencyMs,
    dropped,
    droppedByAgent: i.fusionNode.droppedByAgent,
    agents: Object.fromEntries(
      i.agents.map((a) => [a.agentId, { kind: a.kind, framesPublished: a.frames, framesUsed: i.framesUsed[a.agentId] ?? 0, reconnects: a.reconnects }]),
    ),
    wallSeconds: i.wallSeconds,
  };
}

/** The readable summary printed on the terminal. */
export function formatRunReport(r: RunReport): string {
  const f = (x: number, d = 3) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
  const kB = (x: number) => (Number.isFinite(x) ? `${(x / 1000).toFixed(1)} kB` : 'n/a');
  const lines = [
    `${r.scenario}: ${r.framesFused}/${r.frames} ego frames fused, ego ${r.ego}, fusion ${r.fusion}, codec ${r.codec}, broker ${r.broker} (MQTT ${r.protocolVersion === 5 ? '5' : '3.1.1'}), ${f(r.wallSeconds, 1)} s`,
    `AP (BEV) vehicle   @0.3 ${f(r.ap['0.3'])}   @0.5 ${f(r.ap['0.5'])}   @0.7 ${f(r.ap['0.7'])}`,
  ];
  if (r.tracking) {
    const t = r.tracking;
    lines.push(`tracking (vehicle): MOTA ${f(t.mota)}  AMOTA ${f(t.amota)}  sAMOTA ${f(t.samota)}  IDF1 ${f(t.idf1)}  IDS ${t.ids}  FRAG ${t.frag}  MT ${f(t.mt, 2)}  ML ${f(t.ml, 2)}`);
  }
  if (r.prediction && r.prediction.count === 0) {
    lines.push(`prediction: ${r.prediction.skipped} track predictions published, none scored (none has a matched object with its full ${r.prediction.horizonS.toFixed(1)} s future inside the sequence)`);
  } else if (r.prediction) {
    const p = r.prediction;
    lines.push(`prediction (${p.horizonS.toFixed(1)} s, ${p.count} tracks): ADE ${f(p.ade, 2)} m  FDE ${f(p.fde, 2)} m  minADE_${p.k} ${f(p.minAde, 2)}  minFDE_${p.k} ${f(p.minFde, 2)}  MR ${f(p.missRate, 2)}`);
  }
  const b = r.bytesPerMessage.all;
  if (b && b.count > 0) {
    lines.push(`collaborator message: mean ${kB(b.mean)}, p95 ${kB(b.p95)} (${b.count} messages); Mbit/s at 10 Hz: ${Object.entries(r.mbpsPerAgent).map(([a, v]) => `${a} ${f(v, 2)}`).join(', ')}`);
  } else {
    lines.push('no collaborator messages (ego only)');
  }
  const res = r.resultBytesPerMessage;
  if (res) {
    const map = res.confidenceMap ? `, of which the confidence map ${kB(res.confidenceMap.mean)}` : ', no confidence map';
    lines.push(`fusion result: mean ${kB(res.all.mean)}, p95 ${kB(res.all.p95)}${map}`);
  }
  const show = ['agent.pfn', 'agent.backbone', 'agent.codec', 'transport', 'fusion.wait', 'fusion.admit', 'fusion.align', 'fusion.fuse', 'fusion.pfn', 'fusion.backbone', 'fusion.head', 'fusion.track', 'fusion.predict', 'fusion.result', 'endToEnd'];
  const lat = show.filter((k) => r.latencyMs[k]?.count).map((k) => `${k} ${f(r.latencyMs[k].p50, 1)}/${f(r.latencyMs[k].p95, 1)}`);
  lines.push(`latency ms p50/p95: ${lat.join(', ')}`);
  // A live run's end-to-end latency, as the stations of a frame after its capture.
  const since = [['ego features in', 'fusion.sinceCapture.ego'], ['collaborators in', 'fusion.sinceCapture.collaborators'], ['fusion started', 'fusion.sinceCapture.start'], ['result published', 'fusion.sinceCapture.published'], ['result received', 'endToEnd']] as const;
  if (r.latencyMs['fusion.sinceCapture.published']?.count) {
    lines.push(`ms after capture p50/p95: ${since.filter(([, k]) => r.latencyMs[k]?.count).map(([name, k]) => `${name} ${f(r.latencyMs[k].p50, 1)}/${f(r.latencyMs[k].p95, 1)}`).join(', ')}`);
  }
  const drops = Object.entries(r.dropped).filter(([, n]) => n > 0);
  lines.push(`dropped: ${drops.length ? drops.map(([k, n]) => `${k} ${n}`).join(', ') : 'none'}`);
  return lines.join('\n');
}
