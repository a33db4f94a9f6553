// Average precision of 3D detections in bird's-eye view, the metric OPV2V, V2XSet and V2V4Real tables report
// (AP@0.3 / 0.5 / 0.7 of rotated BEV IoU). It follows OpenCOOD's implementation so that numbers from this
// project and published ones mean the same thing:
//   DerrickXuNu/OpenCOOD, opencood/utils/eval_utils.py — caluclate_tp_fp (per-frame greedy matching),
//   calculate_ap (cumulative precision/recall, optional global sort), voc_ap (VOC 2010 all-point interpolation),
//   eval_final_results (thresholds 0.3, 0.5, 0.7); opencood/utils/common_utils.py — compute_iou (shapely polygon
//   IoU of the four BEV corners, i.e. rotated BEV IoU).
//
// Where OpenCOOD versions differ, and what this file does:
// - Order of the cumulative sums. The original OpenCOOD (eval_utils.py at 582edab) keeps detections in the order
//   frames were evaluated, each frame's block sorted by score — scores are not even stored. The current OpenCOOD
//   (inference.py --global_sort_detections, default off) and HEAL (yifanlu0227/HEAL, same file: always on) sort
//   all detections by score first, which is the standard PASCAL VOC / KITTI definition. OPV2V, V2X-ViT and other
//   early OpenCOOD-based tables were produced with frame order; HEAL-era tables with the global sort. Default
//   here: 'global'; 'frame' reproduces the original tables.
// - Zero ground truth. OpenCOOD divides by the GT count in Python floats, so it raises ZeroDivisionError when there
//   are detections and returns AP 0 when there are none. AP is undefined without ground truth: we return NaN (and
//   NaN recall) so an average over classes or sequences can skip it explicitly instead of crashing or counting 0.
// - Ties. numpy's argsort (quicksort) orders equal scores arbitrarily; we sort stably (within a frame, ties keep
//   the input order; globally, ties keep the order frames were added) so results are reproducible.
// - The IoU test is `iou >= threshold` (OpenCOOD: FP when `max(ious) < iou_thresh`), in float64 (OpenCOOD rounds
//   IoUs to float32, which can flip a pair lying within 1e-7 of a threshold; not worth imitating).
// - The stored copy of the newest upstream voc_ap (OpenCOOD at 03abed7) dots Δrecall with mrec instead of mpre and
//   slices numpy int arrays in calculate_ap; that reads as a regression, so we follow the loop form shared by
//   582edab and HEAL: AP = Σ (mrec[i] − mrec[i−1]) · mpre[i].
import { type Box7, bevIoU } from '../geometry/index.ts';
import type { ObjectClass } from '../datasets/index.ts';

export const DEFAULT_IOU_THRESHOLDS: readonly number[] = [0.3, 0.5, 0.7];

/** A detected box in the evaluation (ego LiDAR) frame. A detection without a class counts as a vehicle. */
export interface Detection {
  box: Box7;
  score: number;
  cls?: ObjectClass;
}

/** A ground-truth box in the evaluation frame with its class (what cooperativeGroundTruth returns fits this). */
export interface ClassedBox {
  box: Box7;
  cls: ObjectClass;
  /**
   * PASCAL VOC's "difficult": the box is neither counted as ground truth nor held against the detector. A
   * detection that matches it is dropped from the ranking (neither TP nor FP). Used for boxes no LiDAR point of
   * the evaluated agents hits (see markHiddenGroundTruth).
   */
  ignored?: boolean;
}

/** 'global': all detections sorted by score (standard, HEAL). 'frame': per-frame blocks in frame order (original OpenCOOD). */
export type ApOrder = 'global' | 'frame';

export interface ThresholdResult {
  iou: number;
  /** VOC all-point interpolated AP in 0..1; NaN when there is no ground truth. */
  ap: number;
  /** Cumulative precision after each scored detection (those matched to ignored ground truth left out), in evaluation order (not interpolated). */
  precision: number[];
  /** Cumulative recall after each detection, in evaluation order; NaN entries when there is no ground truth. */
  recall: number[];
  tp: number;
  fp: number;
  gt: number;
}

