import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { identity, poseToMatrix, type Mat4 } from '../../src/geometry/index.ts';
import { FusionInputError, maxFuse, warpToEgo } from '../../src/fusion/index.ts';
import type { BevGrid } from '../../src/perception/index.ts';

// 8 x 8 feature map of 0.8 m cells (0.4 m pillars, stride 2) centred on the agent: x, y ∈ [−3.2, 3.2).
const grid: BevGrid = { xMin: -3.2, xMax: 3.2, yMin: -3.2, yMax: 3.2, zMin: -3, zMax: 1, cellSize: 0.4, featureStride: 2, channels: 2 };
const N = 8, S = 0.8, C = 2, PLANE = N * N;

/** Channel 0: 10·row + col; channel 1: −(10·row + col) − 100 (negative, to catch any clamping at 0). */
function ramp(): Float32Array {
  const f = new Float32Array(C * PLANE);
  for (let r = 0; r < N; r++) {
    for (let c = 0; c < N; c++) {
      f[r * N + c] = 10 * r + c;
      f[PLANE + r * N + c] = -(10 * r + c) - 100;
    }
  }
  return f;
}

const at = (f: Float32Array, ch: number, r: number, c: number): number => f[ch * PLANE + r * N + c];
const rigid = (x: number, y: number, yaw: number, z = 0): Mat4 => poseToMatrix({ x, y, z, roll: 0, pitch: 0, yaw });

test('identity: the map comes back unchanged and the mask covers everything', () => {
  const src = ramp();
  const { features, mask } = warpToEgo(src, identity(), grid);
  for (let i = 0; i < src.length; i++) assert.ok(Math.abs(features[i] - src[i]) < 1e-5, `value ${i}`);
  assert.ok(mask.every((m) => m === 1));
});

test('translation by one cell along x: ego column c shows agent column c − 1; column 0 is uncovered and 0', () => {
  // The agent sits one cell ahead (+x) of the ego, so what it sees at its column c − 1 lies at the ego's column c.
  const { features, mask } = warpToEgo(ramp(), rigid(S, 0, 0), grid);
  for (let r = 0; r < N; r++) {
    assert.ok(at(features, 0, r, 0) === 0 && at(features, 1, r, 0) === 0); // −0 from 0 · negative counts as 0
    assert.equal(mask[r * N], 0);
    for (let c = 1; c < N; c++) {
      assert.ok(Math.abs(at(features, 0, r, c) - (10 * r + c - 1)) < 1e-4);
      assert.ok(Math.abs(at(features, 1, r, c) + (10 * r + c - 1) + 100) < 1e-4);
      assert.equal(mask[r * N + c], 1);
    }
  }
});

test('translation by one cell along −y: ego row r shows agent row r + 1 (rows grow with y); the top row is uncovered', () => {
  const { features, mask } = warpToEgo(ramp(), rigid(0, -S, 0), grid);
  for (let c = 0; c < N; c++) {
    for (let r = 0; r < N - 1; r++) assert.ok(Math.abs(at(features, 0, r, c) - (10 * (r + 1) + c)) < 1e-4);
    assert.ok(at(features, 0, N - 1, c) === 0);
    assert.equal(mask[(N - 1) * N + c], 0);
  }
});

test('rotation by +90° about the grid centre: out[r][c] = in[7 − c][r]; a cell ahead of the agent ends up to the ego\'s left', () => {
  const { features, mask } = warpToEgo(ramp(), rigid(0, 0, Math.PI / 2), grid);
  for (let r = 0; r < N; r++) {
    for (let c = 0; c < N; c++) {
      assert.ok(Math.abs(at(features, 0, r, c) - (10 * (7 - c) + r)) < 1e-4, `(${r}, ${c})`);
      assert.equal(mask[r * N + c], 1);
    }
  }
  // Agent cell (row 4, col 7) is at (x 2.8, y 0.4): ahead. Turned +90° it lies at (−0.4, 2.8): ego row 7, col 3.
  const hot = new Float32Array(C * PLANE);
  hot[4 * N + 7] = 1;
  const turned = warpToEgo(hot, rigid(0, 0, Math.PI / 2), grid).features;
  const where = Array.from(turned.subarray(0, PLANE)).flatMap((v, i) => (Math.abs(v) > 1e-6 ? [[Math.floor(i / N), i % N, Math.round(v * 1e6) / 1e6]] : []));
  assert.deepEqual(where, [[7, 3, 1]]);
});

