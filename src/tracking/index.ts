// The tracking stage's public face: AB3DMOT-style 3D multi-object tracking (Kalman filters, Hungarian/greedy
// association on (G)IoU or centre distance, birth and death), DMSTrack-style uncertainty-weighted cooperative
// updates, and AB3DMOT's evaluation (CLEAR MOT, AMOTA/AMOTP/sAMOTA, IDF1).
export { AssignmentError, AssignmentSolver, greedyAssignment, linearSumAssignment } from './assignment.ts';
export { type AffinityMetric, AFFINITY_METRICS, affinity, bevGiou, bevHullArea, convexHullArea, giou3d } from './affinity.ts';
export {
  type KalmanNoise, type MotionModel,
  AB3DMOT_NOISE, BoxKalmanFilter, KalmanInputError, MEASUREMENT_DIM, MOTION_MODELS, STATE_DIM, measurementCovariance, withinRange,
} from './kalman.ts';
export {
  type AssignmentMethod, type ClassTrackingParams, type DetectionSet, type Track, type TrackInput, type TrackerOptions,
  AB3DMOT_CLASS_PARAMS, DEFAULT_STEP_S, MultiObjectTracker, TrackingInputError, covarianceFromPositionConfidence,
} from './tracker.ts';
export {
  type ClearMotResult, type MotEvaluationOptions, type MotFrame, type MotGroundTruth, type MotHypothesis, type MotMetrics,
  type MotOverlap, type RecallPoint,
  DEFAULT_MOT_THRESHOLD, RECALL_POINTS, clearMot, evaluateMot, identityMetrics, recallThresholds,
} from './metrics.ts';
export { type TrackingEvaluation, type TrackingEvaluationOptions, type TrackingFrame, evaluateTracking } from './evaluate.ts';
