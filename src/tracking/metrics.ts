// Multi-object tracking metrics as AB3DMOT evaluates them (xinshuoweng/AB3DMOT, scripts/KITTI/evaluate.py, itself
// the KITTI tracking devkit's evaluate_tracking.py extended to 3D boxes and recall-averaged metrics):
//
// Per frame (compute3rdPartyMetrics): ground truth (rows) and tracker boxes (columns) are matched by the Hungarian
// method on cost 1 − IoU, a pair allowed when 1 − IoU ≤ 1 − min_overlap (otherwise cost 1e9; an assigned pair at
// 1e9 is a miss). TP = allowed pairs, FN = ground truth − TP, FP = tracker boxes − TP; MOTP sums the TPs' IoU.
// Per ground-truth trajectory (the list, over the frames where the object exists, of the tracker id matched or −1):
//   IDS  when the id differs from the last matched id and both this frame and the previous one are matched
//        (`last_id != g[f] and last_id != -1 and g[f] != -1 and g[f-1] != -1`);
//   FRAG when the id differs from the previous frame's (a miss included), the object had been matched before, and
//        this frame and the next are matched — and once more at the trajectory's last frame when it differs from
//        the one before and is matched. (The last-frame rule tests `last_id` after it was set to this frame's id,
//        so a trajectory matched for the first time in its last frame counts a fragmentation; kept as the devkit.)
//   MT / PT / ML: matched fraction of the trajectory's frames > 0.8 / in between / < 0.2 (never matched: ML),
//        reported, as AB3DMOT prints them, as fractions of the ground-truth trajectories.
// MOTA = 1 − (FN + FP + IDS) / GT; MOTP = Σ IoU(TP) / TP; sMOTA(r) = clamp₀¹(1 − (FN + FP + IDS − (1 − r)·GT)/(r·GT)).
// Confidence thresholds (getThresholds, num_sample_pts = 41): a tracker box's score is its track's AVERAGE score over
// the sequence, and a threshold removes whole tracks whose average is below it. The TPs' scores of the unfiltered run,
// sorted, give one threshold per recall point 1/40, 2/40, … (the score at which recall is nearest the point; points
// above the reachable recall get none, and with fewer TPs than points the labels run ahead of the true recall —
// the devkit's behaviour, kept). AMOTA = Σ MOTA(threshold_k) / 40, AMOTP = Σ MOTP / 40, sAMOTA = Σ sMOTA(r_k) / 40.
//
// IDF1 (Ristani et al. 2016) as py-motmetrics computes it (cheind/py-motmetrics, motmetrics/metrics.py
// id_global_assignment): per frame every (object, hypothesis) pair within the overlap threshold counts one
// co-occurrence; IDTP is the maximum total co-occurrence of a one-to-one matching of object ids to hypothesis ids;
// IDFN = object boxes − IDTP, IDFP = hypothesis boxes − IDTP, IDF1 = 2·IDTP / (2·IDTP + IDFP + IDFN). All tracks
// count (no confidence threshold).
//
// Simplifications, stated: there are no DontCare regions, truncation/occlusion ignores or neighbouring classes (the
// devkit's `ignored` bookkeeping is therefore always empty); classes are evaluated one at a time (`cls`); the overlap
// is rotated BEV IoU by default ('3d' gives AB3DMOT's 3D IoU) with min_overlap 0.25 (AB3DMOT's 3D default). Where
// the devkit returns −inf (no ground truth) this returns NaN, as the AP code of src/eval does.
import type { ObjectClass } from '../datasets/index.ts';
import { type Box7, bevIoU, iou3d } from '../geometry/index.ts';
import { AssignmentSolver } from './assignment.ts';

export interface MotGroundTruth {
  /** Stable object id within the sequence. */
  id: string | number;
  box: Box7;
  /** Default 'vehicle'. */
  cls?: ObjectClass;
}

export interface MotHypothesis {
  /** Track id, unique within the sequence. */
  id: string | number;
  box: Box7;
  score: number;
  /** Default 'vehicle'. */
  cls?: ObjectClass;
}

export interface MotFrame {
  groundTruth: readonly MotGroundTruth[];
  tracks: readonly MotHypothesis[];
}

export type MotOverlap = 'bev' | '3d';