test('half-cell translation averages neighbours; the edge cell blends with the zero padding yet counts as covered', () => {
  const { features, mask } = warpToEgo(ramp(), rigid(S / 2, 0, 0), grid);
  for (let r = 0; r < N; r++) {
    assert.ok(Math.abs(at(features, 0, r, 0) - 0.5 * (10 * r)) < 1e-4);
    assert.ok(Math.abs(at(features, 1, r, 0) - 0.5 * (-(10 * r) - 100)) < 1e-4);
    assert.equal(mask[r * N], 1); // the sample point sits exactly on xMin: inside
    for (let c = 1; c < N; c++) assert.ok(Math.abs(at(features, 0, r, c) - (10 * r + c - 0.5)) < 1e-4);
  }
});

test('tz, roll and pitch of agentToEgo do not change the BEV warp (only yaw, tx, ty)', () => {
  const flat = warpToEgo(ramp(), rigid(1.1, -0.3, 0.4), grid).features;
  const tilted = warpToEgo(ramp(), poseToMatrix({ x: 1.1, y: -0.3, z: 2.5, roll: 0, pitch: 0, yaw: 0.4 }), grid).features;
  assert.deepEqual(tilted, flat);
});

interface WarpCase {
  name: string;
  grid: BevGrid;
  yaw: number;
  tx: number;
  ty: number;
  shape: [number, number, number];
  features: number[];
  warped: number[];
  mask: number[];
}
const reference = JSON.parse(readFileSync(path.resolve(process.cwd(), 'test/fixtures/onnx/warp-reference.json'), 'utf8')) as { cases: WarpCase[] };

for (const ref of reference.cases) {
  test(`matches torch F.grid_sample (bilinear, zeros, align_corners=False) to 1e-5: ${ref.name} ${ref.shape.join('x')}`, () => {
    const out = new Float32Array(ref.warped.length).fill(Number.NaN);
    const outMask = new Float32Array(ref.mask.length).fill(Number.NaN);
    const result = warpToEgo(Float32Array.from(ref.features), rigid(ref.tx, ref.ty, ref.yaw, 0.7), ref.grid, out, outMask);
    assert.equal(result.features, out);
    assert.equal(result.mask, outMask);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - ref.warped[i]));
    assert.ok(worst < 1e-5, `max |difference| ${worst}`);
    assert.deepEqual(Array.from(outMask), ref.mask);
    // The cases are chosen so that part of the map is uncovered, part covered.
    assert.ok(ref.mask.includes(0) && ref.mask.includes(1));
  });
}

test('a 6-channel map (four channels per pass, then the rest) warps each channel as a 1-channel map would', () => {
  const six = new Float32Array(6 * PLANE).map((_, i) => Math.sin(i * 0.37) * 5);
  const T = rigid(-1.3, 0.45, -2.1);
  const all = warpToEgo(six, T, grid).features;
  for (let ch = 0; ch < 6; ch++) {
    const one = warpToEgo(six.slice(ch * PLANE, (ch + 1) * PLANE), T, { ...grid, channels: 1 }).features;
    assert.deepEqual(all.subarray(ch * PLANE, (ch + 1) * PLANE), one, `channel ${ch}`);
  }
});

test('a partly sent map: covered where the sent mask, warped like the features, is ≥ 0.5; resampled only there', () => {
  // Sent: a 3 × 3 block and one lone cell; the rest zeros, as the decoder leaves them.
  const sent = new Uint8Array(PLANE);
  for (let r = 2; r < 5; r++) for (let c = 2; c < 5; c++) sent[r * N + c] = 1;
  sent[7 * N + 0] = 1;
  const f = ramp();
  for (let i = 0; i < PLANE; i++) if (!sent[i]) f[i] = f[PLANE + i] = 0;
  for (const T of [identity(), rigid(S, 0, 0), rigid(0.3, -0.5, 0.4), rigid(-1.3, 0.45, -2.1)]) {
    const dense = warpToEgo(f, T, grid);
    const sentWarped = warpToEgo(Float32Array.from(sent), T, { ...grid, channels: 1 }).features;
    const out = new Float32Array(C * PLANE).fill(7); // stale values must not survive
    const partly = warpToEgo(f, T, grid, out, undefined, sent);
    for (let i = 0; i < PLANE; i++) {
      const covered = dense.mask[i] > 0 && sentWarped[i] >= 0.5;
      assert.equal(partly.mask[i], covered ? 1 : 0, `cell ${i}`);
      for (let ch = 0; ch < C; ch++) assert.equal(partly.features[ch * PLANE + i], covered ? dense.features[ch * PLANE + i] : 0, `cell ${i} channel ${ch}`);
    }
  }
  // By hand: one cell ahead (+x), the block's cells (r, 2..4) land on (r, 3..5); the lone corner cell (7, 0) on (7, 1).
  const ahead = warpToEgo(f, rigid(S, 0, 0), grid, undefined, undefined, sent);
  const covered = [...ahead.mask.keys()].filter((i) => ahead.mask[i] === 1);
  assert.deepEqual(covered, [2 * N + 3, 2 * N + 4, 2 * N + 5, 3 * N + 3, 3 * N + 4, 3 * N + 5, 4 * N + 3, 4 * N + 4, 4 * N + 5, 7 * N + 1]);
  assert.equal(at(ahead.features, 0, 3, 4), 10 * 3 + 3);
  assert.throws(() => warpToEgo(f, identity(), grid, undefined, undefined, new Uint8Array(3)), /sent.length/);
});