/** One entry per IoU threshold, keyed by String(threshold): '0.3', '0.5', '0.7'. */
export type ApResult = Record<string, ThresholdResult>;

/** Input the evaluator cannot score; names the frame (0-based, in the order frames were added) and the field. */
export class EvaluationInputError extends Error {
  constructor(readonly frame: number, readonly field: string, detail: string) {
    super(`frame ${frame}: ${field}: ${detail}`);
    this.name = new.target.name;
  }
}

/**
 * VOC 2010 all-point interpolated AP (OpenCOOD voc_ap): mrec = [0, …recall, 1], mpre = [0, …precision, 0],
 * precision made non-increasing from the right, AP = Σ (mrec[i] − mrec[i−1]) · mpre[i].
 */
export function vocAveragePrecision(recall: ArrayLike<number>, precision: ArrayLike<number>): number {
  const n = recall.length;
  if (precision.length !== n) throw new RangeError(`recall has ${n} values, precision ${precision.length}`);
  const mpre = new Float64Array(n + 2);
  for (let i = 0; i < n; i++) mpre[i + 1] = precision[i];
  for (let i = n; i >= 0; i--) if (mpre[i + 1] > mpre[i]) mpre[i] = mpre[i + 1];
  let ap = 0;
  let previousRecall = 0;
  for (let i = 1; i <= n + 1; i++) {
    const r = i <= n ? recall[i - 1] : 1;
    // Terms where recall does not move are zero; OpenCOOD skips them explicitly (its i_list), same sum.
    ap += (r - previousRecall) * mpre[i];
    previousRecall = r;
  }
  return ap;
}

/** tpFlags value of a detection matched to an ignored ground-truth box: left out of the ranking. */
const IGNORED = 2;

function grow<T extends Float64Array | Uint8Array | Uint32Array>(a: T, needed: number, make: (n: number) => T): T {
  if (a.length >= needed) return a;
  const b = make(Math.max(needed, 2 * a.length));
  b.set(a);
  return b;
}

/**
 * Accumulates per-frame matches at several IoU thresholds and turns them into AP. Class-agnostic: give it one
 * class's detections and ground truth (ClassAwareApAccumulator routes by class).
 */
export class ApAccumulator {
  readonly thresholds: readonly number[];
  private frames = 0;
  private gtTotal = 0;
  private count = 0;
  // Scores in evaluation order (frame by frame, each frame sorted by score) and, per threshold, 1 where that
  // detection was a true positive. The per-frame order does not depend on the threshold, so one score array serves all.
  private scores = new Float64Array(256);
  private tpFlags: Uint8Array[];
  // Scratch reused across frames.
  private ious = new Float64Array(256);
  private order = new Uint32Array(64);
  private taken = new Uint8Array(64);

  constructor(thresholds: readonly number[] = DEFAULT_IOU_THRESHOLDS) {
    if (thresholds.length === 0) throw new RangeError('at least one IoU threshold is needed');
    for (const t of thresholds) if (!(t >= 0 && t <= 1)) throw new RangeError(`IoU threshold ${t} is outside 0..1`);
    if (new Set(thresholds.map(String)).size !== thresholds.length) throw new RangeError(`duplicate IoU thresholds in [${thresholds.join(', ')}]`);
    this.thresholds = [...thresholds];
    this.tpFlags = thresholds.map(() => new Uint8Array(256));
  }

  get frameCount(): number { return this.frames; }
  get gtCount(): number { return this.gtTotal; }
  get detectionCount(): number { return this.count; }

