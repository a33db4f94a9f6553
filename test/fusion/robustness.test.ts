// The impairments and choices wired through CooperativeDetector, on the 3-frame fixture (frames 100 ms apart,
// agents 100 and 101 moving, roadside unit -1 fixed) with stand-in models: what is checked is which message reaches
// the fusion, from when, with which pose, and what it costs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { openDataset } from '../../src/datasets/index.ts';
import { relativeTransform, transformBox } from '../../src/geometry/index.ts';
import { DEFAULT_BEV_GRID, type PerceptionModels, featureShape } from '../../src/perception/index.ts';
import { CooperativeDetector, FusionConfigError, applyPoseNoise, samplePoseNoise } from '../../src/fusion/index.ts';

const fixture = resolve(import.meta.dirname, '../../datasets/fixture/fixture-s1');
const CAR = { x: 5, y: 0, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0.3 };

// The encoder remembers which point file it was given; the head reports one car at CAR in whatever frame the
// features came from (score 0.6), so each collaborator's object list holds exactly that car.
function stubModels(loaded: string[]): PerceptionModels {
  const [C, H, W] = featureShape(DEFAULT_BEV_GRID);
  const lidar = {
    encode: async (points: Float32Array, opts: { out?: Float32Array } = {}) => {
      loaded.push(String(points.length));
      return { features: opts.out ?? new Float32Array(C * H * W), pillars: { droppedPillars: 0 }, timings: { pfn: 1 } };
    },
  };
  const head = { detect: async () => ({ detections: [{ box: { ...CAR }, score: 0.6, cls: 'vehicle' }], clsLogits: new Float32Array(2 * H * W), timings: { head: 1 } }) };
  return {
    manifest: { source: 'stub', modelId: 'stub', postprocess: { nmsIouThreshold: 0.15 }, pillar: { maxPointsPerPillar: 32, maxPillars: 16000 } },
    grid: DEFAULT_BEV_GRID,
    lidar,
    head,
  } as unknown as PerceptionModels;
}

test('loss: probability 1 leaves the ego alone, 0 keeps every collaborator; each loss is reported', async () => {
  const seq = (await openDataset(fixture)).scenarios[0];
  const frame = await seq.frame(1);
  const ego = frame.agents[0].agentId;
  const all = await new CooperativeDetector(stubModels([]), 'late', { lossProbability: 0 }).detectFrame(frame, ego);
  assert.deepEqual(all.agents, frame.agents.map((a) => a.agentId));
  const none = await new CooperativeDetector(stubModels([]), 'late', { lossProbability: 1, seed: 5 }).detectFrame(frame, ego);
  assert.deepEqual(none.agents, [ego]);
  assert.deepEqual(none.links.skipped.map((s) => s.reason), ['lost', 'lost']);
  assert.deepEqual(Object.keys(none.bytes!), [ego], 'a lost message is not fused');
  assert.ok(none.links.collaboratorBytes > 0, 'but it was sent: its bytes count against the channel');
});

test('latency: a collaborator\'s message 100 ms old is its previous frame, placed with its pose at capture time', async () => {
  const seq = (await openDataset(fixture)).scenarios[0];
  const frame = await seq.frame(2);
  const ego = frame.agents[0];
  const detector = new CooperativeDetector(stubModels([]), 'late', { latencyMs: 100 });
  const r = await detector.detectFrame(frame, ego.agentId, seq);
  assert.deepEqual(r.links.ageMs, { '101': 100, '-1': 100 });
  const earlier = await seq.frame(1);
  for (const old of earlier.agents.slice(1)) {
    const want = transformBox(relativeTransform(old.lidarToWorld, ego.lidarToWorld), CAR);
    const got = r.detections.find((d) => Math.abs(d.box.x - want.x) < 1e-4 && Math.abs(d.box.y - want.y) < 1e-4);
    assert.ok(got, `${old.agentId}'s car where its frame-1 pose puts it: ${JSON.stringify(want)} in ${JSON.stringify(r.detections.map((d) => d.box))}`);
  }
  // Frame 0 has nothing earlier: the collaborators have sent nothing yet.
  const first = await detector.detectFrame(await seq.frame(0), ego.agentId, seq);
  assert.deepEqual(first.agents, [ego.agentId]);
  assert.deepEqual(first.links.skipped.map((s) => s.reason), ['no-message', 'no-message']);
  await assert.rejects(detector.detectFrame(frame, ego.agentId), FusionConfigError, 'latency without the sequence');
});

