import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { fileURLToPath } from 'node:url';
import { openDataset } from '../datasets/index.ts';
import { ClassAwareApAccumulator, type ApOrder } from '../eval/index.ts';
import { CooperativeDetector, type FusionMode, evaluateSequence } from '../fusion/index.ts';
import { DEVICE_OPTIONS, type DeviceOption, PerceptionModels } from '../perception/index.ts';
import { action, UserInputError } from './failure.ts';
import { progressBar } from './progress.ts';
import { parseIntArg } from './simulate.ts';

export const DEFAULT_MANIFEST = fileURLToPath(new URL('../../models/manifest.json', import.meta.url));

function choice<T extends string>(name: string, allowed: readonly T[]) {
  return (value: string): T => {
    if (!(allowed as readonly string[]).includes(value)) throw new InvalidArgumentError(`${name} must be one of ${allowed.join(', ')}, got '${value}'`);
    return value as T;
  };
}

function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Mean bytes per message, over all messages and per agent ("scenario:agent" keys). */
function messageBytes(byAgent: Record<string, number[]>): { meanPerAgentPerFrame: number; meanByAgent: Record<string, number>; messages: number } {
  const all = Object.values(byAgent).flat();
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  return {
    meanPerAgentPerFrame: mean(all),
    meanByAgent: Object.fromEntries(Object.entries(byAgent).map(([id, v]) => [id, mean(v)])),
    messages: all.length,
  };
}

interface DetectOptions {
  ego?: string;
  fusion: 'none' | 'intermediate' | 'max' | 'attention' | 'late' | 'early';
  modality: 'lidar' | 'camera' | 'both' | 'mixed';
  models: string;
  device: DeviceOption;
  threads?: number;
  noisyPoses?: boolean;
  order: ApOrder;
  frames?: number;
  skipMissing?: boolean;
  json?: boolean;
}

