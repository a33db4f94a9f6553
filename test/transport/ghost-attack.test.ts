// The ghost check as deployed: the ego agent sends its LiDAR's free-space map with its object lists (agent
// --free-space), an honest collaborator sends its own, and an attacker speaking as the roadside unit publishes a
// forged ObjectList (a correct header, unsigned) whose true cars come with ghost cars in open road the ego's beams
// crossed. Two fusion nodes listen to the same messages: the one with the consistency check (free-space test only,
// so that it is that test which decides) refuses the attacker as 'inconsistent' in every frame and keeps the honest
// collaborator; the one without publishes the ghosts among its detections.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { type CooperativeFrame, openDataset } from '../../src/datasets/index.ts';
import type { Detection } from '../../src/eval/index.ts';
import { FreeSpaceBuilder, contradictsFreeSpace, detectionsToObjects, freeSpaceGrid } from '../../src/fusion/index.ts';
import { invertRigid, matrixToPose, multiply, transformBox } from '../../src/geometry/index.ts';
import { type FusionResultInit, encodeMessage, nsFromWire, nsToWire } from '../../src/messages/index.ts';
import { MqttLink, agentTopic, epochNowNs, runAgentNode, runFusionNode, startEmbeddedBroker } from '../../src/transport/index.ts';
import { projectRoot } from '../cli/helpers.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const MODELS = resolve(projectRoot, 'models/manifest.json');
const manifest = JSON.parse(readFileSync(MODELS, 'utf8')) as { modelId: string; grid: { xMin: number; xMax: number; yMin: number; yMax: number } };
const GHOSTS_PER_FRAME = 4;

/** Car-sized ghosts (ego frame) in cells the ego's own beams saw free, ≥ 8 m from every true vehicle and each other. */
function placeGhosts(frame: CooperativeFrame, egoPoints: Float32Array, egoToWorld: Float64Array): Detection[] {
  const map = new FreeSpaceBuilder(freeSpaceGrid(manifest.grid)).build(egoPoints);
  const worldToEgo = invertRigid(egoToWorld);
  const truth = frame.agents.flatMap((a) => a.boxes).map((b) => transformBox(worldToEgo, b.box));
  const ghosts: Detection[] = [];
  for (let r = 10; r <= 34 && ghosts.length < GHOSTS_PER_FRAME; r += 6) {
    for (let deg = 0; deg < 360 && ghosts.length < GHOSTS_PER_FRAME; deg += 20) {
      const a = (deg * Math.PI) / 180;
      const g: Detection = { box: { x: r * Math.cos(a), y: r * Math.sin(a), z: -1, l: 4.5, w: 1.9, h: 1.6, yaw: a }, score: 0.95, cls: 'vehicle' };
      const clear = [...truth, ...ghosts.map((x) => x.box)].every((b) => Math.hypot(b.x - g.box.x, b.y - g.box.y) >= 8);
      if (clear && contradictsFreeSpace(map, g)) ghosts.push(g);
    }
  }
  return ghosts;
}

