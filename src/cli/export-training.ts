// `v2xfuse export-training`: pillarise a dataset with the runtime's Pillarizer and write training shards for
// tools/train (format: src/perception/shards.ts, tools/train/README.md).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { openDataset } from '../datasets/index.ts';
import { DEFAULT_CAMERA_INPUT, exportTrainingShards } from '../perception/index.ts';
import { action } from './failure.ts';
import { progressBar } from './progress.ts';

function parseNonNegative(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0, got '${value}'`);
    return n;
  };
}

function parseFinite(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got '${value}'`);
    return n;
  };
}

function parsePositiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be an integer ≥ 1, got '${value}'`);
    return n;
  };
}

interface ExportTrainingCliOptions {
  out: string;
  ego: string;
  commRange: number;
  maxPillars?: number;
  rsuZOffset?: number;
  vehicleZOffset?: number;
  skipMissing?: boolean;
  overwrite?: boolean;
  json?: boolean;
  cameras?: boolean;
  cameraSize?: { width: number; height: number };
  cameraHeights?: number[];
}

function parseImageSize(value: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/.exec(value.trim());
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) throw new InvalidArgumentError(`--camera-size must be WIDTHxHEIGHT (e.g. 256x192), got '${value}'`);
  return { width: Number(m[1]), height: Number(m[2]) };
}

function parseHeights(value: string): number[] {
  const out = value.split(',').map((v) => Number(v));
  if (out.length === 0 || value.trim() === '' || !out.every(Number.isFinite)) {
    throw new InvalidArgumentError(`--camera-heights must be comma-separated metres (LiDAR frame), got '${value}'`);
  }
  return out;
}

export function registerExportTraining(program: Command): void {
  program
    .command('export-training')
    .description('pillarise a dataset and write training shards (index.json + samples/*.bin) for tools/train')
    .argument('<dataset>', 'dataset root, split folder or scenario folder (OPV2V, V2V4Real, DAIR-V2X-C)')
    .requiredOption('--out <dir>', 'the shard folder to write')
    .option('--ego <first|all|id>', "which agent is the ego of a sample: the sequence's first agent, every agent in turn, or one id", 'first')
    .option('--comm-range <m>', 'collaborators within this 2D distance of the ego (m) join its sample', parseNonNegative('--comm-range'), 70)
    .option('--max-pillars <n>', 'pillars kept per agent frame (the runtime default is 16000)', parsePositiveInt('--max-pillars'))
    .option('--rsu-z-offset <m>', 'metres added to roadside-unit points before pillarising (pole height − 1.9, e.g. 4.1 for 6 m poles); the runtime must do the same', parseFinite('--rsu-z-offset'))
    .option('--vehicle-z-offset <m>', 'metres added to vehicle points before pillarising (LiDAR height − 1.9)', parseFinite('--vehicle-z-offset'))
    .option('--skip-missing', 'leave out frames whose files are absent (each is listed as a warning) instead of failing')
    .option('--cameras', `also write each agent's camera images and BEV sampling grids (the camera encoder's inputs; default ${DEFAULT_CAMERA_INPUT.width}x${DEFAULT_CAMERA_INPUT.height}, heights ${DEFAULT_CAMERA_INPUT.heights.join(', ')} m)`)
    .option('--camera-size <WxH>', 'camera tensor size with --cameras (must match the camera model the shards train)', parseImageSize)
    .option('--camera-heights <z,z,...>', 'heights (m, LiDAR frame) sampled in every BEV pillar with --cameras', parseHeights)
    .option('--overwrite', 'replace an earlier export in --out (its index.json and samples/)')
    .option('--json', 'print the summary as JSON')
    .action(
      action(async (datasetPath: string, o: ExportTrainingCliOptions) => {
        const ds = await openDataset(datasetPath, { skipMissing: o.skipMissing });
        const bar = progressBar('export-training', 'frames', ' | {scenario}');
        const summary = await exportTrainingShards(ds, o.out, {
          ego: o.ego,
          commRangeM: o.commRange,
          maxPillars: o.maxPillars,
          zOffsetByKind: {
            ...(o.rsuZOffset !== undefined ? { rsu: o.rsuZOffset } : {}),
            ...(o.vehicleZOffset !== undefined ? { vehicle: o.vehicleZOffset } : {}),
          },
          overwrite: o.overwrite,
          cameras: o.cameras
            ? {
                width: o.cameraSize?.width ?? DEFAULT_CAMERA_INPUT.width,
                height: o.cameraSize?.height ?? DEFAULT_CAMERA_INPUT.height,
                heights: o.cameraHeights ?? DEFAULT_CAMERA_INPUT.heights,
              }
            : undefined,
          onProgress: (done, total, scenario) => bar.update(done, total, { scenario }),
        }).finally(() => bar.stop());
        if (o.json) {
          process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
          return;
        }
        const mb = (summary.bytes / 1e6).toFixed(1);
        const lines = [
          `wrote ${summary.samples} samples from ${summary.frames} frames to ${summary.outDir} (${mb} MB)`,
          `  per sample: ${summary.meanAgents.toFixed(2)} agents, ${summary.meanGtBoxes.toFixed(1)} ground-truth boxes; ${summary.meanPillars.toFixed(0)} pillars per agent frame`,
        ];
        if (summary.framesWithoutEgo) lines.push(`  ${summary.framesWithoutEgo} frames skipped: no agent '${o.ego}' in them`);
        if (summary.agentFramesAtPillarCap) lines.push(`  ${summary.agentFramesAtPillarCap} agent frames hit the pillar cap (--max-pillars)`);
        for (const w of summary.warnings.slice(0, 5)) lines.push(`warning: ${w}`);
        if (summary.warnings.length > 5) lines.push(`warning: … and ${summary.warnings.length - 5} more (--json lists them all)`);
        process.stdout.write(lines.join('\n') + '\n');
      }),
    );
}
