// `v2xfuse simulate`: runs a scenario's traffic at 10 Hz and, for every frame, scans each agent's LiDAR, renders
// its cameras and writes the OPV2V layout (outDir/<agentId>/<frame>.yaml, .pcd, _cameraN.png, plus
// outDir/scenario.json). Same scenario, seed and frame count ⇒ the same bytes.

import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Mat4, fromRowMajor, invertRigid, matrixToPose, multiply, poseToMatrix } from '../geometry/index.ts';
import { renderCamera } from './camera.ts';
import { LIDAR_PRESETS, type LidarConfig, type LidarScan, castLidarScan } from './lidar.ts';
import { Rng } from './random.ts';
import type { LidarOverrides, LidarPresetName, Scenario } from './scenario.ts';
import { SceneIndex } from './scene-index.ts';
import { TrafficSimulation, buildScene } from './traffic.ts';
import { buildWorld } from './world.ts';
import { type CameraCalibration, CARLA_TICK_SECONDS, actorsNear, encodePng, frameId, frameYaml, lidarScanToPcd } from './writer.ts';

export interface SimulateOptions {
  scenario: Scenario;
  frames: number;
  seed: number;
  /** The scenario folder: agent folders and scenario.json go directly inside. */
  outDir: string;
  /** Render and write camera images (calibration is written either way). */
  cameras: boolean;
  onFrame?: (done: number, total: number) => void;
}

export interface Stats {
  mean: number;
  min: number;
  max: number;
}

export interface SimulationSummary {
  scenario: string;
  seed: number;
  frames: number;
  firstFrameId: string;
  lastFrameId: string;
  agents: Array<{ id: number; kind: 'vehicle' | 'rsu'; lidar: LidarPresetName; rays: number; cameras: number }>;
  /** Actors at the last frame. */
  actors: { vehicles: number; parked: number; pedestrians: number };
  /** Points per LiDAR scan, over all agents and frames, and per agent kind. */
  pointsPerScan: Stats & { vehicle?: Stats; rsu?: Stats };
  bytesWritten: number;
  bytesPerFrame: number;
  seconds: number;
  framesPerSecond: number;
  /** LiDAR rays cast per second of LiDAR time. */
  raysPerSecond: number;
  lidarSeconds: number;
  cameraSeconds: number;
}

export class SimulationOutputError extends Error {
  readonly userFacing = true;
  constructor(readonly path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.name = new.target.name;
  }
}

/** CARLA tick of the first simulation step (OPV2V sequences do not start at tick 0). */
const FIRST_TICK = 8;
const GENERATOR = 'v2xfuse simulate';

/** OpenCV optical axes (x right, y down, z forward) → camera body axes (x forward, y left, z up). */
const OPTICAL_TO_BODY = fromRowMajor([
  [0, 0, 1, 0],
  [-1, 0, 0, 0],
  [0, -1, 0, 0],
  [0, 0, 0, 1],
]);

const deg = (d: number) => (d * Math.PI) / 180;

/**
 * OPV2V's camera rig relative to the vehicle origin, in our right-handed axes (CARLA's y and yaw negated): front
 * (2.5, 0, 1.0), right (0, −0.3, 1.8) turned 100° right, left mirrored, back (−2.0, 0, 1.5) turned round; the
 * LiDAR at (−0.5, 0, 1.9). The real sample's camera cords and lidar_pose agree with these to a few millimetres.
 */
const VEHICLE_CAMERAS: Array<{ x: number; y: number; z: number; yaw: number }> = [
  { x: 2.5, y: 0, z: 1.0, yaw: 0 },
  { x: 0, y: -0.3, z: 1.8, yaw: deg(-100) },
  { x: 0, y: 0.3, z: 1.8, yaw: deg(100) },
  { x: -2.0, y: 0, z: 1.5, yaw: Math.PI },
];
const VEHICLE_LIDAR = { x: -0.5, z: 1.9 };

interface CameraRig {
  name: string;
  /** Camera body → agent ego frame. */
  mount: Mat4;
  image: Uint8Array;
}

