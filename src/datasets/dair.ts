// DAIR-V2X-C (cooperative vehicle-infrastructure) reader. One scenario, 'cooperative': each pair listed in
// cooperative/data_info.json becomes a frame with two agents, the vehicle and the roadside unit.
//
// Layout (root = cooperative-vehicle-infrastructure/):
//   cooperative/data_info.json          pairs: both point clouds, both images, cooperative label, system_error_offset
//   cooperative/label_world/NNNNNN.json cooperative ground truth in the world frame
//   vehicle-side/data_info.json         per frame: timestamps (µs) and every file path, relative to vehicle-side/
//   vehicle-side/{velodyne,image,calib/{lidar_to_novatel,novatel_to_world,lidar_to_camera,camera_intrinsic},label/lidar}
//   infrastructure-side/data_info.json  same idea; calib/{virtuallidar_to_world,virtuallidar_to_camera,camera_intrinsic},
//                                       label/virtuallidar
// Transforms apply as p_out = R·p + t. Vehicle LiDAR → world = novatel_to_world · lidar_to_novatel; the RSU's
// virtual LiDAR → world gets the pair's system_error_offset added to its translation (without it the RSU boxes
// sit ~0.9 m off the cooperative labels).
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { type Box7, type Mat4, dairTransformToMatrix, invertAffine, multiply, transformBox, wrapAngle } from '../geometry/index.ts';
import { imageSize } from './image-size.ts';
import { DatasetFormatError, DatasetLayoutError } from './errors.ts';
import { readPcdXyzi } from './pcd.ts';
import type { AgentFrame, AgentKind, CameraFrame, CooperativeFrame, CooperativeSequence, Dataset, GroundTruthBox, ObjectClass, OpenOptions } from './types.ts';

/** The folder name the DAIR-V2X-C download unpacks to; a parent folder holding it is accepted too. */
const DAIR_ROOT_NAME = 'cooperative-vehicle-infrastructure';

export interface DairOpenOptions extends OpenOptions {
  /**
   * Read these data_info files instead of the ones in the tree (absolute, or relative to the root), e.g. a split
   * or a list filtered to the frames a download holds. Paths inside them stay relative to the tree as usual.
   */
  dataInfo?: { cooperative?: string; vehicle?: string; infrastructure?: string };
}

// ---------------------------------------------------------------- json schemas

/** A number, or a string holding one (DAIR writes some label fields as strings). */
const numeric = z.union([
  z.number(),
  z.string().trim().regex(/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/, 'expected a number').transform(Number),
]).pipe(z.number());

/** Microseconds since the epoch, as a string of digits or an integer. */
const microseconds = z.union([z.string().regex(/^\d+$/, 'expected microseconds as digits'), z.number().int().nonnegative()]).transform((v) => BigInt(v));

const cooperativeInfoSchema = z.array(
  z.object({
    vehicle_pointcloud_path: z.string(),
    vehicle_image_path: z.string(),
    infrastructure_pointcloud_path: z.string(),
    infrastructure_image_path: z.string(),
    cooperative_label_path: z.string(),
    system_error_offset: z.object({ delta_x: numeric, delta_y: numeric }),
  }),
);

const vehicleInfoSchema = z.array(
  z.object({
    pointcloud_path: z.string(),
    pointcloud_timestamp: microseconds,
    image_path: z.string(),
    image_timestamp: microseconds,
    calib_novatel_to_world_path: z.string(),
    calib_lidar_to_novatel_path: z.string(),
    calib_lidar_to_camera_path: z.string(),
    calib_camera_intrinsic_path: z.string(),
    label_lidar_std_path: z.string(),
  }),
);

const infrastructureInfoSchema = z.array(
  z.object({
    pointcloud_path: z.string(),
    pointcloud_timestamp: microseconds,
    image_path: z.string(),
    image_timestamp: microseconds,
    calib_virtuallidar_to_world_path: z.string(),
    calib_virtuallidar_to_camera_path: z.string(),
    calib_camera_intrinsic_path: z.string(),
    label_lidar_std_path: z.string(),
  }),
);

