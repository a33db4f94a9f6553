// The int8 (QDQ) variants of lidar_backbone and detection_head (tools/train/quantize.py, models/README.md "int8
// variant"): the manifest resolves them only on request, they load under their recorded sha256, and on a real frame
// they stay within the stated tolerance of the float models, features and detections alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { openDataset } from '../../src/datasets/index.ts';
import type { Detection } from '../../src/eval/index.ts';
import { DetectionHead, LidarEncoder, ManifestError, ModelContractError, createSession, loadManifest, parseManifest, withPrecision } from '../../src/perception/index.ts';

const MANIFEST = path.resolve(process.cwd(), 'models/manifest.json');
const FIXTURE = path.resolve(process.cwd(), 'datasets/fixture/fixture-s1');
const manifestJson = (): Record<string, any> => JSON.parse(readFileSync(MANIFEST, 'utf8'));

// Measured on fixture-s1 frame 1, agent 0 (ORT 1.30, AVX512-VNNI CPU): features max |Δ| 0.57, mean |Δ| / mean |float|
// 0.10 (the ~0.12 quantisation step over the many small values); anchor scores max |Δ| 0.020. The bounds leave
// room for other CPUs' kernels (the int8 GEMM and requantisation round differently by instruction set).
const FEATURE_MAX_ABS = 1.5;
const FEATURE_MEAN_REL = 0.15;
const SCORE_MAX_ABS = 0.06;

test('manifest: float32 unless int8 is asked for; withPrecision swaps only the backbone and the head', () => {
  const float = parseManifest(manifestJson(), MANIFEST);
  assert.equal(float.precision, 'float32');
  assert.match(float.models.lidar_backbone.path, /lidar_backbone\.onnx$/);
  assert.match(float.models.lidar_backbone.int8?.path ?? '', /lidar_backbone_int8\.onnx$/);

  const int8 = withPrecision(float, 'int8');
  assert.equal(int8.precision, 'int8');
  assert.deepEqual(int8.int8Roles, ['lidar_backbone', 'detection_head']);
  assert.deepEqual(float.int8Roles, []);
  assert.equal(int8.models.lidar_backbone.path, float.models.lidar_backbone.int8!.path);
  assert.equal(int8.models.lidar_backbone.sha256, float.models.lidar_backbone.int8!.sha256);
  assert.equal(int8.models.detection_head?.path, float.models.detection_head?.int8?.path);
  assert.deepEqual(int8.models.lidar_pfn, float.models.lidar_pfn);
  assert.deepEqual(int8.models.fusion_attention, float.models.fusion_attention);
  // Same features within quantisation error: receivers must keep accepting the messages.
  assert.equal(int8.modelId, float.modelId);
  assert.equal(withPrecision(float, 'float32'), float);
  assert.equal(float.models.lidar_backbone.path.endsWith('lidar_backbone.onnx'), true, 'the input manifest is not mutated');

  // A head without an int8 variant stays float; a manifest without an int8 backbone cannot give 'int8'.
  const json = manifestJson();
  delete json.models.detection_head.int8;
  const headFloat = withPrecision(parseManifest(json, MANIFEST), 'int8');
  assert.match(headFloat.models.detection_head?.path ?? '', /detection_head\.onnx$/);
  assert.deepEqual(headFloat.int8Roles, ['lidar_backbone'], 'says which models are int8, not just "int8"');
  delete json.models.lidar_backbone.int8;
  assert.throws(
    () => withPrecision(parseManifest(json, MANIFEST), 'int8'),
    (err: unknown) => err instanceof ManifestError && err.field === 'models.lidar_backbone.int8',
  );
  // A misspelt field inside the variant is refused, not ignored.
  const typo = manifestJson();
  typo.models.lidar_backbone.int8.sha = typo.models.lidar_backbone.int8.sha256;
  assert.throws(() => parseManifest(typo, MANIFEST), (err: unknown) => err instanceof ManifestError && err.field === 'models.lidar_backbone.int8.sha');
  // The int8 backbone takes its canvas quantised: the scale travels with it, and only with it.
  assert.equal(float.models.lidar_backbone.canvas, undefined);
  assert.deepEqual(int8.models.lidar_backbone.canvas, { layout: 'NHWC', type: 'uint8', scale: manifestJson().models.lidar_backbone.int8.canvas.scale });
  const onHead = manifestJson();
  onHead.models.detection_head.int8.canvas = onHead.models.lidar_backbone.int8.canvas;
  assert.throws(() => parseManifest(onHead, MANIFEST), (err: unknown) => err instanceof ManifestError && err.field === 'models.detection_head.int8.canvas');
  const notFloat32 = manifestJson();
  notFloat32.models.lidar_backbone.int8.canvas.scale = 0.025;
  assert.throws(() => parseManifest(notFloat32, MANIFEST), (err: unknown) => err instanceof ManifestError && err.field.startsWith('models.lidar_backbone.int8.canvas.scale'));
  const offset = manifestJson();
  offset.models.lidar_backbone.int8.canvas.zeroPoint = 3;
  assert.throws(() => parseManifest(offset, MANIFEST), (err: unknown) => err instanceof ManifestError && err.field.startsWith('models.lidar_backbone.int8.canvas'));
});

const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

