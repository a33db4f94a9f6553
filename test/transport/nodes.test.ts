// The agent and fusion nodes over a real (embedded) broker, in this process: a rogue publisher's junk is refused and
// counted, a collaborator that never shows up costs each frame its deadline and nothing else, and every ego frame
// is fused with what did arrive.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { encodeMessage, nsFromWire, nsToWire, wire, type FusionResultInit } from '../../src/messages/index.ts';
import {
  MqttLink,
  agentTopic,
  epochNowNs,
  runAgentNode,
  runFusionNode,
  startEmbeddedBroker,
} from '../../src/transport/index.ts';
import { projectRoot } from '../cli/helpers.ts';
import { sampleBytes, statusInit } from '../messages/sample-messages.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const MODELS = resolve(projectRoot, 'models/manifest.json');

test('fusion node: junk refused by reason, a missing collaborator costs its deadline, every ego frame fused', { timeout: 120_000 }, async () => {
  const broker = await startEmbeddedBroker({ port: 0 });
  const session = 'nodes-test';
  const controller = new AbortController();
  const results: FusionResultInit[] = [];
  const logs: string[] = [];
  let listening!: () => void;
  const ready = new Promise<void>((r) => (listening = r));
  try {
    const fusion = runFusionNode({
      egoId: '100', session, broker: broker.url, mode: 'intermediate', models: MODELS, deadlineMs: 1500,
      expect: ['101', 'ghost'], clock: 'replay', exitWhenEgoOffline: true, signal: controller.signal,
      log: (line) => {
        logs.push(line);
        if (line.includes('listening on')) listening();
      },
      onResult: (r) => results.push(r),
    });
    await Promise.race([ready, fusion]);

    // A rogue client on the same broker: bytes that are not a message, a message of an unknown schema version,
    // and one that claims to come from another agent than its topic says.
    const rogue = await MqttLink.connect({ url: broker.url, clientId: 'rogue' });
    const header = { schemaVersion: 1, senderId: '101', sequence: 1, captureTimeNs: nsToWire(epochNowNs()), modelId: 'x' };
    await rogue.publish(agentTopic(session, '101', 'features'), new Uint8Array([0xff, 0xff, 0xff, 0x0f, 0x01]));
    await rogue.publish(agentTopic(session, '101', 'features'), encodeMessage('features', { header: { ...header, schemaVersion: 99 } }));
    await rogue.publish(agentTopic(session, '102', 'features'), encodeMessage('features', { header }));
    // Then a seeded burst of mutated messages of every data kind under 101's topics: truncated, bit-flipped,
    // spliced. None may be admitted, each must be counted once, and none may stop 101's real messages later.
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    let junk = 3;
    for (let i = 0; i < 150; i++) {
      const kind = (['features', 'objects', 'points'] as const)[i % 3];
      const base = sampleBytes(kind, { senderId: '101', captureNs: epochNowNs() });
      let bytes: Uint8Array;
      const op = Math.floor(rand() * 3);
      if (op === 0) bytes = base.subarray(0, Math.floor(rand() * base.length));
      else if (op === 1) {
        bytes = base.slice();
        for (let f = 0; f < 1 + rand() * 8; f++) bytes[Math.floor(rand() * bytes.length)] ^= 1 << Math.floor(rand() * 8);
      } else bytes = Uint8Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256));
      await rogue.publish(agentTopic(session, '101', kind), bytes);
      junk++;
    }
    await rogue.end();

    const epochNs = epochNowNs();
    const common = { session, broker: broker.url, dataset: FIXTURE, mode: 'intermediate' as const, rateHz: 0, epochNs, models: MODELS };
    const [ego, collaborator] = await Promise.all([
      runAgentNode({ ...common, agentId: '100', codec: 'raw' }),
      runAgentNode({ ...common, agentId: '101', codec: 'int8+top20%+deflate' }),
    ]);
    const summary = await fusion;

    assert.equal(ego.frames, 3);
    assert.equal(collaborator.frames, 3);
    // Top-20 % of 128 × 128 cells, int8, deflated: far below the 4 MB raw map.
    for (const b of collaborator.messageBytes.features!) assert.ok(b < 400_000, `collaborator message ${b} bytes`);
    assert.equal(summary.framesFused, 3);
    assert.equal(results.length, 3);
    assert.ok(!logs.some((l) => l.includes('warm-up message refused')), 'the warm-up decodes real messages through a gate');
    // One timing per fused frame: the warm-up runs the same functions (the confidence map among them) uncounted.
    for (const s of ['align', 'fuse', 'confidence', 'result']) assert.equal(summary.stageMs[s]?.length, 3, `${s}: ${summary.stageMs[s]?.length}`);
    for (const r of results) {
      const by = Object.fromEntries(r.contributions!.map((c) => [c.agentId, c]));
      assert.equal(by['100'].used, true);
      assert.equal(by['101'].used, true, 'the collaborator that did send is fused');
      assert.equal(by['101'].selectedCells, Math.ceil(0.2 * 128 * 128));
      assert.equal(by.ghost.used, false);
      assert.equal(by.ghost.refusedReason, 'deadline');
      assert.equal(r.mode, wire.FusionMode.FUSION_MODE_INTERMEDIATE);
      assert.ok(r.detections!.length > 0, 'the fixture has vehicles around the ego');
    }
    assert.ok(summary.dropped['unknown-version']! >= 1);
    assert.ok(summary.dropped['sender-mismatch']! >= 1);
    assert.equal(Object.values(summary.dropped).reduce((a, b) => a + b, 0), junk, JSON.stringify(summary.dropped));
    // Logged once per reason and agent, with what was wrong.
    assert.equal(logs.filter((l) => l.includes(': malformed:')).length, 1);
    // Waiting for the ghost: each frame waited about its deadline, not longer.
    for (const w of summary.stageMs.wait) assert.ok(w >= 1400 && w < 5000, `waited ${w} ms`);
  } finally {
    controller.abort();
    await broker.close();
  }
});

