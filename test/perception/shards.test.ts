import { toFloat16Bits as float16Bits } from '../../src/codec/index.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { type Box7, poseToMatrix } from '../../src/geometry/index.ts';
import type { AgentFrame, CooperativeFrame, CooperativeSequence, Dataset, GroundTruthBox, ObjectClass } from '../../src/datasets/index.ts';
import {
  DEFAULT_BEV_GRID,
  PILLAR_FEATURE_COUNT,
  Pillarizer,
  ShardExportError,
  exportTrainingShards,
  type ShardArray,
  type ShardIndex,
  type ShardSample,
} from '../../src/perception/index.ts';
import { registerExportTraining } from '../../src/cli/export-training.ts';

// binary16 → number, written from the IEEE 754 definition (independent of the encoder under test).
function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

test('float16Bits: exact values, rounding to nearest even, subnormals, overflow', () => {
  assert.equal(float16Bits(0), 0x0000);
  assert.equal(float16Bits(-0), 0x8000);
  assert.equal(float16Bits(1), 0x3c00);
  assert.equal(float16Bits(-2), 0xc000);
  assert.equal(float16Bits(0.5), 0x3800);
  assert.equal(float16Bits(65504), 0x7bff); // largest finite half
  assert.equal(float16Bits(65520), 0x7c00); // rounds up to infinity
  assert.equal(float16Bits(1e6), 0x7c00);
  assert.equal(float16Bits(-Infinity), 0xfc00);
  assert.ok((float16Bits(NaN) & 0x7c00) === 0x7c00 && (float16Bits(NaN) & 0x3ff) !== 0);
  assert.equal(float16Bits(2 ** -24), 0x0001); // smallest subnormal
  assert.equal(float16Bits(2 ** -25), 0x0000); // halfway to 0: ties to even (0)
  assert.equal(float16Bits(3 * 2 ** -25), 0x0002); // halfway between 1 and 2 subnormal units: even (2)
  assert.equal(float16Bits(2 ** -14), 0x0400); // smallest normal
  // 1 + 2^-11 is exactly halfway between 1 and 1 + 2^-10: ties to even keeps 1; 1 + 3·2^-11 rounds up to 1 + 2^-9.
  assert.equal(float16Bits(1 + 2 ** -11), 0x3c00);
  assert.equal(float16Bits(1 + 3 * 2 ** -11), 0x3c02);
  // 51.1 lies in [32, 64) where the spacing is 2^-5: the nearest half is 51.09375.
  assert.equal(halfToNumber(float16Bits(51.1)), 51.09375);
  // Round trip of every finite half pattern.
  for (let b = 0; b < 0x7c00; b++) assert.equal(float16Bits(halfToNumber(b)), b);
});

// ----------------------------------------------------------------------------------------------------------------
// A synthetic dataset. World frame: the ego 'e' at (10, 20, 1.9) facing +x; the collaborator 'c' at (30, 20, 1.9)
// facing +y (yaw 90°); 'far' at (110, 20, 1.9), 100 m from the ego and 80 m from 'c' (outside the 70 m range).
// c → ego by hand: a point (xc, yc) of c's frame is world (30 − yc, 20 + xc), i.e. ego (20 − yc, xc):
//   agent_to_ego(c → e) = [[0, −1, 0, 20], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]].

const LIDAR_Z = 1.9;
const POSES = {
  e: { x: 10, y: 20, z: LIDAR_Z, roll: 0, pitch: 0, yaw: 0 },
  c: { x: 30, y: 20, z: LIDAR_Z, roll: 0, pitch: 0, yaw: Math.PI / 2 },
  far: { x: 110, y: 20, z: LIDAR_Z, roll: 0, pitch: 0, yaw: 0 },
};

const worldBox = (id: string, cls: ObjectClass, x: number, y: number, yaw: number, l = 4, w = 2, h = 1.6): GroundTruthBox => {
  const box: Box7 = { x, y, z: h / 2, l, w, h, yaw };
  return { id, cls, rawClass: cls, box };
};

