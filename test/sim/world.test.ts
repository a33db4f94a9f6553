import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bevIoU } from '../../src/geometry/index.ts';
import { Rng } from '../../src/sim/random.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import {
  type Footprint,
  type Lane,
  type World,
  buildWorld,
  footprintsOverlap,
  makePolyline,
  pointAt,
  projectOntoPolyline,
  signalState,
} from '../../src/sim/world.ts';

async function world(name: string, seed = 1): Promise<World> {
  return buildWorld(await loadScenario(name), new Rng(seed).fork('world'));
}

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${a} vs ${b}`);

test('polyline: points, headings and extension past both ends', () => {
  // An L: 10 m east, then 5 m north.
  const p = makePolyline([[0, 0], [10, 0], [10, 5]]);
  close(p.length, 15);
  const q = { x: 0, y: 0, heading: 0 };
  pointAt(p, 4, q);
  close(q.x, 4); close(q.y, 0); close(q.heading, 0);
  pointAt(p, 12, q);
  close(q.x, 10); close(q.y, 2); close(q.heading, Math.PI / 2);
  pointAt(p, -3, q);
  close(q.x, -3); close(q.y, 0);
  pointAt(p, 17, q);
  close(q.x, 10); close(q.y, 7);
  const proj = projectOntoPolyline(p, 12, 3);
  close(proj.distance, 2); close(proj.s, 13);
});

test('footprint overlap: known touching cases and agreement with the geometry module', () => {
  const a: Footprint = { x: 0, y: 0, yaw: 0, l: 4, w: 2 };
  assert.equal(footprintsOverlap(a, { x: 3.9, y: 0, yaw: 0, l: 4, w: 2 }), true);
  assert.equal(footprintsOverlap(a, { x: 4.1, y: 0, yaw: 0, l: 4, w: 2 }), false);
  // Turned 90°: B reaches 1 m back along x.
  assert.equal(footprintsOverlap(a, { x: 2.95, y: 0, yaw: Math.PI / 2, l: 4, w: 2 }), true);
  assert.equal(footprintsOverlap(a, { x: 3.05, y: 0, yaw: Math.PI / 2, l: 4, w: 2 }), false);
  // Random pairs against the geometry module's polygon clipping (pairs within 1e-6 of touching are skipped).
  const rng = new Rng(5);
  let overlapping = 0;
  for (let i = 0; i < 2000; i++) {
    const p: Footprint = { x: rng.uniform(-6, 6), y: rng.uniform(-4, 4), yaw: rng.uniform(-Math.PI, Math.PI), l: rng.uniform(0.5, 12), w: rng.uniform(0.5, 2.6) };
    const q: Footprint = { x: rng.uniform(-6, 6), y: rng.uniform(-4, 4), yaw: rng.uniform(-Math.PI, Math.PI), l: rng.uniform(0.5, 12), w: rng.uniform(0.5, 2.6) };
    const iou = bevIoU({ ...p, z: 0, h: 1 }, { ...q, z: 0, h: 1 });
    if (iou > 1e-6 || iou === 0) assert.equal(footprintsOverlap(p, q), iou > 0, JSON.stringify({ p, q, iou }));
    if (iou > 0) overlapping++;
  }
  assert.ok(overlapping > 200 && overlapping < 1800, `${overlapping} of 2000 random pairs overlap`);
});

test('signals: two phases with amber and all-red, each group red while the other has green', () => {
  const timing = { greenS: 10, amberS: 2, allRedS: 1, offsetS: 0 };
  assert.deepEqual(signalState(timing, 0, 0), { state: 'green', remaining: 10 });
  assert.equal(signalState(timing, 1, 0).state, 'red');
  assert.equal(signalState(timing, 0, 10.5).state, 'amber');
  assert.equal(signalState(timing, 0, 12.5).state, 'red');
  assert.equal(signalState(timing, 1, 12.5).state, 'red'); // all-red clearance
  assert.equal(signalState(timing, 1, 13).state, 'green');
  close(signalState(timing, 1, 13).remaining, 10);
  assert.equal(signalState(timing, 0, 26).state, 'green'); // the cycle is 2 · (10 + 2 + 1)
  for (let t = 0; t < 60; t += 0.1) {
    assert.ok(!(signalState(timing, 0, t).state !== 'red' && signalState(timing, 1, t).state !== 'red'), `both groups open at t = ${t}`);
  }
});

function connectorsOf(w: World): Lane[] {
  return w.lanes.filter((l) => l.kind === 'connector');
}

function heading(l: Lane, end: 'start' | 'end'): number {
  return pointAt(l.path, end === 'start' ? 0 : l.path.length, { x: 0, y: 0, heading: 0 }).heading;
}

test('intersection: one signalised junction, every movement its lane allows, lane discipline', async () => {
  const w = await world('intersection');
  assert.equal(w.junctions.length, 1);
  assert.equal(w.junctions[0].kind, 'signalised');
  const cs = connectorsOf(w);
  // Main street (2 lanes): 2 straight + left + right per arm; side street (1 lane): 3 per arm.
  assert.equal(cs.length, 2 * 4 + 2 * 3);
  assert.equal(cs.filter((c) => c.turn === 'left').length, 4);
  assert.equal(cs.filter((c) => c.turn === 'right').length, 4);
  for (const c of cs) {
    let dh = heading(c, 'end') - heading(c, 'start');
    dh = Math.atan2(Math.sin(dh), Math.cos(dh));
    const expected = c.turn === 'left' ? Math.PI / 2 : c.turn === 'right' ? -Math.PI / 2 : 0;
    close(dh, expected, 0.08); // the end segments of a sampled curve are chords
    // Connectors join their lanes without a gap.
    const from = w.lanes[c.predecessors[0]];
    const a = pointAt(from.path, from.path.length, { x: 0, y: 0, heading: 0 });
    const b = pointAt(c.path, 0, { x: 0, y: 0, heading: 0 });
    close(Math.hypot(a.x - b.x, a.y - b.y), 0, 1e-9);
  }
  // Eastbound main-street lanes: the inner one (y = −1.75) turns left, the outer one (y = −5.25) right.
  const eastbound = w.lanes.filter((l) => l.kind === 'road' && l.successors.length > 0 && Math.abs(heading(l, 'end')) < 0.01 && l.path.xs[1] < 0);
  assert.equal(eastbound.length, 2);
  const turnsFrom = (y: number) => eastbound.find((l) => Math.abs(l.path.ys[0] - y) < 1e-9)!.successors.map((id) => w.lanes[id].turn).sort();
  assert.deepEqual(turnsFrom(-1.75), ['left', 'straight']);
  assert.deepEqual(turnsFrom(-5.25), ['right', 'straight']);
});

test('intersection: crossing movements conflict, parallel ones do not', async () => {
  const w = await world('intersection');
  const cs = connectorsOf(w);
  const find = (startHeading: number, turn: string, y?: number) =>
    cs.find((c) => Math.abs(Math.atan2(Math.sin(heading(c, 'start') - startHeading), Math.cos(heading(c, 'start') - startHeading))) < 0.1 && c.turn === turn && (y === undefined || Math.abs(c.path.ys[0] - y) < 1e-6))!;
  const eastStraightInner = find(0, 'straight', -1.75);
  const westStraightInner = find(Math.PI, 'straight', 1.75);
  const northStraight = find(Math.PI / 2, 'straight');
  const southStraight = find(-Math.PI / 2, 'straight');
  const eastRight = find(0, 'right');
  const westRight = find(Math.PI, 'right');
  const eastLeft = find(0, 'left');
  const conflict = (a: Lane, b: Lane) => a.conflicts.includes(b.id);
  assert.ok(conflict(eastStraightInner, northStraight));
  assert.ok(conflict(northStraight, eastStraightInner), 'conflicts are symmetric');
  assert.ok(conflict(eastLeft, westStraightInner), 'a left turn crosses oncoming traffic');
  assert.ok(!conflict(eastStraightInner, westStraightInner), 'opposite through lanes are parallel');
  assert.ok(!conflict(northStraight, southStraight));
  assert.ok(!conflict(eastRight, westRight), 'right turns from opposite arms stay in their corners');
  // Connectors leaving the same lane are ordered by following, not by reservation.
  const sibling = cs.find((c) => c.predecessors[0] === eastLeft.predecessors[0] && c.id !== eastLeft.id)!;
  assert.ok(!conflict(eastLeft, sibling));
  // The south→north through movement crosses the south and north crosswalks, not the east and west ones.
  const crosswalks = w.junctions[0].crosswalks.map((id) => w.walkways[id]);
  const crossed = northStraight.crosswalkConflicts.map((id) => w.walkways[id]);
  assert.equal(crosswalks.length, 4);
  assert.equal(crossed.length, 2);
  for (const cw of crossed) close(cw.path.ys[0], cw.path.ys[1], 1e-9); // runs along x: across the N or S arm
});

test('urban grid: 16 junctions, sidewalks and crosswalks everywhere, no building on a road', async () => {
  const w = await world('urban-grid');
  assert.equal(w.junctions.length, 16);
  for (const j of w.junctions) assert.equal(j.crosswalks.length, 4);
  const roads = w.lanes.filter((l) => l.kind === 'road');
  const laneBoxes: Footprint[] = roads.map((l) => {
    const a = pointAt(l.path, 0, { x: 0, y: 0, heading: 0 });
    return { x: (l.path.xs[0] + l.path.xs[1]) / 2, y: (l.path.ys[0] + l.path.ys[1]) / 2, yaw: a.heading, l: l.path.length, w: l.width };
  });
  const buildings = w.staticPrimitives.filter((p) => p.surface === 'building');
  assert.ok(buildings.length > 100, `${buildings.length} buildings`);
  for (const b of buildings) {
    for (const lb of laneBoxes) assert.ok(!footprintsOverlap(b, lb), `building at (${b.x.toFixed(1)}, ${b.y.toFixed(1)}) on a lane`);
  }
  const heights = buildings.map((b) => b.z + b.h / 2);
  assert.ok(Math.max(...heights) > 30 && Math.min(...heights) < 12, 'buildings of varied height');
  // Sidewalk nodes link into one network: from any corner, a pedestrian can reach every other.
  const seen = new Set<number>([0]);
  const stack = [0];
  while (stack.length > 0) {
    const n = stack.pop()!;
    for (const wid of w.walkNodes[n].walkways) {
      const way = w.walkways[wid];
      for (const m of [way.from, way.to]) if (!seen.has(m)) { seen.add(m); stack.push(m); }
    }
  }
  assert.equal(seen.size, w.walkNodes.length);
});

test('highway: the ramp merges through a priority merge junction, behind a median barrier', async () => {
  const w = await world('highway-onramp');
  assert.equal(w.junctions.length, 1);
  const j = w.junctions[0];
  assert.equal(j.kind, 'merge');
  assert.equal(j.signal, null);
  const [a, b] = j.connectors.map((id) => w.lanes[id]);
  assert.deepEqual(a.mergePartners, [b.id]);
  assert.deepEqual(b.mergePartners, [a.id]);
  assert.equal(a.successors[0], b.successors[0]);
  const ramp = a.priority < b.priority ? a : b;
  const through = ramp === a ? b : a;
  // The ramp joins from outside (south of) the rightmost eastbound lane.
  assert.ok(ramp.path.ys[0] < through.path.ys[0] - 3);
  assert.ok(w.lanes.filter((l) => l.entry).length === 7, 'six carriageway lanes and the ramp start at the map edge');
  const barriers = w.staticPrimitives.filter((p) => p.surface === 'barrier' && Math.abs(p.y) < 0.01);
  assert.ok(barriers.reduce((s, p) => s + p.l, 0) >= 1200 - 1, 'median barrier along the whole length');
  assert.ok(w.staticPrimitives.some((p) => p.surface === 'vegetation'));
});

test('a roadside unit gets a pole of its height at its position', async () => {
  const s = await loadScenario('intersection');
  const w = buildWorld(s, new Rng(1));
  const rsu = s.agents[3];
  assert.equal(rsu.type, 'rsu');
  if (rsu.type !== 'rsu') return;
  const pole = w.staticPrimitives.find((p) => p.surface === 'pole' && p.x === rsu.positionM[0] && p.y === rsu.positionM[1]);
  assert.ok(pole);
  close(pole.z + pole.h / 2, rsu.poleHeightM - 0.3, 1e-9); // the LiDAR sits 0.3 m above the pole top
});

test('the world is a function of the seed', async () => {
  const s = await loadScenario('intersection');
  const a = buildWorld(s, new Rng(11).fork('world'));
  const b = buildWorld(s, new Rng(11).fork('world'));
  const c = buildWorld(s, new Rng(12).fork('world'));
  assert.deepEqual(a.staticPrimitives, b.staticPrimitives);
  assert.notDeepEqual(a.staticPrimitives, c.staticPrimitives);
  // The road network does not depend on the seed.
  assert.deepEqual(a.lanes.map((l) => [...l.path.xs, ...l.path.ys]), c.lanes.map((l) => [...l.path.xs, ...l.path.ys]));
});