const rigidSchema = z.object({
  rotation: z.array(z.array(numeric).length(3)).length(3),
  translation: z.union([z.array(z.array(numeric).length(1)).length(3), z.array(numeric).length(3)]),
});

const lidarToNovatelSchema = z.object({ transform: rigidSchema });

const intrinsicSchema = z.object({
  cam_K: z.array(numeric).length(9),
  cam_D: z.array(numeric).optional(),
  width: z.number().int().positive().optional(),
  height: z.number().int().positive().optional(),
});

const objectId = z.union([z.string(), z.number()]).optional();

// Fields both label files share; the LiDAR labels add a yaw, label_world the eight world corners.
const labelBase = z.object({
  type: z.string(),
  track_id: objectId,
  id: objectId,
  '3d_dimensions': z.object({ h: numeric, w: numeric, l: numeric }),
  '3d_location': z.object({ x: numeric, y: numeric, z: numeric }),
});

const lidarLabelSchema = z.array(labelBase.extend({ rotation: numeric }));

const worldLabelSchema = z.array(labelBase.extend({ world_8_points: z.array(z.array(numeric).length(3)).length(8) }));

async function readJson<T>(file: string, schema: z.ZodType<T>): Promise<T> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new DatasetLayoutError(file, 'missing file');
    throw err;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DatasetFormatError(file, '(json)', (err as Error).message);
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.length === 0 ? '(root)' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    throw new DatasetFormatError(file, field, issue.message);
  }
  return result.data;
}

// ---------------------------------------------------------------- layout

async function isDirectory(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isDirectory() ?? false;
}

async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isFile() ?? false;
}

async function hasDairLayout(dir: string): Promise<boolean> {
  const [info, vehicle, infra] = await Promise.all([
    isFile(path.join(dir, 'cooperative', 'data_info.json')),
    isDirectory(path.join(dir, 'vehicle-side')),
    isDirectory(path.join(dir, 'infrastructure-side')),
  ]);
  return info && vehicle && infra;
}

/** The DAIR-V2X-C root: the folder itself, or its cooperative-vehicle-infrastructure/ child. */
async function resolveDairRoot(root: string): Promise<string | null> {
  if (await hasDairLayout(root)) return root;
  const child = path.join(root, DAIR_ROOT_NAME);
  if (await hasDairLayout(child)) return child;
  return null;
}

/** Cheap check: cooperative/data_info.json, vehicle-side/ and infrastructure-side/ (here or in cooperative-vehicle-infrastructure/). */
export async function isDairV2XCLayout(root: string): Promise<boolean> {
  return (await resolveDairRoot(root)) !== null;
}

/** File names per folder, read once, so checking hundreds of listed files costs a few readdir calls. */
class FolderListing {
  private readonly cache = new Map<string, Promise<Set<string> | null>>();

  has(file: string): Promise<boolean> {
    const dir = path.dirname(file);
    let listing = this.cache.get(dir);
    if (!listing) {
      listing = readdir(dir).then((names) => new Set(names), () => null);
      this.cache.set(dir, listing);
    }
    return listing.then((names) => names?.has(path.basename(file)) ?? false);
  }

  async folderExists(dir: string): Promise<boolean> {
    let listing = this.cache.get(dir);
    if (!listing) {
      listing = readdir(dir).then((names) => new Set(names), () => null);
      this.cache.set(dir, listing);
    }
    return (await listing) !== null;
  }
}

// ---------------------------------------------------------------- conversions

const CLASS_OF: Record<string, ObjectClass> = {
  car: 'vehicle',
  van: 'vehicle',
  truck: 'vehicle',
  bus: 'vehicle',
  pedestrian: 'pedestrian',
  cyclist: 'cyclist',
  motorcyclist: 'cyclist',
  tricyclist: 'cyclist',
};

/** DAIR type → our class; Trafficcone, Barrowlist and the like are 'other'. label_world writes types in lower case. */
export function dairClass(type: string): ObjectClass {
  return CLASS_OF[type.toLowerCase()] ?? 'other';
}

