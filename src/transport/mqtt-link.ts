// A thin layer over MQTT.js: connect with a deadline and typed errors, MQTT 5 when the broker speaks it, byte
// counters, and arrival timestamps for latency. Everything MQTT itself does (keep-alive, QoS 1 retries,
// reconnection, resubscription after a reconnect) stays MQTT.js's job.
//
// Offline behaviour, decided here for the whole pipeline:
// - Reconnection stays on (every `reconnectPeriodMs`, default 500 ms), so agent and fusion nodes survive a broker
//   restart; subscriptions are renewed on reconnect (clean start: the broker keeps no state for us).
// - QoS 0 messages published while offline are DROPPED and counted in `stats.droppedOffline`. MQTT.js would queue
//   them in memory and flush them on reconnect: for 10 Hz sensor frames that is a burst of stale data (the fusion
//   node would reject it as stale anyway) arriving just when the link is busiest, and an unbounded memory queue
//   during a long outage. The next frame supersedes a lost one.
// - QoS 1 messages (status, results a recorder must not miss) are kept by MQTT.js and resent after the reconnect;
//   their publish() promise settles on the broker's PUBACK.
import { EventEmitter } from 'node:events';
import mqtt from 'mqtt';
import type { IClientOptions, IClientPublishOptions, MqttClient } from 'mqtt';
import { epochNowNs } from './clock.ts';
import {
  BrokerRefusedError,
  BrokerTlsError,
  BrokerUnreachableError,
  InvalidBrokerUrlError,
  PublishRefusedError,
  SubscribeRefusedError,
} from './errors.ts';

export type MqttQos = 0 | 1;
export type MqttProtocolChoice = 'auto' | 5 | 4;

export interface MqttWill {
  topic: string;
  payload: Uint8Array;
  retain: boolean;
  qos?: MqttQos;
}

export interface MqttLinkOptions {
  /** mqtt://host:port (also mqtts://, ws://, wss://). */
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  /** Published by the broker when this client vanishes without a clean end() (crash, killed, network lost). */
  will?: MqttWill;
  /** 'auto' (default): MQTT 5, falling back to 3.1.1 when the broker refuses version 5 (aedes speaks 3.1.1 only). */
  protocol?: MqttProtocolChoice;
  /** The whole connect (both protocol attempts, retries after a refused TCP connect) must finish within this. */
  connectTimeoutMs?: number;
  /** mqtts:// and wss://: CA certificate(s), PEM, the broker's certificate must chain to (a private CA, as in
   * deploy/mosquitto/mosquitto-tls.conf). Default: the system trust store. The certificate is always verified. */
  ca?: string | Uint8Array;
  /** Pause between reconnection attempts, at connect time and after losing the broker. 0 disables reconnection. */
  reconnectPeriodMs?: number;
}

export interface MqttPublishOptions {
  qos?: MqttQos;
  retain?: boolean;
  /**
   * MQTT 5 message expiry: the broker discards the message (queued or retained) this many seconds after it arrived.
   * Rounded up to whole seconds (MQTT's unit). Ignored on MQTT 3.1.1, which has no expiry.
   */
  expirySeconds?: number;
}

/** Counters since connect. Bytes are MQTT payload bytes (the messages themselves), without MQTT/TCP framing. */
export interface MqttLinkStats {
  published: number;
  publishedBytes: number;
  received: number;
  receivedBytes: number;
  /** QoS 0 messages dropped because the link was offline when they were published. */
  droppedOffline: number;
  /** Times the link lost the broker. */
  disconnects: number;
  /** Times the link got the broker back after losing it. */
  reconnects: number;
}

/** Called for each message; `arrivedAtNs` is epochNowNs() taken when MQTT.js handed the message over. */
export type MqttMessageHandler = (topic: string, payload: Uint8Array, arrivedAtNs: bigint) => void;

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
export const DEFAULT_RECONNECT_PERIOD_MS = 500;

const SUPPORTED_URL_SCHEMES = new Set(['mqtt:', 'mqtts:', 'tcp:', 'ssl:', 'ws:', 'wss:']);
/** CONNACK codes meaning "I do not speak this protocol version" (3.1.1 return code 1, MQTT 5 reason 0x84). */
const UNSUPPORTED_PROTOCOL_CODES = new Set([1, 0x84]);

function checkUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidBrokerUrlError(url, 'not a URL');
  }
  if (!SUPPORTED_URL_SCHEMES.has(parsed.protocol)) throw new InvalidBrokerUrlError(url, `unsupported scheme '${parsed.protocol}'`);
  if (parsed.hostname === '') throw new InvalidBrokerUrlError(url, 'no host');
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A CONNACK refusal from MQTT.js carries a numeric reason code; socket errors carry a string code (ECONNREFUSED). */
function connackCode(err: Error): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'number' ? code : undefined;
}

class ProtocolRefused extends Error {}

