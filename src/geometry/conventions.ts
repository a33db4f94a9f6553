// Conversions between the datasets' conventions and ours (right-handed, radians). Every dataset reader and the
// simulator's writer go through these, so a convention is decided in one place.
//
// Handedness. CARLA (and so OPV2V and V2XSet) uses Unreal's LEFT-handed world: x forward, y right, z up.
// OpenCOOD applies its pose matrices to points and boxes in that frame as they are, which is self-consistent but
// mirrored. We mirror back at the boundary with S = diag(1, −1, 1): a point (x, y, z) becomes (x, −y, z), and a
// left-handed rigid transform M becomes S·M·S, which is again a proper rotation. Worked through the CARLA
// rotation formula, S·M(roll, pitch, yaw)·S equals our R = Rz(−yaw)·Ry(−pitch)·Rx(roll): yaw and pitch change
// sign, roll does not. Box headings change sign with yaw. Point clouds are mirrored the same way (by readers),
// so points and boxes agree. V2V4Real stores real, right-handed poses as 4x4 matrices and is used as is.
import { type Box7 } from './box.ts';
import { type Mat4, degToRad, fromRowMajor, invertRigid, matrixToPose, multiply, poseToMatrix, radToDeg, toRowMajor } from './transform.ts';

/** OPV2V / CARLA pose [x, y, z, roll, yaw, pitch] in degrees (left-handed) → our right-handed 4x4. */
export function carlaPoseToMatrix(pose: readonly number[]): Mat4 {
  if (pose.length !== 6) throw new RangeError(`a CARLA pose has 6 values [x, y, z, roll, yaw, pitch], got ${pose.length}`);
  const [x, y, z, roll, yaw, pitch] = pose;
  return poseToMatrix({ x, y: -y, z, roll: degToRad(roll), pitch: -degToRad(pitch), yaw: -degToRad(yaw) });
}

/** Inverse of carlaPoseToMatrix. */
export function matrixToCarlaPose(m: Mat4): number[] {
  const p = matrixToPose(m);
  return [p.x, -p.y, p.z, radToDeg(p.roll), -radToDeg(p.yaw), -radToDeg(p.pitch)];
}

/**
 * An OPV2V `vehicles` entry → our box in the right-handed world. OPV2V places the box at `location + center`
 * with `center` added unrotated (as OpenCOOD does), `extent` is half the size, `angle` is [roll, yaw, pitch].
 */
export function carlaBoxToBox7(location: readonly number[], center: readonly number[], extent: readonly number[], angleDeg: readonly number[]): Box7 {
  return {
    x: location[0] + center[0],
    y: -(location[1] + center[1]),
    z: location[2] + center[2],
    l: 2 * extent[0],
    w: 2 * extent[1],
    h: 2 * extent[2],
    yaw: -degToRad(angleDeg[1]),
  };
}

export function box7ToCarla(box: Box7): { location: number[]; center: number[]; extent: number[]; angle: number[] } {
  return {
    location: [box.x, -box.y, box.z],
    center: [0, 0, 0],
    extent: [box.l / 2, box.w / 2, box.h / 2],
    angle: [0, -radToDeg(box.yaw), 0],
  };
}

/** DAIR-V2X calibration json {rotation: 3x3, translation: 3x1} (p_out = R·p + t) → 4x4. */
export function dairTransformToMatrix(t: { rotation: readonly (readonly number[])[]; translation: readonly (readonly number[])[] | readonly number[] }): Mat4 {
  const R = t.rotation;
  if (R.length !== 3 || R.some((r) => r.length !== 3)) throw new RangeError('rotation must be 3x3');
  const tr = t.translation.map((v) => (Array.isArray(v) ? v[0] : v)) as number[];
  if (tr.length !== 3 || tr.some((v) => typeof v !== 'number')) throw new RangeError('translation must have 3 values');
  return fromRowMajor([
    [R[0][0], R[0][1], R[0][2], tr[0]],
    [R[1][0], R[1][1], R[1][2], tr[1]],
    [R[2][0], R[2][1], R[2][2], tr[2]],
    [0, 0, 0, 1],
  ]);
}

// OPV2V camera `extrinsic` maps LiDAR coordinates into the camera's, both in CARLA axes (the camera's are UE4's:
// x forward, y right, z up; left-handed): HEAL documents it as "Twc^-1 @ Twl = T_camera_LiDAR", CoBEVT's
// project_3d_to_camera applies it to LiDAR points, and in the real sample camera0's extrinsic translation is
// (−3, 0, 0.9) for a camera that sits 3 m ahead of the LiDAR. Our cameras use the OpenCV optical frame (x right,
// y down, z forward) and our LiDAR frame is mirrored (S), so opticalToLidar = S · extrinsic⁻¹ · C, where C takes
// optical coordinates to CARLA camera coordinates: x_carla = z_opt, y_carla = x_opt, z_carla = −y_opt.
const MIRROR_Y = fromRowMajor([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]);
const OPTICAL_TO_CARLA_CAMERA = fromRowMajor([[0, 0, 1, 0], [1, 0, 0, 0], [0, -1, 0, 0], [0, 0, 0, 1]]);

/** OPV2V camera `extrinsic` (LiDAR → camera, CARLA axes, 4x4 rows) → camera optical frame → our LiDAR frame. */
export function opv2vCameraExtrinsicToOptical(extrinsic: readonly (readonly number[])[]): Mat4 {
  return multiply(multiply(MIRROR_Y, invertRigid(fromRowMajor(extrinsic, 'extrinsic'))), OPTICAL_TO_CARLA_CAMERA);
}

// carlaPoseToMatrix(cords) maps the mirrored UE4 camera frame (x forward, y left, z up) to our world, so
// optical → that frame is S · C.
const OPTICAL_TO_MIRRORED_CARLA_CAMERA = multiply(MIRROR_Y, OPTICAL_TO_CARLA_CAMERA);

/** The same transform from the camera's world pose `cords` (CARLA, degrees) and the LiDAR's pose (ours). */
export function opv2vCameraCordsToOptical(cords: readonly number[], lidarToWorld: Mat4): Mat4 {
  return multiply(multiply(invertRigid(lidarToWorld), carlaPoseToMatrix(cords)), OPTICAL_TO_MIRRORED_CARLA_CAMERA);
}

/** Inverse of opv2vCameraExtrinsicToOptical: an optical → LiDAR transform written as an OPV2V `extrinsic`. */
export function opticalToOpv2vCameraExtrinsic(cameraToLidarOptical: Mat4): number[][] {
  return toRowMajor(multiply(multiply(OPTICAL_TO_CARLA_CAMERA, invertRigid(cameraToLidarOptical)), MIRROR_Y));
}
