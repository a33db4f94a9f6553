// The leave-one-out feature check (consistencyCheck featureTest 'leave-one-out') on the committed fixture, against
// tools/reliability/attack-ap.ts's feature attack made by hand: collaborator 101 pastes the feature patch of the car
// it sees best, louder (× PATCH_SCALE), into its map. Pasted where the ego's own beams saw open road, the fused
// cars there exist only with 101: it must be left out, the honest roadside unit never. Pasted where the ego cannot
// see (cells no ego beam reached), the fused cars contradict nothing, as an honest collaborator's car behind an
// occluder must not: 101 stays.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { type CooperativeSequence, openDataset } from '../../src/datasets/index.ts';
import type { Detection } from '../../src/eval/index.ts';
import { CooperativeDetector, type CooperativeDetection, FreeSpaceBuilder, type FreeSpaceMap, contradictsFreeSpace, footprintOnMap, freeSpaceGrid } from '../../src/fusion/index.ts';
import { invertRigid, multiply, transformBox } from '../../src/geometry/index.ts';
import { PerceptionModels } from '../../src/perception/index.ts';
import { featureAttackPlan, pasteFeaturePatches } from '../../tools/reliability/attack-ap.ts';
import { projectRoot } from '../cli/helpers.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const MODELS = resolve(projectRoot, 'models/manifest.json');
const PATCH_SCALE = 2;
let models: PerceptionModels;
let seq: CooperativeSequence;
before(async () => {
  models = await PerceptionModels.load(MODELS);
  seq = (await openDataset(FIXTURE)).scenarios[0]!;
});
after(async () => models?.dispose());

const car = (x: number, y: number): Detection => ({ box: { x, y, z: -1, l: 4.5, w: 1.9, h: 1.6, yaw: 0 }, score: 0.9, cls: 'vehicle' });

/** Up to 4 car positions (ego frame, ≥ 7 m apart, within 40 m of the ego and of 101) whose footprint is wholly free
 * (where: 'free') or wholly unknown (where: 'unknown') on the ego's map. */
function places(map: FreeSpaceMap, where: 'free' | 'unknown', liar: { x: number; y: number }, count: number): { x: number; y: number }[] {
  const grid: { x: number; y: number }[] = [];
  for (let y = -36; y <= 36; y += 3) for (let x = -36; x <= 36; x += 3) grid.push({ x, y });
  // Nearest the ego first: its map is surest there.
  grid.sort((a, b) => Math.hypot(a.x, a.y) - Math.hypot(b.x, b.y));
  const out: { x: number; y: number }[] = [];
  for (const { x, y } of grid) {
    if (out.length >= count) break;
    if (Math.hypot(x, y) < 6 || Math.hypot(x - liar.x, y - liar.y) > 40 || out.some((p) => Math.hypot(p.x - x, p.y - y) < 7)) continue;
    const f = footprintOnMap(map, car(x, y).box);
    const ok = where === 'free' ? contradictsFreeSpace(map, car(x, y)) && f.free === f.samples : f.unknown === f.samples;
    if (ok) out.push({ x, y });
  }
  return out;
}

async function run(where: 'free' | 'unknown', count = 4, check = true): Promise<{ results: CooperativeDetection[]; targets: { x: number; y: number }[][] }> {
  const plan = await featureAttackPlan(seq, '100', '101', 1, seq.frameCount);
  const builder = new FreeSpaceBuilder(freeSpaceGrid(models.grid));
  const targets: { x: number; y: number }[][] = [];
  const toLiar = new Map<number, ReturnType<typeof multiply>>();
  for (let i = 0; i < seq.frameCount; i++) {
    const frame = await seq.frame(i);
    const ego = frame.agents.find((a) => a.agentId === '100')!, liar = frame.agents.find((a) => a.agentId === '101')!;
    const egoToLiar = multiply(invertRigid(liar.lidarToWorld), ego.lidarToWorld);
    const liarInEgo = multiply(invertRigid(ego.lidarToWorld), liar.lidarToWorld);
    targets.push(places(builder.build(await ego.loadPoints()), where, { x: liarInEgo[3]!, y: liarInEgo[7]! }, count));
    toLiar.set(i, egoToLiar);
  }
  const detector = new CooperativeDetector(models, 'max', {
    consistencyCheck: check ? { featureTest: 'leave-one-out' } : false,
    alterSenderFeatures: (id, features, index) => {
      const p = plan.get(index);
      if (id !== '101' || !p) return;
      const inLiar = targets[index]!.map((t) => transformBox(toLiar.get(index)!, car(t.x, t.y).box));
      pasteFeaturePatches(features, models.grid, p.source, inLiar, 4, PATCH_SCALE);
    },
  });
  const results: CooperativeDetection[] = [];
  for (let i = 0; i < seq.frameCount; i++) results.push(await detector.detectFrame(await seq.frame(i), '100'));
  return { results, targets };
}

