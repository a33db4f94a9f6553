// The sweep's figures as Vega-Lite specs, rendered offline to SVG by Vega (no browser, no network: every data
// value is inline) and to PNG by sharp. Vega-Lite because its specs are small, declarative JSON a reader can
// re-plot elsewhere (the spec is written beside each figure), and Vega renders SVG headless in Node.
import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';
import { paretoFront } from './pareto.ts';
import type { SweepResult } from './run-configuration.ts';
import { CHANNEL_27MBPS_BYTES_PER_MESSAGE } from './wire-bytes.ts';

export interface Figure {
  /** File stem: ap-vs-bytes, ap-vs-pose-noise, … */
  name: string;
  title: string;
  spec: TopLevelSpec;
}

const WIDTH = 520;
const HEIGHT = 300;
/** The IoU threshold the figures plot (OpenCOOD's and Where2comm's headline one). */
const PLOT_IOU = '0.5';

/** The fusion mode, codec and merge of a result: one line in the impairment plots. */
function seriesOf(r: SweepResult): string {
  const mode = r.lateMerge && r.lateMerge !== 'nms' ? `${r.fusion}:${r.lateMerge}` : r.fusion;
  return r.fusion === 'none' || r.fusion === 'late' ? mode : `${mode} ${r.codec}`;
}

function unimpaired(r: SweepResult): boolean {
  return !r.impairments.poseNoise && r.impairments.latencyMs === 0 && r.impairments.loss === 0;
}

/** The configurations with bytes on the wire and no impairment, and which of them lie on the Pareto front. */
export function tradeoffPoints(results: readonly SweepResult[]): { result: SweepResult; bytes: number; ap: number; pareto: boolean }[] {
  const pts = results
    .filter((r) => unimpaired(r) && r.bytesPerMessage.all && Number.isFinite(r.bytesPerMessage.all.mean))
    .map((r) => ({ result: r, bytes: r.bytesPerMessage.all.mean, ap: r.ap[PLOT_IOU] }));
  const front = new Set(paretoFront(pts));
  return pts.map((p, i) => ({ ...p, pareto: front.has(i) }));
}

function apVsBytes(results: readonly SweepResult[]): Figure | undefined {
  const pts = tradeoffPoints(results);
  if (pts.length === 0) return undefined;
  const values = pts.map((p) => ({
    config: p.result.label,
    fusion: p.result.fusion,
    bytes: p.bytes,
    megabits: (p.bytes * 8) / 1e6,
    log2Bytes: Math.log2(p.bytes),
    ap: p.ap,
    pareto: p.pareto,
  }));
  const front = values.filter((v) => v.pareto).sort((a, b) => a.bytes - b.bytes);
  const ego = results.find((r) => r.fusion === 'none' && unimpaired(r));
  const maxBytes = Math.max(CHANNEL_27MBPS_BYTES_PER_MESSAGE * 2, ...values.map((v) => v.bytes * 1.5));
  const minBytes = Math.min(...values.map((v) => v.bytes / 1.5));
  const x = {
    field: 'bytes', type: 'quantitative' as const,
    title: 'bytes per collaborator message on the wire (protobuf + MQTT; log scale; 2.7 Mb = 337.5 kB)',
    scale: { type: 'log' as const, domain: [minBytes, maxBytes] },
  };
  const y = { field: 'ap', type: 'quantitative' as const, title: `AP@${PLOT_IOU} (vehicle, BEV)`, scale: { domain: [0, 1] } };
  const layers: object[] = [
    {
      name: 'configs',
      data: { values },
      mark: { type: 'point', filled: true, size: 70 },
      encoding: { x, y, color: { field: 'fusion', type: 'nominal', title: 'fusion' }, tooltip: [{ field: 'config' }, { field: 'bytes' }, { field: 'megabits' }, { field: 'log2Bytes' }, { field: 'ap' }] },
    },
    {
      name: 'pareto_line',
      data: { values: front },
      mark: { type: 'line', color: '#222', strokeDash: [2, 2], interpolate: 'step-after' },
      encoding: { x, y },
    },
    {
      name: 'pareto',
      data: { values: front },
      mark: { type: 'point', shape: 'diamond', size: 260, color: '#222', strokeWidth: 1.5 },
      encoding: { x, y },
    },
    {
      name: 'pareto_labels',
      data: { values: front },
      mark: { type: 'text', align: 'left', dx: 8, dy: -8, fontSize: 9 },
      encoding: { x, y, text: { field: 'config' } },
    },
    {
      name: 'channel',
      data: { values: [{ bytes: CHANNEL_27MBPS_BYTES_PER_MESSAGE, label: '27 Mbps channel (2.7 Mb/message at 10 Hz)' }] },
      mark: { type: 'rule', color: '#c00', strokeDash: [6, 4] },
      encoding: { x },
    },
    {
      name: 'channel_label',
      data: { values: [{ bytes: CHANNEL_27MBPS_BYTES_PER_MESSAGE, ap: 0.03, label: '27 Mbps (2.7 Mb/msg)' }] },
      mark: { type: 'text', color: '#c00', align: 'right', dx: -4, fontSize: 10 },
      encoding: { x, y, text: { field: 'label' } },
    },
  ];
  if (ego) {
    layers.push({
      name: 'ego_only',
      data: { values: [{ ap: ego.ap[PLOT_IOU], label: `ego only ${ego.ap[PLOT_IOU].toFixed(3)}` }] },
      mark: { type: 'rule', color: '#888', strokeDash: [1, 3] },
      encoding: { y },
    });
  }
  return {
    name: 'ap-vs-bytes',
    title: `AP@${PLOT_IOU} against bytes per message (Pareto front: diamonds; red: the 27 Mbps channel; grey: ego only)`,
    spec: { width: WIDTH, height: HEIGHT, layer: layers } as TopLevelSpec,
  };
}

