// MQTT through the embedded broker (`v2xfuse broker`, its own process) and a real Mosquitto (deploy/mosquitto's
// config, as the integration tests start it; skipped when not installed), at the sizes the pipeline sends:
// 1 kB (an object list), 66 kB (int8+top10%+deflate features), 340 kB (int8+deflate), 4 MB (raw features).
// Publisher and subscriber are two clients in this process, QoS 0 as sensor messages go. Throughput: messages/s
// and MB/s with at most 16 messages in flight (so QoS 0 never overruns a broker queue); latency: publish to
// receive, one message at a time.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MqttLink } from '../../src/transport/index.ts';
import { findMosquitto, startMosquitto } from '../../test/transport/mosquitto-process.ts';
import { type BenchOptions, type SectionResult, round, stat } from './common.ts';

export const MQTT_PAYLOAD_SIZES = [1_000, 66_000, 340_000, 4_000_000] as const;
const WINDOW = 16;
const TOPIC = 'v2xfuse/v1/bench/agent/a1/features';

async function startEmbeddedBrokerProcess(): Promise<{ url: string; stop: () => Promise<void> }> {
  const cli = fileURLToPath(new URL('../../bin/v2xfuse.js', import.meta.url));
  const proc = spawn(process.execPath, [cli, 'broker', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /mqtt:\/\/[^\s]+/.exec(out);
      if (m) resolve(m[0]);
    });
    proc.once('exit', (code) => reject(new Error(`v2xfuse broker exited with ${code} before printing its URL`)));
    setTimeout(() => reject(new Error('v2xfuse broker did not print its URL within 30 s')), 30_000);
  });
  return {
    url,
    stop: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

export async function measureBroker(url: string, creds: { pub?: [string, string]; sub?: [string, string] }, quick: boolean) {
  const pub = await MqttLink.connect({ url, clientId: 'a1', ...(creds.pub ? { username: creds.pub[0], password: creds.pub[1] } : {}) });
  const sub = await MqttLink.connect({ url, clientId: 'fusion', ...(creds.sub ? { username: creds.sub[0], password: creds.sub[1] } : {}) });
  let received = 0;
  let onArrival: (() => void) | undefined;
  sub.onMessage(() => {
    received++;
    onArrival?.();
  });
  await sub.subscribe(TOPIC.replace('a1/features', '#'), 0);
  const out: Record<string, unknown> = {};
  try {
    for (const size of MQTT_PAYLOAD_SIZES) {
      const payload = new Uint8Array(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 2654435761) >>> 24;
      const budgetBytes = quick ? 10e6 : 400e6;
      const count = Math.max(quick ? 5 : 20, Math.min(quick ? 1000 : 20000, Math.floor(budgetBytes / size)));
      // Latency: one at a time.
      const lat: number[] = [];
      const latCount = Math.min(count, quick ? 10 : 200);
      for (let i = 0; i < latCount; i++) {
        const got = new Promise<void>((r) => (onArrival = r));
        const t = performance.now();
        await pub.publish(TOPIC, payload, { qos: 0 });
        await got;
        lat.push(performance.now() - t);
      }
      // Throughput: a window of WINDOW messages in flight.
      received = 0;
      const t0 = performance.now();
      let sent = 0;
      while (sent < count) {
        while (sent - received >= WINDOW) await new Promise<void>((r) => (onArrival = r));
        await pub.publish(TOPIC, payload, { qos: 0 });
        sent++;
      }
      const deadline = performance.now() + 30_000;
      while (received < count && performance.now() < deadline) await new Promise<void>((r) => { onArrival = r; setTimeout(r, 100); });
      const s = (performance.now() - t0) / 1000;
      const st = stat(lat);
      out[String(size)] = {
        messages: count, received, messagesPerSecond: round(received / s, 1), megabytesPerSecond: round((received * size) / s / 1e6, 1),
        latencyMs: { p50: round(st.p50), p99: round(st.p99) },
      };
    }
  } finally {
    onArrival = undefined;
    await pub.end();
    await sub.end();
  }
  return out;
}

export async function runMqtt(o: BenchOptions): Promise<SectionResult> {
  const result: SectionResult = { window: WINDOW, qos: 0, notes: [] };
  const embedded = await startEmbeddedBrokerProcess();
  try {
    o.log(`mqtt: embedded broker ${embedded.url}`);
    result.embedded = await measureBroker(embedded.url, {}, o.quick);
  } finally {
    await embedded.stop();
  }
  if (!findMosquitto()) {
    result.mosquitto = { skipped: 'mosquitto is not installed (apt-get install mosquitto)' };
  } else {
    const m = await startMosquitto({ a1: 'bench-a1', fusion: 'bench-fusion' });
    try {
      o.log(`mqtt: mosquitto ${m.url}`);
      result.mosquitto = await measureBroker(m.url, { pub: ['a1', 'bench-a1'], sub: ['fusion', 'bench-fusion'] }, o.quick);
    } finally {
      await m.stop();
    }
  }
  (result.notes as string[]).push(
    'embedded: `v2xfuse broker` (aedes, MQTT 3.1.1) in its own process; mosquitto: deploy/mosquitto config (MQTT 5, users, ACL)',
    'publisher and subscriber share one Node process; payload sizes are whole MQTT payloads',
  );
  return result;
}
