// The in-process detector's consistencyCheck on the committed fixture. The attack is made in the data: collaborator
// 101's LiDAR cloud gets copies of the points of the car it sees best, pasted where the ego's own beams saw open
// road (a spoofed-LiDAR ghost: its detector then reports cars there, in its object list or in its features). The
// check must leave 101 out in late, max and hybrid fusion, never the honest roadside unit, and leave an unforged
// frame alone.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { type CooperativeFrame, type CooperativeSequence, openDataset } from '../../src/datasets/index.ts';
import type { Detection } from '../../src/eval/index.ts';
import { CooperativeDetector, type FusionMode, FreeSpaceBuilder, FusionConfigError, contradictsFreeSpace, freeSpaceGrid } from '../../src/fusion/index.ts';
import { invertRigid, multiply, transformBox } from '../../src/geometry/index.ts';
import { PerceptionModels } from '../../src/perception/index.ts';
import { projectRoot } from '../cli/helpers.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const MODELS = resolve(projectRoot, 'models/manifest.json');
let models: PerceptionModels;
let seq: CooperativeSequence;
before(async () => {
  models = await PerceptionModels.load(MODELS);
  seq = (await openDataset(FIXTURE)).scenarios[0]!;
});
after(async () => models?.dispose());

/** Frame `i` with 101's cloud forged: its best-seen car's points copied to 6 places in the ego's free space. */
async function forgedFrame(i: number): Promise<CooperativeFrame> {
  const frame = await seq.frame(i);
  const ego = frame.agents.find((a) => a.agentId === '100')!;
  const liar = frame.agents.find((a) => a.agentId === '101')!;
  const map = new FreeSpaceBuilder(freeSpaceGrid(models.grid)).build(await ego.loadPoints());
  const points = await liar.loadPoints();
  const toLiar = invertRigid(liar.lidarToWorld);
  let car: Detection['box'] | undefined;
  let carPoints: number[] = [];
  for (const b of frame.agents.flatMap((a) => a.boxes).filter((x) => x.cls === 'vehicle').map((x) => transformBox(toLiar, x.box))) {
    const c = Math.cos(b.yaw), s = Math.sin(b.yaw);
    const inside: number[] = [];
    for (let p = 0; p + 3 < points.length; p += 4) {
      const dx = points[p]! - b.x, dy = points[p + 1]! - b.y;
      if (Math.abs(c * dx + s * dy) <= b.l / 2 + 0.2 && Math.abs(-s * dx + c * dy) <= b.w / 2 + 0.2 && points[p + 2]! > b.z - b.h / 2 + 0.15) inside.push(points[p]!, points[p + 1]!, points[p + 2]!, points[p + 3]!);
    }
    if (inside.length > carPoints.length) (car = b), (carPoints = inside);
  }
  assert.ok(car && carPoints.length >= 40, 'a car 101 sees');
  const egoToLiar = multiply(toLiar, ego.lidarToWorld);
  const targets: Detection['box'][] = [];
  for (let r = 8; r <= 33 && targets.length < 6; r += 5) {
    for (let deg = 0; deg < 360 && targets.length < 6; deg += 25) {
      const a = (deg * Math.PI) / 180;
      const ghost: Detection = { box: { x: r * Math.cos(a), y: r * Math.sin(a), z: -1, l: 4.5, w: 1.9, h: 1.6, yaw: 0 }, score: 0.9, cls: 'vehicle' };
      if (contradictsFreeSpace(map, ghost)) targets.push(transformBox(egoToLiar, ghost.box));
    }
  }
  assert.equal(targets.length, 6);
  const forged = new Float32Array(points.length + targets.length * carPoints.length);
  forged.set(points);
  let o = points.length;
  for (const t of targets) {
    for (let p = 0; p < carPoints.length; p += 4) forged.set([carPoints[p]! - car!.x + t.x, carPoints[p + 1]! - car!.y + t.y, carPoints[p + 2]!, carPoints[p + 3]!], o + p);
    o += carPoints.length;
  }
  return { ...frame, agents: frame.agents.map((a) => (a === liar ? { ...a, loadPoints: async () => forged } : a)) };
}

async function run(mode: FusionMode, check: boolean, forge: boolean) {
  const detector = new CooperativeDetector(models, mode, { consistencyCheck: check });
  const out = [];
  for (let i = 0; i < seq.frameCount; i++) out.push(await detector.detectFrame(forge ? await forgedFrame(i) : await seq.frame(i), '100'));
  return out;
}

const excluded = (r: Awaited<ReturnType<typeof run>>, id: string) => r.filter((f) => f.links.skipped.some((s) => s.agentId === id && s.reason === 'inconsistent')).length;

for (const mode of ['late', 'max', 'hybrid'] as const) {
  test(`${mode}: consistencyCheck leaves out a collaborator whose detector reports cars in the ego's free space, keeps the honest one`, { timeout: 120_000 }, async () => {
    const attacked = await run(mode, true, true);
    assert.ok(excluded(attacked, '101') >= 2, `101 excluded in ${excluded(attacked, '101')} of 3 frames: ${JSON.stringify(attacked.map((f) => f.links.consistency))}`);
    assert.equal(excluded(attacked, '-1'), 0, 'the honest roadside unit stays');
    for (const f of attacked) {
      assert.equal(f.links.consistency?.length, 2, 'a verdict on each collaborator');
      const out = f.links.skipped.some((s) => s.agentId === '101');
      assert.equal(f.links.used.includes('101'), !out);
      assert.equal(f.agents.includes('101'), !out);
      assert.ok((f.timings.freeSpace ?? 0) > 0);
      if (mode !== 'late') assert.ok((f.timings.consistencyHead ?? 0) > 0, 'a head pass per collaborator');
    }
    // Without the check the forged frames are fused whole; honest frames pass the check untouched.
    const open = await run(mode, false, true);
    for (const f of open) assert.ok(f.links.used.includes('101') && f.links.consistency === undefined);
    const honest = await run(mode, true, false);
    for (const f of honest) assert.deepEqual(f.links.skipped, [], JSON.stringify(f.links.consistency));
  });
}

test('consistencyCheck is refused where there is nothing to judge', () => {
  for (const mode of ['none', 'early'] as const) assert.throws(() => new CooperativeDetector(models, mode, { consistencyCheck: true }), FusionConfigError);
  assert.throws(() => new CooperativeDetector(models, 'late', { alterSenderFeatures: () => {} }), FusionConfigError);
});
