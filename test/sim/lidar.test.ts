import { test } from 'node:test';
import assert from 'node:assert/strict';
import { poseToMatrix } from '../../src/geometry/index.ts';
import { beamElevationsDeg, castLidarScan, columnAzimuthsDeg, LIDAR_PRESETS, LidarConfigError, type LidarConfig } from '../../src/sim/lidar.ts';
import { Rng } from '../../src/sim/random.ts';
import type { Scene, ScenePrimitive } from '../../src/sim/scene.ts';
import { intersectRay, SceneIndex, type RayHit } from '../../src/sim/scene-index.ts';

const DEG = Math.PI / 180;

function box(x: number, y: number, z: number, l: number, w: number, h: number, yaw = 0, objectId = -1, reflectivity = 0.5): ScenePrimitive {
  return { x, y, z, l, w, h, yaw, surface: 'building', reflectivity, color: [200, 40, 40], objectId };
}

function sceneOf(primitives: ScenePrimitive[], roads: Scene['roads'] = []): Scene {
  return { primitives, groundColor: [100, 110, 90], roadColor: [70, 70, 70], roads };
}

function newHit(): RayHit {
  return { t: NaN, primitive: -99, nx: NaN, ny: NaN, nz: NaN };
}

function assertClose(actual: number, expected: number, tolerance: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not within ${tolerance} of ${expected}`);
}

const sensorAt = (x: number, y: number, z: number, yaw = 0) => poseToMatrix({ x, y, z, roll: 0, pitch: 0, yaw });

/** Noise-free config: every ray that can return does, so counts and positions are exact. */
function exactConfig(overrides: Partial<LidarConfig>): LidarConfig {
  return {
    beams: 16, verticalFovDeg: [-15, 15], horizontalResolutionDeg: 1, rangeM: 100,
    rangeNoiseStdM: 0, dropoutProbability: 0, intensityNoiseStd: 0, ...overrides,
  };
}

test('intersectRay: a ray straight at a unit box hits its near face at the face distance', () => {
  const index = new SceneIndex(sceneOf([box(5, 0, 1, 1, 1, 1)]));
  const hit = newHit();
  assert.equal(intersectRay(index, 0, 0, 1, 1, 0, 0, 100, hit), true);
  assert.equal(hit.t, 4.5);
  assert.equal(hit.primitive, 0);
  assert.deepEqual([hit.nx, hit.ny, hit.nz], [-1, 0, 0]);
  // From above, straight down onto the top face (z = 1.5).
  assert.equal(intersectRay(index, 5, 0, 10, 0, 0, -1, 100, hit), true);
  assert.equal(hit.t, 8.5);
  assert.deepEqual([hit.nx, hit.ny, hit.nz], [0, 0, 1]);
});

test('intersectRay: a box yawed 30° is entered through its +w face at the hand-computed distance', () => {
  // Box centre (10, 0), l = 2, w = 1, yaw 30°. Its +w face is the line (p - c)·(-sin30, cos30) = 0.5; the ray
  // p = (t, 0) meets it where (t - 10)·(-0.5) = 0.5, t = 9, at local x = -0.866 (inside ±1). The -l face would
  // be met later: (t - 10)·cos30 = -1 gives t = 8.845 but at local y = 0.558 > 0.5, outside the face.
  const index = new SceneIndex(sceneOf([box(10, 0, 1, 2, 1, 2, 30 * DEG)]));
  const hit = newHit();
  assert.equal(intersectRay(index, 0, 0, 1, 1, 0, 0, 100, hit), true);
  assertClose(hit.t, 9, 1e-12, 't');
  assertClose(hit.nx, -Math.sin(30 * DEG), 1e-12, 'nx');
  assertClose(hit.ny, Math.cos(30 * DEG), 1e-12, 'ny');
  assert.equal(hit.nz, 0);
});

test('intersectRay: misses leave the hit untouched; the range limits hits', () => {
  const index = new SceneIndex(sceneOf([box(5, 0, 1, 1, 1, 1)]));
  const hit = newHit();
  assert.equal(intersectRay(index, 0, 0, 1, 0, 1, 0, 100, hit), false, 'sideways, level: nothing');
  assert.equal(intersectRay(index, 0, 0, 3, 1, 0, 0, 100, hit), false, 'level above the box');
  assert.equal(intersectRay(index, 0, 0, 1, -1, 0, 0, 100, hit), false, 'away from the box');
  assert.equal(intersectRay(index, 0, 0, 1, 1, 0, 0, 4.4, hit), false, 'box beyond the range');
  assert.ok(Number.isNaN(hit.t));
});

test('intersectRay: the ground from height h at elevation -θ is hit at t = h / sin θ', () => {
  const index = new SceneIndex(sceneOf([]));
  const hit = newHit();
  const h = 2;
  for (const thetaDeg of [1, 10, 45, 89]) {
    const theta = thetaDeg * DEG;
    assert.equal(intersectRay(index, 3, -4, h, Math.cos(theta), 0, -Math.sin(theta), 1000, hit), true);
    assertClose(hit.t, h / Math.sin(theta), 1e-9, `t at ${thetaDeg}°`);
    assert.equal(hit.primitive, -1);
    assert.deepEqual([hit.nx, hit.ny, hit.nz], [0, 0, 1]);
  }
  // 1° down from 2 m reaches the ground at 114.6 m: beyond a 100 m range, and upward rays never hit.
  assert.equal(intersectRay(index, 0, 0, 2, Math.cos(DEG), 0, -Math.sin(DEG), 100, hit), false);
  assert.equal(intersectRay(index, 0, 0, 2, 1, 0, 0.1, 1000, hit), false);
});

test('intersectRay: of two boxes in line the nearer wins, whatever their order in the scene', () => {
  const far = box(20, 0, 1, 1, 2, 2);
  const near = box(8, 0, 1, 1, 2, 2);
  for (const [primitives, nearIndex] of [[[far, near], 1], [[near, far], 0]] as const) {
    const index = new SceneIndex(sceneOf([...primitives]));
    const hit = newHit();
    assert.equal(intersectRay(index, 0, 0, 1, 1, 0, 0, 100, hit), true);
    assert.equal(hit.t, 7.5);
    assert.equal(hit.primitive, nearIndex);
    // From beyond both, looking back, the far one is now the nearer.
    assert.equal(intersectRay(index, 30, 0, 1, -1, 0, 0, 100, hit), true);
    assert.equal(hit.t, 9.5);
    assert.equal(hit.primitive, 1 - nearIndex);
  }
});

test('intersectRay: the grid walk finds a box far away across many cells, from inside and outside the grid', () => {
  // Distractors scattered over a 200 m grid of 4 m cells, none on the diagonal ray to the target at (80, 60).
  const primitives: ScenePrimitive[] = [];
  const rng = new Rng(3);
  while (primitives.length < 200) {
    const x = rng.uniform(-100, 100);
    const y = rng.uniform(-100, 100);
    // Distance from the line y = 0.75·x is |0.75x - y| / 1.25; keep them 5 m clear of it.
    if (Math.abs(0.75 * x - y) / 1.25 > 5) primitives.push(box(x, y, 1, 2, 2, 2, rng.uniform(0, Math.PI)));
  }
  primitives.push(box(80, 60, 1, 2, 2, 2));
  const index = new SceneIndex(sceneOf(primitives));
  assert.ok(index.cellsX * index.cellsY > 1000, 'the grid really has many cells');
  const hit = newHit();
  const norm = Math.hypot(4, 3);
  // The ray along (0.8, 0.6) from the origin meets the target's -x face (x = 79) at t = 79 / 0.8, y = 59.25.
  assert.equal(intersectRay(index, 0, 0, 1, 4 / norm, 3 / norm, 0, 200, hit), true);
  assert.equal(hit.primitive, 200);
  assertClose(hit.t, 79 / 0.8, 1e-9, 't');
  // From outside the grid (it ends near -100 m), the same line still reaches it.
  assert.equal(intersectRay(index, -160, -120, 1, 4 / norm, 3 / norm, 0, 400, hit), true);
  assert.equal(hit.primitive, 200);
  assertClose(hit.t, 200 + 79 / 0.8, 1e-9, 't from outside');
});

test('intersectRay: agrees with brute force over every box on random rays through a random scene', () => {
  const rng = new Rng(11);
  const primitives: ScenePrimitive[] = [];
  for (let i = 0; i < 150; i++) {
    primitives.push(box(rng.uniform(-60, 60), rng.uniform(-60, 60), rng.uniform(0.5, 6), rng.uniform(0.3, 12), rng.uniform(0.3, 12), rng.uniform(0.5, 10), rng.uniform(-Math.PI, Math.PI)));
  }
  const index = new SceneIndex(sceneOf(primitives), 3);
  const hit = newHit();
  let boxHits = 0;
  for (let r = 0; r < 3000; r++) {
    const ox = rng.uniform(-80, 80), oy = rng.uniform(-80, 80), oz = rng.uniform(0.2, 15);
    const az = rng.uniform(-Math.PI, Math.PI), el = rng.uniform(-0.6, 0.4);
    const dx = Math.cos(el) * Math.cos(az), dy = Math.cos(el) * Math.sin(az), dz = Math.sin(el);
    const expected = bruteForceNearest(primitives, ox, oy, oz, dx, dy, dz, 150);
    const found = intersectRay(index, ox, oy, oz, dx, dy, dz, 150, hit);
    assert.equal(found, expected !== null, `ray ${r}: hit or miss`);
    if (expected) {
      assertClose(hit.t, expected.t, 1e-9, `ray ${r}: t`);
      assert.equal(hit.primitive, expected.primitive, `ray ${r}: primitive`);
      if (expected.primitive >= 0) boxHits++;
    }
  }
  assert.ok(boxHits > 300, `enough rays hit boxes to mean something (${boxHits})`);
});

/** Independent reference: every box tested, a point-in-box bisection-free test via the box's 6 face planes. */
function bruteForceNearest(primitives: ScenePrimitive[], ox: number, oy: number, oz: number, dx: number, dy: number, dz: number, maxRange: number): { t: number; primitive: number } | null {
  let best: { t: number; primitive: number } | null = dz < 0 && oz > 0 && -oz / dz <= maxRange ? { t: -oz / dz, primitive: -1 } : null;
  primitives.forEach((p, i) => {
    const axes = [[Math.cos(p.yaw), Math.sin(p.yaw), 0, p.l / 2], [-Math.sin(p.yaw), Math.cos(p.yaw), 0, p.w / 2], [0, 0, 1, p.h / 2]];
    const inside = (x: number, y: number, z: number): boolean => axes.every(([ax, ay, az, half]) =>
      Math.abs((x - p.x) * ax + (y - p.y) * ay + (z - p.z) * az) <= half + 1e-9);
    if (inside(ox, oy, oz)) return; // boxes are seen from outside only
    for (const [ax, ay, az, half] of axes) {
      const along = dx * ax + dy * ay + dz * az;
      if (along === 0) continue;
      const offset = (ox - p.x) * ax + (oy - p.y) * ay + (oz - p.z) * az;
      for (const side of [half, -half]) {
        const t = (side - offset) / along;
        if (t <= 0 || t > maxRange || (best && t >= best.t)) continue;
        if (inside(ox + dx * t, oy + dy * t, oz + dz * t)) best = { t, primitive: i };
      }
    }
  });
  return best;
}

test('castLidarScan: in an empty world every return is ground 2 m below the sensor, as many as the beams that reach it', () => {
  const index = new SceneIndex(sceneOf([]));
  const cfg = LIDAR_PRESETS.vlp16; // 100 m, 0.2°, 5 % dropout, 3 cm noise
  const scan = castLidarScan(index, sensorAt(0, 0, 2), cfg, new Rng(1));
  assert.equal(scan.points.length, scan.count * 4);
  assert.equal(scan.objectIds.length, scan.count);
  for (let i = 0; i < scan.count; i++) {
    assertClose(scan.points[i * 4 + 2], -2, 0.15, `z of point ${i}`);
    assert.equal(scan.objectIds[i], -1);
  }
  // Beams -15°..-3° (7 of them) reach the ground within 100 m; -1° would need 114.6 m.
  const columns = 1800;
  const expected = 7 * columns * (1 - cfg.dropoutProbability);
  const sigma = Math.sqrt(7 * columns * cfg.dropoutProbability * (1 - cfg.dropoutProbability));
  assertClose(scan.count, expected, 5 * sigma, 'return count');
});

test('castLidarScan: ground intensity is the reflectivity times the cosine of incidence (sin of the beam angle)', () => {
  const index = new SceneIndex(sceneOf([], [[1, -50, 50, 50]]));
  const cfg = exactConfig({ elevationsDeg: [-30, -10], beams: 2, horizontalResolutionDeg: 90 });
  const scan = castLidarScan(index, sensorAt(0, 0, 2), cfg, new Rng(1));
  // Columns at -180°, -90°, 0°, 90°: only the 0° column lands on the road (the strip x ≥ 1 ahead).
  assert.equal(scan.count, 8);
  const byPosition = new Map<string, number>();
  for (let i = 0; i < scan.count; i++) {
    const [x, y, z, intensity] = scan.points.subarray(i * 4, i * 4 + 4);
    assertClose(z, -2, 1e-5, 'z');
    byPosition.set(`${Math.round(Math.atan2(y, x) / DEG)}/${Math.round(Math.atan2(z, Math.hypot(x, y)) / DEG)}`, intensity);
  }
  assertClose(byPosition.get('0/-30')!, 0.18 * Math.sin(30 * DEG), 1e-6, 'road, -30°');
  assertClose(byPosition.get('0/-10')!, 0.18 * Math.sin(10 * DEG), 1e-6, 'road, -10°');
  assertClose(byPosition.get('90/-30')!, 0.3 * Math.sin(30 * DEG), 1e-6, 'verge, -30°');
});

test('castLidarScan: a wall 10 m ahead returns points on its near face', () => {
  // Wall centre x = 10, l = 1: the face is at x = 9.5.
  const index = new SceneIndex(sceneOf([box(10, 0, 5, 1, 40, 10, 0, 7)]));
  const scan = castLidarScan(index, sensorAt(0, 0, 2), LIDAR_PRESETS.hdl64, new Rng(2));
  let onWall = 0;
  for (let i = 0; i < scan.count; i++) {
    const x = scan.points[i * 4], y = scan.points[i * 4 + 1], z = scan.points[i * 4 + 2];
    if (scan.objectIds[i] === 7) {
      onWall++;
      assertClose(x, 9.5, 0.12, `x of wall point ${i}`);
      assert.ok(Math.abs(y) <= 20.01 && z >= -2.01 && z <= 8.01, `wall point ${i} within the face`);
    } else {
      assert.ok(x < 9.6 || Math.abs(y) > 19.9, `ground point ${i} at x = ${x} lies in front of the wall or beside it`);
    }
  }
  // Columns within ±atan(20 / 9.5) = ±64.6° see it (0.36 of the turn); straight ahead the beams above -11.9°
  // (39 of 64) reach it, at the wall's ends those above -5.2° (23).
  assert.ok(onWall > 0.3 * 1800 * 25, `points on the wall: ${onWall}`);
});

test('castLidarScan: a box hidden behind another gets no points, and plenty once uncovered', () => {
  const front = box(10, 0, 2, 1, 4, 4, 0, 1);
  const hidden = box(20, 0, 1, 1, 2, 2, 0, 2);
  const count = (primitives: ScenePrimitive[]): number => {
    const scan = castLidarScan(new SceneIndex(sceneOf(primitives)), sensorAt(0, 0, 1), LIDAR_PRESETS.hdl64, new Rng(4));
    let n = 0;
    for (let i = 0; i < scan.count; i++) if (scan.objectIds[i] === 2) n++;
    return n;
  };
  assert.equal(count([front, hidden]), 0);
  assert.ok(count([hidden]) > 100);
});

test('castLidarScan: intensity is higher at normal incidence than grazing, by the cosine', () => {
  // One beam, columns at -1°, -0.5°, 0°, 0.5°, 1°; the 0° ray meets the wall's near face.
  const cfg = exactConfig({ beams: 1, elevationsDeg: [0], horizontalFovDeg: [-1, 1], horizontalResolutionDeg: 0.5 });
  const intensityAhead = (yawDeg: number): number => {
    const index = new SceneIndex(sceneOf([box(10, 0, 2, 1, 6, 4, yawDeg * DEG, 3, 0.8)]));
    const scan = castLidarScan(index, sensorAt(0, 0, 2), cfg, new Rng(5));
    assert.equal(scan.count, 5);
    assertClose(Math.atan2(scan.points[9], scan.points[8]), 0, 1e-9, 'middle point is straight ahead');
    return scan.points[11];
  };
  const normal = intensityAhead(0);
  const grazing = intensityAhead(75);
  assertClose(normal, 0.8, 1e-6, 'normal incidence');
  assertClose(grazing, 0.8 * Math.cos(75 * DEG), 1e-6, 'incidence 75°');
  assert.ok(normal > 3 * grazing);
});

test('castLidarScan: a sensor yawed 90° sees a wall at world +y straight ahead (+x) and world +x to its right (-y)', () => {
  // Wall face at world y = 10; a marker post at world (5, 9.25) in front of it.
  const index = new SceneIndex(sceneOf([box(0, 10.5, 5, 40, 1, 10, 0, 1), box(5, 9.25, 1, 0.5, 0.5, 2, 0, 2)]));
  const scan = castLidarScan(index, sensorAt(0, 0, 2, 90 * DEG), exactConfig({ horizontalResolutionDeg: 0.25 }), new Rng(6));
  let wall = 0, marker = 0;
  for (let i = 0; i < scan.count; i++) {
    const x = scan.points[i * 4], y = scan.points[i * 4 + 1];
    if (scan.objectIds[i] === 1) {
      wall++;
      assertClose(x, 10, 1e-4, 'wall depth ahead');
    } else if (scan.objectIds[i] === 2) {
      marker++;
      // Its faces towards the sensor: world y = 9 (sensor x = 9) and world x = 4.75 (sensor y = -4.75).
      assert.ok(x >= 9 - 1e-4 && x <= 9.5 + 1e-4, `marker at sensor x = ${x}, expected 9..9.5`);
      assert.ok(y >= -5.25 - 1e-4 && y <= -4.75 + 1e-4, `marker at sensor y = ${y}, expected -5.25..-4.75`);
    }
  }
  assert.ok(wall > 100 && marker > 5, `wall ${wall}, marker ${marker}`);
});

test('castLidarScan: a forward-facing field of view keeps every point inside it', () => {
  const index = new SceneIndex(sceneOf([box(60, 0, 5, 80, 80, 10)]));
  const scan = castLidarScan(index, sensorAt(0, 0, 5), exactConfig({ horizontalFovDeg: [-60, 60], horizontalResolutionDeg: 0.5 }), new Rng(1));
  assert.equal(columnAzimuthsDeg(exactConfig({ horizontalFovDeg: [-60, 60], horizontalResolutionDeg: 0.5 })).length, 241);
  assert.ok(scan.count > 241 * 8);
  for (let i = 0; i < scan.count; i++) {
    const az = Math.atan2(scan.points[i * 4 + 1], scan.points[i * 4]) / DEG;
    assert.ok(az >= -60 - 1e-4 && az <= 60 + 1e-4, `azimuth ${az}`);
  }
});

test('castLidarScan: returns within 1 m are discarded, and a sensor inside its own vehicle box sees out', () => {
  const ownCabin = box(0, 0, 1.5, 4, 2, 1.5, 0, 9); // encloses the sensor at z = 2
  const post = box(0.7, 0, 1, 0.2, 0.2, 2, 0, 8); // its face 0.6 m ahead
  const wall = box(10, 0, 5, 1, 40, 10, 0, 7);
  const scan = castLidarScan(new SceneIndex(sceneOf([ownCabin, post, wall])), sensorAt(0, 0, 2), exactConfig({}), new Rng(1));
  const ids = new Set(scan.objectIds);
  assert.ok(ids.has(7), 'the wall is seen through the cabin');
  assert.ok(!ids.has(9) && !ids.has(8), 'no self-hits, nothing under 1 m');
  for (let i = 0; i < scan.count; i++) {
    assert.ok(Math.hypot(scan.points[i * 4], scan.points[i * 4 + 1], scan.points[i * 4 + 2]) >= 1);
  }
});

test('castLidarScan: the same seed gives the same bytes, a reused scan matches a fresh one', () => {
  const primitives = [box(10, 3, 1, 4, 2, 2, 0.4, 1), box(-6, -8, 3, 5, 5, 6, 1.1, -1)];
  const index = new SceneIndex(sceneOf(primitives));
  const pose = poseToMatrix({ x: 1, y: 2, z: 1.8, roll: 0.01, pitch: -0.02, yaw: 0.7 });
  const a = castLidarScan(index, pose, LIDAR_PRESETS.vlp16, new Rng(42));
  const b = castLidarScan(index, pose, LIDAR_PRESETS.vlp16, new Rng(42));
  assert.ok(a.count > 1000);
  assert.deepEqual(Buffer.from(a.points.buffer, a.points.byteOffset, a.points.byteLength), Buffer.from(b.points.buffer, b.points.byteOffset, b.points.byteLength));
  assert.deepEqual(a.objectIds, b.objectIds);
  const c = castLidarScan(index, pose, LIDAR_PRESETS.vlp16, new Rng(43));
  assert.notDeepEqual(a.points, c.points);

  const reused = castLidarScan(index, pose, LIDAR_PRESETS.vlp16, new Rng(42), c);
  assert.equal(reused, c, 'the reused scan object is returned');
  assert.equal(reused.count, a.count);
  assert.deepEqual(reused.points, a.points);
  assert.deepEqual(reused.objectIds, a.objectIds);
});

test('LiDAR configs: beam tables match the sensors and bad configs are refused by field', () => {
  const hdl64 = beamElevationsDeg(LIDAR_PRESETS.hdl64);
  assert.equal(hdl64.length, 64);
  assertClose(Math.max(...hdl64), 2, 1e-9, 'HDL-64E top beam');
  assertClose(Math.min(...hdl64), -24.33, 1e-9, 'HDL-64E bottom beam');
  // Denser above -8.33° than below: the upper block's spacing is 1/3°, the lower one's 1/2°.
  assertClose(hdl64[0] - hdl64[1], 10.33 / 31, 1e-9, 'upper spacing');
  assertClose(hdl64[40] - hdl64[41], 0.5, 1e-9, 'lower spacing');
  const vlp16 = beamElevationsDeg(LIDAR_PRESETS.vlp16);
  assert.deepEqual(vlp16.map((e) => Math.round(e * 1000) / 1000), [-15, -13, -11, -9, -7, -5, -3, -1, 1, 3, 5, 7, 9, 11, 13, 15]);
  assert.equal(columnAzimuthsDeg(LIDAR_PRESETS.hdl64).length, 1800);

  const index = new SceneIndex(sceneOf([]));
  assert.throws(() => castLidarScan(index, sensorAt(0, 0, 2), { ...LIDAR_PRESETS.vlp16, elevationsDeg: [0, 1] }, new Rng(1)),
    (e: unknown) => e instanceof LidarConfigError && e.field === 'elevationsDeg');
  assert.throws(() => castLidarScan(index, sensorAt(0, 0, 2), { ...LIDAR_PRESETS.vlp16, horizontalResolutionDeg: 0 }, new Rng(1)),
    (e: unknown) => e instanceof LidarConfigError && e.field === 'horizontalResolutionDeg');
});
