// The geometric lift of camera features into the BEV grid: for every feature-map cell and every height of its
// pillar, where that 3D point lands in each calibrated camera, as the normalised coordinates torch's
// F.grid_sample reads. The camera encoder (camera_lift.onnx, models/README.md) takes this grid as an input
// and does the sampling itself, so the calibration stays in TypeScript and the network never sees a matrix.
//
// Points. Feature cell (row r, col c) of grid g has its centre at x = xMin + (c + 0.5)·s, y = yMin + (r + 0.5)·s,
// s = cellSize·featureStride (grid.ts: row along y from yMin, column along x from xMin), and is sampled at each of
// the caller's heights z (LiDAR frame; on an OPV2V car the road is about 1.9 m below the sensor). Each cell
// gathers image features along its vertical column: a "pillar lift".
//
// Projection (OpenCV pinhole, pixel centres at integer coordinates):
//   p_cam = inverse(cameraToLidar) · p_lidar      general affine inverse: DAIR's infrastructure calibration is
//                                                 not a rotation, and its labels agree with the images only
//                                                 through the matrix as published (see invertAffine)
//   px = (K₀·p_cam) / z_cam,  py = (K₁·p_cam) / z_cam
// Lens distortion is ignored: images are used as published, not undistorted (DAIR's cam_D reaches k1 = −0.45 on
// the infrastructure camera, so points near its image edges land several pixels off; the learned sampling has to
// live with that). On the DAIR example, labelled 3D box centres projected this way fall inside their annotated
// 2D boxes (within 5 px) for 31 of 32 objects (test/perception/camera-lift.test.ts).
//
// Normalisation. grid_sample with align_corners=False reads u ∈ [−1, 1] across the image's full extent: pixel i of
// a W-wide image covers [i − 0.5, i + 0.5) in pixel-centre coordinates, and torch un-normalises with
// ix = ((u + 1)·W − 1) / 2, i.e. u = (2·ix + 1)/W − 1, so pixel i's centre is u = (2i + 1)/W − 1 and the image's
// left edge (ix = −0.5) is u = −1. A resize that maps the image's edges onto the resized image's edges (centre-
// aligned: PIL, F.interpolate with align_corners=False, and sharp's fit 'fill' as measured in camera-image.ts)
// takes an original pixel
// coordinate px to ix' = (px + 0.5)·W'/W − 0.5, so
//   u = (2·ix' + 1)/W' − 1 = (2·(px + 0.5)·W'/W)/W' − 1 = 2·(px + 0.5)/W − 1:
// the normalised coordinate depends on the ORIGINAL size only and is the same for every resized tensor size.
// imageWidth/imageHeight are still part of the call, so a grid is always computed for a stated model input.
//
// Validity: a sample is valid when the point is at least minDepth in front of the camera (z_cam ≥ minDepth) and
// inside the original image, −0.5 ≤ px ≤ W − 0.5 and likewise for py (u, v ∈ [−1, 1]). Invalid samples are set to
// (−2, −2), which grid_sample with zeros padding reads as 0, and their valid entry is 0.

import { type Mat4, invertAffine } from '../geometry/index.ts';
import { type BevGrid, featureCellSize, featureHeight, featureWidth, validateGrid } from './grid.ts';

/** The normalised coordinate written for a sample that no image pixel sees (outside [−1, 1] in u and v). */
export const INVALID_SAMPLE = -2;

/** Default minimum depth in front of a camera, metres: closer points project unstably and are never useful. */
export const DEFAULT_MIN_DEPTH = 0.5;

/** The part of a CameraFrame (src/datasets) the lift needs; a CameraFrame is one. */
export interface LiftCamera {
  /** Named in errors. */
  name?: string;
  /** 3×3 row-major intrinsic matrix (pixels). */
  intrinsic: ArrayLike<number>;
  /** OpenCV optical frame (x right, y down, z forward) → LiDAR frame, 4×4 row-major; may be a general affine. */
  cameraToLidar: Mat4;
  /** Size of the image the intrinsics refer to (the original, before any resize). */
  width?: number;
  height?: number;
}

export interface SamplingGridOptions {
  /** z values in the LiDAR frame sampled in every pillar (e.g. [−1.9, −1.2, −0.5, 0.2] for an OPV2V car). */
  heights: readonly number[];
  /** Width and height of the resized image tensor the model sees. */
  imageWidth: number;
  imageHeight: number;
  /** Points closer than this in front of the camera (metres) are invalid; default 0.5. */
  minDepth?: number;
}

export interface CameraSamplingGrid {
  /** [N, Z, H·W, 2]: normalised (u, v) per camera, height and feature cell (cell index row·W + col). */
  grid: Float32Array;
  /** [N, Z, H·W]: 1 where the sample is in front of the camera and inside its image, else 0. */
  valid: Float32Array;
  gridDims: [cameras: number, heights: number, cells: number, two: 2];
  validDims: [cameras: number, heights: number, cells: number];
  /** Feature-map rows (along y) and columns (along x). */
  rows: number;
  cols: number;
}

