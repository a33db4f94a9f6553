// An agent with a computer of its own, emulated (agent --preencode, run --preencode-collaborators): it encodes every
// frame before the replay starts, waits for the run's start message, and publishes each frame when it is due plus
// the time its encoding took, stamped with the capture time the shared epoch gives it.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { decodeMessage, nsFromWire, wire } from '../../src/messages/index.ts';
import { MqttLink, agentTopic, epochNowNs, replayStartTopic, runAgentNode, startEmbeddedBroker } from '../../src/transport/index.ts';
import { projectRoot } from '../cli/helpers.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const MODELS = resolve(projectRoot, 'models/manifest.json');

test('a preencoding agent publishes nothing before the start, then each frame at capture time + its encoding time', { timeout: 180_000 }, async () => {
  const broker = await startEmbeddedBroker({ port: 0 });
  const session = 'preencode-test';
  const observer = await MqttLink.connect({ url: broker.url, clientId: 'observer' });
  const features: { captureNs: bigint; arrivalNs: bigint }[] = [];
  let running!: () => void;
  const isRunning = new Promise<void>((r) => (running = r));
  let startedAt: bigint | undefined;
  observer.onMessage((topic, payload, arrivalNs) => {
    if (topic === agentTopic(session, '101', 'status')) {
      if (decodeMessage('status', payload).state === wire.AgentState.AGENT_STATE_RUNNING) running();
    } else if (topic === agentTopic(session, '101', 'features')) {
      features.push({ captureNs: nsFromWire(decodeMessage('features', payload).header?.captureTimeNs), arrivalNs });
    }
  });
  await observer.subscribe([agentTopic(session, '101', 'status'), agentTopic(session, '101', 'features')], 1);
  try {
    const agent = runAgentNode({
      agentId: '101', session, broker: broker.url, dataset: FIXTURE, mode: 'intermediate', rateHz: 10, models: MODELS,
      preencode: true, waitForStart: true,
    });
    await Promise.race([isRunning, agent]);
    // Encoded and ready, but not started: nothing may have left yet.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(features.length, 0, 'published before the start message');
    const epochNs = epochNowNs() + 500_000_000n;
    startedAt = epochNowNs();
    await observer.publish(replayStartTopic(session), new TextEncoder().encode(epochNs.toString()), { qos: 1, retain: true });
    const summary = await agent;

    assert.equal(summary.frames, 3);
    assert.equal(features.length, 3);
    // Frames 100 ms apart from the announced epoch (the fixture's recorded rate is 10 Hz).
    features.forEach((f, i) => assert.equal(f.captureNs, epochNs + BigInt(i) * 100_000_000n, `frame ${i} capture time`));
    for (let i = 0; i < 3; i++) {
      // What encoding the frame took beforehand (its stages; the whole includes a little more), and how long after
      // its capture time it left: at least that, not at once.
      const encodeMs = ['load', 'pillarize', 'pfn', 'scatter', 'backbone', 'confidence', 'codec']
        .reduce((sum, k) => sum + (summary.stageMs[k]?.[i] ?? 0), 0);
      const rec = summary.perFrame[i];
      const lateMs = Number(BigInt(rec.publishWallNs) - BigInt(rec.captureNs)) / 1e6;
      assert.ok(encodeMs > 5, `frame ${i}: stages ${encodeMs} ms`);
      assert.ok(lateMs >= encodeMs, `frame ${i} left ${lateMs.toFixed(1)} ms after capture, before its ${encodeMs.toFixed(1)} ms of encoding`);
      assert.ok(Number(features[i].arrivalNs - startedAt) > 0);
    }
  } finally {
    await observer.end();
    await broker.close();
  }
});
