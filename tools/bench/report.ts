// results.json → results.md: the targets beside the measured medians (met / not met), then one table per section.
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const fmt = (x: unknown, digits = 1): string => (typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '—');

interface Target {
  what: string;
  limit: number;
  unit: string;
  measured: (s: Json) => number | undefined;
  how: string;
}

export const TARGETS: Target[] = [
  { what: 'LiDAR agent frame (~30k points) pillarised and encoded', limit: 60, unit: 'ms', how: 'median', measured: (s) => s.stages?.totals?.agentEncode30k?.p50 },
  { what: 'fusion of 4 agents (align + attention) plus head, decode, NMS', limit: 80, unit: 'ms', how: 'median', measured: (s) => s.stages?.totals?.fusion4PlusHead?.p50 },
  { what: 'codec encode + decode per message (int8+top10%+deflate)', limit: 5, unit: 'ms', how: 'median', measured: (s) => s.stages?.totals?.codecEncodePlusDecode?.p50 },
  { what: 'end to end at 10 Hz with 4 agents', limit: 150, unit: 'ms', how: 'p99', measured: (s) => s.e2e?.paced10Hz?.latencyMs?.endToEnd?.p99 },
  {
    what: 'end to end at 10 Hz with 4 agents, collaborators on computers of their own (ego agent + fusion node here)', limit: 150, unit: 'ms', how: 'p99',
    measured: (s) => s.e2e?.paced10HzOwnComputers?.latencyMs?.endToEnd?.p99,
  },
  {
    what: 'the same, the ego agent keeping only its newest frame (run --latest-only; skipped frames scored as misses)', limit: 150, unit: 'ms', how: 'p99',
    measured: (s) => s.e2e?.paced10HzOwnComputersLatestOnly?.latencyMs?.endToEnd?.p99,
  },
  {
    what: 'memory growth (agent, fusion)', limit: 1, unit: 'MB / 1000 frames', how: 'RSS slope',
    measured: (s) => (s.memory?.agent ? Math.max(s.memory.agent.rssGrowthMBPer1000, s.memory.fusion.rssGrowthMBPer1000) : undefined),
  },
];

function table(head: string[], rows: (string | number)[][]): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n') + '\n';
}

