// The embedded MQTT broker: aedes (MQTT 3.1.1, in memory) on a node:net server, for the one-command default and
// for tests. It has no authentication, so it listens on the loopback interface unless told otherwise; deployments
// that cross machines use Mosquitto with users and an ACL (deploy/mosquitto).
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';

export interface EmbeddedBrokerOptions {
  /** Interface to listen on (default 127.0.0.1: only this machine). */
  host?: string;
  /** TCP port; 0 (default) lets the system pick a free one, reported in `port` and `url`. */
  port?: number;
}

export interface EmbeddedBroker {
  /** mqtt://host:port, ready for MqttLink.connect. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  /** Disconnects every client and stops listening; clients with reconnection on keep trying until a broker is back. */
  close(): Promise<void>;
}

export class BrokerListenError extends Error {
  readonly userFacing = true;
  constructor(
    readonly host: string,
    readonly port: number,
    override readonly cause: Error,
  ) {
    const code = (cause as NodeJS.ErrnoException).code;
    const hint = code === 'EADDRINUSE' ? ' (the port is taken: another broker? pick one with --port, or 0 for any free port)' : '';
    super(`cannot start the MQTT broker on ${host}:${port}: ${cause.message}${hint}`);
    this.name = 'BrokerListenError';
  }
}

function formatUrl(host: string, port: number): string {
  return host.includes(':') ? `mqtt://[${host}]:${port}` : `mqtt://${host}:${port}`;
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions = {}): Promise<EmbeddedBroker> {
  const host = opts.host ?? '127.0.0.1';
  const requestedPort = opts.port ?? 0;
  const aedes = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  // TCP_NODELAY, as Mosquitto's deploy config sets it: with Nagle's algorithm small messages (status, object lists)
  // wait for the previous segment's delayed ACK, which capped 1 kB messages at ~700/s (npm run bench, mqtt).
  const server: Server = createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(requestedPort, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    throw new BrokerListenError(host, requestedPort, err as Error);
  }
  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: formatUrl(host, port),
    host,
    port,
    close() {
      closing ??= (async () => {
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
        await new Promise<void>((resolve) => aedes.close(() => resolve()));
        // aedes ends its clients' streams; a socket still half-open must not hold the port.
        for (const s of sockets) s.destroy();
        await serverClosed;
      })();
      return closing;
    },
  };
}
