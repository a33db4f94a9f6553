// Scenario descriptions for the simulator: a JSON file says what world to build (layout), how much traffic to put
// in it, which agents carry sensors (connected vehicles and roadside units) and how noisy those sensors are.
// Files are validated here so that a typo fails at load time with the file and the field path in the message,
// not as a NaN deep inside the traffic model.

import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** The LiDAR presets the sensor module defines (src/sim/lidar.ts LIDAR_PRESETS). */
export const LIDAR_PRESET_NAMES = ['vlp16', 'hdl32', 'hdl64', 'rsu-pole'] as const;
export type LidarPresetName = (typeof LIDAR_PRESET_NAMES)[number];

export const TURNS = ['straight', 'left', 'right'] as const;
export type Turn = (typeof TURNS)[number];

export const VEHICLE_CLASSES = ['car', 'van', 'truck', 'bus'] as const;
export type VehicleClass = (typeof VEHICLE_CLASSES)[number];

/** The package root (holds datasets/), found from this file rather than the working directory. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SCENARIO_DIR = path.join(PACKAGE_ROOT, 'datasets', 'scenarios');

export class ScenarioError extends Error {
  /** The CLI reports errors marked so as one line with an input-error exit code. */
  readonly userFacing = true;
  /**
   * @param file the scenario file as the user named it (or a label for in-memory scenarios)
   * @param field the field path inside the file, e.g. `agents[1].lidar`; '(file)' or '(json)' for whole-file problems
   */
  constructor(readonly file: string, readonly field: string, readonly detail: string) {
    super(`${file}: ${field}: ${detail}`);
    this.name = new.target.name;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Schema

const finite = z.number().refine(Number.isFinite, 'expected a finite number');
const positive = finite.refine((v) => v > 0, 'expected a number > 0');
const nonNegative = finite.refine((v) => v >= 0, 'expected a number ≥ 0');
const count = z.number().int('expected an integer').min(0, 'expected an integer ≥ 0');
const vec2 = z.tuple([finite, finite]);
const range = (lo: number, hi: number) =>
  z
    .tuple([finite, finite])
    .refine(([a, b]) => a <= b, 'expected [min, max] with min ≤ max')
    .refine(([a, b]) => a >= lo && b <= hi, `expected values within [${lo}, ${hi}]`);
const between = (lo: number, hi: number) => finite.refine((v) => v >= lo && v <= hi, `expected a number in [${lo}, ${hi}]`);
const enumOf = <T extends readonly [string, ...string[]]>(values: T) => z.enum(values, { error: () => `expected one of ${values.join('|')}` });

const signalSchema = z
  .object({
    /** Green time of each of the two phases (along x, along y), seconds. */
    greenS: between(3, 120),
    amberS: between(0, 10),
    allRedS: between(0, 10),
  })
  .strict();

const buildingsSchema = z
  .object({
    heightRangeM: range(2, 300),
    /** Edge length of the lots a block is cut into. */
    lotSizeM: range(5, 200),
    /** Gap between a building and its lot edge. */
    setbackM: range(0, 30),
    emptyLotFraction: between(0, 1),
    /** How far from the street buildings reach into a block (the open country beyond is left empty). */
    depthM: positive.optional(),
  })
  .strict();

const urbanCommon = {
  laneWidthM: between(2.5, 5),
  sidewalkWidthM: between(2, 8),
  /** A parking strip along each curb (parked vehicles stand there). */
  parking: z.boolean(),
  speedLimitKmh: between(10, 130),
  signal: signalSchema,
  buildings: buildingsSchema,
  /** Distance between street trees along a sidewalk; 0 for none. */
  streetTreeSpacingM: nonNegative,
  /** Distance between street lights; 0 for none. */
  streetLightSpacingM: nonNegative,
};

const intersectionLayoutSchema = z
  .object({
    type: z.literal('intersection'),
    /** Lanes per direction of the street along x. */
    mainLanesPerDirection: z.number().int().min(1).max(4),
    /** Lanes per direction of the street along y. */
    sideLanesPerDirection: z.number().int().min(1).max(4),
    /** Length of each of the four arms from the junction centre. */
    armLengthM: between(40, 2000),
    ...urbanCommon,
  })
  .strict();

const gridLayoutSchema = z
  .object({
    type: z.literal('grid'),
    blocksX: z.number().int().min(1).max(10),
    blocksY: z.number().int().min(1).max(10),
    /** Distance between neighbouring street centre lines along x and along y. */
    blockSizeM: z.tuple([between(30, 500), between(30, 500)]),
    lanesPerDirection: z.number().int().min(1).max(4),
    /** Extra area beyond the outermost streets (outer blocks, map edge). */
    marginM: between(10, 1000),
    ...urbanCommon,
  })
  .strict();

const highwayLayoutSchema = z
  .object({
    type: z.literal('highway-onramp'),
    lengthM: between(200, 5000),
    lanesPerDirection: z.number().int().min(1).max(5),
    laneWidthM: between(2.5, 5),
    medianWidthM: between(0.5, 40),
    shoulderWidthM: between(0, 6),
    speedLimitKmh: between(30, 160),
    onramp: z
      .object({
        /** x of the point where the ramp's acceleration lane starts to merge into the rightmost lane. */
        mergeXM: finite,
        accelerationLaneM: between(20, 500),
        taperM: between(20, 300),
        radiusM: between(20, 500),
        speedLimitKmh: between(20, 130),
      })
      .strict(),
    /** Concrete barrier in the median and guard rails on the outer edges. */
    medianBarrier: z.boolean(),
    guardRails: z.boolean(),
    /** Spacing of the trees along both verges ([min, max]); [0, 0] for none. */
    treeSpacingM: range(0, 1000),
    /** A noise wall along the westbound (north) verge. */
    noiseWall: z.object({ fromXM: finite, toXM: finite, heightM: between(1, 10) }).strict().optional(),
    /** Large low buildings (warehouses) beyond the verges. */
    warehouses: count,
  })
  .strict();

const layoutSchema = z.discriminatedUnion('type', [intersectionLayoutSchema, gridLayoutSchema, highwayLayoutSchema], {
  error: () => 'expected type one of intersection|grid|highway-onramp',
});

const vehicleMixSchema = z
  .object({ car: nonNegative, van: nonNegative, truck: nonNegative, bus: nonNegative })
  .strict()
  .refine((m) => m.car + m.van + m.truck + m.bus > 0, 'at least one class needs a weight > 0');

const trafficSchema = z
  .object({
    /** Moving vehicles per km of driving lane (the count is kept up by spawning at the map edges). */
    vehiclesPerKmOfLane: positive.optional(),
    /** Or an absolute number of moving vehicles (connected vehicles not included). */
    vehicleCount: count.optional(),
    vehicleMix: vehicleMixSchema,
    parkedVehicles: count,
    pedestrians: count,
    /** Relative weights of the turns a vehicle picks at a junction (among those its lane allows). */
    turnWeights: z.object({ straight: nonNegative, left: nonNegative, right: nonNegative }).strict().optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if ((t.vehiclesPerKmOfLane === undefined) === (t.vehicleCount === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of vehiclesPerKmOfLane | vehicleCount', path: ['vehiclesPerKmOfLane'] });
    }
  });

const lidarOverridesSchema = z
  .object({
    beams: z.number().int().min(1).max(256).optional(),
    verticalFovDeg: range(-90, 90).optional(),
    horizontalResolutionDeg: between(0.01, 10).optional(),
    rangeM: between(1, 500).optional(),
  })
  .strict();

const vehicleAgentSchema = z
  .object({
    type: z.literal('vehicle'),
    /** Snapped to the nearest driving lane whose direction is within 45° of headingDeg. */
    spawn: z.object({ positionM: vec2, headingDeg: finite }).strict(),
    /** Turns to take at the next junctions, in order; afterwards turns are random. */
    route: z.array(enumOf(TURNS)).optional(),
    vehicleClass: z.enum(['car', 'van'], { error: () => 'expected one of car|van' }).optional(),
    /** Desired speed; defaults to the lane's limit. */
    speedKmh: between(1, 160).optional(),
    lidar: enumOf(LIDAR_PRESET_NAMES),
    lidarOverrides: lidarOverridesSchema.optional(),
    /** The four OPV2V cameras (front, right, left, back) or none. */
    cameras: z.boolean(),
  })
  .strict();

const rsuCameraSchema = z
  .object({
    /** Relative to the unit's yaw, counter-clockwise. */
    yawDeg: finite,
    /** Positive looks down. */
    pitchDownDeg: between(-30, 90),
  })
  .strict();

const rsuAgentSchema = z
  .object({
    type: z.literal('rsu'),
    positionM: vec2,
    /** Direction the LiDAR's x axis faces, counter-clockwise from +x. */
    yawDeg: finite,
    poleHeightM: between(3, 15),
    lidar: enumOf(LIDAR_PRESET_NAMES),
    lidarOverrides: lidarOverridesSchema.optional(),
    /** Positive tilts the LiDAR down. */
    lidarPitchDownDeg: between(-30, 60).optional(),
    cameras: z.array(rsuCameraSchema).max(4),
  })
  .strict();

const agentSchema = z.discriminatedUnion('type', [vehicleAgentSchema, rsuAgentSchema], {
  error: () => 'expected type one of vehicle|rsu',
});

const cameraModelSchema = z
  .object({
    width: z.number().int().min(8).max(4096),
    height: z.number().int().min(8).max(4096),
    horizontalFovDeg: between(20, 150),
  })
  .strict();

const noiseSchema = z
  .object({
    /** GPS-grade localisation error written as noisy_lidar_pose: std of x and y, and of the heading. */
    gpsPositionStdM: nonNegative,
    gpsHeadingStdDeg: nonNegative,
    /** Override the LiDAR presets' range noise and dropout for every agent. */
    lidarRangeNoiseStdM: nonNegative.optional(),
    lidarDropoutProbability: between(0, 1).optional(),
  })
  .strict();

export const scenarioSchema = z
  .object({
    name: z.string().min(1),
    description: z.string(),
    layout: layoutSchema,
    traffic: trafficSchema,
    agents: z.array(agentSchema).min(1, 'expected at least one agent'),
    camera: cameraModelSchema,
    noise: noiseSchema,
    /** Traffic steps (10 Hz) run before the first recorded frame, so queues and spacing look settled. */
    warmupSteps: count,
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.layout.type === 'highway-onramp' && s.traffic.pedestrians > 0) {
      ctx.addIssue({ code: 'custom', message: 'a highway layout has no sidewalks: pedestrians must be 0', path: ['traffic', 'pedestrians'] });
    }
    if (s.layout.type === 'highway-onramp' && s.traffic.parkedVehicles > 0) {
      ctx.addIssue({ code: 'custom', message: 'a highway layout has no parking strips: parkedVehicles must be 0', path: ['traffic', 'parkedVehicles'] });
    }
    if (s.layout.type !== 'highway-onramp' && !s.layout.parking && s.traffic.parkedVehicles > 0) {
      ctx.addIssue({ code: 'custom', message: 'layout.parking is false: parkedVehicles must be 0', path: ['traffic', 'parkedVehicles'] });
    }
  });

export type ScenarioData = z.infer<typeof scenarioSchema>;
export type Layout = ScenarioData['layout'];
export type IntersectionLayout = z.infer<typeof intersectionLayoutSchema>;
export type GridLayout = z.infer<typeof gridLayoutSchema>;
export type HighwayLayout = z.infer<typeof highwayLayoutSchema>;
export type AgentSpec = ScenarioData['agents'][number];
export type VehicleAgentSpec = z.infer<typeof vehicleAgentSchema>;
export type RsuAgentSpec = z.infer<typeof rsuAgentSchema>;
export type LidarOverrides = z.infer<typeof lidarOverridesSchema>;

export interface Scenario extends ScenarioData {
  /** Where it came from (the path as the user gave it, or datasets/scenarios/NAME.json for a built-in one). */
  source: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Loading

/** `agents[1].lidar` from ['agents', 1, 'lidar']. */
export function formatFieldPath(p: readonly PropertyKey[]): string {
  let out = '';
  for (const k of p) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out === '' ? '(document)' : out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && /received undefined/.test(issue.message)) return `missing (required: ${issue.expected})`;
  if (issue.code === 'unrecognized_keys') return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
  return issue.message.replace(/^Invalid input: /, '');
}

/** Validates parsed JSON; `source` names the file in errors. */
export function parseScenario(json: unknown, source: string): Scenario {
  const result = scenarioSchema.safeParse(json);
  if (!result.success) {
    // Report the first issue in document order: one clear message beats a wall of them.
    const issue = result.error.issues[0];
    let p = [...issue.path];
    if (issue.code === 'unrecognized_keys' && issue.keys.length === 1) p = [...p, issue.keys[0]];
    throw new ScenarioError(source, formatFieldPath(p), describeIssue(issue));
  }
  return { ...result.data, source };
}

function isBareName(nameOrPath: string): boolean {
  return !nameOrPath.includes('/') && !nameOrPath.includes('\\') && !nameOrPath.endsWith('.json');
}

/** A built-in scenario by name (datasets/scenarios/NAME.json in the package) or a JSON file path. */
export async function loadScenario(nameOrPath: string): Promise<Scenario> {
  const bare = isBareName(nameOrPath);
  const file = bare ? path.join(SCENARIO_DIR, `${nameOrPath}.json`) : path.resolve(nameOrPath);
  const label = bare ? `datasets/scenarios/${nameOrPath}.json` : nameOrPath;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const known = await listScenarios().catch(() => [] as string[]);
      throw new ScenarioError(label, '(file)', `not found${bare ? `; built-in scenarios: ${known.join(', ') || '(none)'}` : ''}`);
    }
    throw new ScenarioError(label, '(file)', `cannot read: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ScenarioError(label, '(json)', (err as Error).message);
  }
  return parseScenario(json, label);
}

/** Names of the built-in scenarios, sorted. */
export async function listScenarios(): Promise<string[]> {
  const entries = await readdir(SCENARIO_DIR);
  return entries.filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -'.json'.length)).sort();
}
