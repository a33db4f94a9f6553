// What a receiver does with bytes from the network before it trusts them (DESIGN.md: receivers reject, count and
// log bad messages and keep running). One MessageGate per receiving node: it holds the receiver's grid, model id,
// trust list and per-sender replay state; admit() never throws and answers either the decoded message (with its
// payload decoded once, into a buffer the caller may reuse) or one stable reason string that reports count.
//
// Checks, cheapest and least trusting first, so a flood of junk costs little and a forged message is counted as
// what it is:
//   size → wire records / protobuf decode → header, schema version, sender id vs topic → capture time (stale,
//   future) → signature → replay → structure, enums, finiteness, model id, grid → payload (codec) → admitted.
// The signature is checked before anything is remembered, and the replay state is only written for an admitted
// message, so neither a forged nor a corrupt message can advance a sender's sequence.
//
// Replay rule, per sender and message kind: a sliding anti-replay window over sequence numbers, as IPsec (RFC 4303
// §3.4.3, RFC 6479) and DTLS do. The receiver keeps the highest sequence admitted and a bit per number of the last
// `replayWindow` (default 64) below it. A message with a higher sequence moves the window on; one inside the window
// that was not seen yet is admitted (a message overtaken by later ones on a jittery link: at 10 Hz with 0–500 ms of
// delay, frames arrive out of order all the time, and a strict "sequence must increase" rule lost about half of
// them); a number seen already (a copy) or below the window is refused. How old a message may be is still judged by
// its capture time (stale), not by the window. The capture time also tells a restart from a replay: a sequence at
// or below the highest one with a capture time later than the highest one's is a sender that restarted and began
// its sequence again; the window starts over there, and nothing captured before the restart is admitted afterwards
// (the old run's messages, even unseen ones). A higher sequence with an earlier capture time is an old run's message,
// refused. A restart is recognised as soon as its capture time passes the last admitted one, which it does when the
// sender stamps capture times on a clock that does not go back across restarts (the wall clock; a replayed dataset
// mapped onto it). A sender that must go back in time (a dataset replayed from its start on the dataset's own clock)
// announces it with an AgentStatus in state STARTING: once admitted (it must be fresh itself), it clears that
// sender's records of the other kinds. One exception: an AgentStatus in state OFFLINE skips the replay check and
// leaves the record as it was. It is the MQTT last will, signed when the sender connected and delivered after its
// later status messages; a copy of it can at worst report a sender offline that its next message shows alive.
import { CodecError, type DecodedFeatures, type DecodedPoints, DEFAULT_MAX_POINTS, decodeFeatures, decodePoints } from '../codec/index.ts';
import { v2xfuse } from './generated/v2xfuse.js';
import {
  type MessageKind,
  type MessageOfKind,
  type SignatureSplit,
  MESSAGE_KINDS,
  MessageDecodeError,
  SCHEMA_VERSION,
  decodeMessage,
  nsFromWire,
  splitSignature,
} from './index.ts';
import type { TrustList } from './signing.ts';

/** Every reason admit() can give, as counted in reports. */
export const REJECTION_REASONS = [
  'oversized',
  'malformed',
  'unknown-version',
  'sender-mismatch',
  'stale',
  'future',
  'unsigned',
  'unknown-sender',
  'bad-signature',
  'replay',
  'wrong-model',
  'grid-mismatch',
  'non-finite',
  'corrupt',
  'unsupported-codec',
  'internal',
] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

/**
 * The receiver's BEV grid: the manifest grid (src/perception BevGrid) plus the feature map's shape. A feature
 * message is refused unless its grid equals this one (floats within GRID_TOLERANCE, integers exactly).
 */
export interface GateGrid {
  xMin: number;
  xMax: number;
  yMin: number;
  yMax: number;
  zMin: number;
  zMax: number;
  cellSize: number;
  featureStride: number;
  channels: number;
  height: number;
  width: number;
}

/** A grid's floats travel as float32 (51.2 → 51.20000076): equal within this much, relative to max(1, |value|). */
export const GRID_TOLERANCE = 1e-5;

/** A setting that is either one value for every kind or given per kind (kinds left out take the default). */
export type PerKind<T> = T | Partial<Record<MessageKind, T>>;

export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;
/** Data messages older than this are stale. Status messages have no age limit by default: they are published
 * retained and as the MQTT last will, both delivered long after they were signed. */
export const DEFAULT_MAX_AGE_MS = 1000;
/** Clock skew allowed between sender and receiver before a capture time counts as "in the future". */
export const DEFAULT_MAX_FUTURE_MS = 200;

