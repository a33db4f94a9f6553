// `npm run bench`: the benchmark tables of v2xfuse on fixed simulated sequences. Writes OUT/results.json and
// OUT/results.md (targets beside the measured medians) and prints the Markdown.
//   npm run bench [-- --quick] [--only stages,graphs,e2e,throughput,workers,mqtt,codecs,torch,memory] [--frames N] [--out DIR]
//                 [--models models/manifest.json] [--device cpu|cuda|auto] [--precision float32|int8]
// --quick: few frames per section, for a smoke run (about 2 minutes); numbers from it are not worth quoting.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { type BenchOptions, type SectionResult, machine } from './common.ts';
import { renderMarkdown } from './report.ts';

export const SECTIONS = ['stages', 'graphs', 'e2e', 'throughput', 'workers', 'mqtt', 'codecs', 'torch', 'memory'] as const;
export type SectionName = (typeof SECTIONS)[number];

const RUNNERS: Record<SectionName, (o: BenchOptions) => Promise<SectionResult>> = {
  stages: async (o) => (await import('./stages.ts')).runStages(o),
  e2e: async (o) => (await import('./e2e.ts')).runEndToEnd(o),
  throughput: async (o) => (await import('./throughput.ts')).runThroughput(o),
  workers: async (o) => (await import('./workers.ts')).runWorkers(o),
  graphs: async (o) => (await import('./graphs.ts')).runGraphs(o),
  mqtt: async (o) => (await import('./mqtt.ts')).runMqtt(o),
  codecs: async (o) => (await import('./codecs.ts')).runCodecs(o),
  torch: async (o) => (await import('./torch.ts')).runTorch(o),
  memory: async (o) => (await import('./memory.ts')).runMemory(o),
};

function usage(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    frames: { type: 'string' },
    out: { type: 'string', default: 'out/bench' },
    models: { type: 'string', default: 'models/manifest.json' },
    device: { type: 'string', default: 'cpu' },
    precision: { type: 'string', default: 'float32' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(
    'npm run bench [-- --quick] [--only SECTIONS] [--frames N] [--out DIR] [--models FILE] [--device cpu|cuda|auto] [--precision float32|int8]\n' +
      `  --only      comma-separated sections, in this order: ${SECTIONS.join(', ')} (default: all)\n` +
      '  --quick     few frames per section (a smoke run, not numbers to quote)\n' +
      '  --frames N  frames per process in the memory section (default 2000, 200 with --quick)\n' +
      '  --out DIR   cache and results folder (default out/bench: results.json, results.md)\n' +
      '  --precision float32 (default) or int8: the manifest\'s int8 LiDAR backbone and detection head\n',
  );
  process.exit(0);
}
const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : [...SECTIONS];
for (const s of only) if (!SECTIONS.includes(s as SectionName)) usage(`--only ${s}: no such section (sections: ${SECTIONS.join(', ')})`);
if (!['cpu', 'cuda', 'auto'].includes(values.device!)) usage(`--device ${values.device}: must be cpu, cuda or auto`);
if (!['float32', 'int8'].includes(values.precision!)) usage(`--precision ${values.precision}: must be float32 or int8`);
const frames = values.frames === undefined ? (values.quick ? 200 : 2000) : Number(values.frames);
if (!Number.isInteger(frames) || frames < 20) usage(`--frames ${values.frames}: must be an integer ≥ 20`);

const outDir = path.resolve(values.out!);
await mkdir(outDir, { recursive: true });
const options: BenchOptions = {
  quick: values.quick!,
  outDir,
  models: values.models!,
  device: values.device as BenchOptions['device'],
  precision: values.precision as BenchOptions['precision'],
  frames,
  log: (line) => process.stderr.write(`${line}\n`),
};

const results: Record<string, unknown> = {
  command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, ''),
  date: new Date().toISOString(),
  quick: options.quick,
  machine: { ...machine(), onnxruntime: ort.env.versions.node ?? ort.env.versions.common, device: options.device, precision: options.precision },
  sections: {} as Record<string, SectionResult>,
};
const sections = results.sections as Record<string, SectionResult>;
let failed = 0;
for (const name of SECTIONS) {
  if (!only.includes(name)) continue;
  const t0 = performance.now();
  options.log(`== ${name}`);
  try {
    sections[name] = await RUNNERS[name](options);
  } catch (err) {
    failed++;
    sections[name] = { skipped: `failed: ${(err as Error).message}` };
    options.log(`${name} failed: ${(err as Error).stack ?? err}`);
  }
  sections[name].seconds = Math.round((performance.now() - t0) / 100) / 10;
  // Written after every section, so a long run that fails late keeps what it measured.
  await writeFile(path.join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
}
const markdown = renderMarkdown(results);
await writeFile(path.join(outDir, 'results.md'), markdown);
process.stdout.write(markdown);
options.log(`wrote ${path.join(outDir, 'results.json')} and results.md`);
process.exit(failed ? 1 : 0);
