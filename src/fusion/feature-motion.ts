// Object-motion compensation of an old feature map: a collaborator's message captured Δt before the ego frame
// shows every moving object where it was Δt ago. After the map is aligned with the ego grid (capture-time pose:
// the sender's own motion is already undone), the cells inside each moving object's footprint are moved by the
// object's displacement over Δt, and the cells it vacated are cleared: features 0 and mask 0, so that fusion
// treats them as not seen by this collaborator (it has no information about them now) rather than as empty.
//
// Where the motion comes from: the receiver's own track history (the fusion's tracker, fed the fused detections
// of earlier frames). A deployment has it for free in every feature mode: no bytes on the wire, no change to the
// messages, no detector run on the collaborator's features (a head pass per collaborator per frame), and it covers
// objects only the collaborator sees, since the fused output of earlier frames contains them. The sender's own
// object lists are not an option for intermediate fusion (it sends none) and cover only the cells it did not send
// in hybrid fusion. The tracker's velocities are Kalman-filtered over several frames, where two single-frame
// detections 100 ms apart give velocities too noisy to use (latency.ts).
//
// The move is a resampling of the footprint's patch, bilinear as the alignment warp is (exact for whole-cell
// moves), on module-level scratch grown on demand: no allocation per frame once it has grown.
import { type Box7, type Mat4, transformBox } from '../geometry/index.ts';
import type { ObjectClass } from '../datasets/index.ts';
import type { Detection } from '../eval/index.ts';
import { featureCellSize, featureHeight, featureWidth, type BevGrid } from '../perception/index.ts';
import { FusionInputError } from './warp.ts';

/**
 * One moving object of an old map, in the ego grid's frame: its box where the map shows it (at capture time) and
 * how far it has moved since, in metres.
 */
export interface FeatureMotion {
  box: Box7;
  dx: number;
  dy: number;
}

export interface FeatureMotionOptions {
  /**
   * The footprint is the box grown by this much on every side (m): features spread past an object's outline (the
   * encoder's receptive field, the alignment's bilinear blend). Default one feature cell (0.8 m on the shipped grid).
   */
  marginM?: number;
}

/** A tracked object as the motion source needs it: box and BEV velocity (m/s), in one frame; class default vehicle. */
export interface TrackedMotion {
  box: Box7;
  velocity: { x: number; y: number };
  cls?: ObjectClass;
}

export interface TrackMotionOptions {
  /** A track slower than this is taken as parked (its filtered velocity is noise); default 1 m/s, as latency.ts. */
  minSpeedMps?: number;
  /**
   * A vehicle moves along its heading, forwards or backwards: a vehicle track whose velocity points more than this
   * (degrees) off its box's axis is taken as parked. What it catches: a parked car whose track picked up speed from
   * its detection's centre drifting sideways or from an association with a neighbour; moving such a car's features
   * away from where it stands costs more than a moving car left behind. Default 20°; 90 disables it.
   */
  headingToleranceDeg?: number;
}

/**
 * The feature motions of an old message from tracks: each track (box and velocity at `trackS`, in the frame
 * `toEgo` maps to the ego frame of now) is placed where it was at the message's capture time `captureS` (its box
 * moved by v · (captureS − trackS)), and moves by v · (nowS − captureS). Tracks below minSpeedMps are left out,
 * and so is everything when the message is not older than the ego frame. Times in seconds on one clock.
 */
export function featureMotionsFromTracks(
  tracks: readonly TrackedMotion[],
  toEgo: Mat4,
  times: { trackS: number; captureS: number; nowS: number },
  opts: TrackMotionOptions = {},
): FeatureMotion[] {
  const { trackS, captureS, nowS } = times;
  if (![trackS, captureS, nowS].every(Number.isFinite)) throw new FusionInputError('times', JSON.stringify(times), 'must be finite seconds');
  const ageS = nowS - captureS;
  if (!(ageS > 0)) return [];
  const minSpeed = opts.minSpeedMps ?? 1;
  const cosTolerance = Math.cos(((opts.headingToleranceDeg ?? 20) * Math.PI) / 180);
  const c = toEgo[0], s = toEgo[4];
  const out: FeatureMotion[] = [];
  for (const t of tracks) {
    const vx = t.velocity.x, vy = t.velocity.y;
    const speed = Math.hypot(vx, vy);
    if (!(speed >= minSpeed)) continue;
    if ((t.cls ?? 'vehicle') === 'vehicle' && Math.abs(Math.cos(t.box.yaw) * vx + Math.sin(t.box.yaw) * vy) < cosTolerance * speed) continue;
    const back = captureS - trackS;
    const atCapture = transformBox(toEgo, { ...t.box, x: t.box.x + vx * back, y: t.box.y + vy * back });
    // Velocity is a direction: rotate it, do not translate it.
    out.push({ box: atCapture, dx: (c * vx - s * vy) * ageS, dy: (s * vx + c * vy) * ageS });
  }
  return out;
}

// Per motion: [scratch offset, r0, c0, rows, cols] of the patch gathered before anything is written.
const RECT = 5;
let rects = new Int32Array(0);
let patch = new Float32Array(0);

