// Reader for the OPV2V layout, shared by OPV2V, V2XSet and V2V4Real (and written by our simulator):
//
//   <split>/<scenario>/<agent id>/NNNNNN.yaml        poses, cameras, ground truth of one agent at one frame
//                                 NNNNNN.pcd         its point cloud (ASCII x y z rgb in OPV2V)
//                                 NNNNNN_cameraK.png its camera images (K = 0..3 in OPV2V)
//
// `root` may be a split folder (holding scenario folders) or one scenario folder (holding integer agent folders,
// possibly next to a data_protocol.yaml). A scenario folder is one with at least one integer-named child folder
// (negative ids are V2XSet roadside units) that holds NNNNNN.yaml files.
//
// Agent order: non-negative ids ascending, then roadside units. The first agent is the ego: OpenCOOD picks the
// smallest CAV id and moves a roadside unit (negative id) to the end. (OpenCOOD sorts the ids as strings, so with
// ids of different digit counts, e.g. 98 and 102, it would pick 102; we compare them as numbers.)
//
// Conventions at this boundary (DESIGN.md): CARLA's world is left-handed (x forward, y right, z up). Everything
// leaving this file is right-handed: points, poses and boxes are mirrored in y (geometry's carla* converters).
// V2V4Real is real data, right-handed already, and stores `lidar_pose` as a 4x4 matrix: used as is.
import { open, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  type Box7,
  type Mat4,
  carlaBoxToBox7,
  carlaPoseToMatrix,
  degToRad,
  fromRowMajor,
  invertRigid,
  multiply,
  opv2vCameraCordsToOptical,
  opv2vCameraExtrinsicToOptical,
  transformBox,
} from '../geometry/index.ts';
import { DatasetFormatError, DatasetLayoutError } from './errors.ts';
import { readPcdXyzi } from './pcd.ts';
import { pngSize } from './image-size.ts';
import type {
  AgentFrame,
  AgentInfo,
  AgentKind,
  CameraFrame,
  CooperativeFrame,
  CooperativeSequence,
  Dataset,
  GroundTruthBox,
  ObjectClass,
  OpenOptions,
} from './types.ts';

type Opv2vFormat = 'opv2v' | 'v2v4real';

const AGENT_DIR = /^-?\d+$/;
const FRAME_YAML = /^(\d+)\.yaml$/;
const FRAME_PCD = /^(\d+)\.pcd$/;
const CAMERA_KEY = /^camera(\d+)$/;

// OPV2V carries no timestamps. CARLA ran in synchronous mode at 20 Hz (0.05 s per tick) and OPV2V names each frame
// by its tick number (saved every 2nd tick: 10 Hz), so frame N was captured at N × 50 ms of simulation time.
const CARLA_TICK_NS = 50_000_000n;
const KMH_TO_MS = 1 / 3.6;
// data_protocol.yaml shares sub-trees through anchors; a frame yaml has few if any. The cap only stops alias bombs.
const MAX_YAML_ALIASES = 10_000;

// ---------------------------------------------------------------------------------------------------------------
// One frame yaml → our conventions (pure; no I/O)

const finite = z.number();
const vec3 = z.array(finite).length(3);
const carlaPose = z.array(finite).length(6);
const matrix4 = z.array(z.array(finite).length(4)).length(4);
const matrix3 = z.array(z.array(finite).length(3)).length(3);
const poseField = z.union([carlaPose, matrix4]);

const vehicleSchema = z.object({
  angle: vec3,
  center: vec3,
  extent: vec3,
  location: vec3,
  speed: finite.optional(),
  // OPV2V lists only vehicles and has no class key. V2V4Real writes `obj_type`; our simulator may write `class`.
  class: z.string().optional(),
  type: z.string().optional(),
  obj_type: z.string().optional(),
});

const frameSchema = z.object({
  lidar_pose: poseField,
  true_ego_pos: poseField.optional(),
  noisy_lidar_pose: poseField.optional(),
  ego_speed: finite.optional(),
  // Seconds; OPV2V has none, our simulator writes one.
  timestamp: finite.optional(),
  // PyYAML writes an empty dict for a frame with nothing around; tolerate an explicit null the same way.
  vehicles: z.record(z.string(), vehicleSchema).nullable(),
});

