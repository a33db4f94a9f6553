import { test } from 'node:test';
import assert from 'node:assert/strict';
import { multiply, poseToMatrix } from '../../src/geometry/index.ts';
import { CameraModelError, renderCamera, type CameraModel } from '../../src/sim/camera.ts';
import type { Scene, ScenePrimitive } from '../../src/sim/scene.ts';
import { intersectRay, SceneIndex, type RayHit } from '../../src/sim/scene-index.ts';

const DEG = Math.PI / 180;
const RED: [number, number, number] = [230, 20, 20];
const GREEN: [number, number, number] = [20, 230, 20];
const YELLOW: [number, number, number] = [230, 230, 20];
const GROUND: [number, number, number] = [120, 80, 40];
const ROAD: [number, number, number] = [60, 60, 64];

function box(x: number, y: number, z: number, l: number, w: number, h: number, color: [number, number, number], yaw = 0): ScenePrimitive {
  return { x, y, z, l, w, h, yaw, surface: 'building', reflectivity: 0.5, color, objectId: -1 };
}

function sceneOf(primitives: ScenePrimitive[], roads: Scene['roads'] = []): Scene {
  return { primitives, groundColor: GROUND, roadColor: ROAD, roads };
}

// 320×240, fx = fy = 200, principal point at the centre.
const cam: CameraModel = { width: 320, height: 240, K: Float64Array.from([200, 0, 160, 0, 200, 120, 0, 0, 1]) };

// Optical frame (x right, y down, z forward) of a camera looking along world +x from 1.5 m, written by hand:
// optical z → world +x, optical x → world -y, optical y → world -z.
const levelCamera = Float64Array.from([
  0, 0, 1, 0,
  -1, 0, 0, 0,
  0, -1, 0, 1.5,
  0, 0, 0, 1,
]);

function pixel(image: Uint8Array, u: number, v: number): [number, number, number] {
  const o = (v * cam.width + u) * 3;
  return [image[o], image[o + 1], image[o + 2]];
}

const isRed = ([r, g, b]: number[]): boolean => r > 80 && r > 3 * g && r > 3 * b;
const isGreen = ([r, g, b]: number[]): boolean => g > 80 && g > 3 * r && g > 3 * b;
const isYellow = ([r, g, b]: number[]): boolean => r > 80 && g > 80 && r > 3 * b && g > 3 * b;
const isSky = ([r, , b]: number[]): boolean => b > r + 20;
/** The brown ground, hazed towards the horizon colour with distance but still warmer than blue. */
const isGround = ([r, g, b]: number[]): boolean => r > b + 10 && g < r && !isRed([r, g, b]) && !isYellow([r, g, b]);

test('renderCamera: a red box ahead covers the centre and projects to u = fx·X/Z + cx at its edges', () => {
  // Front face at x = 9 (centre 10, l = 2), y ∈ [-1, 1], z ∈ [0.5, 2.5]: camera X = -y, Y = 1.5 - z.
  const image = renderCamera(new SceneIndex(sceneOf([box(10, 0, 1.5, 2, 2, 2, RED)])), levelCamera, cam);
  assert.equal(image.length, 320 * 240 * 3);
  assert.ok(isRed(pixel(image, 160, 120)), `centre pixel ${pixel(image, 160, 120)}`);
  // Front face only (the camera faces it squarely): flat shading, so the whole face is one colour.
  assert.deepEqual(pixel(image, 150, 110), pixel(image, 170, 130));
  // u = 200·(±1)/9 + 160 = 137.78 .. 182.22; v = 200·(±1)/9 + 120 = 97.78 .. 142.22.
  const row = 110;
  const redColumns = [...Array(cam.width).keys()].filter((u) => isRed(pixel(image, u, row)));
  assert.equal(redColumns[0], 138);
  assert.equal(redColumns[redColumns.length - 1], 182);
  assert.equal(redColumns.length, 182 - 138 + 1, 'one contiguous span');
  const redRows = [...Array(cam.height).keys()].filter((v) => isRed(pixel(image, 160, v)));
  assert.equal(redRows[0], 98);
  assert.equal(redRows[redRows.length - 1], 142);
  assert.ok(isSky(pixel(image, 135, row)) && isSky(pixel(image, 185, row)), 'sky beside the box');
  assert.ok(isGround(pixel(image, 160, 146)), 'ground below the box');
});

test('renderCamera: a box behind another is hidden, and visible once the front one is gone', () => {
  const front = box(10, 0, 1.5, 2, 2, 2, RED);
  const behind = box(20, 0, 1.5, 2, 2.5, 2.5, GREEN); // subtends less than the red box: wholly covered
  const countGreen = (primitives: ScenePrimitive[]): number => {
    // Draw order must not matter: the z-buffer decides.
    const image = renderCamera(new SceneIndex(sceneOf(primitives)), levelCamera, cam);
    let n = 0;
    for (let i = 0; i < image.length; i += 3) if (isGreen([image[i], image[i + 1], image[i + 2]])) n++;
    return n;
  };
  assert.equal(countGreen([front, behind]), 0);
  assert.equal(countGreen([behind, front]), 0);
  // Alone, its front face (x = 19) spans 200·1.25/19 = 13.2 px each way from the centre: about 26 × 26 pixels.
  const alone = countGreen([behind]);
  assert.ok(alone >= 25 * 25 && alone <= 28 * 28, `green pixels alone: ${alone}`);
});