// Ego points: two in one pillar near (1.1, 1.1), one in another pillar, one outside the grid, and three inside
// vehicle '1' (ego (15, 2), z −1.9 .. −0.3).
const EGO_POINTS = new Float32Array([
  1.05, 1.05, -1.0, 0.5,
  1.15, 1.15, -1.5, 0.25,
  -10.1, 5.3, -2.0, 1.0,
  60, 0, 0, 0.1,
  15, 2, -1, 0.3,
  15.5, 2.2, -1.2, 0.3,
  14.8, 1.7, -0.8, 0.3,
]);
// Collaborator points: one inside vehicle '1' (c frame (2, 5): see agentToEgo above), one elsewhere.
const COLLAB_POINTS = new Float32Array([2, 5, -1.1, 0.7, -3.3, 7.7, -1.7, 0.9]);
// The roadside unit: a point at z −1 (in range) and one at −5 (below the grid's z −3 unless shifted up).
const FAR_POINTS = new Float32Array([5, 5, -1, 0.2, 6, 6, -5, 0.4]);

function agentFrame(agentId: keyof typeof POSES, points: Float32Array, boxes: GroundTruthBox[], ts: bigint): AgentFrame {
  return {
    agentId,
    kind: agentId === 'far' ? 'rsu' : 'vehicle',
    timestampNs: ts,
    lidarToWorld: poseToMatrix(POSES[agentId]),
    lidarPath: `/synthetic/${agentId}.pcd`,
    loadPoints: async () => points,
    cameras: [],
    boxes,
  };
}

function syntheticDataset(): Dataset {
  const frames: CooperativeFrame[] = [
    {
      frameId: '000010',
      index: 0,
      timestampNs: 1_000_000_000n,
      agents: [
        agentFrame('e', EGO_POINTS, [worldBox('c', 'vehicle', 30, 20, Math.PI / 2), worldBox('2', 'pedestrian', 10, 15, 0.3, 0.6, 0.6, 1.8), worldBox('9', 'vehicle', 70, 20, 0)], 1_000_000_000n),
        agentFrame('c', COLLAB_POINTS, [worldBox('1', 'vehicle', 25, 22, 0), worldBox('e', 'vehicle', 10, 20, 0)], 1_000_000_000n),
        // A box around the RSU's z −5 point: world (116, 26, 1.9 − 5).
        agentFrame('far', FAR_POINTS, [{ id: 'low', cls: 'other', rawClass: 'other', box: { x: 116, y: 26, z: LIDAR_Z - 5, l: 1, w: 1, h: 1, yaw: 0 } }], 1_000_000_000n),
      ],
    },
    // The ego alone.
    { frameId: '000011', index: 1, timestampNs: 1_100_000_000n, agents: [agentFrame('e', EGO_POINTS, [], 1_100_000_000n)] },
  ];
  const sequence: CooperativeSequence = {
    format: 'opv2v',
    name: 'synthetic',
    root: '/synthetic',
    agents: [
      { id: 'e', kind: 'vehicle', frames: 2 },
      { id: 'c', kind: 'vehicle', frames: 1 },
      { id: 'far', kind: 'rsu', frames: 1 },
    ],
    frameCount: frames.length,
    frameIds: frames.map((f) => f.frameId),
    frame: async (i) => frames[i],
    async *frames() {
      yield* frames;
    },
  };
  return { format: 'opv2v', root: '/synthetic', scenarios: [sequence], warnings: [] };
}

// ----------------------------------------------------------------------------------------------------------------
// A reader written against the documented format, as tools/train/data.py reads it.

async function readIndex(dir: string): Promise<ShardIndex> {
  return JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as ShardIndex;
}

function arrayOf(sample: ShardSample, name: string): ShardArray {
  const a = sample.arrays.find((x) => x.name === name);
  assert.ok(a, `sample ${sample.frameId}/${sample.ego} has no array ${name} (has ${sample.arrays.map((x) => x.name).join(', ')})`);
  return a;
}

