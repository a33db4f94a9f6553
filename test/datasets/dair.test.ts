import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Mat4, boxCorners, dairTransformToMatrix, invertRigid, multiply, poseToMatrix, relativeTransform, transformPoint, transformPoints, wrapAngle } from '../../src/geometry/index.ts';
import { isDairV2XCLayout, openDairV2XC } from '../../src/datasets/dair.ts';
import { DatasetFormatError, DatasetLayoutError } from '../../src/datasets/errors.ts';
import type { CooperativeFrame, Dataset, GroundTruthBox } from '../../src/datasets/types.ts';

const EXAMPLE = path.resolve(process.cwd(), '../shared/data/dair-v2x-c-example');
const ROOT = path.join(EXAMPLE, 'cooperative-vehicle-infrastructure');
const SUBSET = path.join(EXAMPLE, 'present-subset');
const SUBSET_INFO = {
  cooperative: path.join(SUBSET, 'cooperative__data_info.subset.json'),
  vehicle: path.join(SUBSET, 'vehicle-side__data_info.subset.json'),
  infrastructure: path.join(SUBSET, 'infrastructure-side__data_info.subset.json'),
};
const PRESENT_VEHICLE_FRAMES = ['015372', '015373', '015374', '015375', '015376', '015377', '015378', '015379', '015380', '015381'];

interface RawLabel {
  type: string;
  '2d_box': { xmin: number; ymin: number; xmax: number; ymax: number };
  '3d_dimensions': { l: number };
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

function nearest(box: GroundTruthBox['box'], candidates: GroundTruthBox[]): { distance: number; match: GroundTruthBox } {
  let best = { distance: Infinity, match: candidates[0]! };
  for (const c of candidates) {
    const d = Math.hypot(c.box.x - box.x, c.box.y - box.y, c.box.z - box.z);
    if (d < best.distance) best = { distance: d, match: c };
  }
  return best;
}

// The full example tree, opened once (skipMissing: its data_info lists 46 pairs, 10 present), and all its frames.
const dataset: Dataset = await openDairV2XC(ROOT, { skipMissing: true });
const sequence = dataset.scenarios[0]!;
const frames: CooperativeFrame[] = [];
for await (const f of sequence.frames()) frames.push(f);

// Temporary trees for the failure cases: symlinks into the real example plus the files a test breaks.
const tmpRoots: string[] = [];
after(() => {
  for (const r of tmpRoots) rmSync(r, { recursive: true, force: true });
});

/** A DAIR tree of the 10 present pairs built from symlinks; `override` maps a relative path to new content, or null to leave it out. */
function makeTree(override: Record<string, string | null> = {}): string {
  const root = mkdtempSync(path.join(os.tmpdir(), 'dair-test-'));
  tmpRoots.push(root);
  const files: Record<string, string> = {
    'cooperative/data_info.json': readFileSync(SUBSET_INFO.cooperative, 'utf8'),
    'vehicle-side/data_info.json': readFileSync(SUBSET_INFO.vehicle, 'utf8'),
    'infrastructure-side/data_info.json': readFileSync(SUBSET_INFO.infrastructure, 'utf8'),
  };
  const links = [
    'cooperative/label_world',
    'vehicle-side/velodyne', 'vehicle-side/image', 'vehicle-side/label/lidar',
    'vehicle-side/calib/novatel_to_world', 'vehicle-side/calib/lidar_to_novatel', 'vehicle-side/calib/lidar_to_camera', 'vehicle-side/calib/camera_intrinsic',
    'infrastructure-side/velodyne', 'infrastructure-side/image', 'infrastructure-side/label/virtuallidar',
    'infrastructure-side/calib/virtuallidar_to_world', 'infrastructure-side/calib/virtuallidar_to_camera', 'infrastructure-side/calib/camera_intrinsic',
  ];
  for (const rel of links) {
    // A folder holding an overridden file becomes a real folder of per-file links.
    const touched = Object.keys(override).filter((o) => path.dirname(o) === rel);
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    if (touched.length === 0) {
      symlinkSync(path.join(ROOT, rel), path.join(root, rel));
      continue;
    }
    mkdirSync(path.join(root, rel));
    for (const name of readdirSync(path.join(ROOT, rel))) {
      if (!(`${rel}/${name}` in override)) symlinkSync(path.join(ROOT, rel, name), path.join(root, rel, name));
    }
  }
  for (const [rel, content] of Object.entries({ ...files, ...override })) {
    if (content === null) continue;
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), content);
  }
  return root;
}

