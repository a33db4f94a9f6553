// Throughput on one core (ONNX Runtime intra-op threads 1): agent frames per second (points to protobuf bytes),
// and fusion frames per second against the number of agents (1, 2, 4, 8, 16). Beyond the sequence's 4 agents the
// collaborators are its 3 real messages again, at poses shifted by a few metres, so every map is warped and fused.
import { type Mat4 } from '../../src/geometry/index.ts';
import { PerceptionModels } from '../../src/perception/index.ts';
import { MotionPredictor } from '../../src/prediction/index.ts';
import { type BenchOptions, type SectionResult, round } from './common.ts';
import { AgentPipeline, FusionPipeline } from './pipeline.ts';
import { loadFrames } from './stages.ts';

export const FUSION_AGENT_COUNTS = [1, 2, 4, 8, 16] as const;

export async function runThroughput(o: BenchOptions): Promise<SectionResult> {
  const frames = await loadFrames(o);
  const models = await PerceptionModels.load(o.models, { device: o.device, threads: 1, precision: o.precision });
  const predictor = models.manifest.motionPredictor ? await MotionPredictor.fromEntry(models.manifest.motionPredictor, { device: models.provider, threads: 1 }) : undefined;
  try {
    const agent = new AgentPipeline(models);
    const n = o.quick ? frames.length : 2 * frames.length;
    // Warm-up: the first runs of a session are slower (allocation, JIT).
    await agent.run('w', frames[0].agents[0].points, frames[0].agents[0].pose, 0n);
    let t = performance.now();
    for (let i = 0; i < n; i++) {
      const f = frames[i % frames.length];
      const a = f.agents[0];
      await agent.run(a.id, a.points, a.pose, f.captureNs);
    }
    const agentFps = n / ((performance.now() - t) / 1000);
    o.log(`throughput: agent ${agentFps.toFixed(2)} frames/s`);

    // Real collaborator messages of the first frame, and the ego's own map.
    const f0 = frames[0];
    const [ego, ...others] = f0.agents;
    const messages: Uint8Array[] = [];
    for (const a of others) messages.push((await agent.run(a.id, a.points, a.pose, f0.captureNs)).bytes);
    const egoMap = Float32Array.from((await agent.run(ego.id, ego.points, ego.pose, f0.captureNs)).features);

    const fusion: Record<string, { framesPerSecond: number; msPerFrame: number }> = {};
    const iterations = o.quick ? 3 : 10;
    for (const K of FUSION_AGENT_COUNTS) {
      const pipeline = new FusionPipeline(models, predictor, 'attention');
      const frame = async () => {
        const collaborators = [];
        for (let k = 0; k < K - 1; k++) {
          const d = pipeline.decode(k, messages[k % messages.length]);
          collaborators.push({ ...d, pose: shifted(d.pose, Math.floor(k / messages.length)) });
        }
        await pipeline.fuse(egoMap, ego.pose, collaborators);
      };
      await frame();
      t = performance.now();
      for (let i = 0; i < iterations; i++) await frame();
      const ms = (performance.now() - t) / iterations;
      fusion[String(K)] = { framesPerSecond: round(1000 / ms), msPerFrame: round(ms, 1) };
      o.log(`throughput: fusion of ${K} agents ${ms.toFixed(1)} ms/frame`);
    }
    return {
      threads: 1,
      agentFramesPerSecond: round(agentFps),
      agentFrames: n,
      fusionByAgents: fusion,
      notes: [
        'agent frame: pillarise, PFN, scatter, backbone, own head (confidence), int8+top10%+deflate, protobuf',
        'fusion frame: protobuf + codec decode of K-1 collaborator messages, align, attention fusion, head, decode, NMS, track, predict',
      ],
    };
  } finally {
    await predictor?.release();
    await models.dispose();
  }
}

/** The same pose moved by `step` × (3 m, 2 m): a distinct collaborator with an overlapping view. */
function shifted(pose: Mat4, step: number): Mat4 {
  if (step === 0) return pose;
  const p = Float64Array.from(pose);
  p[3] += 3 * step;
  p[7] += 2 * step;
  return p;
}
