import type { Command } from 'commander';
import { join } from 'node:path';
import { inspectDataset, openDataset } from '../datasets/index.ts';
import { action } from './failure.ts';
import { printInspectReport } from './inspect.ts';
import { progressBar } from './progress.ts';
import { parseIntArg } from './simulate.ts';

/** Ego-only against cooperative detection on the sequence, with the shipped models: what cooperation buys. */
async function compareFusion(dir: string): Promise<void> {
  const { PerceptionModels } = await import('../perception/index.ts');
  const { CooperativeDetector, evaluateSequence } = await import('../fusion/index.ts');
  const { ClassAwareApAccumulator } = await import('../eval/index.ts');
  const { DEFAULT_MANIFEST } = await import('./detect.ts');
  const models = await PerceptionModels.load(DEFAULT_MANIFEST, { device: 'cpu' });
  try {
    const seq = (await openDataset(dir)).scenarios[0];
    const ego = seq.agents[0].id;
    const lines = [`\ndetection (vehicle AP in BEV, OpenCOOD protocol; ego ${ego}; model ${models.manifest.modelId}):`];
    for (const mode of ['none', 'attention'] as const) {
      const detector = new CooperativeDetector(models, mode);
      const acc = new ClassAwareApAccumulator(undefined, ['vehicle']);
      const bar = progressBar(mode === 'none' ? 'detect (ego only)' : 'detect (fused)', 'frames');
      let done = 0;
      try {
        await evaluateSequence(seq, detector, ego, acc, { onFrame: () => bar.update(++done, seq.frameCount) });
      } finally {
        bar.stop();
      }
      const ap = acc.result().vehicle;
      lines.push(`  ${mode === 'none' ? 'ego only           ' : 'intermediate fusion'}  AP@0.3 ${ap['0.3'].ap.toFixed(3)}  AP@0.5 ${ap['0.5'].ap.toFixed(3)}  AP@0.7 ${ap['0.7'].ap.toFixed(3)}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await models.dispose();
  }
}

// The main job on built-in defaults. For now it simulates a sequence and shows who sees what,
// then runs the shipped detector ego-only and fused over it. Later stages turn it into the full broker + agents +
// fusion run with a report.
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('simulate the intersection scenario, show per agent the vehicles it cannot see that another agent sees, and detect ego-only vs fused')
    .option('--out <dir>', 'where to write the sequence', 'out/demo')
    .option('--scenario <file|name>', 'scenario', 'intersection')
    .option('--frames <n>', 'frames at 10 Hz', parseIntArg('--frames', 1), 30)
    .option('--seed <k>', 'random seed', parseIntArg('--seed', 0), 7)
    .option('--camera', 'also render camera images (slower)')
    .action(
      action(async (o: { out: string; scenario: string; frames: number; seed: number; camera?: boolean }) => {
        // Loaded on use: the simulator pulls in sharp, which other commands do not need.
        const { loadScenario, simulateSequence } = await import('../sim/index.ts');
        const scenario = await loadScenario(o.scenario);
        const dir = join(o.out, scenario.name);
        const sim = progressBar('simulate', 'frames');
        await simulateSequence({ scenario, frames: o.frames, seed: o.seed, outDir: dir, cameras: !!o.camera, onFrame: (d: number, t: number) => sim.update(d, t) }).finally(() => sim.stop());
        const bar = progressBar('inspect', 'frames');
        const report = await inspectDataset(await openDataset(dir), { stats: true, onProgress: (d, t) => bar.update(d, t) }).finally(() => bar.stop());
        printInspectReport(report);
        await compareFusion(dir);
        process.stdout.write(`\nsequence written to ${dir}; inspect it again with: npx v2xfuse inspect ${dir} --stats\n`);
      }),
    );
}
