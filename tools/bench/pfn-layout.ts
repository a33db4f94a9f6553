// The LiDAR encoder with each pillar padded to the next power of two of its points ('slotted') against the zero-padded pillars ('padded'),
// same model files, one ORT thread, interleaved run by run in one process so both see the same machine load.
// Frames: one real scan of the sequence (ego, frame 0; ~107k points on the bench sequence) and the same scan
// thinned to ~30k points, the README's reference frame.
//
//   node --import tsx tools/bench/pfn-layout.ts [sequence folder] [--runs N]
import path from 'node:path';
import { openDataset } from '../../src/datasets/index.ts';
import { LidarEncoder, loadManifest, type LidarEncoding } from '../../src/perception/index.ts';
import { stat, thinCloud } from './common.ts';

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const runs = runsAt >= 0 ? Number(args[runsAt + 1]) : 21;
const sequence = path.resolve(args.find((a, i) => !a.startsWith('--') && args[i - 1] !== '--runs') ?? 'out/bench/sequences/intersection-s7-f20');

const manifest = await loadManifest('models/manifest.json');
const seq = (await openDataset(sequence)).scenarios[0];
const frame = await seq.frame(0);
// The first agent is the ego, as in the bench's stage run.
const ego = frame.agents[0];
const full = await ego.loadPoints();
const clouds = { '~30k': thinCloud(full, 30_000), '~100k': full };

const encoders = {
  slotted: await LidarEncoder.load(manifest, { threads: 1 }),
  padded: await LidarEncoder.load(manifest, { threads: 1, pfnLayout: 'padded' }),
};
if (encoders.slotted.pfnLayout !== 'slotted') throw new Error(`the slotted layout did not apply: ${encoders.slotted.pfnLayout}`);

const total = (e: LidarEncoding) => (e.timings.pillarise ?? 0) + (e.timings.pfn ?? 0) + (e.timings.scatter ?? 0) + (e.timings.backbone ?? 0);
console.log(`${sequence} frame 0, agent ${ego.agentId}; ${runs} runs per layout, interleaved (order alternating), 2 warm-up runs`);
console.log('| frame | pillars / kept points | stage | padded p50 | slotted p50 | ratio (median of per-run ratios) |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const [name, cloud] of Object.entries(clouds)) {
  const t: Record<'slotted' | 'padded', { pillarise: number[]; pfn: number[]; encode: number[] }> = {
    slotted: { pillarise: [], pfn: [], encode: [] },
    padded: { pillarise: [], pfn: [], encode: [] },
  };
  let info = '';
  for (let r = -2; r < runs; r++) {
    const order = r % 2 === 0 ? (['slotted', 'padded'] as const) : (['padded', 'slotted'] as const);
    for (const layout of order) {
      const e = await encoders[layout].encode(cloud);
      info = `${e.pillars.pillarCount} / ${e.pillars.keptPoints}`;
      if (r < 0) continue;
      t[layout].pillarise.push(e.timings.pillarise ?? 0);
      t[layout].pfn.push(e.timings.pfn ?? 0);
      t[layout].encode.push(total(e));
    }
  }
  for (const stage of ['pillarise', 'pfn', 'encode'] as const) {
    const ratios = t.padded[stage].map((v, i) => v / t.slotted[stage][i]);
    const label = stage === 'encode' ? 'whole encode' : stage;
    console.log(`| ${name} (${cloud.length / 4} points) | ${info} | ${label} | ${stat(t.padded[stage]).p50.toFixed(1)} ms | ` +
      `${stat(t.slotted[stage]).p50.toFixed(1)} ms | ${stat(ratios).p50.toFixed(2)}× |`);
  }
}
await encoders.slotted.dispose();
await encoders.padded.dispose();