export interface MotEvaluationOptions {
  /** 'bev' (rotated BEV IoU, default) or '3d' (AB3DMOT's 3D IoU). */
  overlap?: MotOverlap;
  /** Minimum IoU of a match. Default 0.25 (AB3DMOT's 3D default). */
  threshold?: number;
  /** Evaluate only this class (boxes without a class are vehicles). Default: all boxes, classes ignored. */
  cls?: ObjectClass;
}

export const DEFAULT_MOT_THRESHOLD = 0.25;
/** AB3DMOT's num_sample_pts − 1. */
export const RECALL_POINTS = 40;

export interface ClearMotResult {
  mota: number;
  moda: number;
  /** sMOTA at the recall this run was scored for (1 without a threshold: clamp₀¹(MOTA)). */
  smota: number;
  /** Mean IoU of the true positives (0 without any). */
  motp: number;
  ids: number;
  frag: number;
  /** Fractions of ground-truth trajectories (AB3DMOT's printout). */
  mt: number;
  pt: number;
  ml: number;
  mostlyTracked: number;
  partiallyTracked: number;
  mostlyLost: number;
  tp: number;
  fp: number;
  fn: number;
  /** Ground-truth boxes. */
  gt: number;
  recall: number;
  precision: number;
  f1: number;
  gtTrajectories: number;
  /** Distinct track ids among the tracker boxes scored. */
  trackerTrajectories: number;
  frames: number;
}

export interface RecallPoint {
  scoreThreshold: number;
  recall: number;
  mota: number;
  motp: number;
  smota: number;
}

export interface MotMetrics extends ClearMotResult {
  amota: number;
  amotp: number;
  samota: number;
  idf1: number;
  idp: number;
  idr: number;
  idtp: number;
  idfp: number;
  idfn: number;
  /** The confidence thresholds AMOTA averaged over. */
  recallPoints: RecallPoint[];
}

/** The KITTI devkit's gate for a disallowed pair. */
const MAX_COST = 1e9;

function overlapOf(kind: MotOverlap): (a: Box7, b: Box7) => number {
  return kind === '3d' ? iou3d : bevIoU;
}

function selectClass<T extends { cls?: ObjectClass }>(items: readonly T[], cls: ObjectClass | undefined): readonly T[] {
  return cls === undefined ? items : items.filter((x) => (x.cls ?? 'vehicle') === cls);
}

function checkOptions(opts: MotEvaluationOptions): { overlap: (a: Box7, b: Box7) => number; thr: number } {
  const thr = opts.threshold ?? DEFAULT_MOT_THRESHOLD;
  if (!(thr > 0 && thr <= 1)) throw new RangeError(`threshold must be in (0, 1], got ${thr}`);
  const kind = opts.overlap ?? 'bev';
  if (kind !== 'bev' && kind !== '3d') throw new RangeError(`overlap must be 'bev' or '3d', got ${String(kind)}`);
  return { overlap: overlapOf(kind), thr };
}

/**
 * CLEAR MOT over one or more sequences (each a list of frames) at one confidence threshold (tracks whose average
 * score is below it are removed; default: none) and the recall sMOTA is scored for (default 1).
 * `tpScores` receives the (track-average) scores of the true positives, for the recall thresholds.
 */
