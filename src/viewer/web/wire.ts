// The page's side of the wire schema: the same generated module the Node side uses (src/messages/generated). The
// page imports it directly, not through src/messages/index.ts, because that face also carries signing and the
// message gate, which need Node's crypto and zlib.
import './long-setup.ts';
import { v2xfuse } from '../../messages/generated/v2xfuse.js';

export const wire = v2xfuse.v1;
export type FusionResult = v2xfuse.v1.FusionResult;
export type AgentStatus = v2xfuse.v1.AgentStatus;
export type FeatureFrame = v2xfuse.v1.FeatureFrame;
export type ObjectList = v2xfuse.v1.ObjectList;
export type PointCloudFrame = v2xfuse.v1.PointCloudFrame;
export type ConfidenceMap = v2xfuse.v1.IConfidenceMap;
export type Pose = v2xfuse.v1.IPose;

type WireInt64 = number | { low: number; high: number } | null | undefined;

/** A fixed64 / uint64 field (a Long here, as in Node) as bigint; 0 when absent. */
export function nsOf(value: WireInt64): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'number') return BigInt(Math.round(value));
  return (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
}

export const FUSION_MODE_NAMES: Record<number, string> = {
  0: 'unspecified', 1: 'none', 2: 'early', 3: 'late', 4: 'intermediate', 5: 'hybrid',
};
export const CLASS_NAMES: Record<number, string> = { 0: 'unknown', 1: 'vehicle', 2: 'pedestrian', 3: 'cyclist', 4: 'other' };
export const STATE_NAMES: Record<number, string> = { 0: 'unspecified', 1: 'starting', 2: 'running', 3: 'stopping', 4: 'offline', 5: 'failed' };