type Impairment = 'poseNoise' | 'latencyMs' | 'loss';

function impairmentValue(r: SweepResult, which: Impairment): number {
  return which === 'poseNoise' ? (r.impairments.poseNoise?.posM ?? 0) : r.impairments[which];
}

/** AP against one impairment, the others at zero; one line per fusion mode and codec that was run at ≥ 2 levels. */
function apVsImpairment(results: readonly SweepResult[], which: Impairment, name: string, xTitle: string): Figure | undefined {
  const others = (['poseNoise', 'latencyMs', 'loss'] as const).filter((o) => o !== which);
  const rows = results.filter((r) => r.fusion !== 'none' && others.every((o) => impairmentValue(r, o) === 0));
  const bySeries = new Map<string, SweepResult[]>();
  for (const r of rows) bySeries.set(seriesOf(r), [...(bySeries.get(seriesOf(r)) ?? []), r]);
  const values = [...bySeries].filter(([, rs]) => new Set(rs.map((r) => impairmentValue(r, which))).size >= 2)
    .flatMap(([series, rs]) => rs.map((r) => ({ series, level: impairmentValue(r, which), ap: r.ap[PLOT_IOU], config: r.label })));
  if (values.length === 0) return undefined;
  const ego = results.find((r) => r.fusion === 'none' && unimpaired(r));
  const x = { field: 'level', type: 'quantitative' as const, title: xTitle };
  const y = { field: 'ap', type: 'quantitative' as const, title: `AP@${PLOT_IOU}`, scale: { domain: [0, 1] } };
  const layers: object[] = [
    { name: 'series', data: { values }, mark: { type: 'line', point: true }, encoding: { x, y, color: { field: 'series', type: 'nominal', title: 'fusion, codec', legend: { labelLimit: 320 } }, tooltip: [{ field: 'config' }, { field: 'ap' }] } },
  ];
  if (ego) layers.push({ name: 'ego_only', data: { values: [{ ap: ego.ap[PLOT_IOU] }] }, mark: { type: 'rule', color: '#888', strokeDash: [1, 3] }, encoding: { y } });
  return { name, title: `AP@${PLOT_IOU} against ${xTitle} (grey: ego only)`, spec: { width: WIDTH, height: HEIGHT, layer: layers } as TopLevelSpec };
}

/** Mean ms per stage per frame, stacked, for the unimpaired configurations. */
function stageLatency(results: readonly SweepResult[]): Figure | undefined {
  const values = results.filter(unimpaired).flatMap((r) =>
    Object.entries(r.latencyMs).filter(([, p]) => p.count > 0 && Number.isFinite(p.mean)).map(([stage, p]) => ({ config: r.label, stage, ms: p.mean })),
  );
  if (values.length === 0) return undefined;
  return {
    name: 'latency-per-stage',
    title: 'Latency per stage, mean ms per frame (per-agent stages summed over the agents of a frame)',
    spec: {
      width: WIDTH,
      data: { values },
      mark: 'bar',
      encoding: {
        y: { field: 'config', type: 'nominal', title: null, sort: null, axis: { labelLimit: 320 } },
        x: { field: 'ms', type: 'quantitative', stack: 'zero', title: 'ms per frame (mean)' },
        color: { field: 'stage', type: 'nominal', title: 'stage', scale: { scheme: 'tableau20' } },
        tooltip: [{ field: 'config' }, { field: 'stage' }, { field: 'ms' }],
      },
    } as TopLevelSpec,
  };
}

/** Every figure the results support (an impairment not swept has none). */
export function sweepFigures(results: readonly SweepResult[]): Figure[] {
  return [
    apVsBytes(results),
    apVsImpairment(results, 'poseNoise', 'ap-vs-pose-noise', 'pose noise std (m, x and y; yaw in degrees alike)'),
    apVsImpairment(results, 'latencyMs', 'ap-vs-latency', 'message age (ms)'),
    apVsImpairment(results, 'loss', 'ap-vs-loss', 'message loss probability'),
    stageLatency(results),
  ].filter((f): f is Figure => f !== undefined);
}

/** SVG text of a Vega-Lite spec, rendered headless (no canvas: text widths are estimated). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Loaded when a figure is drawn: every command imports the sweep (the CLI registers them all), and Vega, Vega-Lite
  // and their d3 modules were in every agent and fusion node's heap: the ego agent's heap snapshot held 6.8 MB more
  // strings (module source) and 1.5 MB more code with them (46 against 35 MB in all), which each of V8's full
  // collections walked through, every few frames.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const compiled = compile({ background: 'white', ...spec } as TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG of an SVG, at `density` dpi (sharp's librsvg; 144 gives twice the SVG's pixel size). */
export function svgToPng(svg: string, density = 144): Promise<Buffer> {
  return sharp(Buffer.from(svg), { density }).png().toBuffer();
}
