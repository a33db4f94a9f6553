// Latency: a collaborator's message that arrives L ms after capture describes the world as it was L ms ago.
//
// Simulation (delayedFrameIndex): the collaborator's message at ego frame i is its frame captured at or before
// t_i − L, the latest such frame of the sequence (the nearest earlier frame; no interpolation: a sensor frame is
// a whole sweep, and blending two sweeps' features describes no real message). Frames 100 ms apart and L a
// multiple of 100 ms give exactly frame i − L/100; L = 150 ms gives i − 2 (200 ms old).
//
// Compensation, what it covers:
// - Every mode aligns an old message with the sender's pose at capture time (the pose its header carries), not its
//   pose now, so the sender's own motion over the gap is undone for everything static.
// - Late fusion (compensateLatency) also moves each object by its own velocity over the gap. A single-frame
//   detector sends no velocity, so it is estimated from the sender's latest object lists, the idea of DAIR-V2X's
//   time-compensated late fusion (TCLF: the infrastructure's previous frame matched to its current one by centre
//   distance, offset = displacement / Δt_prev · Δt_gap), over a short history (four lists by default) rather than
//   two, because two single-frame detections 100 ms apart give velocities too noisy to use (see
//   estimateVelocitiesFromHistory). Its limit: a single-frame detector's box centre drifts as the sender's view of
//   an object changes, so parked cars seen from a moving sender can get a speed above the 1 m/s floor and be moved
//   when they should not; where traffic is slow that costs more at IoU 0.7 than it gains (README, "Fusion
//   robustness"). A tracker's filtered velocities would serve better than raw detections.
// - Feature fusion (max, mean, attention, hybrid) moves the features inside each moving object's footprint by its
//   velocity over the gap, the velocity from a tracker over the receiver's own fused detections of earlier frames
//   (feature-motion.ts: why that source, and why the tracker must see the maps as received).
import type { Detection } from '../eval/index.ts';
import { FusionInputError } from './warp.ts';

/**
 * The index of the latest frame j ≤ current with timestampsNs[j] ≤ timestampsNs[current] − latencyMs, or
 * undefined when the sequence has no frame that old (the message has not been sent yet). Timestamps ascending.
 */
export function delayedFrameIndex(timestampsNs: readonly bigint[], current: number, latencyMs: number): number | undefined {
  if (!(Number.isInteger(current) && current >= 0 && current < timestampsNs.length)) {
    throw new FusionInputError('current', current, `must index the ${timestampsNs.length} timestamps`);
  }
  if (!(Number.isFinite(latencyMs) && latencyMs >= 0)) throw new FusionInputError('latencyMs', latencyMs, 'must be a finite number ≥ 0');
  const latest = timestampsNs[current] - BigInt(Math.round(latencyMs * 1e6));
  for (let j = current; j >= 0; j--) if (timestampsNs[j] <= latest) return j;
  return undefined;
}

export interface VelocityOptions {
  /** Objects farther apart than maxSpeedMps · Δt in consecutive lists are not the same object; default 40 m/s. */
  maxSpeedMps?: number;
  /** A fitted speed below this is taken as 0 (a parked car's detection jitter is not motion); default 1 m/s. */
  minSpeedMps?: number;
}

/**
 * Per object of the newest list, its BEV velocity (m/s; vx, vy interleaved) from the sender's recent object lists
 * `history` (oldest first, the newest last, all in one static frame: world, or the ego frame of now) captured at
 * `timesS` (seconds, increasing). Consecutive lists are associated greedily by centre distance, closest pairs
 * first, same class only, within the speed gate; an object whose chain reaches back through every list gets the
 * least-squares constant-velocity slope of its centres; any other object gets 0 (better an old position than an
 * invented motion), as does a fitted speed below minSpeedMps.
 * With two lists this is DAIR-V2X's TCLF estimate; with more it is a short track history. On the intersection
 * sequences (the shipped detector, vehicles matched to ground truth) two lists gave ~2.9 m/s of velocity noise on
 * parked cars (detections jitter ~0.2 m, divided by 0.1 s): four lists (300 ms) and the 1 m/s floor cut the share of
 * boxes left > 0.5 m off after a 200 ms gap from 34 % (two lists) and 67 % (no compensation) to 13 % (validation
 * sequence, seed 101).
 */
