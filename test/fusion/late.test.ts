import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { openDataset } from '../../src/datasets/index.ts';
import type { Detection } from '../../src/eval/index.ts';
import { identity, poseToMatrix, relativeTransform, transformBox, type Box7 } from '../../src/geometry/index.ts';
import { decodeMessage, encodeMessage, wire } from '../../src/messages/index.ts';
import { DEFAULT_BEV_GRID, type PerceptionModels, featureShape } from '../../src/perception/index.ts';
import {
  CooperativeDetector,
  MEASURED_POSITION_CONFIDENCE,
  type PerceivedObjectInit,
  detectionsToObjects,
  fuseLate,
  objectsToDetections,
} from '../../src/fusion/index.ts';

const projectRoot = resolve(import.meta.dirname, '../..');

const box = (x: number, y: number, extra: Partial<Box7> = {}): Box7 => ({ x, y, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0, ...extra });

test('objectsToDetections: a box in the sender frame lands at the hand-computed ego position and yaw', () => {
  // Ego at (1, 1, 0.5) facing +x; sender at (10, 5, 2) facing +y (yaw 90°), both in the world frame.
  const egoToWorld = poseToMatrix({ x: 1, y: 1, z: 0.5, roll: 0, pitch: 0, yaw: 0 });
  const senderToWorld = poseToMatrix({ x: 10, y: 5, z: 2, roll: 0, pitch: 0, yaw: Math.PI / 2 });
  const senderToEgo = relativeTransform(senderToWorld, egoToWorld);
  const objects = detectionsToObjects([
    { box: { x: 2, y: 0, z: -1.5, l: 4, w: 1.8, h: 1.5, yaw: 0.25 }, score: 0.8, cls: 'vehicle' },
    // 3.0 + π/2 passes π: the ego yaw must wrap into [−π, π).
    { box: { x: 0, y: -3, z: -1.2, l: 0.6, w: 0.6, h: 1.7, yaw: 3.0 }, score: 0.4, cls: 'pedestrian' },
  ]);
  const [car, person] = objectsToDetections(objects, senderToEgo);
  // Sender (2, 0) rotated by 90° is (0, 2); plus the sender's (10, 5, 2) is (10, 7, 0.5) in the world; minus the
  // ego's (1, 1, 0.5) gives (9, 6, 0).
  assert.ok(Math.abs(car.box.x - 9) < 1e-9 && Math.abs(car.box.y - 6) < 1e-9 && Math.abs(car.box.z - 0) < 1e-9, JSON.stringify(car.box));
  assert.ok(Math.abs(car.box.yaw - (0.25 + Math.PI / 2)) < 1e-9);
  assert.deepEqual([car.box.l, car.box.w, car.box.h], [4, 1.8, 1.5]);
  assert.equal(car.cls, 'vehicle');
  assert.equal(car.score, 0.8);
  // (0, −3) rotated by 90° is (3, 0): world (13, 5), ego (12, 4); yaw 3.0 + π/2 − 2π.
  assert.ok(Math.abs(person.box.x - 12) < 1e-9 && Math.abs(person.box.y - 4) < 1e-9);
  assert.ok(Math.abs(person.box.yaw - (3.0 + Math.PI / 2 - 2 * Math.PI)) < 1e-9, String(person.box.yaw));
  assert.equal(person.cls, 'pedestrian');
});

