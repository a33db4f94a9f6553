// How many ego frames the fusion node fuses when the network delays every sensor message by 0..D ms (a real
// Mosquitto must be installed; the harness is the reliability tests', test/reliability/jitter-run.ts).
//
//   npx tsx tools/reliability/jitter.ts --delays 0,100,500 --seconds 10 [--tracking]
import { parseArgs } from 'node:util';
import { runJitter } from '../../test/reliability/jitter-run.ts';

const { values } = parseArgs({ options: { delays: { type: 'string', default: '0,500' }, seconds: { type: 'string', default: '10' }, seed: { type: 'string', default: '7' }, tracking: { type: 'boolean', default: false } } });
console.log('| delay ms | ego frames sent | fused | refused as replay | collaborators per result (of 2) | results out of capture order | other drops |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const d of values.delays!.split(',').map(Number)) {
  const r = await runJitter({ maxDelayMs: d, seconds: Number(values.seconds), seed: Number(values.seed), tracking: values.tracking });
  const other = Object.fromEntries(Object.entries(r.dropped).filter(([k]) => k !== 'replay'));
  console.log(`| 0–${d} | ${r.egoPublished} | ${r.egoFused} (${((100 * r.egoFused) / r.egoPublished).toFixed(0)} %) | ${r.egoReplays} | ${r.collaboratorsPerResult.toFixed(2)} | ${r.outOfOrderResults} | ${JSON.stringify(other)} |`);
}
