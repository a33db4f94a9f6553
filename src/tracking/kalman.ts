// Kalman filters over a 3D box, on typed arrays (state 10, measurement 7, scratch buffers shared and reused).
//
// Constant velocity ('cv') is AB3DMOT's model (xinshuoweng/AB3DMOT, AB3DMOT_libs/kalman_filter.py, class KF, on
// filterpy.kalman.KalmanFilter):
//   state x = (x, y, z, yaw, l, w, h, vx, vy, vz), velocity in metres per STEP (one frame at KITTI's 10 Hz);
//   F = I with F[x,vx] = F[y,vy] = F[z,vz] = 1; H = [I₇ 0];
//   P₀ = 10·I, velocities 10·1000 ("give high uncertainty to the unobservable initial velocities");
//   Q = I, velocities 0.01 (`self.kf.Q[7:, 7:] *= 0.01`); R = I₇ (filterpy's default; AB3DMOT leaves it);
//   update in filterpy's Joseph form, P = (I − KH) P (I − KH)ᵀ + K R Kᵀ.
// Frames need not be 10 Hz: the tracker passes dt in steps (Δt / stepS) and F uses dt; Q is scaled by dt (a
// random walk per unit time), which is AB3DMOT's Q exactly at dt = 1.
//
// Constant turn rate and velocity ('ctrv'), an extended Kalman filter: state (x, y, z, yaw, l, w, h, v, ω, vz),
// v the speed along the heading (m/step), ω the yaw rate (rad/step). Prediction over T steps:
//   x += v/ω (sin(yaw + ωT) − sin yaw), y += v/ω (cos yaw − cos(yaw + ωT)) (straight line when |ω| < 1e-6),
//   yaw += ωT, z += vz·T; F is the Jacobian of that map. Noises: the same P₀, Q, R diagonals as 'cv' (v, ω, vz in
//   place of vx, vy, vz), so the two models differ only in their motion: a comparison isolates the model.
//
// Orientation as AB3DMOT (AB3DMOT_libs/model.py orientation_correction): before an update both angles are wrapped
// to [−π, π); when they differ by more than 90° (and less than 270°) the TRACK's yaw is turned by π — a detector's
// heading is often ambiguous by π — and a difference above 270° is unwrapped by 2π; the state's yaw is wrapped
// again after predict and update. Turning a CTRV track's yaw by π also negates v, so its motion is unchanged.
import type { Box7 } from '../geometry/index.ts';

export type MotionModel = 'cv' | 'ctrv';
export const MOTION_MODELS: readonly MotionModel[] = ['cv', 'ctrv'];

export const STATE_DIM = 10;
export const MEASUREMENT_DIM = 7;

/** Diagonal noise settings; units are those of the state (metres, radians, per step). */
export interface KalmanNoise {
  /** P₀ diagonal, 10 values. */
  initialVariance: readonly number[];
  /** Q diagonal per step, 10 values. */
  processVariance: readonly number[];
  /** R diagonal, 7 values (x, y, z, yaw, l, w, h): used when a measurement brings no covariance of its own. */
  measurementVariance: readonly number[];
}

/** AB3DMOT's settings (kalman_filter.py): P₀ = 10 (velocities 10 000), Q = 1 (velocities 0.01), R = 1. */
export const AB3DMOT_NOISE: Readonly<KalmanNoise> = Object.freeze({
  initialVariance: Object.freeze([10, 10, 10, 10, 10, 10, 10, 10_000, 10_000, 10_000]),
  processVariance: Object.freeze([1, 1, 1, 1, 1, 1, 1, 0.01, 0.01, 0.01]),
  measurementVariance: Object.freeze([1, 1, 1, 1, 1, 1, 1]),
});

/** A measurement covariance is singular, not finite, or of the wrong size. */
export class KalmanInputError extends Error {
  constructor(readonly field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.name = new.target.name;
  }
}

