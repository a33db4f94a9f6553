import type { Command } from 'commander';
import { type InspectReport, type LooseFilesReport, detectFormat, inspectDataset, inspectLooseFiles, openDataset } from '../datasets/index.ts';
import { action } from './failure.ts';
import { progressBar } from './progress.ts';

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function printInspectReport(r: InspectReport, pointsRead = true): void {
  const out: string[] = [];
  out.push(`format: ${r.format}   root: ${r.root}`);
  for (const w of r.warnings.slice(0, 3)) out.push(`warning: ${w}`);
  if (r.warnings.length > 3) out.push(`warning: … and ${r.warnings.length - 3} more (--json lists them all)`);
  for (const s of r.scenarios) {
    out.push('');
    out.push(`scenario ${s.name}: ${s.frames} frames, ${s.agents.length} agents`);
    const idWidth = Math.max(...s.agents.map((a) => a.id.length));
    for (const a of s.agents) out.push(`  agent ${a.id.padEnd(idWidth)}  ${a.kind.padEnd(7)}  ${a.frames} frames`);
    out.push(
      pointsRead
        ? `  points per scan: mean ${fmt(s.pointsPerScan.mean)}  min ${fmt(s.pointsPerScan.min)}  max ${fmt(s.pointsPerScan.max)}`
        : '  points per scan: not read (--no-points)',
    );
    out.push(`  objects per frame (cooperative ground truth): mean ${fmt(s.boxesPerFrame.mean, 1)}  min ${s.boxesPerFrame.min}  max ${s.boxesPerFrame.max}`);
    const shown = s.perFrame.length <= 12 ? s.perFrame : [...s.perFrame.slice(0, 5), null, ...s.perFrame.slice(-5)];
    const width = Math.max(24, ...s.agents.map((a) => a.id.length + 16));
    out.push('  frame   ' + s.agents.map((a) => `${a.id}: ${pointsRead ? 'points/' : ''}boxes`.padStart(width)).join(''));
    for (const f of shown) {
      if (!f) {
        out.push('  …');
        continue;
      }
      const cells = s.agents.map((a) => {
        const x = f.agents.find((g) => g.id === a.id);
        return (x ? (pointsRead ? `${fmt(x.points)} / ${x.boxes}` : `${x.boxes}`) : '—').padStart(width);
      });
      out.push(`  ${f.frameId.padEnd(8)}${cells.join('')}`);
    }
    if (s.occlusion) {
      const t = s.occlusion.thresholds;
      out.push(`  occlusion (vehicles within ${t.rangeM} m; hidden: < ${t.hiddenBelow} points; seen well: ≥ ${t.wellSeenAtLeast} points), over ${s.occlusion.frames} frames:`);
      for (const a of s.occlusion.agents) {
        const share = a.inRange ? ((100 * a.hiddenButSeenByAnother) / a.inRange).toFixed(1) : '0.0';
        out.push(`    agent ${a.agentId.padStart(6)}: ${a.inRange} in range, ${a.hidden} hidden, ${a.hiddenButSeenByAnother} hidden but seen well by another agent (${share}%)`);
      }
    }
  }
  process.stdout.write(out.join('\n') + '\n');
}

function printLooseFiles(r: LooseFilesReport): void {
  const out = [`format: ${r.format} (not a cooperative sequence)   root: ${r.root}`, `note: ${r.note}`];
  for (const f of r.files) {
    out.push(
      f.points !== undefined
        ? `  ${f.name}  ${fmt(f.points)} points  fields ${f.fields!.join(' ')}  data ${f.data}`
        : `  ${f.name}  ${f.width}x${f.height}`,
    );
  }
  process.stdout.write(out.join('\n') + '\n');
}

export function registerInspect(program: Command): void {
  program
    .command('inspect')
    .description("detect a dataset's layout; print its scenarios, agents, frames, points and boxes per frame")
    .argument('<path>', 'dataset root, split folder or scenario folder (OPV2V, V2V4Real, DAIR-V2X-C)')
    .option('--json', 'print one JSON object instead of the table')
    .option('--stats', 'also count vehicles within 50 m an agent sees with fewer than 5 points while another agent sees them well')
    .option('--skip-missing', 'leave out frames whose files are absent (each is listed as a warning) instead of failing')
    .option('--no-points', 'do not read point clouds (metadata only)')
    .action(
      action(async (path: string, o: { json?: boolean; stats?: boolean; skipMissing?: boolean; points: boolean }) => {
        if ((await detectFormat(path)) === null) {
          // Not a sequence layout: a folder of loose point clouds or images still gets a report; anything else
          // falls through to openDataset, which names what is missing.
          const loose = await inspectLooseFiles(path);
          if (loose) {
            if (o.json) process.stdout.write(JSON.stringify(loose, null, 2) + '\n');
            else printLooseFiles(loose);
            return;
          }
        }
        const ds = await openDataset(path, { skipMissing: o.skipMissing });
        const bar = progressBar('inspect', 'frames', ' | {scenario}');
        const report = await inspectDataset(ds, {
          stats: o.stats,
          noPoints: !o.points,
          onProgress: (done, total, scenario) => bar.update(done, total, { scenario }),
        }).finally(() => bar.stop());
        if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else printInspectReport(report, o.points);
      }),
    );
}
