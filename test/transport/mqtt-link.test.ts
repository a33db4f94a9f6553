// MqttLink against the embedded aedes broker on loopback: real sockets, real MQTT 3.1.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import {
  BrokerRefusedError,
  BrokerUnreachableError,
  InvalidBrokerUrlError,
  MqttLink,
  agentKindFilter,
  agentTopic,
  allAgentsFilter,
  epochNowNs,
  startEmbeddedBroker,
  type EmbeddedBroker,
} from '../../src/transport/index.ts';

let clientSeq = 0;
function link(url: string, extra: Partial<Parameters<typeof MqttLink.connect>[0]> = {}): Promise<MqttLink> {
  return MqttLink.connect({ url, clientId: `test-${process.pid}-${++clientSeq}`, ...extra });
}

interface Received {
  topic: string;
  payload: Uint8Array;
  arrivedAtNs: bigint;
}

/** Collects messages (copied) and lets a test wait for the n-th one. */
function collect(l: MqttLink): { messages: Received[]; waitFor(n: number, timeoutMs?: number): Promise<Received[]> } {
  const messages: Received[] = [];
  const waiters: Array<() => void> = [];
  l.onMessage((topic, payload, arrivedAtNs) => {
    messages.push({ topic, payload: Uint8Array.from(payload), arrivedAtNs });
    for (const w of waiters.splice(0)) w();
  });
  return {
    messages,
    async waitFor(n, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs;
      while (messages.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out waiting for ${n} messages, got ${messages.length}`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      return messages;
    },
  };
}

function once(l: MqttLink, event: 'offline' | 'reconnect', timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no '${event}' within ${timeoutMs} ms`)), timeoutMs);
    const listener = (): void => {
      clearTimeout(t);
      l.off(event, listener);
      resolve();
    };
    l.on(event, listener);
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const str = (b: Uint8Array): string => new TextDecoder().decode(b);

test('publish/subscribe through the embedded broker; auto picks MQTT 3.1.1 there; bytes and timestamps', async () => {
  const broker = await startEmbeddedBroker();
  assert.match(broker.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
  const sub = await link(broker.url);
  const pub = await link(broker.url);
  try {
    assert.equal(sub.protocolVersion, 4, 'aedes refuses MQTT 5: auto must fall back to 3.1.1');
    assert.equal(pub.connected, true);
    const inbox = collect(sub);
    await sub.subscribe(allAgentsFilter('s1'));
    const payload = new Uint8Array(1000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
    // A view into a larger buffer: the link must send exactly the view's bytes.
    const backing = new Uint8Array(3000);
    backing.set(payload, 1000);
    const view = backing.subarray(1000, 2000);
    const before = epochNowNs();
    await pub.publish(agentTopic('s1', '100', 'features'), view, { qos: 1 });
    await pub.publish(agentTopic('s2', '100', 'features'), text('other session'));
    await pub.publish(agentTopic('s1', '-1', 'status'), text('up'), { expirySeconds: 5 }); // ignored on 3.1.1
    const [m1, m2] = await inbox.waitFor(2);
    const after = epochNowNs();
    assert.equal(m1.topic, 'v2xfuse/v1/s1/agent/100/features');
    assert.deepEqual(m1.payload, payload);
    assert.ok(m1.arrivedAtNs >= before && m1.arrivedAtNs <= after, 'arrival time is wall-clock epoch ns');
    assert.ok(Math.abs(Number(m1.arrivedAtNs / 1_000_000n) - Date.now()) < 1000);
    assert.equal(m2.topic, 'v2xfuse/v1/s1/agent/-1/status');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(inbox.messages.length, 2, 'the other session must not arrive');
    assert.equal(pub.stats.published, 3);
    assert.equal(pub.stats.publishedBytes, 1000 + 13 + 2);
    assert.equal(sub.stats.received, 2);
    assert.equal(sub.stats.receivedBytes, 1002);
  } finally {
    await Promise.all([sub.end(), pub.end()]);
    await broker.close();
  }
});

test('retained status reaches late subscribers; the will is published when the socket dies, not on a clean end', async () => {
  const broker = await startEmbeddedBroker();
  const statusTopic = agentTopic('s1', '101', 'status');
  const otherStatus = agentTopic('s1', '102', 'status');
  const agent = await link(broker.url, { will: { topic: statusTopic, payload: text('lost'), retain: true, qos: 1 } });
  const polite = await link(broker.url, { will: { topic: otherStatus, payload: text('lost'), retain: true, qos: 1 } });
  const watchers: MqttLink[] = [];
  try {
    await agent.publish(statusTopic, text('online'), { qos: 1, retain: true });
    await polite.publish(otherStatus, text('online'), { qos: 1, retain: true });
    const watcher = await link(broker.url);
    watchers.push(watcher);
    const inbox = collect(watcher);
    await watcher.subscribe(agentKindFilter('s1', 'status'), 1);
    await inbox.waitFor(2);
    const retained = new Map(inbox.messages.map((m) => [m.topic, str(m.payload)]));
    assert.equal(retained.get(statusTopic), 'online', 'retained status delivered to a subscriber that came later');
    assert.equal(retained.get(otherStatus), 'online');

    await polite.end(); // clean: the will is discarded
    await agent.abort(); // like a crash: no DISCONNECT
    const [, , will] = await inbox.waitFor(3);
    assert.equal(will.topic, statusTopic);
    assert.equal(str(will.payload), 'lost');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(inbox.messages.length, 3, 'a clean end must not publish the will');

    // The will was retained: a subscriber arriving now learns that 101 is gone and 102 was last seen online.
    const late = await link(broker.url);
    watchers.push(late);
    const lateInbox = collect(late);
    await late.subscribe(agentKindFilter('s1', 'status'));
    await lateInbox.waitFor(2);
    const now = new Map(lateInbox.messages.map((m) => [m.topic, str(m.payload)]));
    assert.equal(now.get(statusTopic), 'lost');
    assert.equal(now.get(otherStatus), 'online');
  } finally {
    await Promise.all(watchers.map((w) => w.end()));
    await broker.close();
  }
});

test('a QoS 0 stream of 200 messages on loopback arrives complete and in order', async () => {
  const broker = await startEmbeddedBroker();
  const sub = await link(broker.url);
  const pub = await link(broker.url);
  try {
    const inbox = collect(sub);
    await sub.subscribe(agentTopic('s1', '100', 'features'));
    const n = 200;
    const payload = new Uint8Array(16 * 1024);
    // Published back to back without waiting for each write, like a burst of frames from a replay.
    const sends: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const p = payload.slice();
      new DataView(p.buffer).setUint32(0, i);
      sends.push(pub.publish(agentTopic('s1', '100', 'features'), p));
    }
    await Promise.all(sends);
    const got = await inbox.waitFor(n, 10_000);
    assert.deepEqual(
      got.map((m) => new DataView(m.payload.buffer, m.payload.byteOffset).getUint32(0)),
      Array.from({ length: n }, (_, i) => i),
    );
    assert.equal(pub.stats.publishedBytes, n * payload.byteLength);
    assert.equal(pub.stats.droppedOffline, 0);
  } finally {
    await Promise.all([sub.end(), pub.end()]);
    await broker.close();
  }
});

test('after a broker restart on the same port the link reconnects, resubscribes, and QoS 0 sent offline is dropped and counted', async () => {
  let broker: EmbeddedBroker = await startEmbeddedBroker();
  const port = broker.port;
  const pub = await link(broker.url, { reconnectPeriodMs: 100 });
  const sub = await link(broker.url, { reconnectPeriodMs: 100 });
  let fresh: MqttLink | undefined;
  try {
    const inbox = collect(sub);
    const topic = agentTopic('s1', '100', 'objects');
    await sub.subscribe(topic);
    await pub.publish(topic, text('before'));
    await inbox.waitFor(1);

    const offline = Promise.all([once(pub, 'offline'), once(sub, 'offline')]);
    await broker.close();
    await offline;
    assert.equal(pub.connected, false);
    await pub.publish(topic, text('while offline')); // resolves at once
    assert.equal(pub.stats.droppedOffline, 1);

    const back = Promise.all([once(pub, 'reconnect'), once(sub, 'reconnect')]);
    broker = await startEmbeddedBroker({ port });
    await back;
    assert.equal(pub.stats.disconnects, 1);
    assert.equal(pub.stats.reconnects, 1);

    fresh = await link(broker.url);
    const freshInbox = collect(fresh);
    await fresh.subscribe(topic);
    await pub.publish(topic, text('after'));
    const [m] = await freshInbox.waitFor(1);
    assert.equal(str(m.payload), 'after', 'the reconnected publisher reaches the new broker');

    // The old subscriber renews its subscription on reconnect (asynchronously): it hears 'after*' soon.
    const deadline = Date.now() + 3000;
    while (!inbox.messages.some((x) => str(x.payload).startsWith('after')) && Date.now() < deadline) {
      await pub.publish(topic, text('after-again'));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(inbox.messages.some((x) => str(x.payload).startsWith('after')), 'subscription renewed after reconnect');
    assert.ok(!inbox.messages.some((x) => str(x.payload) === 'while offline'), 'no stale burst after reconnect');
  } finally {
    await Promise.all([pub.end(), sub.end(), fresh?.end()]);
    await broker.close();
  }
});

test('no broker at the address: BrokerUnreachableError names the URL and the socket error, within the timeout', async () => {
  const port = await freePort();
  const url = `mqtt://127.0.0.1:${port}`;
  const t0 = Date.now();
  await assert.rejects(link(url, { connectTimeoutMs: 700, reconnectPeriodMs: 100 }), (err: unknown) => {
    assert.ok(err instanceof BrokerUnreachableError, String(err));
    assert.equal(err.userFacing, true);
    assert.ok(err.message.includes(url), err.message);
    assert.match(err.message, /ECONNREFUSED/);
    assert.match(err.message, /700 ms/);
    return true;
  });
  const elapsed = Date.now() - t0;
  assert.ok(elapsed >= 650 && elapsed < 2500, `gave up after ${elapsed} ms`);
});

test('a node started just before its broker still connects (refused TCP connects are retried until the deadline)', async () => {
  const port = await freePort();
  const pending = link(`mqtt://127.0.0.1:${port}`, { connectTimeoutMs: 5000, reconnectPeriodMs: 100 });
  await new Promise((r) => setTimeout(r, 400));
  const broker = await startEmbeddedBroker({ port });
  const l = await pending;
  try {
    assert.equal(l.connected, true);
  } finally {
    await l.end();
    await broker.close();
  }
});

test('protocol 5 forced against a 3.1.1-only broker is refused with the reason, not retried', async () => {
  const broker = await startEmbeddedBroker();
  try {
    await assert.rejects(link(broker.url, { protocol: 5 }), (err: unknown) => {
      assert.ok(err instanceof BrokerRefusedError, String(err));
      assert.equal(err.reasonCode, 1);
      assert.match(err.message, /Unacceptable protocol version/);
      return true;
    });
    const v4 = await link(broker.url, { protocol: 4 });
    assert.equal(v4.protocolVersion, 4);
    await v4.end();
  } finally {
    await broker.close();
  }
});

test('bad broker URLs are refused before any connect, with the URL (password redacted)', async () => {
  await assert.rejects(link('localhost:1883'), InvalidBrokerUrlError);
  await assert.rejects(link('http://127.0.0.1:1883'), /unsupported scheme 'http:'/);
  await assert.rejects(link('mqtt://user:secret@'), (err: unknown) => {
    assert.ok(err instanceof InvalidBrokerUrlError);
    assert.doesNotMatch(err.message, /secret/);
    return true;
  });
});

test('a message handler that throws reports to the error event and the link keeps delivering', async () => {
  const broker = await startEmbeddedBroker();
  const sub = await link(broker.url);
  const pub = await link(broker.url);
  try {
    const errors: Error[] = [];
    sub.on('error', (e) => errors.push(e));
    let calls = 0;
    sub.onMessage(() => {
      calls++;
      if (calls === 1) throw new Error('handler bug');
    });
    const inbox = collect(sub);
    await sub.subscribe('v2xfuse/v1/s1/#');
    await pub.publish(agentTopic('s1', '1', 'points'), text('a'));
    await pub.publish(agentTopic('s1', '1', 'points'), text('b'));
    await inbox.waitFor(2);
    assert.equal(calls, 2);
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /handler bug/);
    assert.equal(sub.connected, true);
  } finally {
    await Promise.all([sub.end(), pub.end()]);
    await broker.close();
  }
});

test('startEmbeddedBroker on a taken port fails with a typed error naming the address', async () => {
  const first = await startEmbeddedBroker();
  try {
    await assert.rejects(startEmbeddedBroker({ port: first.port }), (err: unknown) => {
      assert.equal((err as { userFacing?: boolean }).userFacing, true);
      assert.match((err as Error).message, new RegExp(`127\\.0\\.0\\.1:${first.port}.*EADDRINUSE`));
      return true;
    });
  } finally {
    await first.close();
  }
});