function idOf(label: { track_id?: string | number; id?: string | number }, fallback: string): string {
  const id = label.track_id ?? label.id;
  return id === undefined ? fallback : String(id);
}

/**
 * A label_world box from its eight world corners. Its `rotation` field cannot be used: for boxes that came from
 * the vehicle it is still the yaw in the vehicle's LiDAR frame. Corners 0-3 are the bottom face, 4-7 the top;
 * 0 and 1 are the front corners (checked against the vehicle's own labels mapped to world), so the heading
 * points from the middle of 2-3 to the middle of 0-1.
 */
export function worldCornersToBox(corners: readonly (readonly number[])[], dims: { l: number; w: number; h: number }): Box7 {
  let x = 0;
  let y = 0;
  let zc = 0;
  for (const c of corners) {
    x += c[0]!;
    y += c[1]!;
    zc += c[2]!;
  }
  // Front minus rear, averaged over the bottom (0,1 vs 2,3) and top (4,5 vs 6,7) faces.
  const dx = corners[0]![0]! + corners[1]![0]! + corners[4]![0]! + corners[5]![0]! - (corners[2]![0]! + corners[3]![0]! + corners[6]![0]! + corners[7]![0]!);
  const dy = corners[0]![1]! + corners[1]![1]! + corners[4]![1]! + corners[5]![1]! - (corners[2]![1]! + corners[3]![1]! + corners[6]![1]! + corners[7]![1]!);
  return { x: x / 8, y: y / 8, z: zc / 8, l: dims.l, w: dims.w, h: dims.h, yaw: wrapAngle(Math.atan2(dy, dx)) };
}

function intrinsicMatrix(camK: readonly number[]): Float64Array {
  return Float64Array.from(camK);
}

/** The exact inverse of a calibration matrix (see invertAffine on why not a rigid inverse), with the file named. */
function invertCalibration(m: Mat4, file: string): Mat4 {
  try {
    return invertAffine(m);
  } catch (err) {
    throw new DatasetFormatError(file, 'rotation', (err as Error).message);
  }
}

// ---------------------------------------------------------------- reader

type VehicleInfo = z.infer<typeof vehicleInfoSchema>[number];
type InfrastructureInfo = z.infer<typeof infrastructureInfoSchema>[number];

interface Pair {
  frameId: string;
  vehicle: VehicleInfo;
  infrastructure: InfrastructureInfo;
  offset: { dx: number; dy: number };
  cooperativeLabel: string;
  vehicleImage: string | null;
  infrastructureImage: string | null;
}

/** Key a side's data_info entry by its point cloud's path relative to the side folder. */
function stripSide(p: string, side: string): string {
  const normal = path.posix.normalize(p.replace(/\\/g, '/'));
  return normal.startsWith(`${side}/`) ? normal.slice(side.length + 1) : normal;
}

function frameStem(p: string): string {
  return path.posix.basename(p.replace(/\\/g, '/')).replace(/\.[^.]*$/, '');
}

