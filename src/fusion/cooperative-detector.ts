// One cooperative detection step, as the fusion node performs it: encode every agent's LiDAR frame, align the
// collaborators' BEV features with the ego grid, fuse, run the head. The message path (later) replaces "encode
// every agent here" with "decode what the agents sent", and keeps the rest.
import type { AgentFrame, CooperativeFrame } from '../datasets/index.ts';
import { invertRigid, multiply, type Mat4 } from '../geometry/index.ts';
import { featureShape, type PerceptionModels, type StageTimings } from '../perception/index.ts';
import type { Detection } from '../eval/index.ts';
import { maxFuse, warpToEgo } from './warp.ts';

/** none: ego features only. max: element-wise max over aligned maps. attention: the trained attention model. */
export type FusionMode = 'none' | 'max' | 'attention';

export interface CooperativeDetectorOptions {
  /** Collaborators farther than this (2D, LiDAR to LiDAR) are not used; OpenCOOD's 70 m. */
  commRangeM?: number;
  /** Use each agent's GPS-noisy pose when the dataset has one (what a real deployment knows), else the true pose. */
  noisyPoses?: boolean;
}

export interface CooperativeDetection {
  detections: Detection[];
  /** Agents whose features went into the fusion, ego first. */
  agents: string[];
  /** Summed over agents for the per-agent stages. */
  timings: StageTimings & { warp?: number };
}

export class FusionConfigError extends Error {
  readonly userFacing = true;
  constructor(message: string) {
    super(message);
    this.name = 'FusionConfigError';
  }
}

function poseOf(agent: AgentFrame, noisy: boolean): Mat4 {
  return noisy && agent.noisyLidarToWorld ? agent.noisyLidarToWorld : agent.lidarToWorld;
}

export class CooperativeDetector {
  private readonly encoded: Float32Array[] = [];
  private readonly warped: Float32Array[] = [];
  private readonly masks: Float32Array[] = [];
  private readonly fused: Float32Array;
  private readonly commRangeM: number;
  private readonly noisyPoses: boolean;

  constructor(readonly models: PerceptionModels, readonly mode: FusionMode, opts: CooperativeDetectorOptions = {}) {
    if (!models.head) throw new FusionConfigError(`${models.manifest.source}: the manifest names no detection_head model`);
    if (mode === 'attention' && !models.attention) throw new FusionConfigError(`${models.manifest.source}: --fusion attention needs a fusion_attention model in the manifest`);
    const [C, H, W] = featureShape(models.grid);
    this.fused = new Float32Array(C * H * W);
    this.commRangeM = opts.commRangeM ?? 70;
    this.noisyPoses = opts.noisyPoses ?? false;
  }

  private buffer(list: Float32Array[], k: number, size: number): Float32Array {
    while (list.length <= k) list.push(new Float32Array(size));
    return list[k];
  }

  /** The agents a frame's ego fuses with: itself first, then those within communication range (true positions). */
  participants(frame: CooperativeFrame, egoId: string): AgentFrame[] {
    const ego = frame.agents.find((a) => a.agentId === egoId);
    if (!ego) throw new FusionConfigError(`frame ${frame.frameId}: no agent '${egoId}' (agents: ${frame.agents.map((a) => a.agentId).join(', ')})`);
    if (this.mode === 'none') return [ego];
    const ex = ego.lidarToWorld[3], ey = ego.lidarToWorld[7];
    const others = frame.agents.filter((a) => a !== ego && Math.hypot(a.lidarToWorld[3] - ex, a.lidarToWorld[7] - ey) <= this.commRangeM);
    return [ego, ...others];
  }

  async detectFrame(frame: CooperativeFrame, egoId: string): Promise<CooperativeDetection> {
    const agents = this.participants(frame, egoId);
    const [C, H, W] = featureShape(this.models.grid);
    const timings: CooperativeDetection['timings'] = {};
    const add = (t: StageTimings & { warp?: number }) => {
      for (const [k, v] of Object.entries(t)) (timings as Record<string, number>)[k] = ((timings as Record<string, number>)[k] ?? 0) + (v ?? 0);
    };
    const egoPose = poseOf(agents[0], this.noisyPoses);
    const worldToEgo = invertRigid(egoPose);
    const aligned: Float32Array[] = [];
    const masks: (Float32Array | null)[] = [];
    for (let k = 0; k < agents.length; k++) {
      const points = await agents[k].loadPoints();
      const enc = await this.models.lidar.encode(points, { out: this.buffer(this.encoded, k, C * H * W) });
      add(enc.timings);
      if (k === 0) {
        aligned.push(enc.features);
        masks.push(null);
        continue;
      }
      const t = performance.now();
      const agentToEgo = multiply(worldToEgo, poseOf(agents[k], this.noisyPoses));
      const w = warpToEgo(enc.features, agentToEgo, this.models.grid, this.buffer(this.warped, k, C * H * W), this.buffer(this.masks, k, H * W));
      add({ warp: performance.now() - t });
      aligned.push(w.features);
      masks.push(w.mask);
    }
    let bev: Float32Array;
    if (aligned.length === 1) {
      bev = aligned[0];
    } else if (this.mode === 'attention') {
      const r = await this.models.attention!.fuse(aligned, masks, this.fused);
      add(r.timings);
      bev = r.fused;
    } else {
      const t = performance.now();
      bev = maxFuse(aligned, masks, this.fused);
      add({ fusion: performance.now() - t });
    }
    const result = await this.models.head!.detect(bev);
    add(result.timings);
    return { detections: result.detections, agents: agents.map((a) => a.agentId), timings };
  }
}