function view(file: Buffer, a: ShardArray): number[] {
  assert.equal(a.offset % 16, 0, `${a.name} offset is 16-byte aligned`);
  const count = a.shape.reduce((x, y) => x * y, 1);
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    switch (a.dtype) {
      case 'float16': out.push(halfToNumber(file.readUInt16LE(a.offset + 2 * i))); break;
      case 'float32': out.push(file.readFloatLE(a.offset + 4 * i)); break;
      case 'int8': out.push(file.readInt8(a.offset + i)); break;
      case 'uint8': out.push(file.readUInt8(a.offset + i)); break;
      case 'int16': out.push(file.readInt16LE(a.offset + 2 * i)); break;
      case 'int32': out.push(file.readInt32LE(a.offset + 4 * i)); break;
    }
  }
  assert.equal(a.byteLength, count * { float16: 2, float32: 4, int8: 1, uint8: 1, int16: 2, int32: 4 }[a.dtype]);
  return out;
}

/** The agent's pillars as the Pillarizer gives them, unpacked from the shard to [P][n][F]. */
function unpackPillars(file: Buffer, sample: ShardSample, k: number): { coords: number[]; numPoints: number[]; points: number[][][] } {
  const numPoints = view(file, arrayOf(sample, `num_points_${k}`));
  const coords = view(file, arrayOf(sample, `coords_${k}`));
  const flat = view(file, arrayOf(sample, `points_${k}`));
  const points: number[][][] = [];
  let row = 0;
  for (const n of numPoints) {
    const pillar: number[][] = [];
    for (let i = 0; i < n; i++, row++) pillar.push(flat.slice(row * PILLAR_FEATURE_COUNT, (row + 1) * PILLAR_FEATURE_COUNT));
    points.push(pillar);
  }
  assert.equal(row * PILLAR_FEATURE_COUNT, flat.length, 'packed rows = sum of num_points');
  return { coords, numPoints, points };
}

/** Half-precision tolerance: half a unit in the last place of a binary16 (11 significant bits). */
const halfClose = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= Math.max(Math.abs(expected) * 2 ** -11, 2 ** -25), `${what}: ${actual} vs ${expected}`);

