// The fusion node's per-frame CPU work on one real frame, in one process (and the ego agent's int8 encode of its
// map): decoding the ego's int8 map and three
// collaborators' int8+top10%+deflate maps, warping the collaborators the old way (every cell, then the sent-cell
// mask warped apart) and with warpToEgo's sent mask (covered cells only), max fusion of each, and the head.
// Checks that both warps give the same masks and the same fused map; attention fusion in TypeScript over covered
// cells beside the ONNX model over every cell. Medians over --runs.
//   node --import tsx tools/bench/fusion-frame.ts DATASET [--frame 5] [--runs 30] [--precision int8]
import { parseArgs } from 'node:util';
import { decodeFeatures, encodeFeatures, parseCodecSpec } from '../../src/codec/index.ts';
import { openDataset } from '../../src/datasets/index.ts';
import { attentionFuse, featureConfidenceMap, maxFuse, warpToEgo } from '../../src/fusion/index.ts';
import { invertRigid, multiply } from '../../src/geometry/index.ts';
import { PerceptionModels, featureShape } from '../../src/perception/index.ts';
import { Samples } from './common.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { frame: { type: 'string', default: '5' }, runs: { type: 'string', default: '30' }, precision: { type: 'string', default: 'int8' }, models: { type: 'string', default: 'models/manifest.json' } },
});
if (positionals.length !== 1) throw new Error('usage: fusion-frame.ts DATASET [--frame N] [--runs N] [--precision float32|int8]');
const seq = (await openDataset(positionals[0])).scenarios[0];
const models = await PerceptionModels.load(values.models!, { threads: 1, precision: values.precision === 'int8' ? 'int8' : 'float32' });
const [C, H, W] = featureShape(models.grid);
const plane = H * W;
const frame = await seq.frame(Number(values.frame));
const maps = [];
for (const a of frame.agents) {
  const features = Float32Array.from((await models.lidar.encode(await a.loadPoints())).features);
  const head = await models.head!.detect(features);
  maps.push({ features, confidence: Float32Array.from(featureConfidenceMap(head.clsLogits, new Float32Array(plane))), pose: a.lidarToWorld });
}
const [ego, ...others] = maps;
const egoCoded = encodeFeatures(ego.features, H, W, C, parseCodecSpec('int8'), {});
const coded = others.map((m) => encodeFeatures(m.features, H, W, C, parseCodecSpec('int8+top10%+deflate'), { confidence: m.confidence }));
const toEgo = others.map((m) => multiply(invertRigid(ego.pose), m.pose));
const egoMap = { features: new Float32Array(C * plane), mask: new Uint8Array(plane) };
const decoded = others.map(() => ({ features: new Float32Array(C * plane), mask: new Uint8Array(plane) }));
const buffers = () => others.map(() => ({ features: new Float32Array(C * plane), mask: new Float32Array(plane) }));
const [oldWarp, newWarp] = [buffers(), buffers()];
const sentPlane = new Float32Array(plane), sentWarped = new Float32Array(plane);
const [fusedOld, fusedNew] = [new Float32Array(C * plane), new Float32Array(C * plane)];
const [attentionTs, attentionOnnx] = [new Float32Array(C * plane), new Float32Array(C * plane)];
const samples = new Samples();
const timed = <T>(name: string, fn: () => T): T => {
  const t = performance.now();
  const r = fn();
  samples.add(name, performance.now() - t);
  return r;
};
const runs = Number(values.runs);
for (let run = 0; run < runs; run++) {
  timed('encode (ego int8, what its agent sends)', () => encodeFeatures(ego.features, H, W, C, parseCodecSpec('int8'), {}));
  timed('decode (ego int8 + 3 × top 10 %)', () => {
    decodeFeatures(egoCoded.payload, egoCoded.header, { out: egoMap.features, mask: egoMap.mask });
    coded.forEach((c, k) => decodeFeatures(c.payload, c.header, { out: decoded[k].features, mask: decoded[k].mask }));
  });
  timed('warp, every cell + sent mask warped apart', () => decoded.forEach((d, k) => {
    const w = warpToEgo(d.features, toEgo[k], models.grid, oldWarp[k].features, oldWarp[k].mask);
    for (let i = 0; i < plane; i++) sentPlane[i] = d.mask[i];
    warpToEgo(sentPlane, toEgo[k], models.grid, sentWarped, undefined);
    for (let i = 0; i < plane; i++) if (sentWarped[i] < 0.5) w.mask[i] = 0;
  }));
  timed('warp, covered cells only (sent mask)', () => decoded.forEach((d, k) => warpToEgo(d.features, toEgo[k], models.grid, newWarp[k].features, newWarp[k].mask, d.mask)));
  timed('max fusion', () => maxFuse([egoMap.features, ...newWarp.map((w) => w.features)], [null, ...newWarp.map((w) => w.mask)], fusedNew));
  maxFuse([egoMap.features, ...oldWarp.map((w) => w.features)], [null, ...oldWarp.map((w) => w.mask)], fusedOld);
  if (run === 0) {
    const maskDiff = oldWarp.reduce((n, w, k) => n + w.mask.reduce((m, v, i) => m + (v !== newWarp[k].mask[i] ? 1 : 0), 0), 0);
    const fusedDiff = fusedOld.reduce((n, v, i) => n + (v !== fusedNew[i] ? 1 : 0), 0);
    const covered = newWarp.map((w) => w.mask.reduce((a, b) => a + b, 0));
    console.log(`covered cells per collaborator ${covered.join(', ')} of ${plane}; masks differing ${maskDiff}, fused values differing ${fusedDiff}`);
  }
  const aligned = [egoMap.features, ...newWarp.map((w) => w.features)];
  const masks = [null, ...newWarp.map((w) => w.mask)];
  timed('attention fusion, covered cells (TypeScript)', () => attentionFuse(aligned, masks, attentionTs));
  if (models.attention) {
    const t = performance.now();
    const onnx = await models.attention.fuse(aligned, masks, attentionOnnx);
    samples.add('attention fusion, every cell (ONNX model)', performance.now() - t);
    if (run === 0) console.log(`attention: max |TypeScript − ONNX| ${attentionTs.reduce((m, v, i) => Math.max(m, Math.abs(v - onnx.fused[i])), 0).toExponential(1)}`);
  }
  const t = performance.now();
  await models.head!.detect(fusedNew);
  samples.add('head', performance.now() - t);
}
for (const [name, s] of Object.entries(samples.stats())) console.log(`${name.padEnd(44)} p50 ${s.p50.toFixed(2)} ms`);
await models.dispose();
