// Who sees what: for every ground-truth vehicle near an agent, how many of that agent's LiDAR points fall in it.
// A vehicle with almost no points from one agent but many from another is the case cooperative perception is for.
import { countPointsInBox, invertRigid, transformBox, type Box7 } from '../geometry/index.ts';
import type { CooperativeFrame, GroundTruthBox } from './types.ts';

export interface OcclusionThresholds {
  /** Only vehicles whose centre is within this distance of the agent count (m). */
  rangeM: number;
  /** Fewer points than this: the agent does not see the vehicle. */
  hiddenBelow: number;
  /** At least this many points: the agent sees the vehicle well. */
  wellSeenAtLeast: number;
}

export const DEFAULT_OCCLUSION_THRESHOLDS: OcclusionThresholds = { rangeM: 50, hiddenBelow: 5, wellSeenAtLeast: 20 };

export interface AgentOcclusion {
  agentId: string;
  /** Vehicle-frames within range, summed over frames. */
  inRange: number;
  /** …of which the agent has fewer than hiddenBelow points on. */
  hidden: number;
  /** …of which another agent sees well. */
  hiddenButSeenByAnother: number;
}

export interface OcclusionReport {
  thresholds: OcclusionThresholds;
  frames: number;
  agents: AgentOcclusion[];
}

/** Ground truth of a cooperative frame: the dataset's cooperative list, or the union of the agents' lists by id. */
export function frameGroundTruth(frame: CooperativeFrame): GroundTruthBox[] {
  if (frame.cooperativeBoxes) return frame.cooperativeBoxes;
  const byId = new Map<string, GroundTruthBox>();
  for (const a of frame.agents) for (const b of a.boxes) if (!byId.has(b.id)) byId.set(b.id, b);
  return [...byId.values()];
}

/**
 * Accumulates occlusion statistics over frames. Points are counted in each agent's own LiDAR frame; the boxes
 * of the connected agents themselves are left out (an agent's own body is not an object it should detect).
 */
export async function occlusionStatistics(
  frames: AsyncIterable<CooperativeFrame>,
  thresholds: OcclusionThresholds = DEFAULT_OCCLUSION_THRESHOLDS,
  onFrame?: () => void,
): Promise<OcclusionReport> {
  const perAgent = new Map<string, AgentOcclusion>();
  let frameCount = 0;
  for await (const frame of frames) {
    frameCount++;
    const agentIds = new Set(frame.agents.map((a) => a.agentId));
    const vehicles = frameGroundTruth(frame).filter((b) => b.cls === 'vehicle' && !agentIds.has(b.id));
    // counts[agent][vehicle] = points, or −1 when out of the agent's range
    const counts: number[][] = [];
    for (const agent of frame.agents) {
      const points = await agent.loadPoints();
      const worldToLidar = invertRigid(agent.lidarToWorld);
      const ax = agent.lidarToWorld[3], ay = agent.lidarToWorld[7];
      counts.push(
        vehicles.map((v) => {
          if (Math.hypot(v.box.x - ax, v.box.y - ay) > thresholds.rangeM) return -1;
          const local: Box7 = transformBox(worldToLidar, v.box);
          return countPointsInBox(local, points);
        }),
      );
    }
    frame.agents.forEach((agent, i) => {
      let acc = perAgent.get(agent.agentId);
      if (!acc) perAgent.set(agent.agentId, (acc = { agentId: agent.agentId, inRange: 0, hidden: 0, hiddenButSeenByAnother: 0 }));
      vehicles.forEach((_, j) => {
        const n = counts[i][j];
        if (n < 0) return;
        acc.inRange++;
        if (n >= thresholds.hiddenBelow) return;
        acc.hidden++;
        if (counts.some((row, k) => k !== i && row[j] >= thresholds.wellSeenAtLeast)) acc.hiddenButSeenByAnother++;
      });
    });
    onFrame?.();
  }
  return { thresholds, frames: frameCount, agents: [...perAgent.values()] };
}