test('late fusion: the free-space check refuses an attacker publishing ghosts in the ego\'s free space; without it the ghosts are fused', { timeout: 180_000 }, async () => {
  const broker = await startEmbeddedBroker({ port: 0 });
  const session = 'ghost-test';
  const controller = new AbortController();
  const checked: FusionResultInit[] = [];
  const open: FusionResultInit[] = [];
  const listening: Promise<void>[] = [];
  const node = (fusionId: string, consistencyCheck: false | { agreement: false }, into: FusionResultInit[]) => {
    let ready!: () => void;
    listening.push(new Promise<void>((r) => (ready = r)));
    return runFusionNode({
      egoId: '100', fusionId, session, broker: broker.url, mode: 'late', models: MODELS, deadlineMs: 20_000, expect: ['101', '-1'],
      clock: 'replay', exitWhenEgoOffline: true, consistencyCheck, predictor: 'none', tracking: false, signal: controller.signal,
      log: (line) => line.includes('listening on') && ready(), onResult: (r) => into.push(r),
    });
  };
  try {
    const withCheck = node('fusion-checked', { agreement: false }, checked);
    const without = node('fusion-open', false, open);
    await Promise.race([Promise.all(listening), withCheck, without]);

    const epochNs = epochNowNs();
    const seq = (await openDataset(FIXTURE)).scenarios[0];
    const t0 = (await seq.frame(0)).timestampNs;
    const attacker = await MqttLink.connect({ url: broker.url, clientId: 'attacker' });
    const ghostsByFrame: Detection[][] = [];
    for (let i = 0; i < seq.frameCount; i++) {
      const frame = await seq.frame(i);
      const ego = frame.agents.find((a) => a.agentId === '100')!;
      const rsu = frame.agents.find((a) => a.agentId === '-1')!;
      const ghosts = placeGhosts(frame, await ego.loadPoints(), ego.lidarToWorld);
      assert.equal(ghosts.length, GHOSTS_PER_FRAME, `frame ${i}: room for the ghosts in the ego's free space`);
      ghostsByFrame.push(ghosts);
      // As the roadside unit would send them: its frame, its true pose, the frame's capture time; the true vehicles
      // it could report, so that the list looks like an honest one with ghosts added.
      const toRsu = invertRigid(rsu.lidarToWorld);
      const egoToRsu = multiply(toRsu, ego.lidarToWorld);
      const truth = frame.agents.flatMap((a) => a.boxes).filter((b, k, all) => b.cls === 'vehicle' && all.findIndex((x) => x.id === b.id) === k);
      const list: Detection[] = [
        ...truth.map((b) => ({ box: transformBox(toRsu, b.box), score: 0.9, cls: 'vehicle' as const })),
        ...ghosts.map((g) => ({ ...g, box: transformBox(egoToRsu, g.box) })),
      ];
      await attacker.publish(agentTopic(session, '-1', 'objects'), encodeMessage('objects', {
        header: { schemaVersion: 1, senderId: '-1', sequence: i + 1, captureTimeNs: nsToWire(epochNs + (rsu.timestampNs - t0)), senderPose: matrixToPose(rsu.lidarToWorld), modelId: manifest.modelId },
        objects: detectionsToObjects(list),
      }));
    }
    await attacker.end();

    const common = { session, broker: broker.url, dataset: FIXTURE, mode: 'late' as const, rateHz: 0, epochNs, models: MODELS };
    const [egoAgent] = await Promise.all([runAgentNode({ ...common, agentId: '100', freeSpace: true }), runAgentNode({ ...common, agentId: '101' })]);
    assert.ok(egoAgent.stageMs['free-space']?.length === 3, 'the ego agent built a map per frame');
    const [sChecked, sOpen] = await Promise.all([withCheck, without]);
    assert.equal(sChecked.framesFused, 3);
    assert.equal(sOpen.framesFused, 3);
    assert.equal(sChecked.dropped['free-space-corrupt'], undefined, 'the map arrived whole');
    assert.equal(sChecked.dropped.inconsistent, 3, JSON.stringify(sChecked.dropped));
    assert.equal(sOpen.dropped.inconsistent, undefined);

    const near = (ds: FusionResultInit['detections'], g: Detection) => (ds ?? []).some((d) => Math.hypot(d.box!.x! - g.box.x, d.box!.y! - g.box.y) < 0.5);
    const byCapture = (rs: FusionResultInit[]) => [...rs].sort((a, b) => Number(nsFromWire(a.header!.captureTimeNs) - nsFromWire(b.header!.captureTimeNs)));
    byCapture(checked).forEach((r, i) => {
      const by = Object.fromEntries(r.contributions!.map((c) => [c.agentId, c]));
      assert.equal(by['-1']?.used, false, `frame ${i}: attacker refused`);
      assert.equal(by['-1']?.refusedReason, 'inconsistent');
      assert.equal(by['101']?.used, true, `frame ${i}: the honest collaborator stays`);
      assert.ok(r.detections!.length > 0);
      for (const g of ghostsByFrame[i]) assert.ok(!near(r.detections, g), `frame ${i}: ghost at ${g.box.x.toFixed(1)}, ${g.box.y.toFixed(1)} kept out`);
    });
    byCapture(open).forEach((r, i) => {
      const by = Object.fromEntries(r.contributions!.map((c) => [c.agentId, c]));
      assert.equal(by['-1']?.used, true);
      for (const g of ghostsByFrame[i]) {
        const hit = r.detections!.find((d) => Math.hypot(d.box!.x! - g.box.x, d.box!.y! - g.box.y) < 0.5);
        assert.ok(hit, `frame ${i}: ghost at ${g.box.x.toFixed(1)}, ${g.box.y.toFixed(1)} fused without the check`);
        assert.deepEqual(hit.contributingAgents, ['-1'], 'and credited to the attacker alone');
      }
    });
  } finally {
    controller.abort();
    await broker.close();
  }
});
