// Misbehaving-collaborator check in the spirit of CP-Guard (Hu et al., "CP-Guard: Malicious Agent Detection and
// Defense in Collaborative Bird's Eye View Perception", AAAI 2025): a collaborator's claims are compared with what
// the ego perceives itself and what the other collaborators say, in the region they all can see, and a
// collaborator whose claims the others do not confirm is left out of the fusion. CP-Guard compares BEV results
// with and without each collaborator (a "consensus" loss); here, in late fusion, the claims are object lists,
// so the comparison is direct: the share of a collaborator's objects, in the region both it and a witness cover,
// that a witness also reports within a few metres.
//
// Shifted objects (a spoofed or biased position) and fabricated ghosts both lower that share; honest differences
// (an object one of them cannot see behind a truck) lower it too, but only by a few objects out of many, hence a
// threshold well below one and a minimum number of checked objects before anyone is judged. Pure functions on
// detections already in the ego frame.
//
// Ghosts added to an otherwise honest list pass that agreement test (honest lists agree on only 30–60 %). When the
// ego's view carries its free-space map (free-space.ts), a second test runs first: a collaborator reporting more
// objects in space the ego's own beams crossed than maxContradictions is excluded, whatever the others confirm.
import type { Detection } from '../eval/index.ts';
import { type FreeSpaceMap, type GhostCheckOptions, DEFAULT_GHOST_CHECK, contradictsFreeSpace, countContradictions } from './free-space.ts';

export interface ConsistencyOptions {
  /** Two reports of one object: centres this close in BEV, m. The detector's 95 % centre error is ~0.5 m; a
   * shifted attack of a few metres must fail. Default 1.5. */
  matchDistanceM?: number;
  /** What an agent covers: a disc of this radius around it, m (the BEV grid's half-width). Default 50. */
  sensingRangeM?: number;
  /** A collaborator is judged only when at least this many of its objects lie in a witnessed region. Default 3. */
  minChecked?: number;
  /** Excluded when the confirmed share is below this. Default 0.2, measured (tools/reliability/attack-ap.ts,
   * intersection seed 102, 20 frames, the shipped detector): honest collaborators scored 0.3–0.6 (single-agent
   * detectors miss much of what another agent sees), a collaborator shifting its objects by 2.5–5 m 0–0.1. At 0.3
   * and above honest agents start to be excluded too. */
  minAgreement?: number;
  /** Ignore detections below this score (neither checked nor witnesses). Default 0.3. */
  minScore?: number;
  /** The free-space test's settings (used when the ego's view has a freeSpace map). */
  ghost?: GhostCheckOptions;
  /** Run the agreement test (false: the free-space test alone). Default true. */
  agreement?: boolean;
  /**
   * Feature modes: how a collaborator's claims are found. 'own-map': a head pass over its map alone, judged by the
   * free-space test. 'leave-one-out': the fused result with and without it (attributeToCollaborator). 'both'.
   * Default: see DEFAULT_CONSISTENCY.
   */
  featureTest?: FeatureTest;
  /** The leave-one-out test's settings. */
  leaveOneOut?: LeaveOneOutOptions;
}

export type FeatureTest = 'own-map' | 'leave-one-out' | 'both';

export interface LeaveOneOutOptions {
  /** A fused detection is judged from this score (a pasted car comes out of the fusion weaker than a seen one). */
  minScore?: number;
  /** It is the collaborator's when without it no detection within matchDistanceM (consistency's) scores at least
   * this much less. Default 0.2. */
  minGain?: number;
  /** The collaborator is excluded when more of its detections than this lie in the ego's free space. */
  maxContradictions?: number;
}

export const DEFAULT_CONSISTENCY: Readonly<Required<ConsistencyOptions>> = Object.freeze({
  matchDistanceM: 1.5,
  sensingRangeM: 50,
  minChecked: 3,
  minAgreement: 0.2,
  minScore: 0.3,
  ghost: DEFAULT_GHOST_CHECK,
  agreement: true,
  featureTest: 'own-map',
  leaveOneOut: Object.freeze({ minScore: 0.2, minGain: 0.2, maxContradictions: 1 }),
});

