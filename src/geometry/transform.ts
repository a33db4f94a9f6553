// Rigid transforms as 4x4 row-major Float64Arrays acting on column vectors: p_out = M · p_in.
// Row-major because calibration files (DAIR json, OPV2V yaml) write matrices that way, so a matrix read from a
// file and a matrix built here compare element by element.

export type Mat4 = Float64Array;
export type Vec3 = [number, number, number];

/** Position and orientation in radians; the rotation is R = Rz(yaw) · Ry(pitch) · Rx(roll) (intrinsic z-y'-x''). */
export interface Pose {
  x: number;
  y: number;
  z: number;
  roll: number;
  pitch: number;
  yaw: number;
}

export function identity(): Mat4 {
  const m = new Float64Array(16);
  m[0] = m[5] = m[10] = m[15] = 1;
  return m;
}

export function poseToMatrix(p: Pose): Mat4 {
  const cr = Math.cos(p.roll), sr = Math.sin(p.roll);
  const cp = Math.cos(p.pitch), sp = Math.sin(p.pitch);
  const cy = Math.cos(p.yaw), sy = Math.sin(p.yaw);
  const m = new Float64Array(16);
  m[0] = cy * cp; m[1] = cy * sp * sr - sy * cr; m[2] = cy * sp * cr + sy * sr; m[3] = p.x;
  m[4] = sy * cp; m[5] = sy * sp * sr + cy * cr; m[6] = sy * sp * cr - cy * sr; m[7] = p.y;
  m[8] = -sp; m[9] = cp * sr; m[10] = cp * cr; m[11] = p.z;
  m[15] = 1;
  return m;
}

export function matrixToPose(m: Mat4): Pose {
  const pitch = Math.asin(Math.max(-1, Math.min(1, -m[8])));
  let roll: number, yaw: number;
  if (Math.abs(Math.cos(pitch)) > 1e-9) {
    roll = Math.atan2(m[9], m[10]);
    yaw = Math.atan2(m[4], m[0]);
  } else {
    // Gimbal lock: only roll ± yaw is defined; put it all in yaw.
    roll = 0;
    yaw = Math.atan2(-m[1], m[5]);
  }
  return { x: m[3], y: m[7], z: m[11], roll, pitch, yaw };
}

/** a · b */
export function multiply(a: Mat4, b: Mat4): Mat4 {
  const out = new Float64Array(16);
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 4; c++) {
      out[r * 4 + c] = a[r * 4] * b[c] + a[r * 4 + 1] * b[4 + c] + a[r * 4 + 2] * b[8 + c] + a[r * 4 + 3] * b[12 + c];
    }
  }
  return out;
}

/** Inverse of a rigid transform [R t; 0 1] as [Rᵀ −Rᵀt; 0 1]. */
export function invertRigid(m: Mat4): Mat4 {
  const out = new Float64Array(16);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) out[r * 4 + c] = m[c * 4 + r];
  for (let r = 0; r < 3; r++) {
    out[r * 4 + 3] = -(out[r * 4] * m[3] + out[r * 4 + 1] * m[7] + out[r * 4 + 2] * m[11]);
  }
  out[15] = 1;
  return out;
}

/**
 * Inverse of a general affine [A t; 0 1]. Calibration matrices fitted by hand are not always rotations (DAIR's
 * infrastructure virtuallidar_to_camera has singular values 1.00, 0.99, 0.82), and their labels only agree with
 * the images through the matrix as published, so such matrices are inverted exactly, not as rigid transforms.
 */
