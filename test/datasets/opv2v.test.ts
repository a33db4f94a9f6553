import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { carlaPoseToMatrix, invertRigid, transformPoint, wrapAngle, yawOf } from '../../src/geometry/index.ts';
import { DatasetFormatError, DatasetLayoutError } from '../../src/datasets/errors.ts';
import { isOpv2vLayout, openOpv2v, parseOpv2vFrameYaml } from '../../src/datasets/opv2v.ts';
import type { CooperativeFrame, Dataset } from '../../src/datasets/types.ts';

const DATA = path.resolve(process.cwd(), '../shared/data');
const CULVER = path.join(DATA, 'opv2v-culver/TwoCars_1');
const LIDAR_ONLY = path.join(DATA, 'opv2v-lidar');
const CAMERA_PNG = path.join(DATA, 'opv2v-camera/000759_camera0.png');

// The sample is read once (about a second for 90 frames × 2 agents) and shared by the tests below.
let culver: Promise<{ ds: Dataset; frames: CooperativeFrame[] }> | undefined;
function loadCulver() {
  culver ??= (async () => {
    const ds = await openOpv2v(CULVER);
    const frames: CooperativeFrame[] = [];
    for await (const f of ds.scenarios[0].frames()) frames.push(f);
    return { ds, frames };
  })();
  return culver;
}

async function rawYaml(agent: string, frameId: string): Promise<any> {
  return parseYaml(await readFile(path.join(CULVER, agent, `${frameId}.yaml`), 'utf8'));
}

test('TwoCars_1 opens: 2 CAVs, 90 frames each, 006220…006398 step 2, ego 302', async () => {
  const { ds, frames } = await loadCulver();
  assert.equal(ds.format, 'opv2v');
  assert.deepEqual(ds.warnings, []);
  assert.equal(ds.scenarios.length, 1);
  const sc = ds.scenarios[0];
  assert.equal(sc.name, 'TwoCars_1');
  assert.deepEqual(sc.agents, [
    { id: '302', kind: 'vehicle', frames: 90 },
    { id: '311', kind: 'vehicle', frames: 90 },
  ]);
  assert.equal(sc.frameCount, 90);
  assert.deepEqual(sc.frameIds, Array.from({ length: 90 }, (_, i) => String(6220 + 2 * i).padStart(6, '0')));
  for (const f of frames) assert.deepEqual(f.agents.map((a) => a.agentId), ['302', '311']);
  // No timestamps in OPV2V: CARLA tick × 50 ms. 6220 ticks = 311 s; frames are 100 ms apart.
  assert.equal(frames[0].timestampNs, 311_000_000_000n);
  assert.equal(frames[1].timestampNs - frames[0].timestampNs, 100_000_000n);
  // ego_speed 11.614470762978327 km/h in 302/006220.yaml.
  assert.ok(Math.abs(frames[0].agents[0].speed! - 11.614470762978327 / 3.6) < 1e-12);
  assert.equal(frames[0].agents[0].noisyLidarToWorld, undefined);
  assert.equal(frames[0].agents[0].lidarPath, path.join(CULVER, '302', '006220.pcd'));
});

test('the split folder above a scenario opens too, and the layout is detected at both levels', async () => {
  assert.equal(await isOpv2vLayout(CULVER), true);
  assert.equal(await isOpv2vLayout(path.dirname(CULVER)), true);
  const ds = await openOpv2v(path.dirname(CULVER));
  assert.deepEqual(ds.scenarios.map((s) => s.name), ['TwoCars_1']);
  assert.equal(await isOpv2vLayout(LIDAR_ONLY), false);
  assert.equal(await isOpv2vLayout(path.join(DATA, 'dair-v2x-c-example')), false);
});

