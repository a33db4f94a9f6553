import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CUDA_INSTALL_COMMAND,
  CudaUnavailableError,
  DetectionHead,
  FusionAttention,
  LidarEncoder,
  ManifestError,
  ModelContractError,
  ModelFileError,
  PerceptionModels,
  anchorLayout,
  createSession,
  cudaProviderStatus,
  decodeDetections,
  loadManifest,
  nmsPerClass,
  type PerceptionManifest,
} from '../../src/perception/index.ts';

const FIXTURES = path.resolve(process.cwd(), 'test/fixtures/onnx');
const MANIFEST = path.join(FIXTURES, 'manifest.json');
const manifestJson = (): Record<string, any> => JSON.parse(readFileSync(MANIFEST, 'utf8'));

interface Reference {
  frames: { points: number[]; pillarCount: number; coords: number[]; bevFeatures: number[] }[];
  head: { input: number[]; clsLogits: number[]; boxDeltas: number[] };
  fusion: { k: number; aligned: number[]; mask: number[]; fused: number[] };
}
const reference = JSON.parse(readFileSync(path.join(FIXTURES, 'reference.json'), 'utf8')) as Reference;

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0, at = -1;
  for (let i = 0; i < actual.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= worst)) { worst = d; at = i; }
  }
  assert.ok(worst <= tol, `${what}: |difference| ${worst} at ${at} (${actual[at]} vs ${expected[at]})`);
}

