// The frame source of a replayed sequence: which frames an agent has, and when each counts as captured.
//
// Capture times are the dataset's own clock moved to a shared epoch: capture = epoch + (frame time − the
// sequence's first frame time). Every process of one run gets the same epoch, so the same dataset frame carries
// the same capture time in every agent's messages, and the fusion node can match them by time alone, as it
// would match live sensors. Paced replay (rate > 0) sleeps until each frame's capture time, so capture times are
// wall-clock instants and latency against them is real; as-fast-as-possible replay (rate 0) keeps the same
// capture times but does not wait, so they become a replay clock that runs ahead of or behind the wall clock.
import type { AgentFrame, CooperativeFrame, CooperativeSequence } from '../datasets/index.ts';
import { epochNowNs } from './clock.ts';

export interface ReplayOptions {
  /** Frames per second to replay at, against the capture times; 0 = as fast as the agent can go. */
  rateHz: number;
  /** Capture time of the sequence's first frame, ns since the Unix epoch. */
  epochNs: bigint;
  /** Only the first N frames of the sequence. */
  maxFrames?: number;
  signal?: AbortSignal;
  /** Frames already read, by index; frames read now are added. A replay that reads the metadata ahead (a paced
   * replay after a first pass) then parses nothing while it runs: reading a frame's files is the dataset's cost,
   * not the agent's, and at 10 Hz it is not small (OPV2V yaml). */
  cache?: Map<number, CooperativeFrame>;
  /** Paced: a frame whose successor is already due when it comes up is skipped (`onSkip`), as a live sensor's
   * driver with a queue of one hands a busy consumer its newest scan; a consumer slower than the rate then runs
   * at most one frame behind instead of falling further behind with every frame. */
  latestOnly?: boolean;
  onSkip?: (index: number, captureNs: bigint) => void;
}

export interface ReplayedFrame {
  /** Index of the frame in the sequence. */
  index: number;
  frameId: string;
  agent: AgentFrame;
  captureNs: bigint;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

/**
 * The frames of `seq` in which `agentId` appears, in order, with their capture times. With rateHz > 0 each is
 * yielded at its capture time, the recording's time scaled to the rate (10 on a 10 Hz recording = real time); a
 * consumer slower than the rate gets the next frame at once, late, rather than skipping frames (the caller sees the
 * lag in latency), unless `latestOnly`.
 */
export async function* replayAgentFrames(seq: CooperativeSequence, agentId: string, opts: ReplayOptions): AsyncGenerator<ReplayedFrame> {
  const n = Math.min(seq.frameCount, opts.maxFrames ?? Infinity);
  if (n === 0) return;
  const cache = opts.cache;
  // latestOnly reads one frame ahead: kept here until the loop gets to it, so that no frame is read twice.
  let ahead: { index: number; frame: CooperativeFrame } | undefined;
  const frameAt = async (i: number): Promise<CooperativeFrame> => {
    if (ahead?.index === i) return ahead.frame;
    let f = cache?.get(i);
    if (!f) {
      f = await seq.frame(i);
      cache?.set(i, f);
    }
    ahead = { index: i, frame: f };
    return f;
  };
  const first = await frameAt(0);
  const t0 = first.timestampNs;
  // The sequence's own rate, to scale pacing when the user asks for another one.
  const second = n > 1 ? await frameAt(1) : undefined;
  const periodNs = second ? Number(second.timestampNs - t0) : 1e8;
  const scale = opts.rateHz > 0 && periodNs > 0 ? 1e9 / opts.rateHz / periodNs : 0;
  for (let i = 0; i < n; i++) {
    if (opts.signal?.aborted) return;
    const frame = i === 0 ? first : i === 1 && second ? second : await frameAt(i);
    const agent = frame.agents.find((a) => a.agentId === agentId);
    if (!agent) continue;
    // Paced at another rate than the recording's, the capture times stretch with it: they stay wall-clock instants.
    const captureNs = opts.epochNs + BigInt(Math.round(Number(agent.timestampNs - t0) * (scale > 0 ? scale : 1)));
    if (scale > 0) await sleep(Number(captureNs - epochNowNs()) / 1e6, opts.signal);
    if (scale > 0 && opts.latestOnly) {
      // The agent's own next frame (it may be missing from some): skip this one if that one is already due.
      let next: bigint | undefined;
      for (let j = i + 1; j < n && next === undefined; j++) {
        const later = (await frameAt(j)).agents.find((a) => a.agentId === agentId);
        if (later) next = opts.epochNs + BigInt(Math.round(Number(later.timestampNs - t0) * scale));
      }
      if (next !== undefined && epochNowNs() >= next) {
        opts.onSkip?.(i, captureNs);
        continue;
      }
    }
    yield { index: i, frameId: frame.frameId, agent, captureNs };
  }
}

/** A scenario a replay cannot use: the dataset has none, or not the one asked for. */
export class ScenarioChoiceError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'ScenarioChoiceError';
  }
}

/** The scenario `name` of a dataset (its first when no name is given), or a ScenarioChoiceError naming the choices. */
export function pickScenario(scenarios: readonly CooperativeSequence[], name: string | undefined, source: string): CooperativeSequence {
  if (scenarios.length === 0) throw new ScenarioChoiceError(`${source}: the dataset has no scenario to replay`);
  if (name === undefined) return scenarios[0];
  const seq = scenarios.find((s) => s.name === name);
  if (!seq) throw new ScenarioChoiceError(`--scenario ${name}: not in ${source} (scenarios: ${scenarios.map((s) => s.name).join(', ')})`);
  return seq;
}