interface AgentRig {
  index: number;
  id: number;
  kind: 'vehicle' | 'rsu';
  dir: string;
  preset: LidarPresetName;
  lidar: LidarConfig;
  rays: number;
  lidarRng: Rng;
  /** LiDAR → ego frame. */
  lidarMount: Mat4;
  cameras: CameraRig[];
  scan?: LidarScan;
}

function lidarConfig(preset: LidarPresetName, overrides: LidarOverrides | undefined, scenario: Scenario): LidarConfig {
  const cfg: LidarConfig = { ...LIDAR_PRESETS[preset] };
  if (overrides) {
    if (overrides.beams !== undefined || overrides.verticalFovDeg !== undefined) delete cfg.elevationsDeg;
    if (overrides.beams !== undefined) cfg.beams = overrides.beams;
    if (overrides.verticalFovDeg !== undefined) cfg.verticalFovDeg = [overrides.verticalFovDeg[0], overrides.verticalFovDeg[1]];
    if (overrides.horizontalResolutionDeg !== undefined) cfg.horizontalResolutionDeg = overrides.horizontalResolutionDeg;
    if (overrides.rangeM !== undefined) cfg.rangeM = overrides.rangeM;
  }
  if (scenario.noise.lidarRangeNoiseStdM !== undefined) cfg.rangeNoiseStdM = scenario.noise.lidarRangeNoiseStdM;
  if (scenario.noise.lidarDropoutProbability !== undefined) cfg.dropoutProbability = scenario.noise.lidarDropoutProbability;
  return cfg;
}

function raysPerScan(cfg: LidarConfig): number {
  const [from, to] = cfg.horizontalFovDeg ?? [-180, 180];
  const span = to - from;
  const columns = span >= 360 - 1e-9 ? Math.round(360 / cfg.horizontalResolutionDeg) : Math.floor(span / cfg.horizontalResolutionDeg + 1e-9) + 1;
  return columns * (cfg.elevationsDeg?.length ?? cfg.beams);
}

export function cameraIntrinsic(width: number, height: number, horizontalFovDeg: number): Float64Array {
  const f = width / 2 / Math.tan(deg(horizontalFovDeg) / 2);
  return Float64Array.from([f, 0, width / 2, 0, f, height / 2, 0, 0, 1]);
}

/** Refuses to write into a folder holding anything but an earlier simulator run, which it replaces. */
async function prepareOutDir(outDir: string): Promise<void> {
  const entries = await readdir(outDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw new SimulationOutputError(outDir, `cannot read: ${err.message}`);
  });
  if (entries === null || entries.length === 0) {
    await mkdir(outDir, { recursive: true });
    return;
  }
  let ours = false;
  try {
    const previous = JSON.parse(await readFile(path.join(outDir, 'scenario.json'), 'utf8')) as { generator?: string };
    ours = previous.generator === GENERATOR;
  } catch {
    ours = false;
  }
  if (!ours) {
    throw new SimulationOutputError(outDir, 'exists and is not empty (and not an earlier simulator output); choose a new folder');
  }
  for (const e of entries) {
    if (e === 'scenario.json' || /^-?\d+$/.test(e)) await rm(path.join(outDir, e), { recursive: true, force: true });
  }
}

function stats(values: number[]): Stats {
  if (values.length === 0) return { mean: 0, min: 0, max: 0 };
  let sum = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    sum += v;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { mean: Math.round(sum / values.length), min, max };
}

