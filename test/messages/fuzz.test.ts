// Seeded fuzz of the receiving gate: valid signed messages of every kind, damaged the ways a network or an attacker
// would (random bytes, truncation, bit flips, inserted and deleted bytes, swapped and repeated records, a message
// of another kind), must never make admit() throw or fail inside, and, with signatures required, never be admitted
// unless what was signed is untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  type MessageKind,
  MESSAGE_KINDS,
  MessageGate,
  REJECTION_REASONS,
  TrustList,
  generateSigningKey,
  signMessage,
  signingKeyFromPem,
  splitSignature,
} from '../../src/messages/index.ts';
import { seededRandom } from '../codec/synthetic-bev.ts';
import { MODEL_ID, NOW_NS, RECEIVER_GRID, sampleBytes, sampleSender } from './sample-messages.ts';

const SEED = 0x0f022;
const CASES = 3000;

const pair = generateSigningKey();
const key = signingKeyFromPem(pair.privateKeyPem);
const entry = [{ keyId: pair.keyId, publicKeyPem: pair.publicKeyPem }];
const trust = TrustList.fromKeys({ '100': entry, 'fusion-100': entry });

const SIGNED = Object.fromEntries(MESSAGE_KINDS.map((k) => [k, signMessage(k, sampleBytes(k), key)])) as Record<MessageKind, Uint8Array>;
const UNSIGNED = Object.fromEntries(MESSAGE_KINDS.map((k) => [k, sampleBytes(k)])) as Record<MessageKind, Uint8Array>;

/** Top-level records as [start, end) byte ranges; stops at the first one that does not parse. */
function records(bytes: Uint8Array): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let at = 0;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; shift < 35 && at < bytes.length; shift += 7) {
      const b = bytes[at++];
      v += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) return v;
    }
    return -1;
  };
  while (at < bytes.length) {
    const start = at;
    const tag = varint();
    if (tag < 0) break;
    const wt = tag & 7;
    if (wt === 0) varint();
    else if (wt === 1) at += 8;
    else if (wt === 5) at += 4;
    else if (wt === 2) {
      const n = varint();
      if (n < 0) break;
      at += n;
    } else break;
    if (at > bytes.length) break;
    out.push([start, at]);
  }
  return out;
}

type Mutation = (b: Uint8Array, random: () => number) => Uint8Array;

const int = (random: () => number, n: number) => Math.floor(random() * n);

const MUTATIONS: Record<string, Mutation> = {
  randomBytes: (_b, random) => Uint8Array.from({ length: int(random, 400) }, () => int(random, 256)),
  truncate: (b, random) => b.slice(0, int(random, b.length)),
  bitFlips: (b, random) => {
    const m = b.slice();
    const flips = 1 + int(random, 8);
    for (let i = 0; i < flips; i++) {
      const bit = int(random, m.length * 8);
      m[bit >>> 3] ^= 1 << (bit & 7);
    }
    return m;
  },
  insertBytes: (b, random) => {
    const at = int(random, b.length + 1);
    const extra = Uint8Array.from({ length: 1 + int(random, 4) }, () => int(random, 256));
    return new Uint8Array([...b.subarray(0, at), ...extra, ...b.subarray(at)]);
  },
  deleteBytes: (b, random) => {
    const at = int(random, b.length);
    return new Uint8Array([...b.subarray(0, at), ...b.subarray(at + 1 + int(random, 4))]);
  },
  overwriteByte: (b, random) => {
    const m = b.slice();
    m[int(random, m.length)] = [0x00, 0x7f, 0x80, 0xff][int(random, 4)];
    return m;
  },
  swapRecords: (b, random) => {
    const r = records(b);
    if (r.length < 2) return b;
    const i = int(random, r.length);
    let j = int(random, r.length - 1);
    if (j >= i) j++;
    const parts = r.map(([s, e]) => b.subarray(s, e));
    [parts[i], parts[j]] = [parts[j], parts[i]];
    return new Uint8Array(parts.flatMap((p) => [...p]));
  },
  repeatRecord: (b, random) => {
    const r = records(b);
    const [s, e] = r[int(random, r.length)];
    return new Uint8Array([...b, ...b.subarray(s, e)]);
  },
  otherKind: (_b, random) => SIGNED[MESSAGE_KINDS[int(random, MESSAGE_KINDS.length)]],
  unsignedCopy: (_b, random) => UNSIGNED[MESSAGE_KINDS[int(random, MESSAGE_KINDS.length)]],
};

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function signedPart(kind: MessageKind, bytes: Uint8Array): Uint8Array | undefined {
  try {
    return splitSignature(kind, bytes).signed;
  } catch {
    return undefined;
  }
}