function assertMatchesPillarizer(file: Buffer, sample: ShardSample, k: number, cloud: Float32Array): void {
  const batch = new Pillarizer(DEFAULT_BEV_GRID, { maxPillars: 64 }).pillarize(cloud);
  const got = unpackPillars(file, sample, k);
  assert.equal(got.numPoints.length, batch.pillarCount, `agent ${k}: pillar count`);
  assert.deepEqual(got.coords, Array.from(batch.coords.subarray(0, 2 * batch.pillarCount)), `agent ${k}: coords bit-exact`);
  assert.deepEqual(got.numPoints, Array.from(batch.numPoints.subarray(0, batch.pillarCount)), `agent ${k}: num_points`);
  for (let p = 0; p < batch.pillarCount; p++) {
    for (let i = 0; i < batch.numPoints[p]; i++) {
      for (let f = 0; f < PILLAR_FEATURE_COUNT; f++) {
        halfClose(got.points[p][i][f], batch.features[(p * batch.maxPointsPerPillar + i) * PILLAR_FEATURE_COUNT + f], `agent ${k} pillar ${p} point ${i} feature ${f}`);
      }
    }
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'v2xfuse-shards-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('export --ego all: samples, agents within range, pillars, transforms and ground truth as written', async () => {
  await withTempDir(async (dir) => {
    const progress: number[] = [];
    const summary = await exportTrainingShards(syntheticDataset(), dir, { ego: 'all', maxPillars: 64, onProgress: (d) => progress.push(d) });
    assert.deepEqual(progress, [1, 2]);
    const index = await readIndex(dir);
    assert.equal(index.format, 'v2xfuse-training-shards');
    assert.deepEqual(index.pillar.features.length, PILLAR_FEATURE_COUNT);
    assert.equal(index.pillar.maxPointsPerPillar, 32);
    assert.deepEqual(index.classes, ['vehicle', 'pedestrian', 'cyclist', 'other']);
    assert.equal(index.grid.xMin, -51.2);
    // Frame 10: three egos; frame 11: the ego alone.
    assert.deepEqual(index.samples.map((s) => `${s.frameId}/${s.ego}`), ['000010/e', '000010/c', '000010/far', '000011/e']);
    assert.equal(summary.samples, 4);
    assert.equal(summary.frames, 2);
    const [se, sc, sfar, s11] = index.samples;
    // 'far' is 100 m from e and 80 m from c: alone in its own sample, absent from theirs.
    assert.deepEqual(se.agents.map((a) => a.id), ['e', 'c']);
    assert.deepEqual(sc.agents.map((a) => a.id), ['c', 'e']);
    assert.deepEqual(sfar.agents.map((a) => a.id), ['far']);
    assert.equal(se.agents[1].distanceM, 20);
    assert.equal(sfar.agents[0].kind, 'rsu');
    assert.equal(sfar.agents[0].points, 1);
    assert.equal(sfar.agents[0].zOffsetM, 0);
    // Its box holds one raw point, but below the grid's z range: not counted as seen.
    assert.deepEqual(sfar.gtIds, ['low']);
    assert.deepEqual(view(await readFile(path.join(dir, sfar.file)), arrayOf(sfar, 'gt_points')), [0]);
    assert.deepEqual(view(await readFile(path.join(dir, sfar.file)), arrayOf(sfar, 'gt_classes')), [3]);
    // One file per frame; an agent's pillars are stored once and shared by every sample of the frame.
    assert.equal(se.file, sc.file);
    assert.notEqual(se.file, s11.file);
    assert.deepEqual({ ...arrayOf(se, 'points_0'), name: '' }, { ...arrayOf(sc, 'points_1'), name: '' });

    const file = await readFile(path.join(dir, se.file));
    // Pillars: the Pillarizer's output, through float16 and back.
    assertMatchesPillarizer(file, se, 0, EGO_POINTS);
    assertMatchesPillarizer(file, se, 1, COLLAB_POINTS);
    assertMatchesPillarizer(file, sc, 1, EGO_POINTS);
    // And by hand for the ego's first pillar: cell (row, col) = floor((1.05 + 51.2) / 0.4) = 130; mean of its two
    // points (1.1, 1.1, −1.25); cell centre (1.0, 1.0); pillar z centre −1.
    const ego = unpackPillars(file, se, 0);
    assert.deepEqual(ego.coords.slice(0, 2), [130, 130]);
    // The three points in vehicle '1' fall in three different cells.
    assert.deepEqual(ego.numPoints, [2, 1, 1, 1, 1]);
    const expectFirst = [1.05, 1.05, -1.0, 0.5, -0.05, -0.05, 0.25, 0.05, 0.05, 0];
    expectFirst.forEach((v, f) => assert.ok(Math.abs(ego.points[0][0][f] - v) < 1e-3, `feature ${f}: ${ego.points[0][0][f]} vs ${v}`));
    assert.equal(se.agents[0].inputPoints, 7);
    assert.equal(se.agents[0].droppedPoints, 1); // (60, 0) is outside the grid
    assert.equal(se.agents[0].points, 6);

    // agent_to_ego: identity for the ego; c → e and e → c by hand (float32 of exact small integers: bit-exact).
    assert.deepEqual(view(file, arrayOf(se, 'agent_to_ego_0')), [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    const cToE = view(file, arrayOf(se, 'agent_to_ego_1'));
    [0, -1, 0, 20, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1].forEach((v, i) => assert.ok(Math.abs(cToE[i] - v) < 1e-6, `c→e[${i}] ${cToE[i]}`));
    // e → c: the inverse: a point (xe, ye) of the ego frame is c-frame (ye, 20 − xe).
    const eToC = view(file, arrayOf(sc, 'agent_to_ego_1'));
    [0, 1, 0, 0, -1, 0, 0, 20, 0, 0, 1, 0, 0, 0, 0, 1].forEach((v, i) => assert.ok(Math.abs(eToC[i] - v) < 1e-6, `e→c[${i}] ${eToC[i]}`));

    // Ground truth of ego e: c's vehicle '1' (world (25, 22) → ego (15, 2)), the collaborator 'c' itself (ego
    // (20, 0), heading 90°), the pedestrian '2' (ego (0, −5)); '9' at ego x = 60 is outside the grid; 'e' (the
    // ego's own box) is dropped. z: centre 0.8 m above the road, LiDAR 1.9 m → −1.1.
    assert.deepEqual(se.gtIds, ['c', '2', '1']);
    assert.equal(se.gtCount, 3);
    const boxes = view(file, arrayOf(se, 'gt_boxes'));
    assert.deepEqual(arrayOf(se, 'gt_boxes').shape, [3, 7]);
    const expected = [
      [20, 0, -1.1, 4, 2, 1.6, Math.PI / 2],
      [0, -5, 0.9 - LIDAR_Z, 0.6, 0.6, 1.8, 0.3],
      [15, 2, -1.1, 4, 2, 1.6, 0],
    ];
    expected.flat().forEach((v, i) => assert.ok(Math.abs(boxes[i] - v) < 1e-5, `gt_boxes[${i}]: ${boxes[i]} vs ${v}`));
    assert.deepEqual(view(file, arrayOf(se, 'gt_classes')), [0, 1, 0]);
    // gt_points [G, K]: box '1' holds three ego points and one of c's; nobody has points on 'c' or '2'. (The ego's
    // point at (60, 0) lies outside the grid and would not count anyway.)
    assert.deepEqual(arrayOf(se, 'gt_points').shape, [3, 2]);
    assert.deepEqual(view(file, arrayOf(se, 'gt_points')), [0, 0, 0, 0, 3, 1]);

    // Ego c: its own box (listed by e) is dropped; '1' at c-frame (2, 5), yaw −90°; vehicle 'e' at c-frame (0, 20);
    // '9' (world (70, 20)) is c-frame (0, −40): inside c's grid though outside e's.
    const cFile = await readFile(path.join(dir, sc.file));
    assert.deepEqual(sc.gtIds, ['1', 'e', '2', '9']);
    const cBoxes = view(cFile, arrayOf(sc, 'gt_boxes'));
    const one = sc.gtIds.indexOf('1');
    [2, 5, -1.1, 4, 2, 1.6, -Math.PI / 2].forEach((v, i) => assert.ok(Math.abs(cBoxes[one * 7 + i] - v) < 1e-5, `c sample box '1'[${i}]: ${cBoxes[one * 7 + i]}`));
    const eBox = sc.gtIds.indexOf('e');
    assert.ok(Math.abs(cBoxes[eBox * 7] - 0) < 1e-5 && Math.abs(cBoxes[eBox * 7 + 1] - 20) < 1e-5);

    // The lone-ego frame: one agent, no boxes (shape [0, 7]).
    assert.deepEqual(s11.agents.map((a) => a.id), ['e']);
    assert.deepEqual(arrayOf(s11, 'gt_boxes').shape, [0, 7]);
    assert.deepEqual(arrayOf(s11, 'gt_points').shape, [0, 1]);
  });
});

test("export --ego first / an id / a missing id; an existing export is kept unless overwrite", async () => {
  await withTempDir(async (dir) => {
    const first = await exportTrainingShards(syntheticDataset(), dir, { ego: 'first', maxPillars: 64 });
    assert.equal(first.samples, 2);
    assert.deepEqual((await readIndex(dir)).samples.map((s) => s.ego), ['e', 'e']);
    await assert.rejects(exportTrainingShards(syntheticDataset(), dir, { ego: 'c' }), (e: unknown) => e instanceof ShardExportError && /--overwrite/.test(e.message));
    const byId = await exportTrainingShards(syntheticDataset(), dir, { ego: 'c', maxPillars: 64, overwrite: true });
    assert.equal(byId.samples, 1);
    assert.equal(byId.framesWithoutEgo, 1);
    assert.deepEqual((await readIndex(dir)).samples.map((s) => `${s.frameId}/${s.ego}`), ['000010/c']);
    // Narrower communication range: c alone.
    await exportTrainingShards(syntheticDataset(), dir, { ego: 'c', commRangeM: 10, maxPillars: 64, overwrite: true });
    assert.deepEqual((await readIndex(dir)).samples[0].agents.map((a) => a.id), ['c']);
    // A roadside LiDAR shifted up by 4.1 m: its z −5 point enters the grid at −0.9, the z −1 one leaves it.
    await exportTrainingShards(syntheticDataset(), dir, { ego: 'far', zOffsetByKind: { rsu: 4.1 }, maxPillars: 64, overwrite: true });
    const shifted = await readIndex(dir);
    assert.deepEqual(shifted.zOffsetByKind, { rsu: 4.1 });
    const rsu = shifted.samples[0];
    assert.equal(rsu.agents[0].zOffsetM, 4.1);
    assert.equal(rsu.agents[0].points, 1);
    const rsuFile = await readFile(path.join(dir, rsu.file));
    // Shifted into range, the point inside box 'low' now counts.
    assert.deepEqual(view(rsuFile, arrayOf(rsu, 'gt_points')), [1]);
    const rsuPillars = unpackPillars(rsuFile, rsu, 0);
    halfClose(rsuPillars.points[0][0][2], Math.fround(-5 + 4.1), 'shifted z');
    halfClose(rsuPillars.points[0][0][0], 6, 'x unchanged');
    await assert.rejects(exportTrainingShards(syntheticDataset(), dir, { ego: 'nobody', overwrite: true }), (e: unknown) => e instanceof ShardExportError && /no agent 'nobody'/.test(e.message));
  });
});

test('export-training command on the real DAIR-V2X-C example: vehicle and infrastructure samples', async () => {
  const dair = path.resolve(process.cwd(), '../shared/data/dair-v2x-c-example/cooperative-vehicle-infrastructure');
  await withTempDir(async (dir) => {
    const program = new Command().exitOverride();
    registerExportTraining(program);
    const written: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stdout.write;
    try {
      await program.parseAsync(['export-training', dair, '--out', dir, '--ego', 'all', '--skip-missing', '--json'], { from: 'user' });
    } finally {
      process.stdout.write = write;
    }
    assert.equal(process.exitCode ?? 0, 0);
    const summary = JSON.parse(written.join(''));
    // 10 cooperative pairs, each agent an ego in turn.
    assert.equal(summary.samples, 20);
    const index = await readIndex(dir);
    assert.equal(index.dataset.format, 'dair-v2x-c');
    for (const s of index.samples) {
      const file = await readFile(path.join(dir, s.file));
      assert.equal(s.agents.length, 2, 'vehicle and infrastructure are within 70 m of each other');
      // Tens of thousands of real points make thousands of pillars; every coord lies on the 256 × 256 grid.
      const coords = view(file, arrayOf(s, 'coords_0'));
      assert.ok(s.agents[0].pillars > 1000, `${s.frameId}/${s.ego}: ${s.agents[0].pillars} pillars`);
      assert.ok(coords.every((c) => c >= 0 && c < 256));
      // The two samples of a pair hold inverse transforms.
      const m = view(file, arrayOf(s, 'agent_to_ego_1'));
      const other = index.samples.find((o) => o.file === s.file && o.ego !== s.ego)!;
      const n = view(file, arrayOf(other, 'agent_to_ego_1'));
      for (let r = 0; r < 3; r++) {
        for (let c = 0; c < 4; c++) {
          const prod = [0, 1, 2, 3].reduce((acc, j) => acc + m[r * 4 + j] * n[j * 4 + c], 0);
          assert.ok(Math.abs(prod - (r === c ? 1 : 0)) < 1e-3, `${s.frameId}: m·n[${r},${c}] = ${prod}`);
        }
      }
      // Real labels: cars around the vehicle; all inside the grid's x/y range.
      const boxes = view(file, arrayOf(s, 'gt_boxes'));
      for (let g = 0; g < s.gtCount; g++) assert.ok(Math.abs(boxes[g * 7]) < 51.2 && Math.abs(boxes[g * 7 + 1]) < 51.2);
    }
    assert.ok(index.samples.reduce((n, s) => n + s.gtCount, 0) > 100);
  });
});
