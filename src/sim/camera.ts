// Pinhole camera for the simulator: a z-buffered rasteriser of the scene's boxes over an analytically
// ray-traced ground plane and a sky gradient. Flat Lambert shading from a fixed sun keeps faces of one box
// distinguishable (what an image encoder needs to see edges), and the ground carries road colour, lane
// markings and a faint texture so that it is not a featureless plane. Everything is deterministic.
//
// Pixel convention (OpenCV): pixel column i has its centre at u = i, so a camera point (x, y, z) lands on the
// pixel nearest to u = fx·x/z + s·y/z + cx, v = fy·y/z + cy.

import type { Mat4 } from '../geometry/index.ts';
import type { SceneIndex } from './scene-index.ts';

export interface CameraModel {
  width: number;
  height: number;
  /** Intrinsics, 3×3 row-major: [fx s cx; 0 fy cy; 0 0 1]. */
  K: Float64Array;
}

export class CameraModelError extends Error {
  constructor(readonly field: string, detail: string) {
    super(`camera model: ${field}: ${detail}`);
    this.name = new.target.name;
  }
}

/** Camera-space depth below which geometry is clipped away. */
const NEAR_Z = 0.1;
/** Direction towards the sun, world frame (unit): high, from the front left of +x. */
const SUN_X = 0.3 / Math.sqrt(0.98);
const SUN_Y = 0.5 / Math.sqrt(0.98);
const SUN_Z = 0.8 / Math.sqrt(0.98);
const AMBIENT = 0.45;
const DIFFUSE = 0.55;
/** Aerial perspective: colours blend into the horizon haze by d / (d + HAZE_DISTANCE_M). */
const HAZE_DISTANCE_M = 600;
const HORIZON_RGB = [200, 214, 232] as const;
const ZENITH_RGB = [92, 138, 212] as const;
const MARKING_RGB = [235, 235, 228] as const;
/** Lane markings and ground texture fade out with distance before they turn into aliasing speckle. */
const DETAIL_FADE_M = 70;
const DASH_PERIOD_M = 9;
const DASH_LENGTH_M = 3;
const MARKING_HALF_WIDTH_M = 0.075;
const EDGE_LINE_INSET_M = 0.3;

/** Reused across calls; grown when a bigger image is asked for. */
let depthBuffer = new Float32Array(0);
/** Near-plane clipping scratch: up to 5 vertices of a clipped quad, xyz each (8 for headroom). */
const polygonIn = new Float64Array(24);
const polygonOut = new Float64Array(24);
const projectedU = new Float64Array(8);
const projectedV = new Float64Array(8);

/**
 * Render an RGB image (row-major, top-left origin, width·height·3 bytes) from the camera pose. `cameraToWorld`
 * maps the OpenCV optical frame (x right, y down, z forward) into the world. Boxes are drawn from outside only,
 * so a camera inside a box (its own vehicle's body) sees out through it.
 */
