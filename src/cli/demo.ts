import type { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspectDataset, openDataset } from '../datasets/index.ts';
import { DEFAULT_FEATURE_CODEC, formatRunReport, runDeployment } from '../transport/index.ts';
import { action } from './failure.ts';
import { printInspectReport } from './inspect.ts';
import { progressBar } from './progress.ts';
import { parseIntArg } from './simulate.ts';

/** Ego-only detection in this process: the baseline the deployment's cooperative AP is read against. */
async function egoOnlyAp(dir: string): Promise<{ ego: string; ap: Record<string, number>; modelId: string }> {
  const { PerceptionModels } = await import('../perception/index.ts');
  const { CooperativeDetector, evaluateSequence } = await import('../fusion/index.ts');
  const { ClassAwareApAccumulator } = await import('../eval/index.ts');
  const { DEFAULT_MANIFEST } = await import('./detect.ts');
  const models = await PerceptionModels.load(DEFAULT_MANIFEST, { device: 'cpu' });
  try {
    const seq = (await openDataset(dir)).scenarios[0];
    const ego = seq.agents[0].id;
    const acc = new ClassAwareApAccumulator(undefined, ['vehicle']);
    const bar = progressBar('detect (ego only)', 'frames');
    let done = 0;
    try {
      await evaluateSequence(seq, new CooperativeDetector(models, 'none'), ego, acc, { onFrame: () => bar.update(++done, seq.frameCount) });
    } finally {
      bar.stop();
    }
    return { ego, ap: Object.fromEntries(Object.entries(acc.result().vehicle).map(([k, v]) => [k, v.ap])), modelId: models.manifest.modelId };
  } finally {
    await models.dispose();
  }
}

// The main job on built-in defaults: simulate a sequence, show who sees what, then deploy it for real (embedded
// broker, one process per agent, the fusion node) and report accuracy next to bytes, latency and drops.
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('simulate the intersection scenario, then run broker + agents + fusion node over it and report AP, bytes, latency and drops')
    .option('--out <dir>', 'where to write the sequence and the report', 'out/demo')
    .option('--scenario <file|name>', 'scenario', 'intersection')
    .option('--frames <n>', 'frames at 10 Hz', parseIntArg('--frames', 1), 30)
    .option('--seed <k>', 'random seed', parseIntArg('--seed', 0), 7)
    .option('--codec <spec>', 'what collaborators send', DEFAULT_FEATURE_CODEC)
    .option('--camera', 'also render camera images (slower)')
    .action(
      action(async (o: { out: string; scenario: string; frames: number; seed: number; codec: string; camera?: boolean }) => {
        // Loaded on use: the simulator pulls in sharp, which other commands do not need.
        const { loadScenario, simulateSequence } = await import('../sim/index.ts');
        const scenario = await loadScenario(o.scenario);
        const dir = join(o.out, scenario.name);
        const sim = progressBar('simulate', 'frames');
        await simulateSequence({ scenario, frames: o.frames, seed: o.seed, outDir: dir, cameras: !!o.camera, onFrame: (d: number, t: number) => sim.update(d, t) }).finally(() => sim.stop());
        const bar = progressBar('inspect', 'frames');
        const report = await inspectDataset(await openDataset(dir), { stats: true, onProgress: (d, t) => bar.update(d, t) }).finally(() => bar.stop());
        printInspectReport(report);

        const baseline = await egoOnlyAp(dir);
        const { DEFAULT_MANIFEST } = await import('./detect.ts');
        const runBar = progressBar('run (broker + agents + fusion node)', 'fused frames');
        const run = await runDeployment({
          dataset: dir, mode: 'intermediate', codec: o.codec, broker: 'embedded', rateHz: 0, models: DEFAULT_MANIFEST,
          log: (line) => process.stderr.write(`v2xfuse: ${line}\n`), onProgress: (d, t) => runBar.update(d, t),
        }).finally(() => runBar.stop());
        const reportPath = join(o.out, 'report.json');
        await writeFile(reportPath, JSON.stringify(run, null, 2) + '\n');
        const f = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(3));
        process.stdout.write(
          [
            '',
            `ego ${baseline.ego} alone (in process):  vehicle AP@0.3 ${f(baseline.ap['0.3'])}  AP@0.5 ${f(baseline.ap['0.5'])}  AP@0.7 ${f(baseline.ap['0.7'])}`,
            formatRunReport(run),
            '',
            `sequence in ${dir}, report in ${reportPath}`,
            `next: npx v2xfuse run ${dir} --fusion late   (or early, none; --codec int4+top5%+brotli; --sign)`,
          ].join('\n') + '\n',
        );
      }),
    );
}