/** AB3DMOT's within_range: [−π, π) for angles within one turn of it. */
export function withinRange(theta: number): number {
  if (theta >= Math.PI) theta -= 2 * Math.PI;
  if (theta < -Math.PI) theta += 2 * Math.PI;
  return theta;
}

// Shared scratch: filters run one at a time.
const S = new Float64Array(49);
const Sinv = new Float64Array(49);
const K = new Float64Array(70);
const IKH = new Float64Array(100);
const T1 = new Float64Array(100);
const T2 = new Float64Array(100);
const F = new Float64Array(100);
const y = new Float64Array(7);
const Rdiag = new Float64Array(49);
const aug = new Float64Array(7 * 14);

/** Inverts a symmetric positive-definite 7×7 matrix by Gauss–Jordan with partial pivoting; false when singular. */
function invert7(a: Float64Array, out: Float64Array): boolean {
  const n = 7, w = 14;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      aug[i * w + j] = a[i * n + j];
      aug[i * w + n + j] = i === j ? 1 : 0;
    }
  }
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(aug[r * w + c]) > Math.abs(aug[p * w + c])) p = r;
    const piv = aug[p * w + c];
    if (!(Math.abs(piv) > 1e-300)) return false;
    if (p !== c) {
      for (let j = 0; j < w; j++) {
        const t = aug[c * w + j];
        aug[c * w + j] = aug[p * w + j];
        aug[p * w + j] = t;
      }
    }
    for (let j = 0; j < w; j++) aug[c * w + j] /= piv;
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = aug[r * w + c];
      if (f === 0) continue;
      for (let j = 0; j < w; j++) aug[r * w + j] -= f * aug[c * w + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] = aug[i * w + n + j];
  return true;
}

/** out = A·B for 10×10 row-major matrices (out must not alias). */
function mul10(a: Float64Array, b: Float64Array, out: Float64Array): void {
  for (let i = 0; i < 10; i++) {
    for (let j = 0; j < 10; j++) {
      let s = 0;
      for (let k = 0; k < 10; k++) s += a[i * 10 + k] * b[k * 10 + j];
      out[i * 10 + j] = s;
    }
  }
}

/** out = A·Bᵀ for 10×10 row-major matrices. */
function mul10T(a: Float64Array, b: Float64Array, out: Float64Array): void {
  for (let i = 0; i < 10; i++) {
    for (let j = 0; j < 10; j++) {
      let s = 0;
      for (let k = 0; k < 10; k++) s += a[i * 10 + k] * b[j * 10 + k];
      out[i * 10 + j] = s;
    }
  }
}

/** Expands 7 variances (diagonal) or 49 values (full, row-major) into a 7×7 matrix in `out`. */
export function measurementCovariance(values: ArrayLike<number>, out: Float64Array = new Float64Array(49)): Float64Array {
  if (values.length === 7) {
    out.fill(0);
    for (let i = 0; i < 7; i++) out[i * 8] = values[i];
  } else if (values.length === 49) {
    for (let i = 0; i < 49; i++) out[i] = values[i];
  } else {
    throw new KalmanInputError('covariance', `needs 7 variances or 49 values, got ${values.length}`);
  }
  for (let i = 0; i < out.length; i++) if (!Number.isFinite(out[i])) throw new KalmanInputError('covariance', `entry ${i} is ${out[i]}`);
  for (let i = 0; i < 7; i++) if (!(out[i * 8] > 0)) throw new KalmanInputError('covariance', `variance ${i} is ${out[i * 8]}, must be > 0`);
  return out;
}

/** A box tracked by a Kalman filter (linear for 'cv', extended for 'ctrv'). */
export class BoxKalmanFilter {
  /** State: x, y, z, yaw, l, w, h, then vx, vy, vz ('cv') or v, ω, vz ('ctrv'); per step. */
  readonly x = new Float64Array(STATE_DIM);
  /** Covariance, 10×10 row-major. */
  readonly P = new Float64Array(STATE_DIM * STATE_DIM);

