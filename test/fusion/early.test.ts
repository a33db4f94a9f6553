import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { openDataset } from '../../src/datasets/index.ts';
import { identity, poseToMatrix, relativeTransform, transformPoints } from '../../src/geometry/index.ts';
import { DEFAULT_BEV_GRID, type PerceptionModels, featureShape } from '../../src/perception/index.ts';
import { CooperativeDetector, DEFAULT_POINT_CODEC, FusionInputError, mergePointClouds, mergedLength } from '../../src/fusion/index.ts';

const projectRoot = resolve(import.meta.dirname, '../..');

test('mergePointClouds: ego points first and unchanged, a sender\'s points moved into the ego frame, intensity kept', () => {
  const ego = new Float32Array([1, 2, 3, 0.25, -4, 5, -1, 1]);
  // Sender 10 m ahead and 5 m left of the ego, 2 m higher, turned 90° left: its +x is the ego's +y.
  const senderToEgo = poseToMatrix({ x: 10, y: 5, z: 2, roll: 0, pitch: 0, yaw: Math.PI / 2 });
  const sender = new Float32Array([1, 0, 0, 0.7, 0, 2, -1.5, 0]);
  const merged = mergePointClouds(ego, [{ points: sender, senderToEgo }]);
  assert.equal(merged.length, 16);
  assert.deepEqual(Array.from(merged.subarray(0, 8)), Array.from(ego));
  const near = (got: ArrayLike<number>, want: number[]) =>
    want.forEach((w, i) => assert.ok(Math.abs(got[i] - w) < 1e-5, `value ${i}: ${got[i]} vs ${w}`));
  // (1, 0, 0) → (10, 6, 2); (0, 2, −1.5) → (10 − 2, 5, 0.5).
  near(merged.subarray(8), [10, 6, 2, 0.7, 8, 5, 0.5, 0]);
  assert.equal(merged[11], Math.fround(0.7), 'intensity copied bit for bit');
});

test('mergePointClouds agrees with geometry.transformPoints for a general pose, over several senders', () => {
  const rand = (() => {
    let s = 12345;
    return () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 100 - 50;
  })();
  const cloud = (n: number) => Float32Array.from({ length: 4 * n }, (_, i) => (i % 4 === 3 ? Math.abs(rand()) / 50 : rand()));
  const a = cloud(50), b = cloud(30), ego = cloud(20);
  const egoToWorld = poseToMatrix({ x: 3, y: -7, z: 1.9, roll: 0.01, pitch: -0.02, yaw: 2.5 });
  const aToEgo = relativeTransform(poseToMatrix({ x: 40, y: 12, z: 1.7, roll: 0, pitch: 0.03, yaw: -1.2 }), egoToWorld);
  const bToEgo = relativeTransform(poseToMatrix({ x: -20, y: 30, z: 7, roll: 0, pitch: 0, yaw: 0.4 }), egoToWorld);
  const merged = mergePointClouds(ego, [{ points: a, senderToEgo: aToEgo }, { points: b, senderToEgo: bToEgo }]);
  const want = new Float32Array([...ego, ...transformPoints(aToEgo, a), ...transformPoints(bToEgo, b)]);
  assert.deepEqual(merged, want);
});

test('mergePointClouds reuses the caller\'s buffer across frames and refuses a short one or broken input', () => {
  const out = new Float32Array(64).fill(-99);
  const first = mergePointClouds(new Float32Array([1, 1, 1, 1]), [{ points: new Float32Array([2, 2, 2, 0.5]), senderToEgo: identity() }], out);
  assert.equal(first.buffer, out.buffer, 'no new array');
  assert.equal(first.byteOffset, 0);
  assert.equal(first.length, 8);
  assert.deepEqual(Array.from(out.subarray(0, 9)), [1, 1, 1, 1, 2, 2, 2, 0.5, -99]);
  // The next, bigger frame overwrites the same memory.
  const ego2 = new Float32Array(12).fill(3);
  const second = mergePointClouds(ego2, [{ points: new Float32Array(8).fill(4), senderToEgo: identity() }], out);
  assert.equal(second.buffer, out.buffer);
  assert.equal(second.length, 20);
  assert.equal(mergedLength(ego2, [{ points: new Float32Array(8), senderToEgo: identity() }]), 20);
  assert.deepEqual(Array.from(out.subarray(10, 21)), [3, 3, 4, 4, 4, 4, 4, 4, 4, 4, -99]);

  assert.throws(() => mergePointClouds(new Float32Array(40), [{ points: new Float32Array(40), senderToEgo: identity() }], out), (e: FusionInputError) => e.field === 'out.length');
  assert.throws(() => mergePointClouds(new Float32Array(6), []), (e: FusionInputError) => e.field === 'ego.length');
  assert.throws(() => mergePointClouds(new Float32Array(4), [{ points: new Float32Array(4), senderToEgo: new Float64Array(12) }]), /senderToEgo/);
  assert.throws(() => mergePointClouds(new Float32Array(4), [{ points: out.subarray(40, 44), senderToEgo: identity() }], out), /share memory/);
});