test('layout detection: the DAIR root and the folder holding it are recognised, other sample folders are not', async () => {
  assert.equal(await isDairV2XCLayout(ROOT), true);
  assert.equal(await isDairV2XCLayout(EXAMPLE), true);
  assert.equal(await isDairV2XCLayout(path.join(EXAMPLE, '..', 'opv2v-lidar')), false);
  assert.equal(await isDairV2XCLayout(path.join(ROOT, 'vehicle-side')), false);
});

test('the full example tree without skipMissing fails on the first pair whose files are absent, naming file and frame', async () => {
  await assert.rejects(openDairV2XC(ROOT), (err: unknown) => {
    assert.ok(err instanceof DatasetLayoutError, String(err));
    // cooperative/data_info.json lists vehicle frame 015404 first; nothing of it is in the example.
    assert.equal(err.path, path.join(ROOT, 'vehicle-side/velodyne/015404.pcd'));
    assert.equal(existsSync(err.path), false);
    assert.match(err.message, /frame 015404/);
    assert.match(err.message, /vehicle point cloud/);
    return true;
  });
});

test('with skipMissing the full tree yields exactly the 10 present pairs, in time order, and a warning per dropped pair', () => {
  assert.equal(dataset.format, 'dair-v2x-c');
  assert.equal(dataset.scenarios.length, 1);
  assert.equal(sequence.name, 'cooperative');
  assert.deepEqual(sequence.frameIds, PRESENT_VEHICLE_FRAMES);
  assert.equal(sequence.frameCount, 10);
  assert.deepEqual(sequence.agents, [
    { id: 'vehicle', kind: 'vehicle', frames: 10 },
    { id: 'infrastructure', kind: 'rsu', frames: 10 },
  ]);
  // 46 pairs listed, 10 present.
  assert.equal(dataset.warnings.length, 36);
  for (const w of dataset.warnings) {
    const m = /^skipped frame (\d{6}): (\S+): /.exec(w);
    assert.ok(m, w);
    assert.ok(!PRESENT_VEHICLE_FRAMES.includes(m[1]!));
    assert.equal(existsSync(m[2]!), false, `${m[2]} is said to be missing`);
  }
  frames.forEach((f, i) => {
    assert.equal(f.index, i);
    assert.equal(f.frameId, PRESENT_VEHICLE_FRAMES[i]);
    const [vehicle, infra] = f.agents;
    assert.equal(vehicle!.agentId, 'vehicle');
    assert.equal(infra!.kind, 'rsu');
    assert.equal(vehicle!.lidarPath, path.join(ROOT, `vehicle-side/velodyne/${f.frameId}.pcd`));
    // The example pairs vehicle 015372+i with infrastructure 000016+i.
    assert.equal(infra!.lidarPath, path.join(ROOT, `infrastructure-side/velodyne/${String(16 + i).padStart(6, '0')}.pcd`));
  });
});

test('the present-subset data_info files (dataInfo option) open the same 10 pairs with no warnings', async () => {
  // The reader takes a root folder; a data_info override (as for DAIR's split files) points it at the subset lists.
  const subset = await openDairV2XC(ROOT, { dataInfo: SUBSET_INFO });
  assert.deepEqual(subset.warnings, []);
  assert.deepEqual(subset.scenarios[0]!.frameIds, PRESENT_VEHICLE_FRAMES);
  const f = await subset.scenarios[0]!.frame(3);
  assert.deepEqual(f.agents[1]!.lidarToWorld, frames[3]!.agents[1]!.lidarToWorld);
});

