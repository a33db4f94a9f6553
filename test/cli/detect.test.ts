// The detect command's plumbing, run with the tiny untrained test models (their AP means nothing; the shipped
// models' accuracy is checked separately). What must hold: every agent in range is used, the ego-only mode uses
// one, the report has the documented shape, and impossible requests fail with one clear line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { cudaProviderStatus } from '../../src/perception/index.ts';
import { projectRoot, runCli } from './helpers.ts';

const fixture = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const tiny = resolve(projectRoot, 'test/fixtures/onnx/manifest.json');

test('detect --json: intermediate fusion uses all three agents, none uses the ego only', async () => {
  const coop = await runCli(['detect', fixture, '--models', tiny, '--json']);
  assert.equal(coop.code, 0, coop.stderr);
  const r = JSON.parse(coop.stdout);
  assert.equal(r.frames, 3);
  assert.equal(r.meanAgentsPerFrame, 3);
  assert.equal(r.fusion, 'attention', 'intermediate picks attention when the manifest has it');
  assert.deepEqual(Object.keys(r.ap), ['0.3', '0.5', '0.7']);
  for (const stage of ['pillarise', 'pfn', 'backbone', 'warp', 'fusion', 'head', 'nms']) assert.ok(stage in r.timingsMsMedian, stage);

  const ego = JSON.parse((await runCli(['detect', fixture, '--models', tiny, '--fusion', 'none', '--json'])).stdout);
  assert.equal(ego.meanAgentsPerFrame, 1);
  assert.ok(!('warp' in ego.timingsMsMedian));
  const max = JSON.parse((await runCli(['detect', fixture, '--models', tiny, '--fusion', 'max', '--ego', '101', '--json'])).stdout);
  assert.equal(max.fusion, 'max');
  assert.deepEqual(max.egos, ['fixture-s1:101']);
});

test('detect: an unknown ego, CUDA without its provider, and a camera modality are one-line errors', async () => {
  const ego = await runCli(['detect', fixture, '--models', tiny, '--ego', '999']);
  assert.equal(ego.code, 3);
  assert.match(ego.stderr, /--ego 999: no such agent.*100, 101, -1/);
  // Where the CUDA provider is installed (a GPU user's machine) this request is legitimate, so it is not checked.
  if (!cudaProviderStatus().installed) {
    const cuda = await runCli(['detect', fixture, '--models', tiny, '--device', 'cuda']);
    assert.equal(cuda.code, 3);
    assert.match(cuda.stderr, /ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node/);
  }
  const cam = await runCli(['detect', fixture, '--models', tiny, '--modality', 'camera']);
  assert.equal(cam.code, 3);
  assert.match(cam.stderr, /camera encoder/);
  const missing = await runCli(['detect', fixture, '--models', resolve(projectRoot, 'no/such/manifest.json')]);
  assert.equal(missing.code, 3);
  assert.match(missing.stderr, /no\/such\/manifest\.json/);
});

test('detect --fusion late / early: object lists and point clouds from every agent, with their message bytes', async () => {
  const late = await runCli(['detect', fixture, '--models', tiny, '--fusion', 'late', '--json']);
  assert.equal(late.code, 0, late.stderr);
  const r = JSON.parse(late.stdout);
  assert.equal(r.fusion, 'late');
  assert.equal(r.meanAgentsPerFrame, 3);
  assert.deepEqual(Object.keys(r.ap), ['0.3', '0.5', '0.7']);
  for (const stage of ['backbone', 'head', 'objectCodec', 'lateFusion']) assert.ok(stage in r.timingsMsMedian, stage);
  assert.ok(!('warp' in r.timingsMsMedian), 'late fusion aligns boxes, not feature maps');
  assert.deepEqual(Object.keys(r.bytes.meanByAgent).sort(), ['fixture-s1:-1', 'fixture-s1:100', 'fixture-s1:101']);
  assert.equal(r.bytes.messages, 9, '3 agents × 3 frames');
  assert.ok(r.bytes.meanPerAgentPerFrame > 0);

  const early = JSON.parse((await runCli(['detect', fixture, '--models', tiny, '--fusion', 'early', '--frames', '1', '--json'])).stdout);
  assert.equal(early.fusion, 'early');
  assert.ok('pointCodec' in early.timingsMsMedian);
  assert.ok(early.bytes.meanPerAgentPerFrame > 5 * r.bytes.meanPerAgentPerFrame, 'points cost far more than objects');

  const plain = await runCli(['detect', fixture, '--models', tiny, '--fusion', 'late', '--frames', '1']);
  assert.equal(plain.code, 0, plain.stderr);
  assert.match(plain.stdout, /fusion late/);
  assert.match(plain.stdout, /message bytes per agent per frame: mean \d+/);
  const bad = await runCli(['detect', fixture, '--models', tiny, '--fusion', 'mid']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--fusion must be one of none, intermediate, max, mean, attention, late, early, hybrid/);
});