// Stand-in models whose encoder records the cloud it is given: what is checked is what reaches the encoder.
function recordingModels(seen: Float32Array[]): PerceptionModels {
  const [C, H, W] = featureShape(DEFAULT_BEV_GRID);
  const lidar = {
    encode: async (points: Float32Array, opts: { out?: Float32Array } = {}) => {
      seen.push(points.slice());
      return { features: opts.out ?? new Float32Array(C * H * W), pillars: { droppedPillars: 0 }, timings: { pfn: 1 } };
    },
  };
  const head = { detect: async () => ({ detections: [], timings: { head: 1 } }) };
  return {
    manifest: { source: 'stub', modelId: 'stub', postprocess: { nmsIouThreshold: 0.15 }, pillar: { maxPointsPerPillar: 32, maxPillars: 1 << 20 } },
    grid: DEFAULT_BEV_GRID,
    lidar,
    head,
  } as unknown as PerceptionModels;
}

test('CooperativeDetector early: every agent\'s points pass the 1cm codec and reach one encoder pass in the ego frame', async () => {
  const ds = await openDataset(resolve(projectRoot, 'datasets/fixture/fixture-s1'));
  const frame = await ds.scenarios[0].frame(0);
  const seen: Float32Array[] = [];
  const detector = new CooperativeDetector(recordingModels(seen), 'early');
  const r = await detector.detectFrame(frame, frame.agents[0].agentId);
  assert.equal(DEFAULT_POINT_CODEC, '1cm+deflate');
  assert.deepEqual(r.agents, frame.agents.map((a) => a.agentId));
  assert.equal(seen.length, 1, 'one encoder pass over the merged cloud');
  assert.ok('pointCodec' in r.timings && 'merge' in r.timings);

  const merged = seen[0];
  const egoToWorld = frame.agents[0].lidarToWorld;
  let at = 0;
  // 1 cm steps: each coordinate within half a step (plus float32 rounding); a rigid transform keeps the error's norm.
  const tolerance = 0.005 * Math.sqrt(3) + 1e-4;
  for (const agent of frame.agents) {
    const raw = await agent.loadPoints();
    const n = raw.length / 4;
    // 1cm+deflate: far below the 16 bytes per point of the float32 cloud, far above a bare header.
    assert.ok(r.bytes![agent.agentId] > n && r.bytes![agent.agentId] < 8 * n, `${agent.agentId}: ${r.bytes![agent.agentId]} bytes for ${n} points`);
    const expected = transformPoints(relativeTransform(agent.lidarToWorld, egoToWorld), raw);
    let worst = 0;
    for (let p = 0; p < n; p++, at += 4) {
      const o = 4 * p;
      const d = Math.hypot(merged[at] - expected[o], merged[at + 1] - expected[o + 1], merged[at + 2] - expected[o + 2]);
      if (d > worst) worst = d;
      assert.ok(Math.abs(merged[at + 3] - expected[o + 3]) <= 1 / 510 + 1e-6, `intensity of point ${p} of ${agent.agentId}`);
    }
    assert.ok(worst <= tolerance && worst > 0, `${agent.agentId}: worst position error ${worst} m`);
  }
  assert.equal(at, merged.length, 'the merged cloud is exactly the agents\' points, ego first');

  // A second frame reuses the merge buffer and gives the same cloud; out of communication range the ego is alone.
  await detector.detectFrame(frame, frame.agents[0].agentId);
  assert.deepEqual(seen[1], merged);
  await new CooperativeDetector(recordingModels(seen), 'early', { commRangeM: 0 }).detectFrame(frame, frame.agents[0].agentId);
  assert.equal(seen[2].length, (await frame.agents[0].loadPoints()).length);
});
