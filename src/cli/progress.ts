// Progress bars on stderr, so that stdout stays clean for --json and pipes. cli-progress is a maintained,
// dependency-free bar that degrades to nothing when stderr is not a terminal (CI logs stay readable).
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, total: number, extra?: Record<string, string | number>): void;
  stop(): void;
}

export function progressBar(label: string, unit: string, extraFormat = ''): Progress {
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {value}/{total} ${unit} | {rate} ${unit}/s | eta {eta_formatted}${extraFormat}`,
      hideCursor: true,
      clearOnComplete: false,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  const t0 = performance.now();
  return {
    update(done, total, extra = {}) {
      const rate = done > 0 ? (done / ((performance.now() - t0) / 1000)).toFixed(2) : '0';
      if (!started) {
        bar.start(total, done, { rate, ...extra });
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done, { rate, ...extra });
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