test("each CAV's true_ego_pos is the location of exactly one vehicle in the other CAV's list, after conversion", async () => {
  const { frames } = await loadCulver();
  let checked = 0;
  for (const f of frames) {
    for (const [me, other] of [['302', '311'], ['311', '302']]) {
      const file = path.join(CULVER, me, `${f.frameId}.yaml`);
      const mine = parseOpv2vFrameYaml(await readFile(file, 'utf8'), file);
      const v = mine.vehicleToWorld!;
      const otherRaw = await rawYaml(other, f.frameId);
      const otherFrame = f.agents.find((a) => a.agentId === other)!;
      // `center` is added to `location` unrotated, in CARLA's world: mirror it and take it off our box centre.
      const matches = otherFrame.boxes.filter((b) => {
        const c = otherRaw.vehicles[b.id].center;
        return Math.hypot(b.box.x - c[0] - v[3], b.box.y + c[1] - v[7], b.box.z - c[2] - v[11]) < 1e-3;
      });
      assert.deepEqual(matches.map((b) => b.id), [me], `frame ${f.frameId}: ${me} in ${other}'s vehicles`);
      checked++;
    }
  }
  assert.equal(checked, 180);
});

test('the LiDAR sits where a roof mount would: 0.5 m behind and 1.9 m above the vehicle origin', async () => {
  const { frames } = await loadCulver();
  for (const f of frames) {
    for (const a of f.agents) {
      const file = path.join(CULVER, a.agentId, `${f.frameId}.yaml`);
      const v = parseOpv2vFrameYaml(await readFile(file, 'utf8'), file).vehicleToWorld!;
      const l = a.lidarToWorld;
      const [x, y, z] = transformPoint(invertRigid(v), l[3], l[7], l[11]);
      // Measured on all 180 records: x −0.50002…−0.49998, |y| < 3e-5, z 1.9000 ± 3e-7.
      assert.ok(Math.abs(x + 0.5) < 0.01 && Math.abs(y) < 0.01 && Math.abs(z - 1.9) < 0.01, `${a.agentId}@${f.frameId}: mount ${x} ${y} ${z}`);
    }
  }
});

test('handedness: box headings agree with the direction the vehicles move', async () => {
  const { frames } = await loadCulver();
  // Over 2 frames (0.2 s), every vehicle that moved more than 1 m. A yaw sign that disagrees with the y mirror
  // turns cos(heading − motion) of a vehicle driving at −30° into cos(60°) = 0.5.
  const span = 2;
  const cosines: number[] = [];
  for (let k = 0; k + span < frames.length; k++) {
    for (const a of frames[k].agents) {
      const later = frames[k + span].agents.find((x) => x.agentId === a.agentId)!;
      for (const b0 of a.boxes) {
        const b1 = later.boxes.find((x) => x.id === b0.id);
        if (!b1) continue;
        const dx = b1.box.x - b0.box.x, dy = b1.box.y - b0.box.y;
        if (Math.hypot(dx, dy) < 1) continue;
        const heading = b0.box.yaw + wrapAngle(b1.box.yaw - b0.box.yaw) / 2;
        cosines.push(Math.cos(Math.atan2(dy, dx) - heading));
      }
      // The CAV itself: its LiDAR heading against its own motion.
      const dx = later.lidarToWorld[3] - a.lidarToWorld[3], dy = later.lidarToWorld[7] - a.lidarToWorld[7];
      if (Math.hypot(dx, dy) >= 1) cosines.push(Math.cos(Math.atan2(dy, dx) - yawOf(a.lidarToWorld)));
    }
  }
  assert.ok(cosines.length > 500, `${cosines.length} moving pairs`);
  const worst = Math.min(...cosines);
  assert.ok(worst > 0.9, `worst cos ${worst}`);
});

