import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, webcrypto } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  MESSAGE_KINDS,
  MessageDecodeError,
  MessageGate,
  SIGNATURE_BYTES,
  SigningKeyError,
  TrustList,
  TrustListError,
  generateSigningKey,
  keyIdOf,
  loadSigningKey,
  decodeMessage,
  signMessage,
  signingContext,
  signingKeyFromPem,
  splitSignature,
  wire,
} from '../../src/messages/index.ts';
import { MODEL_ID, NOW_NS, RECEIVER_GRID, sampleBytes, sampleSender } from './sample-messages.ts';

const pairA = generateSigningKey();
const keyA = signingKeyFromPem(pairA.privateKeyPem);
const pairB = generateSigningKey();
const keyB = signingKeyFromPem(pairB.privateKeyPem);
const trust = TrustList.fromKeys({
  '100': [{ keyId: pairA.keyId, publicKeyPem: pairA.publicKeyPem }],
  '101': [{ keyId: pairB.keyId, publicKeyPem: pairB.publicKeyPem }],
  'fusion-100': [{ keyId: pairA.keyId, publicKeyPem: pairA.publicKeyPem }],
});

test('sign and verify round trip for every kind; the signed part is exactly the original bytes', () => {
  for (const kind of MESSAGE_KINDS) {
    const bytes = sampleBytes(kind);
    const signed = signMessage(kind, bytes, keyA);
    assert.deepEqual(trust.verify(kind, sampleSender(kind), signed), { ok: true, keyId: pairA.keyId });
    const split = splitSignature(kind, signed);
    assert.deepEqual(split.signed, bytes);
    const sig = wire.Signature.decode(split.signature as Uint8Array);
    assert.equal(sig.ecdsaP256Sha256.byteLength, SIGNATURE_BYTES);
    assert.equal(sig.keyId, pairA.keyId);
  }
});

test('the key id is the public key fingerprint, the same from the private and the public PEM', () => {
  assert.match(pairA.keyId, /^[0-9a-f]{16}$/);
  assert.equal(keyA.keyId, pairA.keyId);
  assert.equal(keyIdOf(createPublicKey(pairA.publicKeyPem)), pairA.keyId);
  assert.notEqual(pairA.keyId, pairB.keyId);
  assert.equal(generateSigningKey('rotation-2').keyId, 'rotation-2');
});

test('the signature is r ‖ s (IEEE P1363) and WebCrypto verifies it independently', async () => {
  const bytes = sampleBytes('objects');
  const split = splitSignature('objects', signMessage('objects', bytes, keyA));
  const sig = wire.Signature.decode(split.signature as Uint8Array).ecdsaP256Sha256;
  assert.equal(sig.byteLength, 64);
  const der = createPublicKey(pairA.publicKeyPem).export({ type: 'spki', format: 'der' });
  const pub = await webcrypto.subtle.importKey('spki', der, { name: 'ECDSA', namedCurve: 'P-256' }, false, ['verify']);
  // The signed data as common.proto defines it: the type name, a zero byte, the message without field 15.
  const context = new TextEncoder().encode('v2xfuse.v1.ObjectList\0');
  assert.deepEqual(signingContext('objects'), context);
  const signedData = new Uint8Array([...context, ...bytes]);
  assert.equal(await webcrypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, sig, signedData), true);
  const other = signedData.slice();
  other[other.length - 1] ^= 1;
  assert.equal(await webcrypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, sig, other), false);
  assert.equal(await webcrypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-256' }, pub, sig, bytes), false, 'the type name is part of what is signed');
  // And the other way: a WebCrypto signature over the same data verifies here.
  const { privateKey, publicKey } = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const wcSig = new Uint8Array(await webcrypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, privateKey, signedData));
  const pem = createPublicKey({ key: Buffer.from(await webcrypto.subtle.exportKey('spki', publicKey)), format: 'der', type: 'spki' }).export({ type: 'spki', format: 'pem' }) as string;
  const wcTrust = TrustList.fromKeys({ '100': [{ keyId: 'wc', publicKeyPem: pem }] });
  const withSig = new Uint8Array([...bytes, ...wire.FeatureFrame.encode({ signature: { ecdsaP256Sha256: wcSig, keyId: 'wc' } }).finish()]);
  assert.deepEqual(wcTrust.verify('objects', '100', withSig), { ok: true, keyId: 'wc' });
});

