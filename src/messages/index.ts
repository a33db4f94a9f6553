// The wire messages: code generated from proto/v2xfuse/v1 (tools/gen-proto.sh → generated/, never edited by
// hand) and the little the rest of the code needs around it: the schema version, bigint ↔ 64-bit conversions,
// typed encode/decode per message kind with a typed error, string ↔ enum mappings, and the signature split.
import type { AgentKind, ObjectClass } from '../datasets/index.ts';
import { v2xfuse } from './generated/v2xfuse.js';

export { v2xfuse };
/** The generated package: message classes and enums, e.g. wire.FeatureFrame, wire.FusionMode.FUSION_MODE_LATE. */
export const wire = v2xfuse.v1;

/** Header.schema_version of everything this code sends; receivers refuse other versions. */
export const SCHEMA_VERSION = 1;

// Each message class doubles as its own type, so `FeatureFrame.decode(bytes)` and `let f: FeatureFrame` both read.
export const Header = v2xfuse.v1.Header;
export type Header = v2xfuse.v1.Header;
export const Pose = v2xfuse.v1.Pose;
export type Pose = v2xfuse.v1.Pose;
export const Signature = v2xfuse.v1.Signature;
export type Signature = v2xfuse.v1.Signature;
export const Box7 = v2xfuse.v1.Box7;
export type Box7 = v2xfuse.v1.Box7;
export const BevGrid = v2xfuse.v1.BevGrid;
export type BevGrid = v2xfuse.v1.BevGrid;
export const FeatureEncoding = v2xfuse.v1.FeatureEncoding;
export type FeatureEncoding = v2xfuse.v1.FeatureEncoding;
export const FeatureFrame = v2xfuse.v1.FeatureFrame;
export type FeatureFrame = v2xfuse.v1.FeatureFrame;
export const PerceivedObject = v2xfuse.v1.PerceivedObject;
export type PerceivedObject = v2xfuse.v1.PerceivedObject;
export const ObjectList = v2xfuse.v1.ObjectList;
export type ObjectList = v2xfuse.v1.ObjectList;
export const PointCloudEncoding = v2xfuse.v1.PointCloudEncoding;
export type PointCloudEncoding = v2xfuse.v1.PointCloudEncoding;
export const PointCloudFrame = v2xfuse.v1.PointCloudFrame;
export type PointCloudFrame = v2xfuse.v1.PointCloudFrame;
export const AgentStatus = v2xfuse.v1.AgentStatus;
export type AgentStatus = v2xfuse.v1.AgentStatus;
export const FusionResult = v2xfuse.v1.FusionResult;
export type FusionResult = v2xfuse.v1.FusionResult;

/** Input shape of a message (every field optional), as encode and create take it. */
export type FeatureFrameInit = v2xfuse.v1.FeatureFrame.$Properties;
export type ObjectListInit = v2xfuse.v1.ObjectList.$Properties;
export type PointCloudFrameInit = v2xfuse.v1.PointCloudFrame.$Properties;
export type AgentStatusInit = v2xfuse.v1.AgentStatus.$Properties;
export type FusionResultInit = v2xfuse.v1.FusionResult.$Properties;
export type HeaderInit = v2xfuse.v1.Header.$Properties;

// ---------------------------------------------------------------------------------------------------------------
// Message kinds: the last segment of their MQTT topic (issue 4: agent/{id}/{features|objects|points|status},
// fusion/{id}/result).

export const MESSAGE_KINDS = ['features', 'objects', 'points', 'status', 'result'] as const;
export type MessageKind = (typeof MESSAGE_KINDS)[number];

export interface MessageOfKind {
  features: FeatureFrame;
  objects: ObjectList;
  points: PointCloudFrame;
  status: AgentStatus;
  result: FusionResult;
}

export interface MessageInitOfKind {
  features: FeatureFrameInit;
  objects: ObjectListInit;
  points: PointCloudFrameInit;
  status: AgentStatusInit;
  result: FusionResultInit;
}

interface MessageClass<M, I> {
  encode(message: I): { finish(): Uint8Array };
  decode(bytes: Uint8Array): M;
}

const CLASS_OF_KIND: { [K in MessageKind]: MessageClass<MessageOfKind[K], MessageInitOfKind[K]> } = {
  features: FeatureFrame,
  objects: ObjectList,
  points: PointCloudFrame,
  status: AgentStatus,
  result: FusionResult,
};

/** Bytes a receiver cannot parse as the message kind its topic announces. */
export class MessageDecodeError extends Error {
  readonly userFacing = true;
  readonly reason = 'malformed';
  constructor(readonly kind: MessageKind, readonly byteLength: number, detail: string) {
    super(`malformed ${kind} message (${byteLength} bytes): ${detail}`);
    this.name = new.target.name;
  }
}

