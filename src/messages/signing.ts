// Message signatures: ECDSA over NIST P-256 with SHA-256 (the algorithm IEEE 1609.2 uses), r ‖ s in IEEE P1363
// form (64 bytes, WebCrypto's format), over the message's full type name, a zero byte and its bytes without the
// signature field (common.proto). Without the name, a signed AgentStatus re-published on an agent's objects topic
// would parse as an empty ObjectList (protobuf skips fields of the wrong wire type) and pass as genuine.
//
// Key ids are HashedId8-style fingerprints: the first 8 bytes of SHA-256 over the public key's DER
// SubjectPublicKeyInfo, as hex. They let a receiver pick the right key of a sender that rotates keys without a
// second lookup table, and they are derived, so a private key file needs no side file to say which key it is.
import { type KeyObject, createHash, createPrivateKey, createPublicKey, createSign, createVerify, generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { type MessageKind, type SignatureSplit, MessageDecodeError, SIGNATURE_FIELD, Signature, splitSignature } from './index.ts';

/** Length of an IEEE P1363 ECDSA P-256 signature: r and s, 32 bytes each. */
export const SIGNATURE_BYTES = 64;

const TYPE_NAME: Record<MessageKind, string> = {
  features: 'v2xfuse.v1.FeatureFrame',
  objects: 'v2xfuse.v1.ObjectList',
  points: 'v2xfuse.v1.PointCloudFrame',
  status: 'v2xfuse.v1.AgentStatus',
  result: 'v2xfuse.v1.FusionResult',
};

/** What precedes a message's bytes in the signed data: its full protobuf type name and a zero byte. */
export function signingContext(kind: MessageKind): Uint8Array {
  return new TextEncoder().encode(`${TYPE_NAME[kind]}\0`);
}

const CONTEXTS = new Map<MessageKind, Uint8Array>();
function contextOf(kind: MessageKind): Uint8Array {
  let c = CONTEXTS.get(kind);
  if (!c) CONTEXTS.set(kind, (c = signingContext(kind)));
  return c;
}

/** A private key file that cannot be used for signing; the message names the file. */
export class SigningKeyError extends Error {
  readonly userFacing = true;
  constructor(readonly keyPath: string, detail: string) {
    super(`signing key ${keyPath}: ${detail}`);
    this.name = new.target.name;
  }
}

/** A trust list that cannot be used; `field` is the dotted path inside it ('' for the file as a whole). */
export class TrustListError extends Error {
  readonly userFacing = true;
  constructor(readonly trustPath: string, readonly field: string, detail: string) {
    super(`trust list ${trustPath}${field ? `: ${field}` : ''}: ${detail}`);
    this.name = new.target.name;
  }
}

/** A freshly generated key pair, PEM-encoded (PKCS#8 private key, SPKI public key). */
export interface SigningKeyPair {
  keyId: string;
  privateKeyPem: string;
  publicKeyPem: string;
}

/** A private key ready to sign with. */
export interface SigningKey {
  keyId: string;
  privateKey: KeyObject;
}

function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** HashedId8-style key id: hex of the first 8 bytes of SHA-256 over the DER SubjectPublicKeyInfo. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest().subarray(0, 8).toString('hex');
}

/** A new P-256 key pair; `keyId` defaults to the public key's fingerprint (keyIdOf). */
export function generateSigningKey(keyId?: string): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return {
    keyId: keyId ?? keyIdOf(publicKey),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }) as string,
  };
}

/** A signing key from PEM text; `source` names where it came from in errors. keyId defaults to the fingerprint. */
export function signingKeyFromPem(pem: string, source = '<pem>', keyId?: string): SigningKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (err) {
    throw new SigningKeyError(source, `not a PEM private key (${(err as Error).message})`);
  }
  if (!isP256(privateKey)) {
    const curve = privateKey.asymmetricKeyDetails?.namedCurve;
    throw new SigningKeyError(source, `is a ${privateKey.asymmetricKeyType}${curve ? ` ${curve}` : ''} key; messages are signed with ECDSA P-256 (prime256v1)`);
  }
  return { keyId: keyId ?? keyIdOf(createPublicKey(privateKey)), privateKey };
}

