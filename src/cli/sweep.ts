// `v2xfuse sweep`: the bandwidth-accuracy grid over one sequence, from the command line or a sweep definition file.
import { type Command, InvalidArgumentError } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { openDataset } from '../datasets/index.ts';
import { DEVICE_OPTIONS, type DeviceOption, PerceptionModels } from '../perception/index.ts';
import { type GridSpec, type SweepDefinition, expandGrids, parseSweepDefinition, runSweep } from '../sweep/index.ts';
import { DEFAULT_MANIFEST } from './detect.ts';
import { UserInputError, action } from './failure.ts';
import { progressBar } from './progress.ts';
import { parseIntArg } from './simulate.ts';

interface SweepCliOptions {
  config?: string;
  fusion?: string[];
  codecs?: string[];
  poseNoise?: string[];
  latency?: number[];
  loss?: number[];
  out: string;
  ego?: string;
  scenario?: string;
  frames?: number;
  fromFrame?: number;
  seed?: number;
  models: string;
  device: DeviceOption;
  threads?: number;
}

const list = (v: string): string[] => v.split(',').map((s) => s.trim()).filter(Boolean);
const numberList = (name: string, min: number, max: number) => (v: string): number[] =>
  list(v).map((s) => {
    const n = Number(s);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`${name}: '${s}' is not a number in [${min}, ${max === Infinity ? '∞' : max}]`);
    return n;
  });