test('timestamps: microseconds to nanoseconds, frame time is the vehicle LiDAR time, vehicle − RSU within −30..+5 ms', () => {
  // vehicle-side/data_info.json: 015372 pointcloud_timestamp "1626240241604435"; infrastructure 000016: "1626240241632533".
  assert.equal(frames[0]!.timestampNs, 1626240241604435000n);
  assert.equal(frames[0]!.agents[1]!.timestampNs, 1626240241632533000n);
  const offsetsMs: number[] = [];
  for (let i = 0; i < frames.length; i++) {
    const f = frames[i]!;
    assert.equal(f.timestampNs, f.agents[0]!.timestampNs);
    if (i > 0) {
      const step = Number(f.timestampNs - frames[i - 1]!.timestampNs) / 1e6;
      assert.ok(step > 95 && step < 105, `10 Hz step ${step} ms`);
    }
    const dt = Number(f.agents[0]!.timestampNs - f.agents[1]!.timestampNs) / 1e6;
    assert.ok(dt >= -30 && dt <= 5, `frame ${f.frameId}: vehicle − RSU ${dt} ms`);
    offsetsMs.push(dt);
  }
  assert.ok(Math.min(...offsetsMs) < -25 && Math.max(...offsetsMs) > 0, `measured ${offsetsMs.join(', ')}`);
});

test('boxes of both agents, mapped to world, land on cooperative/label_world; without the RSU offset they are ~0.93 m off', () => {
  const offsets = readJson<{ vehicle_pointcloud_path: string; system_error_offset: { delta_x: number; delta_y: number } }[]>(SUBSET_INFO.cooperative);
  const vehicleErrors: number[] = [];
  const infraErrors: number[] = [];
  const infraErrorsNoOffset: number[] = [];
  for (const f of frames) {
    const world = f.cooperativeBoxes!;
    assert.ok(world.length > 20);
    const [vehicle, infra] = f.agents;
    const { delta_x, delta_y } = offsets.find((o) => o.vehicle_pointcloud_path.endsWith(`${f.frameId}.pcd`))!.system_error_offset;
    // label_world only holds vehicles; match each side's vehicle boxes to their nearest cooperative box.
    for (const b of vehicle!.boxes.filter((b) => b.cls === 'vehicle')) vehicleErrors.push(nearest(b.box, world).distance);
    for (const b of infra!.boxes.filter((b) => b.cls === 'vehicle')) {
      infraErrors.push(nearest(b.box, world).distance);
      // The offset is a pure translation added to the RSU pose, so dropping it moves each box back by it.
      infraErrorsNoOffset.push(nearest({ ...b.box, x: b.box.x - delta_x, y: b.box.y - delta_y }, world).distance);
    }
    // Every cooperative box comes from one of the two agents' labels: centre and heading agree (the heading
    // derived from world_8_points; label_world's own `rotation` is still the vehicle-LiDAR yaw, unusable).
    for (const w of world) {
      const { distance, match } = nearest(w.box, [...vehicle!.boxes, ...infra!.boxes]);
      assert.ok(distance < 0.01, `frame ${f.frameId}: cooperative ${w.id} is ${distance} m from any agent box`);
      assert.ok(Math.abs(wrapAngle(w.box.yaw - match.box.yaw)) < 1e-3, `frame ${f.frameId}: heading ${w.box.yaw} vs ${match.box.yaw}`);
      assert.ok(Math.abs(w.box.l - match.box.l) < 1e-6 && Math.abs(w.box.h - match.box.h) < 1e-6);
      assert.equal(w.cls, 'vehicle');
    }
  }
  // Measured: 0.000 m for both; 0.933 m (= 0.66·√2) for the RSU without its offset.
  assert.ok(median(vehicleErrors) < 0.05, `vehicle median ${median(vehicleErrors)}`);
  assert.ok(median(infraErrors) < 0.05, `infrastructure median ${median(infraErrors)}`);
  const noOffset = median(infraErrorsNoOffset);
  assert.ok(noOffset > 0.85 && noOffset < 1.0, `infrastructure median without offset ${noOffset}`);
});

