// The sweep's tables and report: results.csv (one row per configuration), report.md and report.html (the
// figures inline, no external resource), beside results.json.
import { paretoFront } from './pareto.ts';
import type { SweepResult } from './run-configuration.ts';

/** CSV columns before the per-stage latencies. */
const BASE_COLUMNS = [
  'fusion', 'codec', 'late_merge', 'pose_noise_m', 'pose_noise_yaw_deg', 'latency_ms', 'loss', 'frames',
  'bytes_per_message_mean', 'bytes_per_message_p95', 'protobuf_bytes_per_message_mean', 'mb_per_message', 'log2_bytes',
  'mbps_per_agent_10hz', 'ap_0.3', 'ap_0.5', 'ap_0.7', 'mota', 'amota', 'idf1', 'id_switches', 'ade_m', 'fde_m', 'miss_rate',
  'pareto_front',
] as const;

function mean(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN;
}

/** Indices (into `results`) on the AP@0.5-against-bytes front, among unimpaired results with bytes. */
function frontIndices(results: readonly SweepResult[]): Set<number> {
  const idx: number[] = [];
  const pts: { bytes: number; ap: number }[] = [];
  results.forEach((r, i) => {
    const unimpaired = !r.impairments.poseNoise && r.impairments.latencyMs === 0 && r.impairments.loss === 0;
    if (unimpaired && r.bytesPerMessage.all) {
      idx.push(i);
      pts.push({ bytes: r.bytesPerMessage.all.mean, ap: r.ap['0.5'] });
    }
  });
  return new Set(paretoFront(pts).map((k) => idx[k]));
}

/** Stages in order of first appearance over the results. */
function stagesOf(results: readonly SweepResult[]): string[] {
  const s = new Set<string>();
  for (const r of results) for (const k of Object.keys(r.latencyMs)) s.add(k);
  return [...s];
}