export function renderCamera(index: SceneIndex, cameraToWorld: Mat4, cam: CameraModel, out?: Uint8Array): Uint8Array {
  const width = cam.width;
  const height = cam.height;
  if (!Number.isInteger(width) || width < 1) throw new CameraModelError('width', `must be a positive integer, got ${width}`);
  if (!Number.isInteger(height) || height < 1) throw new CameraModelError('height', `must be a positive integer, got ${height}`);
  if (cam.K.length !== 9) throw new CameraModelError('K', `must hold 9 numbers (3×3 row-major), got ${cam.K.length}`);
  const fx = cam.K[0];
  const skew = cam.K[1];
  const cx = cam.K[2];
  const fy = cam.K[4];
  const cy = cam.K[5];
  if (!(fx > 0) || !(fy > 0)) throw new CameraModelError('K', `focal lengths must be positive, got fx = ${fx}, fy = ${fy}`);
  const pixelCount = width * height;
  const image = out ?? new Uint8Array(pixelCount * 3);
  if (image.length < pixelCount * 3) {
    throw new CameraModelError('out', `buffer holds ${image.length} bytes, a ${width}×${height} RGB image needs ${pixelCount * 3}`);
  }
  if (depthBuffer.length < pixelCount) depthBuffer = new Float32Array(pixelCount);
  const invDepth = depthBuffer;

  const m = cameraToWorld;
  // Camera → world rotation columns are the camera axes in the world; world → camera is its transpose.
  const r00 = m[0], r01 = m[1], r02 = m[2];
  const r10 = m[4], r11 = m[5], r12 = m[6];
  const r20 = m[8], r21 = m[9], r22 = m[10];
  const camX = m[3], camY = m[7], camZ = m[11];

  // Normalised image coordinates are affine in the pixel: yn = (v - cy)/fy, xn = (u - cx - skew·yn)/fx.
  const xnPerU = 1 / fx;
  const ynPerV = 1 / fy;
  const xnPerV = -skew / (fx * fy);

  renderBackground();
  rasteriseBoxes();
  return image;

  function renderBackground(): void {
    const roads = index.scene.roads;
    const roadCount = roads.length;
    const [groundR, groundG, groundB] = index.scene.groundColor;
    const [roadR, roadG, roadB] = index.scene.roadColor;
    // World ray direction for camera direction (xn, yn, 1) is R·(xn, yn, 1); its depth along the optical axis is 1.
    const dirPerU = [r00 * xnPerU, r10 * xnPerU, r20 * xnPerU];
    for (let v = 0; v < height; v++) {
      const yn = (v - cy) * ynPerV;
      const xn0 = -cx * xnPerU + (v - cy) * xnPerV;
      let dx = r00 * xn0 + r01 * yn + r02;
      let dy = r10 * xn0 + r11 * yn + r12;
      let dz = r20 * xn0 + r21 * yn + r22;
      let pixel = v * width;
      for (let u = 0; u < width; u++, pixel++, dx += dirPerU[0], dy += dirPerU[1], dz += dirPerU[2]) {
        const o = pixel * 3;
        if (dz < 0 && camZ > 0) {
          const t = -camZ / dz;
          invDepth[pixel] = 1 / t;
          const gx = camX + dx * t;
          const gy = camY + dy * t;
          const distance = t * Math.sqrt(dx * dx + dy * dy + dz * dz);
          let red = groundR;
          let green = groundG;
          let blue = groundB;
          let roadHit = -1;
          let roadHits = 0;
          for (let r = 0; r < roadCount; r++) {
            const road = roads[r];
            if (gx >= road[0] && gy >= road[1] && gx <= road[2] && gy <= road[3]) {
              roadHit = r;
              roadHits++;
            }
          }
          const detail = distance < DETAIL_FADE_M ? 1 - distance / DETAIL_FADE_M : 0;
          if (roadHits > 0) {
            red = roadR;
            green = roadG;
            blue = roadB;
            // Markings only where one road is alone: a junction (overlapping rectangles) stays plain asphalt.
            if (roadHits === 1 && detail > 0) {
              const marking = laneMarking(roads[roadHit], gx, gy) * detail;
              if (marking > 0) {
                red += (MARKING_RGB[0] - red) * marking;
                green += (MARKING_RGB[1] - green) * marking;
                blue += (MARKING_RGB[2] - blue) * marking;
              }
            }
          }
          if (detail > 0) {
            const grain = 1 + 0.08 * detail * (cellNoise(Math.floor(gx * 2), Math.floor(gy * 2)) - 0.5);
            red *= grain;
            green *= grain;
            blue *= grain;
          }
          const haze = distance / (distance + HAZE_DISTANCE_M);
          image[o] = clampByte(red + (HORIZON_RGB[0] - red) * haze);
          image[o + 1] = clampByte(green + (HORIZON_RGB[1] - green) * haze);
          image[o + 2] = clampByte(blue + (HORIZON_RGB[2] - blue) * haze);
        } else {
          invDepth[pixel] = 0;
          const elevation = dz > 0 ? dz / Math.sqrt(dx * dx + dy * dy + dz * dz) : 0;
          const k = Math.sqrt(elevation);
          image[o] = (HORIZON_RGB[0] + (ZENITH_RGB[0] - HORIZON_RGB[0]) * k + 0.5) | 0;
          image[o + 1] = (HORIZON_RGB[1] + (ZENITH_RGB[1] - HORIZON_RGB[1]) * k + 0.5) | 0;
          image[o + 2] = (HORIZON_RGB[2] + (ZENITH_RGB[2] - HORIZON_RGB[2]) * k + 0.5) | 0;
        }
      }
    }
  }

  function rasteriseBoxes(): void {
    const primitives = index.scene.primitives;
    const boxes = index.boxes;
    // Frustum side planes through the camera centre, inward unit normals in camera coordinates, with a pixel
    // of margin; a bounding sphere wholly outside one of them is culled.
    const planes = frustumSidePlanes(fx, fy, cx, cy, width, height);
    for (let i = 0; i < primitives.length; i++) {
      const o = i * 9;
      const hl = boxes[o + 3];
      const hw = boxes[o + 4];
      const hh = boxes[o + 5];
      if (hl === 0 || hw === 0 || hh === 0) continue;
      const c = boxes[o + 6];
      const s = boxes[o + 7];
      // Box centre and half-axes in camera coordinates (world → camera is Rᵀ).
      const wx = boxes[o] - camX;
      const wy = boxes[o + 1] - camY;
      const wz = boxes[o + 2] - camZ;
      const ccx = r00 * wx + r10 * wy + r20 * wz;
      const ccy = r01 * wx + r11 * wy + r21 * wz;
      const ccz = r02 * wx + r12 * wy + r22 * wz;
      const radius = Math.sqrt(hl * hl + hw * hw + hh * hh);
      if (ccz + radius < NEAR_Z) continue;
      if (planes[0] * ccx + planes[2] * ccz < -radius) continue;
      if (planes[3] * ccx + planes[5] * ccz < -radius) continue;
      if (planes[7] * ccy + planes[8] * ccz < -radius) continue;
      if (planes[10] * ccy + planes[11] * ccz < -radius) continue;
      // Half-axes: length along heading (c, s, 0), width along (-s, c, 0), height along (0, 0, 1).
      const axx = (r00 * c + r10 * s) * hl, axy = (r01 * c + r11 * s) * hl, axz = (r02 * c + r12 * s) * hl;
      const ayx = (r10 * c - r00 * s) * hw, ayy = (r11 * c - r01 * s) * hw, ayz = (r12 * c - r02 * s) * hw;
      const azx = r20 * hh, azy = r21 * hh, azz = r22 * hh;
      const [baseR, baseG, baseB] = primitives[i].color;
      for (let face = 0; face < 6; face++) {
        const sign = face & 1 ? -1 : 1;
        const axis = face >> 1;
        // n: the face's outward half-axis (camera frame); e1, e2: the two half-axes spanning it.
        let nx: number, ny: number, nz: number, e1x: number, e1y: number, e1z: number, e2x: number, e2y: number, e2z: number;
        let worldNx: number, worldNy: number, worldNz: number;
        if (axis === 0) {
          nx = axx * sign; ny = axy * sign; nz = axz * sign;
          e1x = ayx; e1y = ayy; e1z = ayz; e2x = azx; e2y = azy; e2z = azz;
          worldNx = c * sign; worldNy = s * sign; worldNz = 0;
        } else if (axis === 1) {
          nx = ayx * sign; ny = ayy * sign; nz = ayz * sign;
          e1x = axx; e1y = axy; e1z = axz; e2x = azx; e2y = azy; e2z = azz;
          worldNx = -s * sign; worldNy = c * sign; worldNz = 0;
        } else {
          nx = azx * sign; ny = azy * sign; nz = azz * sign;
          e1x = axx; e1y = axy; e1z = axz; e2x = ayx; e2y = ayy; e2z = ayz;
          worldNx = 0; worldNy = 0; worldNz = sign;
        }
        const fcx = ccx + nx, fcy = ccy + ny, fcz = ccz + nz;
        // Plane n·P = planeD; the camera (origin) is on the outer side of the face only when planeD < 0.
        const planeD = nx * fcx + ny * fcy + nz * fcz;
        if (planeD >= -1e-12) continue;
        polygonIn[0] = fcx - e1x - e2x; polygonIn[1] = fcy - e1y - e2y; polygonIn[2] = fcz - e1z - e2z;
        polygonIn[3] = fcx + e1x - e2x; polygonIn[4] = fcy + e1y - e2y; polygonIn[5] = fcz + e1z - e2z;
        polygonIn[6] = fcx + e1x + e2x; polygonIn[7] = fcy + e1y + e2y; polygonIn[8] = fcz + e1z + e2z;
        polygonIn[9] = fcx - e1x + e2x; polygonIn[10] = fcy - e1y + e2y; polygonIn[11] = fcz - e1z + e2z;
        const vertexCount = clipNear(polygonIn, 4, polygonOut);
        if (vertexCount < 3) continue;
        let vMin = Infinity;
        let vMax = -Infinity;
        let uMin = Infinity;
        let uMax = -Infinity;
        for (let k = 0; k < vertexCount; k++) {
          const invZ = 1 / polygonOut[k * 3 + 2];
          const yn = polygonOut[k * 3 + 1] * invZ;
          const pu = fx * polygonOut[k * 3] * invZ + skew * yn + cx;
          const pv = fy * yn + cy;
          projectedU[k] = pu;
          projectedV[k] = pv;
          if (pv < vMin) vMin = pv;
          if (pv > vMax) vMax = pv;
          if (pu < uMin) uMin = pu;
          if (pu > uMax) uMax = pu;
        }
        if (uMax < 0 || uMin > width - 1 || vMax < 0 || vMin > height - 1) continue;

        // Flat Lambert shade and aerial haze at the face centre's distance.
        const lambert = worldNx * SUN_X + worldNy * SUN_Y + worldNz * SUN_Z;
        const shade = AMBIENT + DIFFUSE * (lambert > 0 ? lambert : 0);
        const distance = Math.sqrt(fcx * fcx + fcy * fcy + fcz * fcz);
        const haze = distance / (distance + HAZE_DISTANCE_M);
        const red = clampByte(baseR * shade + (HORIZON_RGB[0] - baseR * shade) * haze);
        const green = clampByte(baseG * shade + (HORIZON_RGB[1] - baseG * shade) * haze);
        const blue = clampByte(baseB * shade + (HORIZON_RGB[2] - baseB * shade) * haze);

        // 1/z over the face's plane is affine in the pixel: 1/z = (nx·xn + ny·yn + nz) / planeD.
        const izPerU = (nx * xnPerU) / planeD;
        const izPerV = (nx * xnPerV + ny * ynPerV) / planeD;
        const izAt00 = (nx * (-cx * xnPerU + cy * skew / (fx * fy)) - ny * cy * ynPerV + nz) / planeD;

        const rowFirst = Math.max(0, Math.ceil(vMin));
        const rowLast = Math.min(height - 1, Math.ceil(vMax) - 1);
        for (let row = rowFirst; row <= rowLast; row++) {
          // Span of the convex polygon on this row: edges crossing it, half-open in v so rows are never shared.
          let left = Infinity;
          let right = -Infinity;
          for (let k = 0; k < vertexCount; k++) {
            const next = k + 1 === vertexCount ? 0 : k + 1;
            const va = projectedV[k];
            const vb = projectedV[next];
            if ((va <= row && row < vb) || (vb <= row && row < va)) {
              const x = projectedU[k] + ((row - va) * (projectedU[next] - projectedU[k])) / (vb - va);
              if (x < left) left = x;
              if (x > right) right = x;
            }
          }
          if (!(left <= right)) continue;
          const colFirst = Math.max(0, Math.ceil(left));
          const colLast = Math.min(width - 1, Math.ceil(right) - 1);
          let iz = izAt00 + izPerV * row + izPerU * colFirst;
          let pixel = row * width + colFirst;
          for (let col = colFirst; col <= colLast; col++, pixel++, iz += izPerU) {
            if (iz > invDepth[pixel]) {
              invDepth[pixel] = iz;
              const p3 = pixel * 3;
              image[p3] = red;
              image[p3 + 1] = green;
              image[p3 + 2] = blue;
            }
          }
        }
      }
    }
  }
}