test('labels: class mapping keeps the raw class, zero-size (image-only) labels are dropped, ids are unique', () => {
  const seen = new Map<string, string>();
  for (const f of frames) {
    for (const agent of f.agents) {
      const ids = new Set(agent.boxes.map((b) => b.id));
      assert.equal(ids.size, agent.boxes.length);
      for (const b of agent.boxes) {
        seen.set(b.rawClass, b.cls);
        assert.ok(b.box.l > 0 && b.box.w > 0 && b.box.h > 0);
        assert.match(b.id, new RegExp(`^${agent.agentId}-\\d+$`));
      }
    }
    for (const b of f.cooperativeBoxes!) seen.set(b.rawClass, b.cls);
  }
  assert.deepEqual(Object.fromEntries([...seen].sort()), {
    Bus: 'vehicle', Car: 'vehicle', Motorcyclist: 'cyclist', Trafficcone: 'other', Van: 'vehicle',
    bus: 'vehicle', car: 'vehicle', van: 'vehicle',
  });
  // vehicle-side/label/lidar/015372.json has 18 labels, two of them 3D-less (size 0 at the origin).
  const raw = readJson<RawLabel[]>(path.join(ROOT, 'vehicle-side/label/lidar/015372.json'));
  assert.equal(raw.length, 18);
  assert.equal(frames[0]!.agents[0]!.boxes.length, 16);
});

test('poses are rigid and match the calibration chain; the RSU LiDAR sits ~40 m ahead-right of the vehicle', () => {
  for (const f of frames) {
    for (const agent of f.agents) {
      const m = agent.lidarToWorld;
      for (let r = 0; r < 3; r++) {
        for (let c = 0; c < 3; c++) {
          const dot = m[r * 4]! * m[c * 4]! + m[r * 4 + 1]! * m[c * 4 + 1]! + m[r * 4 + 2]! * m[c * 4 + 2]!;
          assert.ok(Math.abs(dot - (r === c ? 1 : 0)) < 1e-6);
        }
      }
    }
  }
  // Vehicle pose by hand for 015372: novatel_to_world · lidar_to_novatel from the calibration files.
  const n2w = readJson<{ rotation: number[][]; translation: number[][] }>(path.join(ROOT, 'vehicle-side/calib/novatel_to_world/015372.json'));
  const l2n = readJson<{ transform: { rotation: number[][]; translation: number[][] } }>(path.join(ROOT, 'vehicle-side/calib/lidar_to_novatel/015372.json'));
  const origin = transformPoint(dairTransformToMatrix(n2w), ...transformPoint(dairTransformToMatrix(l2n.transform), 0, 0, 0));
  assert.deepEqual(transformPoint(frames[0]!.agents[0]!.lidarToWorld, 0, 0, 0).map((v) => v.toFixed(6)), origin.map((v) => v.toFixed(6)));
  const rsuInVehicle = transformPoint(relativeTransform(frames[0]!.agents[1]!.lidarToWorld, frames[0]!.agents[0]!.lidarToWorld), 0, 0, 0);
  assert.ok(rsuInVehicle[0] > 30 && rsuInVehicle[0] < 45 && rsuInVehicle[1] < -10, `RSU at ${rsuInVehicle}`);
});

/**
 * Fraction of the RSU's points (mapped into the vehicle frame by `rsuToVehicle`) that land in a 0.5 m voxel
 * the vehicle's own scan occupies, or in one of its 26 neighbours. Only points within 30 m of the vehicle
 * (beyond that the vehicle's scan thins out, so the fraction drops for reasons unrelated to the pose) and
 * z from −1.2 to 3 m (ground at about −1.96 m here: the flat ground overlaps under almost any xy error).
 */
