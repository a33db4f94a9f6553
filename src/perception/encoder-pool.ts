// LiDAR encoders in worker threads, each with its own ONNX Runtime sessions, for code that encodes several agents
// of one frame in one process (the in-process detector, `detect --workers N`). ONNX Runtime runs a session on the
// calling thread, so one process encodes one agent at a time however many cores it has; with two workers two
// agents encode at once (the bench's workers section measured a frame's four agents in 207 ms against 337 ms one
// after another, on 2 cores). Points are copied in (structured clone, ~1 MB), features transferred out.
import { Worker } from 'node:worker_threads';
import type { EncodeReply, EncodeRequest, EncoderWorkerData } from './encoder-pool-worker.ts';
import type { PerceptionManifest } from './manifest.ts';
import type { DeviceOption, StageTimings } from './runtime.ts';

export interface PooledEncoding {
  /** [C, H, W], the `out` given to encode(). */
  features: Float32Array;
  timings: StageTimings;
  droppedPillars: number;
}

/** A worker that failed to start or to encode; `message` carries the worker's own error. */
export class EncoderPoolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncoderPoolError';
  }
}

interface Job {
  points: Float32Array;
  out: Float32Array;
  resolve: (r: PooledEncoding) => void;
  reject: (e: Error) => void;
}

interface PoolWorker {
  worker: Worker;
  busy?: { id: number; job: Job };
}

export class LidarEncoderPool {
  private readonly queue: Job[] = [];
  private nextId = 0;
  private failed: Error | undefined;
  /** Scans encoded so far. */
  encoded = 0;

  private constructor(private readonly workers: PoolWorker[]) {
    for (const w of workers) {
      w.worker.on('message', (reply: EncodeReply) => this.settle(w, reply));
      w.worker.on('error', (err) => this.fail(new EncoderPoolError(`encoder worker failed: ${err.message}`)));
    }
  }

  /** Starts `workers` encoders of `manifest` (already resolved to its precision), `threads` ORT threads each. */
  static async start(manifest: PerceptionManifest, opts: { workers: number; threads?: number; device?: DeviceOption }): Promise<LidarEncoderPool> {
    if (!Number.isInteger(opts.workers) || opts.workers < 1) throw new EncoderPoolError(`workers = ${opts.workers}: must be a positive integer`);
    const data: EncoderWorkerData = { manifest, threads: opts.threads ?? 1, device: opts.device };
    // Node 20 does not apply tsx's hooks to a worker's entry file: the worker registers tsx, then imports it.
    const tsxApi = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./encoder-pool-worker.ts', import.meta.url).href;
    const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); })`;
    const started: Worker[] = [];
    try {
      for (let k = 0; k < opts.workers; k++) {
        const worker = new Worker(bootstrap, { eval: true, workerData: data });
        started.push(worker);
        await new Promise<void>((resolve, reject) => {
          worker.once('message', () => resolve());
          worker.once('error', (err) => reject(new EncoderPoolError(`encoder worker ${k} did not start: ${err.message}`)));
          worker.once('exit', (code) => reject(new EncoderPoolError(`encoder worker ${k} exited with ${code} while starting`)));
        });
      }
    } catch (err) {
      await Promise.all(started.map((w) => w.terminate()));
      throw err;
    }
    return new LidarEncoderPool(started.map((worker) => ({ worker })));
  }

  get size(): number {
    return this.workers.length;
  }

  /** Encodes xyzi `points` on the next free worker into `out` ([C, H, W]). */
  encode(points: Float32Array, out: Float32Array): Promise<PooledEncoding> {
    if (this.failed) return Promise.reject(this.failed);
    return new Promise((resolve, reject) => {
      this.queue.push({ points, out, resolve, reject });
      this.dispatch();
    });
  }

  async dispose(): Promise<void> {
    this.fail(new EncoderPoolError('encoder pool disposed'));
    await Promise.all(this.workers.map(async (w) => {
      // A worker releases its sessions and exits; one that cannot (it crashed, or hangs) is terminated.
      const exited = new Promise<boolean>((resolve) => w.worker.once('exit', () => resolve(true)));
      w.worker.postMessage('close');
      if (!(await Promise.race([exited, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref())]))) await w.worker.terminate();
    }));
  }

  private dispatch(): void {
    for (const w of this.workers) {
      if (w.busy || this.queue.length === 0) continue;
      const job = this.queue.shift()!;
      const id = this.nextId++;
      w.busy = { id, job };
      w.worker.postMessage({ id, points: job.points } satisfies EncodeRequest);
    }
  }

  private settle(w: PoolWorker, reply: EncodeReply): void {
    const busy = w.busy;
    if (!busy || busy.id !== reply.id) return;
    w.busy = undefined;
    const { job } = busy;
    if ('error' in reply) job.reject(new EncoderPoolError(`encoder worker: ${reply.error}`));
    else if (reply.features.length !== job.out.length) job.reject(new EncoderPoolError(`encoder worker returned ${reply.features.length} values, expected ${job.out.length}`));
    else {
      job.out.set(reply.features);
      this.encoded++;
      job.resolve({ features: job.out, timings: reply.timings as StageTimings, droppedPillars: reply.droppedPillars });
    }
    this.dispatch();
  }

  private fail(err: Error): void {
    this.failed ??= err;
    for (const w of this.workers) {
      w.busy?.job.reject(err);
      w.busy = undefined;
    }
    for (const job of this.queue.splice(0)) job.reject(err);
  }
}