function inFootprint(box: Box7, cos: number, sin: number, halfL: number, halfW: number, x: number, y: number): boolean {
  const ex = x - box.x, ey = y - box.y;
  return Math.abs(cos * ex + sin * ey) <= halfL && Math.abs(-sin * ex + cos * ey) <= halfW;
}

// Within a millionth of a cell of a whole index, it is that index: a whole-cell move must copy values exactly.
function snap(i: number): number {
  const r = Math.round(i);
  return Math.abs(i - r) < 1e-6 ? r : i;
}

/**
 * Moves, in place, the features of each moving object of an aligned map ([C, H, W] on `grid`'s feature map, ego
 * frame) by its displacement: cells whose centre lies inside the object's footprint (its box at capture, grown by
 * marginM) are cleared (features 0, mask 0), then every cell whose centre lies inside the footprint moved by
 * (dx, dy) takes the features bilinearly sampled at its position minus (dx, dy) from the map as it was, and mask 1
 * where the sampled mask is ≥ 0.5 (a patch from outside the collaborator's view stays unseen). `mask` ([H, W], the
 * alignment's coverage) may be null (the map covers every cell). Motions of zero displacement change nothing.
 * Returns how many motions moved something.
 */
export function compensateFeatureMotion(
  features: Float32Array,
  mask: Float32Array | null,
  motions: readonly FeatureMotion[],
  grid: BevGrid,
  opts: FeatureMotionOptions = {},
): number {
  const W = featureWidth(grid), H = featureHeight(grid), s = featureCellSize(grid);
  const plane = W * H;
  const C = features.length / plane;
  if (!Number.isInteger(C) || C < 1) throw new FusionInputError('features.length', features.length, `is not a whole number of ${H} × ${W} feature planes`);
  if (mask && mask.length !== plane) throw new FusionInputError('mask.length', mask.length, `must be ${plane} (H × W)`);
  const margin = opts.marginM ?? s;
  if (!(Number.isFinite(margin) && margin >= 0)) throw new FusionInputError('marginM', margin, 'must be a finite number ≥ 0');
  const { xMin, yMin } = grid;
  const M = motions.length;
  if (rects.length < RECT * M) rects = new Int32Array(RECT * Math.max(M, 16));

  // 1. Gather each moving footprint's patch (its bounding cells plus one for the bilinear taps), before any write:
  // footprints may overlap each other's sources and destinations.
  let total = 0;
  for (let k = 0; k < M; k++) {
    const m = motions[k], b = m.box;
    const at = RECT * k;
    rects[at + 3] = 0;
    if (!(Number.isFinite(m.dx) && Number.isFinite(m.dy))) throw new FusionInputError(`motions[${k}]`, `${m.dx}, ${m.dy}`, 'displacement must be finite');
    if (Math.hypot(m.dx, m.dy) < 1e-9) continue;
    const hl = b.l / 2 + margin, hw = b.w / 2 + margin;
    const ex = Math.abs(Math.cos(b.yaw)) * hl + Math.abs(Math.sin(b.yaw)) * hw;
    const ey = Math.abs(Math.sin(b.yaw)) * hl + Math.abs(Math.cos(b.yaw)) * hw;
    const c0 = Math.max(0, Math.floor((b.x - ex - xMin) / s - 0.5) - 1), c1 = Math.min(W - 1, Math.ceil((b.x + ex - xMin) / s - 0.5) + 1);
    const r0 = Math.max(0, Math.floor((b.y - ey - yMin) / s - 0.5) - 1), r1 = Math.min(H - 1, Math.ceil((b.y + ey - yMin) / s - 0.5) + 1);
    if (c1 < c0 || r1 < r0) continue;
    rects[at] = total;
    rects[at + 1] = r0;
    rects[at + 2] = c0;
    rects[at + 3] = r1 - r0 + 1;
    rects[at + 4] = c1 - c0 + 1;
    total += (C + 1) * (r1 - r0 + 1) * (c1 - c0 + 1);
  }
  if (total === 0) return 0;
  if (patch.length < total) patch = new Float32Array(Math.ceil(total * 1.5));
  for (let k = 0; k < M; k++) {
    const at = RECT * k, rows = rects[at + 3];
    if (rows === 0) continue;
    const off = rects[at], r0 = rects[at + 1], c0 = rects[at + 2], cols = rects[at + 4];
    const area = rows * cols;
    for (let ch = 0; ch < C; ch++) {
      for (let rr = 0; rr < rows; rr++) {
        const src = ch * plane + (r0 + rr) * W + c0;
        patch.set(features.subarray(src, src + cols), off + ch * area + rr * cols);
      }
    }
    for (let rr = 0; rr < rows; rr++) {
      for (let cc = 0; cc < cols; cc++) patch[off + C * area + rr * cols + cc] = mask ? mask[(r0 + rr) * W + c0 + cc] : 1;
    }
  }

  // 2. Clear the footprints where the objects were.
  for (let k = 0; k < M; k++) {
    const at = RECT * k, rows = rects[at + 3];
    if (rows === 0) continue;
    const b = motions[k].box, cos = Math.cos(b.yaw), sin = Math.sin(b.yaw), hl = b.l / 2 + margin, hw = b.w / 2 + margin;
    const r0 = rects[at + 1], c0 = rects[at + 2], cols = rects[at + 4];
    for (let r = r0; r < r0 + rows; r++) {
      for (let c = c0; c < c0 + cols; c++) {
        if (!inFootprint(b, cos, sin, hl, hw, xMin + (c + 0.5) * s, yMin + (r + 0.5) * s)) continue;
        const cell = r * W + c;
        for (let i = cell; i < features.length; i += plane) features[i] = 0;
        if (mask) mask[cell] = 0;
      }
    }
  }

  // 3. Write each footprint where the object is now, sampled from its gathered patch.
  let moved = 0;
  for (let k = 0; k < M; k++) {
    const at = RECT * k, rows = rects[at + 3];
    if (rows === 0) continue;
    const m = motions[k], b = m.box, cos = Math.cos(b.yaw), sin = Math.sin(b.yaw), hl = b.l / 2 + margin, hw = b.w / 2 + margin;
    const off = rects[at], pr0 = rects[at + 1], pc0 = rects[at + 2], cols = rects[at + 4];
    const area = rows * cols;
    const ex = Math.abs(cos) * hl + Math.abs(sin) * hw, ey = Math.abs(sin) * hl + Math.abs(cos) * hw;
    const nx = b.x + m.dx, ny = b.y + m.dy;
    const c0 = Math.max(0, Math.floor((nx - ex - xMin) / s - 0.5)), c1 = Math.min(W - 1, Math.ceil((nx + ex - xMin) / s - 0.5));
    const r0 = Math.max(0, Math.floor((ny - ey - yMin) / s - 0.5)), r1 = Math.min(H - 1, Math.ceil((ny + ey - yMin) / s - 0.5));
    let wrote = false;
    for (let r = r0; r <= r1; r++) {
      const y = yMin + (r + 0.5) * s;
      for (let c = c0; c <= c1; c++) {
        const x = xMin + (c + 0.5) * s;
        if (!inFootprint(b, cos, sin, hl, hw, x - m.dx, y - m.dy)) continue;
        // Where this cell's content was, in patch coordinates (patch cell (0, 0) is map cell (pr0, pc0)).
        const ix = snap((x - m.dx - xMin) / s - 0.5 - pc0), iy = snap((y - m.dy - yMin) / s - 0.5 - pr0);
        const x0 = Math.floor(ix), y0 = Math.floor(iy), fx = ix - x0, fy = iy - y0;
        // Taps outside the patch get weight 0 and a harmless index (0), keeping the channel loop branch-free.
        const xin0 = x0 >= 0 && x0 < cols, xin1 = x0 + 1 >= 0 && x0 + 1 < cols, yin0 = y0 >= 0 && y0 < rows, yin1 = y0 + 1 >= 0 && y0 + 1 < rows;
        const w00 = yin0 && xin0 ? (1 - fx) * (1 - fy) : 0, i00 = yin0 && xin0 ? y0 * cols + x0 : 0;
        const w01 = yin0 && xin1 ? fx * (1 - fy) : 0, i01 = yin0 && xin1 ? y0 * cols + x0 + 1 : 0;
        const w10 = yin1 && xin0 ? (1 - fx) * fy : 0, i10 = yin1 && xin0 ? (y0 + 1) * cols + x0 : 0;
        const w11 = yin1 && xin1 ? fx * fy : 0, i11 = yin1 && xin1 ? (y0 + 1) * cols + x0 + 1 : 0;
        const mb = off + C * area;
        if (w00 * patch[mb + i00] + w01 * patch[mb + i01] + w10 * patch[mb + i10] + w11 * patch[mb + i11] < 0.5) continue;
        const cell = r * W + c;
        for (let ch = 0, base = off; ch < C; ch++, base += area) {
          const v = w00 * patch[base + i00] + w01 * patch[base + i01] + w10 * patch[base + i10] + w11 * patch[base + i11];
          features[ch * plane + cell] = v;
        }
        if (mask) mask[cell] = 1;
        wrote = true;
      }
    }
    if (wrote) moved++;
  }
  return moved;
}

/**
 * Objects of the same old message (hybrid's late part, already in the ego frame) moved as the features are: each
 * detection whose centre lies inside a motion's footprint (box grown by marginM) moves by that motion's
 * displacement (the first such motion); the others are returned as they are. Returns new detections.
 */
export function compensateObjectMotion(detections: readonly Detection[], motions: readonly FeatureMotion[], opts: FeatureMotionOptions & { grid: BevGrid }): Detection[] {
  const margin = opts.marginM ?? featureCellSize(opts.grid);
  return detections.map((d) => {
    for (const m of motions) {
      const b = m.box;
      if (inFootprint(b, Math.cos(b.yaw), Math.sin(b.yaw), b.l / 2 + margin, b.w / 2 + margin, d.box.x, d.box.y)) {
        return { ...d, box: { ...d.box, x: d.box.x + m.dx, y: d.box.y + m.dy } };
      }
    }
    return d;
  });
}
