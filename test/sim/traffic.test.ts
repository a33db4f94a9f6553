import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bevIoU } from '../../src/geometry/index.ts';
import { Rng } from '../../src/sim/random.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { type ActorBox, type ActorShape, TrafficSimulation, buildScene, makePedestrianShape, makeVehicleShape } from '../../src/sim/traffic.ts';
import { type World, buildWorld, onWalkway, projectOntoPolyline } from '../../src/sim/world.ts';

async function simulation(name: string, seed = 1): Promise<TrafficSimulation> {
  const s = await loadScenario(name);
  const rng = new Rng(seed);
  return new TrafficSimulation(buildWorld(s, rng.fork('world')), s, rng.fork('traffic'));
}

/** Axis-aligned extent of the parts, computed from the parts alone. */
function partsExtent(shape: ActorShape) {
  const e = { x0: Infinity, x1: -Infinity, y0: Infinity, y1: -Infinity, z0: Infinity, z1: -Infinity };
  for (const p of shape.parts) {
    e.x0 = Math.min(e.x0, p.x - p.l / 2); e.x1 = Math.max(e.x1, p.x + p.l / 2);
    e.y0 = Math.min(e.y0, p.y - p.w / 2); e.y1 = Math.max(e.y1, p.y + p.w / 2);
    e.z0 = Math.min(e.z0, p.z - p.h / 2); e.z1 = Math.max(e.z1, p.z + p.h / 2);
  }
  return e;
}

test('vehicle shapes: body, cabin and wheels whose union is exactly the ground-truth box', () => {
  const rng = new Rng(9);
  for (const cls of ['car', 'van', 'truck', 'bus'] as const) {
    for (let i = 0; i < 50; i++) {
      const s = makeVehicleShape(cls, rng);
      const e = partsExtent(s);
      const eps = 1e-9;
      assert.ok(Math.abs(e.x0 + s.length / 2) < eps && Math.abs(e.x1 - s.length / 2) < eps, `${cls} length`);
      assert.ok(Math.abs(e.y0 + s.width / 2) < eps && Math.abs(e.y1 - s.width / 2) < eps, `${cls} width`);
      assert.ok(Math.abs(e.z0) < eps && Math.abs(e.z1 - s.height) < eps, `${cls} height`);
      const wheels = s.parts.filter((p) => p.surface === 'vehicle-wheel').length;
      assert.equal(wheels, cls === 'truck' ? 6 : 4);
      assert.ok(s.parts.some((p) => p.surface === 'vehicle-cabin'), `${cls} has glass`);
      // The cabin (greenhouse) sits on top, narrower than the body.
      if (cls === 'car') {
        const cabin = s.parts.find((p) => p.surface === 'vehicle-cabin')!;
        assert.ok(cabin.l < 0.7 * s.length && cabin.w < s.width && cabin.z > s.height / 2);
      }
      if (cls === 'truck') assert.ok(s.parts.filter((p) => p.surface === 'vehicle-body').length >= 3, 'chassis, cab and cargo box');
    }
  }
  const p = makePedestrianShape(rng);
  const e = partsExtent(p);
  assert.ok(Math.abs(e.z1 - p.height) < 1e-9 && p.height > 1.4 && p.height < 2);
  assert.equal(p.parts.length, 3);
});

test('vehicle dimensions follow realistic spreads per class', () => {
  const rng = new Rng(2);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const sample = (cls: 'car' | 'van' | 'truck' | 'bus') => Array.from({ length: 300 }, () => makeVehicleShape(cls, rng));
  const cars = sample('car');
  assert.ok(Math.abs(mean(cars.map((s) => s.length)) - 4.5) < 0.25);
  assert.ok(Math.abs(mean(cars.map((s) => s.width)) - 1.82) < 0.08);
  assert.ok(Math.abs(mean(cars.map((s) => s.height)) - 1.55) < 0.12);
  assert.ok(Math.max(...cars.map((s) => s.length)) - Math.min(...cars.map((s) => s.length)) > 0.8, 'cars differ');
  const buses = sample('bus');
  assert.ok(buses.every((s) => s.length >= 10.5 && s.length <= 12.5 && s.width >= 2.5));
  const trucks = sample('truck');
  assert.ok(trucks.every((s) => s.length >= 6.5 && s.height >= 2.9));
  assert.ok(mean(sample('van').map((s) => s.height)) > 1.95);
});