/** Node's TLS failures carry an OpenSSL-style code: SELF_SIGNED_CERT_IN_CHAIN, ERR_TLS_CERT_ALTNAME_INVALID, ERR_SSL_... */
function isTlsFailure(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /CERT|SSL|TLS|ISSUER|SIGNATURE/.test(code);
}

function attemptConnect(opts: MqttLinkOptions, version: 4 | 5, deadline: number, timeoutMs: number): Promise<MqttClient> {
  const remaining = Math.max(1, deadline - Date.now());
  const reconnectPeriod = opts.reconnectPeriodMs ?? DEFAULT_RECONNECT_PERIOD_MS;
  const clientOptions: IClientOptions = {
    protocolVersion: version,
    clientId: opts.clientId,
    clean: true,
    resubscribe: true,
    connectTimeout: remaining,
    reconnectPeriod,
    queueQoSZero: false,
  };
  if (opts.username !== undefined) clientOptions.username = opts.username;
  if (opts.password !== undefined) clientOptions.password = opts.password;
  if (opts.ca !== undefined) clientOptions.ca = typeof opts.ca === 'string' ? opts.ca : asBuffer(opts.ca);
  clientOptions.rejectUnauthorized = true;
  if (opts.will) {
    clientOptions.will = {
      topic: opts.will.topic,
      payload: asBuffer(opts.will.payload),
      qos: opts.will.qos ?? 0,
      retain: opts.will.retain,
    };
  }
  const client = mqtt.connect(opts.url, clientOptions);
  return new Promise<MqttClient>((resolve, reject) => {
    let lastError: Error | undefined;
    const cleanup = (): void => {
      clearTimeout(timer);
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    const fail = (err: Error): void => {
      cleanup();
      // Swallow what a dying client may still emit; nobody else listens to it.
      client.on('error', () => {});
      client.end(true);
      reject(err);
    };
    const onConnect = (): void => {
      cleanup();
      resolve(client);
    };
    const onError = (err: Error): void => {
      const code = connackCode(err);
      if (code === undefined) {
        // A certificate the client does not trust (or TLS spoken to a plain port) will not get better by retrying.
        if (isTlsFailure(err)) return fail(new BrokerTlsError(opts.url, err));
        lastError = err; // a socket error: MQTT.js retries after reconnectPeriod, until the deadline
        return;
      }
      if (version === 5 && opts.protocol !== 5 && UNSUPPORTED_PROTOCOL_CODES.has(code)) fail(new ProtocolRefused());
      else fail(new BrokerRefusedError(opts.url, code, version));
    };
    const onClose = (): void => {
      if (reconnectPeriod === 0) fail(new BrokerUnreachableError(opts.url, timeoutMs, lastError));
    };
    const timer = setTimeout(() => fail(new BrokerUnreachableError(opts.url, timeoutMs, lastError)), remaining);
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
}

type LinkEvents = {
  reconnect: [];
  offline: [];
  error: [Error];
};

export class MqttLink {
  /** The MQTT version the broker accepted: 5, or 4 for 3.1.1. */
  readonly protocolVersion: 4 | 5;
  readonly url: string;
  readonly clientId: string;
  readonly stats: MqttLinkStats = {
    published: 0,
    publishedBytes: 0,
    received: 0,
    receivedBytes: 0,
    droppedOffline: 0,
    disconnects: 0,
    reconnects: 0,
  };

  readonly #client: MqttClient;
  readonly #events = new EventEmitter<LinkEvents>();
  readonly #handlers: MqttMessageHandler[] = [];
  #online = true;
  #ending = false;

  /**
   * Connects, or throws BrokerUnreachableError (no CONNACK within connectTimeoutMs; names the URL and the last
   * socket error such as ECONNREFUSED), BrokerRefusedError (the broker said no: bad credentials, not authorised)
   * or InvalidBrokerUrlError. A refused TCP connect is retried every reconnectPeriodMs until the deadline, so a node
   * started a moment before its broker still connects.
   */
  static async connect(opts: MqttLinkOptions): Promise<MqttLink> {
    checkUrl(opts.url);
    const timeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const protocol = opts.protocol ?? 'auto';
    const first: 4 | 5 = protocol === 4 ? 4 : 5;
    try {
      return new MqttLink(await attemptConnect(opts, first, deadline, timeoutMs), opts, first);
    } catch (err) {
      if (!(err instanceof ProtocolRefused)) throw err;
    }
    return new MqttLink(await attemptConnect(opts, 4, deadline, timeoutMs), opts, 4);
  }

  private constructor(client: MqttClient, opts: MqttLinkOptions, version: 4 | 5) {
    this.#client = client;
    this.url = opts.url;
    this.clientId = opts.clientId;
    this.protocolVersion = version;
    client.on('connect', () => {
      if (this.#online) return;
      this.#online = true;
      this.stats.reconnects++;
      this.#events.emit('reconnect');
    });
    client.on('close', () => {
      if (!this.#online || this.#ending) return;
      this.#online = false;
      this.stats.disconnects++;
      this.#events.emit('offline');
    });
    client.on('error', (err) => {
      // Socket errors (ECONNRESET, refused reconnection attempts) are followed by 'close' and a reconnect: the
      // 'offline' event covers them. A CONNACK refusal after a reconnect (credentials revoked) stops MQTT.js from
      // retrying, so the link is dead: that must be heard.
      if (connackCode(err) === undefined) return;
      this.#report(new BrokerRefusedError(this.url, connackCode(err)!, this.protocolVersion));
    });
    client.on('message', (topic, payload) => this.#dispatch(topic, payload));
  }

  /** True while the broker connection is up. */
  get connected(): boolean {
    return this.#client.connected;
  }

  /**
   * 'offline': the broker connection was lost (MQTT.js keeps reconnecting); 'reconnect': it is back and
   * subscriptions are being renewed; 'error': a broker refusal after a reconnect, or a message handler that threw.
   */
  on<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this {
    this.#events.on(event, listener as never);
    return this;
  }

  off<E extends keyof LinkEvents>(event: E, listener: (...args: LinkEvents[E]) => void): this {
    this.#events.off(event, listener as never);
    return this;
  }

  /**
   * Resolves once the message is written to the socket (QoS 0) or acknowledged by the broker (QoS 1). A QoS 0
   * message while offline resolves at once, dropped and counted (see the note at the top of this file).
   * Throws PublishRefusedError when an MQTT 5 broker refuses a QoS 1 message (e.g. the ACL forbids the topic).
   */
  async publish(topic: string, payload: Uint8Array, opts: MqttPublishOptions = {}): Promise<void> {
    const qos = opts.qos ?? 0;
    if (qos === 0 && !this.#client.connected) {
      this.stats.droppedOffline++;
      return;
    }
    const publishOptions: IClientPublishOptions = { qos, retain: opts.retain ?? false };
    if (opts.expirySeconds !== undefined && this.protocolVersion === 5) {
      if (!(opts.expirySeconds > 0)) throw new RangeError(`expirySeconds must be positive, got ${opts.expirySeconds}`);
      publishOptions.properties = { messageExpiryInterval: Math.min(0xffffffff, Math.ceil(opts.expirySeconds)) };
    }
    try {
      await this.#client.publishAsync(topic, asBuffer(payload), publishOptions);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      const code = connackCode(e);
      if (code !== undefined) throw new PublishRefusedError(this.url, topic, code);
      // The connection dropped between the check above and the write.
      if (qos === 0 && !this.#client.connected) {
        this.stats.droppedOffline++;
        return;
      }
      throw e;
    }
    this.stats.published++;
    this.stats.publishedBytes += payload.byteLength;
  }

  /** Subscribes (renewed automatically after a reconnect); SubscribeRefusedError when the broker refuses a filter. */
  async subscribe(filters: string | readonly string[], qos: MqttQos = 0): Promise<void> {
    const list = typeof filters === 'string' ? [filters] : [...filters];
    const grants = await this.#client.subscribeAsync(list, { qos });
    for (const g of grants) {
      if (g.qos >= 0x80) throw new SubscribeRefusedError(this.url, g.topic, g.qos);
    }
  }

  async unsubscribe(filters: string | readonly string[]): Promise<void> {
    await this.#client.unsubscribeAsync(typeof filters === 'string' ? filters : [...filters]);
  }

  /**
   * Adds a message handler; returns a function that removes it. The payload is MQTT.js's buffer, not copied: copy it
   * to keep it past the call. A handler that throws does not break the link: the error goes to the 'error' event
   * (and is rethrown, uncaught, when nobody listens, so a bug is never silent).
   */
  onMessage(handler: MqttMessageHandler): () => void {
    this.#handlers.push(handler);
    return () => {
      const i = this.#handlers.indexOf(handler);
      if (i >= 0) this.#handlers.splice(i, 1);
    };
  }

  /** Clean disconnect: the broker discards the will. Waits for QoS 1 messages in flight when connected. */
  async end(): Promise<void> {
    this.#ending = true;
    await this.#client.endAsync(!this.#client.connected);
  }

  /**
   * Drops the connection without a DISCONNECT packet, as a crash does: the broker publishes the will. For a node
   * that is going down abnormally, and to test what subscribers see then.
   */
  async abort(): Promise<void> {
    this.#ending = true;
    await this.#client.endAsync(true);
  }

  #dispatch(topic: string, payload: Buffer): void {
    const arrivedAtNs = epochNowNs();
    this.stats.received++;
    this.stats.receivedBytes += payload.byteLength;
    for (const handler of this.#handlers) {
      try {
        handler(topic, payload, arrivedAtNs);
      } catch (err) {
        this.#report(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }

  #report(err: Error): void {
    if (this.#events.listenerCount('error') > 0) this.#events.emit('error', err);
    else
      setImmediate(() => {
        throw err;
      });
  }
}