function featureError(a: Float32Array, b: Float32Array): { maxAbs: number; meanRel: number; differing: number } {
  let maxAbs = 0, sumAbs = 0, sumRef = 0, differing = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > maxAbs) maxAbs = d;
    if (d > 0) differing++;
    sumAbs += d;
    sumRef += Math.abs(a[i]);
  }
  return { maxAbs, meanRel: sumAbs / sumRef, differing };
}

test('int8 backbone and head: within tolerance of float32 on a fixture frame, and the same confident detections', async () => {
  const float = await loadManifest(MANIFEST);
  const int8 = withPrecision(float, 'int8');
  const seq = (await openDataset(FIXTURE)).scenarios[0];
  const points = await (await seq.frame(1)).agents[0].loadPoints();
  const encF = await LidarEncoder.load(float, { threads: 1 });
  const encQ = await LidarEncoder.load(int8, { threads: 1 });
  const headF = await DetectionHead.load(float, { threads: 1 });
  const headQ = await DetectionHead.load(int8, { threads: 1 });
  try {
    assert.match(encQ.backbone.path, /lidar_backbone_int8\.onnx$/);
    assert.equal(encQ.canvasQuantization?.layout, 'NHWC', 'the int8 backbone is fed the quantised canvas');
    const featF = Float32Array.from((await encF.encode(points)).features);
    const featQ = Float32Array.from((await encQ.encode(points)).features);
    const err = featureError(featF, featQ);
    // Bit-identical outputs would mean the float model ran under the int8 name.
    assert.ok(err.differing > 1000, `only ${err.differing} feature values differ from float32`);
    assert.ok(err.maxAbs <= FEATURE_MAX_ABS, `max |Δ feature| ${err.maxAbs} > ${FEATURE_MAX_ABS}`);
    assert.ok(err.meanRel <= FEATURE_MEAN_REL, `mean |Δ| / mean |float| ${err.meanRel} > ${FEATURE_MEAN_REL}`);

    // The whole int8 path (int8 features → int8 head) against the whole float path.
    const outF = await headF.detect(featF);
    const scoresF = Float32Array.from(outF.clsLogits, sigmoid);
    const outQ = await headQ.detect(featQ);
    const scoresQ = Float32Array.from(outQ.clsLogits, sigmoid);
    const scoreErr = featureError(scoresF, scoresQ);
    assert.ok(scoreErr.maxAbs <= SCORE_MAX_ABS, `max |Δ score| over all anchors ${scoreErr.maxAbs} > ${SCORE_MAX_ABS}`);
    const detF = outF.detections, detQ = outQ.detections;
    // The fixture's scans are sparse (scores 0.2–0.5): "confident" is clear of the 0.2 threshold, where a box can
    // legitimately flip.
    const confident = (d: Detection[]) => d.filter((x) => x.score >= 0.3);
    const cf = confident(detF), cq = confident(detQ);
    assert.ok(cf.length >= 3, `the fixture frame should hold confident detections, has ${cf.length}`);
    assert.ok(Math.abs(cf.length - cq.length) <= 1, `confident detections: float32 ${cf.length}, int8 ${cq.length}`);
    for (const a of cf) {
      const near = detQ.filter((b) => b.cls === a.cls && Math.hypot(a.box.x - b.box.x, a.box.y - b.box.y) < 0.3);
      assert.ok(near.length > 0, `float32 ${a.cls} at (${a.box.x.toFixed(1)}, ${a.box.y.toFixed(1)}) score ${a.score.toFixed(2)} has no int8 match within 0.3 m`);
      const best = near.reduce((p, b) => (Math.abs(b.score - a.score) < Math.abs(p.score - a.score) ? b : p));
      assert.ok(Math.abs(best.score - a.score) < 0.1, `score ${a.score.toFixed(3)} → ${best.score.toFixed(3)}`);
    }
    console.log(`# int8 vs float32 on fixture-s1/1/agent 0: features max |Δ| ${err.maxAbs.toFixed(3)}, mean rel ${err.meanRel.toFixed(4)}; scores max |Δ| ${scoreErr.maxAbs.toFixed(4)}; detections ≥ 0.3: ${cf.length} / ${cq.length}`);
  } finally {
    await Promise.all([encF.dispose(), encQ.dispose(), headF.dispose(), headQ.dispose()]);
  }
});

test('LidarEncoder: a uint8 backbone needs the canvas quantisation, a float one refuses it', async () => {
  const float = await loadManifest(MANIFEST);
  const int8 = withPrecision(float, 'int8');
  const pfn = await createSession(float.models.lidar_pfn.path, { threads: 1 });
  const q = await createSession(int8.models.lidar_backbone.path, { threads: 1 });
  const f = await createSession(float.models.lidar_backbone.path, { threads: 1 });
  try {
    assert.throws(() => new LidarEncoder(float.grid, float.pillar, pfn, q), (e: unknown) =>
      e instanceof ModelContractError && /input 'bev_pillars'/.test(e.message) && /uint8/.test(e.message) && /int8\.canvas/.test(e.message));
    assert.throws(() => new LidarEncoder(float.grid, float.pillar, pfn, f, undefined, int8.models.lidar_backbone.canvas), (e: unknown) =>
      e instanceof ModelContractError && /is not uint8/.test(e.message));
    assert.equal(new LidarEncoder(float.grid, float.pillar, pfn, q, undefined, int8.models.lidar_backbone.canvas).canvasQuantization?.type, 'uint8');
  } finally {
    await Promise.all([pfn, q, f].map((m) => m.session.release()));
  }
});
