// Typed transport errors. Each names the broker address (credentials stripped) and, where the broker answered, its
// MQTT reason code, so the CLI prints one line a user can act on.
import { ReasonCodes } from 'mqtt';

/** The broker URL without user name and password, for messages and logs. */
export function redactBrokerUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    // Not parseable, but may still hold credentials before an '@'.
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

export function describeReasonCode(code: number): string {
  const text = (ReasonCodes as Record<number, string | undefined>)[code];
  return text ? `${text} (reason code ${code})` : `reason code ${code}`;
}

export class InvalidBrokerUrlError extends Error {
  readonly userFacing = true;
  constructor(
    readonly url: string,
    reason: string,
  ) {
    super(`invalid MQTT broker URL ${JSON.stringify(redactBrokerUrl(url))}: ${reason} (expected e.g. mqtt://127.0.0.1:1883)`);
    this.name = 'InvalidBrokerUrlError';
  }
}

/** Nothing at the address answered with a CONNACK within the connect timeout. */
export class BrokerUnreachableError extends Error {
  readonly userFacing = true;
  constructor(
    readonly url: string,
    readonly timeoutMs: number,
    readonly lastError: Error | undefined,
  ) {
    const why = lastError ? `: ${lastError.message}` : '';
    super(`MQTT broker ${redactBrokerUrl(url)} did not answer within ${timeoutMs} ms${why} (is a broker running there? \`v2xfuse broker\` starts one)`);
    this.name = 'BrokerUnreachableError';
  }
}

/** CONNACK codes for refused credentials: 3.1.1 (4, 5) and MQTT 5 (0x86, 0x87). Mosquitto answers 'not authorised' to a wrong password. */
const AUTH_REFUSALS = new Set([4, 5, 0x86, 0x87]);

/** The broker answered and refused the connection (bad credentials, not authorised, protocol version...). */
export class BrokerRefusedError extends Error {
  readonly userFacing = true;
  constructor(
    readonly url: string,
    readonly reasonCode: number,
    readonly protocolVersion: 4 | 5,
  ) {
    const hint = AUTH_REFUSALS.has(reasonCode) ? ' (check the user name and password, and that the broker knows this user)' : '';
    super(`MQTT broker ${redactBrokerUrl(url)} refused the connection: ${describeReasonCode(reasonCode)}${hint}`);
    this.name = 'BrokerRefusedError';
  }
}

/** The broker refused a subscription (with Mosquitto: the ACL does not let this user read the filter). */
export class SubscribeRefusedError extends Error {
  readonly userFacing = true;
  constructor(
    readonly url: string,
    readonly filter: string,
    readonly reasonCode: number,
  ) {
    super(`MQTT broker ${redactBrokerUrl(url)} refused the subscription to '${filter}': ${describeReasonCode(reasonCode)}`);
    this.name = 'SubscribeRefusedError';
  }
}

/** The broker refused an acknowledged (QoS 1) publish; MQTT 5 brokers say why (e.g. not authorised by the ACL). */
export class PublishRefusedError extends Error {
  readonly userFacing = true;
  constructor(
    readonly url: string,
    readonly topic: string,
    readonly reasonCode: number,
  ) {
    super(`MQTT broker ${redactBrokerUrl(url)} refused a message on '${topic}': ${describeReasonCode(reasonCode)}`);
    this.name = 'PublishRefusedError';
  }
}

/** The TLS handshake failed: the broker's certificate does not chain to the trusted CA, names another host, has
 * expired, or the port does not speak TLS. Final: retrying cannot fix it. */
export class BrokerTlsError extends Error {
  readonly userFacing = true;
  readonly code: string;
  constructor(
    readonly url: string,
    override readonly cause: Error,
  ) {
    const code = String((cause as { code?: unknown }).code ?? '');
    super(`TLS with MQTT broker ${redactBrokerUrl(url)} failed: ${cause.message} (${code}; is --ca the CA that signed the broker's certificate, and does the certificate name this host?)`);
    this.name = 'BrokerTlsError';
    this.code = code;
  }
}