const cameraSchema = z
  .object({ cords: carlaPose.optional(), extrinsic: matrix4.optional(), intrinsic: matrix3 })
  .refine((c) => c.extrinsic !== undefined || c.cords !== undefined, { message: 'needs `extrinsic` or `cords`', path: ['extrinsic'] });

/** One agent's frame yaml, converted to the project's conventions. */
export interface Opv2vFrameRecord {
  format: Opv2vFormat;
  /** LiDAR → world, right-handed. */
  lidarToWorld: Mat4;
  noisyLidarToWorld?: Mat4;
  /** `true_ego_pos`: the vehicle's own actor pose (its location on the ground, not the LiDAR) → world. */
  vehicleToWorld?: Mat4;
  /** Own speed in m/s (`ego_speed` is km/h). */
  speed?: number;
  /** The yaml's `timestamp` in seconds, when it has one. */
  timestampSeconds?: number;
  /** Cameras without image paths or sizes (those come from the folder). */
  cameras: { name: string; intrinsic: Float64Array; cameraToLidar: Mat4 }[];
  /** Ground truth in the world frame, right-handed. */
  boxes: GroundTruthBox[];
}

// Top-level keys the reader uses. The rest (plan_trajectory, predicted_ego_pos, V2XSet extras) is never parsed.
const USED_KEYS = new Set(['lidar_pose', 'true_ego_pos', 'noisy_lidar_pose', 'ego_speed', 'timestamp', 'vehicles']);
const TOP_LEVEL_KEY = /^([^\s#\-.][^:\n]*):/gm;

/**
 * The yaml text restricted to the top-level entries we read. PyYAML writes block style: a top-level key starts
 * at column 0 and everything under it is indented or is a "- " item at column 0. Returns null when nothing can
 * be cut (then the whole text is parsed).
 */
function usedSections(text: string): string | null {
  const starts: { at: number; key: string }[] = [];
  for (const m of text.matchAll(TOP_LEVEL_KEY)) starts.push({ at: m.index, key: m[1].trim().replace(/^(['"])(.*)\1$/, '$2') });
  if (starts.length === 0) return null;
  let out = '';
  let skipped = false;
  for (let i = 0; i < starts.length; i++) {
    const { at, key } = starts[i];
    if (USED_KEYS.has(key) || CAMERA_KEY.test(key)) out += text.slice(at, i + 1 < starts.length ? starts[i + 1].at : text.length);
    else skipped = true;
  }
  return skipped ? out : null;
}

function parseYamlDocument(text: string, file: string): unknown {
  const cut = usedSections(text);
  if (cut !== null) {
    try {
      return parseYaml(cut, { maxAliasCount: MAX_YAML_ALIASES });
    } catch {
      // An alias into a skipped entry, or a layout the cut did not foresee: parse the whole file instead.
    }
  }
  try {
    return parseYaml(text, { maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    throw new DatasetFormatError(file, '(yaml)', (err as Error).message.split('\n')[0]);
  }
}

function validate<T>(schema: z.ZodType<T>, value: unknown, file: string, fieldPrefix: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const field = [fieldPrefix, ...issue.path.map(String)].filter((s) => s !== '').join('.') || '(document)';
  throw new DatasetFormatError(file, field, issue.message);
}

function poseToWorld(pose: number[] | number[][], format: Opv2vFormat, file: string, field: string): Mat4 {
  const isMatrix = Array.isArray(pose[0]);
  if (format === 'v2v4real') {
    if (!isMatrix) throw new DatasetFormatError(file, field, 'a 6-number CARLA pose in a V2V4Real frame (lidar_pose is a 4x4 matrix)');
    return fromRowMajor(pose as number[][], `${file}: ${field}`);
  }
  if (isMatrix) throw new DatasetFormatError(file, field, 'a 4x4 matrix in an OPV2V frame (lidar_pose is [x, y, z, roll, yaw, pitch])');
  return carlaPoseToMatrix(pose as number[]);
}

function classOf(raw: string | undefined): { cls: ObjectClass; rawClass: string } {
  if (raw === undefined) return { cls: 'vehicle', rawClass: 'vehicle' };
  const name = raw.toLowerCase();
  if (/pedestrian|walker|person/.test(name)) return { cls: 'pedestrian', rawClass: raw };
  if (/cyclist|bicycle|bike|motorcycle|scooter/.test(name)) return { cls: 'cyclist', rawClass: raw };
  if (/car|vehicle|van|truck|bus|suv|trailer/.test(name)) return { cls: 'vehicle', rawClass: raw };
  return { cls: 'other', rawClass: raw };
}

// V2V4Real boxes are real, right-handed measurements: OpenCOOD builds them with the same x_to_world formula on
// `location + center` and `angle` [roll, yaw, pitch], so without CARLA's mirror the yaw is simply angle[1].
// They are given in the agent's LiDAR frame, not the world: V2V4Real's OpenCOOD passes the cav→ego LiDAR
// transform (not a world→ego one) to project_world_objects for real data.
function v2v4realBoxInLidar(location: number[], center: number[], extent: number[], angleDeg: number[]): Box7 {
  return {
    x: location[0] + center[0],
    y: location[1] + center[1],
    z: location[2] + center[2],
    l: 2 * extent[0],
    w: 2 * extent[1],
    h: 2 * extent[2],
    yaw: degToRad(angleDeg[1]),
  };
}

// Camera conventions (extrinsic = LiDAR → UE4 camera, mirrored handedness) live in src/geometry/conventions.ts.

/**
 * Finite numbers in, non-finite out: values near the float64 limit (1e308) overflow in the pose and box
 * conversions. Such a frame is refused rather than handed on with NaN poses.
 */
function assertFiniteRecord(r: Opv2vFrameRecord, file: string): void {
  const check = (values: ArrayLike<number>, field: string) => {
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) throw new DatasetFormatError(file, field, 'values too large: the converted pose or box is not finite');
    }
  };
  check(r.lidarToWorld, 'lidar_pose');
  if (r.noisyLidarToWorld) check(r.noisyLidarToWorld, 'noisy_lidar_pose');
  if (r.vehicleToWorld) check(r.vehicleToWorld, 'true_ego_pos');
  if (r.speed !== undefined) check([r.speed], 'ego_speed');
  for (const b of r.boxes) check([b.box.x, b.box.y, b.box.z, b.box.l, b.box.w, b.box.h, b.box.yaw, b.speed ?? 0], `vehicles.${b.id}`);
  for (const c of r.cameras) (check(c.intrinsic, `${c.name}.intrinsic`), check(c.cameraToLidar, c.name));
}

/** Parses one agent's frame yaml (text of `file`, named in errors) into our conventions. */
export function parseOpv2vFrameYaml(text: string, file: string, expectedFormat?: Opv2vFormat): Opv2vFrameRecord {
  const doc = parseYamlDocument(text, file);
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new DatasetFormatError(file, '(document)', 'expected a mapping with lidar_pose and vehicles');
  }
  const y = validate(frameSchema, doc, file, '');
  const format: Opv2vFormat = Array.isArray(y.lidar_pose[0]) ? 'v2v4real' : 'opv2v';
  if (expectedFormat !== undefined && format !== expectedFormat) {
    throw new DatasetFormatError(file, 'lidar_pose', `${format === 'v2v4real' ? 'a 4x4 matrix' : 'a 6-number CARLA pose'} in a scenario whose first frame is ${expectedFormat}`);
  }
  const lidarToWorld = poseToWorld(y.lidar_pose, format, file, 'lidar_pose');
  const record: Opv2vFrameRecord = { format, lidarToWorld, cameras: [], boxes: [] };
  if (y.noisy_lidar_pose !== undefined) record.noisyLidarToWorld = poseToWorld(y.noisy_lidar_pose, format, file, 'noisy_lidar_pose');
  if (y.true_ego_pos !== undefined) record.vehicleToWorld = poseToWorld(y.true_ego_pos, format, file, 'true_ego_pos');
  if (y.ego_speed !== undefined) record.speed = y.ego_speed * KMH_TO_MS;
  if (y.timestamp !== undefined) record.timestampSeconds = y.timestamp;

  for (const [id, v] of Object.entries(y.vehicles ?? {})) {
    const box = format === 'v2v4real'
      ? transformBox(lidarToWorld, v2v4realBoxInLidar(v.location, v.center, v.extent, v.angle))
      : carlaBoxToBox7(v.location, v.center, v.extent, v.angle);
    const gt: GroundTruthBox = { id, ...classOf(v.class ?? v.obj_type ?? v.type), box };
    if (v.speed !== undefined) gt.speed = v.speed * KMH_TO_MS;
    record.boxes.push(gt);
  }

  // V2V4Real publishes no camera data, and its camera axes would not be CARLA's: only OPV2V cameras are read.
  if (format === 'opv2v') {
    const names = Object.keys(doc).filter((k) => CAMERA_KEY.test(k));
    names.sort((a, b) => Number(CAMERA_KEY.exec(a)![1]) - Number(CAMERA_KEY.exec(b)![1]));
    for (const name of names) {
      const cam = validate(cameraSchema, (doc as Record<string, unknown>)[name], file, name);
      const cameraToLidar = cam.extrinsic !== undefined
        ? opv2vCameraExtrinsicToOptical(cam.extrinsic)
        : opv2vCameraCordsToOptical(cam.cords!, lidarToWorld);
      record.cameras.push({ name, intrinsic: Float64Array.from(cam.intrinsic.flat()), cameraToLidar });
    }
  }
  assertFiniteRecord(record, file);
  return record;
}

// ---------------------------------------------------------------------------------------------------------------
// Folder layout

interface AgentListing {
  id: string;
  kind: AgentKind;
  dir: string;
  /** Frame id → has a .pcd next to the yaml. */
  frames: Map<string, boolean>;
  files: Set<string>;
}

interface ScenarioListing {
  dir: string;
  name: string;
  format: Opv2vFormat;
  agents: AgentListing[];
  frameIds: string[];
}

interface Entry {
  name: string;
  isDir: boolean;
  isFile: boolean;
}

/** A folder's entries with symbolic links resolved (datasets are often linked in from another disk). */
async function listDir(dir: string): Promise<Entry[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return Promise.all(
    entries.map(async (e) => {
      if (!e.isSymbolicLink()) return { name: e.name, isDir: e.isDirectory(), isFile: e.isFile() };
      const target = await stat(path.join(dir, e.name)).catch(() => null);
      return { name: e.name, isDir: target?.isDirectory() ?? false, isFile: target?.isFile() ?? false };
    }),
  );
}

function agentOrder(a: string, b: string): number {
  const ia = Number(a), ib = Number(b);
  if (ia < 0 !== ib < 0) return ia < 0 ? 1 : -1;
  return ia - ib;
}

/** Integer-named child folders of `dir`, in agent order. */
async function integerChildDirs(dir: string): Promise<string[]> {
  const entries = await listDir(dir);
  return entries.filter((e) => e.isDir && AGENT_DIR.test(e.name)).map((e) => e.name).sort(agentOrder);
}

async function hasFrameYaml(dir: string): Promise<boolean> {
  const entries = await listDir(dir).catch(() => []);
  return entries.some((e) => e.isFile && FRAME_YAML.test(e.name));
}

/** Folders under `root` (itself, or its children) that hold integer agent folders. */
async function scenarioCandidates(root: string): Promise<string[]> {
  if ((await integerChildDirs(root)).length > 0) return [root];
  const out: string[] = [];
  for (const e of await listDir(root)) {
    if (!e.isDir) continue;
    const dir = path.join(root, e.name);
    if ((await integerChildDirs(dir)).length > 0) out.push(dir);
  }
  return out.sort();
}

/** True when `root` is a scenario folder or a split folder of scenarios in the OPV2V / V2V4Real layout. */
export async function isOpv2vLayout(root: string): Promise<boolean> {
  try {
    for (const dir of await scenarioCandidates(root)) {
      for (const agent of await integerChildDirs(dir)) if (await hasFrameYaml(path.join(dir, agent))) return true;
    }
  } catch {
    // Unreadable or absent: not this layout.
  }
  return false;
}

async function noScenarioError(root: string): Promise<DatasetLayoutError> {
  const entries = await listDir(root);
  const yamls = entries.filter((e) => e.isFile && FRAME_YAML.test(e.name)).length;
  const pcds = entries.filter((e) => e.isFile && FRAME_PCD.test(e.name)).length;
  let detail: string;
  if (yamls > 0) detail = `it holds ${yamls} NNNNNN.yaml files itself: it looks like one agent folder; open the scenario folder above it`;
  else if (pcds > 0) detail = `found ${pcds} NNNNNN.pcd files but no NNNNNN.yaml: the per-frame yaml carries the LiDAR pose and ground truth, without it the point clouds cannot be placed`;
  else detail = 'expected a split folder of scenarios, or a scenario folder holding agent folders named by integer id with NNNNNN.yaml files';
  return new DatasetLayoutError(root, 'no scenario folders (integer agent folders) under it', detail);
}

async function listAgent(scenarioDir: string, id: string): Promise<AgentListing> {
  const dir = path.join(scenarioDir, id);
  const files = new Set((await listDir(dir)).filter((e) => e.isFile).map((e) => e.name));
  const frames = new Map<string, boolean>();
  for (const name of files) {
    const m = FRAME_YAML.exec(name);
    if (m) frames.set(m[1], files.has(`${m[1]}.pcd`));
  }
  if (frames.size === 0) {
    throw new DatasetLayoutError(dir, 'no NNNNNN.yaml files in this agent folder', `agent ${id} of scenario ${path.basename(scenarioDir)} holds ${files.size} files but no frame yaml`);
  }
  return { id, kind: Number(id) < 0 ? 'rsu' : 'vehicle', dir, frames, files };
}

async function listScenario(dir: string, name: string, opts: OpenOptions, warnings: string[]): Promise<ScenarioListing | null> {
  const agents: AgentListing[] = [];
  for (const id of await integerChildDirs(dir)) {
    const agent = await listAgent(dir, id);
    if (opts.skipMissing) {
      for (const [frameId, hasPcd] of [...agent.frames]) {
        if (hasPcd) continue;
        agent.frames.delete(frameId);
        warnings.push(`${path.join(agent.dir, `${frameId}.pcd`)}: point cloud missing; frame ${frameId} of agent ${id} dropped`);
      }
      if (agent.frames.size === 0) continue;
    }
    agents.push(agent);
  }
  if (agents.length === 0) return null;
  const frameIds = [...new Set(agents.flatMap((a) => [...a.frames.keys()]))].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  // The scenario's format is that of its first yaml; every later yaml is held to it.
  const first = agents[0];
  const firstFile = path.join(first.dir, `${[...first.frames.keys()].sort()[0]}.yaml`);
  const format = parseOpv2vFrameYaml(await readFile(firstFile, 'utf8'), firstFile).format;
  return { dir, name, format, agents, frameIds };
}

// ---------------------------------------------------------------------------------------------------------------
// Frames

function timestampNs(frameId: string, seconds: number | undefined): bigint {
  if (seconds === undefined) return BigInt(Number(frameId)) * CARLA_TICK_NS;
  const whole = Math.floor(seconds);
  return BigInt(whole) * 1_000_000_000n + BigInt(Math.round((seconds - whole) * 1e9));
}

class Opv2vSequence implements CooperativeSequence {
  readonly format: Opv2vFormat;
  readonly name: string;
  readonly root: string;
  readonly agents: AgentInfo[];
  readonly frameCount: number;
  readonly frameIds: string[];
  private readonly listing: ScenarioListing;
  // Image sizes do not change within a scenario: one header read per agent camera.
  private readonly imageSizes = new Map<string, Promise<{ width: number; height: number }>>();

  constructor(listing: ScenarioListing) {
    this.listing = listing;
    this.format = listing.format;
    this.name = listing.name;
    this.root = listing.dir;
    this.agents = listing.agents.map((a) => ({ id: a.id, kind: a.kind, frames: a.frames.size }));
    this.frameIds = listing.frameIds;
    this.frameCount = listing.frameIds.length;
  }

  async frame(index: number): Promise<CooperativeFrame> {
    if (!Number.isInteger(index) || index < 0 || index >= this.frameCount) {
      throw new RangeError(`${this.root}: frame index ${index} outside 0..${this.frameCount - 1}`);
    }
    const frameId = this.frameIds[index];
    const present = this.listing.agents.filter((a) => a.frames.has(frameId));
    const agents = await Promise.all(present.map((a) => this.agentFrame(a, frameId)));
    return { frameId, index, timestampNs: agents[0].timestampNs, agents };
  }

  async *frames(): AsyncIterable<CooperativeFrame> {
    for (let i = 0; i < this.frameCount; i++) yield await this.frame(i);
  }

  private async agentFrame(agent: AgentListing, frameId: string): Promise<AgentFrame> {
    const yamlPath = path.join(agent.dir, `${frameId}.yaml`);
    const record = parseOpv2vFrameYaml(await readFile(yamlPath, 'utf8'), yamlPath, this.format);
    const lidarPath = path.join(agent.dir, `${frameId}.pcd`);
    const hasPcd = agent.frames.get(frameId) === true;
    const mirrorY = this.format === 'opv2v';
    const cameras: CameraFrame[] = [];
    for (const cam of record.cameras) cameras.push(await this.cameraFrame(agent, frameId, cam));
    const frame: AgentFrame = {
      agentId: agent.id,
      kind: agent.kind,
      timestampNs: timestampNs(frameId, record.timestampSeconds),
      lidarToWorld: record.lidarToWorld,
      lidarPath,
      loadPoints: async () => {
        if (!hasPcd) {
          throw new DatasetLayoutError(lidarPath, 'point cloud missing', `${frameId}.yaml of agent ${agent.id} has no ${frameId}.pcd beside it (a metadata-only sample?)`);
        }
        const points = await readPcdXyzi(lidarPath);
        // OPV2V clouds are in CARLA's left-handed LiDAR frame, as OpenCOOD consumes them: mirror into ours.
        if (mirrorY) for (let i = 1; i < points.length; i += 4) points[i] = -points[i];
        return points;
      },
      cameras,
      boxes: record.boxes,
    };
    if (record.noisyLidarToWorld) frame.noisyLidarToWorld = record.noisyLidarToWorld;
    if (record.speed !== undefined) frame.speed = record.speed;
    return frame;
  }

  private async cameraFrame(agent: AgentListing, frameId: string, cam: Opv2vFrameRecord['cameras'][number]): Promise<CameraFrame> {
    const fileName = `${frameId}_${cam.name}.png`;
    const imagePath = path.join(agent.dir, fileName);
    // CARLA's intrinsic puts the principal point at the image centre (OPV2V: 400, 300 for 800×600): the image size
    // when the png itself is not there to say otherwise.
    let size = { width: Math.round(2 * cam.intrinsic[2]), height: Math.round(2 * cam.intrinsic[5]) };
    if (agent.files.has(fileName)) {
      const key = `${agent.id}/${cam.name}`;
      let pending = this.imageSizes.get(key);
      if (!pending) {
        pending = pngSize(imagePath);
        this.imageSizes.set(key, pending);
      }
      size = await pending;
    }
    return { name: cam.name, ...size, intrinsic: cam.intrinsic, cameraToLidar: cam.cameraToLidar, path: imagePath };
  }
}

/** Opens an OPV2V / V2XSet / V2V4Real split folder or scenario folder. Reads one yaml per scenario up front. */
export async function openOpv2v(root: string, opts: OpenOptions = {}): Promise<Dataset> {
  const absRoot = path.resolve(root);
  const info = await stat(absRoot).catch(() => null);
  if (!info) throw new DatasetLayoutError(absRoot, 'no such folder');
  if (!info.isDirectory()) throw new DatasetLayoutError(absRoot, 'not a folder', 'give a split folder or a scenario folder');

  const candidates = await scenarioCandidates(absRoot);
  if (candidates.length === 0) throw await noScenarioError(absRoot);

  const warnings: string[] = [];
  const scenarios: Opv2vSequence[] = [];
  for (const dir of candidates) {
    const listing = await listScenario(dir, path.basename(dir), opts, warnings);
    if (listing) scenarios.push(new Opv2vSequence(listing));
    else warnings.push(`${dir}: no frame has its point cloud; scenario dropped`);
  }
  if (scenarios.length === 0) {
    throw new DatasetLayoutError(absRoot, 'no frame with a point cloud', `skipMissing dropped every frame; first: ${warnings[0]}`);
  }
  const format = scenarios[0].format;
  const other = scenarios.find((s) => s.format !== format);
  if (other) {
    throw new DatasetLayoutError(absRoot, 'mixes OPV2V and V2V4Real scenarios', `${scenarios[0].root} is ${format}, ${other.root} is ${other.format}`);
  }
  return { format, root: absRoot, scenarios, warnings };
}
