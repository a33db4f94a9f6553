// A full garbage collection on demand, for a node about to stream: loading, warming up and reading ahead leave
// hundreds of MB of garbage (every scan read ahead is a new buffer), and V8 collects it when it chooses, which
// was during the first frames of the stream: scans that took 5 ms to load took 50-60 ms then.
import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | null | undefined;

/** Collects now, while nothing is timed; does nothing where V8 offers no gc(). */
export function collectGarbageNow(): void {
  if (gc === undefined) {
    // The known way to reach V8's gc() without starting node with --expose-gc: set the flag, then take the
    // function from a fresh context, where it is installed. A runtime that refuses only loses the head start.
    try {
      v8.setFlagsFromString('--expose-gc');
      gc = (vm.runInNewContext('gc') as (() => void) | undefined) ?? null;
    } catch {
      gc = null;
    }
  }
  gc?.();
}
