// The deployable processes: `v2xfuse agent`, `v2xfuse fusion`, and `v2xfuse run`, which starts a broker and
// one process per node over a whole sequence and reports accuracy next to bytes, latency and drops.
import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';
import { writeFile } from 'node:fs/promises';
import { DEVICE_OPTIONS, type DeviceOption, PRECISIONS, type Precision } from '../perception/index.ts';
import {
  AGENT_FUSION_MODES,
  type AgentFusionMode,
  NODE_FUSION_MODES,
  type NodeFusionMode,
  formatRunReport,
  runAgentNode,
  runDeployment,
  runFusionNode,
} from '../transport/index.ts';
import { DEFAULT_MANIFEST, choice } from './detect.ts';
import { action } from './failure.ts';
import { progressBar } from './progress.ts';
import { parseIntArg } from './simulate.ts';

function nonNegativeNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a number ≥ 0, got '${value}'`);
    return n;
  };
}

function nanoseconds(value: string): bigint {
  if (!/^\d{1,20}$/.test(value)) throw new InvalidArgumentError(`--epoch-ns must be an integer number of nanoseconds since the Unix epoch, got '${value}'`);
  return BigInt(value);
}

const stderrLog = (line: string) => process.stderr.write(`v2xfuse: ${line}\n`);

/** SIGINT / SIGTERM end a node cleanly (status goes offline, the summary is written) instead of killing it. */
function stopSignal(): AbortSignal {
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return controller.signal;
}

interface AgentCliOptions {
  id: string;
  source: string;
  scenario?: string;
  broker: string;
  session: string;
  username?: string;
  password?: string;
  fusion: AgentFusionMode;
  codec?: string;
  rate: number;
  lockstep?: boolean;
  epochNs?: bigint;
  waitStart?: boolean;
  preencode?: boolean;
  latestOnly?: boolean;
  frames?: number;
  models: string;
  device: DeviceOption;
  threads?: number;
  precision?: Precision;
  skipMissing?: boolean;
  noisyPoses?: boolean;
  modality: 'lidar' | 'camera' | 'both';
  key?: string;
  freeSpace?: boolean;
  summary?: string;
}

const CONFIDENCE_MAP_STRIDES = ['0', '1', '2', '4', '8'] as const;
type ConfidenceMapStride = (typeof CONFIDENCE_MAP_STRIDES)[number];
const CONFIDENCE_MAP_HELP = "the head's confidence in each result, one byte per STRIDE × STRIDE feature cells, deflated: 1 (128 × 128, ~3 kB) | 2 (default, 64 × 64, ~1.3 kB) | 4 | 8 | 0 (none)";

interface FusionCliOptions {
  ego: string;
  id?: string;
  broker: string;
  session: string;
  username?: string;
  password?: string;
  fusion: NodeFusionMode;
  combine?: 'attention' | 'max' | 'mean';
  lateMerge?: 'nms' | 'wbf';
  consistencyCheck?: boolean;
  compensate?: boolean;
  confidenceMap?: ConfidenceMapStride;
  models: string;
  device: DeviceOption;
  threads?: number;
  precision?: Precision;
  deadlineMs: number;
  expect?: string;
  maxOffsetMs: number;
  maxAgeMs?: number;
  maxFutureMs?: number;
  clock: 'wall' | 'replay';
  trust?: string;
  requireSignatures?: boolean;
  key?: string;
  tracking: boolean;
  motion: 'cv' | 'ctrv';
  predictor?: 'learned' | 'cv' | 'ctrv' | 'none';
  exitWhenEgoOffline?: boolean;
  summary?: string;
}

interface RunCliOptions {
  scenario?: string;
  ego?: string;
  fusion: NodeFusionMode;
  codec?: string;
  broker: string;
  rate: number;
  preencodeCollaborators?: boolean;
  latestOnly?: boolean;
  egoCodec?: string;
  frames?: number;
  models: string;
  device: DeviceOption;
  threads?: number;
  precision?: Precision;
  deadlineMs?: number;
  skipMissing?: boolean;
  noisyPoses?: boolean;
  sign?: boolean;
  predictor?: 'learned' | 'cv' | 'ctrv' | 'none';
  motion?: 'cv' | 'ctrv';
  combine?: 'attention' | 'max' | 'mean';
  compensate?: boolean;
  lateMerge?: 'nms' | 'wbf';
  consistencyCheck?: boolean;
  confidenceMap?: ConfidenceMapStride;
  cameraOnly?: string;
  report?: string;
  record?: string;
  json?: boolean;
}

export function registerNodes(program: Command): void {
  program
    .command('agent')
    .description("one agent node: replay an agent's frames, encode them, publish them over MQTT")
    .requiredOption('--id <id>', 'the agent id in the dataset (e.g. 100, or -1 for a roadside unit)')
    .requiredOption('--source <dataset>', 'a dataset folder in any layout inspect reads')
    .option('--scenario <name>', 'which scenario of the dataset (default: the first)')
    .option('--broker <url>', 'MQTT broker URL', 'mqtt://127.0.0.1:1883')
    .option('--session <name>', 'topic namespace shared by the nodes of one deployment', 'default')
    .option('--username <u>', 'MQTT username (Mosquitto with the ACLs of deploy/mosquitto: the agent id)')
    .option('--password <p>', 'MQTT password')
    .option('--fusion <mode>', 'what to send: intermediate (BEV features) | late (object list) | early (points)', choice('--fusion', AGENT_FUSION_MODES), 'intermediate')
    .option('--codec <spec>', 'feature codec (intermediate, default int8+top10%+deflate) or point codec (early, default 1cm+deflate)')
    .option('--rate <hz>', 'replay rate against the recorded times; 0 = as fast as possible', nonNegativeNumber('--rate'), 10)
    .option('--lockstep', 'take frame i only when the replay clock (v2xfuse/v1/<session>/replay/tick) reaches i; with --rate 0')
    .option('--epoch-ns <ns>', 'capture time of the first frame (share it between the agents of one deployment); default now', nanoseconds)
    .addOption(new Option('--wait-start', 'take the first frame\'s capture time from the run\'s start message (v2xfuse/v1/<session>/replay/start) instead of --epoch-ns').conflicts('epochNs'))
    .option('--latest-only', 'with --rate: skip a frame when the next one is already due (a live sensor hands a busy agent its newest scan); the summary lists what was skipped')
    .option('--preencode', 'encode every frame first, then publish each when it is due plus the time its encoding took: an agent with a computer of its own, emulated on a shared machine (with --rate above 0)')
    .option('--frames <n>', 'only the first N frames', parseIntArg('--frames', 1))
    .option('--models <manifest>', 'the model manifest', DEFAULT_MANIFEST)
    .option('--device <d>', 'cpu | cuda | auto', choice('--device', DEVICE_OPTIONS), 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', parseIntArg('--threads', 1))
    .option('--precision <p>', 'float32 | int8 (the manifest\'s int8 LiDAR backbone and detection head, 2.7x faster on CPUs with VNNI; models/README.md)', choice('--precision', PRECISIONS))
    .option('--skip-missing', 'leave out frames whose files are absent')
    .option('--noisy-poses', 'send the GPS-noisy pose the dataset records instead of the true one')
    .option('--modality <m>', 'what makes its BEV features: lidar | camera (its cameras only) | both (element-wise max)', choice('--modality', ['lidar', 'camera', 'both'] as const), 'lidar')
    .option('--key <pem>', 'sign every message with this ECDSA P-256 private key (v2xfuse keygen)')
    .option('--free-space', "late, intermediate, hybrid: send its LiDAR's free-space map with each object list or feature map (the ego agent, for the fusion node's --consistency-check)")
    .option('--summary <file>', 'write what the node measured (bytes, stage times) as JSON when it ends')
    .action(
      action(async (o: AgentCliOptions) => {
        const bar = o.summary ? undefined : progressBar(`agent ${o.id}`, 'frames');
        try {
          const summary = await runAgentNode({
            agentId: o.id, session: o.session, dataset: o.source, scenario: o.scenario, broker: o.broker,
            username: o.username, password: o.password, mode: o.fusion, codec: o.codec, freeSpace: o.freeSpace, rateHz: o.rate, lockstep: o.lockstep,
            epochNs: o.epochNs, waitForStart: o.waitStart, preencode: o.preencode, latestOnly: o.latestOnly, maxFrames: o.frames, models: o.models, device: o.device, threads: o.threads, precision: o.precision,
            skipMissing: o.skipMissing, noisyPoses: o.noisyPoses, modality: o.modality, signingKeyPath: o.key, signal: stopSignal(), log: stderrLog,
            onFrame: (done, total) => bar?.update(done, total),
          });
          if (o.summary) await writeFile(o.summary, JSON.stringify(summary));
          else {
            bar?.stop();
            const sent = Object.values(summary.messageBytes).flat().reduce((a, b) => a + b, 0);
            stderrLog(`agent ${o.id}: ${summary.frames} frames published (${summary.codec}), ${(sent / 1e6).toFixed(2)} MB in all`);
          }
        } finally {
          bar?.stop();
        }
      }),
    );

  program
    .command('fusion')
    .description('the fusion node: receive, verify, decode, align and fuse what the agents send, run the head, publish results')
    .requiredOption('--ego <id>', 'the ego agent whose frames are fused')
    .option('--id <id>', 'this node\'s id in its result topic (its MQTT user name under deploy/mosquitto\'s ACLs); default fusion-<ego>')
    .option('--broker <url>', 'MQTT broker URL', 'mqtt://127.0.0.1:1883')
    .option('--session <name>', 'topic namespace shared by the nodes of one deployment', 'default')
    .option('--username <u>', 'MQTT username')
    .option('--password <p>', 'MQTT password')
    .option('--fusion <mode>', 'none (ego only) | intermediate | late | early', choice('--fusion', NODE_FUSION_MODES), 'intermediate')
    .option('--combine <c>', 'intermediate fusion: attention (default when the models have it) | max | mean', choice('--combine', ['attention', 'max', 'mean'] as const))
    .option('--late-merge <m>', 'late fusion: nms (score-aware, OpenCOOD) | wbf (weighted box fusion)', choice('--late-merge', ['nms', 'wbf'] as const))
    .option('--consistency-check', "leave out collaborators whose objects (late) the ego's and the others' contradict, or whose objects or feature map's own detections (intermediate, hybrid) lie in the ego's free space when its agent sends one (--free-space) (counted as 'inconsistent')")
    .option('--compensate', "intermediate / hybrid: move moving objects' features in a collaborator map captured before the ego frame by their tracked velocity over the gap")
    .option('--confidence-map <stride>', CONFIDENCE_MAP_HELP, choice('--confidence-map', CONFIDENCE_MAP_STRIDES))
    .option('--models <manifest>', 'the model manifest', DEFAULT_MANIFEST)
    .option('--device <d>', 'cpu | cuda | auto', choice('--device', DEVICE_OPTIONS), 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', parseIntArg('--threads', 1))
    .option('--precision <p>', 'float32 | int8 (the manifest\'s int8 LiDAR backbone and detection head, 2.7x faster on CPUs with VNNI; models/README.md)', choice('--precision', PRECISIONS))
    .option('--deadline-ms <ms>', 'how long an ego frame waits for collaborators', nonNegativeNumber('--deadline-ms'), 100)
    .option('--expect <ids>', 'comma-separated collaborators to wait for (default: those whose status says running)')
    .option('--max-offset-ms <ms>', 'use a collaborator message for an ego frame when their capture times differ by at most this', nonNegativeNumber('--max-offset-ms'), 50)
    .option('--max-age-ms <ms>', 'refuse messages captured longer ago than this (stale)', nonNegativeNumber('--max-age-ms'))
    .option('--max-future-ms <ms>', 'refuse messages captured further ahead than this (future)', nonNegativeNumber('--max-future-ms'))
    .option('--clock <c>', "wall (live or paced replay) | replay (as-fast-as-possible replay: the ego's capture times are the clock)", choice('--clock', ['wall', 'replay'] as const), 'wall')
    .option('--trust <file>', 'trust list (v2xfuse keygen): verify signatures against it')
    .option('--require-signatures', 'refuse unsigned messages')
    .option('--key <pem>', 'sign results with this ECDSA P-256 private key')
    .option('--no-tracking', 'publish detections only: no tracks, no predictions')
    .option('--motion <m>', "the tracker's motion model: cv (constant velocity, AB3DMOT's) | ctrv (constant turn rate)", choice('--motion', ['cv', 'ctrv'] as const), 'cv')
    .option('--predictor <p>', 'who predicts each track 3 s ahead: learned (default when the manifest has one) | cv | ctrv | none', choice('--predictor', ['learned', 'cv', 'ctrv', 'none'] as const))
    .option('--exit-when-ego-offline', "stop once the ego's replay has ended and its last frame is fused")
    .option('--summary <file>', 'write what the node measured (drops, stage times) as JSON when it ends')
    .action(
      action(async (o: FusionCliOptions) => {
        const summary = await runFusionNode({
          egoId: o.ego, fusionId: o.id, session: o.session, broker: o.broker, username: o.username, password: o.password,
          mode: o.fusion, combine: o.combine, lateMerge: o.lateMerge, consistencyCheck: o.consistencyCheck, compensate: o.compensate, models: o.models, device: o.device, threads: o.threads, precision: o.precision,
          deadlineMs: o.deadlineMs, expect: o.expect?.split(',').map((s) => s.trim()).filter(Boolean),
          maxOffsetMs: o.maxOffsetMs, maxAgeMs: o.maxAgeMs, maxFutureMs: o.maxFutureMs, clock: o.clock,
          trustPath: o.trust, requireSignatures: o.requireSignatures, signingKeyPath: o.key,
          tracking: o.tracking, motion: o.motion, predictor: o.predictor,
          ...(o.confidenceMap ? { confidenceMapStride: Number(o.confidenceMap) } : {}),
          exitWhenEgoOffline: o.exitWhenEgoOffline, signal: stopSignal(), log: stderrLog,
        });
        if (o.summary) await writeFile(o.summary, JSON.stringify(summary));
        else stderrLog(`fusion node: ${summary.framesFused} frames fused; dropped ${JSON.stringify(summary.dropped)}`);
      }),
    );

  program
    .command('run')
    .description('broker + one process per agent + the fusion node over a sequence; prints and writes a report')
    .argument('<dataset>', 'a dataset folder in any layout inspect reads')
    .option('--scenario <name>', 'which scenario of the dataset (default: the first)')
    .option('--ego <id>', "the ego agent (default: the scenario's first agent)")
    .option('--fusion <mode>', 'none | intermediate | late | early', choice('--fusion', NODE_FUSION_MODES), 'intermediate')
    .option('--codec <spec>', "what collaborators send: a feature codec (intermediate, default int8+top10%+deflate) or point codec (early)")
    .option('--broker <url>', "'embedded' (an in-process broker on a free loopback port) or a broker URL", 'embedded')
    .option('--rate <hz>', 'replay rate; 0 = as fast as the machine goes', nonNegativeNumber('--rate'), 0)
    .option('--ego-codec <spec>', "the ego agent's features towards its own fusion node (default: raw with --rate 0, int8 paced: 4 MB through the broker at 10 Hz costs more than the encoder)")
    .option('--latest-only', 'with --rate: live agents skip a frame when the next one is already due (a sensor\'s queue of one), so a busy agent runs at most a frame behind; skipped ego frames are scored as misses')
    .option('--preencode-collaborators', 'with --rate: collaborators encode every frame first and publish each when due plus its encoding time (agents with computers of their own); the ego agent and the fusion node run live')
    .option('--frames <n>', 'only the first N frames', parseIntArg('--frames', 1))
    .option('--models <manifest>', 'the model manifest', DEFAULT_MANIFEST)
    .option('--device <d>', 'cpu | cuda | auto', choice('--device', DEVICE_OPTIONS), 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads per process', parseIntArg('--threads', 1))
    .option('--precision <p>', 'float32 | int8 (the manifest\'s int8 LiDAR backbone and detection head, 2.7x faster on CPUs with VNNI; models/README.md)', choice('--precision', PRECISIONS))
    .option('--deadline-ms <ms>', 'how long an ego frame waits for collaborators (default 200 paced, 10000 as fast as possible)', nonNegativeNumber('--deadline-ms'))
    .option('--skip-missing', 'leave out frames whose files are absent')
    .option('--noisy-poses', "agents send the dataset's GPS-noisy poses instead of the true ones")
    .option('--combine <c>', 'intermediate fusion in the fusion node: attention (default) | max | mean', choice('--combine', ['attention', 'max', 'mean'] as const))
    .option('--compensate', "intermediate / hybrid: the fusion node moves moving objects' features in a collaborator map captured before the ego frame by their tracked velocity (fusion --compensate)")
    .option('--late-merge <m>', 'late fusion in the fusion node: nms (default) | wbf', choice('--late-merge', ['nms', 'wbf'] as const))
    .option('--consistency-check', "the fusion node leaves out collaborators contradicted by the others or by the ego's free space (late, intermediate, hybrid)")
    .option('--confidence-map <stride>', CONFIDENCE_MAP_HELP, choice('--confidence-map', CONFIDENCE_MAP_STRIDES))
    .option('--camera-only <ids>', 'comma-separated collaborators that encode their cameras only (a mixed fleet; needs a dataset with images)')
    .option('--predictor <p>', "the fusion node's motion predictor: learned (default when the manifest has one) | cv | ctrv | none", choice('--predictor', ['learned', 'cv', 'ctrv', 'none'] as const))
    .option('--motion <m>', "the fusion node's tracker motion model: cv | ctrv", choice('--motion', ['cv', 'ctrv'] as const))
    .option('--sign', 'agents sign every message (ECDSA P-256, a key per agent made for the run); the fusion node refuses what does not verify')
    .option('--report <file>', 'write the report as JSON')
    .option('--record <file.mcap>', 'record every message, with the dataset\'s points, images and ground truth, into an MCAP file (v2xfuse view --recording, Foxglove)')
    .option('--json', 'print the report as JSON on stdout instead of the summary')
    .action(
      action(async (datasetPath: string, o: RunCliOptions) => {
        const bar = progressBar('run', 'frames');
        let report;
        try {
          report = await runDeployment({
            dataset: datasetPath, scenario: o.scenario, ego: o.ego, mode: o.fusion, codec: o.codec, broker: o.broker,
            rateHz: o.rate, preencodeCollaborators: o.preencodeCollaborators, latestOnly: o.latestOnly, egoCodec: o.egoCodec, maxFrames: o.frames, models: o.models, device: o.device, threads: o.threads, precision: o.precision,
            deadlineMs: o.deadlineMs, skipMissing: o.skipMissing, noisyPoses: o.noisyPoses, sign: o.sign, predictor: o.predictor, motion: o.motion, combine: o.combine, compensate: o.compensate, lateMerge: o.lateMerge, consistencyCheck: o.consistencyCheck, ...(o.confidenceMap ? { confidenceMapStride: Number(o.confidenceMap) } : {}), cameraOnly: o.cameraOnly?.split(',').map((x) => x.trim()).filter(Boolean), record: o.record, log: stderrLog,
            onProgress: (done, total) => bar.update(done, total),
          });
        } finally {
          bar.stop();
        }
        if (o.report) await writeFile(o.report, JSON.stringify(report, null, 2) + '\n');
        process.stdout.write(o.json ? JSON.stringify(report, null, 2) + '\n' : formatRunReport(report) + '\n');
      }),
    );
}
