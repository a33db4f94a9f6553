// Spinning-LiDAR model for the simulator: one ray per (azimuth column, beam), cast against the scene index,
// with range noise, random dropout and a Lambertian intensity. Points come out in the sensor frame
// (x forward, y left, z up), the frame an agent's LiDAR data lives in.

import type { Mat4 } from '../geometry/index.ts';
import type { Rng } from './random.ts';
import { intersectRay, type RayHit, type SceneIndex } from './scene-index.ts';

export interface LidarConfig {
  /** Number of lasers; must equal elevationsDeg.length when that is given. */
  beams: number;
  /** Explicit beam elevation table in degrees; otherwise beams are spread uniformly over verticalFovDeg. */
  elevationsDeg?: number[];
  /** [lower, upper] elevation in degrees. */
  verticalFovDeg: [number, number];
  /** Azimuth step between columns in degrees (0.2 → 1800 columns over a full turn). */
  horizontalResolutionDeg: number;
  /** [from, to] azimuth in degrees, 0 = +x, counter-clockwise; default a full turn [-180, 180]. */
  horizontalFovDeg?: [number, number];
  rangeM: number;
  /** Standard deviation of the Gaussian range error, metres. */
  rangeNoiseStdM: number;
  /** Probability that a return is lost at random (on top of natural misses: sky, beyond range). */
  dropoutProbability: number;
  /** Rotation rate, informational. */
  rateHz?: number;
  /** Returns closer than this are the sensor's own vehicle and are discarded; default 1 m. */
  minRangeM?: number;
  /** Reflectivity of the ground off the roads (kerbs, grass, concrete); default 0.3. */
  groundReflectivity?: number;
  /** Reflectivity of the ground inside scene.roads (asphalt); default 0.18. */
  roadReflectivity?: number;
  /** Standard deviation of the additive intensity noise; default 0.02. */
  intensityNoiseStd?: number;
}

export interface LidarScan {
  /** x, y, z, intensity per point in the sensor frame; length = count·4; a view of a buffer reused across scans. */
  points: Float32Array;
  count: number;
  /** Per point: the objectId of the primitive hit, -1 for the ground and the static world. */
  objectIds: Int32Array;
}

export class LidarConfigError extends Error {
  constructor(readonly field: keyof LidarConfig, detail: string) {
    super(`LiDAR config: ${field}: ${detail}`);
    this.name = new.target.name;
  }
}

/** HDL-64E S2: two blocks of 32 lasers, the upper one denser (about 1/3°) than the lower one (1/2°). */
const HDL64_ELEVATIONS_DEG: number[] = [
  ...Array.from({ length: 32 }, (_, k) => 2 - (k * 10.33) / 31),
  ...Array.from({ length: 32 }, (_, k) => -8.83 - k * 0.5),
];

export const LIDAR_PRESETS: Record<'vlp16' | 'hdl32' | 'hdl64' | 'rsu-pole', LidarConfig> = {
  // VLP-16: ±15° in 2° steps, 100 m, ±3 cm.
  vlp16: {
    beams: 16,
    verticalFovDeg: [-15, 15],
    horizontalResolutionDeg: 0.2,
    rangeM: 100,
    rangeNoiseStdM: 0.03,
    dropoutProbability: 0.05,
    rateHz: 10,
  },
  // HDL-32E: -30.67°..+10.67° in 4/3° steps.
  hdl32: {
    beams: 32,
    verticalFovDeg: [-30.67, 10.67],
    horizontalResolutionDeg: 0.16,
    rangeM: 100,
    rangeNoiseStdM: 0.02,
    dropoutProbability: 0.05,
    rateHz: 10,
  },
  // HDL-64E, the roof LiDAR of OPV2V's CARLA vehicles (-24.8°..+2°, 120 m).
  hdl64: {
    beams: 64,
    elevationsDeg: HDL64_ELEVATIONS_DEG,
    verticalFovDeg: [-24.33, 2],
    horizontalResolutionDeg: 0.2,
    rangeM: 120,
    rangeNoiseStdM: 0.02,
    dropoutProbability: 0.05,
    rateHz: 10,
  },
  // A 40-beam unit on a 5–7 m pole at an intersection: looks well down onto the road.
  'rsu-pole': {
    beams: 40,
    verticalFovDeg: [-40, 10],
    horizontalResolutionDeg: 0.2,
    rangeM: 150,
    rangeNoiseStdM: 0.02,
    dropoutProbability: 0.03,
    rateHz: 10,
  },
};

interface ScanStorage {
  points: Float32Array;
  objectIds: Int32Array;
}

/** The full-capacity buffers behind each scan handed out, so `reuse` can grow them without exposing slack. */
const scanStorage = new WeakMap<LidarScan, ScanStorage>();

/** Beam elevations in degrees, lowest first as the config lists them. */
export function beamElevationsDeg(cfg: LidarConfig): number[] {
  if (!Number.isInteger(cfg.beams) || cfg.beams < 1) throw new LidarConfigError('beams', `must be a positive integer, got ${cfg.beams}`);
  if (cfg.elevationsDeg) {
    if (cfg.elevationsDeg.length !== cfg.beams) {
      throw new LidarConfigError('elevationsDeg', `has ${cfg.elevationsDeg.length} entries but beams = ${cfg.beams}`);
    }
    return cfg.elevationsDeg.slice();
  }
  const [lower, upper] = cfg.verticalFovDeg;
  if (cfg.beams === 1) return [(lower + upper) / 2];
  return Array.from({ length: cfg.beams }, (_, b) => lower + ((upper - lower) * b) / (cfg.beams - 1));
}