/** Serializes a message; the returned length is its exact size on the wire (before MQTT's own framing). */
export function encodeMessage<K extends MessageKind>(kind: K, message: MessageInitOfKind[K]): Uint8Array {
  const bytes = CLASS_OF_KIND[kind].encode(message).finish();
  // protobufjs hands out a Buffer under Node and a Uint8Array in browsers: give both callers the same thing.
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Parses a message, turning protobufjs's errors (truncation, bad wire types) into a MessageDecodeError. */
export function decodeMessage<K extends MessageKind>(kind: K, bytes: Uint8Array): MessageOfKind[K] {
  try {
    return CLASS_OF_KIND[kind].decode(bytes);
  } catch (err) {
    throw new MessageDecodeError(kind, bytes.byteLength, (err as Error).message);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 64-bit integers. protobufjs carries (s)fixed64 / (s)int64 as Long objects ({ low, high, unsigned }); the code
// uses bigint nanoseconds (DESIGN.md). Plain { low, high } objects are all protobufjs's writer reads, so no
// dependency on the `long` package is needed here.

type WireLong = Exclude<v2xfuse.v1.Header['captureTimeNs'], number>;
type WireInt64 = number | WireLong | { low: number; high: number } | null | undefined;

function longOf(value: bigint, unsigned: boolean): WireLong {
  const bits = BigInt.asUintN(64, value);
  return { low: Number(bits & 0xffffffffn) | 0, high: Number(bits >> 32n) | 0, unsigned } as unknown as WireLong;
}

function bitsOf(value: WireInt64): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError(`64-bit field holds ${value}, not a safe integer`);
    return BigInt(value);
  }
  return (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
}

/** A nanosecond time (≥ 0, < 2^64) for a fixed64 field such as Header.captureTimeNs. */
export function nsToWire(ns: bigint): WireLong {
  if (ns < 0n || ns >= 1n << 64n) throw new RangeError(`time ${ns} ns does not fit an unsigned 64-bit field`);
  return longOf(ns, true);
}

/** A fixed64 / uint64 field as bigint (0 when absent). */
export function nsFromWire(value: WireInt64): bigint {
  return typeof value === 'number' ? bitsOf(value) : BigInt.asUintN(64, bitsOf(value));
}

/** A signed nanosecond offset for an sint64 field such as PerceivedObject.measurementDeltaNs. */
export function signedNsToWire(ns: bigint): WireLong {
  if (ns < -(1n << 63n) || ns >= 1n << 63n) throw new RangeError(`offset ${ns} ns does not fit a signed 64-bit field`);
  return longOf(ns, false);
}

/** An sint64 / int64 field as bigint (0 when absent). */
export function signedNsFromWire(value: WireInt64): bigint {
  return typeof value === 'number' ? bitsOf(value) : BigInt.asIntN(64, bitsOf(value));
}

/** A uint64 counter (e.g. AgentStatus.bytesPublished) as a number; exact below 2^53. */
export function countFromWire(value: WireInt64): number {
  return Number(nsFromWire(value));
}

// ---------------------------------------------------------------------------------------------------------------
// Enums ↔ the strings the rest of the code uses.

const OBJECT_CLASS_TO_WIRE: Record<ObjectClass, v2xfuse.v1.ObjectClass> = {
  vehicle: v2xfuse.v1.ObjectClass.OBJECT_CLASS_VEHICLE,
  pedestrian: v2xfuse.v1.ObjectClass.OBJECT_CLASS_PEDESTRIAN,
  cyclist: v2xfuse.v1.ObjectClass.OBJECT_CLASS_CYCLIST,
  other: v2xfuse.v1.ObjectClass.OBJECT_CLASS_OTHER,
};

export function objectClassToWire(cls: ObjectClass): v2xfuse.v1.ObjectClass {
  return OBJECT_CLASS_TO_WIRE[cls];
}

/** undefined for OBJECT_CLASS_UNKNOWN and values this schema version does not define. */
export function objectClassFromWire(value: number | null | undefined): ObjectClass | undefined {
  return (Object.keys(OBJECT_CLASS_TO_WIRE) as ObjectClass[]).find((k) => OBJECT_CLASS_TO_WIRE[k] === value);
}

export function agentKindToWire(kind: AgentKind): v2xfuse.v1.AgentKind {
  return kind === 'vehicle' ? v2xfuse.v1.AgentKind.AGENT_KIND_VEHICLE : v2xfuse.v1.AgentKind.AGENT_KIND_RSU;
}

export function agentKindFromWire(value: number | null | undefined): AgentKind | undefined {
  if (value === v2xfuse.v1.AgentKind.AGENT_KIND_VEHICLE) return 'vehicle';
  if (value === v2xfuse.v1.AgentKind.AGENT_KIND_RSU) return 'rsu';
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Signatures

/** Field number of `signature` in every top-level message (common.proto: Signature). */
export const SIGNATURE_FIELD = 15;

export interface SignatureSplit {
  /** The message's bytes without its signature field: what the sender signed. */
  signed: Uint8Array;
  /** The Signature sub-message's bytes, or undefined when the message is unsigned. */
  signature: Uint8Array | undefined;
}

interface WireRecord {
  field: number;
  wireType: number;
  /** Where the record starts (its tag), where its value starts (after a length, for wire type 2), where it ends. */
  start: number;
  body: number;
  end: number;
}

/**
 * Walks a message's top-level wire records without parsing their values. Throws MessageDecodeError on a truncated
 * record or a group wire type (which this schema never uses).
 */
function forEachRecord(kind: MessageKind, bytes: Uint8Array, visit: (record: WireRecord) => void): void {
  const fail = (detail: string): never => {
    throw new MessageDecodeError(kind, bytes.byteLength, detail);
  };
  const readVarint = (at: number): [value: number, next: number] => {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (at >= bytes.byteLength) fail(`varint runs past the end at byte ${at}`);
      const b = bytes[at++];
      value += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return [value, at];
    }
    return fail(`varint longer than 10 bytes before byte ${at}`);
  };
  let at = 0;
  while (at < bytes.byteLength) {
    const start = at;
    const [tag, afterTag] = readVarint(at);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    let end: number;
    let body = afterTag;
    switch (wireType) {
      case 0:
        end = readVarint(afterTag)[1];
        break;
      case 1:
        end = afterTag + 8;
        break;
      case 2: {
        const [length, afterLength] = readVarint(afterTag);
        body = afterLength;
        end = afterLength + length;
        break;
      }
      case 5:
        end = afterTag + 4;
        break;
      default:
        return fail(`field ${field} has wire type ${wireType}, which this schema never uses`);
    }
    if (end > bytes.byteLength) fail(`field ${field} runs past the end (${end} > ${bytes.byteLength})`);
    visit({ field, wireType, start, body, end });
    at = end;
  }
}

/**
 * Splits received bytes into what was signed and the signature, by walking the top-level wire records, so a
 * verifier checks the sender's exact bytes instead of a re-serialization. When the signature is the last record
 * (protobufjs writes fields in number order, and 15 is the highest), `signed` is a view, not a copy.
 * Throws MessageDecodeError on a truncated record or a group wire type; a repeated field 15 is malformed.
 */
export function splitSignature(kind: MessageKind, bytes: Uint8Array): SignatureSplit {
  const kept: Array<[start: number, end: number]> = [];
  let signature: Uint8Array | undefined;
  forEachRecord(kind, bytes, ({ field, wireType, start, body, end }) => {
    if (field === SIGNATURE_FIELD) {
      if (wireType !== 2) throw new MessageDecodeError(kind, bytes.byteLength, `signature field has wire type ${wireType}, expected 2 (a message)`);
      if (signature) throw new MessageDecodeError(kind, bytes.byteLength, 'two signature fields');
      signature = bytes.subarray(body, end);
    } else {
      const last = kept[kept.length - 1];
      if (last && last[1] === start) last[1] = end;
      else kept.push([start, end]);
    }
  });
  if (kept.length === 0) return { signed: bytes.subarray(0, 0), signature };
  if (kept.length === 1) return { signed: bytes.subarray(kept[0][0], kept[0][1]), signature };
  const signed = new Uint8Array(kept.reduce((n, [s, e]) => n + e - s, 0));
  let o = 0;
  for (const [s, e] of kept) {
    signed.set(bytes.subarray(s, e), o);
    o += e - s;
  }
  return { signed, signature };
}

/** Field number of `header` in every top-level message. */
export const HEADER_FIELD = 1;

/**
 * A message's Header alone, without decoding the rest: for a receiver that files messages by capture time and
 * decodes them later (a result with predicted trajectories is thousands of objects). As protobufjs does for a
 * message field written twice, the last one wins; a message without one gives an empty Header.
 */
export function decodeHeader(kind: MessageKind, bytes: Uint8Array): v2xfuse.v1.Header {
  let body: Uint8Array | undefined;
  forEachRecord(kind, bytes, (r) => {
    if (r.field !== HEADER_FIELD) return;
    if (r.wireType !== 2) throw new MessageDecodeError(kind, bytes.byteLength, `header field has wire type ${r.wireType}, expected 2 (a message)`);
    body = bytes.subarray(r.body, r.end);
  });
  try {
    return Header.decode(body ?? new Uint8Array(0));
  } catch (err) {
    throw new MessageDecodeError(kind, bytes.byteLength, `header: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Signing (ECDSA P-256 / SHA-256) and the receiver's gate (validation, signatures, replay, payload decoding).

export {
  type SignatureCheck,
  type SignatureFailure,
  type SigningKey,
  type SigningKeyPair,
  type TrustListJson,
  type TrustedKey,
  SIGNATURE_BYTES,
  SigningKeyError,
  TrustList,
  TrustListError,
  generateSigningKey,
  keyIdOf,
  loadSigningKey,
  signMessage,
  signingContext,
  signingKeyFromPem,
  trustListJson,
} from './signing.ts';
export {
  type AdmitOptions,
  type Admission,
  type AdmittedMessage,
  type DecodedPayloadOfKind,
  type GateGrid,
  type MessageGateOptions,
  type MessageRejection,
  type PerKind,
  type RejectionCounts,
  type RejectionLogger,
  type RejectionReason,
  DEFAULT_MAX_AGE_MS,
  DEFAULT_MAX_FUTURE_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  GRID_TOLERANCE,
  MAX_TRACKED_AGENTS,
  MessageGate,
  OTHER_AGENTS,
  REJECTION_REASONS,
  RejectionLog,
} from './gate.ts';