export async function openDairV2XC(root: string, opts: DairOpenOptions = {}): Promise<Dataset> {
  const requested = path.resolve(root);
  const base = await resolveDairRoot(requested);
  if (base === null) {
    for (const required of ['cooperative/data_info.json', 'vehicle-side', 'infrastructure-side']) {
      const p = path.join(requested, required);
      if (!(await stat(p).catch(() => null))) {
        throw new DatasetLayoutError(p, required.endsWith('.json') ? 'missing file' : 'missing folder', 'a DAIR-V2X-C root holds cooperative/data_info.json, vehicle-side/ and infrastructure-side/');
      }
    }
    throw new DatasetLayoutError(requested, 'not a DAIR-V2X-C root', 'expected cooperative/data_info.json, vehicle-side/ and infrastructure-side/');
  }
  const vehicleDir = path.join(base, 'vehicle-side');
  const infraDir = path.join(base, 'infrastructure-side');
  const infoPath = (override: string | undefined, fallback: string): string => (override ? path.resolve(base, override) : path.join(base, fallback));
  const cooperativeInfoPath = infoPath(opts.dataInfo?.cooperative, 'cooperative/data_info.json');
  const vehicleInfoPath = infoPath(opts.dataInfo?.vehicle, 'vehicle-side/data_info.json');
  const infraInfoPath = infoPath(opts.dataInfo?.infrastructure, 'infrastructure-side/data_info.json');
  const [cooperativeInfo, vehicleInfo, infraInfo] = await Promise.all([
    readJson(cooperativeInfoPath, cooperativeInfoSchema),
    readJson(vehicleInfoPath, vehicleInfoSchema),
    readJson(infraInfoPath, infrastructureInfoSchema),
  ]);

  const vehicleByCloud = new Map(vehicleInfo.map((e) => [stripSide(e.pointcloud_path, 'vehicle-side'), e]));
  const infraByCloud = new Map(infraInfo.map((e) => [stripSide(e.pointcloud_path, 'infrastructure-side'), e]));
  const listing = new FolderListing();
  const warnings: string[] = [];

  // A download may leave out the images (DAIR ships them as separate archives): then frames carry no cameras,
  // said once per side. With the image folder present, a listed image that is absent is a missing file.
  const vehicleHasImages = await listing.folderExists(path.join(vehicleDir, 'image'));
  const infraHasImages = await listing.folderExists(path.join(infraDir, 'image'));
  if (!vehicleHasImages) warnings.push(`${path.join(vehicleDir, 'image')}: folder absent, vehicle frames have no camera`);
  if (!infraHasImages) warnings.push(`${path.join(infraDir, 'image')}: folder absent, infrastructure frames have no camera`);

  const pairs: Pair[] = [];
  for (let k = 0; k < cooperativeInfo.length; k++) {
    const entry = cooperativeInfo[k]!;
    const frameId = frameStem(entry.vehicle_pointcloud_path);
    const where = `frame ${frameId}, entry ${k} of ${cooperativeInfoPath}`;
    const missing: { path: string; what: string; detail: string }[] = [];
    const vehicle = vehicleByCloud.get(stripSide(entry.vehicle_pointcloud_path, 'vehicle-side'));
    const infrastructure = infraByCloud.get(stripSide(entry.infrastructure_pointcloud_path, 'infrastructure-side'));
    if (!vehicle) missing.push({ path: vehicleInfoPath, what: `no entry for ${entry.vehicle_pointcloud_path}`, detail: where });
    if (!infrastructure) missing.push({ path: infraInfoPath, what: `no entry for ${entry.infrastructure_pointcloud_path}`, detail: where });
    const required: [string, string][] = [
      [path.join(base, entry.vehicle_pointcloud_path), 'vehicle point cloud'],
      [path.join(base, entry.infrastructure_pointcloud_path), 'infrastructure point cloud'],
      [path.join(base, entry.cooperative_label_path), 'cooperative label'],
    ];
    if (vehicleHasImages) required.push([path.join(base, entry.vehicle_image_path), 'vehicle image']);
    if (infraHasImages) required.push([path.join(base, entry.infrastructure_image_path), 'infrastructure image']);
    if (vehicle) {
      required.push(
        [path.join(vehicleDir, vehicle.calib_lidar_to_novatel_path), 'vehicle calibration lidar_to_novatel'],
        [path.join(vehicleDir, vehicle.calib_novatel_to_world_path), 'vehicle calibration novatel_to_world'],
        [path.join(vehicleDir, vehicle.calib_lidar_to_camera_path), 'vehicle calibration lidar_to_camera'],
        [path.join(vehicleDir, vehicle.calib_camera_intrinsic_path), 'vehicle calibration camera_intrinsic'],
        [path.join(vehicleDir, vehicle.label_lidar_std_path), 'vehicle LiDAR label'],
      );
    }
    if (infrastructure) {
      required.push(
        [path.join(infraDir, infrastructure.calib_virtuallidar_to_world_path), 'infrastructure calibration virtuallidar_to_world'],
        [path.join(infraDir, infrastructure.calib_virtuallidar_to_camera_path), 'infrastructure calibration virtuallidar_to_camera'],
        [path.join(infraDir, infrastructure.calib_camera_intrinsic_path), 'infrastructure calibration camera_intrinsic'],
        [path.join(infraDir, infrastructure.label_lidar_std_path), 'infrastructure LiDAR label'],
      );
    }
    const present = await Promise.all(required.map(([p]) => listing.has(p)));
    required.forEach(([p, what], i) => {
      if (!present[i]) missing.push({ path: p, what: `missing ${what}`, detail: where });
    });
    if (missing.length > 0) {
      const first = missing[0]!;
      if (!opts.skipMissing) throw new DatasetLayoutError(first.path, first.what, `${first.detail}; --skip-missing leaves such frames out`);
      const more = missing.length > 1 ? ` and ${missing.length - 1} more` : '';
      warnings.push(`skipped frame ${frameId}: ${first.path}: ${first.what}${more}`);
      continue;
    }
    pairs.push({
      frameId,
      vehicle: vehicle!,
      infrastructure: infrastructure!,
      offset: { dx: entry.system_error_offset.delta_x, dy: entry.system_error_offset.delta_y },
      cooperativeLabel: path.join(base, entry.cooperative_label_path),
      vehicleImage: vehicleHasImages ? path.join(base, entry.vehicle_image_path) : null,
      infrastructureImage: infraHasImages ? path.join(base, entry.infrastructure_image_path) : null,
    });
  }
  pairs.sort((a, b) => (a.vehicle.pointcloud_timestamp < b.vehicle.pointcloud_timestamp ? -1 : a.vehicle.pointcloud_timestamp > b.vehicle.pointcloud_timestamp ? 1 : 0));

  const frame = async (index: number): Promise<CooperativeFrame> => {
    const pair = pairs[index];
    if (!pair) throw new RangeError(`frame index ${index} out of range 0..${pairs.length - 1}`);
    const [vehicle, infrastructure, cooperativeBoxes] = await Promise.all([
      vehicleFrame(vehicleDir, pair),
      infrastructureFrame(infraDir, pair),
      cooperativeLabels(pair.cooperativeLabel),
    ]);
    return { frameId: pair.frameId, index, timestampNs: vehicle.timestampNs, agents: [vehicle, infrastructure], cooperativeBoxes };
  };

  const sequence: CooperativeSequence = {
    format: 'dair-v2x-c',
    name: 'cooperative',
    root: base,
    agents: [
      { id: 'vehicle', kind: 'vehicle', frames: pairs.length },
      { id: 'infrastructure', kind: 'rsu', frames: pairs.length },
    ],
    frameCount: pairs.length,
    frameIds: pairs.map((p) => p.frameId),
    frame,
    async *frames() {
      for (let i = 0; i < pairs.length; i++) yield await frame(i);
    },
  };
  return { format: 'dair-v2x-c', root: base, scenarios: [sequence], warnings };
}

