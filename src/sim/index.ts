// The simulator stage's public face: scenarios, the world and its traffic, the sensors, and the sequence writer
// behind `v2xfuse simulate`.
export { Rng } from './random.ts';
export type { Scene, ScenePrimitive, SurfaceKind } from './scene.ts';
export { SceneIndex, type RayHit } from './scene-index.ts';
export { LIDAR_PRESETS, LidarConfigError, castLidarScan, type LidarConfig, type LidarScan } from './lidar.ts';
export { CameraModelError, renderCamera, type CameraModel } from './camera.ts';
export {
  LIDAR_PRESET_NAMES,
  ScenarioError,
  listScenarios,
  loadScenario,
  parseScenario,
  type AgentSpec,
  type LidarPresetName,
  type Scenario,
  type Turn,
  type VehicleClass,
} from './scenario.ts';
export { buildWorld, footprintsOverlap, signalState, type Footprint, type Lane, type Junction, type Walkway, type World } from './world.ts';
export { STEP_SECONDS, TrafficSimulation, buildScene, type ActorBox, type Pedestrian, type Vehicle } from './traffic.ts';
export { CARLA_TICK_SECONDS, LISTING_RADIUS_M, frameYaml } from './writer.ts';
export { SimulationOutputError, cameraIntrinsic, simulateSequence, type SimulateOptions, type SimulationSummary } from './simulate.ts';
