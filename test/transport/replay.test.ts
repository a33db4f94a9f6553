import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentFrame, CooperativeFrame, CooperativeSequence } from '../../src/datasets/index.ts';
import { epochNowNs } from '../../src/transport/clock.ts';
import { replayAgentFrames } from '../../src/transport/replay.ts';

/** A 10 Hz recording of one agent, frames 100 ms apart; only what the replay reads. */
function sequence(frames: number): CooperativeSequence {
  const frame = (i: number): CooperativeFrame => {
    const timestampNs = 1_000_000_000n + BigInt(i) * 100_000_000n;
    return { frameId: String(i), index: i, timestampNs, agents: [{ agentId: 'a', timestampNs } as unknown as AgentFrame] };
  };
  return {
    format: 'opv2v', name: 's', root: '/nowhere', agents: [], frameCount: frames, frameIds: [],
    frame: async (i) => frame(i),
    frames: async function* () {
      for (let i = 0; i < frames; i++) yield frame(i);
    },
  } as CooperativeSequence;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Paced at 5 Hz (frames 200 ms apart) with a consumer that needs 460 ms a frame: it cannot keep up.
async function consume(latestOnly: boolean) {
  const epochNs = epochNowNs() + 50_000_000n;
  const periodNs = 200_000_000n;
  const yielded: { index: number; atNs: bigint; captureNs: bigint }[] = [];
  const skipped: { index: number; atNs: bigint; captureNs: bigint }[] = [];
  const onSkip = (index: number, captureNs: bigint) => skipped.push({ index, atNs: epochNowNs(), captureNs });
  for await (const f of replayAgentFrames(sequence(6), 'a', { rateHz: 5, epochNs, latestOnly, onSkip })) {
    yielded.push({ index: f.index, atNs: epochNowNs(), captureNs: f.captureNs });
    await sleep(460);
  }
  return { yielded, skipped, periodNs, epochNs };
}

test('paced replay hands a slow consumer every frame, late', async () => {
  const { yielded, skipped, epochNs, periodNs } = await consume(false);
  assert.deepEqual(yielded.map((f) => f.index), [0, 1, 2, 3, 4, 5]);
  assert.equal(skipped.length, 0);
  yielded.forEach((f, i) => assert.equal(f.captureNs, epochNs + BigInt(i) * periodNs, 'capture times are the schedule, not the lag'));
  assert.ok(yielded[5].atNs - yielded[5].captureNs > 1_000_000_000n, 'the last frame came more than a second late');
});

test('latestOnly skips a frame whose successor is already due, so a slow consumer stays within a frame of its sensor', async () => {
  const { yielded, skipped, periodNs } = await consume(true);
  // Every frame is either handed over or skipped, once, in order; the last one is always handed over.
  assert.deepEqual([...yielded, ...skipped].map((f) => f.index).sort(), [0, 1, 2, 3, 4, 5]);
  assert.ok(skipped.length >= 2, `skipped ${skipped.map((s) => s.index)}`);
  assert.equal(yielded.at(-1)!.index, 5);
  // Skipped: its successor was due when it came up. Handed over (but the last): its successor was not yet due.
  for (const s of skipped) assert.ok(s.atNs >= s.captureNs + periodNs, `frame ${s.index} skipped before its successor was due`);
  for (const f of yielded.slice(0, -1)) assert.ok(f.atNs < f.captureNs + periodNs, `frame ${f.index} handed over ${(f.atNs - f.captureNs) / 1_000_000n} ms late`);
});
