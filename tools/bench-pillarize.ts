// Micro benchmark of the LiDAR front end on the default BEV grid: pillarisation of real point clouds from
// ../shared/data (OPV2V, DAIR-V2X vehicle and infrastructure) and of synthetic uniform clouds, then the
// scatter of 64-channel pillar features onto the 64 × 256 × 256 canvas. Prints the median ms per frame.
//   npx tsx tools/bench-pillarize.ts [--repeats N] [--data DIR]   (DIR defaults to ../shared/data)

import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { readPcdXyzi } from '../src/datasets/index.ts';
import { DEFAULT_BEV_GRID, Pillarizer, gridHeight, gridWidth, scatterToBev } from '../src/perception/index.ts';

const { values } = parseArgs({
  options: { repeats: { type: 'string', default: '20' }, data: { type: 'string', default: '../shared/data' } },
});
const repeats = Number(values.repeats);
const dataRoot = path.resolve(process.cwd(), values.data ?? '../shared/data');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function uniformCloud(n: number, spread: number): Float32Array {
  let s = 12345;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const out = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    out[4 * i] = (next() * 2 - 1) * spread;
    out[4 * i + 1] = (next() * 2 - 1) * spread;
    out[4 * i + 2] = -2.5 + next() * 3;
    out[4 * i + 3] = next();
  }
  return out;
}

async function firstPcd(dir: string): Promise<string | undefined> {
  try {
    const names = (await readdir(dir)).filter((n) => n.endsWith('.pcd')).sort();
    return names.length ? path.join(dir, names[0]) : undefined;
  } catch {
    return undefined;
  }
}

const dair = path.join(dataRoot, 'dair-v2x-c-example/cooperative-vehicle-infrastructure');
const sources: Array<[string, string | undefined]> = [
  ['OPV2V', await firstPcd(path.join(dataRoot, 'opv2v-lidar'))],
  ['DAIR vehicle', await firstPcd(path.join(dair, 'vehicle-side/velodyne'))],
  ['DAIR infrastructure', await firstPcd(path.join(dair, 'infrastructure-side/velodyne'))],
];
const clouds: Array<[string, Float32Array]> = [];
for (const [name, file] of sources) {
  if (!file) {
    console.log(`(skipping ${name}: no .pcd under ${dataRoot})`);
    continue;
  }
  clouds.push([`${name} ${path.basename(file)}`, await readPcdXyzi(file)]);
}
clouds.push(['uniform ±60 m', uniformCloud(30000, 60)], ['uniform ±60 m', uniformCloud(120000, 60)]);

const grid = DEFAULT_BEV_GRID;
const pillarizer = new Pillarizer(grid);
const C = 64;
const canvas = new Float32Array(C * gridHeight(grid) * gridWidth(grid));
const pillarFeatures = new Float32Array(pillarizer.maxPillars * C).fill(1);

console.log(`grid ${gridWidth(grid)} × ${gridHeight(grid)} at ${grid.cellSize} m, maxPillars ${pillarizer.maxPillars}, ` +
  `maxPointsPerPillar ${pillarizer.maxPointsPerPillar}, ${repeats} repeats, node ${process.version}`);
console.log('cloud | points | pillars | kept | out of range | dropped (full/cap) | refused pillars | pillarize ms | scatter ms');
for (const [name, points] of clouds) {
  for (let r = 0; r < 3; r++) scatterToBev(pillarizer.pillarize(points), pillarFeatures, C, grid, canvas);
  const pillarMs: number[] = [];
  const scatterMs: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    const batch = pillarizer.pillarize(points);
    const t1 = performance.now();
    scatterToBev(batch, pillarFeatures, C, grid, canvas);
    scatterMs.push(performance.now() - t1);
    pillarMs.push(t1 - t0);
  }
  const b = pillarizer.pillarize(points);
  console.log(
    `${name} | ${b.inputPoints} | ${b.pillarCount} | ${b.keptPoints} | ${b.outOfRangePoints} | ` +
      `${b.droppedPoints - b.outOfRangePoints} | ${b.droppedPillars} | ${median(pillarMs).toFixed(2)} | ${median(scatterMs).toFixed(2)}`,
  );
}