test('detectionsToObjects carries what a CPM perceived object carries, and survives the wire within float32', () => {
  const detections: Detection[] = [
    { box: { x: 12.345678, y: -7.654321, z: -1.1, l: 4.4, w: 1.9, h: 1.55, yaw: -2.9 }, score: 0.734, cls: 'vehicle' },
    { box: { x: -3.3, y: 20.2, z: -0.9, l: 0.7, w: 0.6, h: 1.8, yaw: 0.1 }, score: 0.31, cls: 'pedestrian' },
    { box: { x: 40, y: 0.5, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 1 }, score: 0.5 }, // no class: a vehicle, as the evaluator reads it
  ];
  const conf = { x: 0.43, y: 0.47, z: 0.17 };
  const objects = detectionsToObjects(detections, { positionConfidence: conf, objectIds: [7, 8, 9] });
  const bytes = encodeMessage('objects', { objects });
  const decoded = decodeMessage('objects', bytes).objects;
  assert.equal(decoded.length, 3);
  assert.deepEqual(decoded.map((o) => o.objectId), [7, 8, 9]);
  assert.deepEqual(decoded.map((o) => o.objectClass), [wire.ObjectClass.OBJECT_CLASS_VEHICLE, wire.ObjectClass.OBJECT_CLASS_PEDESTRIAN, wire.ObjectClass.OBJECT_CLASS_VEHICLE]);
  assert.equal(decoded[0].velocity, null, 'a single-frame detector sends no velocity');
  assert.equal(Number(decoded[0].measurementDeltaNs), 0);
  assert.ok(Math.abs(decoded[0].position!.xConfidence! - 0.43) < 1e-6 && Math.abs(decoded[0].position!.zConfidence! - 0.17) < 1e-6);
  assert.ok(Math.abs(decoded[0].existenceConfidence! - 0.734) < 1e-6);
  assert.ok(Math.abs(decoded[0].classConfidence! - 0.734) < 1e-6);

  const back = objectsToDetections(decoded, identity());
  assert.equal(back.length, 3);
  back.forEach((d, i) => {
    const want = detections[i];
    for (const k of ['x', 'y', 'z', 'l', 'w', 'h', 'yaw'] as const) {
      assert.ok(Math.abs(d.box[k] - want.box[k]) <= 4e-6 * Math.max(1, Math.abs(want.box[k])), `${i}.${k}: ${d.box[k]} vs ${want.box[k]}`);
    }
    assert.ok(Math.abs(d.score - want.score) < 1e-6);
    assert.equal(d.cls, want.cls ?? 'vehicle');
  });
  // Unmeasured confidence says so with 0, never a made-up width.
  assert.equal(detectionsToObjects(detections)[0].position!.xConfidence, 0);
  assert.equal(MEASURED_POSITION_CONFIDENCE.confidence.x > 0, true);
  assert.throws(() => detectionsToObjects(detections, { objectIds: [1] }), /objectIds.length/);
});

test('objectsToDetections skips non-finite or degenerate objects and never turns an unknown class into a vehicle', () => {
  const good = detectionsToObjects([{ box: box(5, 5), score: 0.9, cls: 'vehicle' }])[0];
  const objects: PerceivedObjectInit[] = [
    { ...good, position: { ...good.position, x: Number.NaN } },
    { ...good, position: { ...good.position, y: Number.POSITIVE_INFINITY } },
    { ...good, dimensions: { ...good.dimensions, x: Number.POSITIVE_INFINITY } },
    { ...good, dimensions: { ...good.dimensions, y: 0 } },
    { ...good, yaw: Number.NaN },
    { ...good, existenceConfidence: Number.NaN },
    { ...good, position: null },
    { ...good, dimensions: undefined },
    good,
    { ...good, objectClass: wire.ObjectClass.OBJECT_CLASS_UNKNOWN },
  ];
  const out = objectsToDetections(objects, identity());
  assert.equal(out.length, 2);
  assert.equal(out[0].cls, 'vehicle');
  assert.equal(out[1].cls, 'other');
  assert.throws(() => objectsToDetections([good], new Float64Array(16).fill(Number.NaN)), /senderToEgo/);
});

test('fuseLate: copies of one car from two agents merge into the higher-scored one; other classes and distinct cars stay', () => {
  const ego: Detection[] = [
    { box: box(10, 0), score: 0.6, cls: 'vehicle' },
    { box: box(-20, 3), score: 0.5, cls: 'vehicle' },
  ];
  const other: Detection[] = [
    { box: box(10.3, 0.1, { yaw: 0.05 }), score: 0.9, cls: 'vehicle' }, // the ego's car at 10 m, seen better
    // A pedestrian box with the same footprint as the car (IoU 1): NMS across classes would remove it.
    { box: box(10, 0), score: 0.3, cls: 'pedestrian' },
  ];
  const third: Detection[] = [{ box: box(30, -5), score: 0.7, cls: 'vehicle' }];
  const fused = fuseLate(ego, [other, third], { iouThreshold: 0.15 });
  assert.equal(fused.length, 4, JSON.stringify(fused));
  assert.deepEqual(fused.map((d) => d.score), [0.9, 0.7, 0.5, 0.3]);
  assert.equal(fused[0].box.x, 10.3, 'the better-scored copy survives');
  assert.equal(fused[3].cls, 'pedestrian');
  // Without collaborators late fusion is the ego's own list.
  assert.deepEqual(fuseLate(ego, []).map((d) => d.score), [0.6, 0.5]);
});

