import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MOSQUITTO_DEPLOY_DIR, MosquittoConfigError, renderDeployedMosquittoConfig, renderMosquittoConfig } from '../../src/transport/index.ts';

const settings = { port: 18830, passwordFile: '/tmp/x/passwd', aclFile: '/tmp/x/acl' };

test('the deployed config renders with the listener and files replaced and every other setting kept', async () => {
  const template = await readFile(join(MOSQUITTO_DEPLOY_DIR, 'mosquitto.conf'), 'utf8');
  const out = await renderDeployedMosquittoConfig(settings);
  const directives = (text: string) => text.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
  assert.deepEqual(
    directives(out).filter((l) => /^(listener|password_file|acl_file) /.test(l)),
    ['listener 18830 127.0.0.1', 'password_file /tmp/x/passwd', 'acl_file /tmp/x/acl'],
  );
  const kept = (text: string) => directives(text).filter((l) => !/^(listener|password_file|acl_file) /.test(l));
  assert.deepEqual(kept(out), kept(template));
  // The settings the deployment depends on are in the template itself.
  for (const line of ['allow_anonymous false', 'max_queued_messages 10000', 'listener 1883 127.0.0.1']) {
    assert.ok(directives(template).includes(line), `deploy/mosquitto/mosquitto.conf lacks '${line}'`);
  }
});

test('a template without (or with two of) a replaced directive, and unsafe values, are refused', () => {
  const good = 'listener 1883 127.0.0.1\npassword_file /a\nacl_file /b\n';
  assert.match(renderMosquittoConfig(good, { ...settings, host: '0.0.0.0' }), /^listener 18830 0\.0\.0\.0$/m);
  assert.throws(() => renderMosquittoConfig('listener 1883\npassword_file /a\n', settings), /exactly one 'acl_file' line, found 0/);
  assert.throws(() => renderMosquittoConfig(good + 'listener 1884\n', settings), /exactly one 'listener' line, found 2/);
  assert.throws(() => renderMosquittoConfig(good, { ...settings, port: 0 }), MosquittoConfigError);
  assert.throws(() => renderMosquittoConfig(good, { ...settings, aclFile: '/b\nallow_anonymous true' }), /single-line/);
  assert.throws(() => renderMosquittoConfig(good, { ...settings, host: '1.2.3.4 extra' }), MosquittoConfigError);
});