/**
 * LiDAR-frame labels to world boxes. Labels with a zero size are dropped: DAIR keeps objects annotated only in
 * the image as 3D boxes of size 0 at the LiDAR origin (26 of the 398 vehicle labels in the example). Fallback ids
 * keep the label's index in its file, so they stay the same whatever is dropped.
 */
function labelsToWorld(labels: z.infer<typeof lidarLabelSchema>, lidarToWorld: Mat4, agentId: string): GroundTruthBox[] {
  const boxes: GroundTruthBox[] = [];
  labels.forEach((label, i) => {
    const dims = label['3d_dimensions'];
    if (!(dims.l > 0 && dims.w > 0 && dims.h > 0)) return;
    const loc = label['3d_location'];
    const box: Box7 = { x: loc.x, y: loc.y, z: loc.z, l: dims.l, w: dims.w, h: dims.h, yaw: label.rotation };
    boxes.push({ id: idOf(label, `${agentId}-${i}`), cls: dairClass(label.type), rawClass: label.type, box: transformBox(lidarToWorld, box) });
  });
  return boxes;
}

async function camera(name: string, imagePath: string | null, intrinsic: z.infer<typeof intrinsicSchema>, lidarToCamera: Mat4, calibFile: string): Promise<CameraFrame[]> {
  if (imagePath === null) return [];
  // The vehicle side's intrinsic file states no image size; the image header does.
  const size = intrinsic.width !== undefined && intrinsic.height !== undefined ? { width: intrinsic.width, height: intrinsic.height } : await imageSize(imagePath);
  return [
    {
      name,
      width: size.width,
      height: size.height,
      intrinsic: intrinsicMatrix(intrinsic.cam_K),
      ...(intrinsic.cam_D ? { distortion: intrinsic.cam_D } : {}),
      // DAIR's lidar_to_camera lands in the OpenCV optical frame already (camera z ≈ LiDAR x, camera x ≈ −LiDAR y).
      cameraToLidar: invertCalibration(lidarToCamera, calibFile),
      path: imagePath,
    },
  ];
}

