// Wall-clock nanoseconds for latency measurement. Date.now() has millisecond resolution and can step (NTP), so it
// is read once, when this module loads, and every later reading adds the monotonic process.hrtime.bigint() elapsed
// since then: nanosecond resolution, never goes backwards, and comparable with capture times stamped in other
// processes to within the hosts' clock agreement (the same host: the accuracy of one Date.now() read, ~1 ms).
// A long-running process drifts from NTP-corrected time by the host oscillator's error (parts per million).

const anchorEpochNs = BigInt(Date.now()) * 1_000_000n;
const anchorMonotonicNs = process.hrtime.bigint();

/** Nanoseconds since the Unix epoch, monotonic within this process (see the note above). */
export function epochNowNs(): bigint {
  return anchorEpochNs + (process.hrtime.bigint() - anchorMonotonicNs);
}
