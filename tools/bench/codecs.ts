// Each codec's encode and decode speed on real feature maps of the benchmark sequence (the collaborators' maps and
// their own confidence maps), in MB/s of the uncompressed float32 map (4 MB for 64 × 128 × 128), and the bytes it
// sends. c16 includes the learned reduce (agent) and expand (fusion node) in ONNX Runtime. Points: MB/s of the
// xyzi float32 cloud.
import { decodeFeatures, decodePoints, encodeFeatures, encodePoints, parseCodecSpec } from '../../src/codec/index.ts';
import { ChannelReducer, PerceptionModels, channelReductionRatios, featureShape } from '../../src/perception/index.ts';
import { featureConfidenceMap } from '../../src/fusion/index.ts';
import { type BenchOptions, type SectionResult, round, stat } from './common.ts';
import { loadFrames } from './stages.ts';

export const FEATURE_CODECS = ['raw', 'fp16', 'int8+deflate', 'int8+top10%+deflate', 'int4+top5%+brotli', 'c16+int8+deflate'] as const;
export const POINT_CODECS = ['1cm+deflate'] as const;

export async function runCodecs(o: BenchOptions): Promise<SectionResult> {
  const frames = await loadFrames(o);
  const models = await PerceptionModels.load(o.models, { device: o.device, threads: 1, precision: o.precision });
  const [C, H, W] = featureShape(models.grid);
  const capabilities = { channelReductionRatios: channelReductionRatios(models.manifest) };
  const reducer = capabilities.channelReductionRatios.includes(16) ? await ChannelReducer.load(models.manifest, 16, { device: models.provider, threads: 1 }) : undefined;
  const maps: { features: Float32Array; confidence: Float32Array }[] = [];
  const clouds: Float32Array[] = [];
  try {
    const want = o.quick ? 3 : 8;
    for (const f of frames) {
      for (const a of f.agents.slice(1)) {
        if (maps.length >= want) break;
        const enc = await models.lidar.encode(a.points);
        const features = Float32Array.from(enc.features);
        const r = await models.head!.detect(features);
        maps.push({ features, confidence: Float32Array.from(featureConfidenceMap(r.clsLogits, new Float32Array(H * W))) });
        clouds.push(a.points);
      }
    }
    const repeats = o.quick ? 2 : 5;
    const mapMB = (C * H * W * 4) / 1e6;
    const out = new Float32Array(C * H * W);
    const mask = new Uint8Array(H * W);
    const reducedOut = new Float32Array(reducer ? reducer.reducedChannels * H * W : 1);
    const features: Record<string, unknown> = {};
    for (const name of FEATURE_CODECS) {
      if (name.startsWith('c16') && !reducer) {
        features[name] = { skipped: 'the manifest ships no c16 channel reduction' };
        continue;
      }
      const spec = parseCodecSpec(name);
      const enc: number[] = [];
      const dec: number[] = [];
      const bytes: number[] = [];
      for (let r = 0; r < repeats; r++) {
        for (const m of maps) {
          let t = performance.now();
          let map = m.features;
          let channels = C;
          if (reducer && spec.channelReduction) {
            map = (await reducer.reduce(map)).reduced;
            channels = reducer.reducedChannels;
          }
          const coded = encodeFeatures(map, H, W, channels, spec, { ...capabilities, confidence: m.confidence });
          enc.push(performance.now() - t);
          bytes.push(coded.bytes);
          t = performance.now();
          const target = channels === C ? out : reducedOut;
          const d = decodeFeatures(coded.payload, coded.header, { out: target, mask });
          if (reducer && spec.channelReduction) await reducer.expand(d.features, out);
          dec.push(performance.now() - t);
        }
      }
      const e = stat(enc), d = stat(dec);
      features[name] = {
        bytes: Math.round(stat(bytes).p50),
        encodeMs: round(e.p50), decodeMs: round(d.p50),
        encodeMBps: round(mapMB / (e.p50 / 1000), 0), decodeMBps: round(mapMB / (d.p50 / 1000), 0),
      };
      o.log(`codecs: ${name} encode ${e.p50.toFixed(2)} ms, decode ${d.p50.toFixed(2)} ms`);
    }
    const points: Record<string, unknown> = {};
    for (const name of POINT_CODECS) {
      const enc: number[] = [];
      const dec: number[] = [];
      const mb: number[] = [];
      const bytes: number[] = [];
      for (let r = 0; r < repeats; r++) {
        for (const cloud of clouds) {
          let t = performance.now();
          const coded = encodePoints(cloud, name);
          enc.push(performance.now() - t);
          t = performance.now();
          decodePoints(coded.payload, coded.header);
          dec.push(performance.now() - t);
          mb.push(cloud.byteLength / 1e6);
          bytes.push(coded.bytes);
        }
      }
      const e = stat(enc), d = stat(dec), size = stat(mb).p50;
      points[name] = {
        bytes: Math.round(stat(bytes).p50), cloudMB: round(size), encodeMs: round(e.p50), decodeMs: round(d.p50),
        encodeMBps: round(size / (e.p50 / 1000), 0), decodeMBps: round(size / (d.p50 / 1000), 0),
      };
    }
    return {
      maps: maps.length, repeats, mapMB: round(mapMB), features, points,
      notes: ['MB/s of the uncompressed float32 input (features: 64 × 128 × 128; points: xyzi of a scan), medians', 'c16: ONNX reduce before and expand after the codec, one thread'],
    };
  } finally {
    await reducer?.dispose();
    await models.dispose();
  }
}
