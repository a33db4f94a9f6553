// Learned channel reduction, the codec stage `c<ratio>` (Where2comm / OpenCOOD's compression): the sender maps its
// BEV features [C, H, W] to [C/ratio, H, W] with a 1×1 conv (channel_encoder_c<ratio>.onnx) before quantisation, and
// the receiver maps the decoded map back to [C, H, W] (channel_decoder_c<ratio>.onnx) before warping and fusion.
// Both were trained against the frozen detector (tools/train/train_compressor.py), so they belong to one modelId.
//
// The codec itself stays pure and never loads a model: a caller reduces here, encodes the reduced map with the same
// spec (`c16+int8+deflate`: FeatureEncoding.channels is then C/ratio), and tells the codec which ratios it can do
// through CodecCapabilities.channelReductionRatios (channelReductionRatios(manifest)).

import { performance } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { featureShape, type BevGrid } from './grid.ts';
import { type ChannelReductionEntry, type PerceptionManifest } from './manifest.ts';
import {
  createSession,
  expectShape,
  ModelFileError,
  PerceptionInputError,
  type ExecutionProviderName,
  type ModelSession,
  type SessionLoadOptions,
  type StageTimings,
} from './runtime.ts';

export interface ReducedFeatures {
  /** [C/ratio, H, W]: `out` when given, else the reducer's own buffer, overwritten by the next reduce(). */
  reduced: Float32Array;
  timings: StageTimings;
}

export interface ExpandedFeatures {
  /** [C, H, W]: `out` when given, else the reducer's own buffer, overwritten by the next expand(). */
  features: Float32Array;
  timings: StageTimings;
}

/** One ratio's encoder/decoder pair, loaded on one device. */
export class ChannelReducer {
  readonly ratio: number;
  /** C, the backbone's channels. */
  readonly channels: number;
  /** C / ratio: what travels. */
  readonly reducedChannels: number;
  readonly height: number;
  readonly width: number;
  readonly provider: ExecutionProviderName;
  private readonly reducedBuffer: Float32Array;
  private readonly reducedTensor: ort.Tensor;
  private readonly expandedBuffer: Float32Array;
  private readonly expandedTensor: ort.Tensor;

  constructor(grid: BevGrid, ratio: number, readonly encoder: ModelSession, readonly decoder: ModelSession) {
    const [C, H, W] = featureShape(grid);
    if (!(Number.isInteger(ratio) && ratio >= 2 && C % ratio === 0)) {
      throw new PerceptionInputError('ratio', ratio, `must be a whole number ≥ 2 that divides the ${C} channels`);
    }
    const K = C / ratio;
    expectShape(encoder, 'bev_features', 'input', [1, C, H, W]);
    expectShape(encoder, 'reduced', 'output', [1, K, H, W]);
    expectShape(decoder, 'reduced', 'input', [1, K, H, W]);
    expectShape(decoder, 'bev_features', 'output', [1, C, H, W]);
    this.ratio = ratio;
    this.channels = C;
    this.reducedChannels = K;
    this.height = H;
    this.width = W;
    this.provider = encoder.provider;
    this.reducedBuffer = new Float32Array(K * H * W);
    this.reducedTensor = new ort.Tensor('float32', this.reducedBuffer, [1, K, H, W]);
    this.expandedBuffer = new Float32Array(C * H * W);
    this.expandedTensor = new ort.Tensor('float32', this.expandedBuffer, [1, C, H, W]);
  }

  /** Loads the pair the manifest lists for `ratio` (models.channel_reduction), checking both files' sha256. */
  static async load(manifest: PerceptionManifest, ratio: number, opts: Omit<SessionLoadOptions, 'sha256'> = {}): Promise<ChannelReducer> {
    const entry = channelReductionEntry(manifest, ratio);
    const encoder = await createSession(entry.encoder.path, { ...opts, sha256: entry.encoder.sha256 });
    try {
      // The encoder settles the device: no second CUDA attempt (or notice) for the decoder.
      const decoder = await createSession(entry.decoder.path, { ...opts, device: encoder.provider, sha256: entry.decoder.sha256 });
      try {
        return new ChannelReducer(manifest.grid, ratio, encoder, decoder);
      } catch (err) {
        await decoder.session.release();
        throw err;
      }
    } catch (err) {
      await encoder.session.release();
      throw err;
    }
  }

  /** Sender side: [C, H, W] → [C/ratio, H, W]. */
  async reduce(features: Float32Array, out?: Float32Array): Promise<ReducedFeatures> {
    const { channels: C, reducedChannels: K, height: H, width: W } = this;
    if (features.length !== C * H * W) throw new PerceptionInputError('features.length', features.length, `must be C × H × W = ${C} × ${H} × ${W}`);
    if (out && out.length !== K * H * W) throw new PerceptionInputError('out.length', out.length, `must be C/ratio × H × W = ${K} × ${H} × ${W}`);
    const t = performance.now();
    const fetch = out ? new ort.Tensor('float32', out, [1, K, H, W]) : this.reducedTensor;
    await this.encoder.session.run({ bev_features: new ort.Tensor('float32', features, [1, C, H, W]) }, { reduced: fetch });
    return { reduced: out ?? this.reducedBuffer, timings: { reduce: performance.now() - t } };
  }

  /** Receiver side: [C/ratio, H, W] → [C, H, W] (non-negative, like the backbone's output). */
  async expand(reduced: Float32Array, out?: Float32Array): Promise<ExpandedFeatures> {
    const { channels: C, reducedChannels: K, height: H, width: W } = this;
    if (reduced.length !== K * H * W) throw new PerceptionInputError('reduced.length', reduced.length, `must be C/ratio × H × W = ${K} × ${H} × ${W}`);
    if (out && out.length !== C * H * W) throw new PerceptionInputError('out.length', out.length, `must be C × H × W = ${C} × ${H} × ${W}`);
    const t = performance.now();
    const fetch = out ? new ort.Tensor('float32', out, [1, C, H, W]) : this.expandedTensor;
    await this.decoder.session.run({ reduced: new ort.Tensor('float32', reduced, [1, K, H, W]) }, { bev_features: fetch });
    return { features: out ?? this.expandedBuffer, timings: { expand: performance.now() - t } };
  }

  async dispose(): Promise<void> {
    await Promise.all([this.encoder.session.release(), this.decoder.session.release()]);
  }
}

/** The manifest's pair for `ratio`, or a ModelFileError naming the ratios it does have. */
export function channelReductionEntry(manifest: PerceptionManifest, ratio: number): ChannelReductionEntry {
  const entry = manifest.channelReduction.find((e) => e.ratio === ratio);
  if (entry) return entry;
  const have = manifest.channelReduction.map((e) => `c${e.ratio}`);
  throw new ModelFileError(
    manifest.source,
    `no channel-reduction pair for c${ratio} (models.channel_reduction${have.length ? ` has ${have.join(', ')}` : ' is empty'})`,
  );
}
