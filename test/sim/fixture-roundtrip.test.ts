// The committed fixture is what the simulator writes for its seed, and it reads back through the OPV2V reader
// with points, boxes and cameras that agree with each other.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { openDataset, occlusionStatistics } from '../../src/datasets/index.ts';
import { countPointsInBox, invertRigid, transformBox, transformPoint } from '../../src/geometry/index.ts';
import { loadScenario, simulateSequence } from '../../src/sim/index.ts';

const fixture = resolve(import.meta.dirname, '../../datasets/fixture/fixture-s1');

async function hashTree(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(dir: string): Promise<void> {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else out.set(relative(root, p), createHash('sha256').update(await readFile(p)).digest('hex'));
    }
  }
  await walk(root);
  return out;
}

test('regenerating the fixture gives the committed bytes (npm run fixture rewrites it after a deliberate change)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-fixture-'));
  try {
    await simulateSequence({ scenario: await loadScenario('fixture'), frames: 3, seed: 1, outDir: dir, cameras: true });
    const [want, got] = await Promise.all([hashTree(fixture), hashTree(dir)]);
    assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
    for (const [file, h] of want) assert.equal(got.get(file), h, `${file} differs from the committed fixture`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the fixture reads back as OPV2V: agents, kinds, frames, cameras', async () => {
  const ds = await openDataset(fixture);
  assert.equal(ds.format, 'opv2v');
  const seq = ds.scenarios[0];
  assert.equal(seq.frameCount, 3);
  assert.deepEqual(seq.agents.map((a) => [a.id, a.kind]), [['100', 'vehicle'], ['101', 'vehicle'], ['-1', 'rsu']]);
  const frame = await seq.frame(0);
  const car = frame.agents[0];
  assert.equal(car.cameras.length, 4);
  // camera0 looks forward (+x of the LiDAR frame), camera3 backward.
  const axis = (m: Float64Array) => transformPoint(m, 0, 0, 1).map((v, i) => v - [m[3], m[7], m[11]][i]);
  assert.ok(axis(car.cameras[0].cameraToLidar)[0] > 0.9);
  assert.ok(axis(car.cameras[3].cameraToLidar)[0] < -0.9);
});

test('points and boxes agree after both went through the left-handed files and back', async () => {
  const seq = (await openDataset(fixture)).scenarios[0];
  let inside = 0, wellHit = 0;
  for await (const frame of seq.frames()) {
    for (const agent of frame.agents) {
      const points = await agent.loadPoints();
      const toLidar = invertRigid(agent.lidarToWorld);
      for (const gt of agent.boxes) {
        const local = transformBox(toLidar, gt.box);
        if (Math.hypot(local.x, local.y) > 30) continue;
        const n = countPointsInBox({ ...local, l: local.l + 0.2, w: local.w + 0.2, h: local.h + 0.2 }, points);
        inside += n;
        if (n >= 5) wellHit++;
        // Mirrored the wrong way, a box at (x, y) would collect the points of (x, −y) instead.
        const mirrored = countPointsInBox({ ...local, y: -local.y, yaw: -local.yaw, l: local.l + 0.2, w: local.w + 0.2, h: local.h + 0.2 }, points);
        if (Math.abs(local.y) > 4 && n >= 20) assert.ok(mirrored < n, `box ${gt.id}: ${n} points inside, ${mirrored} in its mirror image`);
      }
    }
  }
  assert.ok(wellHit >= 5, `only ${wellHit} nearby boxes have LiDAR points`);
  assert.ok(inside > 200);
});

test('intersection: a real share of nearby vehicles is hidden from an agent but seen well by another', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-occlusion-'));
  try {
    await simulateSequence({ scenario: await loadScenario('intersection'), frames: 3, seed: 7, outDir: dir, cameras: false });
    const seq = (await openDataset(dir)).scenarios[0];
    const report = await occlusionStatistics(seq.frames());
    const helped = report.agents.filter((a) => a.inRange > 0 && a.hiddenButSeenByAnother / a.inRange >= 0.05);
    assert.ok(helped.length >= 3, JSON.stringify(report.agents));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