const excludedIn = (rs: CooperativeDetection[], id: string) => rs.filter((r) => r.links.skipped.some((s) => s.agentId === id && s.reason === 'inconsistent')).length;

test("max fusion, leave-one-out: pasted cars in the ego's free space get 101 excluded; the honest roadside unit stays", { timeout: 120_000 }, async () => {
  const { results, targets } = await run('free');
  assert.ok(targets.every((t) => t.length >= 2), `free places per frame: ${targets.map((t) => t.length)}`);
  assert.ok(excludedIn(results, '101') >= 2, `101 excluded in ${excludedIn(results, '101')} of 3: ${JSON.stringify(results.map((r) => r.links.consistency))}`);
  assert.equal(excludedIn(results, '-1'), 0);
  for (const r of results) {
    assert.ok((r.timings.consistencyFusion ?? 0) > 0, 'one more fusion per collaborator');
    assert.equal(r.timings.consistencyHead, undefined, 'no own-map head pass in leave-one-out alone');
    const v = r.links.consistency!.find((x) => x.id === '101')!;
    if (v.exclude) {
      assert.ok(v.attributed!.length >= 2 && v.reason === 'free-space');
      assert.ok(!r.agents.includes('101') && !r.links.used.includes('101'));
      // What is reported is the fusion without 101: none of its pasted cars.
      for (const t of targets[results.indexOf(r)]!) assert.ok(r.detections.every((d) => d.score < 0.2 || Math.hypot(d.box.x - t.x, d.box.y - t.y) > 1.5));
    }
  }
});

test("max fusion, leave-one-out: cars 101 adds where the ego cannot see contradict nothing; 101 stays", { timeout: 120_000 }, async () => {
  const { results, targets } = await run('unknown');
  assert.ok(targets.every((t) => t.length >= 2), `unknown places per frame: ${targets.map((t) => t.length)}`);
  assert.equal(excludedIn(results, '101'), 0, JSON.stringify(results.map((r) => r.links.consistency)));
  assert.equal(excludedIn(results, '-1'), 0);
  // The pasted cars do come out of the fusion (so the check saw them and let them be).
  const found = results.reduce((n, r, i) => n + targets[i]!.filter((t) => r.detections.some((d) => d.score >= 0.2 && Math.hypot(d.box.x - t.x, d.box.y - t.y) <= 1.5)).length, 0);
  assert.ok(found >= 2, `pasted cars detected in unknown space: ${found}`);
});

test('max fusion, leave-one-out: a single pasted car in free space is tolerated (101 kept) but dropped from the result', { timeout: 120_000 }, async () => {
  const near = (r: CooperativeDetection, t: { x: number; y: number }) => r.detections.some((d) => d.score >= 0.2 && Math.hypot(d.box.x - t.x, d.box.y - t.y) <= 1.5);
  const open = await run('free', 1, false);
  const checked = await run('free', 1, true);
  assert.ok(open.results.some((r, i) => near(r, open.targets[i]![0]!)), 'without the check the pasted car is reported');
  assert.equal(excludedIn(checked.results, '101'), 0);
  checked.results.forEach((r, i) => {
    assert.ok(r.links.used.includes('101'));
    assert.ok(!near(r, checked.targets[i]![0]!), `frame ${i}: the car blamed on 101 is dropped: ${JSON.stringify({ v: r.links.consistency, t: checked.targets[i], d: r.detections.filter((d) => Math.hypot(d.box.x - checked.targets[i]![0]!.x, d.box.y - checked.targets[i]![0]!.y) < 3) })}`);
  });
});
