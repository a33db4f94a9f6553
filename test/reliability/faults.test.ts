// Faults on a real Mosquitto with the real fusion node in this process (late fusion), fed by simulated agents that
// send the fixture sequence's ground truth as their object lists at 10 Hz (sim-agents.ts). The fault proxy
// (src/transport/fault-proxy.ts) sits between the broker and the fusion node: what the node receives is lost,
// late, doubled and out of order. The node must keep fusing, count what went wrong, and never stop.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { type FusionResultInit, nsFromWire } from '../../src/messages/index.ts';
import { FaultProxy, type FusionNodeSummary, epochNowNs, runFusionNode } from '../../src/transport/index.ts';
import { projectRoot } from '../cli/helpers.ts';
import { MOSQUITTO_MISSING, findMosquitto, startControlledMosquitto } from './mosquitto-broker.ts';
import { SimAgent, groundTruthObjects, manifestModelId, runTicker } from './sim-agents.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const MODELS = resolve(projectRoot, 'models/manifest.json');
const USERS: Record<string, string> = { '100': 'pw-100', '101': 'pw-101', '-1': 'pw-rsu', fusion: 'pw-fusion' };
const AGENTS = ['100', '101', '-1'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const installed = findMosquitto() !== undefined;
if (!installed && process.env.CI) test('mosquitto is installed', () => assert.fail(MOSQUITTO_MISSING));

interface Harness {
  results: { result: FusionResultInit; atMs: number }[];
  fusion: Promise<FusionNodeSummary>;
  controller: AbortController;
}

async function startFusion(url: string, session: string, extra: Partial<Parameters<typeof runFusionNode>[0]> = {}): Promise<Harness> {
  const controller = new AbortController();
  const results: Harness['results'] = [];
  let listening!: () => void;
  const ready = new Promise<void>((r) => (listening = r));
  const fusion = runFusionNode({
    egoId: '100', fusionId: 'fusion', username: 'fusion', password: USERS.fusion, session, broker: url, mode: 'late', models: MODELS,
    deadlineMs: 200, clock: 'wall', tracking: false, exitWhenEgoOffline: true, signal: controller.signal,
    log: (line) => line.includes('listening on') && listening(),
    onResult: (result) => results.push({ result, atMs: performance.now() }),
    ...extra,
  });
  await Promise.race([ready, fusion]);
  return { results, fusion, controller };
}

function contributionsOf(results: Harness['results'], agent: string) {
  return results.map((r) => r.result.contributions!.find((c) => c.agentId === agent));
}

test('lossy link (30 % dropped, 0–500 ms delay, 10 % doubled, 10 % reordered): results keep coming, every fault is counted', { skip: installed ? false : MOSQUITTO_MISSING, timeout: 60_000 }, async () => {
  const broker = await startControlledMosquitto(USERS);
  const proxy = await FaultProxy.start({ target: { host: '127.0.0.1', port: broker.port }, seed: 30 });
  const session = 'lossy';
  const [frames, modelId] = await Promise.all([groundTruthObjects(FIXTURE), manifestModelId(MODELS)]);
  const h = await startFusion(proxy.url, session);
  const agents: SimAgent[] = [];
  try {
    // Status messages pass clean: the faults are on the sensor stream.
    proxy.setFaults({ dropProbability: 0.3, delayMs: [0, 500], duplicateProbability: 0.1, reorderProbability: 0.1, topicFilter: (t) => t.endsWith('/objects') });
    for (const id of AGENTS) agents.push(await SimAgent.start({ id, session, url: broker.url, username: id, password: USERS[id], modelId, frames: frames.get(id)! }));
    const ticker = runTicker(() => agents, 100);
    await sleep(5000);
    ticker.stop();
    await sleep(800); // what is still delayed in the proxy arrives
    for (const a of agents) await a.finish();
    const summary = await h.fusion;

    const published = agents.reduce((s, a) => s + a.published, 0);
    const c = proxy.counts;
    console.log(`lossy link: ${ticker.ticks()} ticks, ${published} object lists published; proxy ${JSON.stringify(c)}; fused ${summary.framesFused}; dropped ${JSON.stringify(summary.dropped)}; unused ${JSON.stringify(summary.unused)}`);
    assert.equal(c.publishes, published, 'every object list went through the proxy');
    assert.equal(c.forwarded + c.dropped, c.publishes);
    assert.ok(c.dropped > 0 && c.duplicated > 0 && c.reordered > 0 && c.delayed > 0, JSON.stringify(c));

    // Results keep coming: every ego frame that arrived is fused (30 % are lost), overtaken ones too (the gate's
    // replay window admits them; a strict order refused about a third of those that arrived).
    const egoSent = agents[0]!.published;
    assert.ok(summary.framesFused >= egoSent * 0.55, `fused ${summary.framesFused} of ${egoSent} ego frames`);
    assert.equal(summary.dropped['fusion-error'], undefined, 'no frame failed');
    for (const r of h.results) assert.equal(r.result.contributions!.find((x) => x.agentId === '100')?.used, true);

    // A copy is refused as a replay, and nothing else is: a message overtaken by newer ones is inside the window.
    assert.deepEqual(Object.keys(summary.dropped).filter((k) => k !== 'replay'), []);
    const replays = summary.dropped.replay ?? 0;
    assert.equal(replays, c.duplicated, `${replays} replays refused for ${c.duplicated} copies`);

    // Every message the node received is accounted for: fused (ego), used or unused (collaborators), or refused.
    const used = new Set<string>();
    for (const r of h.results) for (const x of r.result.contributions!) if (x.used && x.agentId !== '100') used.add(`${x.agentId}/${x.sequence}`);
    const unused = Object.values(summary.unused).reduce((s, v) => s + v, 0);
    assert.equal(summary.framesFused + used.size + unused + replays, c.forwarded + c.duplicated, 'received = fused + used + unused + refused');

    // Lost or late collaborator messages show as collaborators not used in that frame.
    const missed = h.results.flatMap((r) => r.result.contributions!.filter((x) => x.agentId !== '100' && !x.used));
    assert.ok(missed.length > 0 && missed.every((x) => x.refusedReason === 'deadline'), JSON.stringify(missed.slice(0, 3)));
    const gaps = h.results.slice(1).map((r, i) => r.atMs - h.results[i]!.atMs);
    console.log(`results: ${h.results.length} in ${(ticker.ticks() / 10).toFixed(1)} s; collaborators missed ${missed.length} times; longest gap between results ${Math.max(...gaps).toFixed(0)} ms`);
  } finally {
    h.controller.abort();
    await Promise.all(agents.map((a) => a.link.end().catch(() => {})));
    await proxy.close();
    await broker.stop();
  }
});

test('broker killed and restarted, a collaborator crashed and back: the node degrades to fewer agents and recovers', { skip: installed ? false : MOSQUITTO_MISSING, timeout: 60_000 }, async () => {
  const broker = await startControlledMosquitto(USERS);
  const session = 'restart';
  const [frames, modelId] = await Promise.all([groundTruthObjects(FIXTURE), manifestModelId(MODELS)]);
  // The node waits for both collaborators by name, so their absence is reported in each result.
  const h = await startFusion(broker.url, session, { expect: ['101', '-1'], deadlineMs: 300 });
  const live: SimAgent[] = [];
  const start = (id: string) => SimAgent.start({ id, session, url: broker.url, username: id, password: USERS[id], modelId, frames: frames.get(id)! });
  try {
    for (const id of AGENTS) live.push(await start(id));
    const ticker = runTicker(() => live, 100);
    const mark = () => epochNowNs();
    await sleep(1500);
    const crashAt = mark();
    const crashed = live.splice(1, 1)[0]!;
    await crashed.crash();
    await sleep(1500);
    const backAt = mark();
    live.splice(1, 0, await start('101'));
    await sleep(1500);
    const killAt = mark();
    await broker.kill();
    await sleep(1000);
    await broker.start();
    const restartedAt = mark();
    await sleep(2500);
    ticker.stop();
    await sleep(400);
    for (const a of live) await a.finish();
    const summary = await h.fusion;

    const at = (r: (typeof h.results)[number]) => nsFromWire(r.result.header!.captureTimeNs);
    const phase = (from: bigint, to: bigint) => h.results.filter((r) => at(r) >= from && at(r) < to);
    const before = phase(0n, crashAt);
    const afterWill = phase(crashAt + 400_000_000n, backAt);
    const back = phase(backAt + 400_000_000n, killAt);
    const afterRestart = phase(restartedAt, mark());
    console.log(`restart: fused ${summary.framesFused} (before crash ${before.length}, collaborator gone ${afterWill.length}, back ${back.length}, after broker restart ${afterRestart.length}); reconnects ${summary.reconnects}; dropped ${JSON.stringify(summary.dropped)}`);
    assert.ok(before.length > 0 && afterWill.length > 0 && back.length > 0 && afterRestart.length > 0);
    // All three agents fused while all run.
    assert.ok(contributionsOf(before, '101').filter((c) => c?.used).length >= before.length / 2);
    // Its last will says offline: the node stops waiting for it and fuses the others.
    for (const c of contributionsOf(afterWill, '101')) assert.deepEqual([c?.used, c?.refusedReason], [false, 'offline']);
    assert.ok(contributionsOf(afterWill, '-1').filter((c) => c?.used).length >= afterWill.length / 2);
    // Back: used again.
    assert.ok(contributionsOf(back, '101').filter((c) => c?.used).length >= back.length / 2);
    // The broker came back (nothing persisted): node and agents reconnected and fusion goes on with all of them.
    assert.ok(summary.reconnects >= 1);
    assert.ok(live.every((a) => a.link.stats.reconnects >= 1));
    assert.ok(contributionsOf(afterRestart, '101').some((c) => c?.used) && contributionsOf(afterRestart, '-1').some((c) => c?.used));
    assert.equal(summary.dropped['fusion-error'], undefined);
    const outage = h.results.filter((r) => at(r) >= killAt && at(r) < restartedAt).length;
    console.log(`frames fused with a capture time inside the 1 s broker outage: ${outage}; agents dropped ${live.map((a) => a.link.stats.droppedOffline).join('/')} object lists while offline`);
  } finally {
    h.controller.abort();
    await Promise.all(live.map((a) => a.link.end().catch(() => {})));
    await broker.stop();
  }
});