export function invertAffine(m: Mat4): Mat4 {
  const a = m[0], b = m[1], c = m[2], d = m[4], e = m[5], f = m[6], g = m[8], h = m[9], i = m[10];
  const c00 = e * i - f * h;
  const c01 = -(d * i - f * g);
  const c02 = d * h - e * g;
  const det = a * c00 + b * c01 + c * c02;
  if (!(Math.abs(det) > 1e-12)) throw new RangeError(`singular matrix (determinant ${det})`);
  const inv = [
    c00 / det, -(b * i - c * h) / det, (b * f - c * e) / det,
    c01 / det, (a * i - c * g) / det, -(a * f - c * d) / det,
    c02 / det, -(a * h - b * g) / det, (a * e - b * d) / det,
  ];
  const out = new Float64Array(16);
  for (let r = 0; r < 3; r++) {
    out[r * 4] = inv[r * 3];
    out[r * 4 + 1] = inv[r * 3 + 1];
    out[r * 4 + 2] = inv[r * 3 + 2];
    out[r * 4 + 3] = -(inv[r * 3] * m[3] + inv[r * 3 + 1] * m[7] + inv[r * 3 + 2] * m[11]);
  }
  out[15] = 1;
  return out;
}

export function transformPoint(m: Mat4, x: number, y: number, z: number): Vec3 {
  return [
    m[0] * x + m[1] * y + m[2] * z + m[3],
    m[4] * x + m[5] * y + m[6] * z + m[7],
    m[8] * x + m[9] * y + m[10] * z + m[11],
  ];
}

/**
 * Transforms the x, y, z of every `stride`-float record; the other fields of a record are copied unchanged.
 * `out` may be `points` itself (in place).
 */
export function transformPoints(m: Mat4, points: Float32Array, stride = 4, out?: Float32Array): Float32Array {
  if (stride < 3) throw new RangeError(`stride must be at least 3, got ${stride}`);
  const dst = out ?? new Float32Array(points.length);
  if (dst.length < points.length) throw new RangeError(`out holds ${dst.length} floats, need ${points.length}`);
  const m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3];
  const m4 = m[4], m5 = m[5], m6 = m[6], m7 = m[7];
  const m8 = m[8], m9 = m[9], m10 = m[10], m11 = m[11];
  for (let i = 0; i + stride <= points.length; i += stride) {
    const x = points[i], y = points[i + 1], z = points[i + 2];
    dst[i] = m0 * x + m1 * y + m2 * z + m3;
    dst[i + 1] = m4 * x + m5 * y + m6 * z + m7;
    dst[i + 2] = m8 * x + m9 * y + m10 * z + m11;
    if (dst !== points) for (let k = 3; k < stride; k++) dst[i + k] = points[i + k];
  }
  return dst;
}

/** The transform that maps coordinates in frame a into frame b, given both frames' poses in a common world. */
export function relativeTransform(aToWorld: Mat4, bToWorld: Mat4): Mat4 {
  return multiply(invertRigid(bToWorld), aToWorld);
}

/** Rotation about z carried by a transform, i.e. the heading change it applies to a box lying in the x-y plane. */
export function yawOf(m: Mat4): number {
  return Math.atan2(m[4], m[0]);
}

export function fromRowMajor(rows: readonly (readonly number[])[], path = 'matrix'): Mat4 {
  if (rows.length !== 4 || rows.some((r) => r.length !== 4)) {
    throw new RangeError(`${path}: expected a 4x4 matrix, got ${rows.length} rows`);
  }
  const m = new Float64Array(16);
  for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) m[r * 4 + c] = rows[r][c];
  return m;
}

export function toRowMajor(m: Mat4): number[][] {
  return [0, 1, 2, 3].map((r) => [m[r * 4], m[r * 4 + 1], m[r * 4 + 2], m[r * 4 + 3]]);
}

export const degToRad = (d: number): number => (d * Math.PI) / 180;
export const radToDeg = (r: number): number => (r * 180) / Math.PI;

/** Angle wrapped to [−π, π). */
export function wrapAngle(a: number): number {
  const twoPi = 2 * Math.PI;
  let w = (a + Math.PI) % twoPi;
  if (w < 0) w += twoPi;
  return w - Math.PI;
}