/** Options that make no sense for the lift (a programming error: the caller passed them). */
export class CameraLiftError extends Error {
  constructor(readonly field: string, readonly value: unknown, detail: string) {
    super(`camera lift: ${field} = ${String(value)}: ${detail}`);
    this.name = new.target.name;
  }
}

/** A camera whose calibration cannot be used: the data's problem, named by camera and field. */
export class CameraCalibrationError extends Error {
  readonly userFacing = true;
  constructor(readonly camera: string, readonly field: string, detail: string) {
    super(`camera ${camera}: ${field}: ${detail}`);
    this.name = new.target.name;
  }
}

function positiveInteger(field: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new CameraLiftError(field, v, 'must be a positive integer');
  return v;
}

/** Lidar → camera 3×4 rows and the pixel scale of one camera, checked. */
interface PreparedCamera {
  lidarToCamera: Mat4;
  fx: number; skew: number; cx: number;
  fy: number; cy: number;
  /** 2 / original width and height: u = (px + 0.5)·uScale − 1. */
  uScale: number;
  vScale: number;
}

function prepareCamera(camera: LiftCamera, index: number): PreparedCamera {
  const name = camera.name ?? `#${index}`;
  const { width, height } = camera;
  if (width === undefined || height === undefined) {
    throw new CameraCalibrationError(name, 'width/height', 'the original image size is unknown (the validity test and the ' +
      'normalisation need it); read it from the image header with completeImageSizes');
  }
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1) {
    throw new CameraCalibrationError(name, 'width/height', `${width} × ${height} is not an image size`);
  }
  const K = camera.intrinsic;
  if (K.length !== 9 || !Array.from(K).every(Number.isFinite)) {
    throw new CameraCalibrationError(name, 'intrinsic', `expected 9 finite numbers (3×3 row-major), got ${K.length}`);
  }
  // The projection divides by z_cam and never reads K's last row: it must be the pinhole's [0 0 1].
  const tol = 1e-9;
  if (Math.abs(K[3]) > tol || Math.abs(K[6]) > tol || Math.abs(K[7]) > tol || Math.abs(K[8] - 1) > tol || !(K[0] > 0) || !(K[4] > 0)) {
    throw new CameraCalibrationError(name, 'intrinsic', `[${Array.from(K).join(', ')}] is not a pinhole matrix ` +
      '[fx s cx; 0 fy cy; 0 0 1] with fx, fy > 0');
  }
  if (camera.cameraToLidar.length !== 16 || !Array.from(camera.cameraToLidar).every(Number.isFinite)) {
    throw new CameraCalibrationError(name, 'cameraToLidar', 'expected a 4×4 matrix of finite numbers');
  }
  let lidarToCamera: Mat4;
  try {
    lidarToCamera = invertAffine(camera.cameraToLidar);
  } catch (err) {
    throw new CameraCalibrationError(name, 'cameraToLidar', `cannot be inverted (${(err as Error).message})`);
  }
  return {
    lidarToCamera,
    fx: K[0], skew: K[1], cx: K[2],
    fy: K[4], cy: K[5],
    uScale: 2 / width,
    vScale: 2 / height,
  };
}

/**
 * The sampling grid and validity mask of `cameras` for the feature map of `grid` (models/README.md, camera_lift
 * inputs `sampling_grid` and `valid`). Pass the previous result (or any buffers at least as long) as `out` to
 * reuse its arrays; longer buffers are returned as views of the needed length.
 */
