import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { fileURLToPath } from 'node:url';
import { openDataset } from '../datasets/index.ts';
import { ClassAwareApAccumulator, GROUND_TRUTH_VISIBILITIES, type ApOrder, type GroundTruthVisibility } from '../eval/index.ts';
import { CooperativeDetector, DEFAULT_HYBRID_CODEC, type FrameLinks, type FusionMode, type PoseNoiseStd, evaluateSequence, parsePoseNoise } from '../fusion/index.ts';
import { AgentSensorEncoder, CameraEncoder, DEVICE_OPTIONS, type DeviceOption, FLEET_MODALITIES, type FleetModality, LidarEncoderPool, PerceptionModels, PRECISIONS, type Precision } from '../perception/index.ts';
import { action, UserInputError } from './failure.ts';
import { progressBar } from './progress.ts';
import { parseIntArg } from './simulate.ts';

function parseNumberArg(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a number in [${min}, ${max === Infinity ? '∞' : max}], got '${value}'`);
    }
    return n;
  };
}

export const DEFAULT_MANIFEST = fileURLToPath(new URL('../../models/manifest.json', import.meta.url));

/** A commander parser that accepts one of `allowed` and names the option and the choices otherwise. */
export function choice<T extends string>(name: string, allowed: readonly T[]) {
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
  fusion: 'none' | 'intermediate' | 'max' | 'mean' | 'attention' | 'late' | 'early' | 'hybrid';
  codec?: string;
  lateMerge?: 'nms' | 'wbf';
  poseNoise?: PoseNoiseStd;
  seed: number;
  latencyMs?: number;
  compensate?: boolean;
  consistencyCheck?: boolean;
  loss?: number;
  maxAgents?: number;
  budgetBytes?: number;
  modality: FleetModality;
  cameraOnly?: string[];
  dropCameraOnly?: boolean;
  models: string;
  device: DeviceOption;
  threads?: number;
  workers: number;
  precision: Precision;
  noisyPoses?: boolean;
  order: ApOrder;
  gtVisibility: GroundTruthVisibility;
  frames?: number;
  fromFrame: number;
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
      'none (ego only) | intermediate (attention when the models have it, else max) | max | mean | attention | late (object lists, merged by NMS or WBF) | early (points, 1cm+deflate) | hybrid (top-k features + objects for the cells not sent)',
      choice('--fusion', ['none', 'intermediate', 'max', 'mean', 'attention', 'late', 'early', 'hybrid'] as const),
      'intermediate',
    )
    .option('--codec <spec>', `feature codec of collaborators' features (max, mean, attention; hybrid default ${DEFAULT_HYBRID_CODEC}), e.g. int8+top10%+deflate`)
    .option('--late-merge <m>', 'late and hybrid: merge object lists by nms | wbf (weighted box fusion)', choice('--late-merge', ['nms', 'wbf'] as const))
    .option('--pose-noise <pos_m,yaw_deg>', 'Gaussian error on each collaborator\'s pose: std of x and y (m) and of yaw (degrees), OpenCOOD\'s model, e.g. 0.2,0.2', (v: string) => {
      try {
        return parsePoseNoise(v);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    })
    .option('--seed <n>', 'seed of pose noise and message loss', parseIntArg('--seed', 0), 0)
    .option('--latency-ms <ms>', 'collaborators\' messages are this old: their frame from that long before the ego\'s (the nearest earlier frame)', parseNumberArg('--latency-ms', 0, Infinity))
    .option('--compensate', 'latency compensation: late fusion moves old objects by their velocity from the sender\'s previous lists (TCLF); max / mean / attention / hybrid move moving objects\' features by their tracked velocity; every mode aligns with the capture-time pose anyway')
    .option('--consistency-check', "leave out collaborators the ego's own LiDAR contradicts (cars where its beams saw free space; late also: objects the ego and the others do not confirm); feature modes judge what the detection head finds on each collaborator's map alone")
    .option('--loss <p>', 'each collaborator message is lost with probability p', parseNumberArg('--loss', 0, 1))
    .option('--max-agents <n>', 'at most N collaborators per frame (ranked by grid overlap, then distance)', parseIntArg('--max-agents', 0))
    .option('--budget-bytes <b>', 'at most B bytes of collaborator messages per frame (feature modes need --codec)', parseIntArg('--budget-bytes', 0))
    .option(
      '--modality <m>',
      'lidar | camera (vehicles camera-only, roadside units left out) | both (vehicles LiDAR + cameras, max of the two maps; roadside units LiDAR) | mixed (ego and roadside units LiDAR, every second other vehicle camera-only: see --camera-only)',
      choice('--modality', FLEET_MODALITIES),
      'lidar',
    )
    .option('--camera-only <ids>', "mixed: these agents (comma-separated ids) are the camera-only ones, instead of the vehicles at odd positions (2nd, 4th, …) in the dataset's order", (v: string) => v.split(',').map((id) => id.trim()).filter(Boolean))
    .option('--drop-camera-only', 'mixed: leave the camera-only agents out (the same fleet without them: what they add)')
    .option('--models <manifest>', 'the model manifest', DEFAULT_MANIFEST)
    .option('--device <d>', 'cpu | cuda | auto (auto falls back to the CPU and says so)', choice('--device', DEVICE_OPTIONS), 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', parseIntArg('--threads', 1))
    .option('--workers <n>', 'intermediate / hybrid: encode a frame\'s LiDAR agents on N worker threads at once, each with its own ONNX Runtime sessions (--threads each); 0 = one after another on the main thread', parseIntArg('--workers', 0), 0)
    .option('--precision <p>', 'float32 | int8 (the manifest\'s int8 LiDAR backbone and detection head: models/README.md "int8 variant")', choice('--precision', PRECISIONS), 'float32')
    .option('--noisy-poses', 'align with the GPS-noisy poses the dataset records instead of the true ones')
    .option('--order <o>', 'AP ranking: global (all detections by score) | frame (original OpenCOOD tables)', choice('--order', ['global', 'frame'] as const), 'global')
    .option(
      '--gt-visibility <v>',
      'none (OpenCOOD: every labelled vehicle within 70 m is scored) | ego (boxes no return of the ego\'s LiDAR hits are ignored, as VOC "difficult": the ego-only ceiling) | any (likewise for every agent in range)',
      choice('--gt-visibility', GROUND_TRUTH_VISIBILITIES),
      'none',
    )
    .option('--frames <n>', 'only the first N frames of each scenario (counted from --from-frame)', parseIntArg('--frames', 1))
    .option('--from-frame <i>', 'start at frame i of each scenario (e.g. so that every latency has an earlier frame)', parseIntArg('--from-frame', 0), 0)
    .option('--skip-missing', 'leave out frames whose files are absent')
    .option('--json', 'print one JSON object: ap (vehicle AP by IoU threshold), byClass, frames, timings, …')
    .action(
      action(async (datasetPath: string, o: DetectOptions) => {
        if ((o.cameraOnly || o.dropCameraOnly) && o.modality !== 'mixed') {
          throw new UserInputError(`--camera-only and --drop-camera-only apply to --modality mixed, not ${o.modality}`);
        }
        const ds = await openDataset(datasetPath, { skipMissing: o.skipMissing });
        const models = await PerceptionModels.load(o.models, { device: o.device, threads: o.threads, precision: o.precision });
        let camera: CameraEncoder | undefined;
        try {
          if (o.modality !== 'lidar') {
            if (!models.manifest.camera) {
              throw new UserInputError(`--modality ${o.modality}: ${models.manifest.source} ships no camera encoder (models.camera_backbone, models.camera_lift); use --modality lidar`);
            }
            camera = await CameraEncoder.load(models.manifest, { device: models.provider, threads: o.threads });
          }
        } catch (err) {
          await models.dispose();
          throw err;
        }
        const sensors = camera
          ? { encoder: new AgentSensorEncoder(models.lidar, camera), plan: { modality: o.modality, cameraOnly: o.cameraOnly, dropCameraOnly: o.dropCameraOnly } }
          : undefined;
        if (models.notice) process.stderr.write(`v2xfuse: ${models.notice}\n`);
        // intermediate: the trained attention when the manifest has it, else max.
        const fusionMode: FusionMode = o.fusion === 'intermediate' ? (models.attention ? 'attention' : 'max') : o.fusion;
        // Say what --compensate does here rather than let it pass for more than it is.
        if (o.compensate && !o.latencyMs) process.stderr.write('v2xfuse: --compensate has nothing to do without --latency-ms\n');
        else if (o.compensate && (fusionMode === 'early' || fusionMode === 'none')) {
          process.stderr.write(`v2xfuse: --compensate with --fusion ${fusionMode}: old messages are aligned with the sender's capture-time pose (as without it); moving objects are moved in late and feature fusion only\n`);
        }
        // Worker threads only where they encode (feature fusion); the pool loads the same resolved manifest.
        const encoderPool = o.workers > 0 && ['intermediate', 'max', 'mean', 'attention', 'hybrid'].includes(o.fusion)
          ? await LidarEncoderPool.start(models.manifest, { workers: o.workers, threads: o.threads, device: models.provider })
          : undefined;
        try {
          const detector = new CooperativeDetector(models, fusionMode, {
            encoderPool,
            noisyPoses: o.noisyPoses,
            featureCodec: o.codec,
            lateMerge: o.lateMerge,
            poseNoise: o.poseNoise,
            seed: o.seed,
            latencyMs: o.latencyMs,
            compensate: o.compensate,
            consistencyCheck: o.consistencyCheck,
            lossProbability: o.loss,
            maxAgents: o.maxAgents,
            budgetBytes: o.budgetBytes,
            sensors,
          });
          const perFrame: ({ scenario: string; index: number } & FrameLinks)[] = [];
          const acc = new ClassAwareApAccumulator(undefined, models.manifest.anchors.map((a) => a.cls));
          const timings: Record<string, number[]> = {};
          const bytes: Record<string, number[]> = {};
          let frames = 0, detections = 0, agentsUsed = 0, droppedPillars = 0;
          const egos: string[] = [];
          const total = ds.scenarios.reduce((n, s) => n + Math.max(0, Math.min(s.frameCount - o.fromFrame, o.frames ?? Infinity)), 0);
          const bar = progressBar('detect', 'frames');
          try {
            for (const seq of ds.scenarios) {
              const egoId = o.ego ?? seq.agents[0]?.id;
              if (!seq.agents.some((a) => a.id === egoId)) {
                throw new UserInputError(`--ego ${egoId}: no such agent in scenario ${seq.name} (agents: ${seq.agents.map((a) => a.id).join(', ')})`);
              }
              egos.push(`${seq.name}:${egoId}`);
              const run = await evaluateSequence(seq, detector, egoId, acc, { maxFrames: o.frames, firstFrame: o.fromFrame, gtVisibility: o.gtVisibility, onFrame: () => bar.update(++frames, total) });
              detections += run.detections;
              agentsUsed += run.agents;
              for (const [k, v] of Object.entries(run.timings)) (timings[k] ??= []).push(...v);
              for (const [id, v] of Object.entries(run.bytes)) (bytes[`${seq.name}:${id}`] ??= []).push(...v);
              droppedPillars += run.droppedPillars;
              for (const f of run.perFrame) perFrame.push({ scenario: seq.name, ...f });
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
            ...(o.modality === 'mixed' ? { cameraOnly: o.cameraOnly ?? 'odd-position vehicles', dropCameraOnly: !!o.dropCameraOnly } : {}),
            order: o.order,
            gtVisibility: o.gtVisibility,
            modelId: models.manifest.modelId,
            precision: models.manifest.precision,
            int8Models: models.manifest.int8Roles,
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
            impairments: {
              poseNoise: o.poseNoise ?? null,
              latencyMs: o.latencyMs ?? 0,
              compensate: !!o.compensate,
              consistencyCheck: !!o.consistencyCheck,
              loss: o.loss ?? 0,
              seed: o.seed,
              maxAgents: o.maxAgents ?? null,
              budgetBytes: o.budgetBytes ?? null,
              lateMerge: o.lateMerge ?? (fusionMode === 'late' || fusionMode === 'hybrid' ? 'nms' : null),
              codec: fusionMode === 'hybrid' ? (o.codec ?? DEFAULT_HYBRID_CODEC) : (o.codec ?? null),
            },
            meanCollaboratorsPerFrame: frames ? perFrame.reduce((a, f) => a + f.used.length, 0) / frames : 0,
            meanCollaboratorBytesPerFrame: frames ? perFrame.reduce((a, f) => a + f.collaboratorBytes, 0) / frames : 0,
            // Which collaborators in range were fused each frame, and why the others were not.
            perFrame,
          };
          if (o.json) {
            process.stdout.write(JSON.stringify(report, null, 2) + '\n');
            return;
          }
          const f = (x: number) => (Number.isNaN(x) ? '  n/a' : x.toFixed(3));
          const lines = [
            `${ds.format} ${ds.root}: ${frames} frames, ego ${egos.join(' ')}, fusion ${fusionMode}, modality ${o.modality}${o.modality === 'mixed' ? ` (camera-only: ${o.cameraOnly?.join(',') ?? 'odd-position vehicles'}${o.dropCameraOnly ? ', left out' : ''})` : ''}, ${report.meanAgentsPerFrame.toFixed(1)} agents per frame, model ${report.modelId} on ${report.provider}`,
            `AP (BEV, ${o.order} order${o.gtVisibility === 'none' ? '' : `, boxes unseen by ${o.gtVisibility === 'ego' ? 'the ego' : 'every agent'} ignored`})   @0.3    @0.5    @0.7     gt`,
          ];
          for (const [cls, r] of Object.entries(report.byClass)) {
            lines.push(`  ${cls.padEnd(22)} ${f(r['0.3'].ap)}   ${f(r['0.5'].ap)}   ${f(r['0.7'].ap)}   ${r['0.5'].gt}`);
          }
          if (perFrame.some((f) => f.skipped.length)) {
            const why: Record<string, number> = {};
            for (const f of perFrame) for (const k of f.skipped) why[k.reason] = (why[k.reason] ?? 0) + 1;
            lines.push(`collaborators per frame: ${report.meanCollaboratorsPerFrame.toFixed(2)} fused; skipped: ${Object.entries(why).map(([r, n]) => `${r} ${n}`).join(', ')} (over ${frames} frames)`);
          }
          if (report.meanCollaboratorBytesPerFrame > 0) lines.push(`collaborator message bytes per frame (fused or lost, not skipped): mean ${report.meanCollaboratorBytesPerFrame.toFixed(0)}`);
          if (report.bytes) lines.push(`message bytes per agent per frame: mean ${report.bytes.meanPerAgentPerFrame.toFixed(0)} (${Object.entries(report.bytes.meanByAgent).map(([id, b]) => `${id} ${b.toFixed(0)}`).join(', ')})`);
          lines.push(`median ms per frame: ${Object.entries(report.timingsMsMedian).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
          process.stdout.write(lines.join('\n') + '\n');
        } finally {
          await Promise.all([models.dispose(), camera?.dispose(), encoderPool?.dispose()]);
        }
      }),
    );
}
