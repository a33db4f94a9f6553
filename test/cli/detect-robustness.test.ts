// detect's fusion-robustness options end to end, with the tiny untrained test models (their AP means nothing):
// what must hold is that each option reaches the detector, the report says what happened per frame, and bad values
// fail with one line and exit code 2.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { projectRoot, runCli } from './helpers.ts';

const fixture = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const tiny = resolve(projectRoot, 'test/fixtures/onnx/manifest.json');
const json = async (args: string[]) => {
  const r = await runCli(['detect', fixture, '--models', tiny, '--json', ...args]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};

test('detect --fusion hybrid and --budget-bytes: bytes of both message parts, the budget held every frame', async () => {
  const hybrid = await json(['--fusion', 'hybrid', '--codec', 'int8+top5%']);
  assert.equal(hybrid.fusion, 'hybrid');
  assert.equal(hybrid.impairments.codec, 'int8+top5%');
  const features = await json(['--fusion', 'max', '--codec', 'int8+top5%']);
  // The same feature message, plus the object list for what the sent cells leave out (the untrained head reports
  // plenty of boxes, and the test grid's 5 % is two cells).
  assert.ok(hybrid.bytes.meanPerAgentPerFrame > features.bytes.meanPerAgentPerFrame + 50, `${hybrid.bytes.meanPerAgentPerFrame} vs ${features.bytes.meanPerAgentPerFrame}`);
  assert.equal(hybrid.meanCollaboratorBytesPerFrame, 2 * hybrid.bytes.meanPerAgentPerFrame, 'two collaborators, every frame');
  // The test models' grid is 4.8 × 3.2 m, so a collaborator 20 m away sees none of it: selection leaves it out as
  // 'no-overlap' before the budget is even consulted; either way nothing over the budget is fused.
  const held = await json(['--fusion', 'max', '--codec', 'int8+top5%', '--budget-bytes', '100']);
  assert.equal(held.perFrame.length, 3);
  for (const f of held.perFrame) {
    assert.ok(f.collaboratorBytes <= 100, `frame ${f.index}: ${f.collaboratorBytes}`);
    assert.deepEqual(f.used, []);
    assert.equal(f.skipped.length, 2);
    for (const k of f.skipped) assert.ok(['budget', 'no-overlap'].includes(k.reason), k.reason);
  }
});

test('detect --loss 1 leaves the ego alone; --latency-ms skips frames with no earlier message; bad values exit 2', async () => {
  const lost = await json(['--fusion', 'late', '--loss', '1']);
  assert.equal(lost.meanAgentsPerFrame, 1);
  const late = await json(['--fusion', 'late', '--latency-ms', '100', '--compensate', '--late-merge', 'wbf']);
  assert.deepEqual(late.perFrame.map((f: { used: string[] }) => f.used.length), [0, 2, 2], 'frame 0 has nothing 100 ms older');
  assert.deepEqual(late.perFrame[1].ageMs, { '101': 100, '-1': 100 });
  const noisy = await json(['--fusion', 'mean', '--pose-noise', '0.2,0.2', '--seed', '3']);
  assert.deepEqual(noisy.impairments.poseNoise, { posM: 0.2, yawDeg: 0.2 });
  for (const [flag, value, message] of [
    ['--pose-noise', '0.2', /POS_M,YAW_DEG/],
    ['--loss', '1.5', /--loss must be a number in \[0, 1\]/],
    ['--late-merge', 'mean', /--late-merge must be one of nms, wbf/],
    ['--latency-ms', '-1', /--latency-ms must be a number/],
  ] as const) {
    const r = await runCli(['detect', fixture, '--models', tiny, flag, value]);
    assert.equal(r.code, 2, `${flag} ${value}`);
    assert.match(r.stderr, message);
  }
  const raw = await runCli(['detect', fixture, '--models', tiny, '--fusion', 'max', '--budget-bytes', '1000']);
  assert.equal(raw.code, 3);
  assert.match(raw.stderr, /needs --codec/);
});
