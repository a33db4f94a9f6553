// `v2xfuse run`: a whole cooperative-perception deployment on one machine. It starts the broker (embedded, or
// uses the one given), one process per agent and one for the fusion node, replays a sequence through them,
// listens to the fused results like any other subscriber, scores them against the dataset's ground truth and
// writes the report. The processes talk only over MQTT, as they would on separate machines.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDataset } from '../datasets/index.ts';
import { ClassAwareApAccumulator } from '../eval/index.ts';
import { gridEvalRange } from '../fusion/index.ts';
import { type FusionResult, type TrustedKey, decodeHeader, decodeMessage, generateSigningKey, nsFromWire, trustListJson, wire } from '../messages/index.ts';
import { loadManifest } from '../perception/index.ts';
import type { AgentNodeSummary } from './agent-node.ts';
import { startEmbeddedBroker } from './broker.ts';
import type { FusionNodeSummary, NodeFusionMode } from './fusion-node.ts';
import { MqttLink } from './mqtt-link.ts';
import { SessionRecorder } from './recorder.ts';
import { epochNowNs } from './clock.ts';
import { pickScenario } from './replay.ts';
import { type RunReport, buildRunReport } from './report.ts';
import { type ScoredFrame, scoreFusionResults } from './score.ts';
import { agentKindFilter, fusionResultsFilter, parseTopic, replayStartTopic, replayTickTopic } from './topics.ts';


const CLI = fileURLToPath(new URL('../../bin/v2xfuse.js', import.meta.url));

export interface RunOptions {
  dataset: string;
  scenario?: string;
  ego?: string;
  mode: NodeFusionMode;
  /** Collaborators' codec. */
  codec?: string;
  /** The ego agent's feature codec towards its own fusion node: default raw as fast as possible (rateHz 0), int8 paced. */
  egoCodec?: string;
  /** 'embedded' starts an aedes broker in this process on a free loopback port. */
  broker: string;
  /** Replay rate, Hz. 0 (the default: CPU encoders are slower than 10 Hz) = lockstep as fast as the machine goes:
   * every agent takes frame i when the run's replay clock says i, and frame i + 1 when the fusion node has
   * answered frame i, so latency is per frame (synchronised sensors), not per queue. */
  rateHz: number;
  /**
   * Paced replay only: the collaborators encode every frame before the replay starts and publish each when it is
   * due plus the time its encoding took (agent --preencode), as agents with computers of their own would. The ego
   * agent and the fusion node run live, so the latency measured is the ego vehicle's on this machine.
   */
  preencodeCollaborators?: boolean;
  /** Paced replay only: live agents skip a frame when the next one is already due (agent --latest-only). The ego's
   * skipped frames count as frames with no result ('behind-sensor'), all misses. */
  latestOnly?: boolean;
  maxFrames?: number;
  models: string;
  device?: string;
  threads?: number;
  /** Every node's model precision (agent and fusion --precision): float32 (default) or int8. */
  precision?: 'float32' | 'int8';
  deadlineMs?: number;
  skipMissing?: boolean;
  noisyPoses?: boolean;
  /** The fusion node's predictor and tracker motion model (see FusionNodeOptions). */
  predictor?: 'learned' | 'cv' | 'ctrv' | 'none';
  motion?: 'cv' | 'ctrv';
  combine?: 'attention' | 'max' | 'mean';
  /** The fusion node moves moving objects' features in collaborator maps captured before the ego frame (fusion --compensate). */
  compensate?: boolean;
  lateMerge?: 'nms' | 'wbf';
  consistencyCheck?: boolean;
  /** The fusion node's confidence map stride (FusionNodeOptions.confidenceMapStride). */
  confidenceMapStride?: number;
  /** Collaborators that encode their cameras only (agent --modality camera): a mixed fleet. */
  cameraOnly?: string[];
  /** Every agent signs with a key made for this run; the fusion node refuses whatever does not verify. */
  sign?: boolean;
  /** Record every message of the run, with the dataset's points, images and ground truth, into this MCAP file. */
  record?: string;
  onProgress?: (fused: number, total: number) => void;
  log?: (line: string) => void;
}

export class RunError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'RunError';
  }
}

interface Child {
  name: string;
  proc: ChildProcess;
  exited: Promise<number>;
  stderr: string;
}

function startChild(name: string, args: string[], log: (line: string) => void): Child {
  const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const child: Child = { name, proc, stderr: '', exited: undefined as never };
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (chunk: string) => {
    child.stderr += chunk;
    // Keep only the tail: a long replay must not grow this without bound.
    if (child.stderr.length > 64_000) child.stderr = child.stderr.slice(-32_000);
  });
  child.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
  void log;
  return child;
}