export interface MessageGateOptions {
  /** Model id of the receiver's detector; features and object lists from another model are refused. Unset: any. */
  expectedModelId?: string;
  /** The receiver's BEV grid; without it every feature message is refused ('grid-mismatch'). */
  grid?: GateGrid;
  /** Largest message accepted, bytes on the wire. Default DEFAULT_MAX_MESSAGE_BYTES for every kind. */
  maxBytes?: PerKind<number>;
  /** Largest now − capture time, ms. Default DEFAULT_MAX_AGE_MS for data kinds, no limit for 'status' unless given
   * per kind ({ status: ms }); Infinity switches the check off. */
  maxAgeMs?: PerKind<number>;
  /** Largest capture time − now, ms (clock skew). Default DEFAULT_MAX_FUTURE_MS. */
  maxFutureMs?: number;
  /** Public keys of the senders; needed when signatures are required, otherwise used when a message is signed. */
  trust?: TrustList;
  /**
   * true: unsigned messages and senders missing from `trust` are refused. false: those pass (admitted with
   * `keyId` undefined), but a signature from a sender in `trust` that does not verify is still refused.
   */
  requireSignatures: boolean;
  /** Learned channel-reduction ratios this receiver can expand (its manifest's); other `c<ratio>` features are
   * refused ('unsupported-codec'). Default none. */
  channelReductionRatios?: readonly number[];
  /** Point clouds announcing more points are refused ('corrupt'). Default the codec's DEFAULT_MAX_POINTS. */
  maxPoints?: number;
  /** Where rejections are counted and logged; default a new RejectionLog without a logger. */
  log?: RejectionLog;
  /** Anti-replay window: how many sequence numbers below the highest admitted one (per sender and kind) may still
   * arrive late, each once. Default DEFAULT_REPLAY_WINDOW; 1 is the strict order (every sequence must be higher). */
  replayWindow?: number;
}

/** 64 numbers = 6.4 s of one stream at 10 Hz, far beyond the 1 s staleness limit: the window never refuses a
 * message the age check would admit, and costs two words per sender and kind. */
export const DEFAULT_REPLAY_WINDOW = 64;

/** The payload as decoded by the gate: the feature map and its mask, the points, or nothing for other kinds. */
export interface DecodedPayloadOfKind {
  features: DecodedFeatures;
  points: DecodedPoints;
  objects: undefined;
  status: undefined;
  result: undefined;
}

export interface AdmittedMessage<K extends MessageKind = MessageKind> {
  ok: true;
  kind: K;
  senderId: string;
  message: MessageOfKind[K];
  /** Features: [C, H, W] map (in `out` when given) and [H, W] mask; points: xyzi; undefined otherwise. */
  payload: DecodedPayloadOfKind[K];
  sequence: number;
  captureTimeNs: bigint;
  /** 0n when the sender did not stamp it. */
  sendTimeNs: bigint;
  /** Bytes on the wire. */
  byteLength: number;
  /** The trusted key that verified it; undefined when it was admitted unsigned (requireSignatures false). */
  keyId: string | undefined;
  /** Sequence numbers skipped by this message past the highest admitted one of this sender and kind (lost, late
   * or refused); 0 for a late message filling a gap in the window. */
  missed: number;
  /** Admitted although a higher sequence of this sender and kind had been admitted before it (overtaken). */
  late: boolean;
  /** The sender's sequence went back with a later capture time: it restarted. */
  restarted: boolean;
}

export interface MessageRejection {
  ok: false;
  kind: MessageKind;
  /** The sender id of the topic the bytes arrived on. */
  senderId: string;
  reason: RejectionReason;
  detail: string;
  byteLength: number;
}

export type Admission<K extends MessageKind = MessageKind> = AdmittedMessage<K> | MessageRejection;

export interface AdmitOptions {
  /** Features only: reused [C, H, W] output (C·H·W of the receiver's grid). Its contents are unspecified after a
   * rejection. Without it the gate allocates one per message. */
  out?: Float32Array;
  /** Features only: reused [H, W] mask. */
  mask?: Uint8Array;
}

// ---------------------------------------------------------------------------------------------------------------
// Rejection log

export type RejectionLogger = (line: string, rejection: MessageRejection) => void;

export interface RejectionCounts {
  total: number;
  byReason: Partial<Record<RejectionReason, number>>;
  /** agent id → reason → count. */
  byAgent: Record<string, Partial<Record<RejectionReason, number>>>;
}

/** Agents tracked one by one; further ids (a hostile network can invent any number) are counted under OTHER_AGENTS. */
export const MAX_TRACKED_AGENTS = 1024;
export const OTHER_AGENTS = '(other)';

/**
 * Counts rejections by reason and by (agent, reason), and hands the first rejection of each (agent, reason) to the
 * logger with its detail; later ones are only counted, so a misconfigured or hostile sender cannot flood the log.
 */
