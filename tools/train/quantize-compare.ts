// Float32 against int8 (tools/train/quantize.py) lidar_backbone and detection_head, interleaved in one process on the
// same frames: latency per model run, and how far the int8 outputs are from the float ones.
//
//   npx tsx tools/train/quantize-compare.ts /tmp/v2x/test/intersection-s102 [--frames 20] [--threads 1] [--models M]
//
// Each frame's agents (or only the ego, the lowest id, with --agents ego) are LiDAR-encoded by both encoders (same PFN, same canvas; the order alternates per frame so
// neither always runs on a warm cache), and both heads run on the float features. Prints one JSON object.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { openDataset } from '../../src/datasets/index.ts';
import { DetectionHead, LidarEncoder, loadManifest, withPrecision } from '../../src/perception/index.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    frames: { type: 'string', default: '20' },
    threads: { type: 'string', default: '1' },
    models: { type: 'string', default: 'models/manifest.json' },
    agents: { type: 'string', default: 'all' },
  },
});
if (positionals.length !== 1) throw new Error('usage: quantize-compare.ts SEQUENCE [--frames N] [--threads T] [--models M] [--agents all|ego]');
const threads = Number(values.threads);
const floatManifest = await loadManifest(values.models);
const int8Manifest = withPrecision(floatManifest, 'int8');

const encoders = {
  float32: await LidarEncoder.load(floatManifest, { threads }),
  int8: await LidarEncoder.load(int8Manifest, { threads }),
};
const heads = {
  float32: await DetectionHead.load(floatManifest, { threads }),
  int8: await DetectionHead.load(int8Manifest, { threads }),
};
type P = keyof typeof encoders;

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

interface Diff { maxAbs: number; maxAbsOverMaxFloat: number; meanAbsOverMeanFloat: number }
function diff(a: Float32Array, b: Float32Array): Diff {
  let maxAbs = 0, maxRef = 0, sumAbs = 0, sumRef = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (d > maxAbs) maxAbs = d;
    const r = Math.abs(a[i]);
    if (r > maxRef) maxRef = r;
    sumAbs += d;
    sumRef += r;
  }
  return { maxAbs, maxAbsOverMaxFloat: maxAbs / maxRef, meanAbsOverMeanFloat: sumAbs / sumRef };
}

const seq = (await openDataset(positionals[0])).scenarios[0];
const frames = Math.min(Number(values.frames), seq.frameCount ?? Number(values.frames));
const backboneMs: Record<P, number[]> = { float32: [], int8: [] };
const headMs: Record<P, number[]> = { float32: [], int8: [] };
const featureDiffs: Diff[] = [];
const logitDiffs: Diff[] = [];
const boxDiffs: Diff[] = [];
let detectionsFloat = 0, detectionsInt8 = 0, matched = 0;
let run = 0;
const t0 = performance.now();
for (let f = 0; f < frames; f++) {
  const frame = await seq.frame(f);
  const agents = values.agents === 'ego' ? [...frame.agents].sort((a, b) => a.agentId.localeCompare(b.agentId, 'en', { numeric: true })).slice(0, 1) : frame.agents;
  for (const agent of agents) {
    const points = await agent.loadPoints();
    const order: P[] = run++ % 2 === 0 ? ['float32', 'int8'] : ['int8', 'float32'];
    const features: Partial<Record<P, Float32Array>> = {};
    for (const p of order) {
      const r = await encoders[p].encode(points);
      backboneMs[p].push(r.timings.backbone ?? Number.NaN);
      features[p] = Float32Array.from(r.features);
    }
    featureDiffs.push(diff(features.float32!, features.int8!));
    const outs: Partial<Record<P, { cls: Float32Array; box: Float32Array; boxes: { x: number; y: number; cls: string | undefined }[] }>> = {};
    for (const p of order) {
      const r = await heads[p].detect(features.float32!);
      headMs[p].push(r.timings.head ?? Number.NaN);
      outs[p] = { cls: Float32Array.from(r.clsLogits), box: Float32Array.from(r.boxDeltas), boxes: r.detections.map((d) => ({ x: d.box.x, y: d.box.y, cls: d.cls })) };
    }
    logitDiffs.push(diff(outs.float32!.cls, outs.int8!.cls));
    boxDiffs.push(diff(outs.float32!.box, outs.int8!.box));
    detectionsFloat += outs.float32!.boxes.length;
    detectionsInt8 += outs.int8!.boxes.length;
    for (const a of outs.float32!.boxes) {
      if (outs.int8!.boxes.some((b) => b.cls === a.cls && Math.hypot(a.x - b.x, a.y - b.y) < 0.5)) matched++;
    }
  }
}
const worst = (d: Diff[], k: keyof Diff): number => Math.max(...d.map((x) => x[k]));
const meanOf = (d: Diff[], k: keyof Diff): number => d.reduce((s, x) => s + x[k], 0) / d.length;
const summary = (d: Diff[]) => ({
  maxAbs: worst(d, 'maxAbs'),
  maxAbsOverMaxFloat: worst(d, 'maxAbsOverMaxFloat'),
  meanAbsOverMeanFloat: meanOf(d, 'meanAbsOverMeanFloat'),
});
console.log(JSON.stringify({
  sequence: path.basename(positionals[0]),
  runs: backboneMs.float32.length,
  threads,
  backboneMs: { float32: median(backboneMs.float32), int8: median(backboneMs.int8), speedup: median(backboneMs.float32) / median(backboneMs.int8) },
  headMs: { float32: median(headMs.float32), int8: median(headMs.int8), speedup: median(headMs.float32) / median(headMs.int8) },
  backboneFeatures: summary(featureDiffs),
  headOnFloatFeatures: { clsLogits: summary(logitDiffs), boxDeltas: summary(boxDiffs) },
  detections: { float32: detectionsFloat, int8: detectionsInt8, floatMatchedWithin50cm: matched },
  wallS: (performance.now() - t0) / 1000,
}, null, 2));
for (const e of Object.values(encoders)) await e.dispose();
for (const h of Object.values(heads)) await h.dispose();
