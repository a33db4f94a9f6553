// Scoring a cooperative detector over a sequence: one loop for the detect command, the demo and the accuracy test.
import type { CooperativeSequence } from '../datasets/index.ts';
import { type ClassAwareApAccumulator, type EvalRange, type GroundTruthVisibility, cooperativeGroundTruth, markHiddenGroundTruth } from '../eval/index.ts';
import type { BevGrid } from '../perception/index.ts';
import type { CooperativeDetector, FrameLinks } from './cooperative-detector.ts';

/** The evaluation range of a model: its BEV grid (with the grid's z bounds, as OpenCOOD clips to its lidar range). */
export function gridEvalRange(g: BevGrid): EvalRange {
  return { xMin: g.xMin, xMax: g.xMax, yMin: g.yMin, yMax: g.yMax, zMin: g.zMin, zMax: g.zMax };
}

export interface SequenceRun {
  frames: number;
  /** Agents fused, summed over frames. */
  agents: number;
  detections: number;
  /** Per stage, one value (ms) per frame. */
  timings: Record<string, number[]>;
  /** late and early: per agent id, its message bytes, one value per frame it sent in; empty otherwise. */
  bytes: Record<string, number[]>;
  /** Occupied cells left without a pillar (maxPillars reached), summed over frames. */
  droppedPillars: number;
  /** Per frame evaluated: its index, and which collaborators in range were fused or skipped and why. */
  perFrame: ({ index: number } & FrameLinks)[];
}

/**
 * Detects every frame of `seq` in which `egoId` is present (`maxFrames` of them from `firstFrame`, default 0:
 * a latency curve starts late enough that every latency has an earlier frame to send) and adds the detections and
 * OpenCOOD's cooperative ground truth, clipped to the model's grid, to `acc` (the caller's, so that several
 * sequences can share one). When the detector tracks its fused detections (feature-mode latency compensation),
 * up to `warmupFrames` frames before `firstFrame` (default 4) are detected first and not scored: a fusion node runs
 * continuously, so its first scored frame should not be its tracker's first frame.
 */
export async function evaluateSequence(
  seq: CooperativeSequence,
  detector: CooperativeDetector,
  egoId: string,
  acc: ClassAwareApAccumulator,
  opts: { maxFrames?: number; firstFrame?: number; warmupFrames?: number; onFrame?: () => void; gtVisibility?: GroundTruthVisibility } = {},
): Promise<SequenceRun> {
  const evalRange = gridEvalRange(detector.models.grid);
  const run: SequenceRun = { frames: 0, agents: 0, detections: 0, timings: {}, bytes: {}, droppedPillars: 0, perFrame: [] };
  const first = opts.firstFrame ?? 0;
  const n = Math.min(seq.frameCount, first + (opts.maxFrames ?? Infinity));
  if (detector.tracksFusedDetections) {
    for (let i = Math.max(0, first - (opts.warmupFrames ?? 4)); i < first; i++) {
      const frame = await seq.frame(i);
      if (frame.agents.some((a) => a.agentId === egoId)) await detector.detectFrame(frame, egoId, seq);
    }
  }
  for (let i = first; i < n; i++) {
    const frame = await seq.frame(i);
    if (!frame.agents.some((a) => a.agentId === egoId)) continue;
    const r = await detector.detectFrame(frame, egoId, seq);
    const groundTruth = cooperativeGroundTruth(frame, egoId, { evalRange });
    acc.addFrame(r.detections, opts.gtVisibility && opts.gtVisibility !== 'none'
      ? await markHiddenGroundTruth(frame, egoId, groundTruth, opts.gtVisibility)
      : groundTruth);
    for (const [k, v] of Object.entries(r.timings)) (run.timings[k] ??= []).push(v as number);
    for (const [id, b] of Object.entries(r.bytes ?? {})) (run.bytes[id] ??= []).push(b);
    run.droppedPillars += r.droppedPillars;
    run.perFrame.push({ index: frame.index, ...r.links });
    run.frames++;
    run.agents += r.agents.length;
    run.detections += r.detections.length;
    opts.onFrame?.();
  }
  return run;
}