test('cameras: 0 looks forward, 1 right, 2 left, 3 back, image down is LiDAR down, as the cords say', async () => {
  const { frames } = await loadCulver();
  const expectedAxis: Record<string, [number, number]> = {
    camera0: [1, 0],
    camera1: [Math.cos(-100 * Math.PI / 180), Math.sin(-100 * Math.PI / 180)],
    camera2: [Math.cos(100 * Math.PI / 180), Math.sin(100 * Math.PI / 180)],
    camera3: [-1, 0],
  };
  for (const f of [frames[0], frames[45], frames[89]]) {
    for (const a of f.agents) {
      const raw = await rawYaml(a.agentId, f.frameId);
      assert.deepEqual(a.cameras.map((c) => c.name), ['camera0', 'camera1', 'camera2', 'camera3']);
      for (const cam of a.cameras) {
        const m = cam.cameraToLidar;
        // Optical +z (forward) → column 2; optical +y (image down) → column 1.
        const axis = [m[2], m[6], m[10]];
        const [ex, ey] = expectedAxis[cam.name];
        assert.ok(Math.hypot(axis[0] - ex, axis[1] - ey, axis[2]) < 0.01, `${cam.name} axis ${axis}`);
        assert.ok(m[9] < -0.999, `${cam.name}: image down must be LiDAR −z`);
        const det = m[0] * (m[5] * m[10] - m[6] * m[9]) - m[1] * (m[4] * m[10] - m[6] * m[8]) + m[2] * (m[4] * m[9] - m[5] * m[8]);
        assert.ok(Math.abs(det - 1) < 1e-9, `${cam.name} det ${det}`);
        // CARLA yaw turns clockwise seen from above (towards +y = right): our heading is its negative.
        const cordsYawDelta = (raw[cam.name].cords[4] - raw.lidar_pose[4]) * Math.PI / 180;
        assert.ok(Math.abs(wrapAngle(Math.atan2(axis[1], axis[0]) + cordsYawDelta)) < 0.01, `${cam.name} yaw vs cords`);

        // Where the camera is: from its own cords and the LiDAR pose, independently of `extrinsic`.
        const camWorld = carlaPoseToMatrix(raw[cam.name].cords);
        const [px, py, pz] = transformPoint(invertRigid(a.lidarToWorld), camWorld[3], camWorld[7], camWorld[11]);
        assert.ok(Math.hypot(m[3] - px, m[7] - py, m[11] - pz) < 1e-4, `${cam.name} position ${[m[3], m[7], m[11]]} vs cords ${[px, py, pz]}`);
        assert.equal(cam.width, 800);
        assert.equal(cam.height, 600);
        assert.equal(cam.path, path.join(CULVER, a.agentId, `${f.frameId}_${cam.name}.png`));
      }
      // camera0 is on the front bumper: 3 m ahead of, 0.9 m below the LiDAR (yaml extrinsic translation is −3, 0, 0.9).
      const c0 = a.cameras[0].cameraToLidar;
      assert.ok(Math.abs(c0[3] - 3) < 0.01 && Math.abs(c0[7]) < 0.01 && Math.abs(c0[11] + 0.9) < 0.01);
    }
  }
});

function project(frame: CooperativeFrame['agents'][number], cam: CooperativeFrame['agents'][number]['cameras'][number], x: number, y: number, z: number) {
  const inLidar = transformPoint(invertRigid(frame.lidarToWorld), x, y, z);
  const [cx, cy, cz] = transformPoint(invertRigid(cam.cameraToLidar), ...inLidar);
  const K = cam.intrinsic;
  return { u: K[0] * cx / cz + K[2], v: K[4] * cy / cz + K[5], depth: cz, inLidar };
}

test('ground-truth centres in front of a camera project inside its 800×600 image with positive depth', async () => {
  const { frames } = await loadCulver();
  let projected = 0;
  for (const f of frames) {
    for (const a of f.agents) {
      for (const cam of a.cameras) {
        const m = cam.cameraToLidar;
        for (const b of a.boxes) {
          if (b.id === a.agentId) continue;
          const p = project(a, cam, b.box.x, b.box.y, b.box.z);
          const rel = [p.inLidar[0] - m[3], p.inLidar[1] - m[7]];
          const dist = Math.hypot(rel[0], rel[1]);
          // Within 40° of the optical axis (the lens covers ±50° horizontally: atan(400 / 335.6)).
          if (dist < 3 || (rel[0] * m[2] + rel[1] * m[6]) / dist < Math.cos(40 * Math.PI / 180)) continue;
          assert.ok(p.depth > 0, `${a.agentId}@${f.frameId} ${cam.name}: ${b.id} depth ${p.depth}`);
          assert.ok(p.u >= 0 && p.u < 800 && p.v >= 0 && p.v < 600, `${a.agentId}@${f.frameId} ${cam.name}: ${b.id} at ${p.u}, ${p.v}`);
          projected++;
        }
      }
    }
  }
  assert.ok(projected > 1000, `${projected} projections`);

  // One worked by hand in CARLA's own frame from the raw yaml: CAV 311 seen by 302's front camera at 006220.
  // Camera axes in CARLA: forward (cos ψ, sin ψ), right (−sin ψ, cos ψ), up z; u = cx + f·right/fwd, v = cy − f·up/fwd.
  const raw = await rawYaml('302', '006220');
  const target = raw.vehicles[311];
  const [camX, camY, camZ, , camYawDeg] = raw.camera0.cords;
  const psi = camYawDeg * Math.PI / 180;
  const d = [0, 1, 2].map((i) => target.location[i] + target.center[i] - [camX, camY, camZ][i]);
  const fwd = d[0] * Math.cos(psi) + d[1] * Math.sin(psi);
  const right = -d[0] * Math.sin(psi) + d[1] * Math.cos(psi);
  const f = raw.camera0.intrinsic[0][0];
  const expected = { u: 400 + f * right / fwd, v: 300 - f * d[2] / fwd };
  const a = frames[0].agents[0];
  const box = a.boxes.find((b) => b.id === '311')!.box;
  const got = project(a, a.cameras[0], box.x, box.y, box.z);
  // CAV 311 is 57 m ahead, 16 m to the left: u ≈ 299. Roll and pitch (≈0.1°) are left out by hand: ±2 px.
  assert.ok(Math.abs(got.u - expected.u) < 2 && Math.abs(got.v - expected.v) < 2, `got ${got.u}, ${got.v}; by hand ${expected.u}, ${expected.v}`);
  assert.ok(got.u > 280 && got.u < 320, `u ${got.u}`);
});

