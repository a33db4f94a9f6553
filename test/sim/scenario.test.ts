import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Rng } from '../../src/sim/random.ts';
import { ScenarioError, formatFieldPath, listScenarios, loadScenario, parseScenario } from '../../src/sim/scenario.ts';
import { TrafficSimulation } from '../../src/sim/traffic.ts';
import { buildWorld } from '../../src/sim/world.ts';

const SHIPPED = ['fixture', 'highway-onramp', 'intersection', 'urban-grid'];

async function shippedJson(name: string): Promise<Record<string, any>> {
  return JSON.parse(await readFile(path.resolve(process.cwd(), 'datasets/scenarios', `${name}.json`), 'utf8'));
}

test('the built-in scenarios are listed by name', async () => {
  const names = await listScenarios();
  for (const n of SHIPPED) assert.ok(names.includes(n), `${n} missing from ${names.join(', ')}`);
});

test('every shipped scenario validates and builds a world with its agents placed', async () => {
  for (const name of await listScenarios()) {
    const s = await loadScenario(name);
    assert.equal(s.name, name);
    assert.equal(s.source, `datasets/scenarios/${name}.json`);
    const rng = new Rng(3);
    const world = buildWorld(s, rng.fork('world'));
    const sim = new TrafficSimulation(world, s, rng.fork('traffic'));
    // Connected vehicles get the lowest actor ids (100, 101, ...), roadside units -1, -2, ...
    let nextCav = 100;
    let nextRsu = -1;
    s.agents.forEach((a, i) => assert.equal(sim.agentActorIds[i], a.type === 'vehicle' ? nextCav++ : nextRsu--));
  }
});

test('a bare name resolves in the package, whatever the working directory', async () => {
  const cwd = process.cwd();
  process.chdir(tmpdir());
  try {
    assert.equal((await loadScenario('fixture')).name, 'fixture');
  } finally {
    process.chdir(cwd);
  }
});

test('field paths read like the file: agents[1].lidar', () => {
  assert.equal(formatFieldPath(['agents', 1, 'lidar']), 'agents[1].lidar');
  assert.equal(formatFieldPath(['layout', 'buildings', 'heightRangeM', 0]), 'layout.buildings.heightRangeM[0]');
  assert.equal(formatFieldPath([]), '(document)');
});

function rejects(json: unknown, field: string, detail: RegExp): void {
  assert.throws(
    () => parseScenario(json, 'datasets/scenarios/x.json'),
    (err: unknown) => {
      assert.ok(err instanceof ScenarioError, String(err));
      assert.equal(err.field, field);
      assert.match(err.detail, detail);
      assert.ok(err.message.startsWith(`datasets/scenarios/x.json: ${field}: `), err.message);
      return true;
    },
  );
}

test('an unknown LiDAR preset is named with its path and the valid choices', async () => {
  const s = await shippedJson('intersection');
  s.agents[1].lidar = 'hdl128';
  rejects(s, 'agents[1].lidar', /^expected one of vlp16\|hdl32\|hdl64\|rsu-pole$/);
});

test('a wrong layout type names layout.type', async () => {
  const s = await shippedJson('intersection');
  s.layout.type = 'roundabout';
  rejects(s, 'layout.type', /intersection\|grid\|highway-onramp/);
});

test('a missing field is reported as missing', async () => {
  const s = await shippedJson('urban-grid');
  delete s.traffic.pedestrians;
  rejects(s, 'traffic.pedestrians', /missing/);
});

test('a value of the wrong type names the expected type', async () => {
  const s = await shippedJson('highway-onramp');
  s.layout.lanesPerDirection = 'three';
  rejects(s, 'layout.lanesPerDirection', /expected number/);
});

test('a misspelt field is refused, not ignored', async () => {
  const s = await shippedJson('fixture');
  s.agents[2].poleHeight = 6;
  rejects(s, 'agents[2].poleHeight', /unknown field/);
});

test('traffic needs exactly one of a density and a count', async () => {
  const s = await shippedJson('fixture');
  s.traffic.vehiclesPerKmOfLane = 10; // fixture already gives vehicleCount
  rejects(s, 'traffic.vehiclesPerKmOfLane', /exactly one/);
});

test('a highway with pedestrians is refused', async () => {
  const s = await shippedJson('highway-onramp');
  s.traffic.pedestrians = 5;
  rejects(s, 'traffic.pedestrians', /no sidewalks/);
});

test('loading a broken file names the file as given and the field', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'v2xfuse-scenario-'));
  try {
    const s = await shippedJson('intersection');
    s.agents[3].lidar = 'lidar9000';
    const file = path.join(dir, 'broken.json');
    await writeFile(file, JSON.stringify(s));
    await assert.rejects(loadScenario(file), (err: Error) => {
      assert.equal(err.message, `${file}: agents[3].lidar: expected one of vlp16|hdl32|hdl64|rsu-pole`);
      return true;
    });
    await writeFile(file, '{ "name": ');
    await assert.rejects(loadScenario(file), /broken\.json: \(json\): /);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an unknown built-in name lists the ones there are', async () => {
  await assert.rejects(loadScenario('no-such-scenario'), (err: Error) => {
    assert.match(err.message, /^datasets\/scenarios\/no-such-scenario\.json: \(file\): not found; built-in scenarios: .*intersection/);
    return true;
  });
});

test('a planned turn the lane does not allow fails at load time, naming the route entry', async () => {
  const s = parseScenario(await shippedJson('intersection'), 'datasets/scenarios/intersection.json');
  // Agent 0 drives east in the inner lane of the two-lane main street: it may go straight or left, not right.
  const agent = s.agents[0];
  assert.equal(agent.type, 'vehicle');
  if (agent.type === 'vehicle') agent.route = ['right'];
  const rng = new Rng(1);
  const world = buildWorld(s, rng.fork('world'));
  assert.throws(() => new TrafficSimulation(world, s, rng.fork('traffic')), (err: unknown) => {
    assert.ok(err instanceof ScenarioError);
    assert.equal(err.field, 'agents[0].route[0]');
    assert.match(err.detail, /no 'right'.*allows straight\|left/);
    return true;
  });
});

test('a roadside unit placed on a driving lane is refused', async () => {
  const json = await shippedJson('intersection');
  json.agents[3].positionM = [20, 1.75];
  const s = parseScenario(json, 'datasets/scenarios/intersection.json');
  assert.throws(() => buildWorld(s, new Rng(1)), /agents\[3\]\.positionM: \(20, 1\.75\) is on a driving lane/);
});

test('a connected vehicle spawned away from any lane is refused', async () => {
  const json = await shippedJson('fixture');
  json.agents[0].spawn.positionM = [-30, -30];
  const s = parseScenario(json, 'datasets/scenarios/fixture.json');
  const rng = new Rng(1);
  const world = buildWorld(s, rng.fork('world'));
  assert.throws(() => new TrafficSimulation(world, s, rng.fork('traffic')), /agents\[0\]\.spawn: no driving lane heading 0°/);
});
