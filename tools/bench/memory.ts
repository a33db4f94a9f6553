// Memory over a long replay: an agent process and a fusion process (memory-worker.ts, one after the other, one
// thread each) loop the benchmark sequence for --frames frames and sample their RSS after every frame. Reported:
// peak RSS, and growth as the least-squares slope of RSS over the frames after a warm-up (the first 20 %), in MB
// per 1000 frames. "No growth" is read as under 1 MB per 1000 frames (10 MB over 10,000 frames).
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BenchOptions, type SectionResult, benchSequence, round } from './common.ts';

export const GROWTH_LIMIT_MB_PER_1000 = 1;
const WORKER = fileURLToPath(new URL('./memory-worker.ts', import.meta.url));

/** Least-squares slope of y over its index, per 1000 steps. */
export function slopePer1000(y: readonly number[]): number {
  const n = y.length;
  if (n < 2) return 0;
  const mx = (n - 1) / 2;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (i - mx) * (y[i] - my);
    sxx += (i - mx) ** 2;
  }
  return (sxy / sxx) * 1000;
}

function runWorker(role: string, frames: number, seqDir: string, o: BenchOptions): Promise<string> {
  const out = path.join(o.outDir, `memory-${role}.json`);
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', WORKER, role, String(frames), seqDir, o.models, out, o.precision], { stdio: ['ignore', 'inherit', 'pipe'] });
    let err = '';
    proc.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
    proc.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`memory worker ${role} exited with ${code}: ${err.trim().split('\n').pop()}`))));
  });
}

export async function runMemory(o: BenchOptions): Promise<SectionResult> {
  const { root } = await benchSequence(o);
  const result: SectionResult = { frames: o.frames, growthLimitMBPer1000: GROWTH_LIMIT_MB_PER_1000 };
  for (const role of ['agent', 'fusion']) {
    o.log(`memory: ${role} process, ${o.frames} frames`);
    const file = await runWorker(role, o.frames, root, o);
    const r = JSON.parse(await readFile(file, 'utf8')) as { seconds: number; rssMB: number[]; heapMB: number[] };
    const after = Math.floor(r.rssMB.length * 0.2);
    result[role] = {
      peakRssMB: round(Math.max(...r.rssMB), 1),
      rssAfterWarmupMB: round(r.rssMB[after], 1),
      finalRssMB: round(r.rssMB[r.rssMB.length - 1], 1),
      rssGrowthMBPer1000: round(slopePer1000(r.rssMB.slice(after))),
      heapGrowthMBPer1000: round(slopePer1000(r.heapMB.slice(after))),
      framesPerSecond: round(r.rssMB.length / r.seconds),
    };
  }
  result.notes = [
    'the agent and fusion work of pipeline.ts (what the nodes do per frame, without MQTT) in their own processes, ONNX Runtime one thread',
    'growth: least-squares slope of RSS after the first 20 % of frames',
  ];
  return result;
}
