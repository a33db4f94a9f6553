// The motion-prediction stage: per track, K future trajectories with probabilities over a horizon (3 s at 10 Hz
// by default). Physics baselines (constant velocity, CTRV), a learned ONNX predictor (models.motion_predictor of
// the manifest), the Argoverse metrics, ground-truth tracks of a dataset and the training samples cut from them.
export {
  type MultiModalPrediction,
  type NumericArray,
  type PredictionHorizon,
  type TrackHistory,
  DEFAULT_HISTORY_RATE_HZ,
  DEFAULT_HORIZON,
  HISTORY_STRIDE,
  PredictionInputError,
  WAYPOINT_STRIDE,
  horizonSteps,
  singleModePrediction,
} from './types.ts';
export {
  type MotionEstimateOptions,
  type MotionState,
  estimateMotionState,
  predictConstantVelocity,
  predictCtrv,
} from './baselines.ts';
export {
  type PredictionMetricsSummary,
  type PredictionScore,
  type ScoreOptions,
  MISS_THRESHOLD_M,
  PredictionMetrics,
  TRUTH_STRIDE,
  averageDisplacementError,
  finalDisplacementError,
  scorePrediction,
} from './metrics.ts';
export {
  type TrackFrame,
  AGENT_CLASSES,
  ENCODED_STEP_SIZE,
  encodeAgentClass,
  encodeHistory,
  fromTrackFrame,
  toTrackFrame,
  trackFrameOf,
} from './track-frame.ts';
export {
  type ExportTracksOptions,
  type ExportTracksSummary,
  type ObjectTrack,
  type PredictionWindow,
  type SequenceTracks,
  TRACKS_FORMAT,
  TRACKS_FORMAT_VERSION,
  TracksError,
  exportPredictionSamples,
  extractGroundTruthTracks,
  parseTracksJson,
  predictionWindows,
  readTracksFile,
  trackLength,
  tracksToJson,
} from './tracks.ts';
export { type TrajectoryPredictor, ConstantVelocityPredictor, CtrvPredictor } from './predictors.ts';
export { type MotionPredictorOptions, DEFAULT_MANIFEST_PATH, MotionPredictor } from './learned.ts';
export {
  type EvaluationSubset,
  type PredictionEvaluation,
  type PredictionEvaluationOptions,
  type TrackPredictionScoring,
  EVALUATION_SUBSETS,
  evaluatePredictors,
  groundTruthFuture,
  scoreTrackPredictions,
} from './evaluate.ts';
export {
  type TrackBoxHistory,
  type TrackPrediction,
  type WireTrajectory,
  type WireWaypoint,
  HEADING_MOTION_MIN_M,
  headingsAlongMotion,
  predictTracks,
  toWireTrajectories,
} from './track-predictions.ts';
export { TRACK_HISTORY_FRAMES, type TrackedObject, TrackedScene, type TrackedSceneTimings } from './tracked-scene.ts';
