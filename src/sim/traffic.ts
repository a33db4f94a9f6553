// Traffic on the static world: vehicles that follow lanes with the Intelligent Driver Model, pass junctions
// through reserved conflict-free connectors (signalised) or merge into gaps (merge junctions), leave at the map
// edges and are replaced by new ones; parked vehicles along the kerbs; pedestrians on sidewalks and crosswalks.
// Every vehicle and pedestrian is built from several boxes (body, cabin, wheels; legs, torso, head) so that LiDAR
// returns look like what they are; its ground-truth box is the full extent of those parts.
//
// One step is 0.1 s (10 Hz). Everything random comes from the Rng handed in, in a fixed order, so the same seed
// gives the same traffic.

import type { Box7 } from '../geometry/index.ts';
import type { Scene, ScenePrimitive, SurfaceKind } from './scene.ts';
import type { Rng } from './random.ts';
import { type Scenario, ScenarioError, type Turn, type VehicleClass, type VehicleAgentSpec } from './scenario.ts';
import { type Lane, type PathPoint, type Walkway, type World, pointAt, signalState, snapToLane } from './world.ts';

export const STEP_SECONDS = 0.1;

// ---------------------------------------------------------------------------------------------------------------
// Shapes

type Rgb = [number, number, number];

export interface ActorPart {
  /** Centre in the actor frame (x forward, y left, z up from the ground). */
  x: number;
  y: number;
  z: number;
  l: number;
  w: number;
  h: number;
  surface: SurfaceKind;
  reflectivity: number;
  color: Rgb;
}

export interface ActorShape {
  cls: VehicleClass | 'pedestrian';
  /** Full extent of the parts: the ground-truth box size (centred at x = y = 0, from z = 0 to h). */
  length: number;
  width: number;
  height: number;
  parts: ActorPart[];
}

