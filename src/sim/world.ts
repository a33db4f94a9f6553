// The static world of a scenario: the road network the traffic drives on and everything that does not move.
//
// Roads are directed lanes (centre-line polylines). Lanes meet only at junctions, through connector lanes (one
// per allowed movement: straight, left, right, or a merge). Two connectors conflict when a vehicle of the
// largest size on one could touch one on the other anywhere between the stop lines — that is decided once,
// here, by sweeping a bus-sized footprint along both; the traffic model then lets a vehicle into a junction only
// while no conflicting connector is held, so no two vehicles can ever meet inside it. Crosswalks are walkways
// that conflict with the connectors crossing them in the same way.
//
// Frame: the simulator's world frame (right-handed, metres, radians, z up, ground at z = 0). Traffic drives on
// the right.

import type { ScenePrimitive, SurfaceKind } from './scene.ts';
import { Rng } from './random.ts';
import {
  type GridLayout,
  type HighwayLayout,
  type IntersectionLayout,
  type Layout,
  type Scenario,
  ScenarioError,
  type Turn,
} from './scenario.ts';

// ---------------------------------------------------------------------------------------------------------------
// Polylines

export interface Polyline {
  xs: Float64Array;
  ys: Float64Array;
  /** Arc length at each vertex; cum[0] = 0. */
  cum: Float64Array;
  length: number;
}

export interface PathPoint {
  x: number;
  y: number;
  heading: number;
}

export function makePolyline(points: ReadonlyArray<readonly [number, number]>): Polyline {
  // Drop repeated vertices: a zero-length segment has no heading.
  const kept: Array<readonly [number, number]> = [];
  for (const p of points) {
    const last = kept[kept.length - 1];
    if (!last || Math.hypot(p[0] - last[0], p[1] - last[1]) > 1e-9) kept.push(p);
  }
  if (kept.length < 2) throw new RangeError('a polyline needs at least two distinct points');
  const n = kept.length;
  const xs = new Float64Array(n);
  const ys = new Float64Array(n);
  const cum = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    xs[i] = kept[i][0];
    ys[i] = kept[i][1];
    if (i > 0) cum[i] = cum[i - 1] + Math.hypot(xs[i] - xs[i - 1], ys[i] - ys[i - 1]);
  }
  return { xs, ys, cum, length: cum[n - 1] };
}

/** Point and heading at arc length s; beyond either end the first/last segment is extended. */
export function pointAt(p: Polyline, s: number, out: PathPoint): PathPoint {
  const n = p.xs.length;
  let i: number;
  if (s <= 0) i = 0;
  else if (s >= p.length) i = n - 2;
  else {
    let lo = 0;
    let hi = n - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (p.cum[mid] <= s) lo = mid;
      else hi = mid;
    }
    i = lo;
  }
  const dx = p.xs[i + 1] - p.xs[i];
  const dy = p.ys[i + 1] - p.ys[i];
  const segLen = p.cum[i + 1] - p.cum[i];
  const t = (s - p.cum[i]) / segLen;
  out.x = p.xs[i] + dx * t;
  out.y = p.ys[i] + dy * t;
  out.heading = Math.atan2(dy, dx);
  return out;
}

/** Distance from (x, y) to the polyline, and the arc length of the closest point. */
export function projectOntoPolyline(p: Polyline, x: number, y: number): { distance: number; s: number; heading: number } {
  let best = Infinity;
  let bestS = 0;
  let bestHeading = 0;
  for (let i = 0; i + 1 < p.xs.length; i++) {
    const ax = p.xs[i];
    const ay = p.ys[i];
    const dx = p.xs[i + 1] - ax;
    const dy = p.ys[i + 1] - ay;
    const len2 = dx * dx + dy * dy;
    let t = ((x - ax) * dx + (y - ay) * dy) / len2;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    const d = Math.hypot(ax + dx * t - x, ay + dy * t - y);
    if (d < best) {
      best = d;
      bestS = p.cum[i] + t * Math.sqrt(len2);
      bestHeading = Math.atan2(dy, dx);
    }
  }
  return { distance: best, s: bestS, heading: bestHeading };
}

function cubicBezier(p0: readonly [number, number], p1: readonly [number, number], p2: readonly [number, number], p3: readonly [number, number], step = 0.5): Array<[number, number]> {
  const approx = Math.hypot(p1[0] - p0[0], p1[1] - p0[1]) + Math.hypot(p2[0] - p1[0], p2[1] - p1[1]) + Math.hypot(p3[0] - p2[0], p3[1] - p2[1]);
  const n = Math.max(4, Math.ceil(approx / step));
  const out: Array<[number, number]> = [];
  for (let k = 0; k <= n; k++) {
    const t = k / n;
    const u = 1 - t;
    const a = u * u * u;
    const b = 3 * u * u * t;
    const c = 3 * u * t * t;
    const d = t * t * t;
    out.push([a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]]);
  }
  return out;
}

/** Smooth turn from p0 (heading h0) to p3 (heading h3): a cubic Bezier whose handles meet where the two
 * headings' lines cross, scaled as for a circular arc (0.5523 of the tangent lengths for 90°). */
function turnCurve(p0: readonly [number, number], h0: number, p3: readonly [number, number], h3: number): Array<[number, number]> {
  const d0x = Math.cos(h0);
  const d0y = Math.sin(h0);
  const d3x = Math.cos(h3);
  const d3y = Math.sin(h3);
  const cross = d0x * d3y - d0y * d3x;
  let k0: number;
  let k3: number;
  if (Math.abs(cross) < 1e-6) {
    // Parallel (straight through, or a lateral shift): handles a third of the way each.
    const dist = Math.hypot(p3[0] - p0[0], p3[1] - p0[1]);
    k0 = dist / 3;
    k3 = dist / 3;
  } else {
    // p0 + a·d0 = p3 − b·d3 → the tangent lengths a, b to the corner.
    const rx = p3[0] - p0[0];
    const ry = p3[1] - p0[1];
    const a = (rx * d3y - ry * d3x) / cross;
    const b = (rx * d0y - ry * d0x) / cross;
    k0 = 0.5523 * Math.abs(a);
    k3 = 0.5523 * Math.abs(b);
  }
  return cubicBezier(p0, [p0[0] + k0 * d0x, p0[1] + k0 * d0y], [p3[0] - k3 * d3x, p3[1] - k3 * d3y], p3);
}