/** One agent's view: its detections and its position, both in the ego frame. */
export interface AgentView {
  id: string;
  detections: readonly Detection[];
  /** The agent's position in the ego frame (0, 0 for the ego). */
  x: number;
  y: number;
  /** The ego's view only: what its own LiDAR saw free and occupied (ego frame); enables the free-space test. */
  freeSpace?: FreeSpaceMap;
}

export interface ConsistencyVerdict {
  id: string;
  /** Its objects inside a region some witness covers. */
  checked: number;
  /** Of those, confirmed by at least one witness covering them. */
  confirmed: number;
  /** confirmed / checked; NaN when nothing could be checked. */
  agreement: number;
  /** Too few checked objects to judge: kept. */
  undecided: boolean;
  /** Its objects lying in the ego's free space (free-space.ts); 0 without a map. */
  contradictions: number;
  exclude: boolean;
  /** Why it is excluded: its objects lie in the ego's free space, or the others do not confirm them. */
  reason?: 'free-space' | 'unconfirmed';
  /** Leave-one-out (feature modes): scores of the fused detections that exist only with it and lie in the ego's
   * free space. */
  attributed?: number[];
}

function near(d: Detection, list: readonly Detection[], r2: number, minScore: number): boolean {
  for (const o of list) {
    if (o.score < minScore) continue;
    const dx = o.box.x - d.box.x;
    const dy = o.box.y - d.box.y;
    if (dx * dx + dy * dy <= r2) return true;
  }
  return false;
}

function judge(c: AgentView, witnesses: readonly AgentView[], o: Required<ConsistencyOptions>): ConsistencyVerdict {
  const r2 = o.matchDistanceM * o.matchDistanceM;
  const range2 = o.sensingRangeM * o.sensingRangeM;
  let checked = 0;
  let confirmed = 0;
  for (const d of c.detections) {
    if (d.score < o.minScore) continue;
    const covering = witnesses.filter((w) => (d.box.x - w.x) ** 2 + (d.box.y - w.y) ** 2 <= range2);
    if (covering.length === 0) continue;
    checked++;
    if (covering.some((w) => near(d, w.detections, r2, o.minScore))) confirmed++;
  }
  const agreement = checked > 0 ? confirmed / checked : NaN;
  const undecided = checked < o.minChecked;
  const exclude = o.agreement && !undecided && agreement < o.minAgreement;
  return { id: c.id, checked, confirmed, agreement, undecided, contradictions: 0, exclude, ...(exclude ? { reason: 'unconfirmed' as const } : {}) };
}

/**
 * Judges every collaborator against the ego and the other collaborators. An object of collaborator c is checked
 * against each witness w (the ego, another collaborator) whose sensing disc holds it; it is confirmed when one of
 * them reports an object within matchDistanceM. Objects no witness covers are neither checked nor held against c.
 * Exclusion is iterative, worst first: the collaborator with the lowest agreement below the threshold is excluded
 * and stops being a witness, then the others are judged again. So a liar cannot drag down the honest agents whose
 * objects it fails to confirm, and the ego is always a witness.
 */
