// The worker side of fuzz-harness.ts: builds one suite's cases, announces each before running it, and reports
// how it ended. Classification happens here, where the error classes are the ones the readers throw.
import { parentPort, workerData } from 'node:worker_threads';
import { DatasetError } from '../../src/datasets/index.ts';
import { fuzzCases } from './fuzz-cases.ts';
import type { FuzzOutcome, FuzzRunOptions, WorkerMessage } from './fuzz-harness.ts';

const post = (m: WorkerMessage) => parentPort!.postMessage(m);

async function main(): Promise<void> {
  const { suite, seed, cases } = workerData as Pick<FuzzRunOptions, 'suite' | 'seed' | 'cases'>;
  const set = fuzzCases(suite, seed, cases);
  try {
    let index = 0;
    for (const c of set.cases) {
      post({ type: 'start', index, description: c.description });
      let outcome: FuzzOutcome;
      try {
        await c.run();
        outcome = { index, description: c.description, result: 'ok' };
      } catch (err) {
        const e = err as Error;
        // A DatasetError counts only when it names the file (or a file of the tree) and says so in its message.
        const named = err instanceof DatasetError && err.path.startsWith(c.pathPrefix) && e.message.includes(err.path);
        outcome = {
          index, description: c.description, result: named ? 'dataset-error' : 'other',
          errorName: e?.name ?? typeof err, message: String(e?.message ?? err).slice(0, 300),
          ...(named ? {} : { stack: String(e?.stack ?? '').split('\n').slice(1, 5).join('\n') }),
        };
      }
      post({ type: 'done', outcome });
      index++;
    }
  } finally {
    set.cleanup();
  }
  post({ type: 'end' });
}

main().catch((err) => post({ type: 'fatal', message: String((err as Error)?.stack ?? err) }));
