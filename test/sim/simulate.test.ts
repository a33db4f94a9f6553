import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { readPcdXyzi } from '../../src/datasets/index.ts';
import { type Box7, carlaBoxToBox7, carlaPoseToMatrix, pointInBox, transformPoint } from '../../src/geometry/index.ts';
import { Rng } from '../../src/sim/random.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { SimulationOutputError, simulateSequence } from '../../src/sim/simulate.ts';
import { buildWorld } from '../../src/sim/world.ts';

const FRAMES = 3;
const SEED = 5;
const tmpRoot = await mkdtemp(path.join(tmpdir(), 'v2xfuse-sim-'));
const dirA = path.join(tmpRoot, 'a');
const scenario = await loadScenario('fixture');
const summaryA = await simulateSequence({ scenario, frames: FRAMES, seed: SEED, outDir: dirA, cameras: true });

test.after(async () => {
  await rm(tmpRoot, { recursive: true, force: true });
});

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory()) for (const f of await listFiles(path.join(dir, e.name))) out.push(`${e.name}/${f}`);
    else out.push(e.name);
  }
  return out;
}

async function hashes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await listFiles(dir)) out.set(f, createHash('sha256').update(await readFile(path.join(dir, f))).digest('hex'));
  return out;
}

// The fixture runs 10 warm-up steps; CARLA ticks start at 8 and OPV2V keeps every second tick.
const FRAME_IDS = ['000028', '000030', '000032'];

test('the OPV2V layout: agent folders by actor id, six-digit frame ids stepping by 2, cameras per agent', async () => {
  const files = await listFiles(dirA);
  const expected: string[] = ['scenario.json'];
  for (const [agent, cameras] of [['-1', 1], ['100', 4], ['101', 4]] as const) {
    for (const id of FRAME_IDS) {
      expected.push(`${agent}/${id}.pcd`, `${agent}/${id}.yaml`);
      for (let c = 0; c < cameras; c++) expected.push(`${agent}/${id}_camera${c}.png`);
    }
  }
  assert.deepEqual(files.sort(), expected.sort());
  assert.equal(summaryA.frames, FRAMES);
  assert.equal(summaryA.firstFrameId, '000028');
  assert.deepEqual(summaryA.agents.map((a) => [a.id, a.kind, a.cameras]), [[100, 'vehicle', 4], [101, 'vehicle', 4], [-1, 'rsu', 1]]);
  assert.ok(summaryA.bytesPerFrame > 0 && summaryA.pointsPerScan.min > 1000);
  const provenance = JSON.parse(await readFile(path.join(dirA, 'scenario.json'), 'utf8'));
  assert.equal(provenance.seed, SEED);
  assert.equal(provenance.scenario.name, 'fixture');
});

async function frameYaml(dir: string, agent: string, id: string): Promise<Record<string, any>> {
  return parse(await readFile(path.join(dir, agent, `${id}.yaml`), 'utf8'));
}

const REAL = path.resolve(process.cwd(), '../shared/data/opv2v-culver/TwoCars_1/302/006220.yaml');

test('yaml has the keys and shapes of a real OPV2V frame, plus noisy_lidar_pose and timestamp', async () => {
  const real = parse(await readFile(REAL, 'utf8'));
  const y = await frameYaml(dirA, '100', '000030');
  for (const key of Object.keys(real)) assert.ok(key in y, `missing ${key}`);
  assert.deepEqual(Object.keys(y).sort(), [...Object.keys(real), 'noisy_lidar_pose', 'timestamp'].sort());
  for (const k of ['lidar_pose', 'true_ego_pos', 'predicted_ego_pos', 'noisy_lidar_pose']) assert.equal(y[k].length, 6, k);
  assert.ok(y.plan_trajectory.length > 0 && y.plan_trajectory.every((p: number[]) => p.length === 3));
  assert.equal(y.timestamp, 30 * 0.05);
  for (let c = 0; c < 4; c++) {
    const cam = y[`camera${c}`];
    assert.deepEqual(Object.keys(cam).sort(), ['cords', 'extrinsic', 'intrinsic']);
    assert.equal(cam.cords.length, 6);
    assert.equal(cam.extrinsic.length, 4);
    // 160×120 at 100° horizontal FOV: f = 80 / tan 50°; the principal point in the middle, as OPV2V's 400, 300.
    const f = 80 / Math.tan((50 * Math.PI) / 180);
    assert.ok(Math.abs(cam.intrinsic[0][0] - f) < 1e-5 && Math.abs(cam.intrinsic[1][1] - f) < 1e-5);
    assert.deepEqual([cam.intrinsic[0][2], cam.intrinsic[1][2], cam.intrinsic[2][2]], [80, 60, 1]);
  }
  // Actor entries look like OPV2V's (pedestrians add a class), integer ids, never the agent itself.
  const ids = Object.keys(y.vehicles).map(Number);
  assert.ok(ids.length > 3 && ids.every(Number.isInteger));
  assert.ok(!ids.includes(100));
  let pedestrians = 0;
  for (const v of Object.values<any>(y.vehicles)) {
    const keys = Object.keys(v).filter((k) => k !== 'class').sort();
    assert.deepEqual(keys, Object.keys(real.vehicles[311]).sort());
    if (v.class !== undefined) { assert.equal(v.class, 'pedestrian'); pedestrians++; }
    assert.equal(v.location[2], 0);
    assert.equal(v.center[2], v.extent[2]); // the box stands on the ground
  }
  assert.ok(pedestrians > 0);
});