export function estimateVelocitiesFromHistory(history: readonly (readonly Detection[])[], timesS: readonly number[], opts: VelocityOptions = {}): Float64Array {
  const K = history.length;
  if (K < 2) throw new FusionInputError('history.length', K, 'needs at least two object lists');
  if (timesS.length !== K) throw new FusionInputError('timesS.length', timesS.length, `must equal history.length (${K})`);
  for (let k = 1; k < K; k++) {
    if (!(Number.isFinite(timesS[k]) && timesS[k] > timesS[k - 1])) throw new FusionInputError('timesS', timesS.join(', '), 'must be finite and strictly increasing');
  }
  const maxSpeed = opts.maxSpeedMps ?? 40, minSpeed = opts.minSpeedMps ?? 1;
  // links[k][i]: the index in history[k] of object i of history[k + 1]'s predecessor, or −1.
  const links: Int32Array[] = [];
  for (let k = 0; k + 1 < K; k++) links.push(associate(history[k], history[k + 1], maxSpeed * (timesS[k + 1] - timesS[k])));
  const current = history[K - 1];
  const velocity = new Float64Array(2 * current.length);
  const chainX = new Float64Array(K), chainY = new Float64Array(K);
  let tMean = 0;
  for (const t of timesS) tMean += t / K;
  let stt = 0;
  for (const t of timesS) stt += (t - tMean) ** 2;
  for (let i = 0; i < current.length; i++) {
    let at = i, ok = true;
    chainX[K - 1] = current[i].box.x;
    chainY[K - 1] = current[i].box.y;
    for (let k = K - 2; k >= 0; k--) {
      at = links[k][at];
      if (at < 0) {
        ok = false;
        break;
      }
      chainX[k] = history[k][at].box.x;
      chainY[k] = history[k][at].box.y;
    }
    if (!ok) continue;
    let xMean = 0, yMean = 0;
    for (let k = 0; k < K; k++) {
      xMean += chainX[k] / K;
      yMean += chainY[k] / K;
    }
    let sx = 0, sy = 0;
    for (let k = 0; k < K; k++) {
      sx += (timesS[k] - tMean) * (chainX[k] - xMean);
      sy += (timesS[k] - tMean) * (chainY[k] - yMean);
    }
    const vx = sx / stt, vy = sy / stt;
    if (Math.hypot(vx, vy) < minSpeed) continue;
    velocity[2 * i] = vx;
    velocity[2 * i + 1] = vy;
  }
  return velocity;
}

// Greedy nearest-centre association of `current` to `previous` within `gate` metres, same class.
function associate(previous: readonly Detection[], current: readonly Detection[], gate: number): Int32Array {
  const pairs: { d: number; i: number; j: number }[] = [];
  for (let i = 0; i < current.length; i++) {
    const a = current[i];
    for (let j = 0; j < previous.length; j++) {
      const b = previous[j];
      if ((a.cls ?? 'vehicle') !== (b.cls ?? 'vehicle')) continue;
      const d = Math.hypot(a.box.x - b.box.x, a.box.y - b.box.y);
      if (d <= gate) pairs.push({ d, i, j });
    }
  }
  pairs.sort((p, q) => p.d - q.d || p.i - q.i || p.j - q.j);
  const link = new Int32Array(current.length).fill(-1);
  const used = new Uint8Array(previous.length);
  for (const { i, j } of pairs) {
    if (link[i] >= 0 || used[j]) continue;
    link[i] = j;
    used[j] = 1;
  }
  return link;
}

/** Two lists `dtS` apart: TCLF's velocity estimate (estimateVelocitiesFromHistory with two lists). */
export function estimateVelocities(previous: readonly Detection[], current: readonly Detection[], dtS: number, opts: VelocityOptions = {}): Float64Array {
  if (!(Number.isFinite(dtS) && dtS > 0)) throw new FusionInputError('dtS', dtS, 'must be a finite number > 0');
  return estimateVelocitiesFromHistory([previous, current], [0, dtS], opts);
}

/**
 * Latency compensation of an old object list: each object of the newest list in `history` moved by its velocity
 * (estimateVelocitiesFromHistory over `history` at `timesS`) over `gapS`, the seconds between its capture and the
 * ego frame. Returns new detections (boxes copied); sizes, yaw, class and score unchanged.
 */
export function compensateLatency(history: readonly (readonly Detection[])[], timesS: readonly number[], gapS: number, opts: VelocityOptions = {}): Detection[] {
  if (!(Number.isFinite(gapS) && gapS >= 0)) throw new FusionInputError('gapS', gapS, 'must be a finite number ≥ 0');
  const v = estimateVelocitiesFromHistory(history, timesS, opts);
  return history[history.length - 1].map((d, i) => ({ ...d, box: { ...d.box, x: d.box.x + v[2 * i] * gapS, y: d.box.y + v[2 * i + 1] * gapS } }));
}