export function registerDetect(program: Command): void {
  program
    .command('detect')
    .description('run the shipped detectors over a sequence, fusing the agents\' BEV features (or their objects, or points), and print AP@0.3/0.5/0.7 (BEV, as OpenCOOD)')
    .argument('<dataset>', 'a dataset folder in any layout inspect reads')
    .option('--ego <id>', 'the ego agent (default: the sequence\'s first agent, OpenCOOD\'s rule)')
    .option(
      '--fusion <mode>',
      'none (ego only) | intermediate (attention when the models have it, else max) | max | attention | late (object lists, merged by NMS) | early (points, 1cm+deflate)',
      choice('--fusion', ['none', 'intermediate', 'max', 'attention', 'late', 'early'] as const),
      'intermediate',
    )
    .option('--modality <m>', 'lidar | camera | both | mixed (only lidar is available until a camera encoder ships)', choice('--modality', ['lidar', 'camera', 'both', 'mixed'] as const), 'lidar')
    .option('--models <manifest>', 'the model manifest', DEFAULT_MANIFEST)
    .option('--device <d>', 'cpu | cuda | auto (auto falls back to the CPU and says so)', choice('--device', DEVICE_OPTIONS), 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', parseIntArg('--threads', 1))
    .option('--noisy-poses', 'align with the GPS-noisy poses the dataset records instead of the true ones')
    .option('--order <o>', 'AP ranking: global (all detections by score) | frame (original OpenCOOD tables)', choice('--order', ['global', 'frame'] as const), 'global')
    .option('--frames <n>', 'only the first N frames of each scenario', parseIntArg('--frames', 1))
    .option('--skip-missing', 'leave out frames whose files are absent')
    .option('--json', 'print one JSON object: ap (vehicle AP by IoU threshold), byClass, frames, timings, …')
    .action(
      action(async (datasetPath: string, o: DetectOptions) => {
        if (o.modality !== 'lidar') {
          throw new UserInputError(`--modality ${o.modality}: no camera encoder ships yet (models/manifest.json has only LiDAR models); use --modality lidar`);
        }
        const ds = await openDataset(datasetPath, { skipMissing: o.skipMissing });
        const models = await PerceptionModels.load(o.models, { device: o.device, threads: o.threads });
        if (models.notice) process.stderr.write(`v2xfuse: ${models.notice}\n`);
        // intermediate: the trained attention when the manifest has it, else max.
        const fusionMode: FusionMode = o.fusion === 'intermediate' ? (models.attention ? 'attention' : 'max') : o.fusion;
        try {
          const detector = new CooperativeDetector(models, fusionMode, { noisyPoses: o.noisyPoses });
          const acc = new ClassAwareApAccumulator(undefined, models.manifest.anchors.map((a) => a.cls));
          const timings: Record<string, number[]> = {};
          const bytes: Record<string, number[]> = {};
          let frames = 0, detections = 0, agentsUsed = 0, droppedPillars = 0;
          const egos: string[] = [];
          const total = ds.scenarios.reduce((n, s) => n + Math.min(s.frameCount, o.frames ?? Infinity), 0);
          const bar = progressBar('detect', 'frames');
          try {
            for (const seq of ds.scenarios) {
              const egoId = o.ego ?? seq.agents[0]?.id;
              if (!seq.agents.some((a) => a.id === egoId)) {
                throw new UserInputError(`--ego ${egoId}: no such agent in scenario ${seq.name} (agents: ${seq.agents.map((a) => a.id).join(', ')})`);
              }
              egos.push(`${seq.name}:${egoId}`);
              const run = await evaluateSequence(seq, detector, egoId, acc, { maxFrames: o.frames, onFrame: () => bar.update(++frames, total) });
              detections += run.detections;
              agentsUsed += run.agents;
              for (const [k, v] of Object.entries(run.timings)) (timings[k] ??= []).push(...v);
              for (const [id, v] of Object.entries(run.bytes)) (bytes[`${seq.name}:${id}`] ??= []).push(...v);
              droppedPillars += run.droppedPillars;
            }
          } finally {
            bar.stop();
          }
          const result = acc.result(o.order);
          const ap = Object.fromEntries(Object.entries(result.vehicle).map(([k, v]) => [k, v.ap]));
          const report = {
            dataset: ds.root,
            format: ds.format,
            egos,
            fusion: fusionMode,
            modality: o.modality,
            order: o.order,
            modelId: models.manifest.modelId,
            provider: models.provider,
            frames,
            meanAgentsPerFrame: frames ? agentsUsed / frames : 0,
            detectionsPerFrame: frames ? detections / frames : 0,
            ap,
            byClass: Object.fromEntries(
              Object.entries(result.byClass).map(([cls, r]) => [cls, Object.fromEntries(Object.entries(r!).map(([k, v]) => [k, { ap: v.ap, tp: v.tp, fp: v.fp, gt: v.gt }]))]),
            ),
            timingsMsMedian: Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, median(v)])),
            // Late and early: bytes of each agent's message per frame (the ego's included); absent for feature fusion.
            ...(Object.keys(bytes).length ? { bytes: messageBytes(bytes) } : {}),
            droppedPillarsPerFrame: frames ? droppedPillars / frames : 0,
          };
          if (o.json) {
            process.stdout.write(JSON.stringify(report, null, 2) + '\n');
            return;
          }
          const f = (x: number) => (Number.isNaN(x) ? '  n/a' : x.toFixed(3));
          const lines = [
            `${ds.format} ${ds.root}: ${frames} frames, ego ${egos.join(' ')}, fusion ${fusionMode}, ${report.meanAgentsPerFrame.toFixed(1)} agents per frame, model ${report.modelId} on ${report.provider}`,
            `AP (BEV, ${o.order} order)   @0.3    @0.5    @0.7     gt`,
          ];
          for (const [cls, r] of Object.entries(report.byClass)) {
            lines.push(`  ${cls.padEnd(22)} ${f(r['0.3'].ap)}   ${f(r['0.5'].ap)}   ${f(r['0.7'].ap)}   ${r['0.5'].gt}`);
          }
          if (report.bytes) lines.push(`message bytes per agent per frame: mean ${report.bytes.meanPerAgentPerFrame.toFixed(0)} (${Object.entries(report.bytes.meanByAgent).map(([id, b]) => `${id} ${b.toFixed(0)}`).join(', ')})`);
          lines.push(`median ms per frame: ${Object.entries(report.timingsMsMedian).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
          process.stdout.write(lines.join('\n') + '\n');
        } finally {
          await models.dispose();
        }
      }),
    );
}
