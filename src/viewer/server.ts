// `v2xfuse view`: an HTTP server for the page, with the data from a recording (one binary response) or live from
// the broker (a WebSocket that forwards every message of the run as it arrives: the page speaks WebSocket, the
// broker speaks MQTT over TCP, so the server bridges).
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename } from 'node:path';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { MqttLink, TOPIC_ROOT, allAgentsFilter, fusionResultsFilter, parseTopic, redactBrokerUrl } from '../transport/index.ts';
import { bundleViewerPage } from './bundle.ts';
import { type Envelope, encodeEnvelope, encodeEnvelopes } from './envelope.ts';
import { readRecording, trimForViewer } from './recording.ts';

export interface ViewerServerOptions {
  /** An MCAP file written by `v2xfuse run --record`. */
  recording?: string;
  /** Follow a live run on this broker instead. */
  broker?: string;
  /** Only this run (the topics' session); default: whichever run is publishing. */
  session?: string;
  host?: string;
  /** 0: any free port. */
  port?: number;
  log?: (line: string) => void;
}

export interface ViewerServer {
  url: string;
  /** Envelopes held for pages that connect later (live) or served (recording). */
  readonly messages: number;
  close(): Promise<void>;
}

export class ViewerServerError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'ViewerServerError';
  }
}

/** What a live server keeps for pages that open after the run started: bounded, oldest dropped first. */
const LIVE_HISTORY_BYTES = 256 * 1024 * 1024;

export async function startViewerServer(o: ViewerServerOptions): Promise<ViewerServer> {
  if (!!o.recording === !!o.broker) throw new ViewerServerError('view: give exactly one of --recording FILE or --broker URL');
  const log = o.log ?? (() => {});
  const page = await bundleViewerPage();
  let recordingBytes: Uint8Array | undefined;
  let held = 0;
  if (o.recording) {
    const envelopes = await readRecording(o.recording);
    held = envelopes.length;
    recordingBytes = encodeEnvelopes(envelopes);
  }
  const source = { mode: o.recording ? 'recording' : 'live', name: o.recording ? basename(o.recording) : redactBrokerUrl(o.broker!) };

  const history: Uint8Array[] = [];
  let historyBytes = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string | Uint8Array) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'text/plain', 'GET only');
    if (path === '/' || path === '/index.html') return send(200, 'text/html; charset=utf-8', page.html);
    if (path === '/app.js') return send(200, 'text/javascript; charset=utf-8', page.script);
    if (path === '/favicon.ico') return send(204, 'image/x-icon', '');
    if (path === '/api/source') return send(200, 'application/json', JSON.stringify(source));
    if (path === '/api/recording' && recordingBytes) return send(200, 'application/octet-stream', recordingBytes);
    return send(404, 'text/plain', `not found: ${path}`);
  });
  const wss = new WebSocketServer({ server, path: '/live' });
  wss.on('connection', (ws: WebSocket) => {
    for (const bytes of history) ws.send(bytes);
  });

  let link: MqttLink | undefined;
  if (o.broker) {
    link = await MqttLink.connect({ url: o.broker, clientId: `v2xfuse-view-${randomBytes(4).toString('hex')}` });
    link.onMessage((topic, payload, arrivalNs) => {
      const parsed = parseTopic(topic);
      if (!parsed) return;
      const envelope: Envelope = trimForViewer({ kind: parsed.kind, sender: parsed.id, session: parsed.session, logNs: arrivalNs, data: payload.slice() });
      const bytes = encodeEnvelope(envelope);
      history.push(bytes);
      historyBytes += bytes.byteLength;
      while (historyBytes > LIVE_HISTORY_BYTES && history.length > 1) historyBytes -= history.shift()!.byteLength;
      for (const client of wss.clients) if (client.readyState === client.OPEN) client.send(bytes);
    });
    const filters = o.session
      ? [allAgentsFilter(o.session), fusionResultsFilter(o.session)]
      : [`${TOPIC_ROOT}/+/agent/+/+`, `${TOPIC_ROOT}/+/fusion/+/result`];
    await link.subscribe(filters, 0);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ViewerServerError(`view: cannot listen on ${o.host ?? '127.0.0.1'}:${o.port ?? 8080}: ${err.code ?? err.message}`)));
    server.listen(o.port ?? 8080, o.host ?? '127.0.0.1', () => resolve());
  }).catch(async (err) => {
    await link?.end().catch(() => {});
    throw err;
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/`;
  log(`viewer on ${url} (${source.mode} ${source.name})`);
  return {
    url,
    get messages() {
      return o.recording ? held : history.length;
    },
    async close() {
      await link?.end().catch(() => {});
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
