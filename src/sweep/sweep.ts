// The sweep: every configuration over the same frames, one after another, resumable. results.json is rewritten
// after each configuration, so an interrupted sweep loses at most the one it was running; a configuration whose
// key is already there is not run again. The tables, figures and report are written from all results at the end.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { CooperativeSequence } from '../datasets/index.ts';
import type { PerceptionModels } from '../perception/index.ts';
import { type EncoderCacheStats, memoizedSequence, withEncoderCache } from './encoder-cache.ts';
import { type SweepConfiguration, type SweepContext, configurationKey, configurationLabel } from './grid.ts';
import { renderSvg, svgToPng, sweepFigures } from './plots.ts';
import { reportHtml, reportMarkdown, resultsCsv } from './report.ts';
import { type SweepResult, runConfiguration } from './run-configuration.ts';

export class SweepOutputError extends Error {
  readonly userFacing = true;
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'SweepOutputError';
  }
}

export interface SweepProgress {
  /** Frames done and to do over the configurations this invocation runs. */
  framesDone: number;
  framesTotal: number;
  /** Seconds left, from the time per frame so far (undefined before the first frame). */
  etaSeconds: number | undefined;
}

export interface SweepOptions {
  sequence: CooperativeSequence;
  models: PerceptionModels;
  configurations: readonly SweepConfiguration[];
  context: SweepContext;
  outDir: string;
  /** Configurations named but not run (shown in the report). */
  skipped?: string[];
  /** One line per event: configuration started, finished, skipped as already done. */
  log?: (line: string) => void;
  onProgress?: (p: SweepProgress) => void;
}

export interface SweepSummary {
  results: SweepResult[];
  /** Configurations run by this invocation, and found finished. */
  ran: number;
  reused: number;
  encoder: EncoderCacheStats;
  files: string[];
}

/** results.json as a previous invocation left it (empty when absent). */
export async function readResults(path: string): Promise<SweepResult[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new SweepOutputError(path, `not JSON (${(err as Error).message}); move it away to start the sweep afresh`);
  }
  if (!Array.isArray(parsed) || parsed.some((r) => typeof r !== 'object' || r === null || typeof (r as SweepResult).key !== 'string')) {
    throw new SweepOutputError(path, 'not a sweep results array (objects with a key); move it away to start afresh');
  }
  return parsed as SweepResult[];
}

/** Written whole then renamed, so that an interrupted write never leaves half a file to resume from. */
async function writeAtomically(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export async function runSweep(o: SweepOptions): Promise<SweepSummary> {
  await mkdir(join(o.outDir, 'plots'), { recursive: true });
  const resultsPath = join(o.outDir, 'results.json');
  const results = await readResults(resultsPath);
  const done = new Set(results.map((r) => r.key));
  const log = o.log ?? (() => {});
  const todo = o.configurations.filter((c) => {
    if (!done.has(configurationKey(c, o.context))) return true;
    log(`skipped (finished): ${configurationLabel(c)}`);
    return false;
  });
  const reused = o.configurations.length - todo.length;
  const sequence = memoizedSequence(o.sequence);
  const cache = withEncoderCache(o.models);
  const framesPer = Math.max(0, Math.min(o.sequence.frameCount, o.context.fromFrame + o.context.frames) - o.context.fromFrame);
  const framesTotal = todo.length * framesPer;
  let framesDone = 0;
  const t0 = performance.now();
  const eta = () => (framesDone > 0 ? ((performance.now() - t0) / 1000 / framesDone) * (framesTotal - framesDone) : undefined);
  o.onProgress?.({ framesDone, framesTotal, etaSeconds: undefined });
  for (const [k, c] of todo.entries()) {
    log(`[${k + 1}/${todo.length}] ${configurationLabel(c)}`);
    const r = await runConfiguration(sequence, cache.models, c, o.context, {
      onFrame: () => o.onProgress?.({ framesDone: ++framesDone, framesTotal, etaSeconds: eta() }),
    });
    results.push(r);
    await writeAtomically(resultsPath, JSON.stringify(results, null, 2) + '\n');
    const left = eta();
    log(`[${k + 1}/${todo.length}] done in ${r.wallSeconds.toFixed(1)} s: AP@0.5 ${r.ap['0.5']?.toFixed(3)}${left !== undefined && k + 1 < todo.length ? `; about ${Math.ceil(left)} s left` : ''}`);
  }
  if (todo.length === 0 && results.length === 0) throw new SweepOutputError(o.outDir, 'no configuration to run');
  if (todo.length === 0) await writeAtomically(resultsPath, JSON.stringify(results, null, 2) + '\n');

  // Tables and figures over every result in the file (earlier invocations' included).
  const files = [resultsPath];
  const csvPath = join(o.outDir, 'results.csv');
  await writeAtomically(csvPath, resultsCsv(results));
  files.push(csvPath);
  const figures = [];
  for (const f of sweepFigures(results)) {
    const svg = await renderSvg(f.spec);
    const stem = join(o.outDir, 'plots', f.name);
    await writeAtomically(`${stem}.svg`, svg);
    await writeAtomically(`${stem}.png`, await svgToPng(svg));
    await writeAtomically(`${stem}.vl.json`, JSON.stringify(f.spec, null, 2) + '\n');
    files.push(`${stem}.svg`, `${stem}.png`, `${stem}.vl.json`);
    figures.push({ name: f.name, title: f.title, svg });
  }
  const first = results[0];
  const info = {
    dataset: first?.dataset ?? o.context.dataset,
    scenario: first?.scenario ?? o.context.scenario,
    ego: first?.ego ?? o.context.ego,
    frames: first?.frames ?? o.context.frames,
    modelId: first?.modelId ?? o.context.modelId,
    skipped: o.skipped ?? [],
  };
  const md = join(o.outDir, 'report.md');
  const html = join(o.outDir, 'report.html');
  await writeAtomically(md, reportMarkdown(results, figures, info));
  await writeAtomically(html, reportHtml(results, figures, info));
  files.push(md, html);
  return { results, ran: todo.length, reused, encoder: cache.stats, files };
}