function overlapFraction(vehicleVoxels: Set<number>, rsuPoints: Float32Array, rsuToVehicle: Mat4): number {
  const moved = transformPoints(rsuToVehicle, rsuPoints);
  let considered = 0;
  let hits = 0;
  for (let i = 0; i < moved.length; i += 4) {
    const x = moved[i]!, y = moved[i + 1]!, z = moved[i + 2]!;
    if (Math.hypot(x, y) > 30 || z < -1.2 || z > 3) continue;
    considered++;
    const cx = Math.floor(x / VOXEL), cy = Math.floor(y / VOXEL), cz = Math.floor(z / VOXEL);
    search: for (let a = -1; a <= 1; a++) {
      for (let b = -1; b <= 1; b++) {
        for (let c = -1; c <= 1; c++) {
          if (vehicleVoxels.has(voxelKey(cx + a, cy + b, cz + c))) {
            hits++;
            break search;
          }
        }
      }
    }
  }
  assert.ok(considered > 500, `only ${considered} RSU points near the vehicle`);
  return hits / considered;
}
const VOXEL = 0.5;
const voxelKey = (i: number, j: number, k: number): number => ((i + 1024) * 2048 + (j + 1024)) * 256 + (k + 128);

test('RSU points mapped into the vehicle frame overlap the vehicle scan; a corrupted RSU pose does not', async () => {
  const good: number[] = [];
  const shifted: number[] = [];
  const turned: number[] = [];
  for (const f of frames) {
    const [vehicle, infra] = f.agents;
    const [vehiclePoints, rsuPoints] = await Promise.all([vehicle!.loadPoints(), infra!.loadPoints()]);
    if (f.index === 0) {
      assert.equal(vehiclePoints.length, 4 * 62400);
      assert.equal(rsuPoints.length, 4 * 54786);
    }
    const voxels = new Set<number>();
    for (let i = 0; i < vehiclePoints.length; i += 4) {
      voxels.add(voxelKey(Math.floor(vehiclePoints[i]! / VOXEL), Math.floor(vehiclePoints[i + 1]! / VOXEL), Math.floor(vehiclePoints[i + 2]! / VOXEL)));
    }
    const rsuToVehicle = relativeTransform(infra!.lidarToWorld, vehicle!.lidarToWorld);
    good.push(overlapFraction(voxels, rsuPoints, rsuToVehicle));
    shifted.push(overlapFraction(voxels, rsuPoints, multiply(poseToMatrix({ x: 3, y: 0, z: 0, roll: 0, pitch: 0, yaw: 0 }), rsuToVehicle)));
    // 10° heading error of the RSU about its own origin.
    turned.push(overlapFraction(voxels, rsuPoints, multiply(rsuToVehicle, poseToMatrix({ x: 0, y: 0, z: 0, roll: 0, pitch: 0, yaw: (10 * Math.PI) / 180 }))));
  }
  // Measured per frame: 0.80–0.87 with the poses as read; ≤ 0.27 shifted 3 m; ≤ 0.30 turned 10°.
  const fmt = (v: number[]): string => v.map((x) => x.toFixed(2)).join(' ');
  assert.ok(Math.min(...good) > 0.75, `overlap ${fmt(good)}`);
  assert.ok(Math.max(...shifted) < 0.4, `overlap shifted 3 m ${fmt(shifted)}`);
  assert.ok(Math.max(...turned) < 0.4, `overlap turned 10° ${fmt(turned)}`);
});

