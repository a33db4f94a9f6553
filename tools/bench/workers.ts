// Per-agent work in one process (the in-process detector encodes every agent of a frame): is it faster to encode
// the agents one after another with ONNX Runtime's intra-op threads, or in worker threads, one encoder each?
// Wall time to encode all agents of a frame (full scans, pillarise → PFN → scatter → backbone), the three ways
// interleaved frame by frame so each sees the same machine load:
//   sequential, 1 ORT thread  |  sequential, 2 ORT threads  |  2 workers × 1 ORT thread, agents split between them
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { LidarEncoder, featureShape, loadManifest } from '../../src/perception/index.ts';
import { type BenchOptions, Samples, type SectionResult, roundStats } from './common.ts';
import type { EncodeWorkerData } from './encode-worker.ts';
import { loadFrames } from './stages.ts';

const WORKERS = 2;

interface EncodeWorker {
  worker: Worker;
  points: Float32Array;
  features: Float32Array;
}

async function startWorker(models: string, maxPoints: number, mapSize: number): Promise<EncodeWorker> {
  const pointsBuffer = new SharedArrayBuffer(4 * 4 * maxPoints);
  const featuresBuffer = new SharedArrayBuffer(4 * mapSize);
  const data: EncodeWorkerData = { models, threads: 1, points: pointsBuffer, features: featuresBuffer };
  // Node 20 does not apply tsx's hooks to a worker's entry file: the worker registers tsx, then imports it.
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./encode-worker.ts', import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
  const worker = new Worker(bootstrap, { eval: true, workerData: data });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  return { worker, points: new Float32Array(pointsBuffer), features: new Float32Array(featuresBuffer) };
}

function encodeOn(w: EncodeWorker, points: Float32Array): Promise<void> {
  w.points.set(points);
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      w.worker.off('message', onMessage);
      w.worker.off('error', done);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = () => done();
    w.worker.on('message', onMessage);
    w.worker.on('error', done);
    w.worker.postMessage({ count: points.length / 4 });
  });
}

export async function runWorkers(o: BenchOptions): Promise<SectionResult> {
  const frames = await loadFrames(o);
  const manifest = await loadManifest(o.models);
  const [C, H, W] = featureShape(manifest.grid);
  const maxPoints = Math.max(...frames.flatMap((f) => f.agents.map((a) => a.points.length / 4)));
  const one = await LidarEncoder.load(manifest, { threads: 1 });
  const two = await LidarEncoder.load(manifest, { threads: 2 });
  const workers: EncodeWorker[] = [];
  const samples = new Samples();
  try {
    for (let k = 0; k < WORKERS; k++) workers.push(await startWorker(o.models, maxPoints, C * H * W));
    const iterations = o.quick ? 3 : 2 * frames.length;
    const out = new Float32Array(C * H * W);
    for (let it = -1; it < iterations; it++) {
      const clouds = frames[Math.max(0, it) % frames.length].agents.map((a) => a.points);
      const run = async (name: string, fn: () => Promise<unknown>) => {
        const t = performance.now();
        await fn();
        if (it >= 0) samples.add(name, performance.now() - t); // iteration −1 warms every path up
      };
      await run('sequential1Thread', async () => { for (const p of clouds) await one.encode(p, { out }); });
      await run('sequential2Threads', async () => { for (const p of clouds) await two.encode(p, { out }); });
      await run('workers2x1Thread', () => Promise.all(workers.map(async (w, k) => {
        for (let a = k; a < clouds.length; a += WORKERS) await encodeOn(w, clouds[a]);
      })));
      if (it >= 0) o.log(`workers: frame ${it + 1}/${iterations}`);
    }
  } finally {
    for (const w of workers) w.worker.postMessage('close');
    await Promise.all(workers.map((w) => new Promise((resolve) => w.worker.once('exit', resolve))));
    await one.dispose();
    await two.dispose();
  }
  return {
    agentsPerFrame: frames[0].agents.length,
    cores: os.availableParallelism(),
    encodeAllAgents: roundStats(samples.stats()),
    notes: [
      'wall ms to LiDAR-encode every agent of a frame (full scans); workers get points and return features through SharedArrayBuffers (the map copied once into shared memory: ONNX Runtime refuses SharedArrayBuffer tensors)',
    ],
  };
}
