// The sweep's configurations: the grid the command line names (fusion × codec × pose noise × latency × loss), or
// the list a sweep definition file names, each reduced to what it changes, and the key a finished one is known by.
import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { parseCodecSpec, parsePointCodecSpec } from '../codec/index.ts';
import { DEFAULT_HYBRID_CODEC, DEFAULT_POINT_CODEC, type FusionMode, type LateMerge, type PoseNoiseStd } from '../fusion/index.ts';

export class SweepDefinitionError extends Error {
  readonly userFacing = true;
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'SweepDefinitionError';
  }
}

/** One point of the grid, as it runs. */
export interface SweepConfiguration {
  fusion: FusionMode;
  /** Feature codec (max, mean, attention, hybrid), point codec (early), null (none, late, or raw features in process). */
  codec: string | null;
  /** late and hybrid only. */
  lateMerge: LateMerge | null;
  poseNoise: PoseNoiseStd | null;
  latencyMs: number;
  loss: number;
}

/** What the whole sweep shares: the frames and the model every configuration is measured on. */
export interface SweepContext {
  dataset: string;
  scenario: string;
  ego: string;
  frames: number;
  fromFrame: number;
  seed: number;
  modelId: string;
}

/** A fusion mode as typed: a mode, 'intermediate' (attention when the models have it, else max), optionally ':wbf' or ':nms'. */
export interface FusionChoice {
  mode: FusionMode | 'intermediate';
  lateMerge: LateMerge | null;
}

const MODES = ['none', 'intermediate', 'max', 'mean', 'attention', 'late', 'early', 'hybrid'] as const;

export function parseFusionChoice(text: string, source = '--fusion'): FusionChoice {
  const [mode, merge, ...rest] = text.trim().split(':');
  if (!(MODES as readonly string[]).includes(mode) || rest.length) {
    throw new SweepDefinitionError(source, `fusion '${text}': expected one of ${MODES.join(', ')}, optionally late:wbf / hybrid:wbf`);
  }
  if (merge !== undefined && !(merge === 'nms' || merge === 'wbf')) throw new SweepDefinitionError(source, `fusion '${text}': merge must be nms or wbf`);
  if (merge !== undefined && mode !== 'late' && mode !== 'hybrid') throw new SweepDefinitionError(source, `fusion '${text}': a merge applies to late and hybrid only`);
  return { mode: mode as FusionChoice['mode'], lateMerge: (merge as LateMerge | undefined) ?? (mode === 'late' || mode === 'hybrid' ? 'nms' : null) };
}

/**
 * Pose noise as typed: 'pos_m/yaw_deg' (or 'pos_m,yaw_deg' in a file: OpenCOOD's std of x/y and of yaw), or one
 * number for both (OpenCOOD's curves use equal values: 0.2 m with 0.2°), or 0.
 */
export function parsePoseNoiseLevel(text: string, source = '--pose-noise'): PoseNoiseStd | null {
  const parts = text.split(/[/,]/).map((s) => (s.trim() === '' ? Number.NaN : Number(s.trim())));
  if (parts.length > 2 || parts.some((v) => !Number.isFinite(v) || v < 0)) throw new SweepDefinitionError(source, `pose noise '${text}': expected pos_m/yaw_deg or one number ≥ 0`);
  const [posM, yawDeg = posM] = parts;
  return posM === 0 && yawDeg === 0 ? null : { posM, yawDeg };
}

/**
 * A grid entry reduced to what changes the result, or a reason it cannot run. Codecs that do not apply to a mode
 * collapse (none and late send no features; early sends points), and an ego-only run has no collaborator to impair.
 */
export function normalizeConfiguration(
  c: { fusion: FusionChoice; codec: string | null; poseNoise: PoseNoiseStd | null; latencyMs: number; loss: number },
  attentionAvailable: boolean,
): SweepConfiguration | { skip: string } {
  const fusion: FusionMode = c.fusion.mode === 'intermediate' ? (attentionAvailable ? 'attention' : 'max') : c.fusion.mode;
  if (fusion === 'attention' && !attentionAvailable) return { skip: 'the models have no fusion_attention' };
  let codec = c.codec === null || c.codec === 'none' || c.codec === '-' ? null : c.codec;
  if (fusion === 'none' || fusion === 'late') codec = null;
  if (fusion === 'early') codec = codec !== null && isPointCodec(codec) ? codec : DEFAULT_POINT_CODEC;
  else if (codec !== null) {
    try {
      parseCodecSpec(codec);
    } catch (err) {
      return { skip: `codec ${codec}: ${(err as Error).message}` };
    }
  }
  if (fusion === 'hybrid') {
    codec ??= DEFAULT_HYBRID_CODEC;
    if (!parseCodecSpec(codec).selection) return { skip: `hybrid needs a codec that selects cells, not ${codec}` };
  }
  const ego = fusion === 'none';
  return {
    fusion,
    codec,
    lateMerge: fusion === 'late' || fusion === 'hybrid' ? (c.fusion.lateMerge ?? 'nms') : null,
    poseNoise: ego ? null : c.poseNoise,
    latencyMs: ego ? 0 : c.latencyMs,
    loss: ego ? 0 : c.loss,
  };
}

