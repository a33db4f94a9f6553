// The perception stage: BEV grid, LiDAR pillarisation and the pillar scatter (ONNX encoders come later).
export {
  type BevGrid,
  type GridCell,
  BevGridError,
  DEFAULT_BEV_GRID,
  cellCenter,
  cellOf,
  featureCellSize,
  featureHeight,
  featureShape,
  featureWidth,
  gridHeight,
  gridWidth,
  gridsEqual,
  validateGrid,
} from './grid.ts';
export {
  type PillarBatch,
  type PillarizerOptions,
  PILLAR_FEATURE_COUNT,
  PILLAR_FEATURE_NAMES,
  POINT_STRIDE,
  PillarizeError,
  Pillarizer,
  scatterToBev,
} from './pillarize.ts';
