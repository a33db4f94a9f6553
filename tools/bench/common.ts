// What every benchmark section shares: options, the fixed simulated sequence (generated once into the cache folder,
// fixed seed), timing statistics, and the shape of a section's result.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { type CooperativeSequence, openDataset } from '../../src/datasets/index.ts';

export interface BenchOptions {
  quick: boolean;
  /** Cache and output folder (sequences, results.json, results.md). */
  outDir: string;
  models: string;
  device: 'cpu' | 'cuda' | 'auto';
  /** Model precision of every section that loads the perception models (PerceptionModelsOptions.precision). */
  precision: 'float32' | 'int8';
  /** Memory section: frames per process. */
  frames: number;
  log: (line: string) => void;
}

/** p50/p99 and friends of a list of milliseconds (nearest rank). */
export interface Stat {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
}

export function stat(values: readonly number[]): Stat {
  const n = values.length;
  if (n === 0) return { n: 0, p50: Number.NaN, p99: Number.NaN, mean: Number.NaN, min: Number.NaN };
  const s = [...values].sort((a, b) => a - b);
  const rank = (p: number) => s[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))];
  return { n, p50: rank(0.5), p99: rank(0.99), mean: s.reduce((a, b) => a + b, 0) / n, min: s[0] };
}

/** Collects milliseconds by name. */
export class Samples {
  readonly byName = new Map<string, number[]>();
  add(name: string, ms: number): void {
    let list = this.byName.get(name);
    if (!list) this.byName.set(name, (list = []));
    list.push(ms);
  }
  async time<T>(name: string, fn: () => T | Promise<T>): Promise<T> {
    const t = performance.now();
    const r = await fn();
    this.add(name, performance.now() - t);
    return r;
  }
  stats(): Record<string, Stat> {
    return Object.fromEntries([...this.byName].map(([k, v]) => [k, stat(v)]));
  }
}

/** A section's outcome: measured numbers (free-form, JSON-safe), or why it was skipped. */
export interface SectionResult {
  skipped?: string;
  notes?: string[];
  [key: string]: unknown;
}

/** The fixed sequence every section reads: the simulator's intersection (3 vehicles + 1 roadside unit), seed 7. */
export const BENCH_SCENARIO = 'intersection';
export const BENCH_SEED = 7;

export function sequenceFrames(quick: boolean): number {
  return quick ? 6 : 20;
}

/** Generates (once; cached by scenario, seed and length) and opens the benchmark sequence (`frames` long, default
 * sequenceFrames). */
export async function benchSequence(o: BenchOptions, frames = sequenceFrames(o.quick)): Promise<{ root: string; seq: CooperativeSequence }> {
  const root = path.join(o.outDir, 'sequences', `${BENCH_SCENARIO}-s${BENCH_SEED}-f${frames}`);
  const done = path.join(root, '.complete');
  if (!existsSync(done)) {
    o.log(`simulating ${BENCH_SCENARIO} (seed ${BENCH_SEED}, ${frames} frames) into ${root}`);
    await rm(root, { recursive: true, force: true });
    await mkdir(root, { recursive: true });
    const { loadScenario, simulateSequence } = await import('../../src/sim/index.ts');
    await simulateSequence({ scenario: await loadScenario(BENCH_SCENARIO), frames, seed: BENCH_SEED, outDir: root, cameras: false });
    await writeFile(done, '');
  }
  const ds = await openDataset(root);
  return { root, seq: ds.scenarios[0] };
}

/** Every nth point of an xyzi cloud, so that about `target` points remain (the "about 30k points" frame). */
export function thinCloud(points: Float32Array, target: number): Float32Array {
  const n = points.length / 4;
  const step = Math.max(1, Math.round(n / target));
  const out = new Float32Array(Math.ceil(n / step) * 4);
  let k = 0;
  for (let i = 0; i < n; i += step, k++) out.set(points.subarray(4 * i, 4 * i + 4), 4 * k);
  return out.subarray(0, 4 * k);
}

export function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage1m: Math.round(os.loadavg()[0] * 100) / 100,
    platform: `${process.platform} ${process.arch} ${os.release()}`,
    node: process.version,
  };
}

export const round = (x: number, digits = 2): number => (Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x);

/** Rounds every number of a Stat for the JSON file. */
export function roundStat(s: Stat): Stat {
  return { n: s.n, p50: round(s.p50), p99: round(s.p99), mean: round(s.mean), min: round(s.min) };
}

export function roundStats(r: Record<string, Stat>): Record<string, Stat> {
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, roundStat(v)]));
}
