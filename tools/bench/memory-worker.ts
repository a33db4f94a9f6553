// One process of the memory section: the agent's or the fusion node's per-frame work (pipeline.ts) over a long
// replay of the benchmark sequence (looped), sampling this process's RSS after every frame. Writes a JSON file.
//   tsx tools/bench/memory-worker.ts agent|fusion FRAMES SEQUENCE_DIR MANIFEST OUT.json [float32|int8]
import { writeFile } from 'node:fs/promises';
import { openDataset } from '../../src/datasets/index.ts';
import { type Mat4 } from '../../src/geometry/index.ts';
import { PerceptionModels } from '../../src/perception/index.ts';
import { MotionPredictor } from '../../src/prediction/index.ts';
import { AgentPipeline, FusionPipeline } from './pipeline.ts';

const [role, framesArg, seqDir, manifest, outPath, precision = 'float32'] = process.argv.slice(2);
const frames = Number(framesArg);
const seq = (await openDataset(seqDir)).scenarios[0];
const loaded: { id: string; points: Float32Array; pose: Mat4 }[][] = [];
for (let i = 0; i < seq.frameCount; i++) {
  const f = await seq.frame(i);
  const agents = [];
  for (const a of f.agents) agents.push({ id: a.agentId, points: await a.loadPoints(), pose: a.lidarToWorld });
  loaded.push(agents);
}
const models = await PerceptionModels.load(manifest, { threads: 1, precision: precision === 'int8' ? 'int8' : 'float32' });
const agent = new AgentPipeline(models);
const rssMB: number[] = [];
const heapMB: number[] = [];
const t0 = performance.now();
const sample = () => {
  const m = process.memoryUsage();
  rssMB.push(m.rss / 2 ** 20);
  heapMB.push(m.heapUsed / 2 ** 20);
};

if (role === 'agent') {
  for (let i = 0; i < frames; i++) {
    const a = loaded[i % loaded.length][1];
    await agent.run(a.id, a.points, a.pose, BigInt(i) * 100_000_000n);
    sample();
  }
} else {
  // The fusion node's input: the collaborators' real messages and the ego's map of each frame, made once.
  const inputs: { egoMap: Float32Array; egoPose: Mat4; messages: Uint8Array[] }[] = [];
  for (const [ego, ...others] of loaded) {
    const messages = [];
    for (const a of others) messages.push((await agent.run(a.id, a.points, a.pose, 0n)).bytes);
    inputs.push({ egoMap: Float32Array.from((await agent.run(ego.id, ego.points, ego.pose, 0n)).features), egoPose: ego.pose, messages });
  }
  const predictor = models.manifest.motionPredictor ? await MotionPredictor.fromEntry(models.manifest.motionPredictor, { threads: 1 }) : undefined;
  const fusion = new FusionPipeline(models, predictor, 'attention');
  for (let i = 0; i < frames; i++) {
    const input = inputs[i % inputs.length];
    const collaborators = input.messages.map((bytes, k) => fusion.decode(k, bytes));
    await fusion.fuse(input.egoMap, input.egoPose, collaborators);
    sample();
  }
}
await writeFile(outPath, JSON.stringify({ role, frames, seconds: (performance.now() - t0) / 1000, rssMB, heapMB }));
await models.dispose();