test('one flipped bit anywhere in the signed part is refused: bad-signature, or malformed / unsigned when the records break', () => {
  const bytes = sampleBytes('status');
  const signed = signMessage('status', bytes, keyA);
  let badSignature = 0;
  for (let bit = 0; bit < bytes.byteLength * 8; bit++) {
    const m = signed.slice();
    m[bit >>> 3] ^= 1 << (bit & 7);
    const r = trust.verify('status', '100', m);
    assert.equal(r.ok, false, `bit ${bit} flipped and still verified`);
    if (!r.ok) {
      // A flipped length can swallow the signature record into another field: then the message reads unsigned.
      assert.ok(r.reason === 'bad-signature' || r.reason === 'malformed' || r.reason === 'unsigned', `bit ${bit}: ${r.reason}`);
      if (r.reason === 'bad-signature') badSignature++;
    }
  }
  assert.ok(badSignature > bytes.byteLength * 6, `${badSignature} of ${bytes.byteLength * 8} flips reached the signature check`);
  // Flips inside the 64 signature bytes themselves.
  const sigStart = signed.byteLength - 18 - 64; // [tag, len, 0x0a, 64, r‖s (64), 0x12, 16, key id (16)]
  for (const at of [sigStart, sigStart + 31, sigStart + 32, sigStart + 63]) {
    const m = signed.slice();
    m[at] ^= 0x80;
    assert.equal((trust.verify('status', '100', m) as { reason?: string }).reason, 'bad-signature', `signature byte ${at - sigStart}`);
  }
});

