// AP under attack, with and without the consistency checks (src/fusion/consistency.ts, src/fusion/free-space.ts):
// every agent of a sequence detects on its own points (the shipped models, as an agent node does for late fusion),
// one collaborator lies (shifts every object it sends, or adds ghosts), and the ego fuses the object lists by late
// fusion (NMS), once with everyone and once without the collaborators a check excludes: the agreement check
// (CP-Guard's idea), the free-space check (objects in space the ego's own LiDAR beams crossed), or both. AP is
// OpenCOOD's BEV AP on the cooperative ground truth clipped to the model's grid, vehicles.
//
//   npx tsx tools/reliability/attack-ap.ts --dataset /tmp/v2x/test/intersection-s102 --frames 20 --ego 100 --attacker 101
//
// Per-agent detections and the ego's free-space maps are cached (--cache FILE, default in the OS temp folder) so
// the attacks re-run in seconds.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type CooperativeFrame, openDataset } from '../../src/datasets/index.ts';
import { ClassAwareApAccumulator, type Detection, cooperativeGroundTruth } from '../../src/eval/index.ts';
import { type ConsistencyOptions, type WireFreeSpace, CooperativeDetector, FreeSpaceBuilder, filterConsistent, freeSpaceFromWire, freeSpaceGrid, fuseLate, gridEvalRange, wireFreeSpace } from '../../src/fusion/index.ts';
import { type Mat4, invertRigid, multiply, transformBox } from '../../src/geometry/index.ts';
import { PerceptionModels } from '../../src/perception/index.ts';

export type Attack = { kind: 'none' } | { kind: 'shift'; metres: number } | { kind: 'ghosts'; count: number };

/** One frame: every agent's own detections in the ego frame, its position there, and the ground truth. */
export interface FrameViews {
  agents: { id: string; x: number; y: number; detections: Detection[] }[];
  groundTruth: ReturnType<typeof cooperativeGroundTruth>;
  /** The ego's free-space map as it travels (planes base64 in the cache file). */
  egoFreeSpace: Omit<WireFreeSpace, 'planes'> & { planes: string };
}

/** Which check runs: none, the agreement check, the free-space check, or both (as the fusion node runs them). */
export type CheckKind = 'off' | 'agreement' | 'free-space' | 'both';

export interface AttackRow {
  attack: string;
  check: CheckKind;
  ap50: number;
  ap70: number;
  /** Frames in which the attacker was excluded / in which an honest collaborator was. */
  attackerExcluded: number;
  honestExcluded: number;
  frames: number;
  /** Per frame, the objects in the ego's free space: the attacker's, and the most of any honest collaborator's. */
  attackerContradictions: number[];
  honestContradictionsMax: number[];
}

/** Deterministic ghosts: `count` car-sized boxes spread around the ego, at a high score, rotating per frame. */
function ghosts(count: number, frame: number): Detection[] {
  return Array.from({ length: count }, (_, k) => {
    const a = (2 * Math.PI * k) / count + frame * 0.37;
    const r = 8 + ((k * 7 + frame * 3) % 30);
    return { box: { x: r * Math.cos(a), y: r * Math.sin(a), z: -1, l: 4.5, w: 1.9, h: 1.6, yaw: a }, score: 0.95, cls: 'vehicle' as const };
  });
}

/** The attacker's list as the ego receives it. A shift moves every object along the attacker's heading in the ego
 * frame (a spoofed position keeps objects on the road, which is what makes it plausible). */
export function tamper(list: Detection[], attack: Attack, frame: number): Detection[] {
  if (attack.kind === 'none') return list;
  if (attack.kind === 'ghosts') return [...list, ...ghosts(attack.count, frame)];
  return list.map((d) => ({ ...d, box: { ...d.box, x: d.box.x + attack.metres * Math.cos(d.box.yaw), y: d.box.y + attack.metres * Math.sin(d.box.yaw) } }));
}

export function attackRow(
  frames: FrameViews[], egoId: string, attackerId: string, attack: Attack, check: CheckKind, iouThreshold: number,
  range: { xMin: number; xMax: number; yMin: number; yMax: number }, consistency: ConsistencyOptions = {},
): AttackRow {
  const acc = new ClassAwareApAccumulator([0.5, 0.7], ['vehicle']);
  let attackerExcluded = 0;
  let honestExcluded = 0;
  const attackerContradictions: number[] = [];
  const honestContradictionsMax: number[] = [];
  frames.forEach((f, i) => {
    const egoView = f.agents.find((a) => a.id === egoId)!;
    const free = check === 'free-space' || check === 'both';
    const ego = free ? { ...egoView, freeSpace: freeSpaceFromWire({ ...f.egoFreeSpace, planes: Buffer.from(f.egoFreeSpace.planes, 'base64') }) } : egoView;
    let others = f.agents.filter((a) => a.id !== egoId).map((a) => (a.id === attackerId ? { ...a, detections: tamper(a.detections, attack, i) } : a));
    if (check !== 'off') {
      const { kept, verdicts } = filterConsistent(ego, others, { ...consistency, agreement: check !== 'free-space' });
      for (const v of verdicts) if (v.exclude) v.id === attackerId ? attackerExcluded++ : honestExcluded++;
      attackerContradictions.push(verdicts.find((v) => v.id === attackerId)?.contradictions ?? 0);
      honestContradictionsMax.push(Math.max(0, ...verdicts.filter((v) => v.id !== attackerId).map((v) => v.contradictions)));
      others = kept;
    }
    acc.addFrame(fuseLate(ego.detections, others.map((o) => o.detections), { iouThreshold, range }), f.groundTruth);
  });
  const r = acc.result().vehicle;
  const name = attack.kind === 'none' ? 'none' : attack.kind === 'shift' ? `shift ${attack.metres} m` : `${attack.count} ghosts`;
  return { attack: name, check, ap50: r['0.5']!.ap, ap70: r['0.7']!.ap, attackerExcluded, honestExcluded, frames: frames.length, attackerContradictions, honestContradictionsMax };
}

