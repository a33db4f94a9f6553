// `v2xfuse view` as a user starts it: argument errors, bad recordings, and a page served with nothing from outside.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeMessage, nsToWire } from '../../src/messages/index.ts';
import { SessionRecorder } from '../../src/transport/index.ts';
import { decodeEnvelopes } from '../../src/viewer/index.ts';
import { projectRoot, runCli } from '../cli/helpers.ts';

test('view needs exactly one source', async () => {
  const none = await runCli(['view']);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /exactly one of --recording/);
  const both = await runCli(['view', '--recording', 'x.mcap', '--broker', 'mqtt://127.0.0.1:1']);
  assert.equal(both.code, 2);
});

test('view refuses a missing file and a file that is not MCAP, naming the path', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-view-cli-'));
  try {
    const missing = join(dir, 'none.mcap');
    const r1 = await runCli(['view', '--recording', missing, '--port', '0']);
    assert.equal(r1.code, 3);
    assert.match(r1.stderr, new RegExp(`${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: no such file`));
    const junk = join(dir, 'junk.mcap');
    await writeFile(junk, 'not an mcap file at all');
    const r2 = await runCli(['view', '--recording', junk, '--port', '0']);
    assert.equal(r2.code, 3);
    assert.match(r2.stderr, /junk\.mcap: not a readable MCAP file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('view --recording serves the page, its bundled script and the recording, with nothing loaded from elsewhere', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-view-cli-'));
  try {
    const path = join(dir, 'tiny.mcap');
    const rec = await SessionRecorder.create(path);
    const result = encodeMessage('result', { header: { senderId: 'fusion-a', captureTimeNs: nsToWire(5_000_000_000n) }, detections: [{ score: 0.5 }] });
    await rec.writeWireMessage('v2xfuse/v1/s1/fusion/fusion-a/result', 'result', 'fusion-a', result, 5_100_000_000n);
    await rec.writeJson('/dataset/ground_truth', 'foxglove.SceneUpdate', 5_000_000_000n, { deletions: [], entities: [] });
    await rec.close();

    const child = spawn(process.execPath, ['--import', 'tsx', resolve(projectRoot, 'src/cli/main.ts'), 'view', '--recording', path, '--port', '0'], { cwd: projectRoot });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    try {
      const url = await new Promise<string>((res, rej) => {
        createInterface({ input: child.stdout }).once('line', res);
        child.once('exit', (code) => rej(new Error(`view exited ${code}: ${stderr}`)));
      });
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
      const html = await (await fetch(url)).text();
      assert.match(html, /<script type="module" src="\/app\.js">/);
      // No CDN: every script and stylesheet comes from this server.
      assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
      const script = await (await fetch(new URL('/app.js', url))).text();
      assert.ok(script.length > 100_000, 'three.js and the page are bundled in');
      assert.doesNotMatch(script, /\bimport\s*\(?\s*["']https?:/);
      const source = await (await fetch(new URL('/api/source', url))).json();
      assert.deepEqual(source, { mode: 'recording', name: 'tiny.mcap' });
      const envelopes = decodeEnvelopes(new Uint8Array(await (await fetch(new URL('/api/recording', url))).arrayBuffer()));
      assert.deepEqual(envelopes.map((e) => [e.kind, e.sender, e.session]), [['gt', '', ''], ['result', 'fusion-a', 's1']]);
    } finally {
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((res) => (child.exitCode !== null ? res(child.exitCode) : child.once('exit', res)));
      assert.equal(code, 0, stderr);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
