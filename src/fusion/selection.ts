// Choosing collaborators when more are in range than the receiver can take: at most `maxAgents`, and at most
// `budgetBytes` of collaborator messages per frame. Candidates are ranked by how much of the ego's grid their field
// of view overlaps (fieldOfViewFraction: the ego cells where the collaborator has LiDAR returns its encoder keeps;
// coverageFraction, the square of its grid under the warp, where it has no points to go by), ties by distance
// (nearer first); then taken greedily in that order, a candidate whose message would break the budget skipped for
// the next ones. The budget is a hard cap: the bytes chosen never exceed it.
// Why returns and not the grid square: a roadside unit near the ego covers most of its grid, but on the intersection
// sequences most of its points lie below the grid's z range in its own frame (models/README.md), so ranking by the
// square chose it every frame with --max-agents 1 and fused nothing useful (vehicle AP@0.5 0.380, ego alone 0.390).
import type { Mat4 } from '../geometry/index.ts';
import { featureCellSize, featureHeight, featureWidth, type BevGrid } from '../perception/index.ts';
import { FusionInputError } from './warp.ts';

/**
 * Fraction of the ego's feature cells whose centre, carried into the agent's frame by the inverse of
 * `agentToEgo`, falls inside the agent's map: the share of warpToEgo's mask that is 1 (same formula, 2D rigid part).
 */
export function coverageFraction(agentToEgo: Mat4, grid: BevGrid): number {
  if (agentToEgo.length !== 16) throw new FusionInputError('agentToEgo.length', agentToEgo.length, 'must be 16 (a 4x4 row-major matrix)');
  const W = featureWidth(grid), H = featureHeight(grid), s = featureCellSize(grid);
  const yaw = Math.atan2(agentToEgo[4], agentToEgo[0]);
  const cos = Math.cos(yaw), sin = Math.sin(yaw);
  const tx = agentToEgo[3], ty = agentToEgo[7];
  const { xMin, yMin } = grid;
  const xMax = xMin + W * s, yMax = yMin + H * s;
  let covered = 0;
  for (let r = 0; r < H; r++) {
    const dy = yMin + (r + 0.5) * s - ty;
    for (let c = 0; c < W; c++) {
      const dx = xMin + (c + 0.5) * s - tx;
      const xa = cos * dx + sin * dy;
      const ya = -sin * dx + cos * dy;
      if (xa >= xMin && xa < xMax && ya >= yMin && ya < yMax) covered++;
    }
  }
  return covered / (W * H);
}

// Ego feature cells marked by a collaborator's points; grown on demand and shared.
let fovCells = new Uint8Array(0);

/**
 * Fraction of the ego's feature cells in which the agent has returns its encoder keeps: its points (x, y, z, …
 * records of `stride` floats, agent frame) inside its own grid's x, y and z range, carried into the ego frame by
 * agentToEgo's 2D rigid part, each marking the ego feature cell it lands in.
 */
export function fieldOfViewFraction(points: Float32Array, agentToEgo: Mat4, grid: BevGrid, stride = 4): number {
  if (agentToEgo.length !== 16) throw new FusionInputError('agentToEgo.length', agentToEgo.length, 'must be 16 (a 4x4 row-major matrix)');
  if (!(Number.isInteger(stride) && stride >= 3) || points.length % stride !== 0) {
    throw new FusionInputError('points.length', points.length, `is not a whole number of ${stride}-float records`);
  }
  const W = featureWidth(grid), H = featureHeight(grid), s = featureCellSize(grid);
  const plane = W * H;
  if (fovCells.length < plane) fovCells = new Uint8Array(plane);
  const cells = fovCells;
  cells.fill(0, 0, plane);
  const yaw = Math.atan2(agentToEgo[4], agentToEgo[0]);
  const cos = Math.cos(yaw), sin = Math.sin(yaw);
  const tx = agentToEgo[3], ty = agentToEgo[7];
  const { xMin, yMin, zMin, zMax } = grid;
  const xMax = xMin + W * s, yMax = yMin + H * s;
  let marked = 0;
  for (let i = 0; i < points.length; i += stride) {
    const x = points[i], y = points[i + 1], z = points[i + 2];
    if (!(x >= xMin && x < xMax && y >= yMin && y < yMax && z >= zMin && z < zMax)) continue;
    const xe = cos * x - sin * y + tx, ye = sin * x + cos * y + ty;
    if (!(xe >= xMin && xe < xMax && ye >= yMin && ye < yMax)) continue;
    const cell = Math.floor((ye - yMin) / s) * W + Math.floor((xe - xMin) / s);
    if (cells[cell] === 0) {
      cells[cell] = 1;
      marked++;
    }
  }
  return marked / plane;
}

export interface SelectionCandidate {
  agentId: string;
  /** 2D distance to the ego (m). */
  distanceM: number;
  /** Overlap of its field of view with the ego's grid, 0..1 (fieldOfViewFraction, or coverageFraction). */
  coverage: number;
  /** Bytes of what it would send this frame (needed only with a budget). */
  bytes?: number;
}

export interface SelectionOptions {
  /** At most this many collaborators (the ego not counted); default unlimited. */
  maxAgents?: number;
  /** At most this many bytes of collaborator messages per frame; default unlimited. */
  budgetBytes?: number;
}

export type SelectionSkipReason = 'max-agents' | 'budget' | 'no-overlap';

export interface AgentSelection {
  /** Agent ids chosen, in rank order. */
  chosen: string[];
  /** The others, each with why. */
  skipped: { agentId: string; reason: SelectionSkipReason }[];
  /** Bytes of the chosen messages (0 when no candidate carried bytes). */
  bytes: number;
}

/** The collaborators to fuse this frame; see the file comment for the rule. */
export function selectAgents(candidates: readonly SelectionCandidate[], opts: SelectionOptions = {}): AgentSelection {
  const max = opts.maxAgents ?? Infinity;
  const budget = opts.budgetBytes ?? Infinity;
  if (!(max === Infinity || (Number.isInteger(max) && max >= 0))) throw new FusionInputError('maxAgents', max, 'must be an integer ≥ 0');
  if (!(budget >= 0)) throw new FusionInputError('budgetBytes', budget, 'must be a number ≥ 0');
  for (const c of candidates) {
    if (budget !== Infinity && !(typeof c.bytes === 'number' && c.bytes >= 0)) {
      throw new FusionInputError(`candidate ${c.agentId}.bytes`, c.bytes, 'is needed (≥ 0) when a byte budget is set');
    }
  }
  const ranked = [...candidates].sort((a, b) => b.coverage - a.coverage || a.distanceM - b.distanceM || (a.agentId < b.agentId ? -1 : 1));
  const result: AgentSelection = { chosen: [], skipped: [], bytes: 0 };
  for (const c of ranked) {
    if (!(c.coverage > 0)) result.skipped.push({ agentId: c.agentId, reason: 'no-overlap' });
    else if (result.chosen.length >= max) result.skipped.push({ agentId: c.agentId, reason: 'max-agents' });
    else if (result.bytes + (c.bytes ?? 0) > budget) result.skipped.push({ agentId: c.agentId, reason: 'budget' });
    else {
      result.chosen.push(c.agentId);
      result.bytes += c.bytes ?? 0;
    }
  }
  return result;
}
