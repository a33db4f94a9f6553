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

test('inspect a folder of loose PCDs (opv2v-lidar): point counts per file and what a sequence would need', async () => {
  const r = await runCli(['inspect', resolve(sharedData, 'opv2v-lidar'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  assert.equal(report.format, 'point-clouds');
  assert.match(report.note, /yaml/);
  assert.deepEqual(report.files.map((f: { name: string }) => f.name), ['000070.pcd', '000072.pcd', '000074.pcd', '000076.pcd', '000078.pcd']);
  for (const f of report.files) {
    assert.deepEqual(f.fields, ['x', 'y', 'z', 'rgb']);
    assert.equal(f.data, 'ascii');
    assert.ok(f.points > 10_000, `${f.name}: ${f.points}`);
  }
});

test('inspect the OPV2V camera sample: four 800x600 images', async () => {
  const r = await runCli(['inspect', resolve(sharedData, 'opv2v-camera')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /format: images/);
  assert.equal((r.stdout.match(/800x600/g) ?? []).length, 4);
});