  /**
   * @param initialCovariance the first measurement's covariance (7 or 49 values): it replaces P₀'s box block, as
   *   DMSTrack initialises a track from its detection's covariance; the velocity block keeps P₀.
   */
  constructor(readonly model: MotionModel, box: Box7, readonly noise: Readonly<KalmanNoise> = AB3DMOT_NOISE, initialCovariance?: ArrayLike<number>) {
    if (noise.initialVariance.length !== 10 || noise.processVariance.length !== 10 || noise.measurementVariance.length !== 7) {
      throw new KalmanInputError('noise', 'needs 10 initial, 10 process and 7 measurement variances');
    }
    this.x[0] = box.x;
    this.x[1] = box.y;
    this.x[2] = box.z;
    this.x[3] = withinRange(box.yaw);
    this.x[4] = box.l;
    this.x[5] = box.w;
    this.x[6] = box.h;
    for (let i = 0; i < 10; i++) this.P[i * 11] = noise.initialVariance[i];
    if (initialCovariance) {
      const r = measurementCovariance(initialCovariance, Rdiag);
      for (let i = 0; i < 7; i++) for (let j = 0; j < 7; j++) this.P[i * 10 + j] = r[i * 7 + j];
    }
  }

  /** The box the state describes. */
  box(): Box7 {
    const x = this.x;
    return { x: x[0], y: x[1], z: x[2], yaw: x[3], l: x[4], w: x[5], h: x[6] };
  }

  /** Velocity in the tracking frame, metres per step. */
  velocity(): { x: number; y: number; z: number } {
    const x = this.x;
    if (this.model === 'cv') return { x: x[7], y: x[8], z: x[9] };
    return { x: x[7] * Math.cos(x[3]), y: x[7] * Math.sin(x[3]), z: x[9] };
  }

  /** Variances of the velocity components (per step²); for 'ctrv' linearised through v and yaw. */
  velocityVariance(): { x: number; y: number; z: number } {
    const P = this.P;
    if (this.model === 'cv') return { x: P[77], y: P[88], z: P[99] };
    const v = this.x[7], c = Math.cos(this.x[3]), s = Math.sin(this.x[3]);
    // J = ∂(v cos ψ, v sin ψ)/∂(ψ, v)
    const pyy = P[33], pvv = P[77], pyv = P[37];
    return {
      x: v * v * s * s * pyy + c * c * pvv - 2 * v * s * c * pyv,
      y: v * v * c * c * pyy + s * s * pvv + 2 * v * s * c * pyv,
      z: P[99],
    };
  }

  /** Advances the state by dt steps (dt > 0). */
  predict(dt = 1): void {
    const x = this.x;
    F.fill(0);
    for (let i = 0; i < 10; i++) F[i * 11] = 1;
    if (this.model === 'cv') {
      F[7] = F[18] = F[29] = dt;
      x[0] += dt * x[7];
      x[1] += dt * x[8];
      x[2] += dt * x[9];
    } else {
      const yaw = x[3], v = x[7], w = x[8];
      const s0 = Math.sin(yaw), c0 = Math.cos(yaw);
      if (Math.abs(w) > 1e-6) {
        const s1 = Math.sin(yaw + w * dt), c1 = Math.cos(yaw + w * dt);
        const dx = (v / w) * (s1 - s0), dy = (v / w) * (c0 - c1);
        F[0 * 10 + 3] = (v / w) * (c1 - c0);
        F[0 * 10 + 7] = (s1 - s0) / w;
        F[0 * 10 + 8] = (-v / (w * w)) * (s1 - s0) + (v / w) * dt * c1;
        F[1 * 10 + 3] = (v / w) * (s1 - s0);
        F[1 * 10 + 7] = (c0 - c1) / w;
        F[1 * 10 + 8] = (-v / (w * w)) * (c0 - c1) + (v / w) * dt * s1;
        x[0] += dx;
        x[1] += dy;
      } else {
        F[0 * 10 + 3] = -v * dt * s0;
        F[0 * 10 + 7] = dt * c0;
        F[0 * 10 + 8] = -0.5 * v * dt * dt * s0;
        F[1 * 10 + 3] = v * dt * c0;
        F[1 * 10 + 7] = dt * s0;
        F[1 * 10 + 8] = 0.5 * v * dt * dt * c0;
        x[0] += v * dt * c0;
        x[1] += v * dt * s0;
      }
      F[3 * 10 + 8] = dt;
      F[2 * 10 + 9] = dt;
      x[3] = yaw + w * dt;
      x[2] += dt * x[9];
    }
    // P = F P Fᵀ + Q·dt
    mul10(F, this.P, T1);
    mul10T(T1, F, this.P);
    for (let i = 0; i < 10; i++) this.P[i * 11] += this.noise.processVariance[i] * dt;
    x[3] = withinRange(x[3]);
  }