test(`fuzz: ${CASES} damaged signed messages never throw, fail inside, or pass with altered signed bytes`, () => {
  const random = seededRandom(SEED);
  const names = Object.keys(MUTATIONS);
  const outcomes = new Map<string, number>();
  const started = performance.now();
  for (let i = 0; i < CASES; i++) {
    const kind = MESSAGE_KINDS[int(random, MESSAGE_KINDS.length)];
    const name = names[int(random, names.length)];
    const original = SIGNED[kind];
    const mutated = MUTATIONS[name](original, random);
    // A fresh gate per case: each case stands alone (no replay state carried from the previous one).
    const gate = new MessageGate({ expectedModelId: MODEL_ID, grid: RECEIVER_GRID, trust, requireSignatures: true });
    const a = gate.admit(kind, sampleSender(kind), mutated, NOW_NS);
    const outcome = a.ok ? 'ok' : a.reason;
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    const where = `case ${i} (${name} of ${kind}, ${mutated.length} bytes)`;
    assert.ok(outcome === 'ok' || (REJECTION_REASONS as readonly string[]).includes(outcome), `${where}: unknown reason ${outcome}`);
    assert.notEqual(outcome, 'internal', `${where}: ${!a.ok && a.detail}`);
    if (a.ok) {
      // Only changes outside the signed bytes may pass: a moved signature record, say. What was signed is intact.
      const signed = signedPart(kind, mutated);
      assert.ok(signed && equalBytes(signed, signedPart(kind, original) as Uint8Array), `${where}: admitted with altered signed bytes`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  // Most damage must reach the checks that matter, not all stop at one early door.
  const counts = Object.fromEntries(outcomes);
  assert.ok((counts['bad-signature'] ?? 0) > CASES / 10, JSON.stringify(counts));
  assert.ok((counts.malformed ?? 0) > CASES / 20, JSON.stringify(counts));
  assert.ok((counts.ok ?? 0) > 0, `the undamaged other-kind copies of the right kind are admitted: ${JSON.stringify(counts)}`);
  // Speed is the benchmarks' business; printed for whoever reads the log.
  console.log(`# ${CASES} fuzz cases in ${seconds.toFixed(2)} s`);
});

test(`fuzz: ${CASES} damaged unsigned messages, signatures optional: never throw or fail inside`, () => {
  const random = seededRandom(SEED + 1);
  const names = Object.keys(MUTATIONS);
  const reasons = new Set<string>();
  for (let i = 0; i < CASES; i++) {
    const kind = MESSAGE_KINDS[int(random, MESSAGE_KINDS.length)];
    const name = names[int(random, names.length)];
    const mutated = MUTATIONS[name](UNSIGNED[kind], random);
    const gate = new MessageGate({ expectedModelId: MODEL_ID, grid: RECEIVER_GRID, requireSignatures: false });
    const a = gate.admit(kind, sampleSender(kind), mutated, NOW_NS);
    assert.ok(a.ok || a.reason !== 'internal', `case ${i} (${name} of ${kind}): ${!a.ok && a.detail}`);
    if (!a.ok) reasons.add(a.reason);
    if (a.ok && kind === 'features') {
      // Whatever passed decodes to the receiver's shape with finite values only.
      const f = (a.payload as { features: Float32Array }).features;
      assert.equal(f.length, RECEIVER_GRID.channels * RECEIVER_GRID.height * RECEIVER_GRID.width);
      assert.ok(f.every(Number.isFinite), `case ${i}: admitted features hold a non-finite value`);
    }
  }
  // Without signatures the payload checks are what stops damage: the codec must have been reached.
  for (const r of ['malformed', 'corrupt']) assert.ok(reasons.has(r), `no '${r}' among ${[...reasons].join(', ')}`);
});
