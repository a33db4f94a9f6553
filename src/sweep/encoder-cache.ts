// Reusing encoder outputs across the configurations of a sweep. Codec, fusion mode, pose noise, latency and loss
// all act after the LiDAR encoder, so every configuration over the same frames encodes the same clouds into the
// same BEV maps: the sweep encodes each agent-frame once and hands the stored map to every later configuration.
//
// CooperativeDetector calls models.lidar.encode(points, { out }) with the array loadPoints() returned; the sweep
// gives it a sequence whose loadPoints() returns the same array for the same agent-frame every time, and models
// whose LiDAR encoder looks that array up before running ONNX. Nothing in the detector changes.
import type { AgentFrame, CooperativeFrame, CooperativeSequence } from '../datasets/index.ts';
import type { LidarEncoder, PerceptionModels } from '../perception/index.ts';

type Encoding = Awaited<ReturnType<LidarEncoder['encode']>>;

export interface EncoderCacheStats {
  /** Encodes that ran ONNX. */
  encoded: number;
  /** Encodes answered from the store. */
  reused: number;
}

/**
 * A sequence whose frames (metadata and point clouds) are read once: frame(i) and each agent's loadPoints()
 * answer the same objects on every call, which is what the encoder store is keyed by.
 */
export function memoizedSequence(seq: CooperativeSequence): CooperativeSequence {
  const frames = new Map<number, Promise<CooperativeFrame>>();
  const load = async (i: number): Promise<CooperativeFrame> => {
    const f = await seq.frame(i);
    const agents: AgentFrame[] = f.agents.map((a) => {
      let points: Promise<Float32Array> | undefined;
      return { ...a, loadPoints: () => (points ??= a.loadPoints()) };
    });
    return { ...f, agents };
  };
  const memo: CooperativeSequence = {
    format: seq.format,
    name: seq.name,
    root: seq.root,
    agents: seq.agents,
    frameCount: seq.frameCount,
    frameIds: seq.frameIds,
    frame(i: number) {
      let f = frames.get(i);
      if (!f) {
        f = load(i);
        frames.set(i, f);
      }
      return f;
    },
    async *frames() {
      for (let i = 0; i < seq.frameCount; i++) yield await memo.frame(i);
    },
  };
  return memo;
}

/**
 * `models` with a LiDAR encoder that stores each map it computes, keyed by the points array, and copies it into
 * the caller's buffer when the same array comes again. The stored timings are those of the encode that ran, so
 * that per-stage latency stays the cost of encoding, not of a copy. Everything else (head, attention, the
 * manifest) is `models` itself.
 */
export function withEncoderCache(models: PerceptionModels): { models: PerceptionModels; stats: EncoderCacheStats } {
  const stats: EncoderCacheStats = { encoded: 0, reused: 0 };
  const store = new WeakMap<Float32Array, Encoding>();
  const lidar = models.lidar;
  const cachedLidar: LidarEncoder = Object.create(lidar);
  cachedLidar.encode = async (points, opts = {}) => {
    const hit = opts.count === undefined ? store.get(points) : undefined;
    if (hit) {
      stats.reused++;
      const out = opts.out ?? new Float32Array(hit.features.length);
      out.set(hit.features);
      return { ...hit, features: out, timings: { ...hit.timings } };
    }
    const r = await lidar.encode(points, opts);
    stats.encoded++;
    if (opts.count === undefined) store.set(points, { ...r, features: r.features.slice(), pillars: { ...r.pillars }, timings: { ...r.timings } });
    return r;
  };
  // Inherits the manifest, head, attention and getters from `models`; only `lidar` answers differently.
  const cached: PerceptionModels = Object.create(models, { lidar: { value: cachedLidar, enumerable: true } });
  return { models: cached, stats };
}
