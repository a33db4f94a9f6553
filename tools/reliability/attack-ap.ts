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
//
// With --fusion max|mean|attention|hybrid it measures a feature attack instead: the attacker pastes the feature
// patch of a real car (the one its own LiDAR sees best) into its BEV map at ghost positions around the ego, before
// its codec, so the ghosts travel as features; the in-process detector fuses with and without --consistency-check
// (a head pass over each collaborator's aligned map alone, judged against the ego's free space).
//
//   npx tsx tools/reliability/attack-ap.ts --dataset /tmp/v2x/test/intersection-s102 --frames 20 --ego 100 --attacker 101 --fusion attention
//
// --feature-test own-map|leave-one-out|both picks the feature check (consistency.ts featureTest; leave-one-out: the
// fused result with and without each collaborator), --patch-scale S pastes louder patches (S × the car's values),
// --skip-baseline leaves out the rows without attack, --ghosts '' keeps only them.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type CooperativeFrame, type CooperativeSequence, openDataset } from '../../src/datasets/index.ts';
import { ClassAwareApAccumulator, type Detection, cooperativeGroundTruth } from '../../src/eval/index.ts';
import { type ConsistencyOptions, type FeatureTest, type FusionMode, type WireFreeSpace, CooperativeDetector, FreeSpaceBuilder, filterConsistent, freeSpaceFromWire, freeSpaceGrid, fuseLate, gridEvalRange, wireFreeSpace } from '../../src/fusion/index.ts';
import { type Mat4, invertRigid, multiply, transformBox } from '../../src/geometry/index.ts';
import { type BevGrid, PerceptionModels, featureCellSize, featureShape } from '../../src/perception/index.ts';

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

// ---------------------------------------------------------------------------------------------------------------
// Feature attack

/**
 * Pastes the feature patch around `source` (a real car, sender frame, m) at each of `targets` (sender frame, m),
 * every channel of (2·halfCells + 1)² cells, in place: what a malicious sender that wants ghosts to survive the
 * fusion would send (the fused map and the head then see a car's signature where there is none). Targets whose
 * patch leaves the map are clipped; the source patch is copied first, so targets may overlap it. `scale` multiplies
 * the pasted values (a louder car: > 1 makes the ghosts survive a fusion that averages or weighs them down).
 */
export function pasteFeaturePatches(features: Float32Array, grid: BevGrid, source: { x: number; y: number }, targets: readonly { x: number; y: number }[], halfCells = 4, scale = 1): number {
  const [C, H, W] = featureShape(grid);
  const s = featureCellSize(grid);
  const plane = H * W;
  const side = 2 * halfCells + 1;
  const col = (x: number) => Math.floor((x - grid.xMin) / s), row = (y: number) => Math.floor((y - grid.yMin) / s);
  const sc = col(source.x), sr = row(source.y);
  const patch = new Float32Array(C * side * side);
  for (let c = 0; c < C; c++) for (let dr = -halfCells; dr <= halfCells; dr++) for (let dc = -halfCells; dc <= halfCells; dc++) {
    const r = sr + dr, q = sc + dc;
    patch[(c * side + dr + halfCells) * side + dc + halfCells] = r >= 0 && r < H && q >= 0 && q < W ? features[c * plane + r * W + q]! : 0;
  }
  let pasted = 0;
  for (const t of targets) {
    const tc = col(t.x), tr = row(t.y);
    if (tr < 0 || tr >= H || tc < 0 || tc >= W) continue;
    pasted++;
    for (let c = 0; c < C; c++) for (let dr = -halfCells; dr <= halfCells; dr++) for (let dc = -halfCells; dc <= halfCells; dc++) {
      const r = tr + dr, q = tc + dc;
      if (r >= 0 && r < H && q >= 0 && q < W) features[c * plane + r * W + q] = scale * patch[(c * side + dr + halfCells) * side + dc + halfCells]!;
    }
  }
  return pasted;
}

/** Per frame index, the attacker's feature attack: its best-seen real car and the ghost positions (both in its
 * own frame), the ghosts placed as the late attack's around the ego, at least 6 m from every true vehicle. */
