import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TrustList, loadSigningKey, signMessage } from '../../src/messages/index.ts';
import { sampleBytes } from '../messages/sample-messages.ts';
import { runCli } from './helpers.ts';

test('keygen writes owner-only keys and a trust list that verifies what they sign; it refuses to overwrite without --force', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-keygen-'));
  const out = join(dir, 'keys');
  try {
    const first = await runCli(['keygen', '--ids', '100,101,-1', '--out', out]);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /agent -1: key [0-9a-f]{16} → .*-1\.key\.pem/);
    for (const id of ['100', '101', '-1']) {
      assert.equal((await stat(join(out, `${id}.key.pem`))).mode & 0o777, 0o600, `${id}.key.pem is readable by its owner only`);
    }
    const trust = await TrustList.load(join(out, 'trust.json'));
    assert.deepEqual(trust.agents().sort(), ['-1', '100', '101']);
    const key100 = await loadSigningKey(join(out, '100.key.pem'));
    const signed = signMessage('objects', sampleBytes('objects'), key100);
    assert.deepEqual(trust.verify('objects', '100', signed), { ok: true, keyId: key100.keyId });
    assert.equal((trust.verify('objects', '101', signed) as { reason?: string }).reason, 'bad-signature');

    // Existing keys stay unless --force; nothing is written by a refused run.
    const before = await readFile(join(out, '101.key.pem'), 'utf8');
    const again = await runCli(['keygen', '--ids', '102,101', '--out', out]);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /^v2xfuse: keygen: .* already has keys for agent 101; add --force to replace them\n$/);
    await assert.rejects(stat(join(out, '102.key.pem')), /ENOENT/);
    assert.equal(await readFile(join(out, '101.key.pem'), 'utf8'), before);

    // A new agent is added to the existing list; --force replaces a key and its trust entry.
    assert.equal((await runCli(['keygen', '--ids', '102', '--out', out])).code, 0);
    const forced = await runCli(['keygen', '--ids', '101', '--out', out, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.notEqual(await readFile(join(out, '101.key.pem'), 'utf8'), before);
    const updated = await TrustList.load(join(out, 'trust.json'));
    assert.deepEqual(updated.agents().sort(), ['-1', '100', '101', '102']);
    const key101 = await loadSigningKey(join(out, '101.key.pem'));
    assert.ok(updated.verify('objects', '101', signMessage('objects', sampleBytes('objects', { senderId: '101' }), key101)).ok);
    assert.ok(updated.verify('objects', '100', signed).ok, 'the other agents keep their keys');

    const badId = await runCli(['keygen', '--ids', '../evil', '--out', out]);
    assert.equal(badId.code, 2);
    assert.match(badId.stderr, /agent id '\.\.\/evil' must be letters, digits/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