test('latency compensation (TCLF) moves a moving sender\'s object to about where it is now', async () => {
  // Agent 101 drives at ~3.9 m/s along y and its stand-in car rides along at CAR in its frame, so the car moves with
  // it: 100 ms late its box is ~0.39 m behind; compensated by the velocity from frames 0 → 1 it is back within a few cm.
  const seq = (await openDataset(fixture)).scenarios[0];
  const frame = await seq.frame(2);
  const ego = frame.agents[0];
  const sender = frame.agents.find((a) => a.agentId === '101')!;
  const now = transformBox(relativeTransform(sender.lidarToWorld, ego.lidarToWorld), CAR);
  const nearest = (ds: { box: { x: number; y: number } }[]) => Math.min(...ds.map((d) => Math.hypot(d.box.x - now.x, d.box.y - now.y)));
  const late = await new CooperativeDetector(stubModels([]), 'late', { latencyMs: 100 }).detectFrame(frame, ego.agentId, seq);
  const comp = await new CooperativeDetector(stubModels([]), 'late', { latencyMs: 100, compensate: true }).detectFrame(frame, ego.agentId, seq);
  assert.ok(nearest(late.detections) > 0.3, `uncompensated: ${nearest(late.detections)} m off`);
  assert.ok(nearest(comp.detections) < 0.05, `compensated: ${nearest(comp.detections)} m off`);
});

test('pose noise moves a collaborator\'s objects by exactly the seeded error of its pose; the ego is untouched', async () => {
  const seq = (await openDataset(fixture)).scenarios[0];
  const frame = await seq.frame(0);
  const ego = frame.agents[0];
  const std = { posM: 0.6, yawDeg: 0.6 };
  const r = await new CooperativeDetector(stubModels([]), 'late', { poseNoise: std, seed: 11 }).detectFrame(frame, ego.agentId);
  assert.ok(r.detections.some((d) => Math.abs(d.box.x - CAR.x) < 1e-4 && Math.abs(d.box.y - CAR.y) < 1e-4), 'the ego\'s own car is where it saw it');
  for (const a of frame.agents.slice(1)) {
    const noisy = applyPoseNoise(a.lidarToWorld, samplePoseNoise(std, 11, frame.index, a.agentId));
    const want = transformBox(relativeTransform(noisy, ego.lidarToWorld), CAR);
    assert.ok(r.detections.some((d) => Math.abs(d.box.x - want.x) < 1e-4 && Math.abs(d.box.y - want.y) < 1e-4 && Math.abs(d.box.yaw - want.yaw) < 1e-5), a.agentId);
  }
});

test('budget: the collaborators fused never send more bytes per frame than the budget allows', async () => {
  const seq = (await openDataset(fixture)).scenarios[0];
  const frame = await seq.frame(0);
  const ego = frame.agents[0].agentId;
  const free = await new CooperativeDetector(stubModels([]), 'late').detectFrame(frame, ego);
  const sizes = frame.agents.slice(1).map((a) => free.bytes![a.agentId]);
  const one = Math.max(...sizes);
  // Room for one object list but not two.
  const r = await new CooperativeDetector(stubModels([]), 'late', { budgetBytes: one + Math.min(...sizes) - 1 }).detectFrame(frame, ego);
  assert.equal(r.links.used.length, 1);
  assert.ok(r.links.collaboratorBytes <= one + Math.min(...sizes) - 1);
  assert.deepEqual(r.links.skipped.map((s) => s.reason), ['budget']);
  const zero = await new CooperativeDetector(stubModels([]), 'late', { budgetBytes: 0 }).detectFrame(frame, ego);
  assert.deepEqual(zero.agents, [ego]);
  assert.equal(zero.links.collaboratorBytes, 0);
  const capped = await new CooperativeDetector(stubModels([]), 'late', { maxAgents: 1 }).detectFrame(frame, ego);
  assert.equal(capped.links.used.length, 1);
  assert.throws(() => new CooperativeDetector(stubModels([]), 'max', { budgetBytes: 1000 }), FusionConfigError, 'raw features have no bytes to budget');
});

test('hybrid and feature codecs: the bytes are the messages\' and every configuration error is caught up front', async () => {
  const seq = (await openDataset(fixture)).scenarios[0];
  const frame = await seq.frame(0);
  const ego = frame.agents[0].agentId;
  const r = await new CooperativeDetector(stubModels([]), 'hybrid', { featureCodec: 'int8+top1%' }).detectFrame(frame, ego);
  // 1 % of 16,384 cells = 164 cells × 64 channels at one byte each, plus the object list and headers.
  for (const a of frame.agents.slice(1)) assert.ok(r.bytes![a.agentId] > 164 * 64 && r.bytes![a.agentId] < 164 * 64 + 2000, `${a.agentId}: ${r.bytes![a.agentId]}`);
  assert.throws(() => new CooperativeDetector(stubModels([]), 'hybrid', { featureCodec: 'int8' }), FusionConfigError, 'hybrid needs a selection');
  assert.throws(() => new CooperativeDetector(stubModels([]), 'late', { featureCodec: 'int8' }), FusionConfigError);
  assert.throws(() => new CooperativeDetector(stubModels([]), 'max', { lateMerge: 'wbf' }), FusionConfigError);
  assert.throws(() => new CooperativeDetector(stubModels([]), 'late', { lossProbability: 2 }), FusionConfigError);
});
