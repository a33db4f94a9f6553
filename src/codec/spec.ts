// Codec specs: the strings a user types to choose how features (or points) travel, e.g. `int8+top10%+deflate`.
//
// Feature spec grammar (case-insensitive, stages joined by '+', at most one stage of each kind):
//   quantisation   raw | fp16 | int8 | int4          (none given = raw float32)
//   selection      top<count> | top<percent>% | thr<confidence>
//   reduction      c<ratio>                           (learned channel reduction, e.g. c4, c16, c64)
//   entropy        deflate[1-9] | brotli[0-11]        (level / quality; defaults below)
// The stages always run in one order, whatever order they are typed in: select cells → reduce channels →
// quantise → entropy-code. The entropy stage must be typed last, because it is last: it compresses the packed
// bytes, and `deflate+int8` reads as if it did not. The canonical form (formatCodecSpec) writes reduction,
// quantisation, selection, entropy, as the issue's examples do: `c16+int4`, `int8+top10%+deflate`.
//
// Point-cloud spec grammar: <step>(mm|cm|m) [+ deflate[1-9] | + brotli[0-11]], e.g. `1cm+deflate`.
import { CodecError } from './errors.ts';

export type QuantizationName = 'raw' | 'fp16' | 'int8' | 'int4';

export type CellSelection =
  /** Cells whose confidence is strictly above `threshold` (Where2comm's `communication_maps > thre`). */
  | { kind: 'threshold'; threshold: number }
  /** The `count` most confident cells. */
  | { kind: 'topCount'; count: number }
  /** The ceil(percent / 100 · H · W) most confident cells. */
  | { kind: 'topPercent'; percent: number };

export type EntropyCoderName = 'deflate' | 'brotli';

export interface EntropyStage {
  coder: EntropyCoderName;
  /** deflate level 1..9, brotli quality 0..11. */
  level: number;
}

export interface FeatureCodecSpec {
  quantization: QuantizationName;
  selection?: CellSelection;
  /**
   * Learned channel reduction by this factor (C → C / ratio). The codec does not run the model: the caller reduces
   * the map first (perception's ChannelReducer) and encodes the [C / ratio, H, W] result with this same spec.
   */
  channelReduction?: { ratio: number };
  entropy?: EntropyStage;
}

export interface PointCodecSpec {
  /** Quantisation step of x, y and z, metres. */
  stepM: number;
  entropy?: EntropyStage;
}

/** zlib's own default level. On a dense 64×128×128 int8 map: 221 kB in ~40 ms, where level 9 gives 206 kB in ~600 ms. */
export const DEFAULT_DEFLATE_LEVEL = 6;
/**
 * Brotli quality 5. On a dense 64×128×128 int8 map: 207 kB in ~30 ms, where quality 9 gives 198 kB in ~90 ms;
 * 10 and 11 take seconds per megabyte, far too slow for 10 Hz messages.
 */
export const DEFAULT_BROTLI_QUALITY = 5;

const LEVEL_RANGE: Record<EntropyCoderName, [min: number, max: number, fallback: number]> = {
  deflate: [1, 9, DEFAULT_DEFLATE_LEVEL],
  brotli: [0, 11, DEFAULT_BROTLI_QUALITY],
};

const FEATURE_STAGES = 'raw, fp16, int8, int4, top<count>, top<percent>%, thr<confidence>, c<ratio>, deflate[1-9], brotli[0-11]';
const POINT_STAGES = '<step>mm, <step>cm, <step>m, deflate[1-9], brotli[0-11]';

// Decimal numbers as people type them: 10, 0.5, .5. No signs or exponents: a spec is not a calculator.
const NUMBER = String.raw`(\d+(?:\.\d+)?|\.\d+)`;
const QUANTIZATIONS: readonly QuantizationName[] = ['raw', 'fp16', 'int8', 'int4'];
const TOP_PERCENT = new RegExp(`^top${NUMBER}%$`);
const TOP_COUNT = /^top(\d+)$/;
const THRESHOLD = new RegExp(`^thr${NUMBER}$`);
const REDUCTION = /^c(\d+)$/;
const ENTROPY = /^(deflate|brotli)(\d+)?$/;
const STEP = new RegExp(`^${NUMBER}(mm|cm|m)$`);

function specError(message: string): CodecError {
  return new CodecError('spec', message);
}

function splitStages(text: string, what: string): string[] {
  const trimmed = text.trim();
  if (trimmed === '') throw specError(`empty ${what} spec: expected stages joined by '+', e.g. ${what === 'codec' ? 'int8+top10%+deflate' : '1cm+deflate'}`);
  const stages = trimmed.toLowerCase().split('+').map((s) => s.trim());
  if (stages.some((s) => s === '')) throw specError(`empty stage in '${text}': stages are joined by single '+'`);
  return stages;
}

