// ONNX Runtime against PyTorch on the same models and inputs, side by side, both on one thread: the shipped
// lidar_pfn, lidar_backbone, detection_head and fusion_attention in ONNX Runtime here, their PyTorch definitions
// (tools/train/model.py) in bench_torch.py, run with Debian's /usr/bin/python3. Skipped when torch is missing.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { PerceptionModels, Pillarizer, featureShape, gridHeight, gridWidth, scatterToBev } from '../../src/perception/index.ts';
import { type BenchOptions, type SectionResult, round, stat } from './common.ts';
import { loadFrames } from './stages.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./bench_torch.py', import.meta.url));
const CHECKPOINT = 'runs/lidar-mixed-s1/checkpoint-last.pt';

async function dump(dir: string, name: string, data: Float32Array, shape: number[]): Promise<void> {
  await writeFile(path.join(dir, `${name}.bin`), new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  await writeFile(path.join(dir, `${name}.json`), JSON.stringify({ shape }));
}

async function medianMs(repeats: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const ms: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t = performance.now();
    await fn();
    ms.push(performance.now() - t);
  }
  return stat(ms).p50;
}

export async function runTorch(o: BenchOptions): Promise<SectionResult> {
  const probe = spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0) return { skipped: `PyTorch is not importable by ${PYTHON} (apt-get install python3-torch)` };
  const frames = await loadFrames(o);
  const models = await PerceptionModels.load(o.models, { device: o.device, threads: 1 });
  try {
    const grid = models.grid;
    const [C, H, W] = featureShape(grid);
    const pillarizer = new Pillarizer(grid, models.manifest.pillar);
    const batch = pillarizer.pillarize(frames[0].agents[0].points);
    const P = batch.pillarCount;
    const slot = batch.maxPointsPerPillar * batch.featureCount;
    const pillars = Float32Array.from(batch.features.subarray(0, P * slot));
    const pfnOut = new Float32Array(P * 64);
    const canvas = new Float32Array(64 * gridHeight(grid) * gridWidth(grid));
    const bev = new Float32Array(C * H * W);
    const A = models.manifest.anchors.reduce((n, a) => n + a.yaws.length, 0);
    const cls = new Float32Array(A * H * W);
    const box = new Float32Array(7 * A * H * W);
    const K = 4;
    const aligned = new Float32Array(K * C * H * W);
    const mask = new Float32Array(K * H * W).fill(1);
    const fused = new Float32Array(C * H * W);
    const t = (data: Float32Array, shape: number[]) => new ort.Tensor('float32', data, shape);
    const runPfn = () => models.lidar.pfn.session.run({ pillars: t(pillars, [P, batch.maxPointsPerPillar, batch.featureCount]) }, { pillar_features: t(pfnOut, [P, 64]) });
    const runBackbone = () => models.lidar.backbone.session.run({ bev_pillars: t(canvas, [1, 64, gridHeight(grid), gridWidth(grid)]) }, { bev_features: t(bev, [1, C, H, W]) });
    const runHead = () => models.head!.model.session.run({ bev: t(bev, [1, C, H, W]) }, { cls_logits: t(cls, [1, A, H, W]), box_deltas: t(box, [1, 7 * A, H, W]) });
    const runAttention = () => models.attention!.model.session.run({ aligned: t(aligned, [K, C, H, W]), mask: t(mask, [K, 1, H, W]) }, { fused: t(fused, [1, C, H, W]) });
    await runPfn();
    scatterToBev(batch, pfnOut, 64, grid, canvas);
    await runBackbone();
    for (let k = 0; k < K; k++) aligned.set(bev, k * C * H * W);

    const dir = path.join(o.outDir, 'torch-inputs');
    await mkdir(dir, { recursive: true });
    await dump(dir, 'pillars', pillars, [P, batch.maxPointsPerPillar, batch.featureCount]);
    await dump(dir, 'canvas', canvas, [1, 64, gridHeight(grid), gridWidth(grid)]);
    await dump(dir, 'bev', bev, [1, C, H, W]);
    await dump(dir, 'aligned', aligned, [K, C, H, W]);
    await dump(dir, 'mask', mask, [K, 1, H, W]);
    await writeFile(path.join(dir, 'meta.json'), JSON.stringify({ channels: C, anchors: A, depth: 3 }));

    const repeats = o.quick ? 3 : 10;
    const ortMs: Record<string, number> = {
      lidar_pfn: await medianMs(repeats, runPfn),
      lidar_backbone: await medianMs(repeats, runBackbone),
      detection_head: await medianMs(repeats, runHead),
      fusion_attention: await medianMs(repeats, runAttention),
    };
    const checkpoint = existsSync(CHECKPOINT) ? ['--checkpoint', CHECKPOINT] : [];
    const py = spawnSync(PYTHON, [SCRIPT, '--inputs', dir, '--repeats', String(repeats), ...checkpoint], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (py.status !== 0) throw new Error(`bench_torch.py failed: ${py.stderr.trim().split('\n').pop()}`);
    const torchOut = JSON.parse(py.stdout.trim().split('\n').pop()!) as { torch: string; weights: string; ms: Record<string, number>; maxAbsDiff: Record<string, number> };
    const models_: Record<string, unknown> = {};
    for (const [name, ms] of Object.entries(ortMs)) {
      const tm = torchOut.ms[name];
      models_[name] = { onnxRuntimeMs: round(ms), pytorchMs: round(tm), speedup: round(tm / ms) };
    }
    return {
      threads: 1, pillars: P, repeats, torch: torchOut.torch, pytorchWeights: torchOut.weights, maxAbsDiff: torchOut.maxAbsDiff,
      models: models_,
      notes: ['both on one thread, same input tensors (the ego scan of frame 0); medians; speedup = PyTorch ms / ONNX Runtime ms'],
    };
  } finally {
    await models.dispose();
  }
}