/** Column azimuths in degrees. A full turn does not repeat its first column at the end. */
export function columnAzimuthsDeg(cfg: LidarConfig): number[] {
  const [from, to] = cfg.horizontalFovDeg ?? [-180, 180];
  const step = cfg.horizontalResolutionDeg;
  if (!(step > 0)) throw new LidarConfigError('horizontalResolutionDeg', `must be positive, got ${step}`);
  if (!(to > from)) throw new LidarConfigError('horizontalFovDeg', `must be [from, to] with to > from, got [${from}, ${to}]`);
  const span = to - from;
  const columns = span >= 360 - 1e-9 ? Math.round(360 / step) : Math.floor(span / step + 1e-9) + 1;
  return Array.from({ length: columns }, (_, c) => from + c * step);
}

/**
 * One full sweep from the sensor pose. Rays are cast column by column (the firing order of a spinning unit),
 * lowest beam first within a column. Random draws, per return in that order: dropout, range noise, intensity
 * noise — so the same rng state gives the same bytes.
 */
export function castLidarScan(index: SceneIndex, sensorToWorld: Mat4, cfg: LidarConfig, rng: Rng, reuse?: LidarScan): LidarScan {
  const elevations = beamElevationsDeg(cfg);
  const azimuths = columnAzimuthsDeg(cfg);
  if (!(cfg.rangeM > 0)) throw new LidarConfigError('rangeM', `must be positive, got ${cfg.rangeM}`);
  if (!(cfg.dropoutProbability >= 0 && cfg.dropoutProbability <= 1)) {
    throw new LidarConfigError('dropoutProbability', `must be in [0, 1], got ${cfg.dropoutProbability}`);
  }
  const beams = elevations.length;
  const columns = azimuths.length;
  const capacity = beams * columns;

  let storage = reuse ? scanStorage.get(reuse) : undefined;
  if (!storage || storage.objectIds.length < capacity) {
    storage = { points: new Float32Array(capacity * 4), objectIds: new Int32Array(capacity) };
  }
  const points = storage.points;
  const objectIds = storage.objectIds;

  const sinEl = new Float64Array(beams);
  const cosEl = new Float64Array(beams);
  for (let b = 0; b < beams; b++) {
    const e = (elevations[b] * Math.PI) / 180;
    sinEl[b] = Math.sin(e);
    cosEl[b] = Math.cos(e);
  }

  const m = sensorToWorld;
  const ox = m[3];
  const oy = m[7];
  const oz = m[11];
  const maxRange = cfg.rangeM;
  const minRange = cfg.minRangeM ?? 1;
  const noiseStd = cfg.rangeNoiseStdM;
  const dropout = cfg.dropoutProbability;
  const intensityNoise = cfg.intensityNoiseStd ?? 0.02;
  const groundReflectivity = cfg.groundReflectivity ?? 0.3;
  const roadReflectivity = cfg.roadReflectivity ?? 0.18;
  const primitives = index.scene.primitives;
  const roads = index.scene.roads;
  const roadCount = roads.length;
  const hit: RayHit = { t: 0, primitive: -1, nx: 0, ny: 0, nz: 0 };

  let count = 0;
  for (let c = 0; c < columns; c++) {
    const az = (azimuths[c] * Math.PI) / 180;
    const ca = Math.cos(az);
    const sa = Math.sin(az);
    // World direction = cosEl·(horizontal unit vector of this column) + sinEl·(sensor z axis).
    const hx = m[0] * ca + m[1] * sa;
    const hy = m[4] * ca + m[5] * sa;
    const hz = m[8] * ca + m[9] * sa;
    for (let b = 0; b < beams; b++) {
      const ce = cosEl[b];
      const se = sinEl[b];
      const dx = ce * hx + se * m[2];
      const dy = ce * hy + se * m[6];
      const dz = ce * hz + se * m[10];
      if (!intersectRay(index, ox, oy, oz, dx, dy, dz, maxRange, hit)) continue;
      if (hit.t < minRange) continue;
      if (dropout > 0 && rng.next() < dropout) continue;

      let reflectivity: number;
      let objectId: number;
      if (hit.primitive >= 0) {
        const p = primitives[hit.primitive];
        reflectivity = p.reflectivity;
        objectId = p.objectId;
      } else {
        reflectivity = groundReflectivity;
        objectId = -1;
        if (roadCount > 0) {
          const gx = ox + dx * hit.t;
          const gy = oy + dy * hit.t;
          for (let r = 0; r < roadCount; r++) {
            const road = roads[r];
            if (gx >= road[0] && gy >= road[1] && gx <= road[2] && gy <= road[3]) {
              reflectivity = roadReflectivity;
              break;
            }
          }
        }
      }
      const cosIncidence = -(dx * hit.nx + dy * hit.ny + dz * hit.nz);
      let intensity = reflectivity * (cosIncidence > 0 ? cosIncidence : 0);
      const range = noiseStd > 0 ? hit.t + rng.gaussian(0, noiseStd) : hit.t;
      if (intensityNoise > 0) intensity += rng.gaussian(0, intensityNoise);
      intensity = intensity < 0 ? 0 : intensity > 1 ? 1 : intensity;

      const o = count * 4;
      points[o] = range * ce * ca;
      points[o + 1] = range * ce * sa;
      points[o + 2] = range * se;
      points[o + 3] = intensity;
      objectIds[count] = objectId;
      count++;
    }
  }

  const scan = reuse ?? { points, count, objectIds };
  scan.points = points.subarray(0, count * 4);
  scan.objectIds = objectIds.subarray(0, count);
  scan.count = count;
  scanStorage.set(scan, storage);
  return scan;
}