function parseEntropy(stage: string, text: string): EntropyStage | undefined {
  const m = ENTROPY.exec(stage);
  if (!m) return undefined;
  const coder = m[1] as EntropyCoderName;
  const [min, max, fallback] = LEVEL_RANGE[coder];
  const level = m[2] === undefined ? fallback : Number(m[2]);
  if (level < min || level > max) {
    throw specError(`${coder} level ${m[2]} in '${text}' is out of range: expected ${coder}${min} .. ${coder}${max} (or ${coder} for ${fallback})`);
  }
  return { coder, level };
}

type StageKind = 'quantisation' | 'selection' | 'channel reduction' | 'entropy';

function once(seen: Map<StageKind, string>, kind: StageKind, stage: string, text: string): void {
  const earlier = seen.get(kind);
  if (earlier !== undefined) {
    throw specError(`two ${kind} stages in '${text}' ('${earlier}' and '${stage}'): at most one of each kind`);
  }
  seen.set(kind, stage);
}

function entropyMustBeLast(stages: string[], index: number, text: string): void {
  if (index !== stages.length - 1) {
    throw specError(`'${stages[index]}' must be the last stage in '${text}': the entropy coder compresses the packed bytes, after every other stage`);
  }
}

/** Parses a feature codec spec; throws CodecError (kind 'spec') naming the stage that is wrong. */
export function parseCodecSpec(text: string): FeatureCodecSpec {
  const stages = splitStages(text, 'codec');
  const seen = new Map<StageKind, string>();
  const spec: FeatureCodecSpec = { quantization: 'raw' };
  stages.forEach((stage, index) => {
    if ((QUANTIZATIONS as readonly string[]).includes(stage)) {
      once(seen, 'quantisation', stage, text);
      spec.quantization = stage as QuantizationName;
      return;
    }
    let m = TOP_PERCENT.exec(stage);
    if (m) {
      once(seen, 'selection', stage, text);
      const percent = Number(m[1]);
      if (!(percent > 0 && percent <= 100)) throw specError(`'${stage}' in '${text}': the percentage must be in (0, 100]`);
      spec.selection = { kind: 'topPercent', percent };
      return;
    }
    m = TOP_COUNT.exec(stage);
    if (m) {
      once(seen, 'selection', stage, text);
      const count = Number(m[1]);
      if (!(count >= 1 && Number.isSafeInteger(count))) throw specError(`'${stage}' in '${text}': the cell count must be a whole number ≥ 1`);
      spec.selection = { kind: 'topCount', count };
      return;
    }
    m = THRESHOLD.exec(stage);
    if (m) {
      once(seen, 'selection', stage, text);
      const threshold = Number(m[1]);
      if (!(threshold >= 0 && threshold < 1)) {
        throw specError(`'${stage}' in '${text}': the threshold is a confidence in [0, 1) (cells strictly above it are sent)`);
      }
      spec.selection = { kind: 'threshold', threshold };
      return;
    }
    m = REDUCTION.exec(stage);
    if (m) {
      once(seen, 'channel reduction', stage, text);
      const ratio = Number(m[1]);
      if (!(ratio >= 2 && Number.isSafeInteger(ratio))) throw specError(`'${stage}' in '${text}': the channel-reduction ratio must be a whole number ≥ 2 (e.g. c4, c16, c64)`);
      spec.channelReduction = { ratio };
      return;
    }
    const entropy = parseEntropy(stage, text);
    if (entropy) {
      once(seen, 'entropy', stage, text);
      entropyMustBeLast(stages, index, text);
      spec.entropy = entropy;
      return;
    }
    throw specError(`unknown stage '${stage}' in '${text}': expected one of ${FEATURE_STAGES}${hint(stage)}`);
  });
  return spec;
}

// A nudge for the near misses people actually type.
function hint(stage: string): string {
  if (stage === 'top' || stage === 'thr') return ` ('${stage}' needs a number, e.g. top10%, top500, thr0.3)`;
  if (/^(fp|float)32$|^f32$|^none$/.test(stage)) return ` (float32 is 'raw')`;
  if (/^(gzip|zlib)$/.test(stage)) return ` (zlib's format is 'deflate')`;
  if (/^zstd/.test(stage)) return ` (zstd is not in Node 20's zlib)`;
  return '';
}