/** Smallest radius of curvature along a polyline (from turning angle per length), Infinity when straight. */
function minRadius(p: Polyline): number {
  let best = Infinity;
  // Measure over ~3 m windows: vertex-to-vertex angles of a finely sampled curve are noisy.
  const window = 3;
  const a: PathPoint = { x: 0, y: 0, heading: 0 };
  const b: PathPoint = { x: 0, y: 0, heading: 0 };
  for (let s = 0; s + window <= p.length; s += 1) {
    pointAt(p, s, a);
    pointAt(p, s + window, b);
    let dh = Math.abs(b.heading - a.heading);
    if (dh > Math.PI) dh = 2 * Math.PI - dh;
    if (dh > 1e-4) best = Math.min(best, window / dh);
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------------------
// Oriented footprints (bird's-eye view)

export interface Footprint {
  x: number;
  y: number;
  yaw: number;
  l: number;
  w: number;
}

/** Separating-axis test of two oriented rectangles; touching counts as overlapping only past `margin`. */
export function footprintsOverlap(a: Footprint, b: Footprint, margin = 0): boolean {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const ra = Math.hypot(a.l, a.w) / 2;
  const rb = Math.hypot(b.l, b.w) / 2;
  if (dx * dx + dy * dy > (ra + rb) * (ra + rb)) return false;
  const axes = [a.yaw, a.yaw + Math.PI / 2, b.yaw, b.yaw + Math.PI / 2];
  for (const ang of axes) {
    const ux = Math.cos(ang);
    const uy = Math.sin(ang);
    const pa = (a.l / 2) * Math.abs(Math.cos(a.yaw) * ux + Math.sin(a.yaw) * uy) + (a.w / 2) * Math.abs(-Math.sin(a.yaw) * ux + Math.cos(a.yaw) * uy);
    const pb = (b.l / 2) * Math.abs(Math.cos(b.yaw) * ux + Math.sin(b.yaw) * uy) + (b.w / 2) * Math.abs(-Math.sin(b.yaw) * ux + Math.cos(b.yaw) * uy);
    if (Math.abs(dx * ux + dy * uy) >= pa + pb - margin) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------------------------
// World types

export type LaneKind = 'road' | 'connector';

export interface Lane {
  id: number;
  kind: LaneKind;
  path: Polyline;
  width: number;
  /** m/s, already lowered for the lane's tightest curve. */
  speedLimit: number;
  successors: number[];
  predecessors: number[];
  /** Junction a connector belongs to; -1 for road lanes. */
  junction: number;
  /** The movement a connector makes (a merge is 'straight' for the through lane and 'right'/'left' for the ramp). */
  turn: Turn | null;
  /** Connectors: the lower-priority side yields to approaching higher-priority traffic. */
  priority: number;
  /** Connectors of a signalised junction: the signal group whose green lets vehicles in; -1 when unsignalised. */
  signalGroup: number;
  /** Connectors this one must not be used at the same time as (same junction, different entry lane). */
  conflicts: number[];
  /** Crosswalks (walkway ids) this connector crosses. */
  crosswalkConflicts: number[];
  /** Merge junctions: the other connectors flowing into the same lane (vehicles on them are ordered by their
   * distance to the merge point, as if already in one lane). */
  mergePartners: number[];
  /** Road lane that starts at the map edge: vehicles spawn here. */
  entry: boolean;
  /** Relative rate of new vehicles on an entry lane (a ramp carries less than a through lane). */
  spawnWeight: number;
  /** Road lane that ends at the map edge: vehicles leave the world here. */
  exit: boolean;
}

export interface SignalTiming {
  greenS: number;
  amberS: number;
  allRedS: number;
  offsetS: number;
}

export interface Junction {
  id: number;
  /** 'signalised': vehicles reserve conflict-free connectors under a two-phase signal; 'merge': lanes flow
   * together and the lower-priority side merges into gaps. */
  kind: 'signalised' | 'merge';
  x: number;
  y: number;
  signal: SignalTiming | null;
  connectors: number[];
  crosswalks: number[];
}

export interface WalkNode {
  id: number;
  x: number;
  y: number;
  /** Walkway ids meeting here. */
  walkways: number[];
}

export interface Walkway {
  id: number;
  kind: 'sidewalk' | 'crosswalk';
  path: Polyline;
  /** Walk nodes at s = 0 and s = length. */
  from: number;
  to: number;
  width: number;
  junction: number;
  /** Crosswalks: pedestrians may start while this vehicle signal group is green (they walk alongside it). */
  signalGroup: number;
  /** Crosswalks: connectors crossing it. */
  conflicts: number[];
}

export interface ParkingSpot {
  x: number;
  y: number;
  yaw: number;
  /** Longest vehicle that fits. */
  maxLength: number;
}

export interface RsuSite {
  agentIndex: number;
  x: number;
  y: number;
  poleHeight: number;
}

export interface World {
  layout: Layout['type'];
  /** [xmin, ymin, xmax, ymax] of the simulated area. */
  bounds: [number, number, number, number];
  lanes: Lane[];
  junctions: Junction[];
  walkNodes: WalkNode[];
  walkways: Walkway[];
  parkingSpots: ParkingSpot[];
  /** Buildings, vegetation, barriers, poles: objectId -1. */
  staticPrimitives: ScenePrimitive[];
  roads: Array<[number, number, number, number]>;
  groundColor: [number, number, number];
  roadColor: [number, number, number];
  laneWidth: number;
  rsuSites: RsuSite[];
}

// ---------------------------------------------------------------------------------------------------------------
// Signals

export type SignalState = 'green' | 'amber' | 'red';

/** State of signal group 0 (traffic along x) or 1 (along y) at time t, and the seconds left in that state. */
export function signalState(timing: SignalTiming, group: number, t: number): { state: SignalState; remaining: number } {
  const phase = timing.greenS + timing.amberS + timing.allRedS;
  const cycle = 2 * phase;
  let u = (t + timing.offsetS) % cycle;
  if (u < 0) u += cycle;
  const local = group === 0 ? u : (u - phase + cycle) % cycle;
  if (local < timing.greenS) return { state: 'green', remaining: timing.greenS - local };
  if (local < timing.greenS + timing.amberS) return { state: 'amber', remaining: timing.greenS + timing.amberS - local };
  return { state: 'red', remaining: cycle - local };
}

// ---------------------------------------------------------------------------------------------------------------
// Materials

type Rgb = [number, number, number];

const BUILDING_COLORS: Rgb[] = [
  [186, 176, 160], [160, 150, 140], [150, 88, 70], [200, 196, 188], [120, 124, 130], [178, 160, 128], [96, 100, 108], [210, 206, 196],
];
const CONCRETE: Rgb = [168, 168, 162];
const METAL: Rgb = [110, 112, 116];
const TRUNK: Rgb = [92, 70, 50];
const CROWNS: Rgb[] = [[62, 104, 48], [74, 118, 56], [56, 92, 44], [88, 122, 60]];

/** Sizes of the largest vehicle the conflict sweep assumes (a bus). */
const SWEEP_LENGTH = 12.6;
const SWEEP_WIDTH = 2.7;
/** Lateral acceleration a vehicle accepts in a curve; sets connector speed limits. */
const COMFORT_LATERAL_ACCEL = 2.5;
const CROSSWALK_WIDTH = 3;
/** Gap between a crosswalk and the stop line in front of it. */
const STOP_LINE_GAP = 1;
const PARKING_STRIP_WIDTH = 2.4;

// ---------------------------------------------------------------------------------------------------------------
// Builder

class WorldBuilder {
  readonly lanes: Lane[] = [];
  readonly junctions: Junction[] = [];
  readonly walkNodes: WalkNode[] = [];
  readonly walkways: Walkway[] = [];
  readonly parkingSpots: ParkingSpot[] = [];
  readonly primitives: ScenePrimitive[] = [];
  readonly roads: Array<[number, number, number, number]> = [];
  /** Places street furniture and buildings must keep clear of (RSU poles). */
  readonly keepClear: Array<{ x: number; y: number; r: number }> = [];

  constructor(readonly rng: Rng, readonly laneWidth: number) {}

  addLane(kind: LaneKind, points: ReadonlyArray<readonly [number, number]>, speedLimit: number, junction = -1): Lane {
    const path = makePolyline(points);
    const r = minRadius(path);
    const curveLimit = Number.isFinite(r) ? Math.sqrt(COMFORT_LATERAL_ACCEL * r) : Infinity;
    const lane: Lane = {
      id: this.lanes.length,
      kind,
      path,
      width: this.laneWidth,
      speedLimit: Math.min(speedLimit, curveLimit),
      successors: [],
      predecessors: [],
      junction,
      turn: null,
      priority: 0,
      signalGroup: -1,
      conflicts: [],
      crosswalkConflicts: [],
      mergePartners: [],
      entry: false,
      spawnWeight: 1,
      exit: false,
    };
    this.lanes.push(lane);
    return lane;
  }

  link(from: Lane, to: Lane): void {
    from.successors.push(to.id);
    to.predecessors.push(from.id);
  }

  addConnector(junction: Junction, from: Lane, to: Lane, turn: Turn, priority: number, signalGroup: number, speedLimit: number): Lane {
    const a = pointAt(from.path, from.path.length, { x: 0, y: 0, heading: 0 });
    const b = pointAt(to.path, 0, { x: 0, y: 0, heading: 0 });
    const c = this.addLane('connector', turnCurve([a.x, a.y], a.heading, [b.x, b.y], b.heading), speedLimit, junction.id);
    c.turn = turn;
    c.priority = priority;
    c.signalGroup = signalGroup;
    this.link(from, c);
    this.link(c, to);
    junction.connectors.push(c.id);
    return c;
  }

  addJunction(kind: Junction['kind'], x: number, y: number, signal: SignalTiming | null): Junction {
    const j: Junction = { id: this.junctions.length, kind, x, y, signal, connectors: [], crosswalks: [] };
    this.junctions.push(j);
    return j;
  }

  addWalkNode(x: number, y: number): WalkNode {
    const n: WalkNode = { id: this.walkNodes.length, x, y, walkways: [] };
    this.walkNodes.push(n);
    return n;
  }

  addWalkway(kind: Walkway['kind'], from: WalkNode, to: WalkNode, width: number, junction = -1, signalGroup = -1): Walkway {
    const w: Walkway = {
      id: this.walkways.length,
      kind,
      path: makePolyline([[from.x, from.y], [to.x, to.y]]),
      from: from.id,
      to: to.id,
      width,
      junction,
      signalGroup,
      conflicts: [],
    };
    this.walkways.push(w);
    from.walkways.push(w.id);
    to.walkways.push(w.id);
    return w;
  }

  /** A box standing on the ground (zBottom = 0 unless given). */
  box(x: number, y: number, l: number, w: number, h: number, yaw: number, surface: SurfaceKind, reflectivity: number, color: Rgb, zBottom = 0): void {
    this.primitives.push({ x, y, z: zBottom + h / 2, l, w, h, yaw, surface, reflectivity, color, objectId: -1 });
  }

  isClear(x: number, y: number, r: number): boolean {
    return this.keepClear.every((k) => Math.hypot(k.x - x, k.y - y) > k.r + r);
  }

  tree(x: number, y: number): void {
    if (!this.isClear(x, y, 2)) return;
    const rng = this.rng;
    const trunkH = rng.uniform(1.8, 3.2);
    const crownW = rng.uniform(2.4, 4.5);
    const crownH = rng.uniform(2.2, 4.5);
    const yaw = rng.uniform(0, Math.PI / 2);
    this.box(x, y, 0.35, 0.35, trunkH + 0.3, yaw, 'vegetation', 0.25, TRUNK);
    this.box(x, y, crownW, crownW * rng.uniform(0.8, 1), crownH, yaw, 'vegetation', 0.4, rng.pick(CROWNS), trunkH);
  }

  bush(x: number, y: number): void {
    if (!this.isClear(x, y, 1.5)) return;
    const rng = this.rng;
    const s = rng.uniform(1, 2.5);
    this.box(x, y, s, s * rng.uniform(0.6, 1), rng.uniform(0.6, 1.6), rng.uniform(0, Math.PI), 'vegetation', 0.4, rng.pick(CROWNS));
  }

  /** A lamp post at (x, y) with its arm reaching over the road in direction `towards`. */
  streetLight(x: number, y: number, towards: number, height = 8): void {
    if (!this.isClear(x, y, 1)) return;
    this.box(x, y, 0.22, 0.22, height, 0, 'pole', 0.5, METAL);
    const arm = 1.8;
    this.box(x + Math.cos(towards) * arm / 2, y + Math.sin(towards) * arm / 2, arm, 0.15, 0.15, towards, 'pole', 0.5, METAL, height - 0.3);
  }

  signalPole(x: number, y: number, towards: number): void {
    // A roadside unit's pole at the corner carries the signals instead.
    if (!this.isClear(x, y, 1.5)) return;
    this.box(x, y, 0.25, 0.25, 4.2, 0, 'pole', 0.5, METAL);
    this.box(x + Math.cos(towards) * 0.3, y + Math.sin(towards) * 0.3, 0.35, 0.35, 1.0, towards, 'pole', 0.3, [40, 40, 40], 3.2);
  }

  building(x0: number, y0: number, x1: number, y1: number, heightRange: readonly [number, number]): void {
    const rng = this.rng;
    const l = x1 - x0;
    const w = y1 - y0;
    if (l < 4 || w < 4) return;
    const cx = (x0 + x1) / 2;
    const cy = (y0 + y1) / 2;
    // Most buildings are low, a few are towers.
    const u = rng.next();
    const h = heightRange[0] + (heightRange[1] - heightRange[0]) * u * u;
    const color = rng.pick(BUILDING_COLORS);
    const reflectivity = rng.uniform(0.25, 0.55);
    this.box(cx, cy, l, w, h, 0, 'building', reflectivity, color);
    if (h > 14 && rng.next() < 0.35) {
      // A setback upper tier.
      const inset = rng.uniform(0.15, 0.3);
      this.box(cx, cy, l * (1 - inset), w * (1 - inset), h * rng.uniform(0.15, 0.4), 0, 'building', reflectivity, color, h);
    } else if (rng.next() < 0.5) {
      // Rooftop plant room.
      this.box(cx + rng.uniform(-l / 4, l / 4), cy + rng.uniform(-w / 4, w / 4), Math.min(l / 3, 6), Math.min(w / 3, 5), rng.uniform(2, 3.5), 0, 'building', 0.3, [130, 130, 130], h);
    }
  }

  /** Cuts a rectangle into lots of at most maxLot (at least minLot) on a side. */
  lots(x0: number, y0: number, x1: number, y1: number, minLot: number, maxLot: number, out: Array<[number, number, number, number]>): void {
    const l = x1 - x0;
    const w = y1 - y0;
    if (l <= maxLot && w <= maxLot) {
      out.push([x0, y0, x1, y1]);
      return;
    }
    if (l >= w) {
      const cut = x0 + Math.max(minLot, Math.min(l - minLot, l * this.rng.uniform(0.3, 0.7)));
      this.lots(x0, y0, cut, y1, minLot, maxLot, out);
      this.lots(cut, y0, x1, y1, minLot, maxLot, out);
    } else {
      const cut = y0 + Math.max(minLot, Math.min(w - minLot, w * this.rng.uniform(0.3, 0.7)));
      this.lots(x0, y0, x1, cut, minLot, maxLot, out);
      this.lots(x0, cut, x1, y1, minLot, maxLot, out);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Urban layouts: one or more streets along x crossing one or more streets along y, every crossing a signalised
// four-way junction. `intersection` is the 1×1 case, `grid` the general one.

interface Street {
  /** Runs along y when vertical. */
  vertical: boolean;
  /** The other coordinate of its axis (x for a vertical street). */
  coord: number;
  lanes: number;
  /** Kerb to axis: lanes plus the parking strip. */
  halfWidth: number;
}

type UrbanLayout = IntersectionLayout | GridLayout;

// Arms of a junction, counter-clockwise from +x; `out` is the direction leaving the junction along the arm.
const ARMS = [
  { name: 'E', out: [1, 0] },
  { name: 'N', out: [0, 1] },
  { name: 'W', out: [-1, 0] },
  { name: 'S', out: [0, -1] },
] as const;

function buildUrban(b: WorldBuilder, layout: UrbanLayout, bounds: [number, number, number, number], vertical: Street[], horizontal: Street[]): void {
  const rng = b.rng;
  const lw = layout.laneWidthM;
  const sw = layout.sidewalkWidthM;
  const speed = layout.speedLimitKmh / 3.6;
  const [xmin, ymin, xmax, ymax] = bounds;
  const timing = layout.signal;

  for (const s of [...vertical, ...horizontal]) {
    b.roads.push(s.vertical ? [s.coord - s.halfWidth, ymin, s.coord + s.halfWidth, ymax] : [xmin, s.coord - s.halfWidth, xmax, s.coord + s.halfWidth]);
  }

  // Junctions, indexed [vi][hi].
  const junctionAt: Junction[][] = vertical.map((v) =>
    horizontal.map((h) =>
      b.addJunction('signalised', v.coord, h.coord, {
        greenS: timing.greenS,
        amberS: timing.amberS,
        allRedS: timing.allRedS,
        // Offsets de-synchronise neighbouring junctions the way real coordination plans do.
        offsetS: rng.uniform(0, 2 * (timing.greenS + timing.amberS + timing.allRedS)),
      }),
    ),
  );
  // Distance from a junction centre to its stop lines along a street: past the crossing street's kerb,
  // the sidewalk half, the crosswalk half and the gap.
  const stopOffset = (crossing: Street) => crossing.halfWidth + sw / 2 + CROSSWALK_WIDTH / 2 + STOP_LINE_GAP;

  // approach[j][arm] / exits[j][arm]: lanes (innermost first) entering / leaving junction j through that arm.
  const approach = new Map<number, Lane[][]>();
  const exits = new Map<number, Lane[][]>();
  for (const row of junctionAt) for (const j of row) {
    approach.set(j.id, [[], [], [], []]);
    exits.set(j.id, [[], [], [], []]);
  }

  const streets: Array<{ street: Street; crossing: Street[]; junctions: Junction[] }> = [
    ...vertical.map((v, vi) => ({ street: v, crossing: horizontal, junctions: junctionAt[vi] })),
    ...horizontal.map((h, hi) => ({ street: h, crossing: vertical, junctions: junctionAt.map((col) => col[hi]) })),
  ];
  for (const { street, crossing, junctions } of streets) {
    // Along the street: t is x for a horizontal street, y for a vertical one.
    const lo = street.vertical ? ymin : xmin;
    const hi = street.vertical ? ymax : xmax;
    const at = (t: number, lateral: number): [number, number] => (street.vertical ? [street.coord + lateral, t] : [t, street.coord - lateral]);
    // Forward = +t. Its right-hand side is +x for a vertical street, −y for a horizontal one; `at` takes the
    // lateral offset towards the forward direction's right.
    const negArm = street.vertical ? 3 : 2; // S or W: the arm on the −t side of a junction
    const posArm = street.vertical ? 1 : 0; // N or E
    for (let seg = 0; seg <= junctions.length; seg++) {
      const jBefore = seg > 0 ? junctions[seg - 1] : null;
      const jAfter = seg < junctions.length ? junctions[seg] : null;
      const t0 = jBefore ? (street.vertical ? jBefore.y : jBefore.x) + stopOffset(crossing[seg - 1]) : lo;
      const t1 = jAfter ? (street.vertical ? jAfter.y : jAfter.x) - stopOffset(crossing[seg]) : hi;
      if (t1 - t0 < 10) {
        throw new ScenarioError('(layout)', layout.type === 'grid' ? 'layout.blockSizeM' : 'layout.armLengthM', `streets too close: a ${(t1 - t0).toFixed(1)} m segment between junctions (needs ≥ 10 m)`);
      }
      for (let k = 0; k < street.lanes; k++) {
        const off = (k + 0.5) * lw;
        const fwd = b.addLane('road', [at(t0, off), at(t1, off)], speed);
        const bwd = b.addLane('road', [at(t1, -off), at(t0, -off)], speed);
        if (!jBefore) { fwd.entry = true; bwd.exit = true; }
        if (!jAfter) { fwd.exit = true; bwd.entry = true; }
        if (jAfter) {
          approach.get(jAfter.id)![negArm].push(fwd);
          exits.get(jAfter.id)![negArm].push(bwd);
        }
        if (jBefore) {
          approach.get(jBefore.id)![posArm].push(bwd);
          exits.get(jBefore.id)![posArm].push(fwd);
        }
      }

      // Parking strips on both kerbs, clear of the junction mouths.
      if (layout.parking) {
        const off = street.lanes * lw + PARKING_STRIP_WIDTH / 2;
        for (let t = t0 + 8; t + 8 <= t1; t += 6.6) {
          const [fx, fy] = at(t, off);
          const [bx, by] = at(t, -off);
          const fwdHeading = street.vertical ? Math.PI / 2 : 0;
          b.parkingSpots.push({ x: fx, y: fy, yaw: fwdHeading, maxLength: 6.2 });
          b.parkingSpots.push({ x: bx, y: by, yaw: fwdHeading + Math.PI, maxLength: 6.2 });
        }
      }

      // Street trees and lights on both sidewalks (trees by the kerb, lights opposite each other).
      const treeOff = street.halfWidth + 0.7;
      if (layout.streetTreeSpacingM > 0) {
        for (let t = t0 + rng.uniform(2, layout.streetTreeSpacingM); t < t1 - 2; t += layout.streetTreeSpacingM * rng.uniform(0.8, 1.2)) {
          for (const side of [1, -1]) {
            const [x, y] = at(t + side * 1.5, side * treeOff);
            b.tree(x, y);
          }
        }
      }
      if (layout.streetLightSpacingM > 0) {
        for (let t = t0 + layout.streetLightSpacingM / 2; t < t1 - 3; t += layout.streetLightSpacingM) {
          for (const side of [1, -1]) {
            const [x, y] = at(t + side * 4, side * (street.halfWidth + 0.35));
            const towards = street.vertical ? (side > 0 ? Math.PI : 0) : side > 0 ? Math.PI / 2 : -Math.PI / 2;
            b.streetLight(x, y, towards);
          }
        }
      }
    }
  }

  // Connectors: every approach lane to the exits its position allows (innermost lane: left and straight;
  // outermost: right and straight; a single lane: all three).
  for (const row of junctionAt) for (const j of row) {
    const app = approach.get(j.id)!;
    const ext = exits.get(j.id)!;
    for (let a = 0; a < 4; a++) {
      const inLanes = app[a];
      if (inLanes.length === 0) continue;
      const group = a % 2 === 0 ? 0 : 1; // E/W approaches: group 0 (traffic along x)
      for (const [offset, turn] of [[2, 'straight'], [3, 'left'], [1, 'right']] as const) {
        // Approaching from arm a we head towards arm (a + 2); a left turn leaves through the arm 90° counter-
        // clockwise of that heading, i.e. arm a + 3; a right turn through arm a + 1.
        const outLanes = ext[(a + offset) % 4];
        if (outLanes.length === 0) continue;
        if (turn === 'straight') {
          for (let k = 0; k < inLanes.length; k++) b.addConnector(j, inLanes[k], outLanes[Math.min(k, outLanes.length - 1)], 'straight', 2, group, speed);
        } else if (turn === 'left') {
          b.addConnector(j, inLanes[0], outLanes[0], 'left', 1, group, speed);
        } else {
          b.addConnector(j, inLanes[inLanes.length - 1], outLanes[outLanes.length - 1], 'right', 2, group, speed);
        }
      }
    }
  }

  // Walk network: a node at each junction corner, sidewalks along every kerb, crosswalks across every arm.
  const cornerOf = new Map<number, WalkNode[]>(); // [NE, NW, SW, SE]
  for (let vi = 0; vi < vertical.length; vi++) for (let hi = 0; hi < horizontal.length; hi++) {
    const j = junctionAt[vi][hi];
    const cx = vertical[vi].halfWidth + sw / 2;
    const cy = horizontal[hi].halfWidth + sw / 2;
    const nodes = [b.addWalkNode(j.x + cx, j.y + cy), b.addWalkNode(j.x - cx, j.y + cy), b.addWalkNode(j.x - cx, j.y - cy), b.addWalkNode(j.x + cx, j.y - cy)];
    cornerOf.set(j.id, nodes);
    const cw = CROSSWALK_WIDTH;
    // Crossing the N and S arms walks along x, beside traffic group 0; crossing E and W walks along y.
    j.crosswalks.push(b.addWalkway('crosswalk', nodes[1], nodes[0], cw, j.id, 0).id);
    j.crosswalks.push(b.addWalkway('crosswalk', nodes[2], nodes[3], cw, j.id, 0).id);
    j.crosswalks.push(b.addWalkway('crosswalk', nodes[3], nodes[0], cw, j.id, 1).id);
    j.crosswalks.push(b.addWalkway('crosswalk', nodes[2], nodes[1], cw, j.id, 1).id);
    // Signal poles on the four kerb corners, heads facing the approaches.
    const px = vertical[vi].halfWidth + 0.5;
    const py = horizontal[hi].halfWidth + 0.5;
    b.signalPole(j.x + px, j.y + py, -Math.PI / 2);
    b.signalPole(j.x - px, j.y + py, Math.PI);
    b.signalPole(j.x - px, j.y - py, Math.PI / 2);
    b.signalPole(j.x + px, j.y - py, 0);
  }
  for (const { street, junctions } of streets) {
    const off = street.halfWidth + sw / 2;
    for (let seg = 0; seg <= junctions.length; seg++) {
      const jb = seg > 0 ? junctions[seg - 1] : null;
      const ja = seg < junctions.length ? junctions[seg] : null;
      for (const side of [1, -1]) {
        // side +1: the +x side of a vertical street / the +y side of a horizontal one.
        const node = (j: Junction | null, end: 'before' | 'after'): WalkNode => {
          if (!j) {
            const t = end === 'before' ? (street.vertical ? ymin : xmin) : street.vertical ? ymax : xmax;
            return street.vertical ? b.addWalkNode(street.coord + side * off, t) : b.addWalkNode(t, street.coord + side * off);
          }
          const c = cornerOf.get(j.id)!;
          // Leaving junction jb towards +t we start at its corner on the +t side; arriving at ja from −t, at its −t side.
          if (street.vertical) return end === 'before' ? (side > 0 ? c[0] : c[1]) : side > 0 ? c[3] : c[2];
          return end === 'before' ? (side > 0 ? c[0] : c[3]) : side > 0 ? c[1] : c[2];
        };
        b.addWalkway('sidewalk', node(jb, 'before'), node(ja, 'after'), sw);
      }
    }
  }

  // Buildings fill the blocks between the sidewalks, up to `depthM` from a street.
  const kerbs = (streets: Street[], lo: number, hi: number): Array<[number, number, boolean, boolean]> => {
    // Intervals between streets along one axis: [start, end, street before?, street after?].
    const out: Array<[number, number, boolean, boolean]> = [];
    let start = lo;
    let before = false;
    for (const s of streets) {
      out.push([start, s.coord - s.halfWidth - sw, before, true]);
      start = s.coord + s.halfWidth + sw;
      before = true;
    }
    out.push([start, hi, before, false]);
    return out.filter(([a, c]) => c - a > 4);
  };
  const bl = layout.buildings;
  const depth = bl.depthM ?? Infinity;
  for (const [bx0, bx1, westStreet, eastStreet] of kerbs(vertical, xmin, xmax)) {
    for (const [by0, by1, southStreet, northStreet] of kerbs(horizontal, ymin, ymax)) {
      const lots: Array<[number, number, number, number]> = [];
      b.lots(bx0, by0, bx1, by1, bl.lotSizeM[0], bl.lotSizeM[1], lots);
      for (const [x0, y0, x1, y1] of lots) {
        const toStreet = Math.min(
          westStreet ? x0 - bx0 : Infinity,
          eastStreet ? bx1 - x1 : Infinity,
          southStreet ? y0 - by0 : Infinity,
          northStreet ? by1 - y1 : Infinity,
        );
        if (toStreet > depth) continue;
        const clear = b.keepClear.every((k) => k.x < x0 - k.r || k.x > x1 + k.r || k.y < y0 - k.r || k.y > y1 + k.r);
        if (!clear) continue;
        if (rng.next() < bl.emptyLotFraction) {
          // An open lot: a few trees and shrubs.
          const n = rng.int(0, 3);
          for (let i = 0; i < n; i++) b.tree(rng.uniform(x0 + 2, x1 - 2), rng.uniform(y0 + 2, y1 - 2));
          if (rng.next() < 0.5) b.bush(rng.uniform(x0 + 1.5, x1 - 1.5), rng.uniform(y0 + 1.5, y1 - 1.5));
          continue;
        }
        const s = () => rng.uniform(bl.setbackM[0], bl.setbackM[1]);
        b.building(x0 + s(), y0 + s(), x1 - s(), y1 - s(), bl.heightRangeM);
      }
    }
  }
}

function urbanStreets(layout: UrbanLayout): { bounds: [number, number, number, number]; vertical: Street[]; horizontal: Street[] } {
  const half = (lanes: number) => lanes * layout.laneWidthM + (layout.parking ? PARKING_STRIP_WIDTH : 0);
  if (layout.type === 'intersection') {
    const a = layout.armLengthM;
    return {
      bounds: [-a, -a, a, a],
      vertical: [{ vertical: true, coord: 0, lanes: layout.sideLanesPerDirection, halfWidth: half(layout.sideLanesPerDirection) }],
      horizontal: [{ vertical: false, coord: 0, lanes: layout.mainLanesPerDirection, halfWidth: half(layout.mainLanesPerDirection) }],
    };
  }
  const [bx, by] = layout.blockSizeM;
  const vertical: Street[] = [];
  const horizontal: Street[] = [];
  for (let i = 0; i <= layout.blocksX; i++) vertical.push({ vertical: true, coord: (i - layout.blocksX / 2) * bx, lanes: layout.lanesPerDirection, halfWidth: half(layout.lanesPerDirection) });
  for (let j = 0; j <= layout.blocksY; j++) horizontal.push({ vertical: false, coord: (j - layout.blocksY / 2) * by, lanes: layout.lanesPerDirection, halfWidth: half(layout.lanesPerDirection) });
  const ex = (layout.blocksX / 2) * bx + layout.marginM;
  const ey = (layout.blocksY / 2) * by + layout.marginM;
  return { bounds: [-ex, -ey, ex, ey], vertical, horizontal };
}

// ---------------------------------------------------------------------------------------------------------------
// Highway with an on-ramp: a divided motorway along x (eastbound on the south carriageway), and a ramp from the
// south that curves onto an acceleration lane and merges into the eastbound rightmost lane over a taper.

function highwayCrossSection(layout: HighwayLayout) {
  const lw = layout.laneWidthM;
  const inner = layout.medianWidthM / 2 + 1; // median half-width plus an inner shoulder
  const laneY = (k: number) => inner + (k + 0.5) * lw; // |y| of lane k (0 innermost)
  const edge = inner + layout.lanesPerDirection * lw; // |y| of the carriageway's outer edge
  return { lw, inner, laneY, edge, outer: edge + layout.shoulderWidthM };
}

function buildHighway(b: WorldBuilder, layout: HighwayLayout): [number, number, number, number] {
  const rng = b.rng;
  const { lw, laneY, edge, outer } = highwayCrossSection(layout);
  const n = layout.lanesPerDirection;
  const half = layout.lengthM / 2;
  const speed = layout.speedLimitKmh / 3.6;
  const ramp = layout.onramp;
  const rampSpeed = ramp.speedLimitKmh / 3.6;
  const x0 = ramp.mergeXM; // acceleration lane ends, taper begins
  const x1 = x0 + ramp.taperM; // taper ends in the rightmost lane
  const xs = x0 - ramp.accelerationLaneM; // ramp curve ends, acceleration lane begins
  const yA = -(laneY(n - 1) + lw); // acceleration lane centre
  const R = ramp.radiusM;
  const rampStraight = 60;
  const yStart = yA - R - rampStraight;
  if (xs - R < -half + 20 || x1 > half - 20) {
    throw new ScenarioError('(layout)', 'layout.onramp.mergeXM', `the ramp (x ${(xs - R).toFixed(0)}..${x1.toFixed(0)} m) does not fit on the ${layout.lengthM} m highway`);
  }
  const bounds: [number, number, number, number] = [-half, Math.min(yStart, -(outer + 80)), half, outer + 80];

  b.roads.push([-half, -outer, half, outer]);
  // Eastbound (south, y < 0) and westbound (north) lanes; the eastbound rightmost lane is cut around the merge.
  const merge = b.addJunction('merge', x0, -laneY(n - 1), null);
  for (let k = 0; k < n; k++) {
    const y = laneY(k);
    const west = b.addLane('road', [[half, y], [-half, y]], speed);
    west.entry = true;
    west.exit = true;
    if (k < n - 1) {
      const east = b.addLane('road', [[-half, -y], [half, -y]], speed);
      east.entry = true;
      east.exit = true;
    } else {
      const before = b.addLane('road', [[-half, -y], [x0, -y]], speed);
      before.entry = true;
      const after = b.addLane('road', [[x1, -y], [half, -y]], speed);
      after.exit = true;
      b.addConnector(merge, before, after, 'straight', 2, -1, speed);
      // The ramp: north from the map edge, a right-hand curve onto the acceleration lane.
      const pts: Array<[number, number]> = [[xs - R, yStart], [xs - R, yA - R]];
      const steps = Math.ceil((R * Math.PI) / 2 / 1.0);
      for (let i = 1; i <= steps; i++) {
        const ang = Math.PI - (i / steps) * (Math.PI / 2); // from π (west of centre) to π/2 (north of centre)
        pts.push([xs + R * Math.cos(ang), yA - R + R * Math.sin(ang)]);
      }
      const rampLane = b.addLane('road', pts, rampSpeed);
      rampLane.entry = true;
      rampLane.spawnWeight = 0.3;
      // The acceleration lane is a lane of its own, so that its limit is not the curve's.
      const accel = b.addLane('road', [[xs, yA], [x0, yA]], 0.85 * speed);
      b.link(rampLane, accel);
      b.addConnector(merge, accel, after, 'left', 1, -1, 0.85 * speed);
      // Asphalt for the cameras: the acceleration lane and taper, and squares along the curve.
      b.roads.push([xs, yA - lw / 2 - 0.5, x1, -edge]);
      for (let i = 0; i < pts.length; i += 3) b.roads.push([pts[i][0] - lw / 2 - 0.5, pts[i][1] - lw / 2 - 0.5, pts[i][0] + lw / 2 + 0.5, pts[i][1] + lw / 2 + 0.5]);
      // Guard rail along the ramp's right-hand edge.
      if (layout.guardRails) {
        for (let i = 0; i + 4 < pts.length; i += 4) {
          const [ax, ay] = pts[i];
          const [cx, cy] = pts[i + 4];
          const h = Math.atan2(cy - ay, cx - ax);
          const off = lw / 2 + 1.2;
          const mx = (ax + cx) / 2 + Math.sin(h) * off;
          const my = (ay + cy) / 2 - Math.cos(h) * off;
          b.box(mx, my, Math.hypot(cx - ax, cy - ay) + 0.2, 0.25, 0.45, h, 'barrier', 0.5, METAL, 0.35);
        }
      }
    }
  }

  // Median barrier with lamp posts on it.
  if (layout.medianBarrier) {
    for (let x = -half; x < half; x += 25) b.box(x + 12.5, 0, 25, 0.6, 0.9, 0, 'barrier', 0.45, CONCRETE);
    for (let x = -half + 30; x < half; x += 60) {
      b.box(x, 0, 0.25, 0.25, 10, 0, 'pole', 0.5, METAL);
      b.box(x, 1.2, 0.15, 2.4, 0.15, 0, 'pole', 0.5, METAL, 9.7);
      b.box(x, -1.2, 0.15, 2.4, 0.15, 0, 'pole', 0.5, METAL, 9.7);
    }
  }
  // Guard rails along both outer edges, open where the ramp joins.
  if (layout.guardRails) {
    const yRail = outer + 0.4;
    const gapFrom = xs - R - 5;
    const gapTo = x1 + 15;
    for (let x = -half; x < half; x += 20) {
      b.box(x + 10, yRail, 20, 0.25, 0.45, 0, 'barrier', 0.5, METAL, 0.35);
      if (x + 20 <= gapFrom || x >= gapTo) b.box(x + 10, -yRail, 20, 0.25, 0.45, 0, 'barrier', 0.5, METAL, 0.35);
    }
    // The rail beside the acceleration lane and taper, one lane further out.
    const yOut = -(outer + lw + 0.4);
    for (let x = xs; x < gapTo; x += 20) b.box(x + 10, yOut, 20, 0.25, 0.45, 0, 'barrier', 0.5, METAL, 0.35);
  }
  if (layout.noiseWall) {
    const { fromXM, toXM, heightM } = layout.noiseWall;
    for (let x = Math.max(-half, Math.min(fromXM, toXM)); x < Math.min(half, Math.max(fromXM, toXM)); x += 20) {
      b.box(x + 10, outer + 3, 20, 0.35, heightM, 0, 'barrier', 0.35, [150, 140, 120]);
    }
  }

  // Vegetation on both verges, kept off the lanes (the ramp loop included).
  const [tmin, tmax] = layout.treeSpacingM;
  if (tmax > 0) {
    const clearOfLanes = (x: number, y: number, r: number) => b.lanes.every((l) => projectOntoPolyline(l.path, x, y).distance > lw / 2 + 2 + r);
    for (const side of [1, -1]) {
      for (let x = -half + rng.uniform(0, tmax); x < half; x += rng.uniform(Math.max(tmin, 1), tmax)) {
        const y = side * (outer + rng.uniform(5, 30));
        if (side > 0 && layout.noiseWall && x > layout.noiseWall.fromXM - 2 && x < layout.noiseWall.toXM + 2 && y < outer + 5) continue;
        if (!clearOfLanes(x, y, 3)) continue;
        if (rng.next() < 0.7) b.tree(x, y);
        else b.bush(x, y);
      }
    }
  }
  // Warehouses well back from the road.
  const placed: Footprint[] = [];
  for (let i = 0, tries = 0; i < layout.warehouses && tries < layout.warehouses * 20; tries++) {
    const l = rng.uniform(40, 90);
    const w = rng.uniform(25, 50);
    const side = rng.next() < 0.5 ? 1 : -1;
    const x = rng.uniform(-half + l / 2, half - l / 2);
    const y = side * (outer + 40 + w / 2 + rng.uniform(0, 30));
    const fp: Footprint = { x, y, yaw: 0, l: l + 6, w: w + 6 };
    if (placed.some((p) => footprintsOverlap(p, fp))) continue;
    if (b.lanes.some((lane) => projectOntoPolyline(lane.path, x, y).distance < Math.hypot(l, w) / 2 + 10)) continue;
    if (!b.isClear(x, y, Math.hypot(l, w) / 2)) continue;
    placed.push(fp);
    b.box(x, y, l, w, rng.uniform(7, 13), 0, 'building', rng.uniform(0.3, 0.5), rng.pick(BUILDING_COLORS));
    i++;
  }
  return bounds;
}

// ---------------------------------------------------------------------------------------------------------------
// Conflicts

/** Footprints of the largest vehicle along a connector, from nose at the stop line to tail past its end. */
function sweepFootprints(world: { lanes: Lane[] }, c: Lane): Footprint[] {
  const from = world.lanes[c.predecessors[0]];
  const to = world.lanes[c.successors[0]];
  const half = SWEEP_LENGTH / 2;
  const out: Footprint[] = [];
  const a: PathPoint = { x: 0, y: 0, heading: 0 };
  const r: PathPoint = { x: 0, y: 0, heading: 0 };
  // Position along the chain from → c → to, s measured from the connector start.
  const at = (s: number, p: PathPoint) => {
    if (s < 0) return pointAt(from.path, from.path.length + s, p);
    if (s > c.path.length) return pointAt(to.path, s - c.path.length, p);
    return pointAt(c.path, s, p);
  };
  for (let s = -half; s <= c.path.length + half; s += 0.75) {
    at(s + half, a);
    at(s - half, r);
    out.push({ x: (a.x + r.x) / 2, y: (a.y + r.y) / 2, yaw: Math.atan2(a.y - r.y, a.x - r.x), l: SWEEP_LENGTH, w: SWEEP_WIDTH });
  }
  return out;
}

function computeConflicts(world: { lanes: Lane[]; junctions: Junction[]; walkways: Walkway[] }): void {
  for (const j of world.junctions) {
    if (j.kind === 'merge') {
      for (const a of j.connectors) for (const c of j.connectors) {
        if (a !== c && world.lanes[a].successors[0] === world.lanes[c].successors[0]) world.lanes[a].mergePartners.push(c);
      }
      continue;
    }
    const sweeps = new Map<number, Footprint[]>();
    for (const id of j.connectors) sweeps.set(id, sweepFootprints(world, world.lanes[id]));
    const overlap = (p: Footprint[], q: Footprint[]) => p.some((fa) => q.some((fb) => footprintsOverlap(fa, fb)));
    for (let i = 0; i < j.connectors.length; i++) {
      for (let k = i + 1; k < j.connectors.length; k++) {
        const a = world.lanes[j.connectors[i]];
        const c = world.lanes[j.connectors[k]];
        // Connectors leaving the same lane are ordered by car following, not by the junction.
        if (a.predecessors[0] === c.predecessors[0]) continue;
        if (overlap(sweeps.get(a.id)!, sweeps.get(c.id)!)) {
          a.conflicts.push(c.id);
          c.conflicts.push(a.id);
        }
      }
    }
    for (const wid of j.crosswalks) {
      const w = world.walkways[wid];
      const p0: PathPoint = pointAt(w.path, 0, { x: 0, y: 0, heading: 0 });
      const fp: Footprint = { x: p0.x + Math.cos(p0.heading) * w.path.length / 2, y: p0.y + Math.sin(p0.heading) * w.path.length / 2, yaw: p0.heading, l: w.path.length, w: w.width };
      for (const cid of j.connectors) {
        if (sweeps.get(cid)!.some((f) => footprintsOverlap(f, fp))) {
          w.conflicts.push(cid);
          world.lanes[cid].crosswalkConflicts.push(wid);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Entry point

/** Nearest road lane to (x, y) whose direction is within 45° of `heading`. */
export function snapToLane(world: World, x: number, y: number, heading: number): { lane: Lane; s: number; distance: number } | null {
  let best: { lane: Lane; s: number; distance: number } | null = null;
  for (const lane of world.lanes) {
    if (lane.kind !== 'road') continue;
    const p = projectOntoPolyline(lane.path, x, y);
    let dh = Math.abs(p.heading - heading) % (2 * Math.PI);
    if (dh > Math.PI) dh = 2 * Math.PI - dh;
    if (dh > Math.PI / 4) continue;
    if (!best || p.distance < best.distance) best = { lane, s: p.s, distance: p.distance };
  }
  return best;
}

/** Builds the static world of a scenario. Same scenario and seed ⇒ the same world. */
export function buildWorld(scenario: Scenario, rng: Rng): World {
  const layout = scenario.layout;
  const laneWidth = layout.laneWidthM;
  const b = new WorldBuilder(rng, laneWidth);

  const rsuSites: RsuSite[] = [];
  scenario.agents.forEach((a, i) => {
    if (a.type !== 'rsu') return;
    rsuSites.push({ agentIndex: i, x: a.positionM[0], y: a.positionM[1], poleHeight: a.poleHeightM });
    b.keepClear.push({ x: a.positionM[0], y: a.positionM[1], r: 2.5 });
  });

  let bounds: [number, number, number, number];
  try {
    if (layout.type === 'highway-onramp') {
      bounds = buildHighway(b, layout);
    } else {
      const { bounds: bb, vertical, horizontal } = urbanStreets(layout);
      bounds = bb;
      buildUrban(b, layout, bounds, vertical, horizontal);
    }
  } catch (err) {
    // Geometry problems found while building name the scenario file.
    if (err instanceof ScenarioError && err.file === '(layout)') throw new ScenarioError(scenario.source, err.field, err.detail);
    throw err;
  }

  const world: World = {
    layout: layout.type,
    bounds,
    lanes: b.lanes,
    junctions: b.junctions,
    walkNodes: b.walkNodes,
    walkways: b.walkways,
    parkingSpots: b.parkingSpots,
    staticPrimitives: b.primitives,
    roads: b.roads,
    groundColor: layout.type === 'highway-onramp' ? [104, 118, 82] : [150, 148, 142],
    roadColor: [72, 72, 74],
    laneWidth,
    rsuSites,
  };
  computeConflicts(world);

  // Roadside units stand on a pole off the carriageway.
  for (const site of rsuSites) {
    for (const lane of world.lanes) {
      const d = projectOntoPolyline(lane.path, site.x, site.y).distance;
      if (d < lane.width / 2 + 0.5) {
        throw new ScenarioError(scenario.source, `agents[${site.agentIndex}].positionM`, `(${site.x}, ${site.y}) is on a driving lane (${d.toFixed(1)} m from its centre line); put the pole on a sidewalk or verge`);
      }
    }
    world.staticPrimitives.push(
      { x: site.x, y: site.y, z: (site.poleHeight - 0.3) / 2, l: 0.35, w: 0.35, h: site.poleHeight - 0.3, yaw: 0, surface: 'pole', reflectivity: 0.5, color: METAL, objectId: -1 },
      { x: site.x + 0.5, y: site.y, z: 0.7, l: 0.5, w: 0.7, h: 1.4, yaw: 0, surface: 'pole', reflectivity: 0.4, color: [150, 150, 140], objectId: -1 },
    );
  }
  return world;
}

/** Walkways and lanes for tests and tools: is (x, y) on a sidewalk or crosswalk? */
export function onWalkway(world: World, x: number, y: number, tolerance = 0): boolean {
  return world.walkways.some((w) => projectOntoPolyline(w.path, x, y).distance <= w.width / 2 + tolerance);
}
