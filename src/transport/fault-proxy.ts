// A TCP proxy between MQTT clients and a broker that injects network faults into the message stream: it reads
// the MQTT framing (fixed header and remaining length, MQTT 3.1.1 and 5 alike) and, seeded, drops, delays,
// duplicates and reorders PUBLISH packets, or cuts every connection at once. Everything else (CONNECT, SUBSCRIBE,
// acknowledgements, pings) passes untouched and in order, so sessions stay valid and the faults land only on
// messages, as on a lossy radio link.
//
// Why a proxy at the MQTT level rather than at the IP level (tc netem) or inside the client: netem needs root and
// Linux and acts on TCP segments, which TCP retransmits, so the application would see delay spikes but never a lost
// or duplicated message; a client-side hook would test the hook, not the node. In front of an unmodified broker
// and unmodified nodes, the proxy makes the fusion node see what a V2X channel delivers: QoS 0 messages lost,
// late, twice, or out of order.
//
// Only QoS 0 PUBLISH packets are faulted. A QoS 1 or 2 packet that vanished would leave its acknowledgement
// pending and the session stuck (a protocol failure, not message loss); MQTT's retransmission would also undo the
// drop. Sensor messages travel at QoS 0, and a subscriber at QoS 0 gets every message downgraded to QoS 0.
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { Rng } from '../sim/index.ts';

export interface FaultSpec {
  /** Probability that a PUBLISH is dropped, 0..1. */
  dropProbability?: number;
  /** Each delivered PUBLISH is held for a uniform random time in [min, max] ms; default [0, 0]. */
  delayMs?: readonly [number, number];
  /** Probability that a PUBLISH is delivered twice. */
  duplicateProbability?: number;
  /** Probability that a PUBLISH is held back and delivered after the next PUBLISH of its connection. */
  reorderProbability?: number;
  /** Which way the faults apply: 'to-client' (what subscribers behind the proxy receive, the default),
   * 'to-broker' (what publishers behind it send), or 'both'. */
  direction?: 'to-client' | 'to-broker' | 'both';
  /** Faults apply to PUBLISH packets whose topic this accepts; default every topic. */
  topicFilter?: (topic: string) => boolean;
}

/** What the proxy did, for the report. Every PUBLISH it saw ends in exactly one of forwarded and dropped. */
export interface FaultCounts {
  connections: number;
  /** QoS 0 PUBLISH packets subject to faults (the topic filter and direction matched). */
  publishes: number;
  forwarded: number;
  dropped: number;
  /** Forwarded after a non-zero delay. */
  delayed: number;
  /** Extra copies sent. */
  duplicated: number;
  /** Held back behind the next PUBLISH. */
  reordered: number;
  /** Times every connection was cut at once (cutConnections). */
  cuts: number;
}

export interface FaultProxyOptions {
  /** The broker, e.g. { host: '127.0.0.1', port: 1883 }. */
  target: { host: string; port: number };
  faults?: FaultSpec;
  /** Seed of the fault decisions; the same seed and the same packet order give the same faults. */
  seed?: number;
  /** Where the proxy listens; default 127.0.0.1 on a free port. */
  host?: string;
  port?: number;
}

export class FaultProxyError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'FaultProxyError';
  }
}


function checkSpec(f: FaultSpec): void {
  for (const [name, p] of [['dropProbability', f.dropProbability], ['duplicateProbability', f.duplicateProbability], ['reorderProbability', f.reorderProbability]] as const) {
    if (p !== undefined && !(p >= 0 && p <= 1)) throw new FaultProxyError(`${name} must be in 0..1, got ${p}`);
  }
  if (f.delayMs && !(f.delayMs[0] >= 0 && f.delayMs[1] >= f.delayMs[0] && Number.isFinite(f.delayMs[1]))) {
    throw new FaultProxyError(`delayMs must be [min, max] with 0 ≤ min ≤ max, got [${f.delayMs.join(', ')}]`);
  }
}

const PUBLISH = 3;
/** Packets held back for reordering are released after this long if no other PUBLISH comes to overtake them. */
const REORDER_HOLD_MS = 250;

/**
 * Splits a byte stream into MQTT control packets. Returns the packets found and the unconsumed rest; null when
 * the stream is not MQTT (a remaining length over 4 bytes): the caller then forwards bytes untouched.
 */
function splitPackets(buf: Buffer): { packets: Buffer[]; rest: Buffer } | null {
  const packets: Buffer[] = [];
  let at = 0;
  for (;;) {
    if (buf.length - at < 2) break;
    let len = 0;
    let mult = 1;
    let i = at + 1;
    let complete = false;
    for (let k = 0; k < 4; k++, i++) {
      if (i >= buf.length) break;
      const b = buf[i]!;
      len += (b & 0x7f) * mult;
      mult *= 128;
      if ((b & 0x80) === 0) {
        complete = true;
        i++;
        break;
      }
      if (k === 3) return null;
    }
    if (!complete) break;
    if (buf.length - i < len) break;
    packets.push(buf.subarray(at, i + len));
    at = i + len;
  }
  return { packets, rest: buf.subarray(at) };
}

/** The topic of a PUBLISH packet (empty with an MQTT 5 topic alias), or undefined when it is not one. */
function publishTopic(packet: Buffer): string | undefined {
  if (packet[0]! >> 4 !== PUBLISH) return undefined;
  let i = 1;
  while (packet[i]! & 0x80) i++;
  i++;
  if (i + 2 > packet.length) return '';
  const n = packet.readUInt16BE(i);
  return packet.toString('utf8', i + 2, Math.min(packet.length, i + 2 + n));
}

