// What the viewer's server hands the page, from a recording or live from the broker: each message's bytes as they
// were on the wire (or in the MCAP file), wrapped with where they came from. The page decodes the protobuf itself,
// with the same generated module as the Node side. Pure code, bundled into the page too.
//
// Binary framing (little-endian), repeated:
//   u32 n, n bytes of UTF-8 JSON EnvelopeMeta, u32 m, m bytes of payload
// One WebSocket message carries one envelope; the recording endpoint carries all of them back to back.

/** The message kinds on the wire (src/messages) and the dataset channels a recording adds (src/transport/recorder). */
export const ENVELOPE_KINDS = ['features', 'objects', 'points', 'status', 'result', 'gt', 'lidar', 'camera'] as const;
export type EnvelopeKind = (typeof ENVELOPE_KINDS)[number];

export interface Envelope {
  kind: EnvelopeKind;
  /** The sending agent or fusion node; for the dataset channels the agent the data belongs to ('' for gt). */
  sender: string;
  /** The run the message belongs to (the MQTT topic's session; '' when unknown). */
  session: string;
  /** Camera name for 'camera'. */
  camera?: string;
  /** Log time: arrival at the recorder or the live server, or the capture time for dataset channels. */
  logNs: bigint;
  /** protobuf for wire kinds, JSON (Foxglove schemas) for gt, lidar, camera. */
  data: Uint8Array;
}

interface EnvelopeMeta {
  k: EnvelopeKind;
  s: string;
  n: string;
  c?: string;
  t: string;
}

export class EnvelopeFormatError extends Error {
  constructor(detail: string) {
    super(`viewer envelope stream: ${detail}`);
    this.name = 'EnvelopeFormatError';
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeEnvelope(e: Envelope): Uint8Array {
  const meta: EnvelopeMeta = { k: e.kind, s: e.sender, n: e.session, t: e.logNs.toString(), ...(e.camera ? { c: e.camera } : {}) };
  const head = encoder.encode(JSON.stringify(meta));
  const out = new Uint8Array(8 + head.byteLength + e.data.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, head.byteLength, true);
  out.set(head, 4);
  view.setUint32(4 + head.byteLength, e.data.byteLength, true);
  out.set(e.data, 8 + head.byteLength);
  return out;
}

export function encodeEnvelopes(list: readonly Envelope[]): Uint8Array {
  const parts = list.map(encodeEnvelope);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Every envelope in `bytes`; payloads are views into it, not copies. */
export function decodeEnvelopes(bytes: Uint8Array): Envelope[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Envelope[] = [];
  let at = 0;
  while (at < bytes.byteLength) {
    if (at + 4 > bytes.byteLength) throw new EnvelopeFormatError(`truncated header length at byte ${at}`);
    const n = view.getUint32(at, true);
    if (at + 8 + n > bytes.byteLength) throw new EnvelopeFormatError(`truncated header at byte ${at}`);
    const meta = JSON.parse(decoder.decode(bytes.subarray(at + 4, at + 4 + n))) as EnvelopeMeta;
    const m = view.getUint32(at + 4 + n, true);
    const start = at + 8 + n;
    if (start + m > bytes.byteLength) throw new EnvelopeFormatError(`payload of ${m} bytes runs past the end at byte ${start}`);
    if (!(ENVELOPE_KINDS as readonly string[]).includes(meta.k)) throw new EnvelopeFormatError(`unknown kind ${JSON.stringify(meta.k)}`);
    out.push({ kind: meta.k, sender: meta.s, session: meta.n ?? '', logNs: BigInt(meta.t), data: bytes.subarray(start, start + m), ...(meta.c ? { camera: meta.c } : {}) });
    at = start + m;
  }
  return out;
}
