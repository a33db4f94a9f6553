// Turns a thrown error into one clear line and an exit code. Errors the user can act on (a dataset in the wrong
// layout, a bad scenario file) carry their own context; anything else is a bug and keeps its stack.
import { DatasetError } from '../datasets/index.ts';

export const EXIT_USAGE = 2;
export const EXIT_INPUT = 3;
export const EXIT_INTERNAL = 1;

/** An error the user caused and can fix; the message is the whole story. */
export class UserInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserInputError';
  }
}

function isUserError(err: unknown): err is Error {
  if (err instanceof DatasetError || err instanceof UserInputError) return true;
  // Stages define their own typed errors; they mark themselves as user-facing with this flag.
  return err instanceof Error && (err as { userFacing?: boolean }).userFacing === true;
}

export function reportFailure(err: unknown): number {
  if (isUserError(err)) {
    process.stderr.write(`v2xfuse: ${err.message}\n`);
    return EXIT_INPUT;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  process.stderr.write(`v2xfuse: internal error: ${e.message}\n`);
  if (process.env.V2XFUSE_DEBUG) process.stderr.write(`${e.stack}\n`);
  else process.stderr.write('(set V2XFUSE_DEBUG=1 for the stack trace)\n');
  return EXIT_INTERNAL;
}

/** Wraps a command action so every failure ends in reportFailure. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      process.exitCode = reportFailure(err);
    }
  };
}