/** Reads a PEM private key file (as `v2xfuse keygen` writes it). Throws SigningKeyError naming the file. */
export async function loadSigningKey(path: string, keyId?: string): Promise<SigningKey> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw new SigningKeyError(path, `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return signingKeyFromPem(pem, path, keyId);
}

/** The Signature sub-message (field 1: the 64 signature bytes, field 2: the key id), encoded. */
function encodeSignatureField(signature: Uint8Array, keyId: string): Uint8Array {
  const body = Signature.encode({ ecdsaP256Sha256: signature, keyId }).finish();
  // Tag of field 15, wire type 2 (15 << 3 | 2 = 122) fits one varint byte; the body is < 128 + key id bytes.
  const length: number[] = [];
  for (let n = body.byteLength; ; n >>>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  const out = new Uint8Array(1 + length.length + body.byteLength);
  out[0] = (SIGNATURE_FIELD << 3) | 2;
  out.set(length, 1);
  out.set(body, 1 + length.length);
  return out;
}

/**
 * Signs an encoded message: returns its bytes with a Signature (field 15) appended, computed over
 * signingContext(kind) ‖ `bytes`.
 * `bytes` must not already hold a signature (the receiver strips field 15 before verifying, so a second one could
 * never verify); a message that is not a valid sequence of protobuf records throws MessageDecodeError.
 */
export function signMessage(kind: MessageKind, bytes: Uint8Array, key: SigningKey): Uint8Array {
  if (splitSignature(kind, bytes).signature) {
    throw new Error(`${kind} message already carries a signature (field ${SIGNATURE_FIELD}): sign the unsigned bytes`);
  }
  // Streamed in two parts: no copy of a large feature message just to put the type name in front.
  const signature = createSign('sha256').update(contextOf(kind)).update(bytes).sign({ key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  const field = encodeSignatureField(signature, key.keyId);
  const out = new Uint8Array(bytes.byteLength + field.byteLength);
  out.set(bytes, 0);
  out.set(field, bytes.byteLength);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Trust list

export type SignatureFailure = 'malformed' | 'unsigned' | 'unknown-sender' | 'bad-signature';

export type SignatureCheck =
  | { ok: true; keyId: string }
  | { ok: false; reason: SignatureFailure; detail: string };

/** One trusted public key of an agent. */
export interface TrustedKey {
  keyId: string;
  publicKeyPem: string;
}

const trustListSchema = z
  .object({
    version: z.literal(1),
    agents: z.record(
      z.string().min(1),
      z.array(z.object({ keyId: z.string(), publicKeyPem: z.string().min(1) }).strict()).min(1, 'an agent needs at least one key'),
    ),
  })
  .strict();

/** The JSON shape of a trust list file. */
export type TrustListJson = z.infer<typeof trustListSchema>;

function fieldPath(p: readonly PropertyKey[]): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i === 0 ? '' : '.'}${String(k)}`)).join('');
}

interface LoadedKey {
  keyId: string;
  publicKey: KeyObject;
}

/**
 * The public keys a receiver trusts, per agent id: `{ "version": 1, "agents": { "<agentId>": [ { "keyId": "...",
 * "publicKeyPem": "..." } ] } }`. A sender may list several keys (rotation); a signature names its key by id, and
 * an empty id means "try every key of the sender" (common.proto: empty = its only key).
 */
export class TrustList {
  private constructor(private readonly keys: ReadonlyMap<string, readonly LoadedKey[]>, readonly source: string) {}