export class RejectionLog {
  private total = 0;
  private readonly byReason = new Map<RejectionReason, number>();
  private readonly byAgent = new Map<string, Map<RejectionReason, number>>();

  constructor(private readonly logger?: RejectionLogger) {}

  record(rejection: MessageRejection): void {
    this.total++;
    this.byReason.set(rejection.reason, (this.byReason.get(rejection.reason) ?? 0) + 1);
    let agent = rejection.senderId;
    if (!this.byAgent.has(agent) && this.byAgent.size >= MAX_TRACKED_AGENTS) agent = OTHER_AGENTS;
    let reasons = this.byAgent.get(agent);
    if (!reasons) this.byAgent.set(agent, (reasons = new Map()));
    const n = (reasons.get(rejection.reason) ?? 0) + 1;
    reasons.set(rejection.reason, n);
    if (n === 1 && this.logger) {
      this.logger(
        `refused ${rejection.kind} message from agent ${JSON.stringify(rejection.senderId)} (${rejection.byteLength} bytes): ${rejection.reason}: ${rejection.detail} ` +
          `(further '${rejection.reason}' refusals from this agent are counted, not logged)`,
        rejection,
      );
    }
  }

  /** A snapshot of the counts (plain objects, safe to serialize into a report). */
  counts(): RejectionCounts {
    const byReason: RejectionCounts['byReason'] = {};
    for (const [r, n] of this.byReason) byReason[r] = n;
    const byAgent: RejectionCounts['byAgent'] = {};
    for (const [a, reasons] of this.byAgent) {
      const o: Partial<Record<RejectionReason, number>> = {};
      for (const [r, n] of reasons) o[r] = n;
      byAgent[a] = o;
    }
    return { total: this.total, byReason, byAgent };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Checks

/** Thrown inside the gate, caught by admit(): the one way a check says no. */
class Refusal {
  constructor(readonly reason: RejectionReason, readonly detail: string) {}
}

function refuse(reason: RejectionReason, detail: string): never {
  throw new Refusal(reason, detail);
}

const wire = v2xfuse.v1;
// Built from the generated enums (not the index's re-exports: this module is loaded while index.ts is).
const enumValues = (e: object): ReadonlySet<number> => new Set(Object.values(e).filter((v): v is number => typeof v === 'number'));
const AGENT_KINDS = enumValues(wire.AgentKind);
const OBJECT_CLASSES = enumValues(wire.ObjectClass);
const FUSION_MODES = enumValues(wire.FusionMode);
const AGENT_STATES = enumValues(wire.AgentState);
// UNSPECIFIED is malformed for the codec's enums (features.proto / common.proto: "a sender always states it").
const withoutZero = (s: ReadonlySet<number>) => new Set([...s].filter((v) => v !== 0));
const QUANTIZATIONS = withoutZero(enumValues(wire.Quantization));
const CELL_INDEX_CODINGS = withoutZero(enumValues(wire.CellIndexCoding));
const ENTROPY_CODINGS = withoutZero(enumValues(wire.EntropyCoding));

function checkEnum(values: ReadonlySet<number>, value: number | null | undefined, field: string): void {
  const v = value ?? 0;
  if (!values.has(v)) refuse('malformed', `${field} = ${v} is not a value this schema version defines`);
}

function checkFinite(value: number | null | undefined, field: string): void {
  // Absent proto3 scalars read as 0; only a number that is there and not finite is refused.
  if (typeof value === 'number' && !Number.isFinite(value)) refuse('non-finite', `${field} is ${value}`);
}

function checkFiniteFields<T extends object>(o: T | null | undefined, fields: readonly (keyof T & string)[], prefix: string): void {
  if (!o) return;
  for (const f of fields) checkFinite(o[f] as number | null | undefined, `${prefix}.${f}`);
}

function checkUnit(value: number | null | undefined, field: string): void {
  checkFinite(value, field);
  const v = value ?? 0;
  if (v < 0 || v > 1) refuse('malformed', `${field} = ${v}: expected 0..1`);
}

function required<T>(value: T | null | undefined, field: string): T {
  if (value === null || value === undefined) refuse('malformed', `${field} is missing`);
  return value;
}

const POSE_FIELDS = ['x', 'y', 'z', 'roll', 'pitch', 'yaw'] as const;
const BOX_FIELDS = ['x', 'y', 'z', 'l', 'w', 'h', 'yaw'] as const;
const VECTOR_FIELDS = ['x', 'y', 'z', 'xConfidence', 'yConfidence', 'zConfidence'] as const;
const GRID_FLOATS = ['xMin', 'xMax', 'yMin', 'yMax', 'zMin', 'zMax', 'cellSize'] as const;
const GRID_INTEGERS = ['featureStride', 'channels', 'height', 'width'] as const;

function checkPose(pose: v2xfuse.v1.Pose.$Properties | null | undefined, field: string, isRequired: boolean): void {
  if (!pose) {
    if (isRequired) refuse('malformed', `${field} is missing: a receiver cannot place the message without it`);
    return;
  }
  checkFiniteFields(pose, POSE_FIELDS, field);
  const cov = pose.covariance ?? [];
  if (cov.length !== 0 && cov.length !== 6 && cov.length !== 36) {
    refuse('malformed', `${field}.covariance has ${cov.length} values, expected 0, 6 (variances) or 36 (6×6)`);
  }
  for (let i = 0; i < cov.length; i++) checkFinite(cov[i], `${field}.covariance[${i}]`);
}

function checkBox(box: v2xfuse.v1.Box7.$Properties | null | undefined, field: string): void {
  checkFiniteFields(required(box, field), BOX_FIELDS, field);
}

function checkGridFinite(grid: v2xfuse.v1.BevGrid.$Properties, field: string): void {
  checkFiniteFields(grid, GRID_FLOATS, field);
}

function sameFloat(a: number, b: number): boolean {
  return Math.abs(a - b) <= GRID_TOLERANCE * Math.max(1, Math.abs(b));
}

function checkGrid(grid: v2xfuse.v1.BevGrid.$Properties, receiver: GateGrid | undefined): void {
  if (!receiver) refuse('grid-mismatch', 'this receiver has no BEV grid configured, so it refuses every feature message');
  for (const f of GRID_FLOATS) {
    const v = grid[f] ?? 0;
    if (!sameFloat(v, receiver[f])) refuse('grid-mismatch', `grid.${f} = ${v}, this receiver's is ${receiver[f]}`);
  }
  for (const f of GRID_INTEGERS) {
    const v = grid[f] ?? 0;
    if (v !== receiver[f]) refuse('grid-mismatch', `grid.${f} = ${v}, this receiver's is ${receiver[f]}`);
  }
}

function checkFeatures(m: v2xfuse.v1.FeatureFrame, receiver: GateGrid | undefined, reductionRatios: readonly number[]): v2xfuse.v1.FeatureEncoding.$Properties {
  const grid = required(m.grid, 'grid');
  const enc = required(m.encoding, 'encoding');
  checkEnum(QUANTIZATIONS, enc.quantization, 'encoding.quantization');
  checkEnum(CELL_INDEX_CODINGS, enc.cellIndexCoding, 'encoding.cellIndexCoding');
  checkEnum(ENTROPY_CODINGS, enc.entropyCoding, 'encoding.entropyCoding');
  checkGridFinite(grid, 'grid');
  const scales = enc.channelScale ?? [];
  const offsets = enc.channelOffset ?? [];
  for (let c = 0; c < scales.length; c++) checkFinite(scales[c], `encoding.channelScale[${c}]`);
  for (let c = 0; c < offsets.length; c++) checkFinite(offsets[c], `encoding.channelOffset[${c}]`);
  checkGrid(grid, receiver);
  checkFreeSpace(m.freeSpace);
  // A learned channel reduction is only usable with the same decoder the receiver has (same manifest).
  const ratio = enc.channelReductionRatio ?? 0;
  if (ratio > 1 && !reductionRatios.includes(ratio)) {
    refuse('unsupported-codec', `channel reduction c${ratio}: this receiver can expand ${reductionRatios.length ? reductionRatios.map((r) => `c${r}`).join(', ') : 'none'}`);
  }
  // The payload decodes to the shape its encoding states; it must be the grid's (its channels divided by the
  // reduction ratio), or cells would be misplaced.
  const expectedChannels = ratio > 1 ? (grid.channels ?? 0) / ratio : grid.channels ?? 0;
  if ((enc.channels ?? 0) !== expectedChannels) {
    refuse('grid-mismatch', `encoding.channels = ${enc.channels ?? 0}, but grid.channels = ${grid.channels ?? 0}${ratio > 1 ? ` / c${ratio} = ${expectedChannels}` : ''}`);
  }
  for (const f of ['height', 'width'] as const) {
    if ((enc[f] ?? 0) !== (grid[f] ?? 0)) refuse('grid-mismatch', `encoding.${f} = ${enc[f] ?? 0}, but grid.${f} = ${grid[f] ?? 0}`);
  }
  return enc;
}

/** Largest free-space grid side accepted (src/fusion MAX_FREE_SPACE_SIDE; not imported: messages sit below fusion). */
const MAX_FREE_SPACE_SIDE = 2048;

/** An ObjectList's or FeatureFrame's optional free-space map: a grid a receiver can hold, and planes to inflate. */
function checkFreeSpace(fs: v2xfuse.v1.FreeSpaceMap.$Properties | null | undefined): void {
  if (!fs) return;
  checkFiniteFields(fs, ['xMin', 'yMin', 'cellSize'], 'freeSpace');
  if (!((fs.cellSize ?? 0) > 0)) refuse('malformed', `freeSpace.cellSize = ${fs.cellSize ?? 0}: expected > 0`);
  for (const f of ['width', 'height'] as const) {
    const v = fs[f] ?? 0;
    if (v < 1 || v > MAX_FREE_SPACE_SIDE) refuse('malformed', `freeSpace.${f} = ${v}: expected 1..${MAX_FREE_SPACE_SIDE}`);
  }
  if ((fs.planes?.length ?? 0) === 0) refuse('malformed', 'freeSpace.planes is empty');
}

/** Largest object side admitted, m: an articulated bus is under 25; anything larger is a broken or hostile sender
 * (every receiver-side check that samples a footprint would pay for it). */
export const MAX_OBJECT_SIZE_M = 50;

function checkObjects(m: v2xfuse.v1.ObjectList): void {
  checkFreeSpace(m.freeSpace);
  const objects = m.objects ?? [];
  for (let i = 0; i < objects.length; i++) {
    const o = objects[i];
    const at = `objects[${i}]`;
    checkFiniteFields(required(o.position, `${at}.position`), VECTOR_FIELDS, `${at}.position`);
    const dims = required(o.dimensions, `${at}.dimensions`);
    checkFiniteFields(dims, VECTOR_FIELDS, `${at}.dimensions`);
    if ((dims.x ?? 0) < 0 || (dims.y ?? 0) < 0 || (dims.z ?? 0) < 0) refuse('malformed', `${at}.dimensions (${dims.x}, ${dims.y}, ${dims.z}): negative`);
    if ((dims.x ?? 0) > MAX_OBJECT_SIZE_M || (dims.y ?? 0) > MAX_OBJECT_SIZE_M || (dims.z ?? 0) > MAX_OBJECT_SIZE_M) {
      refuse('malformed', `${at}.dimensions (${dims.x}, ${dims.y}, ${dims.z}): over ${MAX_OBJECT_SIZE_M} m`);
    }
    checkFiniteFields(o.velocity, VECTOR_FIELDS, `${at}.velocity`);
    checkFiniteFields(o, ['yaw', 'yawConfidence', 'yawRate', 'yawRateConfidence'], at);
    checkEnum(OBJECT_CLASSES, o.objectClass, `${at}.objectClass`);
    checkUnit(o.classConfidence, `${at}.classConfidence`);
    checkUnit(o.existenceConfidence, `${at}.existenceConfidence`);
  }
}

function checkPointsEncoding(m: v2xfuse.v1.PointCloudFrame): v2xfuse.v1.PointCloudEncoding.$Properties {
  const enc = required(m.encoding, 'encoding');
  checkEnum(ENTROPY_CODINGS, enc.entropyCoding, 'encoding.entropyCoding');
  checkFiniteFields(enc, ['stepM', 'originX', 'originY', 'originZ', 'intensityMax'], 'encoding');
  return enc;
}

function checkStatus(m: v2xfuse.v1.AgentStatus): void {
  checkEnum(AGENT_STATES, m.state, 'state');
  checkEnum(FUSION_MODES, m.fusionMode, 'fusionMode');
  checkFinite(m.frameRateHz, 'frameRateHz');
  if (m.grid) checkGridFinite(m.grid, 'grid');
}

function checkResult(m: v2xfuse.v1.FusionResult): void {
  checkEnum(FUSION_MODES, m.mode, 'mode');
  (m.detections ?? []).forEach((d, i) => {
    checkBox(d.box, `detections[${i}].box`);
    checkEnum(OBJECT_CLASSES, d.objectClass, `detections[${i}].objectClass`);
    checkFinite(d.score, `detections[${i}].score`);
  });
  (m.tracks ?? []).forEach((t, i) => {
    checkBox(t.box, `tracks[${i}].box`);
    checkEnum(OBJECT_CLASSES, t.objectClass, `tracks[${i}].objectClass`);
    checkFiniteFields(t, ['score', 'velocityX', 'velocityY'], `tracks[${i}]`);
    (t.predictions ?? []).forEach((p, j) => {
      checkFinite(p.probability, `tracks[${i}].predictions[${j}].probability`);
      (p.waypoints ?? []).forEach((w, k) => checkFiniteFields(w, ['timeOffsetS', 'x', 'y', 'yaw', 'positionStd'], `tracks[${i}].predictions[${j}].waypoints[${k}]`));
    });
  });
  (m.contributions ?? []).forEach((c, i) => {
    checkEnum(FUSION_MODES, c.mode, `contributions[${i}].mode`);
    checkFinite(c.latencyMs, `contributions[${i}].latencyMs`);
  });
  (m.latencies ?? []).forEach((l, i) => checkFinite(l.ms, `latencies[${i}].ms`));
}

// ---------------------------------------------------------------------------------------------------------------
// The gate

/** One sender's and kind's anti-replay state: the highest sequence admitted, its capture time, a ring of bits
 * (bit `seq % window` set = seen) over the window below it, and the capture time its current run began at. */
class ReplayWindow {
  top = 0;
  topCaptureNs = 0n;
  /** Messages captured before this belong to an earlier run of the sender (set at a restart; none before). */
  floorNs = -(1n << 63n);
  private readonly bits: Uint32Array;

  constructor(readonly size: number, sequence: number, captureNs: bigint) {
    this.bits = new Uint32Array(Math.ceil(size / 32));
    this.restart(sequence, captureNs);
  }

  private has(seq: number): boolean {
    const b = seq % this.size;
    return (this.bits[b >>> 5]! & (1 << (b & 31))) !== 0;
  }

  private mark(seq: number): void {
    const b = seq % this.size;
    this.bits[b >>> 5]! |= 1 << (b & 31);
  }

  private unmark(seq: number): void {
    const b = seq % this.size;
    this.bits[b >>> 5]! &= ~(1 << (b & 31));
  }

  /** Why `sequence` captured at `captureNs` may not be admitted, or undefined when it may. Changes nothing. */
  check(sequence: number, captureNs: bigint): string | undefined {
    if (captureNs < this.floorNs) return `captured at ${captureNs} ns, before the sender's restart at ${this.floorNs} ns`;
    if (sequence > this.top) {
      return captureNs < this.topCaptureNs ? `sequence ${sequence} is higher than the highest admitted (${this.top}) but captured earlier (${captureNs} < ${this.topCaptureNs} ns): an earlier run's message` : undefined;
    }
    if (captureNs > this.topCaptureNs) return undefined; // a restart: the sequence began again
    if (this.top - sequence >= this.size) return `sequence ${sequence} is older than the window of ${this.size} below the highest admitted (${this.top})`;
    if (this.has(sequence)) return `sequence ${sequence} was admitted already (highest admitted ${this.top}, captured at ${this.topCaptureNs} ns)`;
    return undefined;
  }

  /** Records an admitted message that check() let through; answers how it relates to the window. */
  admit(sequence: number, captureNs: bigint): { missed: number; late: boolean; restarted: boolean } {
    if (sequence > this.top) {
      const missed = sequence - this.top - 1;
      // Numbers the window moves past were never seen: clear their bits (all of them when it jumps a whole window).
      for (let s = this.top + 1, n = 0; s < sequence && n < this.size; s++, n++) this.unmark(s);
      this.top = sequence;
      this.topCaptureNs = captureNs;
      this.mark(sequence);
      return { missed, late: false, restarted: false };
    }
    if (captureNs > this.topCaptureNs) {
      this.floorNs = captureNs;
      this.restart(sequence, captureNs);
      return { missed: 0, late: false, restarted: true };
    }
    this.mark(sequence);
    return { missed: 0, late: true, restarted: false };
  }

  private restart(sequence: number, captureNs: bigint): void {
    this.bits.fill(0);
    this.top = sequence;
    this.topCaptureNs = captureNs;
    this.mark(sequence);
  }
}

/** Senders with replay state; beyond this (only reachable with unsigned traffic) the oldest is forgotten. */
const MAX_TRACKED_SENDERS = 4096;

function perKind<T>(setting: PerKind<T> | undefined, kind: MessageKind, fallback: T): T {
  if (setting === undefined) return fallback;
  if (typeof setting === 'object' && setting !== null) return (setting as Partial<Record<MessageKind, T>>)[kind] ?? fallback;
  return setting as T;
}

function msToNs(ms: number, field: string): bigint | undefined {
  if (ms === Infinity) return undefined;
  if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`${field} = ${ms}: expected a number of ms ≥ 0 or Infinity`);
  return BigInt(Math.round(ms * 1e6));
}

export class MessageGate {
  readonly rejections: RejectionLog;
  private readonly maxBytes: Record<MessageKind, number>;
  private readonly maxAgeNs: Record<MessageKind, bigint | undefined>;
  private readonly maxFutureNs: bigint | undefined;
  private readonly maxValues: number;
  private readonly replayWindow: number;
  /** sender id → kind → anti-replay window. */
  private readonly records = new Map<string, Map<MessageKind, ReplayWindow>>();