export async function featureAttackPlan(seq: CooperativeSequence, egoId: string, attackerId: string, count: number, frames: number): Promise<Map<number, { source: { x: number; y: number }; targets: { x: number; y: number }[] }>> {
  const plan = new Map<number, { source: { x: number; y: number }; targets: { x: number; y: number }[] }>();
  for (let i = 0; i < Math.min(frames, seq.frameCount); i++) {
    const frame = await seq.frame(i);
    const ego = frame.agents.find((a) => a.agentId === egoId), attacker = frame.agents.find((a) => a.agentId === attackerId);
    if (!ego || !attacker) continue;
    const toAttacker = invertRigid(attacker.lidarToWorld);
    const vehicles = frame.agents.flatMap((a) => a.boxes).filter((b, k, all) => b.cls === 'vehicle' && all.findIndex((x) => x.id === b.id) === k).map((b) => transformBox(toAttacker, b.box));
    // The car with the most of the attacker's own returns on it: the clearest signature it has.
    const points = await attacker.loadPoints();
    let best: { x: number; y: number } | undefined, bestN = 0;
    for (const b of vehicles) {
      const c = Math.cos(b.yaw), sn = Math.sin(b.yaw);
      let n = 0;
      for (let p = 0; p + 3 < points.length; p += 4) {
        const dx = points[p]! - b.x, dy = points[p + 1]! - b.y;
        if (Math.abs(c * dx + sn * dy) <= b.l / 2 && Math.abs(-sn * dx + c * dy) <= b.w / 2) n++;
      }
      if (n > bestN) (best = { x: b.x, y: b.y }), (bestN = n);
    }
    if (!best) continue;
    const egoToAttacker = multiply(toAttacker, ego.lidarToWorld);
    const targets = ghosts(count, i).map((g) => transformBox(egoToAttacker, g.box)).filter((g) => vehicles.every((v) => Math.hypot(v.x - g.x, v.y - g.y) >= 6));
    plan.set(i, { source: best, targets });
  }
  return plan;
}

export interface FeatureAttackRow {
  attack: string;
  check: boolean;
  ap50: number;
  ap70: number;
  attackerExcluded: number;
  honestExcluded: number;
  frames: number;
  /** Median wall time of detectFrame, and of the check's own stages (free-space map, head passes, judging), ms. */
  msPerFrame: number;
  checkMs: number;
  /** Leave-one-out: per frame, the scores attributed to the attacker, and the most attributed to an honest one. */
  attackerAttributed: number[][];
  honestAttributed: number[][];
}

/** One row of the feature table: the in-process detector over the first `frames` frames, the attacker pasting
 * `ghostCount` ghosts (0: no attack). */
export async function featureAttackRow(
  models: PerceptionModels, seq: CooperativeSequence, mode: FusionMode, egoId: string, attackerId: string, ghostCount: number, check: boolean, frames: number,
  consistency: ConsistencyOptions = {}, patchScale = 1,
): Promise<FeatureAttackRow> {
  const plan = ghostCount > 0 ? await featureAttackPlan(seq, egoId, attackerId, ghostCount, frames) : new Map();
  const detector = new CooperativeDetector(models, mode, {
    consistencyCheck: check ? consistency : false,
    alterSenderFeatures: (id, features, index) => {
      const p = plan.get(index);
      if (id === attackerId && p) pasteFeaturePatches(features, models.grid, p.source, p.targets, 4, patchScale);
    },
  });
  const acc = new ClassAwareApAccumulator([0.5, 0.7], ['vehicle']);
  let attackerExcluded = 0, honestExcluded = 0, n = 0;
  const wall: number[] = [], checkMs: number[] = [];
  const attackerAttributed: number[][] = [], honestAttributed: number[][] = [];
  for (let i = 0; i < Math.min(frames, seq.frameCount); i++) {
    const frame = await seq.frame(i);
    const t = performance.now();
    const r = await detector.detectFrame(frame, egoId, seq);
    wall.push(performance.now() - t);
    checkMs.push((r.timings.freeSpace ?? 0) + (r.timings.consistencyHead ?? 0) + (r.timings.consistency ?? 0) + (r.timings.consistencyFusion ?? 0));
    const verdicts = r.links.consistency ?? [];
    attackerAttributed.push(verdicts.find((v) => v.id === attackerId)?.attributed ?? []);
    honestAttributed.push(verdicts.filter((v) => v.id !== attackerId).map((v) => v.attributed ?? []).reduce((a, b) => (b.length > a.length ? b : a), []));
    for (const s of r.links.skipped) if (s.reason === 'inconsistent') s.agentId === attackerId ? attackerExcluded++ : honestExcluded++;
    acc.addFrame(r.detections, cooperativeGroundTruth(frame, egoId, { evalRange: gridEvalRange(models.grid) }));
    n++;
  }
  const v = acc.result().vehicle;
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  return { attack: ghostCount > 0 ? `${ghostCount} pasted car patches` : 'none', check, ap50: v['0.5']!.ap, ap70: v['0.7']!.ap, attackerExcluded, honestExcluded, frames: n, msPerFrame: median(wall), checkMs: median(checkMs), attackerAttributed, honestAttributed };
}