test('fuseLate with a range drops boxes with a corner outside it (OpenCOOD range mask), after NMS', () => {
  const range = { xMin: -51.2, xMax: 51.2, yMin: -51.2, yMax: 51.2 };
  const fused = fuseLate(
    [{ box: box(50, 0), score: 0.4, cls: 'vehicle' }], // front corners at x = 52.25: outside
    [[{ box: box(49, 0), score: 0.8, cls: 'vehicle' }, { box: box(0, 60), score: 0.9, cls: 'vehicle' }, { box: box(20, 20), score: 0.5, cls: 'vehicle' }]],
    { range },
  );
  // 49 m (corners up to 51.25: outside) suppresses the 50 m copy, then both leave with the mask: only 20, 20 stays.
  assert.deepEqual(fused.map((d) => [d.box.x, d.box.y]), [[20, 20]]);
});

// Stand-in models: the encoder tags each agent's features with a call number, and the head reports one car at
// (5, 0) in whatever frame the features came from, scored by that tag. What is left to check is the late path:
// agent frame → object list on the wire → ego frame → NMS.
function stubModels(): PerceptionModels {
  const [C, H, W] = featureShape(DEFAULT_BEV_GRID);
  let calls = 0;
  const lidar = {
    encode: async (_points: Float32Array, opts: { out?: Float32Array } = {}) => {
      const features = opts.out ?? new Float32Array(C * H * W);
      features[0] = ++calls;
      return { features, pillars: { droppedPillars: 0 }, timings: { pfn: 1 } };
    },
  };
  const head = {
    detect: async (bev: Float32Array) => ({
      detections: [
        { box: { x: 5, y: 0, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0.3 }, score: 0.5 + bev[0] / 100, cls: 'vehicle' },
        { box: { x: 5, y: 0, z: -1, l: 0.6, w: 0.6, h: 1.7, yaw: 0 }, score: 0.25, cls: 'pedestrian' },
        { box: { x: 200, y: 0, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0 }, score: 0.9, cls: 'vehicle' }, // outside the ego grid
      ],
      timings: { head: 1 },
    }),
  };
  return {
    manifest: { source: 'stub', modelId: 'stub', postprocess: { nmsIouThreshold: 0.15 }, pillar: { maxPointsPerPillar: 32, maxPillars: 16000 } },
    grid: DEFAULT_BEV_GRID,
    lidar,
    head,
  } as unknown as PerceptionModels;
}

test('CooperativeDetector late: each agent\'s objects reach the ego frame through the wire path and merge by NMS', async () => {
  const ds = await openDataset(resolve(projectRoot, 'datasets/fixture/fixture-s1'));
  const frame = await ds.scenarios[0].frame(0);
  const egoId = frame.agents[0].agentId;
  const r = await new CooperativeDetector(stubModels(), 'late').detectFrame(frame, egoId);
  assert.deepEqual(r.agents, frame.agents.map((a) => a.agentId), 'every fixture agent is within 70 m');
  for (const id of r.agents) assert.ok(r.bytes![id] > 60 && r.bytes![id] < 400, `bytes of ${id}: ${r.bytes![id]}`);
  assert.ok('objectCodec' in r.timings && 'lateFusion' in r.timings);

  // Each agent's car at (5, 0) of its own frame, moved into the ego frame by hand; all are far apart here.
  const egoToWorld = frame.agents[0].lidarToWorld;
  const want = frame.agents.map((a, k) => ({
    box: transformBox(relativeTransform(a.lidarToWorld, egoToWorld), { x: 5, y: 0, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0.3 }),
    score: 0.5 + (k + 1) / 100,
  }));
  const cars = r.detections.filter((d) => d.cls === 'vehicle');
  assert.equal(cars.length, want.length, `the 200 m boxes are masked out, the rest kept: ${JSON.stringify(cars)}`);
  for (const w of want) {
    const got = cars.find((d) => Math.abs(d.score - w.score) < 1e-6);
    assert.ok(got, `no car with score ${w.score}`);
    for (const k of ['x', 'y', 'z', 'yaw'] as const) assert.ok(Math.abs(got.box[k] - w.box[k]) < 1e-4, `${k}: ${got.box[k]} vs ${w.box[k]}`);
  }
  // Each agent's pedestrian sits under its own car: per-class NMS keeps them all.
  assert.equal(r.detections.filter((d) => d.cls === 'pedestrian').length, want.length);

  // Two copies of one agent's report (the same frame given twice) merge into one per object.
  const twice = { ...frame, agents: [frame.agents[0], { ...frame.agents[0], agentId: 'copy' }] };
  const merged = await new CooperativeDetector(stubModels(), 'late').detectFrame(twice, egoId);
  assert.equal(merged.detections.filter((d) => d.cls === 'vehicle').length, 1);
  assert.ok(Math.abs(merged.detections[0].score - 0.52) < 1e-6, 'the higher-scored copy survives');
});
