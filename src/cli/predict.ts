// `v2xfuse export-tracks`: ground-truth object tracks of a dataset and the motion-prediction training samples cut
// from them (src/prediction/tracks.ts), for tools/train/train_predictor.py.
// `v2xfuse evaluate-prediction`: constant velocity, CTRV and the learned predictor on a dataset's ground-truth
// tracks (ADE, FDE, minADE_k, minFDE_k, miss rate).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { openDataset } from '../datasets/index.ts';
import {
  type PredictionEvaluation,
  type TrajectoryPredictor,
  ConstantVelocityPredictor,
  CtrvPredictor,
  DEFAULT_MANIFEST_PATH,
  EVALUATION_SUBSETS,
  MotionPredictor,
  evaluatePredictors,
  exportPredictionSamples,
  extractGroundTruthTracks,
} from '../prediction/index.ts';
import { action } from './failure.ts';
import { progressBar } from './progress.ts';

function parsePositiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be an integer ≥ 1, got '${value}'`);
    return n;
  };
}

interface ExportTracksCliOptions {
  out: string;
  history: number;
  future: number;
  stride: number;
  json?: boolean;
}

interface EvaluatePredictionCliOptions {
  manifest: string;
  learned: boolean;
  stride: number;
  k: number;
  json?: boolean;
}

function table(results: PredictionEvaluation[]): string {
  const lines = ['| subset | predictor | windows | ADE | FDE | minADE_k | minFDE_k | MR_k | MR top-1 |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |'];
  for (const subset of EVALUATION_SUBSETS) {
    for (const r of results) {
      const m = r.subsets[subset];
      const f = (v: number) => (Number.isNaN(v) ? '–' : v.toFixed(3));
      lines.push(`| ${subset} | ${r.predictor} (K=${r.modes}) | ${m.count} | ${f(m.ade)} | ${f(m.fde)} | ${f(m.minAde)} | ${f(m.minFde)} | ${f(m.missRate)} | ${f(m.missRateTop1)} |`);
    }
  }
  return lines.join('\n');
}

export function registerPrediction(program: Command): void {
  program
    .command('evaluate-prediction')
    .description('score constant velocity, CTRV and the learned motion predictor on the ground-truth tracks of a dataset (1 s history, the model\'s horizon)')
    .argument('<dataset>', 'dataset root, split folder or scenario folder')
    .option('--manifest <file>', 'the model manifest with models.motion_predictor', DEFAULT_MANIFEST_PATH)
    .option('--no-learned', 'only the constant-velocity and CTRV baselines')
    .option('--stride <frames>', 'frames between the anchors of one track', parsePositiveInt('--stride'), 1)
    .option('--k <modes>', 'k of minADE_k / minFDE_k / miss rate', parsePositiveInt('--k'), 6)
    .option('--json', 'print the results as JSON')
    .action(
      action(async (datasetPath: string, o: EvaluatePredictionCliOptions) => {
        const ds = await openDataset(datasetPath);
        const sequences = [];
        for (const seq of ds.scenarios) sequences.push(await extractGroundTruthTracks(seq));
        const predictors: TrajectoryPredictor[] = [];
        let learned: MotionPredictor | undefined;
        if (o.learned) learned = await MotionPredictor.load(o.manifest, { threads: 1 });
        const horizon = learned?.horizon;
        predictors.push(new ConstantVelocityPredictor(horizon), new CtrvPredictor(horizon));
        if (learned) predictors.push(learned);
        const results = await evaluatePredictors(sequences, predictors, { stride: o.stride, k: o.k });
        await learned?.release();
        if (o.json) {
          const out = { dataset: ds.root, sequences: sequences.map((s) => s.name), model: learned?.entry.modelId, results };
          process.stdout.write(JSON.stringify(out, null, 2) + '\n');
          return;
        }
        process.stdout.write(`${sequences.map((s) => s.name).join(', ')}: 1 s history, ${results[0]?.steps ?? 0} waypoints; minADE/minFDE/MR over the ${o.k} most probable modes (minADE of the best-endpoint mode, as Argoverse), miss = FDE > 2 m\n`);
        process.stdout.write(table(results) + '\n');
      }),
    );

  program
    .command('export-tracks')
    .description('write the ground-truth tracks of a dataset (tracks.json, world frame) and motion-prediction training samples (samples.bin)')
    .argument('<dataset>', 'dataset root, split folder or scenario folder (OPV2V, V2V4Real, DAIR-V2X-C)')
    .requiredOption('--out <dir>', 'the folder to write tracks.json and samples.bin into')
    .option('--history <steps>', 'history steps per sample (10 Hz)', parsePositiveInt('--history'), 10)
    .option('--future <steps>', 'future steps per sample (10 Hz)', parsePositiveInt('--future'), 30)
    .option('--stride <frames>', 'frames between the anchors of one track', parsePositiveInt('--stride'), 1)
    .option('--json', 'print the summary as JSON')
    .action(
      action(async (datasetPath: string, o: ExportTracksCliOptions) => {
        const ds = await openDataset(datasetPath);
        const bar = progressBar('export-tracks', 'frames', ' | {scenario}');
        const summary = await exportPredictionSamples(ds, o.out, {
          historySteps: o.history,
          futureSteps: o.future,
          stride: o.stride,
          onProgress: (done, total, scenario) => bar.update(done, total, { scenario }),
        }).finally(() => bar.stop());
        if (o.json) {
          process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
          return;
        }
        const byClass = Object.entries(summary.samplesByClass).map(([c, n]) => `${c} ${n}`).join(', ');
        process.stdout.write(
          `wrote ${summary.tracks} tracks of ${summary.sequences} sequence(s) and ${summary.samples} samples (${byClass || 'none'}) to ${summary.outDir} (${(summary.bytes / 1e6).toFixed(1)} MB)\n`,
        );
      }),
    );
}
