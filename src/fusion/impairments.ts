// Simulated impairments of a collaborator's message, for robustness curves: localisation error on the pose it
// carries, and loss on the channel. Each draw is keyed by (seed, frame index, agent id), not by call order, so the
// same agent in the same frame gets the same noise and the same fate whatever mode runs, whichever other agents
// are in range, and in whatever order frames are visited: curves for different modes compare like with like.
import { type Mat4, degToRad } from '../geometry/index.ts';
import { Rng } from '../sim/index.ts';
import { FusionInputError } from './warp.ts';

// FNV-1a over the key text, folded into the seed: a stable 32-bit seed per (seed, frame, agent).
function keyedSeed(seed: number, frameIndex: number, agentId: string, stream: string): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  const text = `${stream}/${frameIndex}/${agentId}`;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** A generator for one (seed, frame, agent) and one purpose (`stream`): independent streams per purpose. */
export function keyedRng(seed: number, frameIndex: number, agentId: string, stream: string): Rng {
  return new Rng(keyedSeed(seed, frameIndex, agentId, stream));
}

/** Standard deviations of OpenCOOD's pose-noise model: metres on x and on y, degrees on yaw. */
export interface PoseNoiseStd {
  posM: number;
  yawDeg: number;
}

/** One draw of pose error, in the world frame: metres on x and y, radians on yaw. */
export interface PoseNoise {
  dx: number;
  dy: number;
  dyaw: number;
}

/** Parses `POS_M,YAW_DEG` (e.g. `0.2,0.2`, OpenCOOD's setting); both finite and ≥ 0. */
export function parsePoseNoise(text: string): PoseNoiseStd {
  const parts = text.split(',').map((p) => p.trim());
  const [posM, yawDeg] = parts.map(Number);
  if (parts.length !== 2 || parts.some((p) => p === '') || !Number.isFinite(posM) || !Number.isFinite(yawDeg) || posM < 0 || yawDeg < 0) {
    throw new FusionInputError('pose noise', text, 'must be POS_M,YAW_DEG with two finite numbers ≥ 0, e.g. 0.2,0.2');
  }
  return { posM, yawDeg };
}

/**
 * OpenCOOD's localisation error (opencood/utils/pose_utils.py, generate_noise, as add_noise_data_dict applies
 * it): x and y each Gaussian with std `posM` metres, yaw Gaussian with std `yawDeg` degrees, z, roll and pitch
 * untouched; zero mean. Drawn from the (seed, frame, agent) stream 'pose'.
 */
export function samplePoseNoise(std: PoseNoiseStd, seed: number, frameIndex: number, agentId: string): PoseNoise {
  if (!(std.posM >= 0 && std.yawDeg >= 0)) throw new FusionInputError('std', JSON.stringify(std), 'must be ≥ 0');
  const rng = keyedRng(seed, frameIndex, agentId, 'pose');
  const dx = rng.gaussian(0, std.posM);
  const dy = rng.gaussian(0, std.posM);
  const dyaw = degToRad(rng.gaussian(0, std.yawDeg));
  return { dx, dy, dyaw };
}

/**
 * The pose with the error added the way OpenCOOD adds it to [x, y, z, roll, yaw, pitch]: yaw += dyaw turns the
 * rotation about the world z axis (R' = Rz(dyaw)·R, since OpenCOOD's rotation is Rz(yaw)·Ry(pitch)·Rx(roll)),
 * and x += dx, y += dy moves the origin; z stays. Returns a new matrix.
 */
export function applyPoseNoise(lidarToWorld: Mat4, noise: PoseNoise): Mat4 {
  const m = lidarToWorld;
  const c = Math.cos(noise.dyaw), s = Math.sin(noise.dyaw);
  const out = new Float64Array(m);
  for (let col = 0; col < 3; col++) {
    const r0 = m[col], r1 = m[4 + col];
    out[col] = c * r0 - s * r1;
    out[4 + col] = s * r0 + c * r1;
  }
  out[3] = m[3] + noise.dx;
  out[7] = m[7] + noise.dy;
  return out;
}

/**
 * Whether a collaborator's message of this frame is lost on the channel: a Bernoulli draw with probability
 * `probability` from the (seed, frame, agent) stream 'loss'. 0 never loses, 1 always does.
 */
export function messageLost(probability: number, seed: number, frameIndex: number, agentId: string): boolean {
  if (!(probability >= 0 && probability <= 1)) throw new FusionInputError('loss probability', probability, 'must lie in [0, 1]');
  if (probability === 0) return false;
  return keyedRng(seed, frameIndex, agentId, 'loss').next() < probability;
}