test('a key of another agent, an unknown sender, an unknown key id', () => {
  const byB = signMessage('objects', sampleBytes('objects'), keyB);
  assert.deepEqual(trust.verify('objects', '101', byB), { ok: true, keyId: pairB.keyId });
  const asA = trust.verify('objects', '100', byB);
  assert.equal(asA.ok, false);
  assert.equal(!asA.ok && asA.reason, 'bad-signature');
  const unknown = trust.verify('objects', '999', byB);
  assert.equal(!unknown.ok && unknown.reason, 'unknown-sender');
  const unsigned = trust.verify('objects', '100', sampleBytes('objects'));
  assert.equal(!unsigned.ok && unsigned.reason, 'unsigned');
  const wrongId = trust.verify('objects', '100', signMessage('objects', sampleBytes('objects'), { ...keyA, keyId: 'retired' }));
  assert.equal(!wrongId.ok && wrongId.reason, 'bad-signature');
  assert.match(!wrongId.ok ? wrongId.detail : '', /key id 'retired' is not one of agent '100''s trusted keys/);
  const truncated = trust.verify('objects', '100', byB.subarray(0, byB.length - 3));
  assert.equal(!truncated.ok && truncated.reason, 'malformed');
});

test('a signed message of one kind does not pass as another kind that its bytes happen to parse as', () => {
  const status = signMessage('status', sampleBytes('status'), keyA);
  // protobuf skips fields of the wrong wire type: the status reads as an object list with no objects...
  assert.equal(decodeMessage('objects', status).objects.length, 0);
  // ...but the signature covers the type name, so it does not verify as one.
  const asObjects = trust.verify('objects', '100', status);
  assert.equal(!asObjects.ok && asObjects.reason, 'bad-signature');
  assert.ok(trust.verify('status', '100', status).ok);
});

test('key rotation: several keys per agent, chosen by key id; an empty key id tries each', () => {
  const next = generateSigningKey();
  const rotating = TrustList.fromKeys({
    '100': [
      { keyId: pairA.keyId, publicKeyPem: pairA.publicKeyPem },
      { keyId: next.keyId, publicKeyPem: next.publicKeyPem },
    ],
  });
  const bytes = sampleBytes('objects');
  assert.deepEqual(rotating.verify('objects', '100', signMessage('objects', bytes, signingKeyFromPem(next.privateKeyPem))), { ok: true, keyId: next.keyId });
  const anonymous = signMessage('objects', bytes, { ...signingKeyFromPem(next.privateKeyPem), keyId: '' });
  assert.deepEqual(rotating.verify('objects', '100', anonymous), { ok: true, keyId: next.keyId });
});

test('unsigned messages are refused by a gate that requires signatures, admitted by one that does not', () => {
  const options = { expectedModelId: MODEL_ID, grid: RECEIVER_GRID, trust };
  const bytes = sampleBytes('features');
  const strict = new MessageGate({ ...options, requireSignatures: true }).admit('features', '100', bytes, NOW_NS);
  assert.equal(!strict.ok && strict.reason, 'unsigned');
  assert.ok(new MessageGate({ ...options, requireSignatures: false }).admit('features', '100', bytes, NOW_NS).ok);
  assert.ok(new MessageGate({ ...options, requireSignatures: true }).admit('features', '100', signMessage('features', bytes, keyA), NOW_NS).ok);
});

test('signMessage refuses bytes that already carry a signature, and bytes that are not protobuf records', () => {
  const signed = signMessage('objects', sampleBytes('objects'), keyA);
  assert.throws(() => signMessage('objects', signed, keyA), /already carries a signature/);
  assert.throws(() => signMessage('objects', Uint8Array.from([0x0a, 0x05]), keyA), MessageDecodeError);
});

test('loadSigningKey: a clear error naming the file when it is missing or not a P-256 key', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-keys-'));
  try {
    const good = join(dir, '100.key.pem');
    await writeFile(good, pairA.privateKeyPem);
    assert.equal((await loadSigningKey(good)).keyId, pairA.keyId);
    const missing = join(dir, 'absent.pem');
    await assert.rejects(loadSigningKey(missing), (e: unknown) => e instanceof SigningKeyError && e.userFacing && e.message.includes(missing) && /ENOENT/.test(e.message));
    const rsa = join(dir, 'rsa.pem');
    await writeFile(rsa, generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await assert.rejects(loadSigningKey(rsa), new RegExp(`signing key ${rsa}: is a rsa key; messages are signed with ECDSA P-256`));
    const p384 = join(dir, 'p384.pem');
    await writeFile(p384, generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await assert.rejects(loadSigningKey(p384), /is a ec secp384r1 key/);
    const pub = join(dir, 'pub.pem');
    await writeFile(pub, pairA.publicKeyPem);
    await assert.rejects(loadSigningKey(pub), /not a PEM private key/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('TrustList.load: errors name the file and the field', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-trust-'));
  const path = join(dir, 'trust.json');
  const entry = { keyId: pairA.keyId, publicKeyPem: pairA.publicKeyPem };
  const cases: Array<[unknown, RegExp]> = [
    [{ agents: { '100': [entry] } }, /: version: /],
    [{ version: 2, agents: {} }, /: version: /],
    [{ version: 1, agents: { '100': [] } }, /: agents\.100: an agent needs at least one key/],
    [{ version: 1, agents: { '100': [{ keyId: 'k' }] } }, /: agents\.100\[0\]\.publicKeyPem: /],
    [{ version: 1, agents: { '100': [{ ...entry, extra: 1 }] } }, /: agents\.100\[0\]\.extra: unknown field/],
    [{ version: 1, agents: { '100': [{ keyId: 'k', publicKeyPem: 'nope' }] } }, /: agents\.100\[0\]\.publicKeyPem: not a PEM public key/],
    [{ version: 1, agents: { '100': [{ keyId: 'k', publicKeyPem: pairA.privateKeyPem }] } }, /: agents\.100\[0\]\.publicKeyPem: holds a private key/],
    [{ version: 1, agents: { '100': [entry, entry] } }, /: agents\.100\[1\]\.keyId: '[0-9a-f]+' is listed twice/],
  ];
  try {
    for (const [json, pattern] of cases) {
      await writeFile(path, JSON.stringify(json));
      await assert.rejects(TrustList.load(path), (e: unknown) => {
        assert.ok(e instanceof TrustListError && e.userFacing);
        assert.ok(e.message.startsWith(`trust list ${path}: `), e.message);
        assert.match(e.message, pattern);
        return true;
      });
    }
    await writeFile(path, '{ not json');
    await assert.rejects(TrustList.load(path), /is not JSON/);
    await assert.rejects(TrustList.load(join(dir, 'absent.json')), /absent\.json: cannot be read \(ENOENT\)/);
    await writeFile(path, JSON.stringify({ version: 1, agents: { '100': [entry] } }));
    const list = await TrustList.load(path);
    assert.deepEqual(list.agents(), ['100']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