export function checkConsistency(ego: AgentView, collaborators: readonly AgentView[], opts: ConsistencyOptions = {}): ConsistencyVerdict[] {
  const o = { ...DEFAULT_CONSISTENCY, ...opts, ghost: { ...DEFAULT_GHOST_CHECK, ...opts.ghost } };
  const verdicts = new Map<AgentView, ConsistencyVerdict>();
  const excluded = new Set<AgentView>();
  // The free-space test first: it needs no witness, and a collaborator it excludes witnesses for no one.
  const contradictions = new Map<AgentView, number>();
  if (ego.freeSpace) {
    for (const c of collaborators) {
      const n = countContradictions(ego.freeSpace, c.detections, o.ghost);
      contradictions.set(c, n);
      if (n > o.ghost.maxContradictions) excluded.add(c);
    }
    for (const c of excluded) {
      const v = judge(c, [ego, ...collaborators.filter((w) => w !== c && !excluded.has(w))], o);
      verdicts.set(c, { ...v, contradictions: contradictions.get(c)!, exclude: true, reason: 'free-space' });
    }
  }
  for (;;) {
    let worst: ConsistencyVerdict | undefined;
    let worstAgent: AgentView | undefined;
    for (const c of collaborators) {
      if (excluded.has(c)) continue;
      const v = judge(c, [ego, ...collaborators.filter((w) => w !== c && !excluded.has(w))], o);
      v.contradictions = contradictions.get(c) ?? 0;
      verdicts.set(c, v);
      if (v.exclude && (!worst || v.agreement < worst.agreement)) (worst = v), (worstAgent = c);
    }
    if (!worstAgent) break;
    excluded.add(worstAgent);
  }
  return collaborators.map((c) => verdicts.get(c)!);
}

/**
 * The collaborators the check keeps, and the verdicts (for counting and the report). With the ego's free-space map,
 * a kept collaborator's objects that the map contradicts (up to maxContradictions of them) are dropped too: a kept
 * collaborator's honest objects are worth more than what one stray object costs, that one is not.
 */
export function filterConsistent<T extends AgentView>(ego: AgentView, collaborators: readonly T[], opts: ConsistencyOptions = {}): { kept: T[]; verdicts: ConsistencyVerdict[] } {
  const verdicts = checkConsistency(ego, collaborators, opts);
  const kept = collaborators.filter((_, i) => !verdicts[i]!.exclude);
  const map = ego.freeSpace;
  if (!map) return { kept, verdicts };
  const ghost = { ...DEFAULT_GHOST_CHECK, ...opts.ghost };
  return {
    kept: kept.map((c) => (verdicts[collaborators.indexOf(c)]!.contradictions > 0 ? { ...c, detections: c.detections.filter((d) => !contradictsFreeSpace(map, d, ghost)) } : c)),
    verdicts,
  };
}

/**
 * Leave-one-out attribution (CP-Guard's comparison of the fused result with and without a collaborator, here
 * judged by the ego's free space instead of a learned consensus): the fused detections `withAll` (ego frame) that
 * the fusion without the collaborator (`without`) does not have, or has with at least minGain less score, and that
 * the ego's free space contradicts. Those detections of `withAll`, highest score first. What the collaborator's own map yields alone
 * misses a pasted feature patch: alone it is a weak car, fused with the ego's empty cells it can still come out as
 * one, and only the comparison of the two fusions shows whose it is.
 */
export function attributeToCollaborator(map: FreeSpaceMap, withAll: readonly Detection[], without: readonly Detection[], opts: ConsistencyOptions = {}): Detection[] {
  const o = { ...DEFAULT_CONSISTENCY.leaveOneOut, ...opts.leaveOneOut } as Required<LeaveOneOutOptions>;
  const ghost = { ...DEFAULT_GHOST_CHECK, ...opts.ghost, minScore: o.minScore };
  const r2 = (opts.matchDistanceM ?? DEFAULT_CONSISTENCY.matchDistanceM) ** 2;
  const out: Detection[] = [];
  for (const d of withAll) {
    if (d.score < o.minScore || !contradictsFreeSpace(map, d, ghost)) continue;
    let before = 0;
    for (const w of without) {
      const dx = w.box.x - d.box.x, dy = w.box.y - d.box.y;
      if (dx * dx + dy * dy <= r2 && w.score > before) before = w.score;
    }
    if (d.score - before >= o.minGain) out.push(d);
  }
  return out.sort((a, b) => b.score - a.score);
}
