// Per-agent work in one process (the in-process detector encodes every agent of a frame): is it faster to encode
// the agents one after another with ONNX Runtime's intra-op threads, or in worker threads, one encoder each?
// Wall time to encode all agents of a frame (full scans, pillarise → PFN → scatter → backbone), the three ways
// interleaved frame by frame so each sees the same machine load:
//   sequential, 1 ORT thread  |  sequential, 2 ORT threads  |  2 workers × 1 ORT thread, agents split between them
import os from 'node:os';
import { LidarEncoder, LidarEncoderPool, featureShape, loadManifest } from '../../src/perception/index.ts';
import { type BenchOptions, Samples, type SectionResult, roundStats } from './common.ts';
import { loadFrames } from './stages.ts';

const WORKERS = 2;

export async function runWorkers(o: BenchOptions): Promise<SectionResult> {
  const frames = await loadFrames(o);
  const manifest = await loadManifest(o.models);
  const [C, H, W] = featureShape(manifest.grid);
  const one = await LidarEncoder.load(manifest, { threads: 1 });
  const two = await LidarEncoder.load(manifest, { threads: 2 });
  // The product's pool (src/perception/encoder-pool.ts, detect --workers): points copied in, features transferred out.
  const pool = await LidarEncoderPool.start(manifest, { workers: WORKERS, threads: 1 });
  const samples = new Samples();
  try {
    const iterations = o.quick ? 3 : 2 * frames.length;
    const out = new Float32Array(C * H * W);
    const outs: Float32Array[] = [];
    for (let it = -1; it < iterations; it++) {
      const clouds = frames[Math.max(0, it) % frames.length].agents.map((a) => a.points);
      const run = async (name: string, fn: () => Promise<unknown>) => {
        const t = performance.now();
        await fn();
        if (it >= 0) samples.add(name, performance.now() - t); // iteration −1 warms every path up
      };
      await run('sequential1Thread', async () => { for (const p of clouds) await one.encode(p, { out }); });
      await run('sequential2Threads', async () => { for (const p of clouds) await two.encode(p, { out }); });
      await run('workers2x1Thread', () => Promise.all(clouds.map((p, k) => pool.encode(p, (outs[k] ??= new Float32Array(C * H * W))))));
      if (it >= 0) o.log(`workers: frame ${it + 1}/${iterations}`);
    }
  } finally {
    await pool.dispose();
    await one.dispose();
    await two.dispose();
  }
  return {
    agentsPerFrame: frames[0].agents.length,
    cores: os.availableParallelism(),
    encodeAllAgents: roundStats(samples.stats()),
    notes: [
      'wall ms to LiDAR-encode every agent of a frame (full scans); workers2x1Thread is LidarEncoderPool (detect --workers 2): points copied in, features transferred out and copied into the caller\'s buffer',
    ],
  };
}
