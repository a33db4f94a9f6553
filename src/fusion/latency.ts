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
//   detector sends no velocity, so it is estimated from the sender's two latest object lists, the idea of
//   DAIR-V2X's time-compensated late fusion (TCLF: the infrastructure's previous frame matched to its current one by
//   centre distance, offset = displacement / Δt_prev · Δt_gap).
// - Intermediate fusion does not move moving objects' features: that needs per-object flow (FFNet) or tracks in
//   the feature map; objects in motion stay where they were at capture.
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
  /** Pairs farther apart than maxSpeedMps · dt are not the same object; default 40 m/s (144 km/h). */
  maxSpeedMps?: number;
}

/**
 * Per object of `current`, its BEV velocity (m/s, vx then vy, interleaved) estimated from `previous`, the same
 * sender's list `dtS` seconds earlier, both in one static frame (world, or the ego frame of now). Pairs are made
 * greedily by centre distance, closest first, same class only, within the speed gate; an object without a partner
 * gets velocity 0 (not moved: better an old position than an invented motion).
 */
export function estimateVelocities(previous: readonly Detection[], current: readonly Detection[], dtS: number, opts: VelocityOptions = {}): Float64Array {
  if (!(Number.isFinite(dtS) && dtS > 0)) throw new FusionInputError('dtS', dtS, 'must be a finite number > 0');
  const gate = (opts.maxSpeedMps ?? 40) * dtS;
  const velocity = new Float64Array(2 * current.length);
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
  const usedCur = new Uint8Array(current.length), usedPrev = new Uint8Array(previous.length);
  for (const { i, j } of pairs) {
    if (usedCur[i] || usedPrev[j]) continue;
    usedCur[i] = usedPrev[j] = 1;
    velocity[2 * i] = (current[i].box.x - previous[j].box.x) / dtS;
    velocity[2 * i + 1] = (current[i].box.y - previous[j].box.y) / dtS;
  }
  return velocity;
}

/**
 * TCLF: each object of `current` (captured `gapS` seconds before the ego frame) moved by its velocity over the
 * gap, velocities from `previous` (`dtPrevS` before `current`); both lists in one static frame. Returns new
 * detections (boxes copied); sizes, yaw, class and score unchanged.
 */
export function compensateLatency(
  previous: readonly Detection[],
  current: readonly Detection[],
  dtPrevS: number,
  gapS: number,
  opts: VelocityOptions = {},
): Detection[] {
  if (!(Number.isFinite(gapS) && gapS >= 0)) throw new FusionInputError('gapS', gapS, 'must be a finite number ≥ 0');
  const v = estimateVelocities(previous, current, dtPrevS, opts);
  return current.map((d, i) => ({ ...d, box: { ...d.box, x: d.box.x + v[2 * i] * gapS, y: d.box.y + v[2 * i + 1] * gapS } }));
}