test('a broker that goes away: agent and fusion node reconnect to its successor and go on', { timeout: 120_000 }, async () => {
  let broker = await startEmbeddedBroker({ port: 0 });
  const port = broker.port;
  const session = 'restart-test';
  const controller = new AbortController();
  const fused: bigint[] = [];
  let first!: () => void;
  const firstResult = new Promise<void>((r) => (first = r));
  let listening!: () => void;
  const ready = new Promise<void>((r) => (listening = r));
  try {
    const fusion = runFusionNode({
      // Staleness is not under test here: a loaded machine may take over a second per frame.
      egoId: '100', session, broker: broker.url, mode: 'intermediate', models: MODELS, deadlineMs: 200, clock: 'wall', maxAgeMs: 30_000,
      exitWhenEgoOffline: true, signal: controller.signal,
      log: (line) => line.includes('listening on') && listening(),
      onResult: (r) => {
        fused.push(nsFromWire(r.header!.captureTimeNs));
        first();
      },
    });
    await Promise.race([ready, fusion]);
    // Paced at 0.5 Hz (frames 2 s apart) from 4 s ahead, so the models are loaded before frame 0 is due.
    const agent = runAgentNode({
      agentId: '100', session, broker: broker.url, dataset: FIXTURE, mode: 'intermediate', codec: 'int8+deflate',
      rateHz: 0.5, epochNs: epochNowNs() + 4_000_000_000n, models: MODELS,
    });
    await Promise.race([firstResult, agent]);
    await broker.close();
    await new Promise((r) => setTimeout(r, 300));
    broker = await startEmbeddedBroker({ port });
    const [a, f] = await Promise.all([agent, fusion]);
    assert.equal(a.frames, 3);
    assert.ok(a.reconnects >= 1, `agent reconnects ${a.reconnects}`);
    assert.ok(f.reconnects >= 1, `fusion reconnects ${f.reconnects}`);
    // Frame 0 before the restart; frame 2 (4 s later) after it. Frame 1 may fall in the gap: QoS 0, not queued.
    assert.ok(f.framesFused >= 2, `fused ${f.framesFused}`);
    assert.ok(fused.length >= 2 && fused[fused.length - 1] > fused[0]);
    // The agent's status messages carry the time they were made, not a frame's capture time 4 s ahead.
    assert.deepEqual(f.dropped, {});
  } finally {
    controller.abort();
    await broker.close();
  }
});

