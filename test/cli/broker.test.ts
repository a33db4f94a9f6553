// `v2xfuse broker`: prints its URL first, serves MQTT, stops cleanly on SIGINT and SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { MqttLink } from '../../src/transport/index.ts';
import { projectRoot, runCli } from './helpers.ts';

function startBrokerCommand(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', resolve(projectRoot, 'src/cli/main.ts'), 'broker', ...args], { cwd: projectRoot });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const url = new Promise<string>((resolveUrl, reject) => {
    child.stdout.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n')) resolveUrl(line);
    });
    child.once('exit', (code) => reject(new Error(`broker exited early (${code}): ${stderr}`)));
  });
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, url, exit, stderr: () => stderr };
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`broker --port 0 prints a working URL and exits 0 on ${signal}`, async () => {
    const b = startBrokerCommand(['--port', '0']);
    try {
      const url = await b.url;
      assert.match(url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
      const link = await MqttLink.connect({ url, clientId: 'cli-test' });
      assert.equal(link.protocolVersion, 4);
      let got = '';
      link.onMessage((_t, p) => (got = new TextDecoder().decode(p)));
      await link.subscribe('v2xfuse/v1/t/agent/1/status');
      await link.publish('v2xfuse/v1/t/agent/1/status', new TextEncoder().encode('hello'), { qos: 1 });
      for (let i = 0; i < 100 && got === ''; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(got, 'hello');
      await link.end();
      b.child.kill(signal);
      assert.equal(await b.exit, 0, b.stderr());
      assert.match(b.stderr(), new RegExp(`stopped \\(${signal}\\)`));
    } finally {
      if (b.child.exitCode === null) b.child.kill('SIGKILL');
    }
  });
}

test('broker on a port that is taken: one line naming the address, exit 3', async () => {
  const b = startBrokerCommand(['--port', '0']);
  try {
    const port = new URL(await b.url).port;
    const r = await runCli(['broker', '--port', port]);
    assert.equal(r.code, 3);
    assert.match(r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}.*EADDRINUSE`));
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  } finally {
    b.child.kill('SIGTERM');
    await b.exit;
  }
});

test('broker --port with a bad value is a usage error', async () => {
  const r = await runCli(['broker', '--port', '70000']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--port must be an integer in 0\.\.65535/);
});
