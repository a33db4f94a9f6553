// `v2xfuse run` end to end: an embedded broker, one process per agent and the fusion node, over the committed
// fixture. With a lossless codec the deployment must score exactly what the in-process detector scores: the
// same models on the same features, only now through protobuf, MQTT and separate processes.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { openDataset } from '../../src/datasets/index.ts';
import { ClassAwareApAccumulator } from '../../src/eval/index.ts';
import { CooperativeDetector, evaluateSequence } from '../../src/fusion/index.ts';
import { PerceptionModels } from '../../src/perception/index.ts';
import type { RunReport } from '../../src/transport/index.ts';
import { projectRoot, runCli } from './helpers.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');

async function inProcessAp(mode: 'attention' | 'late', opts: { lateMerge?: 'nms' | 'wbf'; featureCodec?: string } = {}): Promise<Record<string, number>> {
  const models = await PerceptionModels.load(resolve(projectRoot, 'models/manifest.json'));
  try {
    const seq = (await openDataset(FIXTURE)).scenarios[0];
    const acc = new ClassAwareApAccumulator(undefined, models.manifest.anchors.map((a) => a.cls));
    await evaluateSequence(seq, new CooperativeDetector(models, mode, opts), seq.agents[0].id, acc);
    return Object.fromEntries(Object.entries(acc.result().vehicle).map(([k, v]) => [k, v.ap]));
  } finally {
    await models.dispose();
  }
}

