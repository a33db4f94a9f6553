// Micro benchmark of the simulator's sensors on a town-like scene: a cross junction lined with buildings,
// ~50 vehicles of 4 boxes each, poles and pedestrians. Prints rays/s and ms per scan for each LiDAR preset,
// and ms per 800×600 camera image.
//   npx tsx tools/bench-sim-sensors.ts [--repeats N] [--vehicles N] [--save]   (--save writes /tmp/bench-sim-camera.png)

import { performance } from 'node:perf_hooks';
import { poseToMatrix } from '../src/geometry/index.ts';
import { renderCamera, type CameraModel } from '../src/sim/camera.ts';
import { castLidarScan, LIDAR_PRESETS, type LidarScan } from '../src/sim/lidar.ts';
import { Rng } from '../src/sim/random.ts';
import type { Scene, ScenePrimitive } from '../src/sim/scene.ts';
import { SceneIndex } from '../src/sim/scene-index.ts';

function townScene(rng: Rng, vehicles: number): Scene {
  const primitives: ScenePrimitive[] = [];
  const part = (p: Omit<ScenePrimitive, 'color' | 'reflectivity'> & Partial<ScenePrimitive>): void => {
    primitives.push({ reflectivity: 0.4, color: [150, 150, 150], ...p });
  };
  // Buildings in the four quadrants of a junction of two 14 m roads, 200 m × 200 m.
  for (let qx = -1; qx <= 1; qx += 2) {
    for (let qy = -1; qy <= 1; qy += 2) {
      for (let k = 0; k < 25; k++) {
        const x = qx * rng.uniform(14, 100);
        const y = qy * rng.uniform(14, 100);
        const l = rng.uniform(8, 25);
        const w = rng.uniform(8, 20);
        const h = rng.uniform(6, 30);
        part({ x, y, z: h / 2, l, w, h, yaw: rng.uniform(-0.1, 0.1), surface: 'building', objectId: -1, reflectivity: rng.uniform(0.2, 0.6), color: [rng.int(120, 200), rng.int(110, 180), rng.int(100, 170)] });
      }
    }
  }
  // Vehicles on both roads: body, cabin and two wheel-axle boxes.
  for (let v = 0; v < vehicles; v++) {
    const alongX = v % 2 === 0;
    const s = rng.uniform(-95, 95);
    const lane = rng.pick([-5.25, -1.75, 1.75, 5.25]);
    const x = alongX ? s : lane;
    const y = alongX ? lane : s;
    const yaw = (alongX ? 0 : Math.PI / 2) + (lane > 0 ? Math.PI : 0) + rng.uniform(-0.05, 0.05);
    const c = Math.cos(yaw), sn = Math.sin(yaw);
    const color: [number, number, number] = [rng.int(20, 230), rng.int(20, 230), rng.int(20, 230)];
    part({ x, y, z: 0.75, l: 4.5, w: 1.8, h: 0.9, yaw, surface: 'vehicle-body', objectId: v, reflectivity: 0.6, color });
    part({ x: x - 0.3 * c, y: y - 0.3 * sn, z: 1.45, l: 2.4, w: 1.6, h: 0.6, yaw, surface: 'vehicle-cabin', objectId: v, reflectivity: 0.3, color });
    for (const axle of [-1.4, 1.4]) {
      part({ x: x + axle * c, y: y + axle * sn, z: 0.33, l: 0.66, w: 1.9, h: 0.66, yaw, surface: 'vehicle-wheel', objectId: v, reflectivity: 0.1, color: [25, 25, 25] });
    }
  }
  for (let k = 0; k < 40; k++) {
    part({ x: rng.uniform(-90, 90), y: rng.pick([-8, 8]), z: 3, l: 0.2, w: 0.2, h: 6, yaw: 0, surface: 'pole', objectId: -1, reflectivity: 0.5 });
    part({ x: rng.uniform(-90, 90), y: rng.pick([-9, 9]), z: 0.85, l: 0.4, w: 0.5, h: 1.7, yaw: rng.uniform(-3, 3), surface: 'pedestrian', objectId: 10000 + k, reflectivity: 0.4, color: [200, 60, 60] });
  }
  return {
    primitives,
    groundColor: [96, 110, 80],
    roadColor: [70, 70, 74],
    roads: [[-100, -7, 100, 7], [-7, -100, 7, 100]],
  };
}

function timeIt(repeats: number, fn: () => void): number {
  fn(); // warm-up: JIT
  fn();
  const start = performance.now();
  for (let r = 0; r < repeats; r++) fn();
  return (performance.now() - start) / repeats;
}

function numberOption(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} needs a non-negative integer, got ${process.argv[at + 1]}`);
  return value;
}

const repeats = Math.max(1, numberOption('--repeats', 10));
const scene = townScene(new Rng(7), numberOption('--vehicles', 50));
let index = new SceneIndex(scene);
const indexMs = timeIt(repeats, () => { index = new SceneIndex(scene); });
console.log(`scene: ${scene.primitives.length} primitives, grid ${index.cellsX}×${index.cellsY} cells of ${index.cellSize} m, index build ${indexMs.toFixed(2)} ms`);

const roofPose = poseToMatrix({ x: 10, y: -1.75, z: 1.9, roll: 0, pitch: 0, yaw: 0 });
const polePose = poseToMatrix({ x: 9, y: 9, z: 6, roll: 0, pitch: 0, yaw: -2.3 });
for (const [name, cfg] of Object.entries(LIDAR_PRESETS)) {
  const rng = new Rng(1);
  let scan: LidarScan | undefined;
  const pose = name === 'rsu-pole' ? polePose : roofPose;
  const ms = timeIt(repeats, () => { scan = castLidarScan(index, pose, cfg, rng, scan); });
  const rays = cfg.beams * Math.round(360 / cfg.horizontalResolutionDeg);
  console.log(`lidar ${name.padEnd(8)} ${rays} rays, ${scan!.count} points: ${ms.toFixed(1)} ms/scan, ` +
    `${((rays / ms) * 1000 / 1e6).toFixed(2)} M rays/s, ${((ms * 100000) / rays).toFixed(1)} ms per 100k rays`);
}

// 800×600 with OPV2V's ~110° horizontal field of view, looking along the road from the roof.
const cam: CameraModel = { width: 800, height: 600, K: Float64Array.from([280, 0, 400, 0, 280, 300, 0, 0, 1]) };
// Optical frame (x right, y down, z forward) → vehicle (x forward, y left, z up).
const opticalToVehicle = Float64Array.from([0, 0, 1, 0, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 1]);
const cameraToWorld = new Float64Array(16);
for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) {
  let sum = 0;
  for (let k = 0; k < 4; k++) sum += roofPose[r * 4 + k] * opticalToVehicle[k * 4 + c];
  cameraToWorld[r * 4 + c] = sum;
}
const image = new Uint8Array(cam.width * cam.height * 3);
const cameraMs = timeIt(repeats, () => renderCamera(index, cameraToWorld, cam, image));
console.log(`camera 800×600: ${cameraMs.toFixed(1)} ms/image`);

if (process.argv.includes('--save')) {
  const { default: sharp } = await import('sharp');
  await sharp(image, { raw: { width: cam.width, height: cam.height, channels: 3 } }).png().toFile('/tmp/bench-sim-camera.png');
  console.log('wrote /tmp/bench-sim-camera.png');
}
