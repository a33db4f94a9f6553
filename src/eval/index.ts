// Public face of the evaluation stage: OpenCOOD-compatible BEV AP and the cooperative ground truth it is scored on.
export {
  type ApOrder, type ApResult, type ClassApResult, type ClassedBox, type Detection, type EvaluateOptions, type ThresholdResult,
  ApAccumulator, ClassAwareApAccumulator, DEFAULT_IOU_THRESHOLDS, EvaluationInputError, evaluateDetections, vocAveragePrecision,
} from './ap.ts';
export {
  type CooperativeGroundTruthOptions, type EvalGroundTruthBox, type EvalRange,
  GroundTruthError, OPENCOOD_COMM_RANGE_M, OPENCOOD_GT_RANGE, cooperativeGroundTruth,
} from './ground-truth.ts';
export {
  type GroundTruthVisibility, type VisibilityOptions, GROUND_TRUTH_VISIBILITIES, markHiddenGroundTruth,
} from './visibility.ts';
