import type { Command } from 'commander';
import { join } from 'node:path';
import { inspectDataset, openDataset } from '../datasets/index.ts';
import { action } from './failure.ts';
import { printInspectReport } from './inspect.ts';
import { progressBar } from './progress.ts';
import { parseIntArg } from './simulate.ts';

// The main job on built-in defaults. For now (foundation stage) it simulates a sequence and shows who sees what;
// later stages extend it to the full broker + agents + fusion run with a report.
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('simulate the intersection scenario and show, per agent, the vehicles it cannot see that another agent sees')
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
        process.stdout.write(`\nsequence written to ${dir}; inspect it again with: npx v2xfuse inspect ${dir} --stats\n`);
      }),
    );
}