export async function simulateSequence(opts: SimulateOptions): Promise<SimulationSummary> {
  const { scenario, frames, seed, outDir } = opts;
  if (!Number.isInteger(frames) || frames < 1) throw new RangeError(`frames must be an integer ≥ 1, got ${frames}`);
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`seed must be an integer ≥ 0, got ${seed}`);
  const started = performance.now();

  const rng = new Rng(seed);
  const world = buildWorld(scenario, rng.fork('world'));
  const sim = new TrafficSimulation(world, scenario, rng.fork('traffic'));
  const gpsRng = rng.fork('gps');
  const { width, height, horizontalFovDeg } = scenario.camera;
  const K = cameraIntrinsic(width, height, horizontalFovDeg);

  const rigs: AgentRig[] = scenario.agents.map((agent, index) => {
    const id = sim.agentActorIds[index];
    const lidar = lidarConfig(agent.lidar, agent.lidarOverrides, scenario);
    const base = { index, id, dir: path.join(outDir, String(id)), preset: agent.lidar, lidar, rays: raysPerScan(lidar), lidarRng: rng.fork(`lidar:${id}`) };
    if (agent.type === 'vehicle') {
      const shape = sim.vehicleById(id)!.shape;
      // The roof LiDAR clears a tall vehicle's roof.
      const lidarZ = Math.max(VEHICLE_LIDAR.z, shape.height + 0.25);
      return {
        ...base,
        kind: 'vehicle' as const,
        lidarMount: poseToMatrix({ x: VEHICLE_LIDAR.x, y: 0, z: lidarZ, roll: 0, pitch: 0, yaw: 0 }),
        cameras: agent.cameras
          ? VEHICLE_CAMERAS.map((c, k) => ({ name: `camera${k}`, mount: poseToMatrix({ x: c.x, y: c.y, z: c.z, roll: 0, pitch: 0, yaw: c.yaw }), image: new Uint8Array(width * height * 3) }))
          : [],
      };
    }
    return {
      ...base,
      kind: 'rsu' as const,
      lidarMount: poseToMatrix({ x: 0, y: 0, z: agent.poleHeightM, roll: 0, pitch: deg(agent.lidarPitchDownDeg ?? 0), yaw: 0 }),
      // Cameras on a short arm just below the LiDAR, facing their own directions.
      cameras: agent.cameras.map((c, k) => ({
        name: `camera${k}`,
        mount: poseToMatrix({ x: 0.35 * Math.cos(deg(c.yawDeg)), y: 0.35 * Math.sin(deg(c.yawDeg)), z: agent.poleHeightM - 0.4, roll: 0, pitch: deg(c.pitchDownDeg), yaw: deg(c.yawDeg) }),
        image: new Uint8Array(width * height * 3),
      })),
    };
  });

  await prepareOutDir(outDir);
  for (const rig of rigs) await mkdir(rig.dir, { recursive: true });
  for (let k = 0; k < scenario.warmupSteps; k++) sim.advance();
  const firstTick = FIRST_TICK + 2 * sim.step;
  const provenance = { generator: GENERATOR, seed, frames, firstFrameId: frameId(firstTick), frameStep: 2, tickSeconds: CARLA_TICK_SECONDS, scenario };
  const provenanceText = JSON.stringify(provenance, null, 2) + '\n';
  await writeFile(path.join(outDir, 'scenario.json'), provenanceText);

  let bytes = Buffer.byteLength(provenanceText);
  const points: Record<'vehicle' | 'rsu', number[]> = { vehicle: [], rsu: [] };
  let lidarMs = 0;
  let cameraMs = 0;
  let rays = 0;
  let tick = firstTick;

  for (let f = 0; f < frames; f++) {
    if (f > 0) sim.advance();
    tick = FIRST_TICK + 2 * sim.step;
    const stem = frameId(tick);
    const index = new SceneIndex(buildScene(sim));
    const actors = sim.actorBoxes();
    const writes: Array<Promise<number>> = [];
    const put = (file: string, data: Uint8Array | string) =>
      writeFile(file, data).then(() => (typeof data === 'string' ? Buffer.byteLength(data) : data.length));

    for (const rig of rigs) {
      let egoToWorld: Mat4;
      let speed = 0;
      let plan: Array<[number, number, number]>;
      if (rig.kind === 'vehicle') {
        const v = sim.vehicleById(rig.id)!;
        egoToWorld = poseToMatrix({ x: v.x, y: v.y, z: 0, roll: 0, pitch: 0, yaw: v.yaw });
        speed = v.v;
        const target = sim.targetSpeed(v);
        plan = sim.pathAhead(v, [2, 4, 6, 8, 10, 12, 14, 16]).map(([x, y]) => [x, y, target]);
      } else {
        const u = sim.roadsideUnits.find((r) => r.id === rig.id)!;
        egoToWorld = poseToMatrix({ x: u.x, y: u.y, z: 0, roll: 0, pitch: 0, yaw: u.yaw });
        plan = [[u.x, u.y, 0]];
      }
      const lidarToWorld = multiply(egoToWorld, rig.lidarMount);
      const worldToLidar = invertRigid(lidarToWorld);

      const calibrations: CameraCalibration[] = rig.cameras.map((cam) => {
        const bodyToWorld = multiply(egoToWorld, cam.mount);
        return { name: cam.name, bodyToWorld, opticalToLidar: multiply(multiply(worldToLidar, bodyToWorld), OPTICAL_TO_BODY), intrinsic: K, width, height };
      });
      if (opts.cameras) {
        const t0 = performance.now();
        rig.cameras.forEach((cam, k) => {
          renderCamera(index, multiply(calibrations[k].bodyToWorld, OPTICAL_TO_BODY), { width, height, K }, cam.image);
          writes.push(encodePng(cam.image, width, height).then((png) => put(path.join(rig.dir, `${stem}_${cam.name}.png`), png)));
        });
        cameraMs += performance.now() - t0;
      }

      const t0 = performance.now();
      rig.scan = castLidarScan(index, lidarToWorld, rig.lidar, rig.lidarRng, rig.scan);
      lidarMs += performance.now() - t0;
      rays += rig.rays;
      points[rig.kind].push(rig.scan.count);
      writes.push(put(path.join(rig.dir, `${stem}.pcd`), lidarScanToPcd(rig.scan.points, rig.scan.count)));

      const pose = matrixToPose(lidarToWorld);
      const { gpsPositionStdM, gpsHeadingStdDeg } = scenario.noise;
      const noisyLidarToWorld = poseToMatrix({
        ...pose,
        x: pose.x + gpsRng.gaussian(0, gpsPositionStdM),
        y: pose.y + gpsRng.gaussian(0, gpsPositionStdM),
        yaw: pose.yaw + deg(gpsRng.gaussian(0, gpsHeadingStdDeg)),
      });
      const yaml = frameYaml({
        lidarToWorld,
        noisyLidarToWorld,
        egoToWorld,
        speed,
        plan,
        timestampSeconds: tick * CARLA_TICK_SECONDS,
        cameras: calibrations,
        actors: actorsNear(actors, lidarToWorld, rig.id),
      });
      writes.push(put(path.join(rig.dir, `${stem}.yaml`), yaml));
    }
    // PNG encoding runs on sharp's threads while the LiDAR scans; wait before the image buffers are reused.
    for (const n of await Promise.all(writes)) bytes += n;
    opts.onFrame?.(f + 1, frames);
  }

  const seconds = (performance.now() - started) / 1000;
  const all = [...points.vehicle, ...points.rsu];
  const pointsPerScan: SimulationSummary['pointsPerScan'] = { ...stats(all) };
  if (points.vehicle.length > 0) pointsPerScan.vehicle = stats(points.vehicle);
  if (points.rsu.length > 0) pointsPerScan.rsu = stats(points.rsu);
  const agentsNow = sim.actorBoxes();
  return {
    scenario: scenario.name,
    seed,
    frames,
    firstFrameId: frameId(firstTick),
    lastFrameId: frameId(tick),
    agents: rigs.map((r) => ({ id: r.id, kind: r.kind, lidar: r.preset, rays: r.rays, cameras: r.cameras.length })),
    actors: {
      vehicles: sim.vehicles.length,
      parked: sim.parked.length,
      pedestrians: agentsNow.filter((a) => a.cls === 'pedestrian').length,
    },
    pointsPerScan,
    bytesWritten: bytes,
    bytesPerFrame: Math.round(bytes / frames),
    seconds: Math.round(seconds * 1000) / 1000,
    framesPerSecond: Math.round((frames / seconds) * 100) / 100,
    raysPerSecond: lidarMs > 0 ? Math.round(rays / (lidarMs / 1000)) : 0,
    lidarSeconds: Math.round(lidarMs) / 1000,
    cameraSeconds: Math.round(cameraMs) / 1000,
  };
}