test('the metadata-only sample opens, but loading its points names the missing .pcd', async () => {
  const { frames } = await loadCulver();
  await assert.rejects(frames[0].agents[1].loadPoints(), (err: unknown) => {
    assert.ok(err instanceof DatasetLayoutError);
    assert.equal(err.path, path.join(CULVER, '311', '006220.pcd'));
    return true;
  });
  // With skipMissing nothing is left: an error, not an empty dataset.
  await assert.rejects(openOpv2v(CULVER, { skipMissing: true }), (err: unknown) => {
    assert.ok(err instanceof DatasetLayoutError);
    assert.match(err.message, /no frame with a point cloud/);
    assert.match(err.message, /006220\.pcd/);
    return true;
  });
});

test('a folder of point clouds without yaml is refused with a message about the yaml', async () => {
  await assert.rejects(openOpv2v(LIDAR_ONLY), (err: unknown) => {
    assert.ok(err instanceof DatasetLayoutError);
    assert.equal(err.path, LIDAR_ONLY);
    assert.match(err.message, /no scenario folders/);
    assert.match(err.message, /5 NNNNNN\.pcd files but no NNNNNN\.yaml/);
    return true;
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Synthetic scenarios

/** ASCII PCD with FIELDS x y z rgb, the intensity packed in the red byte of the rgb float as OPV2V writes it. */
function asciiPcd(points: [number, number, number, number][]): string {
  const bits = new DataView(new ArrayBuffer(4));
  const lines = points.map(([x, y, z, red]) => {
    bits.setUint32(0, red << 16);
    return `${x} ${y} ${z} ${bits.getFloat32(0).toPrecision(9)}`;
  });
  return [
    '# .PCD v0.7 - Point Cloud Data file format', 'VERSION 0.7', 'FIELDS x y z rgb', 'SIZE 4 4 4 4', 'TYPE F F F F', 'COUNT 1 1 1 1',
    `WIDTH ${points.length}`, 'HEIGHT 1', 'VIEWPOINT 0 0 0 1 0 0 0', `POINTS ${points.length}`, 'DATA ascii', ...lines, '',
  ].join('\n');
}

/** The first 33 bytes of a PNG: signature and IHDR chunk (all the reader looks at). */
function pngHeader(width: number, height: number): Buffer {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write('IHDR', 12, 'latin1');
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  b[24] = 8; b[25] = 2;
  return b;
}

const OPV2V_CAV_YAML = `camera0:
  cords: [13.0, 20.0, 1.0, 0.0, 90.0, 0.0]
  extrinsic:
  - [1.0, 0.0, 0.0, -3.0]
  - [0.0, 1.0, 0.0, 0.0]
  - [0.0, 0.0, 1.0, 0.9]
  - [0.0, 0.0, 0.0, 1.0]
  intrinsic:
  - [335.6, 0.0, 400.0]
  - [0.0, 335.6, 300.0]
  - [0.0, 0.0, 1.0]
ego_speed: 36.0
lidar_pose: &pose [10.0, 20.0, 1.9, 0.0, 90.0, 0.0]
plan_trajectory: [[1, 2, 3]]
true_ego_pos: [10.0, 20.0, 0.0, 0.0, 90.0, 0.0]
vehicles:
  42:
    angle: [0.0, 90.0, 0.0]
    center: [0.0, 0.0, 0.7]
    extent: [2.0, 1.0, 0.75]
    location: [15.0, 20.0, 0.0]
    speed: 18.0
  43:
    angle: [0.0, 0.0, 0.0]
    center: [0.0, 0.0, 0.9]
    extent: [0.3, 0.3, 0.9]
    location: [12.0, 25.0, 0.0]
    class: pedestrian
`;

const OPV2V_RSU_YAML = `lidar_pose: [30.0, -5.0, 4.0, 0.0, 0.0, 0.0]
noisy_lidar_pose: [30.5, -5.0, 4.0, 0.0, 0.0, 0.0]
timestamp: 12.5
vehicles: {}
`;

async function writeSynthetic(root: string) {
  const cav = path.join(root, 'scA', '5');
  const rsu = path.join(root, 'scA', '-2');
  await mkdir(cav, { recursive: true });
  await mkdir(rsu, { recursive: true });
  await writeFile(path.join(cav, '000010.yaml'), OPV2V_CAV_YAML);
  await writeFile(path.join(cav, '000010.pcd'), asciiPcd([[1, 2, 3, 255], [4, -5, 6, 51]]));
  await writeFile(path.join(cav, '000010_camera0.png'), pngHeader(1600, 1200));
  await writeFile(path.join(cav, '000012.yaml'), OPV2V_CAV_YAML); // no pcd for this one
  await writeFile(path.join(rsu, '000010.yaml'), OPV2V_RSU_YAML);
  await writeFile(path.join(rsu, '000010.pcd'), asciiPcd([[7, 8, 9, 0]]));
}

async function withTempDir(fn: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'v2xfuse-opv2v-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('synthetic OPV2V split: agent order, RSU, poses, boxes, points mirrored, cameras, timestamps', () =>
  withTempDir(async (root) => {
    await writeSynthetic(root);
    const ds = await openOpv2v(root);
    assert.equal(ds.format, 'opv2v');
    const sc = ds.scenarios[0];
    assert.equal(sc.name, 'scA');
    assert.deepEqual(sc.agents, [
      { id: '5', kind: 'vehicle', frames: 2 },
      { id: '-2', kind: 'rsu', frames: 1 },
    ]);
    assert.deepEqual(sc.frameIds, ['000010', '000012']);

    const f0 = await sc.frame(0);
    assert.deepEqual(f0.agents.map((a) => [a.agentId, a.kind]), [['5', 'vehicle'], ['-2', 'rsu']]);
    const [cav, rsu] = f0.agents;
    // Frame 10 × 50 ms; the RSU's yaml has timestamp: 12.5 s.
    assert.equal(cav.timestampNs, 500_000_000n);
    assert.equal(f0.timestampNs, 500_000_000n);
    assert.equal(rsu.timestampNs, 12_500_000_000n);
    assert.equal(cav.speed, 10);
    // CARLA (10, 20, 1.9) heading yaw 90° = towards CARLA +y = our −y.
    const ahead = transformPoint(cav.lidarToWorld, 1, 0, 0);
    assert.deepEqual(ahead.map((v) => Math.round(v * 1e9) / 1e9), [10, -21, 1.9]);
    assert.equal(cav.noisyLidarToWorld, undefined);
    assert.ok(rsu.noisyLidarToWorld);
    assert.deepEqual([rsu.noisyLidarToWorld![3], rsu.noisyLidarToWorld![7]], [30.5, 5]);

    const car = cav.boxes.find((b) => b.id === '42')!;
    assert.equal(car.cls, 'vehicle');
    assert.equal(car.speed, 5);
    assert.deepEqual({ ...car.box, yaw: Math.round(car.box.yaw * 1e12) / 1e12 }, { x: 15, y: -20, z: 0.7, l: 4, w: 2, h: 1.5, yaw: Math.round(-Math.PI / 2 * 1e12) / 1e12 });
    const walker = cav.boxes.find((b) => b.id === '43')!;
    assert.deepEqual([walker.cls, walker.rawClass], ['pedestrian', 'pedestrian']);
    assert.deepEqual(rsu.boxes, []);

    // The png header says 1600×1200, overriding the 800×600 the intrinsic implies.
    assert.deepEqual([cav.cameras[0].width, cav.cameras[0].height], [1600, 1200]);
    assert.deepEqual(rsu.cameras, []);
    // Identity rotation, LiDAR → camera translation (−3, 0, 0.9): the camera sits 3 m ahead, 0.9 m down.
    const m = cav.cameras[0].cameraToLidar;
    assert.deepEqual([m[3], m[7], m[11]].map((v) => Math.round(v * 1e9) / 1e9), [3, 0, -0.9]);

    // y mirrored, intensity from the red byte (255 → 1, 51 → 0.2).
    const pts = await cav.loadPoints();
    assert.deepEqual(Array.from(pts).map((v) => Math.round(v * 1e6) / 1e6), [1, -2, 3, 1, 4, 5, 6, 0.2]);

    const f1 = await sc.frame(1);
    assert.deepEqual(f1.agents.map((a) => a.agentId), ['5']);
    assert.equal(f1.timestampNs, 600_000_000n);
    await assert.rejects(f1.agents[0].loadPoints(), (err: unknown) => {
      assert.ok(err instanceof DatasetLayoutError);
      assert.equal(err.path, path.join(root, 'scA', '5', '000012.pcd'));
      return true;
    });

    // skipMissing drops the frame without a point cloud and says which file was missing.
    const skipped = await openOpv2v(root, { skipMissing: true });
    assert.deepEqual(skipped.scenarios[0].frameIds, ['000010']);
    assert.deepEqual(skipped.scenarios[0].agents.map((a) => a.frames), [1, 1]);
    assert.equal(skipped.warnings.length, 1);
    assert.ok(skipped.warnings[0].startsWith(path.join(root, 'scA', '5', '000012.pcd')), skipped.warnings[0]);
  }));

test('a real OPV2V png linked into a scenario gives its size from the header', () =>
  withTempDir(async (root) => {
    const cav = path.join(root, '641');
    await mkdir(cav);
    await writeFile(path.join(cav, '000759.yaml'), OPV2V_CAV_YAML);
    await symlink(CAMERA_PNG, path.join(cav, '000759_camera0.png'));
    const ds = await openOpv2v(root);
    const cam = (await ds.scenarios[0].frame(0)).agents[0].cameras[0];
    assert.deepEqual([cam.width, cam.height, cam.path], [800, 600, path.join(cav, '000759_camera0.png')]);
  }));

const V2V4REAL_YAML = `lidar_pose:
- [0.0, -1.0, 0.0, 100.0]
- [1.0, 0.0, 0.0, 50.0]
- [0.0, 0.0, 1.0, 2.0]
- [0.0, 0.0, 0.0, 1.0]
true_ego_pos:
- [0.0, -1.0, 0.0, 100.0]
- [1.0, 0.0, 0.0, 50.0]
- [0.0, 0.0, 1.0, 0.0]
- [0.0, 0.0, 0.0, 1.0]
ego_speed: 18.0
vehicles:
  7:
    angle: [0.0, 30.0, 0.0]
    center: [0.0, 0.0, 0.8]
    extent: [2.0, 1.0, 0.8]
    location: [10.0, 0.0, 0.0]
    obj_type: Car
`;

test('synthetic V2V4Real: 4x4 poses used as is, boxes from the LiDAR frame, points not mirrored', () =>
  withTempDir(async (root) => {
    const agent = path.join(root, 'seq', '0');
    await mkdir(agent, { recursive: true });
    await writeFile(path.join(agent, '000000.yaml'), V2V4REAL_YAML);
    await writeFile(path.join(agent, '000000.pcd'), asciiPcd([[1, 2, 3, 255]]));
    const ds = await openOpv2v(path.join(root, 'seq'));
    assert.equal(ds.format, 'v2v4real');
    const a = (await ds.scenarios[0].frame(0)).agents[0];
    assert.deepEqual(Array.from(a.lidarToWorld), [0, -1, 0, 100, 1, 0, 0, 50, 0, 0, 1, 2, 0, 0, 0, 1]);
    // Box at (10, 0, 0.8) in the LiDAR frame, yaw 30°; the LiDAR is at (100, 50, 2) turned 90° left.
    const car = a.boxes[0];
    assert.deepEqual([car.id, car.cls, car.rawClass], ['7', 'vehicle', 'Car']);
    assert.ok(Math.hypot(car.box.x - 100, car.box.y - 60, car.box.z - 2.8) < 1e-9, JSON.stringify(car.box));
    assert.ok(Math.abs(wrapAngle(car.box.yaw - 2 * Math.PI / 3)) < 1e-9);
    assert.deepEqual([car.box.l, car.box.w, car.box.h], [4, 2, 1.6]);
    assert.deepEqual(a.cameras, []);
    assert.deepEqual(Array.from(await a.loadPoints()), [1, 2, 3, 1]);

    // A split mixing it with an OPV2V scenario is refused.
    await writeSynthetic(root);
    await assert.rejects(openOpv2v(root), /mixes OPV2V and V2V4Real/);
  }));

test('layout errors name the folder and what was expected', () =>
  withTempDir(async (root) => {
    await assert.rejects(openOpv2v(root), (err: unknown) => {
      assert.ok(err instanceof DatasetLayoutError);
      assert.match(err.message, /no scenario folders \(integer agent folders\)/);
      return true;
    });
    await assert.rejects(openOpv2v(path.join(root, 'absent')), DatasetLayoutError);

    // One agent folder has frames, the other only a point cloud.
    const scenario = path.join(root, 'sc');
    await mkdir(path.join(scenario, '3'), { recursive: true });
    await mkdir(path.join(scenario, '4'), { recursive: true });
    await writeFile(path.join(scenario, '3', '000001.pcd'), asciiPcd([[0, 0, 0, 0]]));
    await writeFile(path.join(scenario, '4', '000001.yaml'), OPV2V_RSU_YAML);
    await assert.rejects(openOpv2v(scenario), (err: unknown) => {
      assert.ok(err instanceof DatasetLayoutError);
      assert.equal(err.path, path.join(scenario, '3'));
      assert.match(err.message, /no NNNNNN\.yaml files/);
      return true;
    });

    // An agent folder given instead of its scenario.
    await assert.rejects(openOpv2v(path.join(scenario, '4')), /looks like one agent folder/);
  }));

test('format errors name the file and the field', () => {
  const bad = OPV2V_CAV_YAML.replace('extent: [2.0, 1.0, 0.75]', 'extent: [2.0, 1.0]');
  assert.throws(() => parseOpv2vFrameYaml(bad, '/x/5/000010.yaml'), (err: unknown) => {
    assert.ok(err instanceof DatasetFormatError);
    assert.equal(err.path, '/x/5/000010.yaml');
    assert.equal(err.field, 'vehicles.42.extent');
    return true;
  });
  assert.throws(() => parseOpv2vFrameYaml('vehicles: {}\n', '/x/1.yaml'), (err: unknown) => {
    assert.ok(err instanceof DatasetFormatError);
    assert.equal(err.field, 'lidar_pose');
    return true;
  });
  const noIntrinsic = OPV2V_CAV_YAML.replace(/ {2}intrinsic:\n(.*\n){3}/, '');
  assert.throws(() => parseOpv2vFrameYaml(noIntrinsic, '/x/2.yaml'), (err: unknown) => err instanceof DatasetFormatError && err.field === 'camera0.intrinsic');
  assert.throws(() => parseOpv2vFrameYaml('lidar_pose: [1, 2\n', '/x/3.yaml'), DatasetFormatError);
});

test('the yaml reader skips unused entries but falls back to the whole file for aliases into them', () => {
  // lidar_pose is an alias of an anchor defined under plan_trajectory, an entry the reader would skip.
  const text = `plan_trajectory:\n- &p [1.0, 2.0, 3.0, 0.0, 0.0, 0.0]\nlidar_pose: *p\nvehicles: {}\n`;
  const rec = parseOpv2vFrameYaml(text, '/x/4.yaml');
  assert.deepEqual([rec.lidarToWorld[3], rec.lidarToWorld[7], rec.lidarToWorld[11]], [1, -2, 3]);
});