export function computeSamplingGrid(
  cameras: readonly LiftCamera[],
  grid: BevGrid,
  opts: SamplingGridOptions,
  out?: { grid: Float32Array; valid: Float32Array },
): CameraSamplingGrid {
  validateGrid(grid);
  const heights = opts.heights;
  if (heights.length === 0) throw new CameraLiftError('heights', '[]', 'need at least one height');
  for (const z of heights) if (!Number.isFinite(z)) throw new CameraLiftError('heights', heights.join(', '), 'must be finite numbers');
  positiveInteger('imageWidth', opts.imageWidth);
  positiveInteger('imageHeight', opts.imageHeight);
  const minDepth = opts.minDepth ?? DEFAULT_MIN_DEPTH;
  if (!(minDepth >= 0) || !Number.isFinite(minDepth)) throw new CameraLiftError('minDepth', minDepth, 'must be a finite number ≥ 0');

  const prepared = cameras.map(prepareCamera);
  const rows = featureHeight(grid);
  const cols = featureWidth(grid);
  const cells = rows * cols;
  const n = cameras.length;
  const z = heights.length;
  const validLength = n * z * cells;

  let gridOut: Float32Array;
  let validOut: Float32Array;
  if (out) {
    if (out.grid.length < 2 * validLength) throw new CameraLiftError('out.grid', out.grid.length, `holds fewer than the ${2 * validLength} floats needed`);
    if (out.valid.length < validLength) throw new CameraLiftError('out.valid', out.valid.length, `holds fewer than the ${validLength} floats needed`);
    gridOut = out.grid.length === 2 * validLength ? out.grid : out.grid.subarray(0, 2 * validLength);
    validOut = out.valid.length === validLength ? out.valid : out.valid.subarray(0, validLength);
  } else {
    gridOut = new Float32Array(2 * validLength);
    validOut = new Float32Array(validLength);
  }

  const s = featureCellSize(grid);
  const x0 = grid.xMin + 0.5 * s;
  const y0 = grid.yMin + 0.5 * s;
  for (let ci = 0; ci < n; ci++) {
    const cam = prepared[ci];
    const E = cam.lidarToCamera;
    const e0 = E[0], e1 = E[1], e2 = E[2], e3 = E[3];
    const e4 = E[4], e5 = E[5], e6 = E[6], e7 = E[7];
    const e8 = E[8], e9 = E[9], e10 = E[10], e11 = E[11];
    const { fx, skew, cx, fy, cy, uScale, vScale } = cam;
    for (let k = 0; k < z; k++) {
      const pz = heights[k];
      let at = (ci * z + k) * cells;
      for (let r = 0; r < rows; r++) {
        const py = y0 + r * s;
        // p_cam is affine in x along a row: the y and z terms are the row's constant part.
        const bx = e1 * py + e2 * pz + e3;
        const by = e5 * py + e6 * pz + e7;
        const bz = e9 * py + e10 * pz + e11;
        for (let c = 0; c < cols; c++, at++) {
          const px = x0 + c * s;
          const zc = e8 * px + bz;
          if (zc >= minDepth) {
            const xc = e0 * px + bx;
            const yc = e4 * px + by;
            const u = (fx * xc + skew * yc) / zc + cx + 0.5;
            const v = (fy * yc) / zc + cy + 0.5;
            const un = u * uScale - 1;
            const vn = v * vScale - 1;
            if (un >= -1 && un <= 1 && vn >= -1 && vn <= 1) {
              gridOut[2 * at] = un;
              gridOut[2 * at + 1] = vn;
              validOut[at] = 1;
              continue;
            }
          }
          gridOut[2 * at] = INVALID_SAMPLE;
          gridOut[2 * at + 1] = INVALID_SAMPLE;
          validOut[at] = 0;
        }
      }
    }
  }
  return {
    grid: gridOut,
    valid: validOut,
    gridDims: [n, z, cells, 2],
    validDims: [n, z, cells],
    rows,
    cols,
  };
}

export interface CoverageOptions {
  /** Count only this height (index into the heights the grid was computed for); any height when left out. */
  heightIndex?: number;
  /** Count only cells whose centre lies within this distance (metres, in x-y) of the LiDAR. */
  maxRange?: number;
}

export interface CameraCoverage {
  /** Cells seen by at least one camera. */
  covered: number;
  /** Cells counted (all feature cells, or those within maxRange). */
  cells: number;
  /** covered / cells (0 when no cell is counted). */
  fraction: number;
}

/** How much of the BEV feature grid the cameras see: cells valid in at least one camera (for reports). */
export function cameraCoverage(lift: CameraSamplingGrid, grid: BevGrid, opts: CoverageOptions = {}): CameraCoverage {
  const [n, z, cells] = lift.validDims;
  if (featureHeight(grid) !== lift.rows || featureWidth(grid) !== lift.cols) {
    throw new CameraLiftError('grid', `${featureHeight(grid)} × ${featureWidth(grid)}`, `the sampling grid was computed for ${lift.rows} × ${lift.cols} feature cells`);
  }
  const { heightIndex, maxRange } = opts;
  if (heightIndex !== undefined && !(Number.isInteger(heightIndex) && heightIndex >= 0 && heightIndex < z)) {
    throw new CameraLiftError('heightIndex', heightIndex, `must be an integer in 0..${z - 1}`);
  }
  if (maxRange !== undefined && !(maxRange > 0)) throw new CameraLiftError('maxRange', maxRange, 'must be > 0');
  const kFirst = heightIndex ?? 0;
  const kEnd = heightIndex === undefined ? z : heightIndex + 1;
  const s = featureCellSize(grid);
  const maxRange2 = maxRange === undefined ? Infinity : maxRange * maxRange;
  let covered = 0;
  let counted = 0;
  for (let r = 0; r < lift.rows; r++) {
    const y = grid.yMin + (r + 0.5) * s;
    for (let c = 0; c < lift.cols; c++) {
      const x = grid.xMin + (c + 0.5) * s;
      if (x * x + y * y > maxRange2) continue;
      counted++;
      const cell = r * lift.cols + c;
      let seen = false;
      for (let ci = 0; ci < n && !seen; ci++) {
        for (let k = kFirst; k < kEnd; k++) {
          if (lift.valid[(ci * z + k) * cells + cell] !== 0) {
            seen = true;
            break;
          }
        }
      }
      if (seen) covered++;
    }
  }
  return { covered, cells: counted, fraction: counted === 0 ? 0 : covered / counted };
}
