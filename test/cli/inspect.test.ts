import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { runCli, sharedData } from './helpers.ts';

const dair = resolve(sharedData, 'dair-v2x-c-example/cooperative-vehicle-infrastructure');
const culver = resolve(sharedData, 'opv2v-culver/TwoCars_1');

test('inspect DAIR-V2X-C: without --skip-missing the first absent file is named, exit 3', async () => {
  const r = await runCli(['inspect', dair]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /vehicle-side\/velodyne\/\d{6}\.pcd/);
  assert.equal(r.stderr.trim().split('\n').length, 1, 'one line');
});

test('inspect DAIR-V2X-C --skip-missing --json: the 10 present pairs with real point counts', async () => {
  const r = await runCli(['inspect', dair, '--skip-missing', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.format, 'dair-v2x-c');
  assert.equal(report.scenarios.length, 1);
  const s = report.scenarios[0];
  assert.equal(s.frames, 10);
  assert.deepEqual(s.agents.map((a: { id: string; kind: string }) => [a.id, a.kind]), [['vehicle', 'vehicle'], ['infrastructure', 'rsu']]);
  assert.equal(s.perFrame.length, 10);
  assert.equal(s.perFrame[0].frameId, '015372');
  // The README gives about 62k vehicle and 54k infrastructure points per cloud.
  for (const f of s.perFrame) {
    const v = f.agents.find((a: { id: string }) => a.id === 'vehicle');
    const i = f.agents.find((a: { id: string }) => a.id === 'infrastructure');
    assert.ok(v.points > 60_000 && v.points < 65_000, `vehicle points ${v.points}`);
    assert.ok(i.points > 50_000 && i.points < 58_000, `infrastructure points ${i.points}`);
    assert.ok(v.boxes > 0 && i.boxes > 0);
  }
  assert.ok(report.warnings.length > 0, 'skipped frames are reported');
});

test('inspect OPV2V TwoCars_1 --no-points --json: 2 CAVs, 90 frames, ego first', async () => {
  const r = await runCli(['inspect', culver, '--no-points', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.format, 'opv2v');
  const s = report.scenarios[0];
  assert.equal(s.frames, 90);
  assert.deepEqual(s.agents, [{ id: '302', kind: 'vehicle', frames: 90 }, { id: '311', kind: 'vehicle', frames: 90 }]);
  assert.equal(s.perFrame[0].frameId, '006220');
  assert.equal(s.perFrame[89].frameId, '006398');
  assert.ok(s.perFrame.every((f: { cooperativeBoxes: number }) => f.cooperativeBoxes > 10));
});

test('inspect OPV2V TwoCars_1 reading points: the metadata-only sample names the absent .pcd', async () => {
  const r = await runCli(['inspect', culver]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /302\/006220\.pcd/);
});

test('inspect a folder of PCDs without yaml (opv2v-lidar) says the yaml is missing', async () => {
  const r = await runCli(['inspect', resolve(sharedData, 'opv2v-lidar')]);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /yaml/);
  assert.match(r.stderr, /opv2v-lidar/);
});
