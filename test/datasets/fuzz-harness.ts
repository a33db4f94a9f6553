// Runs a suite of fuzz cases (fuzz-cases.ts) in a worker thread under a watchdog: a case that loops forever
// cannot be interrupted inside the test's own thread (a synchronous parser never yields to a timer), so the
// worker announces each case before running it and is terminated when it stays silent too long. The hung case
// is then named in the failure, with its seed, so it can be replayed.
import { Worker } from 'node:worker_threads';

export type FuzzSuite = 'pcd' | 'opv2v' | 'dair';

export interface FuzzOutcome {
  index: number;
  description: string;
  /** 'ok': parsed; 'dataset-error': refused with a DatasetError naming the file; 'other': anything else (a bug). */
  result: 'ok' | 'dataset-error' | 'other';
  errorName?: string;
  message?: string;
  /** The first lines of the stack, for 'other'. */
  stack?: string;
}

export interface FuzzRun {
  outcomes: FuzzOutcome[];
  /** The case the worker was running when the watchdog fired. */
  hung?: { index: number; description: string };
}

export interface FuzzRunOptions {
  suite: FuzzSuite;
  seed: number;
  cases: number;
  /** No word from the worker for this long: the current case is declared hung. Generous: a hang detector, not a timing test. */
  watchdogMs?: number;
}

export type WorkerMessage =
  | { type: 'start'; index: number; description: string }
  | { type: 'done'; outcome: FuzzOutcome }
  | { type: 'end' }
  | { type: 'fatal'; message: string };

export async function runFuzz(opts: FuzzRunOptions): Promise<FuzzRun> {
  const url = new URL('./fuzz-worker.ts', import.meta.url).href;
  // The worker does not inherit tsx's loader: register it first, then load the TypeScript module.
  const bootstrap = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(url)}); })`;
  const worker = new Worker(bootstrap, { eval: true, workerData: { suite: opts.suite, seed: opts.seed, cases: opts.cases } });
  const watchdogMs = opts.watchdogMs ?? 15_000;
  const outcomes: FuzzOutcome[] = [];
  let current: { index: number; description: string } | undefined;
  try {
    return await new Promise<FuzzRun>((resolve, reject) => {
      let timer: NodeJS.Timeout;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => resolve({ outcomes, hung: current ?? { index: -1, description: 'worker start-up' } }), watchdogMs);
      };
      arm();
      worker.on('message', (m: WorkerMessage) => {
        arm();
        if (m.type === 'start') current = { index: m.index, description: m.description };
        else if (m.type === 'done') outcomes.push(m.outcome);
        else if (m.type === 'fatal') {
          clearTimeout(timer);
          reject(new Error(`fuzz worker failed: ${m.message}`));
        } else {
          clearTimeout(timer);
          resolve({ outcomes });
        }
      });
      worker.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      worker.on('exit', (code) => {
        clearTimeout(timer);
        if (code !== 0) reject(new Error(`fuzz worker exited with code ${code} during case ${current?.index}: ${current?.description}`));
        else resolve({ outcomes, hung: undefined });
      });
    });
  } finally {
    await worker.terminate();
  }
}

/** One line per failure, for assertion messages. */
export function describeFailures(outcomes: FuzzOutcome[]): string {
  return outcomes
    .filter((o) => o.result === 'other')
    .slice(0, 8)
    .map((o) => `#${o.index} ${o.description}: ${o.errorName}: ${o.message}\n${o.stack ?? ''}`)
    .join('\n');
}