const PAINT: Rgb[] = [
  [235, 235, 232], [20, 20, 22], [170, 172, 176], [96, 98, 104], [150, 24, 28], [28, 52, 120], [40, 80, 150], [34, 70, 48], [200, 160, 40], [120, 60, 30],
];
const GLASS: Rgb = [38, 46, 56];
const TYRE: Rgb = [24, 24, 24];
const CLOTHES: Rgb[] = [[30, 34, 60], [60, 60, 62], [140, 30, 30], [200, 190, 170], [40, 90, 60], [220, 220, 215], [90, 70, 50]];
const SKIN: Rgb[] = [[224, 188, 160], [196, 150, 112], [140, 100, 70], [90, 62, 44]];

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function paintReflectivity(c: Rgb): number {
  const luminance = (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255;
  return 0.15 + 0.5 * luminance;
}

function part(x: number, y: number, zBottom: number, l: number, w: number, h: number, surface: SurfaceKind, reflectivity: number, color: Rgb): ActorPart {
  return { x, y, z: zBottom + h / 2, l, w, h, surface, reflectivity, color };
}

function wheels(xs: number[], width: number, radius: number, tyreWidth: number): ActorPart[] {
  const out: ActorPart[] = [];
  for (const x of xs) for (const side of [1, -1]) out.push(part(x, side * (width / 2 - tyreWidth / 2), 0, 2 * radius, tyreWidth, 2 * radius, 'vehicle-wheel', 0.05, TYRE));
  return out;
}

/** A vehicle of the class with dimensions drawn from realistic spreads. */
export function makeVehicleShape(cls: VehicleClass, rng: Rng): ActorShape {
  const paint = rng.pick(PAINT);
  const refl = paintReflectivity(paint);
  if (cls === 'car') {
    // Sedans, hatchbacks and SUVs.
    const kind = rng.next();
    let L: number, W: number, H: number, cabinLen: number, cabinRear: number, r: number;
    if (kind < 0.5) {
      L = clamp(rng.gaussian(4.6, 0.25), 4.2, 5.1); W = clamp(rng.gaussian(1.82, 0.05), 1.7, 1.95); H = clamp(rng.gaussian(1.46, 0.05), 1.36, 1.58);
      cabinLen = 0.48 * L; cabinRear = -L / 2 + 0.22 * L; r = 0.32;
    } else if (kind < 0.75) {
      L = clamp(rng.gaussian(4.1, 0.2), 3.7, 4.4); W = clamp(rng.gaussian(1.76, 0.05), 1.65, 1.85); H = clamp(rng.gaussian(1.5, 0.05), 1.4, 1.6);
      cabinLen = 0.58 * L; cabinRear = -L / 2 + 0.08 * L; r = 0.31;
    } else {
      L = clamp(rng.gaussian(4.7, 0.2), 4.3, 5.1); W = clamp(rng.gaussian(1.89, 0.05), 1.8, 2.0); H = clamp(rng.gaussian(1.72, 0.07), 1.6, 1.85);
      cabinLen = 0.6 * L; cabinRear = -L / 2 + 0.07 * L; r = 0.36;
    }
    const belt = 0.6 * H;
    return {
      cls, length: L, width: W, height: H,
      parts: [
        part(0, 0, 0.22, L, W - 0.06, belt - 0.22, 'vehicle-body', refl, paint),
        part(cabinRear + cabinLen / 2, 0, belt, cabinLen, W - 0.2, H - belt, 'vehicle-cabin', 0.12, GLASS),
        ...wheels([0.3 * L, -0.3 * L], W, r, 0.22),
      ],
    };
  }
  if (cls === 'van') {
    const L = clamp(rng.gaussian(5.3, 0.35), 4.7, 6.2);
    const W = clamp(rng.gaussian(2.0, 0.05), 1.9, 2.1);
    const H = clamp(rng.gaussian(2.2, 0.2), 1.9, 2.7);
    const hood = 0.9;
    const belt = 1.1;
    return {
      cls, length: L, width: W, height: H,
      parts: [
        part(0, 0, 0.28, L, W - 0.06, belt - 0.28, 'vehicle-body', refl, paint),
        part(-hood / 2, 0, belt, L - hood - 0.05, W - 0.1, H - belt, 'vehicle-body', refl, paint),
        // Windscreen and cab windows as a glass band at the front of the upper box.
        part(L / 2 - hood - 0.35, 0, belt + 0.1, 0.7, W - 0.08, (H - belt) * 0.6, 'vehicle-cabin', 0.12, GLASS),
        ...wheels([L / 2 - 0.95, -L / 2 + 1.1], W, 0.36, 0.24),
      ],
    };
  }
  if (cls === 'truck') {
    const L = clamp(rng.gaussian(8.5, 1.4), 6.5, 12);
    const W = clamp(rng.gaussian(2.45, 0.04), 2.35, 2.55);
    const H = clamp(rng.gaussian(3.4, 0.3), 2.9, 3.9);
    const cabLen = 2.2;
    const cabTop = Math.min(H - 0.05, 3.0);
    const cargoLen = L - cabLen - 0.3;
    const cargo = rng.pick<Rgb>([[230, 230, 228], [200, 200, 196], [70, 90, 130], [160, 40, 36]]);
    return {
      cls, length: L, width: W, height: H,
      parts: [
        part(0, 0, 0.5, L, W - 0.3, 0.6, 'vehicle-body', 0.3, [50, 50, 52]),
        part(L / 2 - cabLen / 2, 0, 0.5, cabLen, W - 0.1, cabTop - 0.5, 'vehicle-body', refl, paint),
        part(L / 2 - 0.15, 0, 1.6, 0.3, W - 0.2, cabTop - 1.9, 'vehicle-cabin', 0.12, GLASS),
        part(-L / 2 + cargoLen / 2, 0, 1.1, cargoLen, W, H - 1.1, 'vehicle-body', paintReflectivity(cargo), cargo),
        ...wheels([L / 2 - 1.3, -L / 2 + 1.4, -L / 2 + 2.7], W, 0.5, 0.32),
      ],
    };
  }
  // Bus.
  const L = clamp(rng.gaussian(12, 0.3), 10.5, 12.5);
  const W = clamp(rng.gaussian(2.55, 0.02), 2.5, 2.6);
  const H = clamp(rng.gaussian(3.1, 0.1), 2.9, 3.4);
  const livery = rng.pick<Rgb>([[200, 40, 40], [240, 200, 40], [40, 110, 180], [235, 235, 232]]);
  const lr = paintReflectivity(livery);
  return {
    cls, length: L, width: W, height: H,
    parts: [
      part(0, 0, 0.32, L, W, 0.95, 'vehicle-body', lr, livery),
      part(0, 0, 1.27, L - 0.2, W - 0.04, H - 1.27 - 0.35, 'vehicle-cabin', 0.12, GLASS),
      part(0, 0, H - 0.35, L - 0.1, W, 0.35, 'vehicle-body', lr, livery),
      ...wheels([L / 2 - 2.6, -L / 2 + 3.0], W, 0.5, 0.3),
    ],
  };
}

export function makePedestrianShape(rng: Rng): ActorShape {
  const H = clamp(rng.gaussian(1.72, 0.08), 1.5, 1.95);
  const top = rng.pick(CLOTHES);
  const legs = rng.pick(CLOTHES);
  const skin = rng.pick(SKIN);
  return {
    cls: 'pedestrian', length: 0.4, width: 0.48, height: H,
    parts: [
      part(0, 0, 0, 0.4, 0.34, 0.47 * H, 'pedestrian', 0.3, legs),
      part(0, 0, 0.47 * H, 0.28, 0.48, 0.35 * H, 'pedestrian', 0.35, top),
      part(0.02, 0, 0.82 * H, 0.22, 0.2, 0.18 * H, 'pedestrian', 0.35, skin),
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Actors

export interface Vehicle {
  id: number;
  shape: ActorShape;
  /** A connected vehicle (an agent with sensors); never removed from the world. */
  connected: boolean;
  /** Lanes ahead, route[0] the current one. */
  route: number[];
  /** The lane before the current one (the tail may still be on it); -1 when none. */
  prevLane: number;
  /** Arc length of the centre along route[0]. */
  s: number;
  /** Speed, m/s. */
  v: number;
  acc: number;
  /** Desired speed as a fraction of the lane's limit; or a fixed desired speed (m/s) for connected vehicles. */
  speedFactor: number;
  fixedSpeed: number | null;
  timeHeadway: number;
  maxAccel: number;
  comfortDecel: number;
  /** Connectors this vehicle may drive on now (granted), in any junction. */
  held: number[];
  /** Remaining planned turns (connected vehicles). */
  plan: Turn[];
  /** World pose of the geometric centre (z = height / 2), recomputed after every step. */
  x: number;
  y: number;
  yaw: number;
}

export interface ParkedVehicle {
  id: number;
  shape: ActorShape;
  x: number;
  y: number;
  yaw: number;
}

export interface Pedestrian {
  id: number;
  shape: ActorShape;
  walkway: number;
  s: number;
  /** +1 walking from the walkway's `from` node to its `to` node. */
  dir: 1 | -1;
  speed: number;
  /** Offset from the walkway centre line (left of its from→to direction). */
  lateral: number;
  /** Crosswalk waited for at a corner, -1 when walking. */
  waitingFor: number;
  /** The corner (walk node) where it waits. */
  waitNode: number;
  waitedSteps: number;
  x: number;
  y: number;
  yaw: number;
  /** Current speed (0 while waiting). */
  v: number;
}

/** Ground truth of one actor: its full extent as a box in the world frame. */
export interface ActorBox extends Box7 {
  id: number;
  cls: VehicleClass | 'pedestrian';
  /** m/s */
  speed: number;
}

/** Where a roadside unit stands (from the scenario). */
export interface RoadsideUnit {
  id: number;
  agentIndex: number;
  x: number;
  y: number;
  yaw: number;
  poleHeight: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Simulation

const LOOKAHEAD_M = 200;
const JAM_GAP_M = 2;
const STOP_GAP_M = 0.5;
const MAX_DECEL = 9;
/** A left turner yields to oncoming traffic that would reach the junction within this time. */
const YIELD_TIME_S = 4;
const FIRST_ACTOR_ID = 100;
const DEFAULT_TURN_WEIGHTS = { straight: 0.6, left: 0.2, right: 0.2 };

interface Obstacle {
  /** From the vehicle's front to the obstacle (a leader's tail or a stop line). */
  gap: number;
  speed: number;
  jam: number;
}

export class TrafficSimulation {
  readonly world: World;
  readonly vehicles: Vehicle[] = [];
  readonly parked: ParkedVehicle[] = [];
  readonly pedestrians: Pedestrian[] = [];
  readonly roadsideUnits: RoadsideUnit[] = [];
  /** Agent index in the scenario → actor id (connected vehicles) or negative RSU id. */
  readonly agentActorIds: number[] = [];
  step = 0;
  time = 0;

  private nextId = FIRST_ACTOR_ID;
  private readonly rng: Rng;
  private readonly pedRng: Rng;
  private readonly mix: Array<[VehicleClass, number]>;
  private readonly turnWeights: { straight: number; left: number; right: number };
  private readonly targetMoving: number;
  /** Vehicles per lane sorted by s, rebuilt every step. */
  private readonly onLane: Vehicle[][];
  /** Holders per connector. */
  private readonly holders: Vehicle[][];
  /** Pedestrians on each crosswalk. */
  private readonly crossing: number[];
  private readonly entryLanes: number[];
  /** Entry lanes kept free of new vehicles for a connected vehicle waiting to turn back into the map. */
  private readonly reservedEntries = new Set<number>();
  private readonly scratch: PathPoint = { x: 0, y: 0, heading: 0 };
  private readonly scratch2: PathPoint = { x: 0, y: 0, heading: 0 };

  constructor(world: World, scenario: Scenario, rng: Rng) {
    this.world = world;
    this.rng = rng.fork('vehicles');
    this.pedRng = rng.fork('pedestrians');
    const parkRng = rng.fork('parked');
    const t = scenario.traffic;
    this.mix = (Object.entries(t.vehicleMix) as Array<[VehicleClass, number]>).filter(([, w]) => w > 0);
    this.turnWeights = t.turnWeights ?? DEFAULT_TURN_WEIGHTS;
    this.onLane = world.lanes.map(() => []);
    this.holders = world.lanes.map(() => []);
    this.crossing = world.walkways.map(() => 0);
    this.entryLanes = world.lanes.filter((l) => l.entry).map((l) => l.id);
    const laneKm = world.lanes.filter((l) => l.kind === 'road').reduce((a, l) => a + l.path.length, 0) / 1000;
    this.targetMoving = t.vehicleCount ?? Math.round((t.vehiclesPerKmOfLane ?? 0) * laneKm);

    // Connected vehicles first: they get the lowest actor ids, like the ego vehicles of a CARLA scenario.
    let rsuId = -1;
    scenario.agents.forEach((agent, i) => {
      if (agent.type === 'vehicle') this.agentActorIds[i] = this.spawnConnected(agent, i, scenario.source).id;
      else {
        const id = rsuId--;
        this.agentActorIds[i] = id;
        this.roadsideUnits.push({ id, agentIndex: i, x: agent.positionM[0], y: agent.positionM[1], yaw: (agent.yawDeg * Math.PI) / 180, poleHeight: agent.poleHeightM });
      }
    });
    this.populate();
    this.placeParked(t.parkedVehicles, parkRng);
    this.placePedestrians(t.pedestrians);
    this.indexLanes();
    for (const v of this.vehicles) this.updatePose(v);
  }

  // ---- setup ----

  private newId(): number {
    return this.nextId++;
  }

  private randomClass(): VehicleClass {
    const total = this.mix.reduce((a, [, w]) => a + w, 0);
    let u = this.rng.next() * total;
    for (const [cls, w] of this.mix) {
      if ((u -= w) < 0) return cls;
    }
    return this.mix[this.mix.length - 1][0];
  }

  private makeVehicle(id: number, shape: ActorShape, lane: number, s: number, v: number, connected: boolean): Vehicle {
    const heavy = shape.cls === 'truck' || shape.cls === 'bus';
    const rng = this.rng;
    return {
      id, shape, connected, route: [lane], prevLane: -1, s, v, acc: 0,
      speedFactor: heavy ? rng.uniform(0.8, 0.95) : rng.uniform(0.88, 1.08),
      fixedSpeed: null,
      timeHeadway: heavy ? rng.uniform(1.6, 2.0) : rng.uniform(1.1, 1.6),
      maxAccel: heavy ? rng.uniform(0.8, 1.1) : shape.cls === 'van' ? rng.uniform(1.2, 1.6) : rng.uniform(1.5, 2.2),
      comfortDecel: heavy ? 2.0 : 2.5,
      held: [], plan: [], x: 0, y: 0, yaw: 0,
    };
  }

  private spawnConnected(agent: VehicleAgentSpec, index: number, source: string): Vehicle {
    const [px, py] = agent.spawn.positionM;
    const heading = (agent.spawn.headingDeg * Math.PI) / 180;
    const snap = snapToLane(this.world, px, py, heading);
    if (!snap || snap.distance > 8) {
      throw new ScenarioError(source, `agents[${index}].spawn`, `no driving lane heading ${agent.spawn.headingDeg}° within 8 m of (${px}, ${py})${snap ? ` (nearest is ${snap.distance.toFixed(1)} m away)` : ''}`);
    }
    const shape = makeVehicleShape(agent.vehicleClass ?? 'car', this.rng);
    const lane = snap.lane;
    const s = clamp(snap.s, shape.length / 2 + 0.5, lane.path.length - shape.length / 2 - 0.5);
    for (const other of this.vehicles) {
      if (other.route[0] === lane.id && Math.abs(other.s - s) < (other.shape.length + shape.length) / 2 + 2) {
        throw new ScenarioError(source, `agents[${index}].spawn`, `overlaps connected vehicle ${other.id} on the same lane`);
      }
    }
    const v = this.makeVehicle(this.newId(), shape, lane.id, s, 0, true);
    if (agent.speedKmh !== undefined) v.fixedSpeed = agent.speedKmh / 3.6;
    v.v = 0.7 * this.desiredSpeed(v, lane);
    v.plan = [...(agent.route ?? [])];
    this.checkPlan(v, index, source);
    this.extendRoute(v);
    this.vehicles.push(v);
    return v;
  }

  /** Walks the planned turns through the lane graph so an impossible turn fails at load time, naming it. */
  private checkPlan(v: Vehicle, index: number, source: string): void {
    let lane = this.world.lanes[v.route[0]];
    for (let k = 0; k < v.plan.length; k++) {
      // Follow the lanes to the next signalised junction.
      while (lane.successors.length > 0 && !this.entersJunction(lane)) lane = this.world.lanes[lane.successors[0]];
      if (lane.successors.length === 0) {
        throw new ScenarioError(source, `agents[${index}].route[${k}]`, `the route leaves the map before this turn (${k} junction${k === 1 ? '' : 's'} on the way)`);
      }
      const options = lane.successors.map((id) => this.world.lanes[id]);
      const next = options.find((c) => c.turn === v.plan[k]);
      if (!next) {
        const j = this.world.junctions[options[0].junction];
        throw new ScenarioError(source, `agents[${index}].route[${k}]`, `no '${v.plan[k]}' from this lane at the junction at (${j.x.toFixed(0)}, ${j.y.toFixed(0)}); it allows ${options.map((c) => c.turn).join('|')}`);
      }
      lane = this.world.lanes[next.successors[0]];
    }
  }

  /** Initial traffic spread over the road lanes with safe spacing. */
  private populate(): void {
    const roads = this.world.lanes.filter((l) => l.kind === 'road');
    const total = roads.reduce((a, l) => a + l.path.length, 0);
    const placed: Vehicle[][] = this.world.lanes.map(() => []);
    for (const v of this.vehicles) placed[v.route[0]].push(v);
    let made = 0;
    for (let tries = 0; made < this.targetMoving && tries < this.targetMoving * 30; tries++) {
      let u = this.rng.next() * total;
      let lane = roads[roads.length - 1];
      for (const l of roads) {
        if ((u -= l.path.length) < 0) { lane = l; break; }
      }
      const shape = makeVehicleShape(this.randomClass(), this.rng);
      const len = lane.path.length;
      if (len < shape.length + 2) continue;
      const s = this.rng.uniform(shape.length / 2 + 0.5, len - shape.length / 2 - 0.5);
      if (placed[lane.id].some((o) => Math.abs(o.s - s) < (o.shape.length + shape.length) / 2 + 8)) continue;
      const v = this.makeVehicle(this.newId(), shape, lane.id, s, 0, false);
      const toEnd = len - s - shape.length / 2;
      v.v = Math.min(this.rng.uniform(0.4, 0.8) * this.desiredSpeed(v, lane), Math.sqrt(2 * 2 * Math.max(0, toEnd - 5)));
      this.extendRoute(v);
      this.vehicles.push(v);
      placed[lane.id].push(v);
      made++;
    }
  }

  private placeParked(count: number, rng: Rng): void {
    const spots = this.world.parkingSpots;
    const used = new Set<number>();
    for (let k = 0; k < count && used.size < spots.length; k++) {
      let i = rng.int(0, spots.length - 1);
      while (used.has(i)) i = (i + 1) % spots.length;
      used.add(i);
      const spot = spots[i];
      const shape = makeVehicleShape(rng.next() < 0.88 ? 'car' : 'van', rng);
      if (shape.length > spot.maxLength) continue;
      // Parked cars are not perfectly aligned with the kerb.
      const yaw = spot.yaw + rng.gaussian(0, 0.02);
      this.parked.push({ id: this.newId(), shape, x: spot.x + rng.uniform(-0.4, 0.4) * Math.cos(spot.yaw), y: spot.y + rng.uniform(-0.4, 0.4) * Math.sin(spot.yaw), yaw: Math.atan2(Math.sin(yaw), Math.cos(yaw)) });
    }
    // Ids are allocated in spot order above; sort so listings are stable.
    this.parked.sort((a, b) => a.id - b.id);
  }

  private placePedestrians(count: number): void {
    const sidewalks = this.world.walkways.filter((w) => w.kind === 'sidewalk');
    if (count > 0 && sidewalks.length === 0) return;
    const total = sidewalks.reduce((a, w) => a + w.path.length, 0);
    for (let k = 0; k < count; k++) {
      let u = this.pedRng.next() * total;
      let w = sidewalks[sidewalks.length - 1];
      for (const c of sidewalks) {
        if ((u -= c.path.length) < 0) { w = c; break; }
      }
      const shape = makePedestrianShape(this.pedRng);
      let s = this.pedRng.uniform(0, w.path.length);
      let dir: 1 | -1 = this.pedRng.next() < 0.5 ? 1 : -1;
      // Most pedestrians start within a block's reach of a junction, heading for it: that is where they meet
      // traffic, and where sensors look.
      if (this.pedRng.next() < 0.75) {
        const near = Math.min(40, w.path.length);
        if (this.isCorner(w.from) && (!this.isCorner(w.to) || this.pedRng.next() < 0.5)) { s = this.pedRng.uniform(0, near); dir = -1; }
        else if (this.isCorner(w.to)) { s = w.path.length - this.pedRng.uniform(0, near); dir = 1; }
      }
      const p: Pedestrian = {
        id: this.newId(), shape, walkway: w.id,
        s,
        dir,
        speed: clamp(this.pedRng.gaussian(1.35, 0.15), 0.9, 1.8),
        lateral: this.pedRng.uniform(-1, 1) * Math.max(0, w.width / 2 - 1.2),
        waitingFor: -1, waitNode: -1, waitedSteps: 0, x: 0, y: 0, yaw: 0, v: 0,
      };
      this.pedestrianPose(p);
      this.pedestrians.push(p);
    }
  }

  /** A walk node where crosswalks start (a junction corner). */
  private isCorner(node: number): boolean {
    return this.world.walkNodes[node].walkways.some((id) => this.world.walkways[id].kind === 'crosswalk');
  }

  // ---- routing ----

  private desiredSpeed(v: Vehicle, lane: Lane): number {
    return v.fixedSpeed !== null ? Math.min(v.fixedSpeed, lane.speedLimit * 1.1) : lane.speedLimit * v.speedFactor;
  }

  /** Whether leaving this lane means entering a signalised junction (where planned turns are taken). */
  private entersJunction(lane: Lane): boolean {
    const first = lane.successors.length > 0 ? this.world.lanes[lane.successors[0]] : null;
    return first !== null && first.kind === 'connector' && this.world.junctions[first.junction].kind === 'signalised';
  }

  private chooseSuccessor(v: Vehicle, lane: Lane): number {
    const succ = lane.successors;
    const options = succ.map((id) => this.world.lanes[id]);
    if (v.plan.length > 0 && this.entersJunction(lane)) {
      const turn = v.plan.shift()!;
      const c = options.find((o) => o.turn === turn);
      if (c) return c.id; // checkPlan proved it exists
    }
    if (succ.length === 1) return succ[0];
    let candidates = options;
    if (v.connected) {
      // Connected vehicles stay inside the map where they can: agents should not drive off the edge.
      const inside = options.filter((o) => !this.world.lanes[o.successors[0]].exit);
      if (inside.length > 0) candidates = inside;
    }
    const weights = candidates.map((o) => this.turnWeights[o.turn ?? 'straight']);
    const total = weights.reduce((a, b) => a + b, 0);
    if (total <= 0) return candidates[0].id;
    let u = this.rng.next() * total;
    for (let i = 0; i < candidates.length; i++) {
      if ((u -= weights[i]) < 0) return candidates[i].id;
    }
    return candidates[candidates.length - 1].id;
  }

  private extendRoute(v: Vehicle): void {
    const lanes = this.world.lanes;
    let ahead = lanes[v.route[0]].path.length - v.s;
    for (let i = 1; i < v.route.length; i++) ahead += lanes[v.route[i]].path.length;
    while (ahead < LOOKAHEAD_M) {
      const last = lanes[v.route[v.route.length - 1]];
      if (last.successors.length === 0) break;
      const next = this.chooseSuccessor(v, last);
      v.route.push(next);
      ahead += lanes[next].path.length;
    }
  }

  // ---- per step ----

  private indexLanes(): void {
    for (const list of this.onLane) list.length = 0;
    for (const v of this.vehicles) this.onLane[v.route[0]].push(v);
    for (const list of this.onLane) if (list.length > 1) list.sort((a, b) => a.s - b.s || a.id - b.id);
  }

  /** A point on the vehicle's path at distance ds from its centre (negative: behind, on the previous lane). */
  private pathPoint(v: Vehicle, ds: number, out: PathPoint): PathPoint {
    const lanes = this.world.lanes;
    let s = v.s + ds;
    if (s < 0) {
      if (v.prevLane >= 0) {
        const prev = lanes[v.prevLane].path;
        return pointAt(prev, prev.length + s, out);
      }
      return pointAt(lanes[v.route[0]].path, s, out);
    }
    for (let i = 0; i < v.route.length; i++) {
      const p = lanes[v.route[i]].path;
      if (s <= p.length || i === v.route.length - 1) return pointAt(p, s, out);
      s -= p.length;
    }
    return out;
  }

  /** Centre and heading from the chord between the front and rear points on the path: long vehicles cut
   * the inside of a curve a little, as their axles do. */
  private updatePose(v: Vehicle): void {
    const half = v.shape.length / 2;
    const f = this.pathPoint(v, half, this.scratch);
    const r = this.pathPoint(v, -half, this.scratch2);
    v.x = (f.x + r.x) / 2;
    v.y = (f.y + r.y) / 2;
    v.yaw = Math.atan2(f.y - r.y, f.x - r.x);
  }

  private isHeld(v: Vehicle, connector: number): boolean {
    return v.held.includes(connector);
  }

  /** Whether entering this connector needs a grant (signalised junctions; the yielding side of a merge). */
  private needsGrant(c: Lane): boolean {
    const j = this.world.junctions[c.junction];
    if (j.kind === 'signalised') return true;
    return c.mergePartners.some((p) => this.world.lanes[p].priority > c.priority);
  }

  private releaseHeld(): void {
    for (const v of this.vehicles) {
      if (v.held.length === 0) continue;
      const keep: number[] = [];
      for (const c of v.held) {
        // Held until the tail has left the connector.
        if (v.route.includes(c) || (v.prevLane === c && v.s - v.shape.length / 2 < 0.5)) keep.push(c);
        else this.removeHolder(c, v);
      }
      v.held = keep;
    }
  }

  private removeHolder(c: number, v: Vehicle): void {
    const list = this.holders[c];
    const i = list.indexOf(v);
    if (i >= 0) list.splice(i, 1);
  }

  /** Distance from the vehicle's front to the end of its current lane. */
  private toLaneEnd(v: Vehicle): number {
    return this.world.lanes[v.route[0]].path.length - v.s - v.shape.length / 2;
  }

  private grantEntries(): void {
    const lanes = this.world.lanes;
    const candidates: Array<{ v: Vehicle; c: Lane; dist: number }> = [];
    for (const list of this.onLane) {
      if (list.length === 0) continue;
      const v = list[list.length - 1]; // first in its lane
      if (v.route.length < 2) continue;
      const c = lanes[v.route[1]];
      if (c.kind !== 'connector' || this.isHeld(v, c.id) || !this.needsGrant(c)) continue;
      const dist = this.toLaneEnd(v);
      // Merging vehicles look for a gap all along the acceleration lane.
      const window = this.world.junctions[c.junction].kind === 'merge' ? lanes[v.route[0]].path.length : Math.max(25, (v.v * v.v) / (2 * 2) + 12);
      if (dist > window) continue;
      candidates.push({ v, c, dist });
    }
    candidates.sort((a, b) => a.dist - b.dist || a.v.id - b.v.id);
    for (const { v, c, dist } of candidates) {
      if (this.mayEnter(v, c, dist)) {
        v.held.push(c.id);
        this.holders[c.id].push(v);
      }
    }
  }

  private mayEnter(v: Vehicle, c: Lane, dist: number): boolean {
    const lanes = this.world.lanes;
    const j = this.world.junctions[c.junction];
    if (j.kind === 'merge') return this.gapAccepted(v, c, dist);
    if (j.signal && c.signalGroup >= 0) {
      const sig = signalState(j.signal, c.signalGroup, this.time);
      const canStop = dist > (v.v * v.v) / (2 * 3) + 1;
      const eta = dist / Math.max(v.v, 1);
      if (sig.state === 'red') return false;
      if (canStop && sig.state === 'amber') return false;
      if (canStop && sig.state === 'green' && sig.remaining + j.signal.amberS < eta) return false;
    }
    for (const other of c.conflicts) if (this.holders[other].length > 0) return false;
    for (const w of c.crosswalkConflicts) if (this.crossing[w] > 0) return false;
    // Yield to higher-priority traffic about to arrive on green.
    for (const other of c.conflicts) {
      const o = lanes[other];
      if (o.priority <= c.priority) continue;
      const entry = this.onLane[o.predecessors[0]];
      if (entry.length === 0) continue;
      const u = entry[entry.length - 1];
      if (u.route[1] !== o.id) continue;
      if (j.signal && signalState(j.signal, o.signalGroup, this.time).state !== 'green') continue;
      // Only traffic that is coming: a vehicle standing at its stop line waits for something else.
      if (u.v < 1) continue;
      if (this.toLaneEnd(u) / u.v < YIELD_TIME_S) return false;
    }
    // Room on the exit lane for this vehicle and everyone already heading there through the junction.
    const exit = lanes[c.successors[0]];
    const onExit = this.onLane[exit.id];
    const room = onExit.length > 0 ? onExit[0].s - onExit[0].shape.length / 2 : Math.min(exit.path.length, 1e9);
    let needed = v.shape.length + 3;
    for (const pred of exit.predecessors) {
      for (const h of this.holders[pred]) if (h.route[0] !== exit.id) needed += h.shape.length + 3;
    }
    return room >= needed || (onExit.length === 0 && needed === v.shape.length + 3);
  }

  /** Merge gap acceptance: the vehicles of higher-priority partners, ordered by distance to the merge point,
   * leave room in front of and behind this one. */
  private gapAccepted(v: Vehicle, c: Lane, dist: number): boolean {
    const lanes = this.world.lanes;
    const remV = c.path.length + dist + v.shape.length / 2;
    for (const pid of c.mergePartners) {
      const p = lanes[pid];
      if (p.priority <= c.priority) continue;
      const near: Array<[Vehicle, number]> = [];
      for (const u of this.onLane[pid]) near.push([u, p.path.length - u.s]);
      for (const u of this.onLane[p.predecessors[0]]) near.push([u, p.path.length + lanes[p.predecessors[0]].path.length - u.s]);
      for (const [u, remU] of near) {
        const lens = (u.shape.length + v.shape.length) / 2;
        // Accepted when the follower behind would have to brake only moderately (as drivers judge it).
        if (remU >= remV) {
          const gap = remU - remV - lens;
          if (gap < 2 + u.v * 0.6 + Math.max(0, u.v - v.v) * 0.8) return false;
        } else if (remV - remU - lens < 2 + v.v * 0.3) {
          return false;
        }
      }
    }
    return true;
  }

  /** Nearest thing ahead along the route: a vehicle's tail, or the stop line of a connector not yet granted. */
  private obstacleAhead(v: Vehicle): Obstacle {
    const lanes = this.world.lanes;
    const front = v.s + v.shape.length / 2;
    const best: Obstacle = { gap: Infinity, speed: 0, jam: JAM_GAP_M };
    let offset = 0;
    for (let i = 0; i < v.route.length; i++) {
      if (offset - front > LOOKAHEAD_M) break;
      const lane = lanes[v.route[i]];
      if (i > 0 && lane.kind === 'connector' && !this.isHeld(v, lane.id) && this.needsGrant(lane)) {
        const gap = offset - front - STOP_GAP_M;
        if (gap < best.gap) { best.gap = gap; best.speed = 0; best.jam = 0.3; }
        return best;
      }
      let found = false;
      const consider = (u: Vehicle, pos: number) => {
        if (u === v) return;
        const gap = pos - u.shape.length / 2 - front;
        if (gap < best.gap) { best.gap = gap; best.speed = u.v; best.jam = JAM_GAP_M; }
        found = true;
      };
      for (const u of this.onLane[lane.id]) {
        if (i === 0 && (u.s < v.s || (u.s === v.s && u.id >= v.id))) continue;
        consider(u, offset + u.s);
      }
      if (lane.kind === 'connector') {
        // Vehicles that left the same lane on another connector are still in front for a while.
        const from = lane.predecessors[0];
        for (const sib of lanes[from].successors) {
          if (sib === lane.id) continue;
          for (const u of this.onLane[sib]) {
            if (i === 0 && (u.s < v.s || (u.s === v.s && u.id >= v.id))) continue;
            consider(u, offset + u.s);
          }
        }
        // Merging partners: ordered by the distance left to the merge point.
        for (const pid of lane.mergePartners) {
          const plen = lanes[pid].path.length;
          const myRem = offset + lane.path.length - v.s;
          for (const u of this.onLane[pid]) {
            const rem = plen - u.s;
            if (rem > myRem || (rem === myRem && u.id >= v.id)) continue;
            consider(u, offset + lane.path.length - rem);
          }
        }
      }
      if (found) return best;
      offset += lane.path.length;
    }
    return best;
  }

  private speedLimitAhead(v: Vehicle): number {
    const lanes = this.world.lanes;
    const front = v.s + v.shape.length / 2;
    let limit = this.desiredSpeed(v, lanes[v.route[0]]);
    let offset = lanes[v.route[0]].path.length;
    for (let i = 1; i < v.route.length && offset - front < LOOKAHEAD_M; i++) {
      const lane = lanes[v.route[i]];
      const d = Math.max(0, offset - front);
      const vl = this.desiredSpeed(v, lane);
      limit = Math.min(limit, Math.sqrt(vl * vl + 2 * v.comfortDecel * d));
      offset += lane.path.length;
    }
    return Math.max(limit, 0.5);
  }

  private moveVehicles(): void {
    const lanes = this.world.lanes;
    const dt = STEP_SECONDS;
    // Accelerations and bounds from the state at the start of the step, so the update order does not matter.
    const limits = new Float64Array(this.vehicles.length);
    const obstacleSpeeds = new Float64Array(this.vehicles.length);
    this.vehicles.forEach((v, k) => {
      const v0 = this.speedLimitAhead(v);
      const ob = this.obstacleAhead(v);
      let acc = v.maxAccel * (1 - Math.pow(v.v / v0, 4));
      if (Number.isFinite(ob.gap)) {
        const s = Math.max(ob.gap, 0.01);
        const sStar = ob.jam + Math.max(0, v.v * v.timeHeadway + (v.v * (v.v - ob.speed)) / (2 * Math.sqrt(v.maxAccel * v.comfortDecel)));
        acc -= v.maxAccel * (sStar / s) * (sStar / s);
      }
      v.acc = Math.max(acc, -MAX_DECEL);
      // Leaders only move forward, so their current tail bounds this step's advance.
      limits[k] = Number.isFinite(ob.gap) ? Math.max(0, ob.gap - (ob.jam > 0.3 ? 0.3 : 0)) : Infinity;
      obstacleSpeeds[k] = ob.speed;
    });
    const leaving: Vehicle[] = [];
    this.vehicles.forEach((v, k) => {
      let vNew = v.v + v.acc * dt;
      let advance: number;
      if (vNew < 0) {
        advance = v.acc < 0 ? (v.v * v.v) / (-2 * v.acc) : 0;
        vNew = 0;
      } else {
        advance = ((v.v + vNew) / 2) * dt;
      }
      if (advance > limits[k]) {
        advance = limits[k];
        vNew = Math.min(vNew, obstacleSpeeds[k]);
      }
      v.v = vNew;
      v.s += advance;
      while (v.s > lanes[v.route[0]].path.length) {
        if (v.route.length === 1) this.extendRoute(v);
        if (v.route.length === 1) {
          leaving.push(v);
          break;
        }
        v.s -= lanes[v.route[0]].path.length;
        v.prevLane = v.route.shift()!;
        this.extendRoute(v);
      }
    });
    for (const v of leaving) {
      if (v.connected) this.turnAround(v);
      else this.remove(v);
    }
  }

  private remove(v: Vehicle): void {
    for (const c of v.held) this.removeHolder(c, v);
    v.held = [];
    const i = this.vehicles.indexOf(v);
    this.vehicles.splice(i, 1);
  }

  /** A connected vehicle at the map edge turns back into the world on the nearest entry lane, or waits. */
  private turnAround(v: Vehicle): void {
    const lanes = this.world.lanes;
    const end = pointAt(lanes[v.route[0]].path, lanes[v.route[0]].path.length, this.scratch);
    let best = -1;
    let bestD = 40;
    for (const id of this.entryLanes) {
      const start = pointAt(lanes[id].path, 0, this.scratch2);
      const d = Math.hypot(start.x - end.x, start.y - end.y);
      if (d < bestD) { best = id; bestD = d; }
    }
    const first = best >= 0 ? this.onLane[best][0] : undefined;
    if (best < 0 || (first && first.s - first.shape.length / 2 < v.shape.length + 8)) {
      // Wait at the edge; no new vehicle may take the lane meanwhile.
      if (best >= 0) this.reservedEntries.add(best);
      v.s = lanes[v.route[0]].path.length;
      v.v = 0;
      return;
    }
    this.reservedEntries.delete(best);
    for (const c of v.held) this.removeHolder(c, v);
    v.held = [];
    v.route = [best];
    v.prevLane = -1;
    v.s = v.shape.length / 2 + 0.5;
    v.v = Math.min(v.v, 5);
    this.extendRoute(v);
  }

  private spawn(): void {
    let moving = 0;
    for (const v of this.vehicles) if (!v.connected) moving++;
    let deficit = this.targetMoving - moving;
    if (deficit <= 0 || this.entryLanes.length === 0) return;
    // Try the entry lanes in a random rotation, at most one new vehicle per lane per step.
    const startAt = this.rng.int(0, this.entryLanes.length - 1);
    for (let k = 0; k < this.entryLanes.length && deficit > 0; k++) {
      const lane = this.world.lanes[this.entryLanes[(startAt + k) % this.entryLanes.length]];
      if (this.reservedEntries.has(lane.id)) continue;
      if (lane.spawnWeight < 1 && this.rng.next() >= lane.spawnWeight) continue;
      const first = this.onLane[lane.id][0];
      const shape = makeVehicleShape(this.randomClass(), this.rng);
      const speed = lane.speedLimit * 0.8;
      const room = first ? first.s - first.shape.length / 2 : Infinity;
      if (room < shape.length + 10 + speed * 1.5) continue;
      const v = this.makeVehicle(this.newId(), shape, lane.id, shape.length / 2, first ? Math.min(speed, first.v + 2) : speed, false);
      this.extendRoute(v);
      this.vehicles.push(v);
      this.onLane[lane.id].unshift(v);
      deficit--;
    }
  }

  // ---- pedestrians ----

  private pedestrianPose(p: Pedestrian): void {
    const w = this.world.walkways[p.walkway];
    const pt = pointAt(w.path, p.s, this.scratch);
    p.x = pt.x - Math.sin(pt.heading) * p.lateral;
    p.y = pt.y + Math.cos(pt.heading) * p.lateral;
    p.yaw = p.dir > 0 ? pt.heading : pt.heading + Math.PI;
    if (p.yaw > Math.PI) p.yaw -= 2 * Math.PI;
  }

  private mayCross(w: Walkway, p: Pedestrian): boolean {
    const j = this.world.junctions[w.junction];
    if (j.signal) {
      const sig = signalState(j.signal, w.signalGroup, this.time);
      if (sig.state !== 'green' || sig.remaining < w.path.length / p.speed + 2) return false;
    }
    for (const c of w.conflicts) if (this.holders[c].length > 0) return false;
    return true;
  }

  private enterWalkway(p: Pedestrian, w: Walkway, node: number): void {
    p.walkway = w.id;
    p.dir = w.from === node ? 1 : -1;
    p.s = p.dir > 0 ? 0 : w.path.length;
    if (w.kind === 'crosswalk') this.crossing[w.id]++;
  }

  private movePedestrians(): void {
    const ways = this.world.walkways;
    const rng = this.pedRng;
    for (const p of this.pedestrians) {
      if (p.waitingFor >= 0) {
        const w = ways[p.waitingFor];
        if (this.mayCross(w, p)) {
          p.waitingFor = -1;
          this.enterWalkway(p, w, p.waitNode);
        } else if (++p.waitedSteps > 900) {
          // Give up and walk on along the sidewalk instead.
          p.waitingFor = -1;
          p.dir = p.dir > 0 ? -1 : 1;
        } else {
          p.v = 0;
          continue;
        }
      }
      p.v = p.speed;
      const w = ways[p.walkway];
      p.s += p.dir * p.speed * STEP_SECONDS;
      if (p.s >= 0 && p.s <= w.path.length) continue;
      // At a node: pick the next walkway (not straight back unless it is a dead end).
      const node = p.dir > 0 ? w.to : w.from;
      if (w.kind === 'crosswalk') this.crossing[w.id]--;
      const options = this.world.walkNodes[node].walkways.filter((id) => id !== w.id);
      if (options.length === 0) {
        p.dir = p.dir > 0 ? -1 : 1;
        p.s = clamp(p.s, 0, w.path.length);
        continue;
      }
      const next = ways[options[rng.int(0, options.length - 1)]];
      if (next.kind === 'crosswalk' && !this.mayCross(next, p)) {
        // Wait at the corner, on the end of the walkway just finished.
        p.s = clamp(p.s, 0, w.path.length);
        p.waitingFor = next.id;
        p.waitNode = node;
        p.waitedSteps = 0;
        p.v = 0;
        continue;
      }
      this.enterWalkway(p, next, node);
    }
    for (const p of this.pedestrians) this.pedestrianPose(p);
  }

  // ---- public ----

  /** Advances the world by one 0.1 s step. */
  advance(): void {
    for (const v of this.vehicles) this.extendRoute(v);
    this.indexLanes();
    this.releaseHeld();
    this.grantEntries();
    this.moveVehicles();
    this.indexLanes();
    this.spawn();
    this.movePedestrians();
    this.time += STEP_SECONDS;
    this.step++;
    for (const v of this.vehicles) this.updatePose(v);
  }

  /** Points on a vehicle's route at the given distances ahead of its centre (world frame). */
  pathAhead(v: Vehicle, distances: readonly number[]): Array<[number, number]> {
    return distances.map((d) => {
      const p = this.pathPoint(v, d, this.scratch);
      return [p.x, p.y];
    });
  }

  /** The speed a vehicle is aiming for on its current lane (m/s). */
  targetSpeed(v: Vehicle): number {
    return this.desiredSpeed(v, this.world.lanes[v.route[0]]);
  }

  vehicleById(id: number): Vehicle | undefined {
    return this.vehicles.find((v) => v.id === id);
  }

  /** Ground-truth boxes of every actor (moving and parked vehicles, pedestrians), by id. */
  actorBoxes(): ActorBox[] {
    const out: ActorBox[] = [];
    const add = (id: number, shape: ActorShape, x: number, y: number, yaw: number, speed: number) =>
      out.push({ id, cls: shape.cls, x, y, z: shape.height / 2, l: shape.length, w: shape.width, h: shape.height, yaw, speed });
    for (const v of this.vehicles) add(v.id, v.shape, v.x, v.y, v.yaw, v.v);
    for (const v of this.parked) add(v.id, v.shape, v.x, v.y, v.yaw, 0);
    for (const p of this.pedestrians) add(p.id, p.shape, p.x, p.y, p.yaw, p.v);
    out.sort((a, b) => a.id - b.id);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Scene

function pushParts(out: ScenePrimitive[], shape: ActorShape, id: number, x: number, y: number, yaw: number): void {
  const c = Math.cos(yaw);
  const s = Math.sin(yaw);
  for (const p of shape.parts) {
    out.push({
      x: x + c * p.x - s * p.y,
      y: y + s * p.x + c * p.y,
      z: p.z,
      l: p.l,
      w: p.w,
      h: p.h,
      yaw,
      surface: p.surface,
      reflectivity: p.reflectivity,
      color: p.color,
      objectId: id,
    });
  }
}

/** The world as the sensors see it now: the static world plus every actor's parts (objectId = actor id). */
export function buildScene(sim: TrafficSimulation): Scene {
  const world = sim.world;
  const primitives: ScenePrimitive[] = world.staticPrimitives.slice();
  for (const v of sim.vehicles) pushParts(primitives, v.shape, v.id, v.x, v.y, v.yaw);
  for (const v of sim.parked) pushParts(primitives, v.shape, v.id, v.x, v.y, v.yaw);
  for (const p of sim.pedestrians) pushParts(primitives, p.shape, p.id, p.x, p.y, p.yaw);
  return { primitives, groundColor: world.groundColor, roadColor: world.roadColor, roads: world.roads };
}
