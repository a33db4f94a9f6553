// The fusion stage's public face: aligning collaborators' BEV features with the ego grid, max fusion, and one
// cooperative detection step (encode, align, fuse, head). Attention fusion runs the fusion_attention.onnx model
// (FusionAttention in the perception stage). Late fusion (object lists, NMS) and early fusion (merged points).
export { type WarpResult, FusionInputError, maxFuse, warpToEgo } from './warp.ts';
export {
  type CooperativeDetection,
  type CooperativeDetectorOptions,
  type FusionMode,
  CooperativeDetector,
  FusionConfigError,
} from './cooperative-detector.ts';
export { type SequenceRun, evaluateSequence, gridEvalRange } from './evaluate.ts';
export {
  type BevRange,
  type DetectionsToObjectsOptions,
  type FuseLateOptions,
  type PerceivedObjectInit,
  type PositionConfidence,
  MEASURED_POSITION_CONFIDENCE,
  detectionsToObjects,
  fuseLate,
  objectsToDetections,
} from './late.ts';
export { type SenderPoints, DEFAULT_POINT_CODEC, MERGED_POINT_STRIDE, MergedCloudEncoder, mergePointClouds, mergedLength } from './early.ts';
