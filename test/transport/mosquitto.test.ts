// MqttLink against a real Mosquitto running the repository's deploy/mosquitto config and ACL (port and paths
// substituted by renderDeployedMosquittoConfig). Without Mosquitto these tests fail in CI (which installs it) and
// are skipped, saying how to install it, on a developer machine.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import mqtt from 'mqtt';
import {
  BrokerRefusedError,
  MqttLink,
  PublishRefusedError,
  agentKindFilter,
  agentTopic,
  allAgentsFilter,
  fusionResultTopic,
  fusionResultsFilter,
} from '../../src/transport/index.ts';
import { MOSQUITTO_MISSING, findMosquitto, startMosquitto, type RunningMosquitto } from './mosquitto-process.ts';

const USERS = { '100': 'pw-100', '101': 'pw-101', fusion: 'pw-fusion', viewer: 'pw-viewer' };
const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const installed = findMosquitto() !== undefined;
if (!installed && process.env.CI) {
  test('mosquitto is installed', () => assert.fail(MOSQUITTO_MISSING));
}

describe('MQTT over Mosquitto with the deployed config and ACL', { skip: installed ? false : MOSQUITTO_MISSING }, () => {
  let broker: RunningMosquitto;
  const links: MqttLink[] = [];
  let seq = 0;
  async function login(user: keyof typeof USERS, extra: Partial<Parameters<typeof MqttLink.connect>[0]> = {}): Promise<MqttLink> {
    const l = await MqttLink.connect({ url: broker.url, clientId: `${user}-${++seq}`, username: user, password: USERS[user], ...extra });
    links.push(l);
    return l;
  }
  function inbox(l: MqttLink): Array<{ topic: string; payload: string }> {
    const got: Array<{ topic: string; payload: string }> = [];
    l.onMessage((topic, payload) => got.push({ topic, payload: str(payload) }));
    return got;
  }
  async function until(cond: () => boolean, timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await sleep(20);
    }
  }

  before(async () => {
    broker = await startMosquitto(USERS);
  });
  after(async () => {
    await Promise.all(links.map((l) => l.end()));
    await broker?.stop();
  });

  test("'auto' negotiates MQTT 5 with Mosquitto", async () => {
    const fusion = await login('fusion');
    assert.equal(fusion.protocolVersion, 5);
  });

  test('message expiry travels as the MQTT 5 property, and an expired retained message is no longer delivered', async () => {
    const agent = await login('100');
    const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `raw-${++seq}`, username: 'fusion', password: USERS.fusion, reconnectPeriod: 0 });
    try {
      const seen: Array<{ topic: string; expiry: number | undefined }> = [];
      raw.on('message', (topic, _payload, packet) => seen.push({ topic, expiry: packet.properties?.messageExpiryInterval }));
      await raw.subscribeAsync(agentKindFilter('expiry', 'objects'), { qos: 1 });
      await agent.publish(agentTopic('expiry', '100', 'objects'), text('soon stale'), { qos: 1, expirySeconds: 30 });
      await until(() => seen.length === 1);
      assert.equal(seen[0].topic, agentTopic('expiry', '100', 'objects'));
      assert.ok(seen[0].expiry !== undefined && seen[0].expiry > 0 && seen[0].expiry <= 30, `expiry property: ${seen[0].expiry}`);

      // Retained: one with a 1 s expiry, one without. A subscriber arriving 2 s later gets only the second.
      await agent.publish(agentTopic('expiry', '100', 'status'), text('short-lived'), { qos: 1, retain: true, expirySeconds: 1 });
      await agent.publish(agentTopic('expiry', '100', 'points'), text('kept'), { qos: 1, retain: true });
      await sleep(2100);
      const late = await login('fusion');
      const got = inbox(late);
      await late.subscribe(allAgentsFilter('expiry'), 1);
      await until(() => got.length >= 1);
      await sleep(200);
      assert.deepEqual(got, [{ topic: agentTopic('expiry', '100', 'points'), payload: 'kept' }]);
    } finally {
      await raw.endAsync();
    }
  });

  test('the ACL keeps an agent to its own id: messages under another agent id never reach the fusion node', async () => {
    const fusion = await login('fusion');
    const got = inbox(fusion);
    await fusion.subscribe(allAgentsFilter('acl'), 1);
    const agent = await login('100');
    await agent.publish(agentTopic('acl', '101', 'features'), text('forged qos0'));
    // An MQTT 5 broker says no to an acknowledged message.
    await assert.rejects(agent.publish(agentTopic('acl', '101', 'features'), text('forged qos1'), { qos: 1 }), (err: unknown) => {
      assert.ok(err instanceof PublishRefusedError, String(err));
      assert.equal(err.reasonCode, 0x87);
      assert.match(err.message, /agent\/101\/features.*Not authorized/);
      return true;
    });
    // Nor may an agent publish a fusion result.
    await agent.publish(fusionResultTopic('acl', 'fusion'), text('forged result'));
    await agent.publish(agentTopic('acl', '100', 'features'), text('own'), { qos: 1 });
    await until(() => got.length >= 1);
    await sleep(200);
    assert.deepEqual(got, [{ topic: agentTopic('acl', '100', 'features'), payload: 'own' }]);
  });

  test('the fusion user reads every agent; the viewer reads results only', async () => {
    const fusion = await login('fusion');
    const viewer = await login('viewer');
    const fusionGot = inbox(fusion);
    const viewerGot = inbox(viewer);
    await fusion.subscribe(allAgentsFilter('roles'), 1);
    // Mosquitto grants a subscription the ACL does not allow, then delivers nothing on it.
    await viewer.subscribe([allAgentsFilter('roles'), fusionResultsFilter('roles')], 1);
    const a100 = await login('100');
    const a101 = await login('101', { protocol: 4 });
    assert.equal(a101.protocolVersion, 4);
    await a100.publish(agentTopic('roles', '100', 'objects'), text('from 100'), { qos: 1 });
    await a101.publish(agentTopic('roles', '101', 'objects'), text('from 101'), { qos: 1 });
    await until(() => fusionGot.length >= 2);
    assert.deepEqual(fusionGot.map((m) => m.payload).sort(), ['from 100', 'from 101']);
    await fusion.publish(fusionResultTopic('roles', 'fusion'), text('boxes'), { qos: 1 });
    await until(() => viewerGot.length >= 1);
    await sleep(200);
    assert.deepEqual(viewerGot, [{ topic: fusionResultTopic('roles', 'fusion'), payload: 'boxes' }]);
  });

  test('a wrong password or an unknown user is refused at once with a clear error', async () => {
    for (const opts of [
      { username: '100', password: 'wrong', protocol: 'auto' as const },
      { username: '100', password: 'wrong', protocol: 4 as const },
      { username: 'nobody', password: 'x', protocol: 'auto' as const },
      { protocol: 'auto' as const }, // anonymous
    ]) {
      const t0 = Date.now();
      await assert.rejects(MqttLink.connect({ url: broker.url, clientId: `bad-${++seq}`, connectTimeoutMs: 5000, ...opts }), (err: unknown) => {
        assert.ok(err instanceof BrokerRefusedError, String(err));
        assert.equal(err.userFacing, true);
        assert.ok(err.message.includes(broker.url), err.message);
        assert.match(err.message, /refused the connection: Not authorized .*user name and password/);
        assert.doesNotMatch(err.message, /wrong/);
        return true;
      });
      assert.ok(Date.now() - t0 < 2000, 'a refusal is final: no retrying until the timeout');
    }
  });

  test('QoS 0 frames queued for a subscriber that stalls are not dropped (max_queued_messages raised)', async () => {
    // A fusion node that stops reading for a moment (a slow frame, a GC pause) while agents keep sending: Mosquitto
    // holds what it cannot write. With Mosquitto's default max_queued_messages (1000) about 2000 of these 5000
    // arrive; with the deployed config all of them, in order.
    const raw = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `raw-${++seq}`, username: 'fusion', password: USERS.fusion, reconnectPeriod: 0 });
    try {
      let count = 0;
      let inOrder = true;
      raw.on('message', (_topic, payload) => {
        if (payload.readUInt32BE(0) !== count) inOrder = false;
        count++;
      });
      await raw.subscribeAsync(agentKindFilter('burst', 'features'), { qos: 0 });
      raw.stream.pause();
      const agent = await login('100');
      const n = 5000;
      for (let i = 0; i < n; i += 500) {
        const batch: Promise<void>[] = [];
        for (let j = i; j < i + 500; j++) {
          const p = new Uint8Array(4096);
          new DataView(p.buffer).setUint32(0, j);
          batch.push(agent.publish(agentTopic('burst', '100', 'features'), p));
        }
        await Promise.all(batch);
      }
      assert.equal(agent.stats.published, n);
      await sleep(500);
      raw.stream.resume();
      await until(() => count >= n, 10_000).catch(() => {});
      assert.equal(count, n, `received ${count} of ${n}`);
      assert.ok(inOrder);
    } finally {
      await raw.endAsync();
    }
  });
});