  /**
   * One frame: its detections and ground truth, both in the same frame (the ego's). `ignored[j]` true marks
   * groundTruth[j] as VOC "difficult": it does not count towards recall, and a detection whose best remaining
   * match it is (at the threshold) is dropped rather than called a false positive. Several detections may fall
   * on one ignored box, as in VOC, since none of them is scored.
   */
  addFrame(detections: readonly Detection[], groundTruth: readonly Box7[], ignored?: ArrayLike<boolean>): void {
    const frame = this.frames;
    const n = detections.length, m = groundTruth.length;
    if (ignored && ignored.length !== m) throw new EvaluationInputError(frame, 'ignored', `has ${ignored.length} flags for ${m} ground-truth boxes`);
    for (let i = 0; i < n; i++) {
      const d = detections[i];
      if (!Number.isFinite(d.score)) throw new EvaluationInputError(frame, `detections[${i}].score`, `must be a finite number, got ${d.score}`);
      if (!Number.isFinite(d.box.x) || !Number.isFinite(d.box.y)) throw new EvaluationInputError(frame, `detections[${i}].box`, 'centre is not finite');
    }
    for (let j = 0; j < m; j++) {
      const g = groundTruth[j];
      if (!Number.isFinite(g.x) || !Number.isFinite(g.y)) throw new EvaluationInputError(frame, `groundTruth[${j}]`, 'centre is not finite');
    }

    this.order = grow(this.order, n, (k) => new Uint32Array(k));
    this.ious = grow(this.ious, n * m, (k) => new Float64Array(k));
    this.taken = grow(this.taken, m, (k) => new Uint8Array(k));
    const order = this.order.subarray(0, n);
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => detections[b].score - detections[a].score || a - b);

    // IoU of every (detection, GT) pair once, rows in score order; bevIoU rejects far pairs before clipping.
    const ious = this.ious;
    for (let r = 0; r < n; r++) {
      const det = detections[order[r]].box;
      for (let j = 0; j < m; j++) ious[r * m + j] = bevIoU(det, groundTruth[j]);
    }

    const base = this.count;
    this.scores = grow(this.scores, base + n, (k) => new Float64Array(k));
    for (let r = 0; r < n; r++) this.scores[base + r] = detections[order[r]].score;
    for (let t = 0; t < this.thresholds.length; t++) {
      const threshold = this.thresholds[t];
      const flags = (this.tpFlags[t] = grow(this.tpFlags[t], base + n, (k) => new Uint8Array(k)));
      const taken = this.taken;
      taken.fill(0, 0, m);
      for (let r = 0; r < n; r++) {
        // The remaining GT with the highest IoU (first one on ties, as numpy argmax over the remaining list);
        // below the threshold the detection is a false positive and nothing is consumed.
        let best = -1, bestIou = -Infinity;
        for (let j = 0; j < m; j++) {
          if (taken[j]) continue;
          const iou = ious[r * m + j];
          if (iou > bestIou) { bestIou = iou; best = j; }
        }
        if (best >= 0 && bestIou >= threshold) {
          if (ignored?.[best]) {
            flags[base + r] = IGNORED;
          } else {
            taken[best] = 1;
            flags[base + r] = 1;
          }
        } else {
          flags[base + r] = 0;
        }
      }
    }
    let counted = m;
    if (ignored) for (let j = 0; j < m; j++) if (ignored[j]) counted--;
    this.count += n;
    this.gtTotal += counted;
    this.frames++;
  }

  result(order: ApOrder = 'global'): ApResult {
    const n = this.count;
    const sequence = new Uint32Array(n);
    for (let i = 0; i < n; i++) sequence[i] = i;
    if (order === 'global') {
      const scores = this.scores;
      sequence.sort((a, b) => scores[b] - scores[a] || a - b);
    } else if (order !== 'frame') {
      throw new RangeError(`order must be 'global' or 'frame', got '${String(order)}'`);
    }
    const gt = this.gtTotal;
    const out: ApResult = {};
    for (let t = 0; t < this.thresholds.length; t++) {
      const flags = this.tpFlags[t];
      const precision: number[] = [];
      const recall: number[] = [];
      let tp = 0, fp = 0;
      for (let k = 0; k < n; k++) {
        const flag = flags[sequence[k]];
        if (flag === IGNORED) continue;
        if (flag === 1) tp++;
        else fp++;
        precision.push(tp / (tp + fp));
        recall.push(gt > 0 ? tp / gt : Number.NaN);
      }
      const iou = this.thresholds[t];
      out[String(iou)] = { iou, ap: gt > 0 ? vocAveragePrecision(recall, precision) : Number.NaN, precision, recall, tp, fp, gt };
    }
    return out;
  }
}

