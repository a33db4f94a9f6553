// Reading a recording (`v2xfuse run --record`, src/transport/recorder.ts) into the envelopes the page takes.
import { open } from 'node:fs/promises';
import { McapIndexedReader } from '@mcap/core';
import { MESSAGE_KINDS, type MessageKind, decodeMessage, encodeMessage, wire } from '../messages/index.ts';
import { GROUND_TRUTH_CHANNEL, RECORDING_DECOMPRESS_HANDLERS, parseTopic, zstdReady } from '../transport/index.ts';
import type { Envelope } from './envelope.ts';

export class RecordingError extends Error {
  readonly userFacing = true;
  constructor(readonly path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.name = 'RecordingError';
  }
}

const LIDAR_TOPIC = /^\/dataset\/agent\/([^/]+)\/lidar$/;
const CAMERA_TOPIC = /^\/dataset\/agent\/([^/]+)\/camera\/([^/]+)$/;

/** Which envelope a channel's messages become; undefined for channels the viewer does not draw. */
export function envelopeRoute(topic: string, metadata: ReadonlyMap<string, string>): Omit<Envelope, 'logNs' | 'data'> | undefined {
  const parsed = parseTopic(topic);
  if (parsed) return { kind: parsed.kind, sender: parsed.id, session: parsed.session };
  const kind = metadata.get('v2xfuse.kind');
  if (kind && (MESSAGE_KINDS as readonly string[]).includes(kind)) return { kind: kind as MessageKind, sender: metadata.get('v2xfuse.sender') ?? '', session: '' };
  if (topic === GROUND_TRUTH_CHANNEL) return { kind: 'gt', sender: '', session: '' };
  const lidar = LIDAR_TOPIC.exec(topic);
  if (lidar) return { kind: 'lidar', sender: lidar[1], session: '' };
  const camera = CAMERA_TOPIC.exec(topic);
  if (camera) return { kind: 'camera', sender: camera[1], camera: camera[2], session: '' };
  return undefined;
}

/**
 * The page draws which cells a feature message carried, never the feature values: a dense map (the ego's own,
 * 4 MB raw) is sent without its payload, which says nothing the encoding header does not already say.
 */
export function trimForViewer(e: Envelope): Envelope {
  if (e.kind !== 'features') return e;
  try {
    const frame = decodeMessage('features', e.data);
    if (frame.encoding?.cellIndexCoding !== wire.CellIndexCoding.CELL_INDEX_CODING_ALL_CELLS || frame.payload.byteLength === 0) return e;
    frame.payload = new Uint8Array(0);
    return { ...e, data: encodeMessage('features', frame) };
  } catch {
    return e;
  }
}

/** Every message of the recording the viewer can draw, in log-time order. */
export async function readRecording(path: string): Promise<Envelope[]> {
  let handle;
  try {
    handle = await open(path);
  } catch (err) {
    throw new RecordingError(path, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
  }
  try {
    const size = (await handle.stat()).size;
    let reader: McapIndexedReader;
    await zstdReady;
    try {
      reader = await McapIndexedReader.Initialize({
        // zstd (what the recorder writes); an lz4 file from another tool fails below naming its compression.
        decompressHandlers: RECORDING_DECOMPRESS_HANDLERS,
        readable: {
          size: async () => BigInt(size),
          read: async (offset: bigint, length: bigint) => {
            const buf = new Uint8Array(Number(length));
            await handle.read(buf, 0, buf.byteLength, Number(offset));
            return buf;
          },
        },
      });
    } catch (err) {
      throw new RecordingError(path, `not a readable MCAP file (${(err as Error).message})`);
    }
    const routes = new Map<number, Omit<Envelope, 'logNs' | 'data'> | undefined>();
    for (const [id, ch] of reader.channelsById) routes.set(id, envelopeRoute(ch.topic, ch.metadata));
    if (![...routes.values()].some((r) => r !== undefined)) {
      throw new RecordingError(path, 'no v2xfuse channels (record one with `v2xfuse run DATASET --record FILE.mcap`)');
    }
    const out: Envelope[] = [];
    try {
      for await (const m of reader.readMessages()) {
        const route = routes.get(m.channelId);
        if (route) out.push(trimForViewer({ ...route, logNs: m.logTime, data: m.data }));
      }
    } catch (err) {
      // A chunk compressed with something other than zstd (lz4, from another writer), or a damaged chunk.
      throw new RecordingError(path, `cannot read its messages (${(err as Error).message})`);
    }
    return out;
  } finally {
    await handle.close();
  }
}