function overlappingPairs(boxes: ActorBox[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let k = i + 1; k < boxes.length; k++) {
      const a = boxes[i];
      const b = boxes[k];
      if (Math.hypot(a.x - b.x, a.y - b.y) > (a.l + b.l) / 2 + 2) continue;
      if (bevIoU(a, b) > 0) out.push(`${a.id}/${b.id} at (${a.x.toFixed(1)}, ${a.y.toFixed(1)})`);
    }
  }
  return out;
}

function distanceToLanes(world: World, x: number, y: number): number {
  let best = Infinity;
  for (const l of world.lanes) best = Math.min(best, projectOntoPolyline(l.path, x, y).distance);
  return best;
}

interface RunStats {
  steps: number;
  overlaps: string[];
  offRoad: string[];
  offWalkway: string[];
  turned: Set<number>;
  classes: Set<string>;
  lengths: number[];
  crossed: Set<number>;
  vehiclesSeen: Set<number>;
  meanSpeed: number;
}

function run(sim: TrafficSimulation, steps: number): RunStats {
  const world = sim.world;
  const stats: RunStats = { steps, overlaps: [], offRoad: [], offWalkway: [], turned: new Set(), classes: new Set(), lengths: [], crossed: new Set(), vehiclesSeen: new Set(), meanSpeed: 0 };
  const firstYaw = new Map<number, number>();
  let speedSum = 0;
  let speedCount = 0;
  for (let i = 0; i < steps; i++) {
    sim.advance();
    const boxes = sim.actorBoxes();
    const vehicles = boxes.filter((b) => b.cls !== 'pedestrian');
    for (const o of overlappingPairs(vehicles)) stats.overlaps.push(`step ${i}: ${o}`);
    for (const v of sim.vehicles) {
      if (!stats.vehiclesSeen.has(v.id)) {
        stats.vehiclesSeen.add(v.id);
        stats.classes.add(v.shape.cls);
        stats.lengths.push(v.shape.length);
        firstYaw.set(v.id, v.yaw);
      }
      const dyaw = Math.abs(Math.atan2(Math.sin(v.yaw - firstYaw.get(v.id)!), Math.cos(v.yaw - firstYaw.get(v.id)!)));
      if (Math.abs(dyaw - Math.PI / 2) < 0.15) stats.turned.add(v.id);
      speedSum += v.v;
      speedCount++;
      if (i % 5 === 0) {
        const d = distanceToLanes(world, v.x, v.y);
        if (d > world.laneWidth) stats.offRoad.push(`step ${i}: vehicle ${v.id} ${d.toFixed(2)} m from any lane`);
      }
    }
    for (const p of sim.pedestrians) {
      if (world.walkways[p.walkway].kind === 'crosswalk' && p.waitingFor < 0) stats.crossed.add(p.id);
      if (i % 5 === 0 && !onWalkway(world, p.x, p.y)) stats.offWalkway.push(`step ${i}: pedestrian ${p.id} at (${p.x.toFixed(1)}, ${p.y.toFixed(1)})`);
    }
  }
  stats.meanSpeed = speedSum / speedCount;
  return stats;
}

