// The feature modes' consistency test, shared by the in-process detector and the fusion node: a feature map carries
// no object list to judge, so each collaborator's claims are what the detection head finds on its map alone. The head
// runs on the map as decoded, in the sender's own frame (it was trained on maps in their own frame; on a map warped
// into the ego frame it found a third of the cars on the fixture), and the boxes are then moved to the ego frame,
// which is where the warped map carries them into the fusion. Those objects, plus hybrid's object list, are judged
// by the free-space test alone: a map's own detections and an object list are not the ego's kind of claims, and
// honest single-agent lists agree too little for the agreement test to tell much (consistency.ts).
import type { Detection } from '../eval/index.ts';
import { type Mat4, transformBox } from '../geometry/index.ts';
import { type AgentView, type ConsistencyOptions, type ConsistencyVerdict, filterConsistent } from './consistency.ts';
import { type FreeSpaceMap, DEFAULT_GHOST_CHECK, contradictsFreeSpace } from './free-space.ts';

/** What the test needs of the detection head (perception's DetectionHead). */
export interface OwnMapHead {
  detect(features: Float32Array): Promise<{ detections: Detection[] }>;
}

/** One collaborator in a feature mode, as the receiver has it. */
export interface FeatureView {
  id: string;
  /** Sender → ego. */
  toEgo: Mat4;
  /** Its map as decoded, in its own frame; undefined: no head pass (its objects alone are judged). */
  features?: Float32Array;
  /** Hybrid: its object list, ego frame. */
  objects?: Detection[];
}

/**
 * Judges feature-mode collaborators against the ego's free-space map (no map: nothing is excluded). `kept`: the
 * views not excluded, each kept one's `objects` without those the map contradicts (the tolerated few), as
 * filterConsistent drops them from a kept late list. `headMs`: the head passes' time, the test's main cost.
 */
export async function checkFeatureViews<T extends FeatureView>(
  head: OwnMapHead, ego: { id: string; freeSpace?: FreeSpaceMap }, views: readonly T[], opts: ConsistencyOptions = {},
): Promise<{ kept: T[]; verdicts: ConsistencyVerdict[]; headMs: number }> {
  let headMs = 0;
  const claims: AgentView[] = [];
  for (const v of views) {
    let detections: Detection[] = v.objects ?? [];
    if (v.features) {
      const t = performance.now();
      const own = await head.detect(v.features);
      detections = [...own.detections.map((d) => ({ ...d, box: transformBox(v.toEgo, d.box) })), ...detections];
      headMs += performance.now() - t;
    }
    claims.push({ id: v.id, detections, x: v.toEgo[3]!, y: v.toEgo[7]! });
  }
  const { verdicts } = filterConsistent({ id: ego.id, detections: [], x: 0, y: 0, freeSpace: ego.freeSpace }, claims, { ...opts, agreement: false });
  const map = ego.freeSpace;
  const ghost = { ...DEFAULT_GHOST_CHECK, ...opts.ghost };
  const kept = views
    .filter((_, i) => !verdicts[i]!.exclude)
    .map((v) => (map && v.objects ? { ...v, objects: v.objects.filter((d) => !contradictsFreeSpace(map, d, ghost)) } : v));
  return { kept, verdicts, headMs };
}