  constructor(private readonly options: MessageGateOptions) {
    if (options.requireSignatures && !options.trust) throw new Error('MessageGate: requireSignatures needs a trust list');
    this.rejections = options.log ?? new RejectionLog();
    const bytes = {} as Record<MessageKind, number>;
    const age = {} as Record<MessageKind, bigint | undefined>;
    // A single number for maxAgeMs applies to data kinds; status keeps its default (no limit) unless named.
    const ageSetting = options.maxAgeMs;
    for (const kind of MESSAGE_KINDS) {
      bytes[kind] = perKind(options.maxBytes, kind, DEFAULT_MAX_MESSAGE_BYTES);
      if (!(bytes[kind] > 0)) throw new RangeError(`maxBytes for ${kind} = ${bytes[kind]}: expected > 0`);
      const ms =
        kind === 'status'
          ? typeof ageSetting === 'object' ? ageSetting.status ?? Infinity : Infinity
          : perKind(ageSetting, kind, DEFAULT_MAX_AGE_MS);
      age[kind] = msToNs(ms, `maxAgeMs for ${kind}`);
    }
    this.maxBytes = bytes;
    this.maxAgeNs = age;
    this.maxFutureNs = msToNs(options.maxFutureMs ?? DEFAULT_MAX_FUTURE_MS, 'maxFutureMs');
    const g = options.grid;
    this.maxValues = g ? g.channels * g.height * g.width : 0;
    this.replayWindow = options.replayWindow ?? DEFAULT_REPLAY_WINDOW;
    if (!Number.isInteger(this.replayWindow) || this.replayWindow < 1 || this.replayWindow > 1 << 16) {
      throw new RangeError(`replayWindow = ${options.replayWindow}: expected an integer 1..65536`);
    }
  }

