// The fusion stage's public face: aligning collaborators' BEV features with the ego grid, max fusion, and one
// cooperative detection step (encode, align, fuse, head). Attention fusion runs the fusion_attention.onnx model
// (FusionAttention in the perception stage). Late fusion (object lists, NMS or weighted box fusion), early fusion
// (merged points), hybrid (top-k features plus objects for the cells not sent), and what robustness needs: pose
// noise, message loss, latency and its compensation, agent selection under a byte budget.
export { type WarpResult, FusionInputError, maxFuse, warpToEgo } from './warp.ts';
export {
  type CooperativeDetection,
  type CooperativeDetectorOptions,
  type FrameLinks,
  type FusionMode,
  type LateMerge,
  CooperativeDetector,
  DEFAULT_HYBRID_CODEC,
  FusionConfigError,
} from './cooperative-detector.ts';
export { meanFuse } from './mean-fusion.ts';
export { attentionFuse } from './attention-fusion.ts';
export { type AgentView, type ConsistencyOptions, type ConsistencyVerdict, type FeatureTest, type LeaveOneOutOptions, DEFAULT_CONSISTENCY, attributeToCollaborator, checkConsistency, filterConsistent } from './consistency.ts';
export { type FeatureView, type OwnMapHead, checkFeatureViews } from './own-map.ts';
export {
  type FootprintCount,
  type FreeSpaceGrid,
  type FreeSpaceMap,
  type FreeSpaceOptions,
  type GhostCheckOptions,
  type WireFreeSpace,
  CELL_FREE,
  CELL_OCCUPIED,
  CELL_UNKNOWN,
  DEFAULT_FREE_SPACE,
  DEFAULT_GHOST_CHECK,
  FreeSpaceBuilder,
  MAX_FREE_SPACE_SIDE,
  contradictsFreeSpace,
  countContradictions,
  estimateGroundZ,
  footprintOnMap,
  freeSpaceFromWire,
  freeSpaceGrid,
  wireFreeSpace,
} from './free-space.ts';
export { type WeightedBoxFusionOptions, weightedBoxFusion } from './wbf.ts';
export { featureConfidenceMap, mergeHybrid, objectsOutsideSentCells } from './hybrid.ts';
export { type VelocityOptions, compensateLatency, delayedFrameIndex, estimateVelocities, estimateVelocitiesFromHistory } from './latency.ts';
export { type PoseNoise, type PoseNoiseStd, applyPoseNoise, keyedRng, messageLost, parsePoseNoise, samplePoseNoise } from './impairments.ts';
export {
  type AgentSelection,
  type SelectionCandidate,
  type SelectionOptions,
  type SelectionSkipReason,
  coverageFraction,
  fieldOfViewFraction,
  selectAgents,
} from './selection.ts';
export { type SequenceRun, evaluateSequence, gridEvalRange } from './evaluate.ts';
export {
  type BevRange,
  type DetectionsToObjectsOptions,
  type FuseLateOptions,
  type PerceivedObjectInit,
  type PositionConfidence,
  MEASURED_POSITION_CONFIDENCE,
  positionConfidenceFor,
  detectionsToObjects,
  fuseLate,
  objectsToDetections,
} from './late.ts';
export { type AlignedContribution, type AttributedDetection, featureContributors, mergedContributors, rangeContributors } from './contributors.ts';
export { pooledSize, quantiseConfidence } from './confidence-map.ts';
export { type SenderPoints, DEFAULT_POINT_CODEC, MERGED_POINT_STRIDE, MergedCloudEncoder, mergePointClouds, mergedLength } from './early.ts';
export {
  type FeatureMotion,
  type FeatureMotionOptions,
  type TrackMotionOptions,
  type TrackedMotion,
  compensateFeatureMotion,
  compensateObjectMotion,
  featureMotionsFromTracks,
} from './feature-motion.ts';
