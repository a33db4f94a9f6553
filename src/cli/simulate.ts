import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action } from './failure.ts';
import { progressBar } from './progress.ts';

export function parseIntArg(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got '${value}'`);
    return n;
  };
}

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('write a simulated multi-agent V2X sequence (LiDAR, cameras, ground truth) in the OPV2V layout')
    .requiredOption('--scenario <file|name>', 'a scenario JSON file, or the name of a built-in one in datasets/scenarios (intersection, urban-grid, highway-onramp, fixture)')
    .requiredOption('--out <dir>', 'the scenario folder to write (agent folders go inside it)')
    .option('--frames <n>', 'frames at 10 Hz', parseIntArg('--frames', 1), 50)
    .option('--seed <k>', 'random seed: the same seed gives the same bytes', parseIntArg('--seed', 0), 1)
    .option('--no-camera', 'skip camera images (calibration is still written)')
    .option('--json', 'print the run summary as JSON')
    .action(
      action(async (o: { scenario: string; out: string; frames: number; seed: number; camera: boolean; json?: boolean }) => {
        // Loaded on use: the simulator pulls in sharp, which other commands do not need.
        const { loadScenario, simulateSequence } = await import('../sim/index.ts');
        const scenario = await loadScenario(o.scenario);
        const bar = progressBar('simulate', 'frames');
        const summary = await simulateSequence({
          scenario,
          frames: o.frames,
          seed: o.seed,
          outDir: o.out,
          cameras: o.camera,
          onFrame: (done: number, total: number) => bar.update(done, total),
        }).finally(() => bar.stop());
        if (o.json) process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
        else process.stdout.write(`wrote ${o.frames} frames of '${o.scenario}' (seed ${o.seed}) to ${o.out}\n${JSON.stringify(summary, null, 2)}\n`);
      }),
    );
}