  /**
   * Decides whether bytes that arrived on `kind`'s topic of agent `topicSenderId` are admitted, at receiver time
   * `nowNs` (the clock capture times are compared with). Never throws. Rejections are recorded in `rejections`.
   */
  admit<K extends MessageKind>(kind: K, topicSenderId: string, bytes: Uint8Array, nowNs: bigint, options: AdmitOptions = {}): Admission<K> {
    try {
      return this.check(kind, topicSenderId, bytes, nowNs, options);
    } catch (err) {
      const [reason, detail] = err instanceof Refusal ? [err.reason, err.detail] : ['internal' as const, `unexpected ${(err as Error)?.name ?? 'error'}: ${(err as Error)?.message ?? String(err)}`];
      const rejection: MessageRejection = { ok: false, kind, senderId: topicSenderId, reason, detail, byteLength: bytes?.byteLength ?? 0 };
      this.rejections.record(rejection);
      return rejection;
    }
  }

  /** Forgets a sender's replay state (e.g. when the node learns by other means that it restarted). */
  forget(senderId: string): void {
    this.records.delete(senderId);
  }

  private check<K extends MessageKind>(kind: K, topicSenderId: string, bytes: Uint8Array, nowNs: bigint, options: AdmitOptions): AdmittedMessage<K> {
    if (!(MESSAGE_KINDS as readonly string[]).includes(kind)) refuse('malformed', `unknown message kind '${String(kind)}'`);
    if (bytes.byteLength > this.maxBytes[kind]) refuse('oversized', `${bytes.byteLength} bytes, the limit for ${kind} is ${this.maxBytes[kind]}`);

    let split: SignatureSplit;
    let message: MessageOfKind[K];
    try {
      split = splitSignature(kind, bytes);
      message = decodeMessage(kind, bytes);
    } catch (err) {
      if (err instanceof MessageDecodeError) refuse('malformed', err.message);
      throw err;
    }

    const header = required(message.header, 'header');
    if ((header.schemaVersion ?? 0) !== SCHEMA_VERSION) {
      refuse('unknown-version', `schema version ${header.schemaVersion ?? 0}, this receiver reads ${SCHEMA_VERSION}`);
    }
    const senderId = header.senderId ?? '';
    if (senderId !== topicSenderId) {
      refuse('sender-mismatch', `header names sender ${JSON.stringify(senderId)}, the topic ${JSON.stringify(topicSenderId)}`);
    }

    const captureNs = nsFromWire(header.captureTimeNs);
    const maxAge = this.maxAgeNs[kind];
    if (maxAge !== undefined && nowNs - captureNs > maxAge) {
      refuse('stale', `captured ${formatMs(nowNs - captureNs)} ago, the limit for ${kind} is ${formatMs(maxAge)}`);
    }
    if (this.maxFutureNs !== undefined && captureNs - nowNs > this.maxFutureNs) {
      refuse('future', `captured ${formatMs(captureNs - nowNs)} after this receiver's now, more than the ${formatMs(this.maxFutureNs)} skew allowed`);
    }

    let keyId: string | undefined;
    const trust = this.options.trust;
    if (trust && (split.signature || this.options.requireSignatures)) {
      const known = trust.has(senderId);
      if (known || this.options.requireSignatures) {
        const check = trust.verifySplit(kind, senderId, split);
        if (!check.ok) refuse(check.reason, check.detail);
        keyId = check.keyId;
      }
    } else if (this.options.requireSignatures) {
      refuse('unsigned', 'no signature');
    }

    const sequence = header.sequence ?? 0;
    const lastWill = kind === 'status' && (message as v2xfuse.v1.AgentStatus).state === wire.AgentState.AGENT_STATE_OFFLINE;
    const window = lastWill ? undefined : this.records.get(senderId)?.get(kind);
    const replay = window?.check(sequence, captureNs);
    if (replay !== undefined) refuse('replay', `${kind}: ${replay}`);

    checkEnum(AGENT_KINDS, header.senderKind, 'header.senderKind');
    checkPose(header.senderPose, 'header.senderPose', kind === 'features' || kind === 'objects' || kind === 'points');
    const expectedModel = this.options.expectedModelId;
    if (expectedModel !== undefined && (kind === 'features' || kind === 'objects') && (header.modelId ?? '') !== expectedModel) {
      refuse('wrong-model', `model ${JSON.stringify(header.modelId ?? '')}, this receiver runs ${JSON.stringify(expectedModel)}`);
    }

    let payload: unknown;
    try {
      switch (kind) {
        case 'features': {
          const m = message as v2xfuse.v1.FeatureFrame;
          const enc = checkFeatures(m, this.options.grid, this.options.channelReductionRatios ?? []);
          // A channel-reduced map fills the first channels / ratio planes of the caller's full-size buffer.
          const values = (enc.channels ?? 0) * (enc.height ?? 0) * (enc.width ?? 0);
          const out = options.out && options.out.length > values ? options.out.subarray(0, values) : options.out;
          payload = decodeFeatures(m.payload, enc, { maxValues: this.maxValues, out, mask: options.mask });
          break;
        }
        case 'points': {
          const m = message as v2xfuse.v1.PointCloudFrame;
          const enc = checkPointsEncoding(m);
          payload = decodePoints(m.payload, enc, { maxPoints: this.options.maxPoints ?? DEFAULT_MAX_POINTS });
          break;
        }
        case 'objects':
          checkObjects(message as v2xfuse.v1.ObjectList);
          break;
        case 'status':
          checkStatus(message as v2xfuse.v1.AgentStatus);
          break;
        case 'result':
          checkResult(message as v2xfuse.v1.FusionResult);
          break;
      }
    } catch (err) {
      // 'input' from a decoder means the caller's buffers do not fit the receiver's own grid: this node's fault.
      if (err instanceof CodecError) refuse(err.kind === 'corrupt' ? 'corrupt' : 'internal', err.message);
      throw err;
    }

    // Only now, with every check passed, is the window written: a forged or corrupt message moves nothing.
    let order = { missed: 0, late: false, restarted: false };
    if (window) order = window.admit(sequence, captureNs);
    else if (!lastWill) this.remember(senderId, kind, new ReplayWindow(this.replayWindow, sequence, captureNs));
    if (kind === 'status' && (message as v2xfuse.v1.AgentStatus).state === wire.AgentState.AGENT_STATE_STARTING) {
      // An explicit restart: the sender's other streams may begin again anywhere, even earlier in capture time.
      const kinds = this.records.get(senderId);
      if (kinds) for (const k of [...kinds.keys()]) if (k !== 'status') kinds.delete(k);
    }

    return {
      ok: true,
      kind,
      senderId,
      message,
      payload: payload as DecodedPayloadOfKind[K],
      sequence,
      captureTimeNs: captureNs,
      sendTimeNs: nsFromWire(header.sendTimeNs),
      byteLength: bytes.byteLength,
      keyId,
      ...order,
    };
  }

  private remember(senderId: string, kind: MessageKind, record: ReplayWindow): void {
    let kinds = this.records.get(senderId);
    if (!kinds) {
      if (this.records.size >= MAX_TRACKED_SENDERS) {
        const oldest = this.records.keys().next().value;
        if (oldest !== undefined) this.records.delete(oldest);
      }
      this.records.set(senderId, (kinds = new Map()));
    }
    kinds.set(kind, record);
  }
}

function formatMs(ns: bigint): string {
  return `${(Number(ns) / 1e6).toFixed(1)} ms`;
}
