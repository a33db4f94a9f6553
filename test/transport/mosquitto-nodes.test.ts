// The agent and fusion nodes over a real Mosquitto with the deployed config and ACL: each node logs in as its own
// id, MQTT 5 is negotiated (message expiry on sensor messages), and an agent that publishes under another agent's
// id reaches nobody. Without Mosquitto: fails in CI (which installs it), skipped on a developer machine.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { MqttLink, agentTopic, epochNowNs, runAgentNode, runFusionNode } from '../../src/transport/index.ts';
import { projectRoot } from '../cli/helpers.ts';
import { MOSQUITTO_MISSING, findMosquitto, startMosquitto } from './mosquitto-process.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const MODELS = resolve(projectRoot, 'models/manifest.json');
const USERS = { '100': 'pw-100', '101': 'pw-101', fusion: 'pw-fusion' };

const installed = findMosquitto() !== undefined;
if (!installed && process.env.CI) test('mosquitto is installed', () => assert.fail(MOSQUITTO_MISSING));

test('nodes over Mosquitto: MQTT 5, each under its own id, an impostor reaches nobody', { skip: installed ? false : MOSQUITTO_MISSING, timeout: 120_000 }, async () => {
  const broker = await startMosquitto(USERS);
  const controller = new AbortController();
  const session = 'mosq';
  try {
    let listening!: () => void;
    const ready = new Promise<void>((r) => (listening = r));
    const fusion = runFusionNode({
      egoId: '100', fusionId: 'fusion', username: 'fusion', password: USERS.fusion, session, broker: broker.url,
      mode: 'late', models: MODELS, deadlineMs: 10_000, expect: ['101'], clock: 'replay', exitWhenEgoOffline: true,
      signal: controller.signal, log: (line) => line.includes('listening on') && listening(),
    });
    await Promise.race([ready, fusion]);

    // Agent 101 tries to speak for the ego: the ACL lets it publish only under agent/101/.
    const impostor = await MqttLink.connect({ url: broker.url, clientId: 'impostor', username: '101', password: USERS['101'] });
    assert.equal(impostor.protocolVersion, 5);
    await impostor.publish(agentTopic(session, '100', 'objects'), new Uint8Array([1, 2, 3]), { qos: 0 });
    await impostor.end();

    const common = { session, broker: broker.url, dataset: FIXTURE, mode: 'late' as const, rateHz: 0, epochNs: epochNowNs(), models: MODELS };
    const agents = await Promise.all(
      (['100', '101'] as const).map((id) => runAgentNode({ ...common, agentId: id, username: id, password: USERS[id] })),
    );
    const summary = await fusion;
    for (const a of agents) {
      assert.equal(a.protocolVersion, 5);
      assert.equal(a.frames, 3);
    }
    assert.equal(summary.protocolVersion, 5);
    assert.equal(summary.framesFused, 3);
    // The impostor's bytes were never delivered: had they been, the gate would have counted them as malformed.
    assert.deepEqual(summary.dropped, {});
    assert.deepEqual(summary.unused, {});
  } finally {
    controller.abort();
    await broker.stop();
  }
});