export function clearMot(
  sequences: readonly (readonly MotFrame[])[],
  opts: MotEvaluationOptions = {},
  scoreThreshold = -Infinity,
  recallThreshold = 1,
  tpScores?: number[],
): ClearMotResult {
  const { overlap, thr } = checkOptions(opts);
  const solver = new AssignmentSolver();
  let cost = new Float64Array(0);
  let rowToCol = new Int32Array(0);
  let nGt = 0, tp = 0, fp = 0, fn = 0, ids = 0, frag = 0, totalIou = 0, frames = 0;
  let mtN = 0, ptN = 0, mlN = 0, gtTrajectories = 0, trackerTrajectories = 0;
  for (const seq of sequences) {
    // Track-average scores over the sequence (the devkit replaces each box's score by its track's average).
    const sum = new Map<string | number, { s: number; n: number }>();
    for (const f of seq) {
      for (const t of selectClass(f.tracks, opts.cls)) {
        const e = sum.get(t.id) ?? { s: 0, n: 0 };
        e.s += t.score;
        e.n++;
        sum.set(t.id, e);
      }
    }
    const avg = new Map<string | number, number>();
    const code = new Map<string | number, number>();
    for (const [id, e] of sum) {
      const a = e.s / e.n;
      avg.set(id, a);
      if (!(a < scoreThreshold)) code.set(id, code.size);
    }
    trackerTrajectories += code.size;
    const trajectories = new Map<string | number, number[]>();
    for (const f of seq) {
      frames++;
      const g = selectClass(f.groundTruth, opts.cls);
      const t = selectClass(f.tracks, opts.cls).filter((x) => code.has(x.id));
      nGt += g.length;
      for (const gg of g) {
        let traj = trajectories.get(gg.id);
        if (!traj) trajectories.set(gg.id, (traj = []));
        traj.push(-1);
      }
      if (g.length === 0) {
        fp += t.length;
        continue;
      }
      if (cost.length < g.length * t.length) cost = new Float64Array(g.length * t.length);
      if (rowToCol.length < g.length) rowToCol = new Int32Array(g.length);
      for (let i = 0; i < g.length; i++) {
        for (let j = 0; j < t.length; j++) {
          const c = 1 - overlap(g[i].box, t[j].box);
          cost[i * t.length + j] = c <= 1 - thr ? c : MAX_COST;
        }
      }
      solver.solve(cost, g.length, t.length, rowToCol);
      let frameTp = 0;
      for (let i = 0; i < g.length; i++) {
        const j = rowToCol[i];
        if (j >= 0 && cost[i * t.length + j] < MAX_COST) {
          frameTp++;
          totalIou += 1 - cost[i * t.length + j];
          const traj = trajectories.get(g[i].id)!;
          traj[traj.length - 1] = code.get(t[j].id)!;
          tpScores?.push(avg.get(t[j].id)!);
        }
      }
      tp += frameTp;
      fn += g.length - frameTp;
      fp += t.length - frameTp;
    }
    gtTrajectories += trajectories.size;
    for (const g of trajectories.values()) {
      if (g.every((v) => v === -1)) {
        mlN++;
        continue;
      }
      let lastId = g[0];
      let tracked = g[0] >= 0 ? 1 : 0;
      let f = 1;
      for (; f < g.length; f++) {
        if (lastId !== g[f] && lastId !== -1 && g[f] !== -1 && g[f - 1] !== -1) ids++;
        if (f < g.length - 1 && g[f - 1] !== g[f] && lastId !== -1 && g[f] !== -1 && g[f + 1] !== -1) frag++;
        if (g[f] !== -1) {
          tracked++;
          lastId = g[f];
        }
      }
      f = g.length - 1;
      if (g.length > 1 && g[f - 1] !== g[f] && lastId !== -1 && g[f] !== -1) frag++;
      const ratio = tracked / g.length;
      if (ratio > 0.8) mtN++;
      else if (ratio < 0.2) mlN++;
      else ptN++;
    }
  }
  const recall = fp + tp === 0 || tp + fn === 0 ? 0 : tp / (tp + fn);
  const precision = fp + tp === 0 || tp + fn === 0 ? 0 : tp / (tp + fp);
  const f1 = recall + precision === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  const r = recallThreshold;
  return {
    mota: nGt === 0 ? NaN : 1 - (fn + fp + ids) / nGt,
    moda: nGt === 0 ? NaN : 1 - (fn + fp) / nGt,
    smota: nGt === 0 ? NaN : Math.min(1, Math.max(0, 1 - (fn + fp + ids - (1 - r) * nGt) / (r * nGt))),
    motp: tp === 0 ? 0 : totalIou / tp,
    ids,
    frag,
    mt: gtTrajectories === 0 ? 0 : mtN / gtTrajectories,
    pt: gtTrajectories === 0 ? 0 : ptN / gtTrajectories,
    ml: gtTrajectories === 0 ? 0 : mlN / gtTrajectories,
    mostlyTracked: mtN,
    partiallyTracked: ptN,
    mostlyLost: mlN,
    tp,
    fp,
    fn,
    gt: nGt,
    recall,
    precision,
    f1,
    gtTrajectories,
    trackerTrajectories,
    frames,
  };
}

/**
 * The devkit's getThresholds: from the TPs' scores (any order) and the ground-truth count, one score threshold per
 * recall point k/(points), k = 1, 2, … as far as the scores reach; returns [thresholds, recalls].
 */