/** Runs the detector of every agent on the first `maxFrames` frames (ego-frame views), through the shipped models. */
export async function computeViews(dataset: string, egoId: string, maxFrames: number, models: string): Promise<FrameViews[]> {
  const m = await PerceptionModels.load(models);
  try {
    const detector = new CooperativeDetector(m, 'none');
    const free = new FreeSpaceBuilder(freeSpaceGrid(m.grid));
    const seq = (await openDataset(dataset)).scenarios[0]!;
    const out: FrameViews[] = [];
    for (let i = 0; i < Math.min(maxFrames, seq.frameCount); i++) {
      const frame: CooperativeFrame = await seq.frame(i);
      const egoAgent = frame.agents.find((a) => a.agentId === egoId);
      if (!egoAgent) continue;
      const worldToEgo = invertRigid(egoAgent.lidarToWorld);
      const agents: FrameViews['agents'] = [];
      for (const a of frame.agents) {
        const toEgo: Mat4 = multiply(worldToEgo, a.lidarToWorld);
        if (Math.hypot(toEgo[3]!, toEgo[7]!) > 70) continue; // OpenCOOD's communication range
        const own = await detector.detectFrame(frame, a.agentId);
        agents.push({ id: a.agentId, x: toEgo[3]!, y: toEgo[7]!, detections: own.detections.map((d) => ({ ...d, box: transformBox(toEgo, d.box) })) });
      }
      const w = wireFreeSpace(free.build(await egoAgent.loadPoints()));
      out.push({ agents, groundTruth: cooperativeGroundTruth(frame, egoId, { evalRange: gridEvalRange(m.grid) }), egoFreeSpace: { ...w, planes: Buffer.from(w.planes).toString('base64') } });
    }
    return out;
  } finally {
    await m.dispose();
  }
}

export const ATTACKS: Attack[] = [{ kind: 'none' }, { kind: 'shift', metres: 5 }, { kind: 'shift', metres: 2.5 }, { kind: 'ghosts', count: 10 }, { kind: 'ghosts', count: 3 }];
export const CHECKS: CheckKind[] = ['off', 'agreement', 'free-space', 'both'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dataset: { type: 'string' }, frames: { type: 'string', default: '20' }, ego: { type: 'string', default: '100' },
      attacker: { type: 'string', default: '101' }, models: { type: 'string', default: 'models/manifest.json' }, cache: { type: 'string' },
    },
  });
  if (!values.dataset) throw new Error('--dataset DIR is required');
  const frames = Number(values.frames);
  const cache = values.cache ?? join(tmpdir(), `v2xfuse-attack-v2-${basename(resolve(values.dataset))}-${values.ego}-${frames}.json`);
  let views: FrameViews[];
  if (existsSync(cache)) views = JSON.parse(await readFile(cache, 'utf8')) as FrameViews[];
  else {
    views = await computeViews(values.dataset, values.ego!, frames, values.models!);
    await writeFile(cache, JSON.stringify(views));
  }
  const m = JSON.parse(await readFile(values.models!, 'utf8')) as { grid: { xMin: number; xMax: number; yMin: number; yMax: number }; postprocess: { nmsIouThreshold: number } };
  const range = { xMin: m.grid.xMin, xMax: m.grid.xMax, yMin: m.grid.yMin, yMax: m.grid.yMax };
  console.log(`${values.dataset}, ${views.length} frames, ego ${values.ego}, attacker ${values.attacker}; late fusion (NMS); vehicle BEV AP`);
  const bytes = views.map((v) => Buffer.from(v.egoFreeSpace.planes, 'base64').byteLength);
  console.log(`ego free-space map: ${views[0]?.egoFreeSpace.width} × ${views[0]?.egoFreeSpace.height} cells of ${views[0]?.egoFreeSpace.cellSize} m, ${Math.round(bytes.reduce((a, b) => a + b, 0) / bytes.length)} bytes per frame (mean, compressed planes)`);
  console.log('| attack | check | AP@0.5 | AP@0.7 | attacker excluded | honest excluded | in ego free space per frame: attacker / most of an honest one (max) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  const spread = (xs: number[]) => (xs.length ? `${Math.min(...xs)}–${Math.max(...xs)}` : '-');
  for (const attack of ATTACKS) {
    for (const check of CHECKS) {
      const r = attackRow(views, values.ego!, values.attacker!, attack, check, m.postprocess.nmsIouThreshold, range);
      const on = check !== 'off';
      const contra = check === 'free-space' || check === 'both' ? `${spread(r.attackerContradictions)} / ${Math.max(...r.honestContradictionsMax)}` : '-';
      console.log(`| ${r.attack} | ${check} | ${r.ap50.toFixed(3)} | ${r.ap70.toFixed(3)} | ${on ? `${r.attackerExcluded}/${r.frames}` : '-'} | ${on ? `${r.honestExcluded}/${r.frames}` : '-'} | ${contra} |`);
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