test('cameras: intrinsics from cam_K, cameraToLidar inverts lidar_to_camera exactly, boxes project onto their 2D boxes', () => {
  const f = frames[0]!;
  const checks = [
    { agent: f.agents[0]!, calib: 'vehicle-side/calib/lidar_to_camera/015372.json', intrinsic: 'vehicle-side/calib/camera_intrinsic/015372.json', label: 'vehicle-side/label/lidar/015372.json', image: 'vehicle-side/image/015372.jpg' },
    { agent: f.agents[1]!, calib: 'infrastructure-side/calib/virtuallidar_to_camera/000016.json', intrinsic: 'infrastructure-side/calib/camera_intrinsic/000016.json', label: 'infrastructure-side/label/virtuallidar/000016.json', image: 'infrastructure-side/image/000016.jpg' },
  ];
  for (const { agent, calib, intrinsic, label, image } of checks) {
    assert.equal(agent.cameras.length, 1);
    const cam = agent.cameras[0]!;
    assert.equal(cam.path, path.join(ROOT, image));
    assert.deepEqual([...cam.intrinsic], readJson<{ cam_K: number[] }>(path.join(ROOT, intrinsic)).cam_K);
    const lidarToCamera = dairTransformToMatrix(readJson<{ rotation: number[][]; translation: number[][] }>(path.join(ROOT, calib)));
    // The RSU's matrix is not a rotation (det 0.81): only a true inverse gives the identity here.
    const product = multiply(lidarToCamera, cam.cameraToLidar);
    product.forEach((v, k) => assert.ok(Math.abs(v - (k % 5 === 0 ? 1 : 0)) < 1e-9, `${calib}: element ${k} = ${v}`));
    // Optical frame: the camera looks along +z, which points roughly along the LiDAR's +x.
    const lookDirection = [cam.cameraToLidar[2]!, cam.cameraToLidar[6]!, cam.cameraToLidar[10]!];
    assert.ok(lookDirection[0]! / Math.hypot(...lookDirection) > 0.9, `${calib}: camera z in LiDAR frame ${lookDirection}`);

    // Project each 3D label (world → LiDAR → camera → pixels, corners' bounding rectangle) and compare with the
    // label's own 2d_box. Lens distortion is ignored, so the match is approximate; measured median IoU ≈ 0.6.
    const raw = readJson<RawLabel[]>(path.join(ROOT, label));
    const worldToCamera = multiply(lidarToCamera, invertRigid(agent.lidarToWorld));
    const K = cam.intrinsic;
    const ious: number[] = [];
    for (const b of agent.boxes) {
      const box2d = raw[Number(b.id.split('-')[1])]!['2d_box'];
      if (box2d.xmax - box2d.xmin < 20) continue;
      const corners = boxCorners(b.box);
      let u0 = Infinity, v0 = Infinity, u1 = -Infinity, v1 = -Infinity;
      for (let k = 0; k < 8; k++) {
        const [x, y, z] = transformPoint(worldToCamera, corners[3 * k]!, corners[3 * k + 1]!, corners[3 * k + 2]!);
        assert.ok(z > 1, 'labelled object behind the camera');
        const u = (K[0]! * x) / z + K[2]!, v = (K[4]! * y) / z + K[5]!;
        u0 = Math.min(u0, u); v0 = Math.min(v0, v); u1 = Math.max(u1, u); v1 = Math.max(v1, v);
      }
      u0 = Math.max(u0, 0); v0 = Math.max(v0, 0); u1 = Math.min(u1, 1920); v1 = Math.min(v1, 1080);
      const inter = Math.max(0, Math.min(u1, box2d.xmax) - Math.max(u0, box2d.xmin)) * Math.max(0, Math.min(v1, box2d.ymax) - Math.max(v0, box2d.ymin));
      ious.push(inter / ((u1 - u0) * (v1 - v0) + (box2d.xmax - box2d.xmin) * (box2d.ymax - box2d.ymin) - inter));
    }
    assert.ok(ious.length >= 8);
    assert.ok(median(ious) > 0.45, `${label}: median IoU ${median(ious)}`);
  }
  assert.equal(f.agents[1]!.cameras[0]!.width, 1920);
  assert.equal(f.agents[1]!.cameras[0]!.height, 1080);
});