test('camera calibration follows OPV2V: the rig of the real sample, extrinsic from LiDAR to camera', async () => {
  const real = parse(await readFile(REAL, 'utf8'));
  const y = await frameYaml(dirA, '101', '000028');
  const lidarZ = y.lidar_pose[2];
  // Front camera 3 m ahead of and (lidar z − 1.0) below the LiDAR: the extrinsic maps LiDAR → camera.
  assert.deepEqual(y.camera0.extrinsic[0], [1, 0, 0, -3]);
  assert.ok(Math.abs(y.camera0.extrinsic[2][3] - (lidarZ - 1.0)) < 1e-6);
  // The side and back cameras turn as the real ones do.
  for (const c of [1, 2, 3]) {
    for (let r = 0; r < 3; r++) for (let k = 0; k < 3; k++) {
      assert.ok(Math.abs(y[`camera${c}`].extrinsic[r][k] - real[`camera${c}`].extrinsic[r][k]) < 1e-5, `camera${c} R[${r}][${k}]`);
    }
  }
  // cords (the camera's own CARLA pose) agree with the extrinsic: camera position = lidar pose ∘ extrinsic⁻¹.
  const lidarToWorld = carlaPoseToMatrix(y.lidar_pose);
  for (let c = 0; c < 4; c++) {
    const e = y[`camera${c}`].extrinsic;
    // Camera origin in CARLA LiDAR axes: −Rᵀ t; mirror y into ours, then to the world.
    const t = [e[0][3], e[1][3], e[2][3]];
    const o = [0, 1, 2].map((i) => -(e[0][i] * t[0] + e[1][i] * t[1] + e[2][i] * t[2]));
    const [wx, wy, wz] = transformPoint(lidarToWorld, o[0], -o[1], o[2]);
    const cords = y[`camera${c}`].cords;
    assert.ok(Math.hypot(wx - cords[0], -wy - cords[1], wz - cords[2]) < 1e-4, `camera${c} position`);
  }
  // A roadside unit: LiDAR on top of its pole, not moving.
  const rsu = await frameYaml(dirA, '-1', '000028');
  assert.equal(rsu.ego_speed, 0);
  assert.equal(rsu.lidar_pose[2], 5.5);
  assert.ok('camera0' in rsu && !('camera1' in rsu));
});

test('agents agree: a connected vehicle\'s true_ego_pos is where the others list it', async () => {
  for (const id of FRAME_IDS) {
    const a = await frameYaml(dirA, '100', id);
    const b = await frameYaml(dirA, '101', id);
    const r = await frameYaml(dirA, '-1', id);
    assert.deepEqual(b.vehicles[100].location, a.true_ego_pos.slice(0, 3));
    assert.deepEqual(a.vehicles[101].location, b.true_ego_pos.slice(0, 3));
    assert.deepEqual(r.vehicles[100].location, a.true_ego_pos.slice(0, 3));
    // GPS noise moves the noisy pose, not the true one.
    assert.notDeepEqual(a.noisy_lidar_pose, a.lidar_pose);
    assert.ok(Math.hypot(a.noisy_lidar_pose[0] - a.lidar_pose[0], a.noisy_lidar_pose[1] - a.lidar_pose[1]) < 1.5);
  }
});

test('the same seed writes the same bytes; another seed does not', async () => {
  const dirB = path.join(tmpRoot, 'b');
  const dirC = path.join(tmpRoot, 'c');
  await simulateSequence({ scenario, frames: FRAMES, seed: SEED, outDir: dirB, cameras: true });
  await simulateSequence({ scenario, frames: FRAMES, seed: SEED + 1, outDir: dirC, cameras: true });
  const [a, b, c] = await Promise.all([hashes(dirA), hashes(dirB), hashes(dirC)]);
  assert.deepEqual([...b], [...a]);
  for (const f of ['100/000028.pcd', '100/000028.yaml', '-1/000032.pcd', '101/000030_camera0.png']) assert.notEqual(c.get(f), a.get(f), f);
});

test('a folder with other content is refused; an earlier run is replaced', async () => {
  const foreign = path.join(tmpRoot, 'foreign');
  await mkdir(foreign, { recursive: true });
  await writeFile(path.join(foreign, 'notes.txt'), 'mine');
  await assert.rejects(simulateSequence({ scenario, frames: 1, seed: 1, outDir: foreign, cameras: false }), (err: unknown) => {
    assert.ok(err instanceof SimulationOutputError);
    assert.match(err.message, /not empty/);
    return true;
  });
  const again = path.join(tmpRoot, 'again');
  await simulateSequence({ scenario, frames: 2, seed: 1, outDir: again, cameras: false });
  await simulateSequence({ scenario, frames: 1, seed: 1, outDir: again, cameras: false });
  const files = await listFiles(again);
  assert.deepEqual(files.filter((f) => f.startsWith('100/')), ['100/000028.pcd', '100/000028.yaml'], 'no stale frames, no images with --no-camera');
  const y = await frameYaml(again, '100', '000028');
  assert.ok('camera3' in y, 'calibration is written without images');
});

