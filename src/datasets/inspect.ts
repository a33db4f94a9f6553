// What `v2xfuse inspect` reports: the layout, its scenarios and agents, and per-frame point and box counts.
import { DEFAULT_OCCLUSION_THRESHOLDS, type OcclusionReport, occlusionStatistics } from './occlusion.ts';
import type { AgentKind, CooperativeSequence, Dataset, DatasetFormat } from './types.ts';

export interface FrameStats {
  frameId: string;
  timestampNs: string;
  /** Per agent: valid LiDAR points (finite x, y, z) and ground-truth boxes the agent's record lists. */
  agents: Array<{ id: string; points: number; boxes: number }>;
  /** Objects in the frame's cooperative ground truth (union by id, or the dataset's own list). */
  cooperativeBoxes: number;
}

export interface Summary {
  mean: number;
  min: number;
  max: number;
}

export interface ScenarioReport {
  name: string;
  frames: number;
  agents: Array<{ id: string; kind: AgentKind; frames: number }>;
  pointsPerScan: Summary;
  boxesPerFrame: Summary;
  perFrame: FrameStats[];
  occlusion?: OcclusionReport;
}

export interface InspectReport {
  format: DatasetFormat;
  root: string;
  warnings: string[];
  scenarios: ScenarioReport[];
}

export interface InspectOptions {
  /** Also count, per agent, nearby vehicles it cannot see that another agent sees (reads every point cloud twice). */
  stats?: boolean;
  /** Skip reading point clouds (metadata-only samples, or a quick look). */
  noPoints?: boolean;
  onProgress?: (done: number, total: number, scenario: string) => void;
}

function summarize(values: number[]): Summary {
  if (values.length === 0) return { mean: 0, min: 0, max: 0 };
  let sum = 0, min = Infinity, max = -Infinity;
  for (const v of values) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { mean: sum / values.length, min, max };
}

async function inspectScenario(seq: CooperativeSequence, opts: InspectOptions): Promise<ScenarioReport> {
  const perFrame: FrameStats[] = [];
  const points: number[] = [];
  const boxes: number[] = [];
  const total = seq.frameCount * (opts.stats ? 2 : 1);
  let done = 0;
  for await (const frame of seq.frames()) {
    const agents: FrameStats['agents'] = [];
    for (const agent of frame.agents) {
      const n = opts.noPoints ? 0 : (await agent.loadPoints()).length / 4;
      if (!opts.noPoints) points.push(n);
      agents.push({ id: agent.agentId, points: n, boxes: agent.boxes.length });
    }
    const ids = new Set<string>();
    for (const a of frame.agents) for (const b of a.boxes) ids.add(b.id);
    const cooperative = frame.cooperativeBoxes ? frame.cooperativeBoxes.length : ids.size;
    boxes.push(cooperative);
    perFrame.push({ frameId: frame.frameId, timestampNs: frame.timestampNs.toString(), agents, cooperativeBoxes: cooperative });
    opts.onProgress?.(++done, total, seq.name);
  }
  const report: ScenarioReport = {
    name: seq.name,
    frames: seq.frameCount,
    agents: seq.agents.map((a) => ({ id: a.id, kind: a.kind, frames: a.frames })),
    pointsPerScan: summarize(points),
    boxesPerFrame: summarize(boxes),
    perFrame,
  };
  if (opts.stats) {
    report.occlusion = await occlusionStatistics(seq.frames(), DEFAULT_OCCLUSION_THRESHOLDS, () => opts.onProgress?.(++done, total, seq.name));
  }
  return report;
}

export async function inspectDataset(ds: Dataset, opts: InspectOptions = {}): Promise<InspectReport> {
  const scenarios: ScenarioReport[] = [];
  for (const seq of ds.scenarios) scenarios.push(await inspectScenario(seq, opts));
  return { format: ds.format, root: ds.root, warnings: ds.warnings, scenarios };
}