/** Inward unit normals (nx, ny, nz) of the left, right, top and bottom frustum planes, 12 numbers. */
function frustumSidePlanes(fx: number, fy: number, cx: number, cy: number, width: number, height: number): Float64Array {
  const planes = new Float64Array(12);
  const set = (k: number, x: number, y: number, z: number): void => {
    const n = Math.sqrt(x * x + y * y + z * z);
    planes[k] = x / n;
    planes[k + 1] = y / n;
    planes[k + 2] = z / n;
  };
  // u ≥ -1: fx·x + (cx + 1)·z ≥ 0; u ≤ width: -fx·x + (width - cx)·z ≥ 0; likewise in v (skew ignored: the
  // margin covers it for any realistic camera).
  set(0, fx, 0, cx + 1);
  set(3, -fx, 0, width - cx);
  set(6, 0, fy, cy + 1);
  set(9, 0, -fy, height - cy);
  return planes;
}

/** Sutherland–Hodgman against z ≥ NEAR_Z. Returns the number of vertices written to `out` (0 when all behind). */
function clipNear(input: Float64Array, count: number, out: Float64Array): number {
  let written = 0;
  for (let k = 0; k < count; k++) {
    const a = k * 3;
    const b = (k + 1 === count ? 0 : k + 1) * 3;
    const za = input[a + 2];
    const zb = input[b + 2];
    const aInside = za >= NEAR_Z;
    const bInside = zb >= NEAR_Z;
    if (aInside) {
      out[written * 3] = input[a];
      out[written * 3 + 1] = input[a + 1];
      out[written * 3 + 2] = za;
      written++;
    }
    if (aInside !== bInside) {
      const f = (NEAR_Z - za) / (zb - za);
      out[written * 3] = input[a] + (input[b] - input[a]) * f;
      out[written * 3 + 1] = input[a + 1] + (input[b + 1] - input[a + 1]) * f;
      out[written * 3 + 2] = NEAR_Z;
      written++;
    }
  }
  return written;
}