async function vehicleFrame(sideDir: string, pair: Pair): Promise<AgentFrame> {
  const info = pair.vehicle;
  const at = (p: string): string => path.join(sideDir, p);
  const [lidarToNovatel, novatelToWorld, lidarToCamera, intrinsic, labels] = await Promise.all([
    readJson(at(info.calib_lidar_to_novatel_path), lidarToNovatelSchema),
    readJson(at(info.calib_novatel_to_world_path), rigidSchema),
    readJson(at(info.calib_lidar_to_camera_path), rigidSchema),
    readJson(at(info.calib_camera_intrinsic_path), intrinsicSchema),
    readJson(at(info.label_lidar_std_path), lidarLabelSchema),
  ]);
  const lidarToWorld = multiply(dairTransformToMatrix(novatelToWorld), dairTransformToMatrix(lidarToNovatel.transform));
  return agentFrame('vehicle', 'vehicle', at(info.pointcloud_path), info.pointcloud_timestamp, lidarToWorld,
    await camera('front', pair.vehicleImage, intrinsic, dairTransformToMatrix(lidarToCamera), at(info.calib_lidar_to_camera_path)), labelsToWorld(labels, lidarToWorld, 'vehicle'));
}

async function infrastructureFrame(sideDir: string, pair: Pair): Promise<AgentFrame> {
  const info = pair.infrastructure;
  const at = (p: string): string => path.join(sideDir, p);
  const [lidarToWorldCalib, lidarToCamera, intrinsic, labels] = await Promise.all([
    readJson(at(info.calib_virtuallidar_to_world_path), rigidSchema),
    readJson(at(info.calib_virtuallidar_to_camera_path), rigidSchema),
    readJson(at(info.calib_camera_intrinsic_path), intrinsicSchema),
    readJson(at(info.label_lidar_std_path), lidarLabelSchema),
  ]);
  const lidarToWorld = dairTransformToMatrix(lidarToWorldCalib);
  lidarToWorld[3] += pair.offset.dx;
  lidarToWorld[7] += pair.offset.dy;
  return agentFrame('infrastructure', 'rsu', at(info.pointcloud_path), info.pointcloud_timestamp, lidarToWorld,
    await camera('front', pair.infrastructureImage, intrinsic, dairTransformToMatrix(lidarToCamera), at(info.calib_virtuallidar_to_camera_path)), labelsToWorld(labels, lidarToWorld, 'infrastructure'));
}

function agentFrame(agentId: string, kind: AgentKind, lidarPath: string, timestampUs: bigint, lidarToWorld: Mat4, cameras: CameraFrame[], boxes: GroundTruthBox[]): AgentFrame {
  return {
    agentId,
    kind,
    timestampNs: timestampUs * 1000n,
    lidarToWorld,
    lidarPath,
    loadPoints: () => readPcdXyzi(lidarPath),
    cameras,
    boxes,
  };
}

async function cooperativeLabels(file: string): Promise<GroundTruthBox[]> {
  const labels = await readJson(file, worldLabelSchema);
  return labels.map((label, i) => ({
    id: idOf(label, `cooperative-${i}`),
    cls: dairClass(label.type),
    rawClass: label.type,
    box: worldCornersToBox(label.world_8_points, label['3d_dimensions']),
  }));
}