test('renderCamera: looking level, sky fills the rows above the horizon and ground the rows below', () => {
  const image = renderCamera(new SceneIndex(sceneOf([])), levelCamera, cam);
  for (let v = 0; v < cam.height; v++) {
    for (const u of [0, 160, 319]) {
      if (v <= 120) assert.ok(isSky(pixel(image, u, v)), `sky at (${u}, ${v}): ${pixel(image, u, v)}`);
      else assert.ok(isGround(pixel(image, u, v)), `ground at (${u}, ${v}): ${pixel(image, u, v)}`);
    }
  }
  // Near the bottom the ground is 2.5 m away: its own colour, give or take the grain.
  const [r, g, b] = pixel(image, 160, 239);
  assert.ok(Math.abs(r - GROUND[0]) < 12 && Math.abs(g - GROUND[1]) < 12 && Math.abs(b - GROUND[2]) < 12, `near ground ${[r, g, b]}`);
  // The sky darkens towards the zenith.
  assert.ok(pixel(image, 160, 0)[0] < pixel(image, 160, 118)[0]);
});

test('renderCamera: ground inside a road rectangle takes the road colour', () => {
  // Pixel (180, 150): yn = 0.15 → ground 10 m ahead; xn = 0.1 → 1 m to the right (y = -1), clear of markings.
  const image = renderCamera(new SceneIndex(sceneOf([], [[5, -3, 50, 3]])), levelCamera, cam);
  const [r, g, b] = pixel(image, 180, 150);
  assert.ok(Math.abs(r - ROAD[0]) < 10 && Math.abs(g - ROAD[1]) < 10 && Math.abs(b - ROAD[2]) < 10, `road pixel ${[r, g, b]}`);
  // Pixel (300, 150): 7 m to the right of the road axis at 10 m: off the road.
  assert.ok(isGround(pixel(image, 300, 150)));
});

test('renderCamera: every pixel agrees with a ray cast through its centre, near-plane crossings included', () => {
  // A wall along the left from behind the camera to 30 m ahead (its inner face 0.5 m beside the lens crosses
  // the near plane), yawed boxes, and one box enclosing the camera (seen from inside: invisible).
  const primitives = [
    box(12.5, 1.75, 2, 35, 2.5, 4, YELLOW),
    box(12, -3, 1, 4, 2, 2, RED, 25 * DEG),
    box(25, -1, 3, 3, 3, 6, GREEN, -40 * DEG),
    box(40, -12, 1, 6, 3, 2, RED, 70 * DEG),
    box(0, 0, 1.5, 1, 0.6, 0.5, GREEN),
  ];
  const index = new SceneIndex(sceneOf(primitives));
  const camera = multiply(poseToMatrix({ x: 0, y: 0, z: 0, roll: 0, pitch: 3 * DEG, yaw: -10 * DEG }), levelCamera);
  const image = renderCamera(index, camera, cam);
  const hit: RayHit = { t: 0, primitive: -1, nx: 0, ny: 0, nz: 0 };
  let mismatches = 0;
  const seen = new Set<string>();
  for (let v = 0; v < cam.height; v++) {
    for (let u = 0; u < cam.width; u++) {
      const xn = (u - 160) / 200, yn = (v - 120) / 200;
      const dx = camera[0] * xn + camera[1] * yn + camera[2];
      const dy = camera[4] * xn + camera[5] * yn + camera[6];
      const dz = camera[8] * xn + camera[9] * yn + camera[10];
      let expected = 'sky';
      if (intersectRay(index, camera[3], camera[7], camera[11], dx, dy, dz, 1e4, hit)) {
        if (hit.primitive < 0) expected = hit.t < 150 ? 'ground' : 'far ground';
        else expected = primitives[hit.primitive].color === RED ? 'red' : primitives[hit.primitive].color === GREEN ? 'green' : 'yellow';
      }
      if (expected === 'far ground') continue; // hazed into the horizon colour
      seen.add(expected);
      const colour = pixel(image, u, v);
      const classified = isRed(colour) ? 'red' : isGreen(colour) ? 'green' : isYellow(colour) ? 'yellow' : isSky(colour) ? 'sky' : isGround(colour) ? 'ground' : 'other';
      if (classified !== expected) mismatches++;
    }
  }
  assert.deepEqual([...seen].sort(), ['green', 'ground', 'red', 'sky', 'yellow']);
  // Both sample the same pixel-centre rays, so only float ties on exact edges could differ.
  assert.ok(mismatches <= 10, `${mismatches} pixels disagree with the ray cast`);
});

test('renderCamera: a box enclosing the camera leaves the image as without it; out buffer is reused', () => {
  const other = box(10, 0, 1.5, 2, 2, 2, RED);
  const plain = renderCamera(new SceneIndex(sceneOf([other])), levelCamera, cam);
  const out = new Uint8Array(cam.width * cam.height * 3);
  const result = renderCamera(new SceneIndex(sceneOf([box(0, 0, 1.5, 4, 2, 1.5, GREEN), other])), levelCamera, cam, out);
  assert.equal(result, out);
  assert.deepEqual(out, plain);
  assert.throws(() => renderCamera(new SceneIndex(sceneOf([])), levelCamera, cam, new Uint8Array(10)),
    (e: unknown) => e instanceof CameraModelError && e.field === 'out');
});