function formatNumber(x: number): string {
  // Shortest text that parses back to the same double; never exponent notation for the ranges we accept.
  const s = String(x);
  return s.includes('e') ? x.toFixed(12).replace(/0+$/, '').replace(/\.$/, '') : s;
}

function formatEntropy(e: EntropyStage): string {
  return e.level === LEVEL_RANGE[e.coder][2] ? e.coder : `${e.coder}${e.level}`;
}

/** The canonical text of a spec: parseCodecSpec(formatCodecSpec(s)) deep-equals s, and equal specs format alike. */
export function formatCodecSpec(spec: FeatureCodecSpec): string {
  const parts: string[] = [];
  if (spec.channelReduction) parts.push(`c${spec.channelReduction.ratio}`);
  if (spec.quantization !== 'raw') parts.push(spec.quantization);
  const s = spec.selection;
  if (s?.kind === 'topPercent') parts.push(`top${formatNumber(s.percent)}%`);
  else if (s?.kind === 'topCount') parts.push(`top${s.count}`);
  else if (s?.kind === 'threshold') parts.push(`thr${formatNumber(s.threshold)}`);
  if (spec.entropy) parts.push(formatEntropy(spec.entropy));
  // Plain float32 with nothing else is 'raw'; elsewhere float32 is implied by the absence of a quantisation stage.
  return parts.length === 0 ? 'raw' : parts.join('+');
}

/** Parses and re-formats: the canonical form of what the user typed. */
export function canonicalCodecSpec(text: string): string {
  return formatCodecSpec(parseCodecSpec(text));
}

export interface CodecCapabilities {
  /** Channel-reduction ratios the model manifest has an encoder/decoder pair for (perception's channelReductionRatios). */
  channelReductionRatios?: readonly number[];
}

/**
 * Throws CodecError (kind 'unavailable') when the spec needs something this installation lacks: a `c<ratio>`
 * stage passes only when `capabilities.channelReductionRatios` includes the ratio, i.e. when the model manifest
 * the caller loaded has that encoder/decoder pair. The codec stays pure: it is told, it does not look.
 */
export function assertCodecAvailable(spec: FeatureCodecSpec, capabilities: CodecCapabilities = {}): void {
  const ratio = spec.channelReduction?.ratio;
  if (ratio === undefined) return;
  const ratios = capabilities.channelReductionRatios ?? [];
  if (!ratios.includes(ratio)) {
    const detail = ratios.length === 0 ? 'no channel-reduction model in the manifest' : `the manifest has channel-reduction models for ${ratios.map((r) => `c${r}`).join(', ')} only`;
    throw new CodecError('unavailable', `codec '${formatCodecSpec(spec)}': c${ratio} not available: ${detail}`);
  }
}

/** Parses a point-cloud codec spec such as `1cm+deflate`; throws CodecError (kind 'spec'). */
export function parsePointCodecSpec(text: string): PointCodecSpec {
  const stages = splitStages(text, 'point codec');
  const seen = new Map<StageKind, string>();
  let stepM: number | undefined;
  let entropy: EntropyStage | undefined;
  stages.forEach((stage, index) => {
    const m = STEP.exec(stage);
    if (m) {
      once(seen, 'quantisation', stage, text);
      const unit = m[2] === 'mm' ? 1e-3 : m[2] === 'cm' ? 1e-2 : 1;
      stepM = Number(m[1]) * unit;
      if (!(stepM >= 1e-4 && stepM <= 1)) throw specError(`'${stage}' in '${text}': the step must be between 0.1mm and 1m`);
      return;
    }
    const e = parseEntropy(stage, text);
    if (e) {
      once(seen, 'entropy', stage, text);
      entropyMustBeLast(stages, index, text);
      entropy = e;
      return;
    }
    throw specError(`unknown stage '${stage}' in '${text}': expected one of ${POINT_STAGES}`);
  });
  if (stepM === undefined) throw specError(`'${text}' has no quantisation step: start with one, e.g. 1cm+deflate`);
  return entropy ? { stepM, entropy } : { stepM };
}

/** Canonical text of a point codec spec: the step in mm below 1 cm, in cm from 1 cm up. */
export function formatPointCodecSpec(spec: PointCodecSpec): string {
  // Rounding to 1e-9 removes the binary noise of the unit conversion (0.015 m → 1.5cm, not 1.4999999999999998cm).
  const step = spec.stepM < 0.01 ? `${formatNumber(Math.round(spec.stepM * 1e3 * 1e9) / 1e9)}mm` : `${formatNumber(Math.round(spec.stepM * 1e2 * 1e9) / 1e9)}cm`;
  return spec.entropy ? `${step}+${formatEntropy(spec.entropy)}` : step;
}
