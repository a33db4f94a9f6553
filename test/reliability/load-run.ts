// Load on one Mosquitto: N simulated agents publishing object lists at 10 Hz (sim-agents.ts), consumed either by
// one real fusion node (late fusion, ego = the first agent, waiting for all the others) or by two subscribers
// that share the stream through an MQTT 5 shared subscription ($share/fusion/...), each admitting every message
// through its own MessageGate. Measures what arrives and how late; asserts nothing about speed (the callers
// print the numbers: tools/reliability/load.ts, test/reliability/load.test.ts).
import { resolve } from 'node:path';
import { MessageGate, nsFromWire } from '../../src/messages/index.ts';
import { MqttLink, agentKindFilter, epochNowNs, percentiles, runFusionNode } from '../../src/transport/index.ts';
import { startControlledMosquitto } from './mosquitto-broker.ts';
import { type AgentFrameObjects, SimAgent, groundTruthObjects, manifestModelId, runTicker } from './sim-agents.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURE = resolve(ROOT, 'datasets/fixture/fixture-s1');
const MODELS = resolve(ROOT, 'models/manifest.json');

export interface LoadResult {
  agents: number;
  seconds: number;
  published: number;
  /** Messages per second the agents put out. */
  offeredPerS: number;
  /** fusion: fused frames per second; shared: messages admitted per second by both subscribers together. */
  deliveredPerS: number;
  /** fusion: capture → result published, ms; shared: send → admitted, ms. */
  latencyMs: { p50: number; p95: number; p99: number };
  /** fusion: mean collaborators fused per frame (of agents − 1). */
  collaboratorsPerFrame?: number;
  /** shared: messages each subscriber got. */
  perSubscriber?: number[];
  dropped: Record<string, number>;
}

async function fleet(n: number, session: string, url: string, passwords: Record<string, string>): Promise<SimAgent[]> {
  const [frames, modelId] = await Promise.all([groundTruthObjects(FIXTURE), manifestModelId(MODELS)]);
  const sources: AgentFrameObjects[][] = [...frames.values()];
  const ids = Array.from({ length: n }, (_, i) => `a${String(i).padStart(3, '0')}`);
  return Promise.all(ids.map((id, i) => SimAgent.start({ id, session, url, username: id, password: passwords[id], modelId, frames: sources[i % sources.length]! })));
}

const p = (v: number[]) => {
  const q = percentiles(v);
  return { p50: q.p50, p95: q.p95, p99: q.p99 };
};

export async function runLoad(o: { agents: number; seconds: number; mode: 'fusion' | 'shared' }): Promise<LoadResult> {
  const users: Record<string, string> = { fusion: 'pw-fusion' };
  for (let i = 0; i < o.agents; i++) users[`a${String(i).padStart(3, '0')}`] = `pw-${i}`;
  const broker = await startControlledMosquitto(users);
  const session = `load${o.agents}`;
  const links: MqttLink[] = [];
  let agents: SimAgent[] = [];
  try {
    if (o.mode === 'fusion') {
      const controller = new AbortController();
      const latencies: number[] = [];
      const used: number[] = [];
      let listening!: () => void;
      const ready = new Promise<void>((r) => (listening = r));
      const fusion = runFusionNode({
        egoId: 'a000', fusionId: 'fusion', username: 'fusion', password: users.fusion, session, broker: broker.url, mode: 'late', models: MODELS,
        deadlineMs: 200, clock: 'wall', tracking: false, exitWhenEgoOffline: true, signal: controller.signal,
        log: (line) => line.includes('listening on') && listening(),
        onResult: (r) => {
          latencies.push(Number(epochNowNs() - nsFromWire(r.header!.captureTimeNs)) / 1e6);
          used.push(r.contributions!.filter((c) => c.used).length - 1);
        },
      });
      await Promise.race([ready, fusion]);
      agents = await fleet(o.agents, session, broker.url, users);
      const ticker = runTicker(() => agents, 100);
      await new Promise((r) => setTimeout(r, o.seconds * 1000));
      ticker.stop();
      await new Promise((r) => setTimeout(r, 300));
      for (const a of agents) await a.finish();
      const summary = await fusion;
      const published = agents.reduce((s, a) => s + a.published, 0);
      return {
        agents: o.agents, seconds: o.seconds, published, offeredPerS: published / o.seconds, deliveredPerS: summary.framesFused / o.seconds,
        latencyMs: p(latencies), collaboratorsPerFrame: used.reduce((s, v) => s + v, 0) / Math.max(1, used.length),
        dropped: { ...summary.dropped, ...Object.fromEntries(Object.entries(summary.unused).length ? [['unused', Object.values(summary.unused).reduce((s, v) => s + v, 0)]] : []) },
      };
    }
    // Two subscribers in one share group: Mosquitto hands each message to one of them.
    const counts = [0, 0];
    const latencies: number[] = [];
    const dropped: Record<string, number> = {};
    for (let k = 0; k < 2; k++) {
      const gate = new MessageGate({ requireSignatures: false, maxAgeMs: 5000 });
      const link = await MqttLink.connect({ url: broker.url, clientId: `fusion-share-${k}`, username: 'fusion', password: users.fusion });
      links.push(link);
      link.onMessage((topic, payload, arrivedNs) => {
        const sender = topic.split('/')[4]!;
        const r = gate.admit('objects', sender, payload, epochNowNs());
        if (!r.ok) {
          dropped[r.reason] = (dropped[r.reason] ?? 0) + 1;
          return;
        }
        counts[k]!++;
        latencies.push(Number(arrivedNs - r.sendTimeNs) / 1e6);
      });
      await link.subscribe(`$share/fusion/${agentKindFilter(session, 'objects')}`, 0);
    }
    agents = await fleet(o.agents, session, broker.url, users);
    const ticker = runTicker(() => agents, 100);
    await new Promise((r) => setTimeout(r, o.seconds * 1000));
    ticker.stop();
    await new Promise((r) => setTimeout(r, 300));
    const published = agents.reduce((s, a) => s + a.published, 0);
    return {
      agents: o.agents, seconds: o.seconds, published, offeredPerS: published / o.seconds, deliveredPerS: (counts[0]! + counts[1]!) / o.seconds,
      latencyMs: p(latencies), perSubscriber: counts, dropped,
    };
  } finally {
    await Promise.all([...agents.map((a) => a.link.end().catch(() => {})), ...links.map((l) => l.end().catch(() => {}))]);
    await broker.stop();
  }
}