export const ATTACKS: Attack[] = [{ kind: 'none' }, { kind: 'shift', metres: 5 }, { kind: 'shift', metres: 2.5 }, { kind: 'ghosts', count: 10 }, { kind: 'ghosts', count: 3 }];
export const CHECKS: CheckKind[] = ['off', 'agreement', 'free-space', 'both'];

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dataset: { type: 'string' }, frames: { type: 'string', default: '20' }, ego: { type: 'string', default: '100' },
      attacker: { type: 'string', default: '101' }, models: { type: 'string', default: 'models/manifest.json' }, cache: { type: 'string' },
      fusion: { type: 'string', default: 'late' }, ghosts: { type: 'string', default: '10,3' }, 'ghost-min-score': { type: 'string' },
      'feature-test': { type: 'string', default: 'own-map' }, 'patch-scale': { type: 'string', default: '1' }, 'loo-min-score': { type: 'string' },
      'loo-max-contradictions': { type: 'string' }, 'skip-baseline': { type: 'boolean', default: false },
    },
  });
  if (!values.dataset) throw new Error('--dataset DIR is required');
  const frames = Number(values.frames);
  if (values.fusion !== 'late') {
    const mode = values.fusion as FusionMode;
    if (!['max', 'mean', 'attention', 'hybrid'].includes(mode)) throw new Error(`--fusion ${mode}: late, max, mean, attention or hybrid`);
    const models = await PerceptionModels.load(values.models!);
    try {
      const seq = (await openDataset(values.dataset)).scenarios[0]!;
      const test = values['feature-test'] as FeatureTest;
      if (!['own-map', 'leave-one-out', 'both'].includes(test)) throw new Error(`--feature-test ${test}: own-map, leave-one-out or both`);
      const scale = Number(values['patch-scale']);
      const minScore = values['ghost-min-score'], looMin = values['loo-min-score'];
      const consistency: ConsistencyOptions = { featureTest: test, ...(minScore ? { ghost: { minScore: Number(minScore) } } : {}), leaveOneOut: { ...(looMin ? { minScore: Number(looMin) } : {}), ...(values['loo-max-contradictions'] ? { maxContradictions: Number(values['loo-max-contradictions']) } : {}) } };
      console.log(`${values.dataset}, ${Math.min(frames, seq.frameCount)} frames, ego ${values.ego}, attacker ${values.attacker}; ${mode} fusion; check: ${test}; patches × ${scale}; vehicle BEV AP${minScore ? `; objects judged from score ${minScore}` : ''}${looMin ? `; fused detections judged from ${looMin}` : ''}`);
      console.log('| attack | check | AP@0.5 | AP@0.7 | attacker excluded | honest excluded | ms per frame (median) | of which the check | attributed per frame: attacker (≥0.2/≥0.3/≥0.5, max) / honest (max) |');
      console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
      const most = (xs: number[][], from: number) => Math.max(0, ...xs.map((a) => a.filter((v) => v >= from).length));
      for (const count of [...(values['skip-baseline'] ? [] : [0]), ...values.ghosts!.split(',').filter((g) => g !== '').map(Number)]) {
        for (const check of [false, true]) {
          const r = await featureAttackRow(models, seq, mode, values.ego!, values.attacker!, count, check, frames, consistency, scale);
          const attributed = check && test !== 'own-map' ? `${[0.2, 0.3, 0.5].map((v) => most(r.attackerAttributed, v)).join('/')} / ${[0.2, 0.3, 0.5].map((v) => most(r.honestAttributed, v)).join('/')}` : '-';
          console.log(`| ${r.attack}${count > 0 && scale !== 1 ? ` × ${scale}` : ''} | ${check ? 'on' : 'off'} | ${r.ap50.toFixed(3)} | ${r.ap70.toFixed(3)} | ${check ? `${r.attackerExcluded}/${r.frames}` : '-'} | ${check ? `${r.honestExcluded}/${r.frames}` : '-'} | ${r.msPerFrame.toFixed(0)} | ${check ? r.checkMs.toFixed(0) : '-'} | ${attributed} |`);
        }
      }
    } finally {
      await models.dispose();
    }
    return;
  }
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
