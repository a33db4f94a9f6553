// A short load run (8 agents at 10 Hz for 2 s) in both shapes: one fusion node, and two subscribers sharing the
// stream through an MQTT 5 shared subscription. Asserts what must hold at any speed (everything offered arrives,
// the share group splits the work, nothing is refused); prints throughput and latency. The full sweep with more
// agents is tools/reliability/load.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MOSQUITTO_MISSING, findMosquitto } from './mosquitto-broker.ts';
import { runLoad } from './load-run.ts';

const installed = findMosquitto() !== undefined;

test('8 agents at 10 Hz into one fusion node: every ego frame fused, with the collaborators', { skip: installed ? false : MOSQUITTO_MISSING, timeout: 60_000 }, async () => {
  const r = await runLoad({ agents: 8, seconds: 2, mode: 'fusion' });
  console.log(JSON.stringify(r));
  assert.ok(r.published >= 8 * 15, `published ${r.published}`);
  // Every ego frame sent is fused (no faults here); most frames carry most of the 7 collaborators.
  assert.ok(r.deliveredPerS * r.seconds >= r.published / 8 - 1, `fused ${r.deliveredPerS * r.seconds} of ${r.published / 8}`);
  assert.ok(r.collaboratorsPerFrame! > 3.5, `collaborators per frame ${r.collaboratorsPerFrame}`);
  assert.deepEqual(Object.keys(r.dropped).filter((k) => k !== 'unused'), []);
});

test('8 agents at 10 Hz into two subscribers sharing $share/fusion/...: each message to exactly one of them', { skip: installed ? false : MOSQUITTO_MISSING, timeout: 60_000 }, async () => {
  const r = await runLoad({ agents: 8, seconds: 2, mode: 'shared' });
  console.log(JSON.stringify(r));
  const [a, b] = r.perSubscriber!;
  assert.equal(a! + b!, r.published, 'every message admitted once, none twice');
  assert.ok(a! > 0 && b! > 0, `split ${a}/${b}`);
  assert.deepEqual(r.dropped, {});
});