export function registerSweep(program: Command): void {
  program
    .command('sweep')
    .description('run the bandwidth-accuracy grid (fusion × codec × pose noise × latency × loss) over a sequence; writes results.json, results.csv, report.md/html and plots; resumes')
    .argument('[dataset]', 'a dataset folder (or give it in --config)')
    .option('--config <file>', 'a sweep definition (YAML: dataset, frames, grids), e.g. sweeps/headline.yaml')
    .option('--fusion <list>', 'fusion modes, comma-separated: none, intermediate, max, mean, attention, late, late:wbf, early, hybrid, hybrid:wbf', list)
    .option('--codecs <list>', "feature codecs, comma-separated (none = raw features in process, not sent; raw = float32 messages), e.g. none,int8+deflate,int8+top10%+deflate; early takes a point codec (1cm+deflate) and late none", list)
    .option('--pose-noise <list>', 'pose noise levels, comma-separated: pos_m/yaw_deg, or one number for both (0 = none), e.g. 0,0.2,0.4', list)
    .option('--latency <list>', 'message ages in ms, comma-separated, e.g. 0,100,200', numberList('--latency', 0, Infinity))
    .option('--loss <list>', 'message loss probabilities, comma-separated, e.g. 0,0.2,0.5', numberList('--loss', 0, 1))
    .requiredOption('--out <dir>', 'output folder (a finished configuration found in its results.json is not run again)')
    .option('--ego <id>', "the ego agent (default: the sequence's first)")
    .option('--scenario <name>', "the dataset's scenario to sweep (default: its first)")
    .option('--frames <n>', 'frames per configuration (default: all)', parseIntArg('--frames', 1))
    .option('--from-frame <i>', 'first frame (a latency sweep needs earlier frames to send)', parseIntArg('--from-frame', 0))
    .option('--seed <n>', 'seed of pose noise and loss', parseIntArg('--seed', 0))
    .option('--models <manifest>', 'the model manifest', DEFAULT_MANIFEST)
    .option('--device <d>', 'cpu | cuda | auto', (v: string) => {
      if (!(DEVICE_OPTIONS as readonly string[]).includes(v)) throw new InvalidArgumentError(`--device must be one of ${DEVICE_OPTIONS.join(', ')}`);
      return v as DeviceOption;
    }, 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', parseIntArg('--threads', 1))
    .action(
      action(async (datasetArg: string | undefined, o: SweepCliOptions) => {
        let def: SweepDefinition | undefined;
        let source = 'command line';
        if (o.config) {
          source = o.config;
          let text: string;
          try {
            text = await readFile(o.config, 'utf8');
          } catch (err) {
            throw new UserInputError(`--config ${o.config}: ${(err as Error).message}`);
          }
          def = parseSweepDefinition(text, o.config);
        }
        const datasetPath = datasetArg ?? def?.dataset;
        if (!datasetPath) throw new UserInputError('sweep: name a dataset (argument, or dataset: in --config)');
        const grids: GridSpec[] = [...(def?.grids ?? []).map((g) => ({ ...g, codecs: g.codecs ?? [] }))];
        if (o.fusion || o.codecs) {
          if (!o.fusion) throw new UserInputError('--codecs needs --fusion');
          grids.push({ fusion: o.fusion, codecs: o.codecs ?? [], poseNoise: o.poseNoise, latencyMs: o.latency, loss: o.loss });
        } else if (o.poseNoise || o.latency || o.loss) {
          throw new UserInputError('--pose-noise, --latency and --loss need --fusion (and --codecs)');
        }
        if (grids.length === 0) throw new UserInputError('sweep: nothing to run: give --fusion and --codecs, or --config');

        const ds = await openDataset(resolve(datasetPath));
        const seq = o.scenario ? ds.scenarios.find((s) => s.name === o.scenario) : ds.scenarios[0];
        if (!seq) throw new UserInputError(`--scenario ${o.scenario}: not in ${ds.root} (scenarios: ${ds.scenarios.map((s) => s.name).join(', ')})`);
        if (!o.scenario && ds.scenarios.length > 1) process.stderr.write(`v2xfuse: ${ds.root} has ${ds.scenarios.length} scenarios; sweeping ${seq.name} (choose with --scenario)\n`);
        const ego = o.ego ?? def?.ego ?? seq.agents[0]?.id;
        if (!seq.agents.some((a) => a.id === ego)) throw new UserInputError(`--ego ${ego}: no such agent in ${seq.name} (agents: ${seq.agents.map((a) => a.id).join(', ')})`);
        const fromFrame = o.fromFrame ?? def?.fromFrame ?? 0;
        const frames = Math.min(o.frames ?? def?.frames ?? seq.frameCount, Math.max(0, seq.frameCount - fromFrame));
        if (frames < 1) throw new UserInputError(`--from-frame ${fromFrame}: ${seq.name} has ${seq.frameCount} frames`);

        const models = await PerceptionModels.load(o.models, { device: o.device, threads: o.threads });
        try {
          const { configurations, skipped } = expandGrids(grids, models.attention !== undefined, source);
          for (const s of skipped) process.stderr.write(`v2xfuse: not run: ${s}\n`);
          const bar = progressBar('sweep', 'frames', ' | {configs}');
          let configsDone = 0;
          let summary: Awaited<ReturnType<typeof runSweep>>;
          try {
            summary = await runSweep({
              sequence: seq,
              models,
              configurations,
              context: { dataset: ds.root, scenario: seq.name, ego: ego!, frames, fromFrame, seed: o.seed ?? def?.seed ?? 0, modelId: models.manifest.modelId },
              outDir: resolve(o.out),
              skipped,
              log: (line) => {
                if (line.includes('done in') || line.startsWith('skipped')) configsDone++;
                if (!process.stderr.isTTY) process.stderr.write(`sweep: ${line}\n`);
              },
              onProgress: (p) => bar.update(p.framesDone, Math.max(1, p.framesTotal), { configs: `${configsDone}/${configurations.length} configs` }),
            });
          } finally {
            bar.stop();
          }
          process.stdout.write(
            `${summary.ran} configurations run, ${summary.reused} found finished; encoder: ${summary.encoder.encoded} encodes, ${summary.encoder.reused} reused\n` +
              summary.files.map((f) => `  ${f}\n`).join(''),
          );
        } finally {
          await models.dispose();
        }
      }),
    );
}