test('a collaborator that crashes: its last will says offline, and the ego frames stop waiting for it', { timeout: 120_000 }, async () => {
  const broker = await startEmbeddedBroker({ port: 0 });
  const session = 'will-test';
  const controller = new AbortController();
  const results: FusionResultInit[] = [];
  let listening!: () => void;
  const ready = new Promise<void>((r) => (listening = r));
  try {
    const fusion = runFusionNode({
      egoId: '100', session, broker: broker.url, mode: 'intermediate', models: MODELS, deadlineMs: 60_000,
      expect: ['101'], clock: 'replay', exitWhenEgoOffline: true, signal: controller.signal,
      log: (line) => line.includes('listening on') && listening(), onResult: (r) => results.push(r),
    });
    await Promise.race([ready, fusion]);
    const status = (state: number, sequence: number) =>
      encodeMessage('status', { ...statusInit({ senderId: '101', sequence, captureNs: epochNowNs() }, state) });
    const topic = agentTopic(session, '101', 'status');
    const collaborator = await MqttLink.connect({
      url: broker.url, clientId: 'collaborator-101',
      will: { topic, payload: status(wire.AgentState.AGENT_STATE_OFFLINE, 2), retain: true, qos: 1 },
    });
    await collaborator.publish(topic, status(wire.AgentState.AGENT_STATE_RUNNING, 1), { qos: 1, retain: true });
    const t0 = performance.now();
    const ego = runAgentNode({ agentId: '100', session, broker: broker.url, dataset: FIXTURE, mode: 'intermediate', codec: 'raw', rateHz: 0, models: MODELS });
    // The collaborator dies (no DISCONNECT: the broker publishes its will) while the ego's frames wait for it.
    await new Promise((r) => setTimeout(r, 1500));
    await collaborator.abort();
    await ego;
    const summary = await fusion;
    assert.equal(summary.framesFused, 3);
    assert.ok(performance.now() - t0 < 45_000, 'did not sit out the 60 s deadline');
    for (const r of results) {
      const c = r.contributions!.find((x) => x.agentId === '101');
      assert.equal(c?.used, false);
      assert.equal(c?.refusedReason, 'offline');
    }
  } finally {
    controller.abort();
    await broker.close();
  }
});

test('late fusion with the consistency check leaves out a collaborator whose objects are shifted 5 m', { timeout: 120_000 }, async () => {
  const { openDataset } = await import('../../src/datasets/index.ts');
  const { detectionsToObjects } = await import('../../src/fusion/index.ts');
  const { invertRigid, matrixToPose, transformBox } = await import('../../src/geometry/index.ts');
  const broker = await startEmbeddedBroker({ port: 0 });
  const session = 'consistency-test';
  const controller = new AbortController();
  const results: FusionResultInit[] = [];
  let listening!: () => void;
  const ready = new Promise<void>((r) => (listening = r));
  try {
    const fusion = runFusionNode({
      egoId: '100', session, broker: broker.url, mode: 'late', models: MODELS, deadlineMs: 20_000, expect: ['101', '-1'],
      clock: 'replay', exitWhenEgoOffline: true, consistencyCheck: true, predictor: 'none', signal: controller.signal,
      log: (line) => line.includes('listening on') && listening(), onResult: (r) => results.push(r),
    });
    await Promise.race([ready, fusion]);
    const epochNs = epochNowNs();
    // The attacker speaks as the roadside unit -1: every true object of the frame, 5 m off along x, as it would
    // report them (its own frame, its true pose), at the frame's capture time.
    const seq = (await openDataset(FIXTURE)).scenarios[0];
    const attacker = await MqttLink.connect({ url: broker.url, clientId: 'attacker' });
    const t0 = (await seq.frame(0)).timestampNs;
    for (let i = 0; i < seq.frameCount; i++) {
      const frame = await seq.frame(i);
      const rsu = frame.agents.find((a) => a.agentId === '-1')!;
      const toRsu = invertRigid(rsu.lidarToWorld);
      const boxes = frame.agents.flatMap((a) => a.boxes).filter((b, k, all) => b.cls === 'vehicle' && all.findIndex((x) => x.id === b.id) === k);
      const fake = boxes.map((b) => ({ box: transformBox(toRsu, { ...b.box, x: b.box.x + 5 }), score: 0.9, cls: 'vehicle' as const }));
      const p = matrixToPose(rsu.lidarToWorld);
      await attacker.publish(agentTopic(session, '-1', 'objects'), encodeMessage('objects', {
        header: { schemaVersion: 1, senderId: '-1', sequence: i + 1, captureTimeNs: nsToWire(epochNs + (rsu.timestampNs - t0)), senderPose: p, modelId: 'pp-v2xfuse-mixed-s1-20261121-3e7c042c' },
        objects: detectionsToObjects(fake),
      }));
    }
    await attacker.end();
    const common = { session, broker: broker.url, dataset: FIXTURE, mode: 'late' as const, rateHz: 0, epochNs, models: MODELS };
    await Promise.all([runAgentNode({ ...common, agentId: '100' }), runAgentNode({ ...common, agentId: '101' })]);
    const summary = await fusion;
    assert.equal(summary.framesFused, 3);
    assert.ok((summary.dropped.inconsistent ?? 0) >= 2, JSON.stringify(summary.dropped));
    const verdicts = results.map((r) => r.contributions!.find((c) => c.agentId === '-1'));
    assert.ok(verdicts.filter((c) => c?.used === false && c.refusedReason === 'inconsistent').length >= 2);
    for (const r of results) assert.equal(r.contributions!.find((c) => c.agentId === '101')?.used, true, 'the honest collaborator stays');
  } finally {
    controller.abort();
    await broker.close();
  }
});