/** Which lane-marking paint covers ground point (gx, gy) on a rectangular road, 0..1. The road runs along
 * its longer side: a dashed centre line and solid edge lines inset from the kerbs. */
function laneMarking(road: readonly [number, number, number, number], gx: number, gy: number): number {
  const alongX = road[2] - road[0] >= road[3] - road[1];
  const lateral = alongX ? gy - (road[1] + road[3]) / 2 : gx - (road[0] + road[2]) / 2;
  const along = alongX ? gx - road[0] : gy - road[1];
  const halfWidth = alongX ? (road[3] - road[1]) / 2 : (road[2] - road[0]) / 2;
  const offset = Math.abs(lateral);
  if (offset < MARKING_HALF_WIDTH_M) {
    const phase = along - Math.floor(along / DASH_PERIOD_M) * DASH_PERIOD_M;
    return phase < DASH_LENGTH_M ? 1 : 0;
  }
  if (Math.abs(halfWidth - EDGE_LINE_INSET_M - offset) < MARKING_HALF_WIDTH_M) return 1;
  return 0;
}

/** Deterministic hash of an integer ground cell to [0, 1): the grain of the asphalt and the verge. */
function cellNoise(ix: number, iy: number): number {
  let h = Math.imul(ix | 0, 0x27d4eb2d) ^ Math.imul(iy | 0, 0x165667b1);
  h = Math.imul(h ^ (h >>> 15), 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) / 4294967296;
}

function clampByte(x: number): number {
  return x <= 0 ? 0 : x >= 255 ? 255 : (x + 0.5) | 0;
}