function csvField(v: string | number | null | undefined): string {
  if (v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v))) return '';
  const t = typeof v === 'number' ? String(Number(v.toPrecision(6))) : v;
  return /[",\n]/.test(t) ? `"${t.replace(/"/g, '""')}"` : t;
}

/** One row per configuration; empty cells where a value does not apply (no bytes for ego only, …). */
export function resultsCsv(results: readonly SweepResult[]): string {
  const stages = stagesOf(results);
  const front = frontIndices(results);
  const header = [...BASE_COLUMNS, ...stages.map((s) => `latency_${s}_ms_mean`), ...stages.map((s) => `latency_${s}_ms_p95`)];
  const rows = results.map((r, i) => {
    const b = r.bytesPerMessage.all;
    const row: (string | number | null | undefined)[] = [
      r.fusion, r.codec, r.lateMerge, r.impairments.poseNoise?.posM ?? 0, r.impairments.poseNoise?.yawDeg ?? 0, r.impairments.latencyMs, r.impairments.loss, r.frames,
      b?.mean, b?.p95, r.protobufBytesPerMessage.all?.mean, r.publishedUnits?.megabitsPerMessage, r.publishedUnits?.log2Bytes,
      mean(Object.values(r.mbpsPerAgent)), r.ap['0.3'], r.ap['0.5'], r.ap['0.7'],
      r.tracking?.mota, r.tracking?.amota, r.tracking?.idf1, r.tracking?.ids, r.prediction?.ade, r.prediction?.fde, r.prediction?.missRate,
      b ? (front.has(i) ? 'yes' : 'no') : '',
      ...stages.map((s) => r.latencyMs[s]?.mean), ...stages.map((s) => r.latencyMs[s]?.p95),
    ];
    return row.map(csvField).join(',');
  });
  return [header.join(','), ...rows].join('\n') + '\n';
}

export interface ReportFigure {
  name: string;
  title: string;
  svg: string;
}

export interface ReportInfo {
  dataset: string;
  scenario: string;
  ego: string;
  frames: number;
  modelId: string;
  /** Configurations named but not run, each with why. */
  skipped: string[];
}

const fmt = (x: number | undefined, d = 3) => (x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(d));
const kB = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '–' : `${(x / 1000).toFixed(1)} kB`);

/** The summary table's rows: the columns a reader compares first. */
function tableRows(results: readonly SweepResult[]): string[][] {
  const front = frontIndices(results);
  return results.map((r, i) => [
    r.label + (front.has(i) ? ' ◆' : ''),
    kB(r.bytesPerMessage.all?.mean),
    kB(r.bytesPerMessage.all?.p95),
    fmt(r.publishedUnits?.megabitsPerMessage, 4),
    fmt(r.publishedUnits?.log2Bytes, 1),
    fmt(mean(Object.values(r.mbpsPerAgent)), 2),
    fmt(r.ap['0.3']), fmt(r.ap['0.5']), fmt(r.ap['0.7']),
    fmt(r.tracking?.mota), fmt(r.tracking?.idf1), fmt(r.prediction?.ade, 2),
    fmt(Object.values(r.latencyMs).reduce((a, p) => a + (Number.isFinite(p.mean) ? p.mean : 0), 0), 1),
  ]);
}

const TABLE_HEADER = [
  'configuration', 'bytes/msg (mean)', 'bytes/msg (p95)', 'Mb/msg', 'log2 bytes', 'Mbit/s per agent @10 Hz',
  'AP@0.3', 'AP@0.5', 'AP@0.7', 'MOTA', 'IDF1', 'ADE (m)', 'ms/frame (sum of stages)',
];

const NOTES = [
  'Bytes are collaborators\' messages on the wire: the protobuf message plus its MQTT 5 PUBLISH framing (QoS 0, message expiry, the agent nodes\' topic); hybrid counts its two messages per frame together. TCP/IP headers are not counted.',
  'Mb/msg and log2 bytes are the units of OpenCOOD\'s and Where2comm\'s tables; the 27 Mbps channel is 2.7 Mb per message at 10 Hz (337.5 kB).',
  '◆ marks the Pareto front of AP@0.5 against bytes (no other configuration has fewer bytes and more AP).',
  'Tracking: AB3DMOT-style metrics of a constant-velocity tracker on the detections (vehicles); prediction: constant-velocity trajectories against where the matched objects went.',
  'Encoder stages are timed once per agent-frame and reused across configurations (the same clouds give the same maps), so their latency is that of one encode.',
];

export function reportMarkdown(results: readonly SweepResult[], figures: readonly ReportFigure[], info: ReportInfo): string {
  const lines = [
    `# Sweep: ${info.scenario}`,
    '',
    `${info.dataset}, ego ${info.ego}, ${info.frames} frames, model ${info.modelId}, ${results.length} configurations.`,
    '',
  ];
  for (const f of figures) lines.push(`## ${f.title}`, '', `![${f.title}](plots/${f.name}.svg)`, '');
  lines.push('## Results', '', `| ${TABLE_HEADER.join(' | ')} |`, `| ${TABLE_HEADER.map(() => '---').join(' | ')} |`);
  for (const row of tableRows(results)) lines.push(`| ${row.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`);
  lines.push('', ...NOTES.map((n) => `- ${n}`));
  if (info.skipped.length) lines.push('', 'Not run:', ...info.skipped.map((s) => `- ${s}`));
  lines.push('', 'Every number: results.json (the fields of `v2xfuse run --report`) and results.csv.', '');
  return lines.join('\n');
}

function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** One self-contained page: the SVGs inline, no script, no external stylesheet or font. */
export function reportHtml(results: readonly SweepResult[], figures: readonly ReportFigure[], info: ReportInfo): string {
  const rows = tableRows(results).map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${escapeHtml(c)}</th>` : `<td>${escapeHtml(c)}</td>`)).join('')}</tr>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sweep: ${escapeHtml(info.scenario)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; font-size: 12px; } th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th[scope=row] { text-align: left; font-weight: normal; } figure { margin: 1.5em 0; } figcaption { font-weight: 600; margin-bottom: .3em; }
</style></head><body>
<h1>Sweep: ${escapeHtml(info.scenario)}</h1>
<p>${escapeHtml(info.dataset)}, ego ${escapeHtml(info.ego)}, ${info.frames} frames, model ${escapeHtml(info.modelId)}, ${results.length} configurations.</p>
${figures.map((f) => `<figure id="${f.name}"><figcaption>${escapeHtml(f.title)}</figcaption>\n${f.svg}\n</figure>`).join('\n')}
<h2>Results</h2>
<table><thead><tr>${TABLE_HEADER.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>
<ul>${NOTES.map((n) => `<li>${escapeHtml(n)}</li>`).join('')}</ul>
${info.skipped.length ? `<p>Not run:</p><ul>${info.skipped.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>` : ''}
<p>Every number: results.json (the fields of <code>v2xfuse run --report</code>) and results.csv.</p>
</body></html>
`;
}