test('intersection, 300 steps: no overlaps, vehicles on lanes, turns, pedestrians crossing, mixed sizes', async () => {
  const sim = await simulation('intersection');
  assert.ok(sim.pedestrians.length === 24 && sim.parked.length === 14);
  const cavs = sim.agentActorIds.filter((id) => id > 0);
  const r = run(sim, 300);
  assert.deepEqual(r.overlaps, [], 'IDM and junction reservations keep vehicles apart');
  assert.deepEqual(r.offRoad, []);
  assert.deepEqual(r.offWalkway, [], 'pedestrians keep to sidewalks and crosswalks');
  assert.ok(r.turned.size >= 3, `${r.turned.size} vehicles turned by ~90°`);
  assert.ok(r.crossed.size >= 2, `${r.crossed.size} pedestrians used a crosswalk`);
  assert.ok(r.classes.size >= 3, `classes seen: ${[...r.classes].join(', ')}`);
  assert.ok(Math.max(...r.lengths) - Math.min(...r.lengths) > 3);
  // Traffic flows: vehicles leave at the edges and new ones come in; the connected vehicles stay.
  assert.ok(r.vehiclesSeen.size > sim.vehicles.length + 5, `${r.vehiclesSeen.size} vehicles seen, ${sim.vehicles.length} now`);
  assert.ok(r.meanSpeed > 2, `mean speed ${r.meanSpeed.toFixed(1)} m/s`);
  for (const id of cavs) assert.ok(sim.vehicleById(id), `connected vehicle ${id} still in the world`);
});

test('highway, 300 steps: no overlaps at the merge, vehicles from the ramp join the motorway', async () => {
  const sim = await simulation('highway-onramp');
  const world = sim.world;
  const ramp = world.lanes.find((l) => l.entry && l.spawnWeight < 1)!;
  const onRampAtStart = new Set(sim.vehicles.filter((v) => v.route[0] === ramp.id).map((v) => v.id));
  const r = run(sim, 300);
  assert.deepEqual(r.overlaps, []);
  assert.deepEqual(r.offRoad, []);
  assert.ok(r.meanSpeed > 15, `mean speed ${r.meanSpeed.toFixed(1)} m/s on a 100 km/h motorway`);
  assert.ok(r.classes.has('truck'));
  const merge = world.junctions[0];
  const after = world.lanes[world.lanes[merge.connectors[0]].successors[0]];
  const merged = sim.vehicles.filter((v) => onRampAtStart.has(v.id) && (v.route[0] === after.id || v.prevLane === after.id || v.x > after.path.xs[0]));
  assert.ok(merged.length >= 1, 'at least one vehicle that started on the ramp is past the merge');
});

test('urban grid, 200 steps: no overlaps across sixteen junctions', async () => {
  const r = run(await simulation('urban-grid'), 200);
  assert.deepEqual(r.overlaps, []);
  assert.deepEqual(r.offRoad, []);
  assert.ok(r.turned.size >= 5);
});

test('traffic is a function of the seed', async () => {
  const a = await simulation('intersection', 7);
  const b = await simulation('intersection', 7);
  const c = await simulation('intersection', 8);
  for (let i = 0; i < 60; i++) { a.advance(); b.advance(); c.advance(); }
  assert.deepEqual(a.actorBoxes(), b.actorBoxes());
  assert.notDeepEqual(a.actorBoxes(), c.actorBoxes());
});

test('the scene has every actor as parts tagged with its id, on top of the static world', async () => {
  const sim = await simulation('fixture');
  sim.advance();
  const scene = buildScene(sim);
  const ids = new Set(scene.primitives.map((p) => p.objectId));
  for (const a of sim.actorBoxes()) assert.ok(ids.has(a.id), `actor ${a.id} in the scene`);
  const statics = scene.primitives.filter((p) => p.objectId === -1).length;
  assert.equal(statics, sim.world.staticPrimitives.length);
  // A vehicle's parts lie inside its ground-truth box.
  const v = sim.vehicles[0];
  const box = sim.actorBoxes().find((b) => b.id === v.id)!;
  for (const p of scene.primitives.filter((q) => q.objectId === v.id)) {
    const dx = p.x - box.x;
    const dy = p.y - box.y;
    const along = dx * Math.cos(box.yaw) + dy * Math.sin(box.yaw);
    const across = -dx * Math.sin(box.yaw) + dy * Math.cos(box.yaw);
    assert.ok(Math.abs(along) + p.l / 2 <= box.l / 2 + 1e-9 && Math.abs(across) + p.w / 2 <= box.w / 2 + 1e-9);
    assert.ok(p.z + p.h / 2 <= box.h + 1e-9);
  }
});