export interface ClassApResult {
  /** Every evaluated class: the classes given to the constructor, else every class seen in detections or GT. */
  byClass: Partial<Record<ObjectClass, ApResult>>;
  /**
   * The number OPV2V / V2XSet / V2V4Real / DAIR-V2X tables report: AP of the vehicle class (their detectors and
   * ground truth are vehicles only, and OpenCOOD's matcher ignores class).
   */
  vehicle: ApResult;
  /** Per threshold, the mean AP over classes that have ground truth; NaN when none has. */
  meanAp: Record<string, number>;
}

/** One ApAccumulator per class: a detection only matches ground truth of its own class. */
export class ClassAwareApAccumulator {
  readonly thresholds: readonly number[];
  private readonly fixedClasses: readonly ObjectClass[] | undefined;
  private readonly perClass = new Map<ObjectClass, ApAccumulator>();

  /** With `classes`, only those are evaluated and the rest is ignored; without, every class that appears. */
  constructor(thresholds: readonly number[] = DEFAULT_IOU_THRESHOLDS, classes?: readonly ObjectClass[]) {
    this.thresholds = [...thresholds];
    this.fixedClasses = classes ? [...classes] : undefined;
    for (const c of classes ?? []) this.perClass.set(c, new ApAccumulator(thresholds));
  }

  private accumulatorFor(cls: ObjectClass): ApAccumulator | undefined {
    let acc = this.perClass.get(cls);
    if (!acc && !this.fixedClasses) {
      acc = new ApAccumulator(this.thresholds);
      this.perClass.set(cls, acc);
    }
    return acc;
  }

  addFrame(detections: readonly Detection[], groundTruth: readonly ClassedBox[]): void {
    const dets = new Map<ObjectClass, Detection[]>();
    const gts = new Map<ObjectClass, Box7[]>();
    const ignoredFlags = new Map<ObjectClass, boolean[]>();
    for (const d of detections) {
      const cls = d.cls ?? 'vehicle';
      if (!this.accumulatorFor(cls)) continue;
      let list = dets.get(cls);
      if (!list) dets.set(cls, (list = []));
      list.push(d);
    }
    for (const g of groundTruth) {
      if (!this.accumulatorFor(g.cls)) continue;
      let list = gts.get(g.cls);
      if (!list) gts.set(g.cls, (list = []));
      list.push(g.box);
      let flags = ignoredFlags.get(g.cls);
      if (!flags) ignoredFlags.set(g.cls, (flags = []));
      flags.push(g.ignored === true);
    }
    // Every class sees every frame so that frame order stays aligned across classes.
    for (const [cls, acc] of this.perClass) acc.addFrame(dets.get(cls) ?? [], gts.get(cls) ?? [], ignoredFlags.get(cls));
  }

  result(order: ApOrder = 'global'): ClassApResult {
    const byClass: Partial<Record<ObjectClass, ApResult>> = {};
    for (const [cls, acc] of this.perClass) byClass[cls] = acc.result(order);
    const vehicle = byClass.vehicle ?? new ApAccumulator(this.thresholds).result(order);
    const meanAp: Record<string, number> = {};
    for (const t of this.thresholds) {
      const key = String(t);
      const aps = Object.values(byClass).filter((r) => r[key].gt > 0).map((r) => r[key].ap);
      meanAp[key] = aps.length > 0 ? aps.reduce((s, a) => s + a, 0) / aps.length : Number.NaN;
    }
    return { byClass, vehicle, meanAp };
  }
}

export interface EvaluateOptions {
  thresholds?: readonly number[];
  classes?: readonly ObjectClass[];
  order?: ApOrder;
}

/** Per-class and vehicle AP over a sequence of frames (detections and ground truth in each frame's ego frame). */
export function evaluateDetections(
  frames: Iterable<{ detections: readonly Detection[]; groundTruth: readonly ClassedBox[] }>,
  opts: EvaluateOptions = {},
): ClassApResult {
  const acc = new ClassAwareApAccumulator(opts.thresholds ?? DEFAULT_IOU_THRESHOLDS, opts.classes);
  for (const f of frames) acc.addFrame(f.detections, f.groundTruth);
  return acc.result(opts.order ?? 'global');
}