/** Does the segment p→q pass through the box (slab test in the box frame)? */
function segmentHitsBox(p: number[], q: number[], b: Box7): boolean {
  const c = Math.cos(-b.yaw);
  const s = Math.sin(-b.yaw);
  const local = (v: number[]) => [c * (v[0] - b.x) - s * (v[1] - b.y), s * (v[0] - b.x) + c * (v[1] - b.y), v[2] - b.z];
  const a = local(p);
  const d = local(q).map((v, i) => v - a[i]);
  let t0 = 0;
  let t1 = 1;
  const half = [b.l / 2, b.w / 2, b.h / 2];
  for (let i = 0; i < 3; i++) {
    if (Math.abs(d[i]) < 1e-12) {
      if (Math.abs(a[i]) > half[i]) return false;
      continue;
    }
    let ta = (-half[i] - a[i]) / d[i];
    let tb = (half[i] - a[i]) / d[i];
    if (ta > tb) [ta, tb] = [tb, ta];
    t0 = Math.max(t0, ta);
    t1 = Math.min(t1, tb);
    if (t0 > t1) return false;
  }
  return true;
}

const grow = (b: Box7, m: number): Box7 => ({ ...b, l: b.l + 2 * m, w: b.w + 2 * m, h: b.h + 2 * m });

test('points fall on the ground, the ground-truth boxes or the static world, and visible vehicles get hits', async () => {
  // The static world is rebuilt from the scenario and seed, independently of what the files say.
  const world = buildWorld(scenario, new Rng(SEED).fork('world'));
  const statics: Box7[] = world.staticPrimitives.map((p) => ({ x: p.x, y: p.y, z: p.z, l: p.l, w: p.w, h: p.h, yaw: p.yaw }));
  let checkedVisible = 0;
  for (const id of FRAME_IDS) {
    const frames = new Map<string, Record<string, any>>();
    for (const agent of ['100', '101', '-1']) frames.set(agent, await frameYaml(dirA, agent, id));
    // Every actor of the frame, each agent's own vehicle included (listed by the others).
    const actors = new Map<string, { box: Box7; pedestrian: boolean }>();
    for (const y of frames.values()) {
      for (const [aid, v] of Object.entries<any>(y.vehicles)) actors.set(aid, { box: carlaBoxToBox7(v.location, v.center, v.extent, v.angle), pedestrian: v.class === 'pedestrian' });
    }
    for (const [agent, y] of frames) {
      const lidarToWorld = carlaPoseToMatrix(y.lidar_pose);
      const origin = transformPoint(lidarToWorld, 0, 0, 0);
      const xyzi = await readPcdXyzi(path.join(dirA, agent, `${id}.pcd`));
      const n = xyzi.length / 4;
      assert.ok(n > 1000);
      const world3: number[][] = [];
      for (let i = 0; i < n; i++) world3.push(transformPoint(lidarToWorld, xyzi[4 * i], -xyzi[4 * i + 1], xyzi[4 * i + 2]));
      let explained = 0;
      for (const [x, yy, z] of world3) {
        if (Math.abs(z) < 0.15) { explained++; continue; }
        let hit = false;
        for (const a of actors.values()) if (pointInBox(grow(a.box, 0.2), x, yy, z)) { hit = true; break; }
        if (!hit) for (const s of statics) if (pointInBox(grow(s, 0.2), x, yy, z)) { hit = true; break; }
        if (hit) explained++;
      }
      assert.ok(explained / n > 0.995, `agent ${agent} frame ${id}: ${(100 * explained / n).toFixed(2)}% of points explained`);

      // Vehicles within 30 m whose centre the LiDAR can see must show up in the cloud.
      for (const [aid, a] of actors) {
        if (aid === agent || a.pedestrian) continue;
        const d = Math.hypot(a.box.x - origin[0], a.box.y - origin[1]);
        if (d > 30 || d < 2) continue;
        const centre = [a.box.x, a.box.y, a.box.z];
        const blocked = statics.some((s) => segmentHitsBox(origin, centre, s)) ||
          [...actors].some(([other, o]) => other !== aid && other !== agent && segmentHitsBox(origin, centre, o.box));
        if (blocked) continue;
        const inside = world3.filter(([x, yy, z]) => pointInBox(grow(a.box, 0.1), x, yy, z)).length;
        assert.ok(inside >= 3, `agent ${agent} frame ${id}: vehicle ${aid} at ${d.toFixed(1)} m in plain view has ${inside} points`);
        checkedVisible++;
      }
    }
  }
  assert.ok(checkedVisible >= 5, `${checkedVisible} visible vehicles checked`);
});
