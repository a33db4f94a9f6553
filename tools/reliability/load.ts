// Throughput and latency under load on a real Mosquitto (must be installed): N simulated agents at 10 Hz into one
// fusion node, then into two subscribers sharing the stream through an MQTT 5 shared subscription. The harness is
// the reliability tests' (test/reliability/load-run.ts), so the numbers come from the code the tests check.
//
//   npx tsx tools/reliability/load.ts --agents 8,16,32,64 --seconds 5
import { parseArgs } from 'node:util';
import { runLoad } from '../../test/reliability/load-run.ts';

const { values } = parseArgs({ options: { agents: { type: 'string', default: '8,16,32' }, seconds: { type: 'string', default: '5' } } });
const seconds = Number(values.seconds);
const f = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : '-');
console.log('| consumer | agents | offered msg/s | delivered /s | latency p50 / p95 / p99 ms | collaborators per frame | refused or unused |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const mode of ['fusion', 'shared'] as const) {
  for (const n of values.agents!.split(',').map(Number)) {
    const r = await runLoad({ agents: n, seconds, mode });
    const consumer = mode === 'fusion' ? 'one fusion node (results/s)' : `two shared subscribers (msg/s, split ${r.perSubscriber!.join('/')})`;
    console.log(`| ${consumer} | ${n} | ${f(r.offeredPerS)} | ${f(r.deliveredPerS)} | ${f(r.latencyMs.p50)} / ${f(r.latencyMs.p95)} / ${f(r.latencyMs.p99)} | ${r.collaboratorsPerFrame !== undefined ? `${r.collaboratorsPerFrame.toFixed(1)} of ${n - 1}` : '-'} | ${JSON.stringify(r.dropped)} |`);
  }
}