export class FaultProxy {
  readonly counts: FaultCounts = { connections: 0, publishes: 0, forwarded: 0, dropped: 0, delayed: 0, duplicated: 0, reordered: 0, cuts: 0 };
  #faults: FaultSpec;
  readonly #random: () => number;
  readonly #server: Server;
  readonly #pairs = new Set<{ client: Socket; broker: Socket }>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly host: string;
  readonly port: number;

  private constructor(server: Server, faults: FaultSpec, seed: number, host: string, port: number) {
    this.#server = server;
    this.#faults = faults;
    const rng = new Rng(seed);
    this.#random = () => rng.next();
    this.host = host;
    this.port = port;
  }

  /** Listens and forwards every connection to `target`. */
  static async start(opts: FaultProxyOptions): Promise<FaultProxy> {
    const faults = opts.faults ?? {};
    checkSpec(faults);
    const host = opts.host ?? '127.0.0.1';
    let proxy: FaultProxy | undefined;
    const server = createServer((client) => proxy?.accept(client, opts.target));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: Error) => {
      throw new FaultProxyError(`cannot listen on ${host}:${opts.port ?? 0}: ${err.message}`);
    });
    proxy = new FaultProxy(server, faults, opts.seed ?? 1, host, (server.address() as AddressInfo).port);
    return proxy;
  }

  /** mqtt://host:port of the proxy, for clients. */
  get url(): string {
    return `mqtt://${this.host}:${this.port}`;
  }

  /** Changes the faults from now on (e.g. a clean phase, then a lossy one, then clean again). */
  setFaults(faults: FaultSpec): void {
    checkSpec(faults);
    this.#faults = faults;
  }

  /** Drops every open connection at once, as a network outage does; clients reconnect through the proxy. */
  cutConnections(): void {
    this.counts.cuts++;
    for (const p of this.#pairs) {
      p.client.destroy();
      p.broker.destroy();
    }
    this.#pairs.clear();
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const p of this.#pairs) {
      p.client.destroy();
      p.broker.destroy();
    }
    this.#pairs.clear();
    await closed;
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    this.counts.connections++;
    const broker = connect(target.port, target.host);
    client.setNoDelay(true);
    broker.setNoDelay(true);
    const pair = { client, broker };
    this.#pairs.add(pair);
    const end = () => {
      this.#pairs.delete(pair);
      client.destroy();
      broker.destroy();
    };
    client.on('error', end).on('close', end);
    broker.on('error', end).on('close', end);
    const dir = () => this.#faults.direction ?? 'to-client';
    this.pipe(client, broker, () => dir() !== 'to-client');
    this.pipe(broker, client, () => dir() !== 'to-broker');
  }

  private pipe(from: Socket, to: Socket, faulted: () => boolean): void {
    let pending: Buffer = Buffer.alloc(0);
    let raw = false;
    let held: Buffer | undefined;
    let heldTimer: NodeJS.Timeout | undefined;
    const write = (packet: Buffer) => {
      if (!to.destroyed) to.write(packet);
    };
    const later = (ms: number, fn: () => void) => {
      if (ms <= 0) return fn();
      const t = setTimeout(() => {
        this.#timers.delete(t);
        fn();
      }, ms);
      this.#timers.add(t);
    };
    const releaseHeld = () => {
      if (heldTimer) clearTimeout(heldTimer);
      heldTimer = undefined;
      const h = held;
      held = undefined;
      if (h) write(h);
    };
    from.on('data', (chunk: Buffer) => {
      if (raw) return write(chunk);
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      const split = splitPackets(pending);
      if (!split) {
        raw = true;
        write(pending);
        pending = Buffer.alloc(0);
        return;
      }
      // The rest is copied: `pending` may be a chunk the socket reuses.
      pending = Buffer.from(split.rest);
      for (const packet of split.packets) {
        const topic = publishTopic(packet);
        const qos = (packet[0]! >> 1) & 3;
        const f = this.#faults;
        if (topic === undefined || qos !== 0 || !faulted() || (f.topicFilter && !f.topicFilter(topic))) {
          write(packet);
          continue;
        }
        this.counts.publishes++;
        // Every decision draws the same number of random values, so one seed gives one fault pattern whatever
        // the probabilities are.
        const [rDrop, rDelay, rDup, rReorder, rDelay2] = [this.#random(), this.#random(), this.#random(), this.#random(), this.#random()];
        if (rDrop < (f.dropProbability ?? 0)) {
          this.counts.dropped++;
          continue;
        }
        this.counts.forwarded++;
        const copy = Buffer.from(packet);
        const [lo, hi] = f.delayMs ?? [0, 0];
        const delay = lo + rDelay * (hi - lo);
        if (delay > 0) this.counts.delayed++;
        const duplicate = rDup < (f.duplicateProbability ?? 0);
        if (duplicate) this.counts.duplicated++;
        const deliver = () => {
          if (held) {
            // This packet overtakes the one held back.
            write(copy);
            releaseHeld();
          } else if (rReorder < (f.reorderProbability ?? 0)) {
            this.counts.reordered++;
            held = copy;
            heldTimer = setTimeout(releaseHeld, REORDER_HOLD_MS);
          } else write(copy);
        };
        later(delay, deliver);
        if (duplicate) later(lo + rDelay2 * (hi - lo), () => write(copy));
      }
    });
    from.on('close', () => {
      if (heldTimer) clearTimeout(heldTimer);
    });
  }
}