  /** Reads and checks a trust list file; TrustListError names the file and the first offending field. */
  static async load(path: string): Promise<TrustList> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new TrustListError(path, '', `cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (err) {
      throw new TrustListError(path, '', `is not JSON (${(err as Error).message})`);
    }
    return TrustList.fromJson(json, path);
  }

  /** Checks a parsed trust list object; `source` names it in errors. */
  static fromJson(json: unknown, source = '<trust list>'): TrustList {
    const result = trustListSchema.safeParse(json);
    if (!result.success) {
      const issue = result.error.issues[0];
      let p = [...issue.path];
      if (issue.code === 'unrecognized_keys' && issue.keys.length >= 1) p = [...p, issue.keys[0]];
      throw new TrustListError(source, fieldPath(p), issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message);
    }
    const keys = new Map<string, LoadedKey[]>();
    for (const [agentId, list] of Object.entries(result.data.agents)) {
      const loaded: LoadedKey[] = [];
      list.forEach((entry, i) => {
        const field = `agents.${agentId}[${i}]`;
        // createPublicKey accepts a private key too (it derives the public half): a file that holds private keys
        // must not be handed around as a trust list, so it is refused outright.
        if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(entry.publicKeyPem)) {
          throw new TrustListError(source, `${field}.publicKeyPem`, 'holds a private key: a trust list lists public keys only');
        }
        let publicKey: KeyObject;
        try {
          publicKey = createPublicKey(entry.publicKeyPem);
        } catch (err) {
          throw new TrustListError(source, `${field}.publicKeyPem`, `not a PEM public key (${(err as Error).message})`);
        }
        if (!isP256(publicKey)) throw new TrustListError(source, `${field}.publicKeyPem`, `is not an ECDSA P-256 (prime256v1) key`);
        if (loaded.some((k) => k.keyId === entry.keyId)) throw new TrustListError(source, `${field}.keyId`, `'${entry.keyId}' is listed twice for agent ${agentId}`);
        loaded.push({ keyId: entry.keyId, publicKey });
      });
      keys.set(agentId, loaded);
    }
    return new TrustList(keys, source);
  }

  /** A trust list from keys in memory (tests, or a deployment that keeps keys elsewhere). */
  static fromKeys(agents: Record<string, TrustedKey[]>, source = '<trust list>'): TrustList {
    return TrustList.fromJson({ version: 1, agents }, source);
  }

  /** The agent ids it lists. */
  agents(): string[] {
    return [...this.keys.keys()];
  }

  has(agentId: string): boolean {
    return this.keys.has(agentId);
  }

  /** Checks the signature of a message as received, from `senderId` (the id its topic and header name). */
  verify(kind: MessageKind, senderId: string, bytes: Uint8Array): SignatureCheck {
    let split: SignatureSplit;
    try {
      split = splitSignature(kind, bytes);
    } catch (err) {
      if (err instanceof MessageDecodeError) return { ok: false, reason: 'malformed', detail: err.message };
      throw err;
    }
    return this.verifySplit(kind, senderId, split);
  }

  /** verify() on a message already split with splitSignature (the gate splits once). */
  verifySplit(kind: MessageKind, senderId: string, split: SignatureSplit): SignatureCheck {
    if (!split.signature) return { ok: false, reason: 'unsigned', detail: `no signature (field ${SIGNATURE_FIELD})` };
    const candidates = this.keys.get(senderId);
    if (!candidates) return { ok: false, reason: 'unknown-sender', detail: `agent '${senderId}' is not in trust list ${this.source}` };
    let parsed: Signature;
    try {
      parsed = Signature.decode(split.signature);
    } catch (err) {
      return { ok: false, reason: 'bad-signature', detail: `signature field does not parse (${(err as Error).message})` };
    }
    const sig = parsed.ecdsaP256Sha256;
    if (sig.byteLength !== SIGNATURE_BYTES) {
      return { ok: false, reason: 'bad-signature', detail: `signature has ${sig.byteLength} bytes, expected ${SIGNATURE_BYTES} (r ‖ s)` };
    }
    const keys = parsed.keyId ? candidates.filter((k) => k.keyId === parsed.keyId) : candidates;
    if (keys.length === 0) {
      return { ok: false, reason: 'bad-signature', detail: `key id '${parsed.keyId}' is not one of agent '${senderId}''s trusted keys` };
    }
    for (const k of keys) {
      const verifier = createVerify('sha256').update(contextOf(kind)).update(split.signed);
      if (verifier.verify({ key: k.publicKey, dsaEncoding: 'ieee-p1363' }, sig)) return { ok: true, keyId: k.keyId };
    }
    return {
      ok: false,
      reason: 'bad-signature',
      detail: `signature does not verify with ${parsed.keyId ? `key ${parsed.keyId}` : `any of the ${keys.length} keys`} of agent '${senderId}'`,
    };
  }
}

/** The JSON object of a trust list (what `v2xfuse keygen` writes), agents sorted by id for stable diffs. */
export function trustListJson(agents: Record<string, TrustedKey[]>): TrustListJson {
  const sorted: Record<string, TrustedKey[]> = {};
  for (const id of Object.keys(agents).sort()) sorted[id] = agents[id].map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKeyPem }));
  return { version: 1, agents: sorted };
}