test('a missing top-level file or folder is a DatasetLayoutError naming it', async () => {
  const root = makeTree({ 'cooperative/data_info.json': null });
  await assert.rejects(openDairV2XC(root), (err: unknown) => {
    assert.ok(err instanceof DatasetLayoutError);
    assert.equal(err.path, path.join(root, 'cooperative/data_info.json'));
    return true;
  });
  const noInfo = makeTree({ 'vehicle-side/data_info.json': null });
  await assert.rejects(openDairV2XC(noInfo), (err: unknown) => err instanceof DatasetLayoutError && err.path === path.join(noInfo, 'vehicle-side/data_info.json'));
  await assert.rejects(openDairV2XC(os.tmpdir() + '/no-such-dair-root'), DatasetLayoutError);
});

test('a missing label or calibration file fails naming path and frame; skipMissing drops just that pair', async () => {
  const root = makeTree({ 'vehicle-side/label/lidar/015375.json': null, 'infrastructure-side/calib/virtuallidar_to_world/000021.json': null });
  await assert.rejects(openDairV2XC(root), (err: unknown) => {
    assert.ok(err instanceof DatasetLayoutError);
    assert.ok([path.join(root, 'vehicle-side/label/lidar/015375.json'), path.join(root, 'infrastructure-side/calib/virtuallidar_to_world/000021.json')].includes(err.path), err.path);
    assert.match(err.message, /frame 0153(75|77)/);
    return true;
  });
  const ds = await openDairV2XC(root, { skipMissing: true });
  assert.deepEqual(ds.scenarios[0]!.frameIds, PRESENT_VEHICLE_FRAMES.filter((id) => id !== '015375' && id !== '015377'));
  assert.equal(ds.warnings.length, 2);
  assert.ok(ds.warnings.some((w) => w.includes('frame 015375') && w.includes(path.join(root, 'vehicle-side/label/lidar/015375.json')) && w.includes('vehicle LiDAR label')));
  assert.ok(ds.warnings.some((w) => w.includes('frame 015377') && w.includes('virtuallidar_to_world/000021.json')));
});

test('wrong json content is a DatasetFormatError naming the file and the field', async () => {
  const info = readJson<Record<string, unknown>[]>(SUBSET_INFO.cooperative);
  (info[2]!.system_error_offset as Record<string, unknown>).delta_x = 'east';
  const badInfo = makeTree({ 'cooperative/data_info.json': JSON.stringify(info) });
  await assert.rejects(openDairV2XC(badInfo), (err: unknown) => {
    assert.ok(err instanceof DatasetFormatError);
    assert.equal(err.path, path.join(badInfo, 'cooperative/data_info.json'));
    assert.equal(err.field, '[2].system_error_offset.delta_x');
    return true;
  });

  const calib = readJson<{ rotation: number[][]; translation: number[][] }>(path.join(ROOT, 'vehicle-side/calib/novatel_to_world/015373.json'));
  calib.rotation = calib.rotation.slice(0, 2);
  const badCalib = makeTree({ 'vehicle-side/calib/novatel_to_world/015373.json': JSON.stringify(calib), 'vehicle-side/label/lidar/015374.json': '[{"type": "Car"' });
  const ds = await openDairV2XC(badCalib);
  // Calibration and labels are read per frame, so the dataset opens and the frame fails.
  await assert.rejects(ds.scenarios[0]!.frame(1), (err: unknown) => {
    assert.ok(err instanceof DatasetFormatError);
    assert.equal(err.path, path.join(badCalib, 'vehicle-side/calib/novatel_to_world/015373.json'));
    assert.equal(err.field, 'rotation');
    return true;
  });
  await assert.rejects(ds.scenarios[0]!.frame(2), (err: unknown) => err instanceof DatasetFormatError && err.field === '(json)' && err.path.endsWith('label/lidar/015374.json'));
  assert.equal((await ds.scenarios[0]!.frame(0)).agents.length, 2);
});

test('both cameras carry their image size: the infrastructure intrinsic states it, the vehicle image header gives it', () => {
  for (const frame of frames) {
    for (const agent of frame.agents) {
      assert.equal(agent.cameras.length, 1);
      const cam = agent.cameras[0]!;
      assert.deepEqual([cam.width, cam.height], [1920, 1080], `${agent.agentId} ${cam.path}`);
    }
  }
});
