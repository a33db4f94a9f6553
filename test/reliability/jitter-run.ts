// Ego frames fused under network jitter: a real Mosquitto, the fault proxy between it and the fusion node delaying
// every object list by a uniform 0..maxDelay ms (nothing lost, doubled or explicitly reordered: the order changes
// only because later messages overtake earlier ones), three simulated agents at 10 Hz (sim-agents.ts) and the
// late-fusion node in this process. Shared by test/reliability/jitter.test.ts and tools/reliability/jitter.ts.
import { resolve } from 'node:path';
import { nsFromWire } from '../../src/messages/index.ts';
import { FaultProxy, type FusionNodeSummary, runFusionNode } from '../../src/transport/index.ts';
import { projectRoot } from '../cli/helpers.ts';
import { startControlledMosquitto } from './mosquitto-broker.ts';
import { SimAgent, groundTruthObjects, manifestModelId, runTicker } from './sim-agents.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const MODELS = resolve(projectRoot, 'models/manifest.json');
const USERS: Record<string, string> = { '100': 'pw-100', '101': 'pw-101', '-1': 'pw-rsu', fusion: 'pw-fusion' };
const AGENTS = ['100', '101', '-1'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface JitterResult {
  maxDelayMs: number;
  seconds: number;
  /** Ego object lists published, and how many of them the fusion node fused (one result each). */
  egoPublished: number;
  egoFused: number;
  /** Ego frames the gate refused as replays (overtaken, under a strict order). */
  egoReplays: number;
  /** Collaborators fused per result, mean (2 at most here). */
  collaboratorsPerResult: number;
  /** Results whose capture time is earlier than the one published before it. */
  outOfOrderResults: number;
  dropped: Record<string, number>;
  summary: FusionNodeSummary;
}

export async function runJitter(o: { maxDelayMs: number; seconds: number; seed?: number; deadlineMs?: number; tracking?: boolean; log?: (line: string) => void }): Promise<JitterResult> {
  const broker = await startControlledMosquitto(USERS);
  const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: broker.port }, seed: o.seed ?? 7 });
  const session = `jitter-${o.maxDelayMs}`;
  const [frames, modelId] = await Promise.all([groundTruthObjects(FIXTURE), manifestModelId(MODELS)]);
  const controller = new AbortController();
  const captures: bigint[] = [];
  let collaboratorsUsed = 0;
  let listening!: () => void;
  const ready = new Promise<void>((r) => (listening = r));
  const fusion = runFusionNode({
    egoId: '100', fusionId: 'fusion', username: 'fusion', password: USERS.fusion, session, broker: proxy.url, mode: 'late', models: MODELS,
    deadlineMs: o.deadlineMs ?? 200, clock: 'wall', tracking: o.tracking ?? false, predictor: 'none', exitWhenEgoOffline: true, signal: controller.signal,
    log: (line) => (line.includes('listening on') ? listening() : o.log?.(line)),
    onResult: (result) => {
      captures.push(nsFromWire(result.header!.captureTimeNs));
      collaboratorsUsed += (result.contributions ?? []).filter((c) => c.used && c.agentId !== '100').length;
    },
  });
  await Promise.race([ready, fusion]);
  const agents: SimAgent[] = [];
  try {
    proxy.setFaults({ delayMs: [0, o.maxDelayMs], topicFilter: (t) => t.endsWith('/objects') });
    for (const id of AGENTS) agents.push(await SimAgent.start({ id, session, url: broker.url, username: id, password: USERS[id], modelId, frames: frames.get(id)! }));
    const ticker = runTicker(() => agents, 100);
    await sleep(o.seconds * 1000);
    ticker.stop();
    await sleep(o.maxDelayMs + 300); // what is still held in the proxy arrives
    for (const a of agents) await a.finish();
    const summary = await fusion;
    let outOfOrder = 0;
    for (let i = 1; i < captures.length; i++) if (captures[i]! < captures[i - 1]!) outOfOrder++;
    return {
      maxDelayMs: o.maxDelayMs, seconds: o.seconds, egoPublished: agents[0]!.published, egoFused: summary.framesFused,
      egoReplays: summary.droppedByAgent['100']?.replay ?? 0, collaboratorsPerResult: captures.length ? collaboratorsUsed / captures.length : NaN, outOfOrderResults: outOfOrder, dropped: summary.dropped, summary,
    };
  } finally {
    controller.abort();
    await Promise.all(agents.map((a) => a.link.end().catch(() => {})));
    await proxy.close();
    await broker.stop();
  }
}