  /**
   * AB3DMOT's orientation correction of the state against a measured yaw; returns the measured yaw wrapped to
   * [−π, π), with the state's yaw moved within 90° of it.
   */
  private correctOrientation(measuredYaw: number): number {
    const x = this.x;
    let pre = withinRange(x[3]);
    const obs = withinRange(measuredYaw);
    const d = Math.abs(obs - pre);
    if (d > Math.PI / 2 && d < (Math.PI * 3) / 2) {
      pre = withinRange(pre + Math.PI);
      if (this.model === 'ctrv') x[7] = -x[7];
    }
    if (Math.abs(obs - pre) >= (Math.PI * 3) / 2) pre += obs > 0 ? 2 * Math.PI : -2 * Math.PI;
    x[3] = pre;
    return obs;
  }

  /**
   * Kalman update with a box measurement (x, y, z, yaw, l, w, h) and its covariance (7 variances or 49 values);
   * without one, the noise settings' R.
   */
  update(z: ArrayLike<number>, covariance?: ArrayLike<number>): void {
    if (covariance) measurementCovariance(covariance, Rdiag);
    else measurementCovariance(this.noise.measurementVariance, Rdiag);
    const x = this.x, P = this.P;
    const obsYaw = this.correctOrientation(z[3]);
    for (let i = 0; i < 7; i++) y[i] = (i === 3 ? obsYaw : z[i]) - x[i];
    // S = H P Hᵀ + R = P[0:7, 0:7] + R
    for (let i = 0; i < 7; i++) for (let j = 0; j < 7; j++) S[i * 7 + j] = P[i * 10 + j] + Rdiag[i * 7 + j];
    if (!invert7(S, Sinv)) throw new KalmanInputError('innovation covariance', 'is singular');
    // K = P Hᵀ S⁻¹ = P[:, 0:7] S⁻¹ (10×7)
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 7; j++) {
        let s = 0;
        for (let k = 0; k < 7; k++) s += P[i * 10 + k] * Sinv[k * 7 + j];
        K[i * 7 + j] = s;
      }
    }
    for (let i = 0; i < 10; i++) {
      let s = 0;
      for (let j = 0; j < 7; j++) s += K[i * 7 + j] * y[j];
      x[i] += s;
    }
    // Joseph form: P = (I − KH) P (I − KH)ᵀ + K R Kᵀ
    IKH.fill(0);
    for (let i = 0; i < 10; i++) {
      IKH[i * 11] = 1;
      for (let j = 0; j < 7; j++) IKH[i * 10 + j] -= K[i * 7 + j];
    }
    mul10(IKH, P, T1);
    mul10T(T1, IKH, T2);
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < 10; j++) {
        let s = 0;
        for (let a = 0; a < 7; a++) {
          const kia = K[i * 7 + a];
          if (kia === 0) continue;
          for (let b = 0; b < 7; b++) s += kia * Rdiag[a * 7 + b] * K[j * 7 + b];
        }
        P[i * 10 + j] = T2[i * 10 + j] + s;
      }
    }
    x[3] = withinRange(x[3]);
  }
}
