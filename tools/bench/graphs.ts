// The traced ONNX graphs of lidar_pfn and fusion_attention (kept in test/fixtures/onnx/traced) against the lean
// rewrites the manifest ships (tools/train/export_lean.py), interleaved run by run on the same inputs and the same
// ORT threads: the 30k-point frame's pillars, and four real feature maps with partial coverage. Also the largest
// |lean − traced| difference seen, which test/perception/lean-models.test.ts holds below 1e-4.
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { Pillarizer, createSession, featureShape, loadManifest, type ModelSession } from '../../src/perception/index.ts';
import { type BenchOptions, Samples, type SectionResult, round, roundStats, thinCloud } from './common.ts';
import { loadFrames } from './stages.ts';

const TRACED = fileURLToPath(new URL('../../test/fixtures/onnx/traced/', import.meta.url));

export async function runGraphs(o: BenchOptions): Promise<SectionResult> {
  const frames = await loadFrames(o);
  const manifest = await loadManifest(o.models);
  const [C, H, W] = featureShape(manifest.grid);
  const plane = H * W, size = C * plane;
  const sessions: Record<string, ModelSession> = {};
  const samples = new Samples();
  const worst: Record<string, number> = { lidar_pfn: 0, fusion_attention: 0 };
  try {
    for (const role of ['lidar_pfn', 'fusion_attention'] as const) {
      const entry = manifest.models[role]!;
      sessions[`${role} lean`] = await createSession(entry.path, { device: o.device, threads: 1, sha256: entry.sha256 });
      sessions[`${role} traced`] = await createSession(`${TRACED}${role}.onnx`, { device: o.device, threads: 1 });
    }
    // Four real maps (the LiDAR encoder of the first frame's agents), collaborators covering a band each.
    const { LidarEncoder } = await import('../../src/perception/index.ts');
    const encoder = await LidarEncoder.load(manifest, { device: o.device, threads: 1 });
    const K = Math.min(4, frames[0].agents.length);
    const aligned = new Float32Array(K * size);
    const mask = new Float32Array(K * plane).fill(1);
    try {
      for (let k = 0; k < K; k++) {
        aligned.set((await encoder.encode(frames[0].agents[k].points)).features, k * size);
        if (k === 0) continue;
        for (let cell = 0; cell < plane; cell++) {
          if (Math.floor(cell / W) % 2 === k % 2) continue;
          mask[k * plane + cell] = 0;
          for (let c = 0; c < C; c++) aligned[k * size + c * plane + cell] = 0;
        }
      }
    } finally {
      await encoder.dispose();
    }
    const attention = { aligned: new ort.Tensor('float32', aligned, [K, C, H, W]), mask: new ort.Tensor('float32', mask, [K, 1, H, W]) };
    const pillarizer = new Pillarizer(manifest.grid, manifest.pillar);
    const iterations = o.quick ? 4 : 2 * frames.length;
    for (let it = -1; it < iterations; it++) {
      const batch = pillarizer.pillarize(thinCloud(frames[Math.max(0, it) % frames.length].agents[0].points, 30_000));
      const P = batch.pillarCount;
      const pillars = { pillars: new ort.Tensor('float32', batch.features.subarray(0, P * batch.maxPointsPerPillar * batch.featureCount), [P, batch.maxPointsPerPillar, batch.featureCount]) };
      for (const [role, feeds, output] of [['lidar_pfn', pillars, 'pillar_features'], ['fusion_attention', attention, 'fused']] as const) {
        const got: Float32Array[] = [];
        for (const variant of ['traced', 'lean']) {
          const t = performance.now();
          const r = await sessions[`${role} ${variant}`].session.run(feeds);
          if (it >= 0) samples.add(`${role} ${variant}`, performance.now() - t); // iteration −1 warms up
          got.push(r[output].data as Float32Array);
        }
        for (let i = 0; i < got[0].length; i++) worst[role] = Math.max(worst[role], Math.abs(got[0][i] - got[1][i]));
      }
    }
  } finally {
    await Promise.all(Object.values(sessions).map((s) => s.session.release()));
  }
  const stats = roundStats(samples.stats());
  return {
    ms: stats,
    speedup: Object.fromEntries(['lidar_pfn', 'fusion_attention'].map((r) => [r, round(stats[`${r} traced`].p50 / stats[`${r} lean`].p50)])),
    maxAbsDiff: worst,
    notes: ['graphs: one ORT thread; lidar_pfn on the 30k-point frame\'s pillars, fusion_attention on 4 real maps (ego + 3 half-covering)'],
  };
}