test('run: broker + agent processes + fusion node score what the in-process detector scores (lossless codec)', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-run-test-'));
  try {
    const reportPath = join(dir, 'report.json');
    const r = await runCli(['run', FIXTURE, '--codec', 'raw', '--report', reportPath], 150_000);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /3\/3 ego frames fused/);
    assert.match(r.stdout, /AP \(BEV\) vehicle/);
    const report = JSON.parse(await readFile(reportPath, 'utf8')) as RunReport;
    assert.deepEqual(report.ap, await inProcessAp('attention'));
    assert.equal(report.framesFused, 3);
    assert.equal(report.fusionSettings.compensate, false);
    // Raw float32 features: 64 × 128 × 128 × 4 bytes of payload per collaborator message, plus the header.
    assert.ok(report.bytesPerMessage.features.mean > 4_194_304 && report.bytesPerMessage.features.mean < 4_195_000, String(report.bytesPerMessage.features.mean));
    assert.deepEqual(Object.keys(report.mbpsPerAgent).sort(), ['-1', '101']);
    for (const k of ['agent.pfn', 'agent.backbone', 'transport', 'fusion.wait', 'fusion.head', 'endToEnd']) {
      assert.ok(report.latencyMs[k]?.count > 0, `latency ${k}`);
      assert.ok(report.latencyMs[k].p50 <= report.latencyMs[k].p95 && report.latencyMs[k].p95 <= report.latencyMs[k].p99);
    }
    assert.deepEqual(report.dropped, {});
    for (const a of ['100', '101', '-1']) assert.equal(report.agents[a].framesPublished, 3);
    // The fusion node tracked its detections and predicted each track (3 frames: no future to score them on).
    assert.ok(report.tracking && report.tracking.gt > 0 && Number.isFinite(report.tracking.mota));
    assert.ok(report.prediction && report.prediction.skipped > 0 && report.prediction.count === 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('run --sign: late fusion of signed object lists of a few hundred bytes, all verified', { timeout: 180_000 }, async () => {
  const r = await runCli(['run', FIXTURE, '--fusion', 'late', '--sign', '--json'], 150_000);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as RunReport;
  assert.equal(report.framesFused, 3);
  // The fusion node required signatures: had one failed, the frame would be fused without it and counted here.
  assert.deepEqual(report.dropped, {});
  for (const a of ['100', '101', '-1']) assert.equal(report.agents[a].framesUsed, 3);
  // An ECDSA P-256 signature costs 86 bytes a message; the object lists stay small.
  assert.ok(report.bytesPerMessage.objects.mean < 2000, String(report.bytesPerMessage.objects.mean));
  // Object lists through protobuf, signatures and MQTT fuse to what the in-process late fusion gives.
  assert.deepEqual(report.ap, await inProcessAp('late'));
});

test('run --fusion late --late-merge wbf: weighted box fusion in the node scores what it scores in process', { timeout: 180_000 }, async () => {
  const r = await runCli(['run', FIXTURE, '--fusion', 'late', '--late-merge', 'wbf', '--json', '--predictor', 'none'], 150_000);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as RunReport;
  assert.deepEqual(report.ap, await inProcessAp('late', { lateMerge: 'wbf' }));
  assert.equal(report.fusionSettings.lateMerge, 'wbf', 'the option reached the fusion node');
  assert.equal(report.fusionSettings.predictor, 'none');
});

test('run --codec c16+int8+deflate: the learned channel reduction on the sender, its decoder in the fusion node', { timeout: 180_000 }, async () => {
  const r = await runCli(['run', FIXTURE, '--codec', 'c16+int8+deflate', '--json', '--predictor', 'none'], 150_000);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as RunReport;
  assert.equal(report.framesFused, 3);
  assert.deepEqual(report.dropped, {});
  assert.equal(report.codec, 'c16+int8+deflate');
  // 4 of 64 channels, int8, deflated: about 25-30 kB, where int8+deflate of all 64 is about 340 kB.
  assert.ok(report.bytesPerMessage.features.mean < 40_000, String(report.bytesPerMessage.features.mean));
  assert.ok(report.latencyMs['fusion.expand']?.count > 0, 'the fusion node expanded the reduced maps');
  // The same reduction, codec and decoder in process (detect --codec) give the same AP.
  assert.deepEqual(report.ap, await inProcessAp('attention', { featureCodec: 'c16+int8+deflate' }));
});

test('run --fusion hybrid: collaborators send selected features and an object list of what those cells leave out', { timeout: 180_000 }, async () => {
  const r = await runCli(['run', FIXTURE, '--fusion', 'hybrid', '--json', '--predictor', 'none'], 150_000);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as RunReport;
  assert.equal(report.framesFused, 3);
  assert.deepEqual(report.dropped, {});
  // Both kinds from each of the two collaborators, every frame; the ego sends its full map only.
  assert.equal(report.bytesPerMessage.features.count, 6);
  assert.equal(report.bytesPerMessage.objects.count, 6);
  assert.equal(report.egoBytesPerMessage.objects, undefined);
  for (const a of ['101', '-1']) assert.equal(report.agents[a].framesUsed, 3);
});

test('run --rate 10 --preencode-collaborators --precision int8: collaborators encode ahead, all start together, frames are fused', { timeout: 180_000 }, async () => {
  const r = await runCli(['run', FIXTURE, '--rate', '10', '--preencode-collaborators', '--precision', 'int8', '--deadline-ms', '3000', '--predictor', 'none', '--json'], 170_000);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as RunReport;
  for (const a of ['100', '101', '-1']) assert.equal(report.agents[a].framesPublished, 3, `agent ${a}`);
  // Paced on a loaded machine a frame may go stale; the run must still fuse, with the collaborators' messages.
  assert.ok(report.framesFused >= 1, `${report.framesFused} frames fused`);
  assert.ok(report.agents['101'].framesUsed + report.agents['-1'].framesUsed >= 1, JSON.stringify(report.agents));
});

test('run --rate 10 --latest-only, every agent live: all start on the run\'s signal; skipped ego frames count as frames without a result', { timeout: 180_000 }, async () => {
  const r = await runCli(['run', FIXTURE, '--rate', '10', '--latest-only', '--precision', 'int8', '--deadline-ms', '3000', '--predictor', 'none', '--compensate', '--json'], 170_000);
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as RunReport;
  assert.equal(report.fusionSettings.compensate, true, 'run --compensate reaches the fusion node');
  for (const a of ['100', '101', '-1']) assert.ok(report.agents[a].framesPublished >= 1, `agent ${a}: ${JSON.stringify(report.agents[a])}`);
  // However many the ego skipped on this machine, published + skipped = the sequence, and only published ones fuse.
  const skipped = report.dropped['behind-sensor'] ?? 0;
  assert.equal(report.agents['100'].framesPublished + skipped, 3, JSON.stringify(report.dropped));
  assert.equal(report.frames, 3);
  assert.ok(report.framesFused <= 3 - skipped);
});

test('run: a bad dataset path fails in one line before anything starts', async () => {
  const r = await runCli(['run', '/nonexistent/dataset']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /nonexistent/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('run --camera-only 101: a camera-only collaborator over MQTT scores what the in-process mixed fleet scores', { timeout: 240_000 }, async () => {
  const { AgentSensorEncoder, CameraEncoder } = await import('../../src/perception/index.ts');
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-camrun-'));
  try {
    // Three frames of a held-out intersection seed, with camera images (the committed fixture has none).
    const sim = await runCli(['simulate', '--scenario', 'intersection', '--frames', '3', '--seed', '103', '--out', dir]);
    assert.equal(sim.code, 0, sim.stderr);
    const r = await runCli(['run', dir, '--camera-only', '101', '--codec', 'raw', '--predictor', 'none', '--json'], 180_000);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as RunReport;
    assert.equal(report.framesFused, 3);
    assert.equal(report.agents['101'].framesUsed, 3);
    // Only the camera-only agent ran the camera encoder: 3 frames of it.
    assert.equal(report.latencyMs['agent.cameraBackbone']?.count, 3);
    const models = await PerceptionModels.load(resolve(projectRoot, 'models/manifest.json'));
    const camera = await CameraEncoder.load(models.manifest);
    try {
      const seq = (await openDataset(dir)).scenarios[0];
      const acc = new ClassAwareApAccumulator(undefined, models.manifest.anchors.map((a) => a.cls));
      const sensors = { encoder: new AgentSensorEncoder(models.lidar, camera), plan: { modality: 'mixed' as const, cameraOnly: ['101'] } };
      await evaluateSequence(seq, new CooperativeDetector(models, 'attention', { sensors }), seq.agents[0].id, acc);
      assert.deepEqual(report.ap, Object.fromEntries(Object.entries(acc.result().vehicle).map(([k, v]) => [k, v.ap])));
    } finally {
      await camera.dispose();
      await models.dispose();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('run: an unknown scenario is one line naming the ones there are', async () => {
  const r = await runCli(['run', FIXTURE, '--scenario', 'nope']);
  assert.equal(r.code, 3);
  assert.match(r.stderr, /--scenario nope: not in .*fixture-s1 \(scenarios: fixture-s1\)/);
});