/** A copy of the fixture manifest in a temp folder, edited, with model paths pointing back at the fixtures. */
function tempManifest(edit: (m: Record<string, any>) => void): { file: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'v2xfuse-manifest-'));
  const m = manifestJson();
  for (const entry of Object.values(m.models) as { file: string }[]) entry.file = path.join(FIXTURES, entry.file);
  edit(m);
  const file = path.join(dir, 'manifest.json');
  writeFileSync(file, JSON.stringify(m));
  return { file, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const cuda = cudaProviderStatus();
const noCuda = cuda.installed ? 'the CUDA provider is installed here' : false;

test('loadManifest: the fixture manifest, model paths resolved next to it, post-processing settings', async () => {
  const m = await loadManifest(MANIFEST);
  assert.equal(m.modelId, 'test-tiny-0');
  assert.deepEqual([m.grid.xMin, m.grid.xMax, m.grid.channels], [-2.4, 2.4, 2]);
  assert.equal(m.models.lidar_pfn.path, path.join(FIXTURES, 'lidar_pfn.onnx'));
  assert.match(m.models.lidar_backbone.sha256, /^[0-9a-f]{64}$/);
  assert.deepEqual(m.postprocess, { scoreThreshold: 0.2, nmsIouThreshold: 0.15, preNmsTopK: 1000 });
  assert.equal(m.anchors.length, 2);
});

test('loadManifest: errors name the file and the field', async () => {
  await assert.rejects(loadManifest('/nonexistent/models/manifest.json'), (e: ManifestError) => {
    assert.ok(e instanceof ManifestError && e.userFacing);
    assert.match(e.message, /\/nonexistent\/models\/manifest\.json: no such file/);
    return true;
  });
  const cases: [string, (m: Record<string, any>) => void, RegExp][] = [
    ['negative cell size', (m) => (m.grid.cellSize = -0.4), /grid\.cellSize/],
    ['cells not whole', (m) => (m.grid.cellSize = 0.3), /grid\.cellSize.*not a whole number/],
    ['misspelt model role', (m) => (m.models.lidar_backbon = m.models.lidar_backbone), /models\.lidar_backbon: unknown field/],
    ['bad hash', (m) => (m.models.lidar_pfn.sha256 = 'abc'), /models\.lidar_pfn\.sha256: must be 64 hex/],
    ['other pillar features', (m) => (m.pillar.features = ['x', 'y', 'z', 'intensity']), /pillar\.features.*differs from the Pillarizer/],
    ['missing backbone', (m) => delete m.models.lidar_backbone, /models\.lidar_backbone/],
    ['unknown class', (m) => (m.anchors[1].cls = 'bus'), /anchors\[1\]\.cls/],
    ['format version', (m) => (m.formatVersion = 2), /formatVersion/],
  ];
  for (const [what, edit, pattern] of cases) {
    const t = tempManifest(edit);
    try {
      await assert.rejects(loadManifest(t.file), (e: Error) => e instanceof ManifestError && pattern.test(e.message) && e.message.includes(t.file), what);
    } finally {
      t.cleanup();
    }
  }
});

test("createSession 'cpu': loads, reports provider, hash and load time; model inputs as exported", async () => {
  const s = await createSession(path.join(FIXTURES, 'lidar_pfn.onnx'), { device: 'cpu', threads: 1 });
  try {
    assert.equal(s.provider, 'cpu');
    assert.equal(s.notice, undefined);
    assert.ok(s.loadMs > 0);
    assert.equal(s.sha256, manifestJson().models.lidar_pfn.sha256);
    assert.deepEqual(s.session.inputNames, ['pillars']);
    assert.deepEqual(s.session.outputNames, ['pillar_features']);
  } finally {
    await s.session.release();
  }
});

test('createSession: a missing file or a file that is not ONNX is a user-facing error naming the path', async () => {
  const missing = path.join(FIXTURES, 'no_such_model.onnx');
  await assert.rejects(createSession(missing), (e: ModelFileError) => e instanceof ModelFileError && e.userFacing && e.modelPath === missing && /no such file/.test(e.message));
  await assert.rejects(createSession(MANIFEST), (e: Error) => e instanceof ModelFileError && e.message.includes(MANIFEST) && /ONNX Runtime cannot load it/.test(e.message));
  await assert.rejects(createSession(MANIFEST, { threads: 0 }), /threads/);
  await assert.rejects(createSession(MANIFEST, { device: 'gpu' as never }), /device/);
});

test("createSession 'cuda' without the CUDA provider: CudaUnavailableError with the install command", { skip: noCuda }, async () => {
  await assert.rejects(createSession(path.join(FIXTURES, 'lidar_pfn.onnx'), { device: 'cuda' }), (e: CudaUnavailableError) => {
    assert.ok(e instanceof CudaUnavailableError);
    assert.equal(e.userFacing, true);
    assert.equal(e.reason, 'not-installed');
    assert.ok(e.message.includes(CUDA_INSTALL_COMMAND), e.message);
    assert.match(e.message, /libonnxruntime_providers_cuda\.so/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
});

test("createSession 'auto' without the CUDA provider: falls back to the CPU and says so", { skip: noCuda }, async () => {
  const s = await createSession(path.join(FIXTURES, 'lidar_pfn.onnx'), { device: 'auto', threads: 1 });
  try {
    assert.equal(s.provider, 'cpu');
    assert.match(s.notice ?? '', /CUDA not available.*running on the CPU/);
    assert.ok(s.notice?.includes(CUDA_INSTALL_COMMAND));
  } finally {
    await s.session.release();
  }
});

test('a model file that does not match the manifest sha256 is refused, naming the file and both hashes', async () => {
  const wrong = 'f'.repeat(64);
  const t = tempManifest((m) => (m.models.lidar_backbone.sha256 = wrong));
  try {
    await assert.rejects(PerceptionModels.load(t.file, { threads: 1 }), (e: ModelFileError) => {
      assert.ok(e instanceof ModelFileError && e.userFacing);
      assert.equal(e.modelPath, path.join(FIXTURES, 'lidar_backbone.onnx'));
      assert.ok(e.message.includes(wrong) && e.message.includes(manifestJson().models.lidar_backbone.sha256));
      return true;
    });
  } finally {
    t.cleanup();
  }
});

test('LidarEncoder refuses models whose tensors break the contract (a backbone given as the PFN)', async () => {
  const m = await loadManifest(MANIFEST);
  const backbone = await createSession(m.models.lidar_backbone.path, { threads: 1 });
  try {
    assert.throws(() => new LidarEncoder(m.grid, m.pillar, backbone, backbone), (e: ModelContractError) => e instanceof ModelContractError && /input 'pillars': missing; the model's inputs are 'bev_pillars'/.test(e.message));
  } finally {
    await backbone.session.release();
  }
});

test('PerceptionModels: points → pillars → PFN → scatter → backbone match torch (1e-4) for two frames of different pillar counts', async () => {
  const models = await PerceptionModels.load(MANIFEST, { device: 'cpu', threads: 1 });
  try {
    assert.equal(models.provider, 'cpu');
    assert.deepEqual(Object.keys(models.loadMs).sort(), ['detection_head', 'fusion_attention', 'lidar_backbone', 'lidar_pfn']);
    assert.deepEqual(models.lidar.featureShape, [2, 4, 6]);
    assert.equal(models.lidar.pillarChannels, 4);
    let previous: Float32Array | undefined;
    for (const [i, frame] of reference.frames.entries()) {
      const result = await models.lidar.encode(Float32Array.from(frame.points));
      assert.equal(result.pillars.pillarCount, frame.pillarCount, `frame ${i}: pillars`);
      assert.deepEqual(Array.from(result.pillars.coords.subarray(0, 2 * frame.pillarCount)), frame.coords);
      assertClose(result.features, frame.bevFeatures, 1e-4, `frame ${i} BEV features`);
      for (const stage of ['pillarise', 'pfn', 'scatter', 'backbone'] as const) {
        assert.ok(result.timings[stage]! >= 0, `frame ${i}: timing ${stage}`);
      }
      // The encoder reuses its output buffer from frame to frame.
      if (previous) assert.equal(result.features, previous);
      previous = result.features;
    }
    assert.notEqual(reference.frames[0].pillarCount, reference.frames[1].pillarCount);

    // With `out`, features land in the caller's buffer; an empty cloud runs the backbone on an empty canvas.
    const out = new Float32Array(2 * 4 * 6);
    const own = await models.lidar.encode(Float32Array.from(reference.frames[0].points), { out });
    assert.equal(own.features, out);
    assertClose(out, reference.frames[0].bevFeatures, 1e-4, 'frame 0 into out');
    const empty = await models.lidar.encode(new Float32Array(0));
    assert.equal(empty.pillars.pillarCount, 0);
    assert.ok(empty.features.every(Number.isFinite));
  } finally {
    await models.dispose();
  }
});

test('DetectionHead: raw outputs match torch (1e-4), detections are decode + per-class NMS of them', async () => {
  const m = await loadManifest(MANIFEST);
  const head = await DetectionHead.load(m, { threads: 1 });
  try {
    const result = await head.detect(Float32Array.from(reference.head.input));
    assertClose(result.clsLogits, reference.head.clsLogits, 1e-4, 'cls_logits');
    assertClose(result.boxDeltas, reference.head.boxDeltas, 1e-4, 'box_deltas');
    const layout = anchorLayout(m.grid, m.anchors);
    const expected = nmsPerClass(
      decodeDetections(layout, Float32Array.from(reference.head.clsLogits), Float32Array.from(reference.head.boxDeltas), m.postprocess),
      m.postprocess.nmsIouThreshold,
    );
    assert.ok(expected.length > 0, 'the fixture head should produce detections');
    assert.equal(result.detections.length, expected.length);
    result.detections.forEach((d, i) => {
      assert.equal(d.cls, expected[i].cls);
      assert.ok(Math.abs(d.score - expected[i].score) < 1e-4 && d.score > 0.2);
      assert.ok(Math.abs(d.box.x - expected[i].box.x) < 1e-3 && Math.abs(d.box.yaw - expected[i].box.yaw) < 1e-3);
    });
    for (const stage of ['head', 'decode', 'nms'] as const) assert.ok(result.timings[stage]! >= 0);
    await assert.rejects(head.detect(new Float32Array(5)), /bev.length/);
  } finally {
    await head.dispose();
  }
});

test('FusionAttention: K = 3 matches torch (1e-4); K = 1 (ego alone) returns the ego map; a null mask means full coverage', async () => {
  const m: PerceptionManifest = await loadManifest(MANIFEST);
  const attention = await FusionAttention.load(m, { threads: 1 });
  try {
    const size = 2 * 4 * 6, plane = 4 * 6;
    const { k, aligned, mask, fused } = reference.fusion;
    const maps = Array.from({ length: k }, (_, i) => Float32Array.from(aligned.slice(i * size, (i + 1) * size)));
    const masks = Array.from({ length: k }, (_, i) => Float32Array.from(mask.slice(i * plane, (i + 1) * plane)));
    const result = await attention.fuse(maps, masks);
    assertClose(result.fused, fused, 1e-4, 'fused');
    assert.ok(result.timings.fusion! >= 0);
    // The ego's mask in the reference is all ones: null must give the same.
    assertClose((await attention.fuse(maps, [null, masks[1], masks[2]])).fused, fused, 1e-4, 'fused, ego mask null');
    // Attention over a single agent is the identity: softmax of one score is 1.
    const alone = await attention.fuse([maps[0]], [null], new Float32Array(size));
    assertClose(alone.fused, maps[0], 1e-5, 'ego alone');
    await assert.rejects(attention.fuse([maps[0]], []), /masks.length/);
  } finally {
    await attention.dispose();
  }
});

test('warmUp runs the shipped models on a synthetic frame and leaves nothing behind: a real frame encodes the same after it', async () => {
  const { PerceptionModels } = await import('../../src/perception/index.ts');
  const { openDataset } = await import('../../src/datasets/index.ts');
  const manifest = new URL('../../models/manifest.json', import.meta.url).pathname;
  const fixture = new URL('../../datasets/fixture/fixture-s1', import.meta.url).pathname;
  const points = await (await (await openDataset(fixture)).scenarios[0].frame(0)).agents[0].loadPoints();
  const warm = await PerceptionModels.load(manifest, { threads: 1 });
  const cold = await PerceptionModels.load(manifest, { threads: 1 });
  try {
    const ms = await warm.warmUp();
    assert.ok(ms > 0 && Number.isFinite(ms));
    // The synthetic pillars must not survive into the next frame's canvas (the encoder reuses its buffers).
    const a = (await warm.lidar.encode(points)).features.slice();
    const b = (await cold.lidar.encode(points)).features;
    assert.deepEqual(a, b);
    assert.ok(a.some((v) => v !== 0));
  } finally {
    await Promise.all([warm.dispose(), cold.dispose()]);
  }
});