test('maxFuse over a collaborator covering a few cells equals the per-cell definition', () => {
  const ego = new Float32Array(C * PLANE).map((_, i) => Math.cos(i));
  const other = new Float32Array(C * PLANE).map((_, i) => Math.sin(i * 1.7) * 2);
  const mask = new Float32Array(PLANE);
  for (const cell of [0, 9, 33, 63]) mask[cell] = 1;
  const fused = maxFuse([ego, other], [null, mask]);
  for (let i = 0; i < C * PLANE; i++) assert.equal(fused[i], mask[i % PLANE] ? Math.max(ego[i], other[i]) : ego[i], `value ${i}`);
});

test('warpToEgo refuses buffers of the wrong size and in-place warping', () => {
  assert.throws(() => warpToEgo(new Float32Array(PLANE * C + 1), identity(), grid), FusionInputError);
  assert.throws(() => warpToEgo(ramp(), identity(), grid, new Float32Array(PLANE)), /out.length/);
  assert.throws(() => warpToEgo(ramp(), identity(), grid, undefined, new Float32Array(3)), /outMask.length/);
  const f = ramp();
  assert.throws(() => warpToEgo(f, identity(), grid, f), /must not be the input/);
});

test('maxFuse: per cell, the max over the agents that cover it; negatives survive; uncovered cells are 0', () => {
  // 2 channels x 1 x 3 cells.
  const ego = Float32Array.from([1, -5, 0, /* ch1 */ -2, -1, 0]);
  const agentA = Float32Array.from([3, -4, 7, /* ch1 */ -3, -0.5, 9]);
  const agentB = Float32Array.from([9, 9, 9, /* ch1 */ 9, 9, 9]);
  const fused = maxFuse([ego, agentA, agentB], [null, Float32Array.from([1, 1, 0]), Float32Array.from([0, 0, 0])]);
  // Cell 2: agent A does not cover it (its 7 / 9 are ignored) and agent B covers nothing.
  assert.deepEqual(Array.from(fused), [3, -4, 0, -2, -0.5, 0]);
  // Without the ego, cells nobody covers are 0, and a covered all-negative cell keeps its negative max.
  const out = new Float32Array(6).fill(Number.NaN);
  assert.equal(maxFuse([agentA], [Float32Array.from([0, 1, 0])], out), out);
  assert.deepEqual(Array.from(out), [0, -4, 0, 0, -0.5, 0]);
  assert.throws(() => maxFuse([ego, agentA], [null]), /masks.length/);
  assert.throws(() => maxFuse([ego, new Float32Array(4)], [null, null]), /features\[1\]/);
});

test('warp then maxFuse: a collaborator one cell ahead extends the ego map by one column', () => {
  const ego = ramp();
  const agentToEgo = rigid(S, 0, 0);
  const agentMap = new Float32Array(C * PLANE).fill(1000);
  const warped = warpToEgo(agentMap, agentToEgo, grid);
  const fused = maxFuse([ego, warped.features], [null, warped.mask]);
  for (let r = 0; r < N; r++) {
    assert.equal(at(fused, 0, r, 0), 10 * r); // only the ego covers column 0
    assert.equal(at(fused, 1, r, 0), -(10 * r) - 100);
    for (let c = 1; c < N; c++) assert.ok(Math.abs(at(fused, 0, r, c) - 1000) < 1e-3);
  }
});
