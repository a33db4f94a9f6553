// TLS on a real Mosquitto with deploy/mosquitto/mosquitto-tls.conf: throwaway certificates made with openssl in a
// temporary folder (a CA, a server certificate for 127.0.0.1 signed by it, and a second, unrelated CA). A client
// that trusts the CA connects over mqtts:// with its user and password and exchanges messages; one that trusts
// another CA, or reaches the broker under a name its certificate does not carry, is refused at once with an error
// that says what failed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BrokerRefusedError, BrokerTlsError, MqttLink, agentTopic, allAgentsFilter } from '../../src/transport/index.ts';
import { type ControlledMosquitto, MOSQUITTO_MISSING, findMosquitto, startControlledMosquitto } from './mosquitto-broker.ts';

const USERS = { '100': 'pw-100', fusion: 'pw-fusion' };
const openssl = spawnSync('openssl', ['version']).status === 0;
const installed = findMosquitto() !== undefined;
const skip = !installed ? MOSQUITTO_MISSING : !openssl ? 'openssl is not installed' : false;
if (skip && process.env.CI) test('mosquitto and openssl are installed', () => assert.fail(String(skip)));

function run(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** A P-256 CA and a server certificate it signs, naming `names` (subjectAltName entries). */
function makeCertificates(dir: string, prefix: string, names: string): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run(dir, ['req', '-x509', ...ec, '-keyout', `${prefix}ca.key`, '-out', `${prefix}ca.crt`, '-days', '2', '-subj', `/CN=v2xfuse test CA ${prefix}`]);
  run(dir, ['req', ...ec, '-keyout', `${prefix}server.key`, '-out', `${prefix}server.csr`, '-subj', '/CN=v2xfuse broker']);
  writeFileSync(join(dir, `${prefix}ext.cnf`), `subjectAltName=${names}\n`);
  run(dir, ['x509', '-req', '-in', `${prefix}server.csr`, '-CA', `${prefix}ca.crt`, '-CAkey', `${prefix}ca.key`, '-CAcreateserial', '-out', `${prefix}server.crt`, '-days', '2', '-extfile', `${prefix}ext.cnf`]);
}

describe('Mosquitto over TLS (mosquitto-tls.conf)', { skip }, () => {
  let dir: string;
  let broker: ControlledMosquitto;
  const links: MqttLink[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'v2xfuse-tls-'));
    makeCertificates(dir, '', 'IP:127.0.0.1,DNS:localhost');
    makeCertificates(dir, 'other-', 'IP:127.0.0.1');
    broker = await startControlledMosquitto(USERS, { tls: { cafile: join(dir, 'ca.crt'), certfile: join(dir, 'server.crt'), keyfile: join(dir, 'server.key') } });
  });
  after(async () => {
    await Promise.all(links.map((l) => l.end()));
    await broker?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a client that trusts the CA connects over mqtts:// (MQTT 5) and messages flow', async () => {
    assert.match(broker.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
    const ca = readFileSync(join(dir, 'ca.crt'));
    const fusion = await MqttLink.connect({ url: broker.url, clientId: 'tls-fusion', username: 'fusion', password: USERS.fusion, ca });
    const agent = await MqttLink.connect({ url: broker.url, clientId: 'tls-100', username: '100', password: USERS['100'], ca: ca.toString('utf8') });
    links.push(fusion, agent);
    assert.equal(fusion.protocolVersion, 5);
    const got: string[] = [];
    fusion.onMessage((_t, p) => got.push(Buffer.from(p).toString()));
    await fusion.subscribe(allAgentsFilter('tls'), 1);
    await agent.publish(agentTopic('tls', '100', 'objects'), Buffer.from('over tls'), { qos: 1 });
    const deadline = Date.now() + 5000;
    while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(got, ['over tls']);
  });

  test('a client that trusts another CA is refused at once, with a TLS error naming the broker', async () => {
    const t0 = Date.now();
    await assert.rejects(
      MqttLink.connect({ url: broker.url, clientId: 'tls-wrong-ca', username: '100', password: USERS['100'], ca: readFileSync(join(dir, 'other-ca.crt')), connectTimeoutMs: 20_000 }),
      (err: unknown) => {
        assert.ok(err instanceof BrokerTlsError, String(err));
        assert.equal(err.userFacing, true);
        assert.ok(err.message.includes(broker.url), err.message);
        assert.match(err.code, /SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
        return true;
      },
    );
    // Not retried until the 20 s connect timeout: a certificate does not become trusted by asking again.
    assert.ok(Date.now() - t0 < 15_000);
  });

  test('no CA given: the system trust store does not know the private CA, refused', async () => {
    await assert.rejects(MqttLink.connect({ url: broker.url, clientId: 'tls-no-ca', username: '100', password: USERS['100'] }), BrokerTlsError);
  });

  test('the name checked is the one dialled: reached as localhost (a DNS name in the certificate) it connects too', async () => {
    const l = await MqttLink.connect({ url: broker.url.replace('127.0.0.1', 'localhost'), clientId: 'tls-localhost', username: '100', password: USERS['100'], ca: readFileSync(join(dir, 'ca.crt')) });
    links.push(l);
    assert.equal(l.connected, true);
  });

  test('TLS does not replace the users: a wrong password is still refused', async () => {
    await assert.rejects(
      MqttLink.connect({ url: broker.url, clientId: 'tls-bad-pw', username: '100', password: 'wrong', ca: readFileSync(join(dir, 'ca.crt')) }),
      BrokerRefusedError,
    );
  });
});
