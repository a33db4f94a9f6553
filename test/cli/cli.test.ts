import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runCli, sharedData } from './helpers.ts';

test('--help lists the commands, and each command has its own help', async () => {
  const top = await runCli(['--help']);
  assert.equal(top.code, 0);
  for (const cmd of ['inspect', 'simulate', 'demo']) assert.match(top.stdout, new RegExp(`\\b${cmd}\\b`));
  const sub = await runCli(['inspect', '--help']);
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /--stats/);
  assert.match(sub.stdout, /--skip-missing/);
});

test('an unknown option is a usage error (exit 2)', async () => {
  const r = await runCli(['inspect', '--frobnicate', '.']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option/);
});

test('a path that does not exist: one clear line naming it, exit 3, no stack trace', async () => {
  const missing = resolve(sharedData, 'no-such-dataset');
  const r = await runCli(['inspect', missing]);
  assert.equal(r.code, 3);
  assert.ok(r.stderr.includes(missing), r.stderr);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('a folder in no known layout is refused with what was expected', async () => {
  const empty = await mkdtemp(join(tmpdir(), 'v2xfuse-empty-'));
  const r = await runCli(['inspect', empty]);
  await rm(empty, { recursive: true });
  assert.equal(r.code, 3);
  assert.ok(r.stderr.includes(empty), r.stderr);
  assert.match(r.stderr, /scenario|agent|yaml/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('simulate with an unknown scenario name names it (exit 3)', async () => {
  const r = await runCli(['simulate', '--scenario', 'no-such-scenario', '--out', '/tmp/v2xfuse-never-written']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /no-such-scenario/);
});

test('simulate rejects a non-integer frame count as a usage error', async () => {
  const r = await runCli(['simulate', '--scenario', 'fixture', '--frames', 'ten', '--out', '/tmp/v2xfuse-never-written']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--frames must be an integer/);
});