function waitForLine(child: Child, needle: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (child.stderr.includes(needle)) {
        cleanup();
        resolve();
      }
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new RunError(`${child.name} did not start within ${timeoutMs / 1000} s: ${lastLine(child.stderr) || 'no output'}`));
    }, timeoutMs);
    const onExit = (code: number) => {
      cleanup();
      reject(new RunError(`${child.name} exited with code ${code} while starting: ${lastLine(child.stderr) || 'no output'}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.proc.stderr!.off('data', check);
      child.proc.off('exit', onExit);
    };
    child.proc.stderr!.on('data', check);
    child.proc.on('exit', onExit);
    check();
  });
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter((l) => l.trim() && !l.includes('\r')).pop()?.trim() ?? '';
}

export async function runDeployment(o: RunOptions): Promise<RunReport> {
  const log = o.log ?? (() => {});
  const t0 = performance.now();
  const ds = await openDataset(o.dataset, { skipMissing: o.skipMissing });
  const seq = pickScenario(ds.scenarios, o.scenario, ds.root);
  const egoId = o.ego ?? seq.agents[0]?.id;
  if (!seq.agents.some((a) => a.id === egoId)) throw new RunError(`--ego ${egoId}: no such agent in ${seq.name} (agents: ${seq.agents.map((a) => a.id).join(', ')})`);
  const collaborators = o.mode === 'none' ? [] : seq.agents.filter((a) => a.id !== egoId).map((a) => a.id);
  for (const id of o.cameraOnly ?? []) {
    if (!collaborators.includes(id)) throw new RunError(`--camera-only ${id}: not a collaborator of ego ${egoId} in ${seq.name} (collaborators: ${collaborators.join(', ') || 'none'})`);
  }
  const manifest = await loadManifest(o.models);
  const frames = Math.min(seq.frameCount, o.maxFrames ?? Infinity);

  const work = await mkdtemp(join(tmpdir(), 'v2xfuse-run-'));
  const embedded = o.broker === 'embedded' ? await startEmbeddedBroker({ host: '127.0.0.1', port: 0 }) : undefined;
  const brokerUrl = embedded?.url ?? o.broker;
  const session = `run-${randomBytes(4).toString('hex')}`;
  const children: Child[] = [];
  let results: MqttLink | undefined;
  let recorder: SessionRecorder | undefined;
  let startPublished = false;
  try {
    // The evaluator subscribes first: nothing the fusion node publishes is missed.
    // It also follows the agents' status, to start a lockstep replay once every agent is running.
    // Results are kept as bytes and decoded once the replay is over: this process is the embedded broker too, and
    // decoded results (thousands of small objects each, with predicted trajectories) kept alive for scoring made
    // every young-generation collection copy them (12–19 ms a collection, up to 51 ms), which delayed the messages the
    // broker was forwarding at the time, the measured latency among them.
    const arrived = new Map<bigint, { payload: Uint8Array; arrivalNs: bigint }>();
    const running = new Set<string>();
    results = await MqttLink.connect({ url: brokerUrl, clientId: `v2xfuse-run-${session}` });
    results.onMessage((topic, payload, arrivalNs) => {
      const parsed = parseTopic(topic);
      try {
        if (parsed?.role === 'agent') {
          if (decodeMessage('status', payload).state === wire.AgentState.AGENT_STATE_RUNNING) running.add(parsed.id);
          return;
        }
        arrived.set(nsFromWire(decodeHeader('result', payload).captureTimeNs), { payload: payload.slice(), arrivalNs });
        o.onProgress?.(arrived.size, frames);
      } catch (err) {
        log(`evaluator: ${(err as Error).message}`);
      }
    });
    await results.subscribe([fusionResultsFilter(session), agentKindFilter(session, 'status')], 1);
    if (o.record) {
      recorder = await SessionRecorder.create(o.record);
      await recorder.follow(brokerUrl, session);
    }

    // Signing: one fresh key per agent, and the trust list the fusion node checks them against.
    const keyArgs = new Map<string, string[]>();
    let trustArgs: string[] = [];
    if (o.sign) {
      const trusted: Record<string, TrustedKey[]> = {};
      for (const id of [egoId, ...collaborators]) {
        const pair = generateSigningKey();
        const keyPath = join(work, `${id}.key.pem`);
        await writeFile(keyPath, pair.privateKeyPem, { mode: 0o600 });
        trusted[id] = [{ keyId: pair.keyId, publicKeyPem: pair.publicKeyPem }];
        keyArgs.set(id, ['--key', keyPath]);
      }
      const trustPath = join(work, 'trust.json');
      await writeFile(trustPath, JSON.stringify(trustListJson(trusted)));
      trustArgs = ['--trust', trustPath, '--require-signatures'];
    }

    const common = ['--broker', brokerUrl, '--session', session, '--models', o.models, ...(o.device ? ['--device', o.device] : []), ...(o.precision ? ['--precision', o.precision] : [])];
    const deadlineMs = o.deadlineMs ?? (o.rateHz > 0 ? 200 : 10_000);
    const fusionMode = o.mode;
    const fusionSummary = join(work, 'fusion.json');
    const startFusionNode = async () => {
      const fusion = startChild('fusion node', [
        'fusion', '--ego', egoId, ...common, '--fusion', fusionMode, '--deadline-ms', String(deadlineMs),
        '--clock', o.rateHz > 0 ? 'wall' : 'replay', '--exit-when-ego-offline', '--summary', fusionSummary,
        ...(collaborators.length ? ['--expect', collaborators.join(',')] : []),
        '--threads', String(o.threads ?? 1), ...trustArgs,
        ...(o.predictor ? ['--predictor', o.predictor] : []), ...(o.motion ? ['--motion', o.motion] : []),
        ...(o.combine ? ['--combine', o.combine] : []), ...(o.compensate ? ['--compensate'] : []), ...(o.lateMerge ? ['--late-merge', o.lateMerge] : []),
        ...(o.consistencyCheck ? ['--consistency-check'] : []),
        ...(o.confidenceMapStride !== undefined ? ['--confidence-map', String(o.confidenceMapStride)] : []),
      ], log);
      children.push(fusion);
      await waitForLine(fusion, 'listening on', 60_000);
    };

    // One epoch for every agent: the same dataset frame carries the same capture time in all their messages.
    // A paced replay starts when every agent says it is ready (loaded, warmed up, preencoded): the run then announces
    // frame 0's capture time (replayStartTopic). A fixed delay was not enough once agents warmed up: four agents
    // and the fusion node starting together on 2 cores took longer than 8 s, and every frame was overdue.
    if (o.preencodeCollaborators && !(o.rateHz > 0)) throw new RunError('preencoding collaborators needs a paced replay (--rate above 0)');
    const startSignal = o.rateHz > 0;
    const preencode = !!o.preencodeCollaborators;
    // A paced replay starts its fusion node last, once the agents are ready: started first, it sat idle while they
    // warmed up (a minute when collaborators preencode), V8 shrank its heap back meanwhile (the memory reducer), and
    // the first frames paid for growing it again. Agents publish nothing but their (retained) status before the start.
    if (!startSignal) await startFusionNode();
    let epochNs = epochNowNs();
    if (!startSignal) await recorder?.recordSequence(seq, { frames, egoId, epochNs });
    // As fast as possible = lockstep: the ego's frames, with the capture times its agent will stamp (replay.ts).
    const lockstep = o.rateHz === 0;
    const schedule: { index: number; captureNs: bigint }[] = [];
    if (lockstep) {
      const t0 = (await seq.frame(0)).timestampNs;
      for (let i = 0; i < frames; i++) {
        const ego = (await seq.frame(i)).agents.find((a) => a.agentId === egoId);
        if (ego) schedule.push({ index: i, captureNs: epochNs + BigInt(Math.round(Number(ego.timestampNs - t0))) });
      }
    }
    const waitUntilRunning = async (agentIds: string[]) => {
      const until = performance.now() + 600_000;
      while (!agentIds.every((id) => running.has(id))) {
        const failed = children.find((c) => c.proc.exitCode !== null && c.proc.exitCode !== 0);
        if (failed) throw new RunError(`${failed.name} failed: ${lastLine(failed.stderr) || 'no output'}`);
        if (performance.now() > until) throw new RunError(`agents not ready after 600 s: ${agentIds.filter((id) => !running.has(id)).join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const agentMode = o.mode === 'none' ? 'intermediate' : o.mode;
    const agentSummaries = new Map<string, string>();
    for (const id of preencode ? [...collaborators, egoId] : [egoId, ...collaborators]) {
      const summaryPath = join(work, `agent-${id}.json`);
      agentSummaries.set(id, summaryPath);
      // The ego's own features never leave the vehicle's computer, so they reach its fusion node whole: raw as fast
      // as the machine goes (the node then fuses exactly what the in-process detector fuses), int8 in a paced replay,
      // where pushing 4 MB through the broker ten times a second cost the ego agent more than its encoder did (it
      // fell 2 s behind over 60 frames; 1 MB of int8 keeps up, and int8 costs no measurable AP).
      // A hybrid ego sends its full features only: nothing of its own is left out for an object list to cover.
      const mode = id === egoId && agentMode === 'hybrid' ? 'intermediate' : agentMode;
      const egoCodec = o.egoCodec ?? (o.rateHz > 0 ? 'int8' : 'raw');
      const codec = mode === 'intermediate' || mode === 'hybrid' ? (id === egoId ? egoCodec : o.codec) : mode === 'early' ? o.codec : undefined;
      children.push(
        startChild(`agent ${id}`, [
          'agent', '--id', id, '--source', ds.root, '--scenario', seq.name, ...common, '--fusion', mode,
          ...(codec ? ['--codec', codec] : []), '--rate', String(o.rateHz), ...(startSignal ? [] : ['--epoch-ns', epochNs.toString()]),
          ...(lockstep ? ['--lockstep'] : []),
          ...(startSignal ? ['--wait-start'] : []), ...(preencode && id !== egoId ? ['--preencode'] : []),
          ...(o.latestOnly && o.rateHz > 0 && !(preencode && id !== egoId) ? ['--latest-only'] : []),
          ...(o.maxFrames ? ['--frames', String(o.maxFrames)] : []), ...(o.skipMissing ? ['--skip-missing'] : []),
          ...(o.noisyPoses ? ['--noisy-poses'] : []),
          ...(o.cameraOnly?.includes(id) ? ['--modality', 'camera'] : []),
          // The consistency check's ghost test needs the ego's free space (LiDAR agents; late, intermediate, hybrid).
          ...(o.consistencyCheck && id === egoId && o.mode !== 'none' && o.mode !== 'early' && !o.cameraOnly?.includes(id) ? ['--free-space'] : []),
          '--threads', String(o.threads ?? 1), '--summary', summaryPath, ...(keyArgs.get(id) ?? []),
        ], log),
      );
      // Preencoding collaborators take turns: each one's encoding times stand for a computer of its own, so they
      // must not be measured while the others encode beside it.
      if (preencode && id !== egoId) await waitUntilRunning([id]);
    }

    if (startSignal) {
      await waitUntilRunning([egoId, ...collaborators]);
      await startFusionNode();
      epochNs = epochNowNs() + 1_000_000_000n;
      await recorder?.recordSequence(seq, { frames, egoId, epochNs });
      await results.publish(replayStartTopic(session), new TextEncoder().encode(epochNs.toString()), { qos: 1, retain: true });
      startPublished = true;
    }

    if (lockstep) {
      // The replay clock: frame i for every agent at once; the next frame when the fusion node has answered.
      const failure = () => children.find((c) => c.proc.exitCode !== null && c.proc.exitCode !== 0);
      const waitFor = async (done: () => boolean, timeoutMs: number) => {
        const until = performance.now() + timeoutMs;
        while (!done()) {
          const failed = failure();
          if (failed) throw new RunError(`${failed.name} failed: ${lastLine(failed.stderr) || 'no output'}`);
          if (performance.now() > until) return false;
          await new Promise((r) => setTimeout(r, 20));
        }
        return true;
      };
      const agentIds = [egoId, ...collaborators];
      if (!(await waitFor(() => agentIds.every((id) => running.has(id)), 120_000))) {
        throw new RunError(`agents not running after 120 s: ${agentIds.filter((id) => !running.has(id)).join(', ')}`);
      }
      const tickTopic = replayTickTopic(session);
      for (const f of schedule) {
        await results.publish(tickTopic, new TextEncoder().encode(String(f.index)), { qos: 1, retain: true });
        // A frame the fusion node never answers (it failed on it) must not stall the replay for good.
        await waitFor(() => arrived.has(f.captureNs), deadlineMs + 60_000);
      }
    }

    const codes = await Promise.all(children.map((c) => c.exited));
    const failed = children.filter((_, k) => codes[k] !== 0);
    if (failed.length) {
      throw new RunError(failed.map((c) => `${c.name} failed: ${lastLine(c.stderr) || 'no output'}`).join('; '));
    }
    // Results the fusion node published last may still be in flight to the evaluator.
    await new Promise((r) => setTimeout(r, 200));
    if (recorder) {
      const recording = await recorder.close();
      log(`recorded ${Object.values(recording.messages).reduce((a, b) => a + b, 0)} messages (${(recording.bytes / 1e6).toFixed(1)} MB, zstd chunks) into ${recording.path}${recording.imagesMissing ? `; ${recording.imagesMissing} camera images the dataset lists are not there, left out` : ''}`);
    }

    const agents: AgentNodeSummary[] = [];
    for (const [, path] of agentSummaries) agents.push(JSON.parse(await readFile(path, 'utf8')) as AgentNodeSummary);
    const fusionNode = JSON.parse(await readFile(fusionSummary, 'utf8')) as FusionNodeSummary;

    // Score: every ego frame the ego agent published counts, fused or not (a frame with no result is all misses).
    const ego = agents.find((a) => a.agentId === egoId)!;
    const acc = new ClassAwareApAccumulator(undefined, manifest.anchors.map((a) => a.cls));
    const evalRange = gridEvalRange(manifest.grid);
    const endToEndMs: number[] = [];
    const resultBytes: number[] = [];
    const confidenceMapBytes: number[] = [];
    const framesUsed: Record<string, number> = {};
    const extraDropped: Record<string, number> = {};
    const scored: ScoredFrame[] = [];
    // Frames the ego agent skipped, behind its sensor (latestOnly), had no result: scored as such, in frame order.
    for (const s of ego.skipped ?? []) scored.push({ index: s.index, captureNs: BigInt(s.captureNs), result: undefined });
    if (ego.skipped?.length) extraDropped['behind-sensor'] = ego.skipped.length;
    // A result that does not decode counts as none (and is said).
    const decodeResult = (payload: Uint8Array): FusionResult | undefined => {
      try {
        return decodeMessage('result', payload);
      } catch (err) {
        log(`evaluator: ${(err as Error).message}`);
        return undefined;
      }
    };
    for (const f of ego.perFrame) {
      const got = arrived.get(BigInt(f.captureNs));
      const result = got && decodeResult(got.payload);
      scored.push({ index: f.index, captureNs: BigInt(f.captureNs), result });
      if (!got || !result) {
        extraDropped['no-result'] = (extraDropped['no-result'] ?? 0) + 1;
        continue;
      }
      // Paced, capture times are wall-clock times: from the capture, so an agent running behind its sensor shows
      // in the latency. In lockstep they are a replay clock: from when the agent took the frame.
      endToEndMs.push(Number(got.arrivalNs - BigInt(o.rateHz > 0 ? f.captureNs : f.startWallNs)) / 1e6);
      resultBytes.push(got.payload.byteLength);
      if (result.confidenceMap) confidenceMapBytes.push(wire.ConfidenceMap.encode(result.confidenceMap).finish().byteLength);
      for (const c of result.contributions) {
        if (c.used) framesUsed[c.agentId ?? ''] = (framesUsed[c.agentId ?? ''] ?? 0) + 1;
        else if (c.refusedReason) extraDropped[c.refusedReason] = (extraDropped[c.refusedReason] ?? 0) + 1;
      }
    }
    scored.sort((a, b) => a.index - b.index);
    const { tracking, prediction } = await scoreFusionResults(seq, egoId, scored, evalRange, acc);
    const result = acc.result('global');
    return buildRunReport({
      dataset: ds.root,
      scenario: seq.name,
      ego: egoId,
      fusion: o.mode,
      codec: agentMode === 'late' ? 'objects' : agents.find((a) => a.agentId !== egoId)?.codec ?? ego.codec,
      broker: embedded ? `embedded ${brokerUrl}` : brokerUrl,
      frames: ego.perFrame.length + (ego.skipped?.length ?? 0),
      agents,
      fusionNode,
      ap: Object.fromEntries(Object.entries(result.vehicle).map(([k, v]) => [k, v.ap])),
      byClass: Object.fromEntries(
        Object.entries(result.byClass).map(([cls, r]) => [cls, Object.fromEntries(Object.entries(r!).map(([k, v]) => [k, { ap: v.ap, tp: v.tp, fp: v.fp, gt: v.gt }]))]),
      ),
      endToEndMs,
      resultBytes,
      confidenceMapBytes,
      framesUsed,
      extraDropped,
      tracking,
      prediction,
      wallSeconds: (performance.now() - t0) / 1000,
    });
  } finally {
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGTERM');
    // A retained start left on a shared broker would start the next agent that waits on this session at once.
    if (startPublished) await results?.publish(replayStartTopic(session), new Uint8Array(0), { qos: 1, retain: true }).catch(() => {});
    await results?.end().catch(() => {});
    await recorder?.close().catch(() => {});
    await embedded?.close();
    await rm(work, { recursive: true, force: true });
  }
}