export function renderMarkdown(results: Json): string {
  const s: Json = results.sections ?? {};
  const m = results.machine ?? {};
  let md = `# v2xfuse benchmark\n\n\`${results.command}\` on ${m.cpu}, ${m.cores} cores, Node ${m.node}, ONNX Runtime ${m.onnxruntime} (${m.device}), load average ${m.loadAverage1m} at the start; ${results.date}${results.quick ? '; **quick run: too few frames to quote**' : ''}.\n\n`;

  md += '## Targets (2-core CPU)\n\n';
  md += table(['target', 'limit', 'measured', ''], TARGETS.map((t) => {
    const raw = t.measured(s);
    const v = typeof raw === 'number' && Number.isFinite(raw) ? raw : undefined;
    let verdict = v === undefined ? 'not measured' : v <= t.limit ? 'met' : `**not met** (${fmt(v / t.limit, 1)}×)`;
    // A paced run that fused nothing has no latency: say why instead.
    const paced = t.what.includes('newest') ? s.e2e?.paced10HzOwnComputersLatestOnly : t.what.includes('own') ? s.e2e?.paced10HzOwnComputers : s.e2e?.paced10Hz;
    if (v === undefined && (t.what.startsWith('end to end') || t.what.includes('newest')) && paced) {
      verdict = `**not met**: ${paced.framesFused} of ${paced.framesPublished} frames fused (dropped: ${Object.entries(paced.dropped ?? {}).map(([k, n]) => `${k} ${n}`).join(', ')})`;
    }
    // A latency met by skipping frames says how many.
    if (v !== undefined && t.what.includes('newest') && paced?.framesSkipped) verdict += `, ${paced.framesSkipped} of ${paced.framesPublished + paced.framesSkipped} frames skipped`;
    return [t.what, `≤ ${t.limit} ${t.unit} (${t.how})`, v === undefined ? '—' : `${fmt(v)} ${t.unit}`, verdict];
  }));
  md += '\n';

  if (s.stages && !s.stages.skipped) {
    const st = s.stages;
    md += `## Stages (p50 / p99 ms over ${st.iterations} frames; scans of ${st.pointsPerScan?.min}–${st.pointsPerScan?.max} points, messages ${st.messageBytesMedian} bytes)\n\n`;
    const rows: (string | number)[][] = [];
    const add = (group: string, stats: Json | undefined) => {
      for (const [k, v] of Object.entries(stats ?? {})) rows.push([group, k, `${fmt(v.p50, 2)} / ${fmt(v.p99, 2)}`]);
    };
    add('agent', st.agent);
    add('codec', st.codecStages);
    add(`camera (${st.camerasPerAgent ?? '?'} cameras)`, st.camera);
    for (const [k, v] of Object.entries(st.fusion ?? {})) add(`fusion ${k}`, v as Json);
    add('total', st.totals);
    add('ORT threads, 30k encode', st.encode30kByOrtThreads);
    md += table(['where', 'stage', 'p50 / p99 ms'], rows) + '\n';
  }
  if (s.e2e && !s.e2e.skipped) {
    md += `## End to end (\`v2xfuse run\`, ${s.e2e.frames} frames, ${s.e2e.agents} agents, ${s.e2e.codec})\n\n`;
    const keys = ['endToEnd', 'fusion.sinceCapture.ego', 'fusion.sinceCapture.collaborators', 'fusion.sinceCapture.start', 'transport', 'fusion.wait', 'agent.backbone', 'agent.pfn', 'fusion.fuse', 'fusion.head'];
    md += table(['replay', 'fused / frames', ...keys.map((k) => `${k} p50 / p99 ms`)], ['paced10Hz', 'lockstep', 'paced10HzOwnComputers', 'paced10HzOwnComputersLatestOnly'].filter((k) => s.e2e[k]).map((k) => {
      const r = s.e2e[k];
      return [k, `${r.framesFused} / ${r.framesPublished + (r.framesSkipped ?? 0)}${r.framesSkipped ? ` (${r.framesSkipped} skipped)` : ''}`, ...keys.map((key) => (r.latencyMs[key] ? `${fmt(r.latencyMs[key].p50)} / ${fmt(r.latencyMs[key].p99)}` : '—'))];
    })) + '\n';
  }
  if (s.throughput && !s.throughput.skipped) {
    const t = s.throughput;
    md += `## Throughput (one core)\n\nagent: **${fmt(t.agentFramesPerSecond, 2)} frames/s**\n\n`;
    md += table(['agents fused', ...Object.keys(t.fusionByAgents)], [
      ['fusion frames/s', ...Object.values(t.fusionByAgents).map((v: any) => fmt(v.framesPerSecond, 2))], // eslint-disable-line @typescript-eslint/no-explicit-any
      ['ms / frame', ...Object.values(t.fusionByAgents).map((v: any) => fmt(v.msPerFrame))], // eslint-disable-line @typescript-eslint/no-explicit-any
    ]) + '\n';
  }
  if (s.graphs && !s.graphs.skipped) {
    const g = s.graphs;
    md += '## Traced vs lean ONNX graphs (same weights, one ORT thread, interleaved)\n\n';
    md += table(['model', 'traced p50 ms', 'lean p50 ms', 'speed-up', 'max abs difference'], ['lidar_pfn', 'fusion_attention'].map((r) => [
      r, fmt(g.ms?.[`${r} traced`]?.p50, 2), fmt(g.ms?.[`${r} lean`]?.p50, 2), `${fmt(g.speedup?.[r], 2)}×`, (g.maxAbsDiff?.[r] ?? NaN).toExponential(1),
    ])) + '\n';
  }
  if (s.workers && !s.workers.skipped) {
    const w = s.workers;
    md += `## Per-agent work: ORT threads or worker threads (${w.agentsPerFrame} agents per frame, ${w.cores} cores; wall ms to encode them all)\n\n`;
    md += table(['how', 'p50 / p99 ms'], Object.entries(w.encodeAllAgents ?? {}).map(([k, v]: [string, any]) => [k, `${fmt(v.p50)} / ${fmt(v.p99)}`])) + '\n'; // eslint-disable-line @typescript-eslint/no-explicit-any
  }
  if (s.mqtt && !s.mqtt.skipped) {
    md += '## MQTT (QoS 0, 16 in flight; latency one at a time)\n\n';
    const rows: (string | number)[][] = [];
    for (const broker of ['embedded', 'mosquitto']) {
      const b = s.mqtt[broker];
      if (!b) continue;
      if (b.skipped) {
        rows.push([broker, b.skipped, '', '', '']);
        continue;
      }
      for (const [size, v] of Object.entries(b) as [string, Json][]) rows.push([broker, `${Number(size) / 1000} kB`, fmt(v.messagesPerSecond, 0), fmt(v.megabytesPerSecond), `${fmt(v.latencyMs.p50, 2)} / ${fmt(v.latencyMs.p99, 2)}`]);
    }
    md += table(['broker', 'payload', 'messages/s', 'MB/s', 'latency p50 / p99 ms'], rows) + '\n';
  }
  if (s.codecs && !s.codecs.skipped) {
    md += `## Codecs (MB/s of the float32 input, medians over ${s.codecs.maps} maps × ${s.codecs.repeats})\n\n`;
    const rows: (string | number)[][] = [];
    for (const [k, v] of Object.entries({ ...s.codecs.features, ...s.codecs.points }) as [string, Json][]) {
      rows.push(v.skipped ? [k, v.skipped, '', '', '', ''] : [k, v.bytes.toLocaleString('en-US'), fmt(v.encodeMs, 2), fmt(v.decodeMs, 2), fmt(v.encodeMBps, 0), fmt(v.decodeMBps, 0)]);
    }
    md += table(['codec', 'bytes', 'encode ms', 'decode ms', 'encode MB/s', 'decode MB/s'], rows) + '\n';
  }
  if (s.torch) {
    md += '## ONNX Runtime vs PyTorch (one thread, same inputs)\n\n';
    if (s.torch.skipped) md += `skipped: ${s.torch.skipped}\n\n`;
    else {
      md += table(['model', 'ONNX Runtime ms', `PyTorch ${s.torch.torch} ms`, 'PyTorch / ORT'], Object.entries(s.torch.models as Json).map(([k, v]) => [k, fmt(v.onnxRuntimeMs), fmt(v.pytorchMs), `${fmt(v.speedup, 2)}×`])) + '\n';
    }
  }
  if (s.memory && !s.memory.skipped) {
    md += `## Memory (${s.memory.frames} frames per process)\n\n`;
    md += table(['process', 'peak RSS MB', 'RSS growth MB / 1000 frames', 'heap growth MB / 1000 frames', 'frames/s'], ['agent', 'fusion'].map((k) => {
      const v = s.memory[k];
      return [k, fmt(v.peakRssMB), fmt(v.rssGrowthMBPer1000, 2), fmt(v.heapGrowthMBPer1000, 2), fmt(v.framesPerSecond, 2)];
    })) + '\n';
  }
  const skipped = Object.entries(s).filter(([, v]) => (v as Json).skipped);
  if (skipped.length) md += `Skipped: ${skipped.map(([k, v]) => `${k} (${(v as Json).skipped})`).join('; ')}\n\n`;
  const notes = Object.entries(s).flatMap(([k, v]) => ((v as Json).notes ?? []).map((n: string) => `- ${k}: ${n}`));
  if (notes.length) md += `Notes:\n\n${notes.join('\n')}\n`;
  return md;
}