export function recallThresholds(scores: readonly number[], numGt: number, points = RECALL_POINTS): [number[], number[]] {
  const s = [...scores].sort((a, b) => b - a);
  let current = 0;
  const thresholds: number[] = [];
  const recalls: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const l = (i + 1) / numGt;
    const r = i < s.length - 1 ? (i + 2) / numGt : l;
    if (r - current < current - l && i < s.length - 1) continue;
    thresholds.push(s[i]);
    recalls.push(current);
    current += 1 / points;
  }
  return [thresholds.slice(1), recalls.slice(1)];
}

/** IDTP/IDFP/IDFN/IDF1 by the global one-to-one matching of object ids to track ids. */
export function identityMetrics(
  sequences: readonly (readonly MotFrame[])[],
  opts: MotEvaluationOptions = {},
): { idf1: number; idp: number; idr: number; idtp: number; idfp: number; idfn: number } {
  const { overlap, thr } = checkOptions(opts);
  const gtCode = new Map<string, number>();
  const hypCode = new Map<string, number>();
  const together = new Map<number, number>();
  let nGt = 0, nHyp = 0;
  sequences.forEach((seq, s) => {
    for (const f of seq) {
      const g = selectClass(f.groundTruth, opts.cls);
      const t = selectClass(f.tracks, opts.cls);
      nGt += g.length;
      nHyp += t.length;
      const gc = g.map((x) => {
        const k = `${s}\u0000${x.id}`;
        if (!gtCode.has(k)) gtCode.set(k, gtCode.size);
        return gtCode.get(k)!;
      });
      const hc = t.map((x) => {
        const k = `${s}\u0000${x.id}`;
        if (!hypCode.has(k)) hypCode.set(k, hypCode.size);
        return hypCode.get(k)!;
      });
      for (let i = 0; i < g.length; i++) {
        for (let j = 0; j < t.length; j++) {
          if (overlap(g[i].box, t[j].box) >= thr) {
            const key = gc[i] * 1_000_003 + hc[j];
            together.set(key, (together.get(key) ?? 0) + 1);
          }
        }
      }
    }
  });
  let idtp = 0;
  const no = gtCode.size, nh = hypCode.size;
  if (no > 0 && nh > 0 && together.size > 0) {
    const cost = new Float64Array(no * nh);
    for (const [key, n] of together) cost[Math.floor(key / 1_000_003) * nh + (key % 1_000_003)] = -n;
    const rowToCol = new Int32Array(no);
    new AssignmentSolver().solve(cost, no, nh, rowToCol);
    for (let i = 0; i < no; i++) if (rowToCol[i] >= 0) idtp -= cost[i * nh + rowToCol[i]];
  }
  const idfn = nGt - idtp, idfp = nHyp - idtp;
  const q = (a: number, b: number): number => (b === 0 ? NaN : a / b);
  return { idf1: q(2 * idtp, 2 * idtp + idfp + idfn), idp: q(idtp, idtp + idfp), idr: q(idtp, idtp + idfn), idtp, idfp, idfn };
}

/**
 * AB3DMOT's full evaluation: CLEAR MOT without a confidence threshold, AMOTA/AMOTP/sAMOTA over the recall points,
 * and IDF1.
 */
export function evaluateMot(sequences: readonly (readonly MotFrame[])[], opts: MotEvaluationOptions = {}): MotMetrics {
  const scores: number[] = [];
  const base = clearMot(sequences, opts, -Infinity, 1, scores);
  const [thresholds, recalls] = recallThresholds(scores, base.tp + base.fn);
  let sumMota = 0, sumMotp = 0, sumSmota = 0;
  const recallPoints: RecallPoint[] = [];
  for (let k = 0; k < thresholds.length; k++) {
    const r = clearMot(sequences, opts, thresholds[k], recalls[k]);
    sumMota += r.mota;
    sumMotp += r.motp;
    sumSmota += r.smota;
    recallPoints.push({ scoreThreshold: thresholds[k], recall: recalls[k], mota: r.mota, motp: r.motp, smota: r.smota });
  }
  const noGt = base.gt === 0;
  return {
    ...base,
    amota: noGt ? NaN : sumMota / RECALL_POINTS,
    amotp: noGt ? NaN : sumMotp / RECALL_POINTS,
    samota: noGt ? NaN : sumSmota / RECALL_POINTS,
    ...identityMetrics(sequences, opts),
    recallPoints,
  };
}