function isPointCodec(spec: string): boolean {
  try {
    parsePointCodecSpec(spec);
    return true;
  } catch {
    return false;
  }
}

/** The key a finished configuration is stored under: everything that changes its numbers. */
export function configurationKey(c: SweepConfiguration, ctx: SweepContext): string {
  return JSON.stringify({
    dataset: ctx.dataset, scenario: ctx.scenario, ego: ctx.ego, frames: ctx.frames, fromFrame: ctx.fromFrame, seed: ctx.seed, modelId: ctx.modelId,
    fusion: c.fusion, codec: c.codec, lateMerge: c.lateMerge, poseNoise: c.poseNoise, latencyMs: c.latencyMs, loss: c.loss,
  });
}

/** A short readable name: 'attention int8+top10%+deflate noise 0.2/0.2 lat 100ms loss 0.1'. */
export function configurationLabel(c: SweepConfiguration): string {
  const parts = [c.lateMerge && c.lateMerge !== 'nms' ? `${c.fusion}:${c.lateMerge}` : c.fusion];
  if (c.codec) parts.push(c.codec);
  if (c.poseNoise) parts.push(`noise ${c.poseNoise.posM}/${c.poseNoise.yawDeg}`);
  if (c.latencyMs) parts.push(`lat ${c.latencyMs}ms`);
  if (c.loss) parts.push(`loss ${c.loss}`);
  return parts.join(' ');
}

export interface GridSpec {
  fusion: string[];
  codecs: string[];
  poseNoise?: string[];
  latencyMs?: number[];
  loss?: number[];
}

/** Every combination of the grid, normalised and deduplicated (first occurrence kept), with the skipped ones. */
export function expandGrid(grid: GridSpec, attentionAvailable: boolean, source = 'command line'): { configurations: SweepConfiguration[]; skipped: string[] } {
  const configurations: SweepConfiguration[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  const noises = (grid.poseNoise?.length ? grid.poseNoise : ['0']).map((n) => parsePoseNoiseLevel(n, source));
  const codecs = grid.codecs.length ? grid.codecs : ['none'];
  for (const f of grid.fusion) {
    const fusion = parseFusionChoice(f, source);
    for (const codec of codecs)
      for (const poseNoise of noises)
        for (const latencyMs of grid.latencyMs?.length ? grid.latencyMs : [0])
          for (const loss of grid.loss?.length ? grid.loss : [0]) {
            const c = normalizeConfiguration({ fusion, codec, poseNoise, latencyMs, loss }, attentionAvailable);
            if ('skip' in c) {
              skipped.push(`${f} ${codec}: ${c.skip}`);
              continue;
            }
            const k = JSON.stringify(c);
            if (!seen.has(k)) {
              seen.add(k);
              configurations.push(c);
            }
          }
  }
  return { configurations, skipped };
}

const listOf = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t)]).transform((v) => (Array.isArray(v) ? v : [v]));
const noiseText = z.union([z.string(), z.number()]).transform(String);
const gridSchema = z.object({
  fusion: listOf(z.string()),
  codecs: listOf(z.string()).optional(),
  poseNoise: listOf(noiseText).optional(),
  latencyMs: listOf(z.number().min(0)).optional(),
  loss: listOf(z.number().min(0).max(1)).optional(),
}).strict();

const definitionSchema = z.object({
  dataset: z.string().optional(),
  ego: z.string().optional(),
  frames: z.number().int().min(1).optional(),
  fromFrame: z.number().int().min(0).optional(),
  seed: z.number().int().optional(),
  /** Each entry a small grid of its own; their union is the sweep (e.g. one per row of a table). */
  grids: z.array(gridSchema).min(1),
}).strict();

export type SweepDefinition = z.infer<typeof definitionSchema>;

/** A sweep definition file (YAML): dataset, frames, and one or more grids. */
export function parseSweepDefinition(text: string, source: string): SweepDefinition {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new SweepDefinitionError(source, `not valid YAML: ${(err as Error).message}`);
  }
  const r = definitionSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new SweepDefinitionError(source, `${issue.path.join('.') || '(top level)'}: ${issue.message}`);
  }
  return r.data;
}

/** The union of several grids, deduplicated, in order. */
export function expandGrids(grids: readonly GridSpec[], attentionAvailable: boolean, source: string): { configurations: SweepConfiguration[]; skipped: string[] } {
  const configurations: SweepConfiguration[] = [];
  const skipped: string[] = [];
  const seen = new Set<string>();
  for (const g of grids) {
    const r = expandGrid(g, attentionAvailable, source);
    skipped.push(...r.skipped);
    for (const c of r.configurations) {
      const k = JSON.stringify(c);
      if (!seen.has(k)) {
        seen.add(k);
        configurations.push(c);
      }
    }
  }
  return { configurations, skipped };
}
