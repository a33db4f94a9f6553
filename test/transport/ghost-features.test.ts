// The feature-mode consistency check as deployed: the ego agent sends its LiDAR's free-space map with its features
// (agent --free-space, intermediate fusion), the roadside unit sends its own features, and an attacker speaking as
// vehicle 101 publishes a forged FeatureFrame (a correct header, unsigned): 101's real map with the feature patch of
// the car its head finds strongest pasted, at 3 × its values, where the ego's beams saw open road.
// Two fusion nodes (max fusion) listen to the same messages: the one with --consistency-check runs the head on each
// collaborator's map alone and refuses the attacker as 'inconsistent', keeping the honest collaborator; the one
// without fuses the attacker's map.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { openDataset } from '../../src/datasets/index.ts';
import { encodeFeatures } from '../../src/codec/index.ts';
import type { Detection } from '../../src/eval/index.ts';
import { FreeSpaceBuilder, contradictsFreeSpace, freeSpaceGrid } from '../../src/fusion/index.ts';
import { invertRigid, matrixToPose, multiply, transformBox } from '../../src/geometry/index.ts';
import { type FusionResultInit, encodeMessage, nsFromWire, nsToWire } from '../../src/messages/index.ts';
import { PerceptionModels, describeFeatureGrid, featureShape } from '../../src/perception/index.ts';
import { MqttLink, agentTopic, epochNowNs, runAgentNode, runFusionNode, startEmbeddedBroker } from '../../src/transport/index.ts';
import { pasteFeaturePatches } from '../../tools/reliability/attack-ap.ts';
import { projectRoot } from '../cli/helpers.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const MODELS = resolve(projectRoot, 'models/manifest.json');
const CODEC = 'int8+deflate';
const GHOSTS_PER_FRAME = 4;
const PATCH_SCALE = 3;

test('intermediate fusion: the consistency check refuses a collaborator whose features show cars in the ego\'s free space; without it they are fused', { timeout: 180_000 }, async () => {
  const broker = await startEmbeddedBroker({ port: 0 });
  const session = 'ghost-features-test';
  const controller = new AbortController();
  const checked: FusionResultInit[] = [];
  const open: FusionResultInit[] = [];
  const listening: Promise<void>[] = [];
  const node = (fusionId: string, consistencyCheck: boolean, into: FusionResultInit[]) => {
    let ready!: () => void;
    listening.push(new Promise<void>((r) => (ready = r)));
    return runFusionNode({
      egoId: '100', fusionId, session, broker: broker.url, mode: 'intermediate', combine: 'max', models: MODELS, deadlineMs: 30_000,
      expect: ['101', '-1'], clock: 'replay', exitWhenEgoOffline: true, consistencyCheck, predictor: 'none', tracking: false,
      confidenceMapStride: 0, signal: controller.signal, log: (line) => line.includes('listening on') && ready(), onResult: (r) => into.push(r),
    });
  };
  const models = await PerceptionModels.load(MODELS);
  try {
    const withCheck = node('fusion-checked', true, checked);
    const without = node('fusion-open', false, open);
    await Promise.race([Promise.all(listening), withCheck, without]);

    const epochNs = epochNowNs();
    const seq = (await openDataset(FIXTURE)).scenarios[0]!;
    const t0 = (await seq.frame(0)).timestampNs;
    const [C, H, W] = featureShape(models.grid);
    const attacker = await MqttLink.connect({ url: broker.url, clientId: 'attacker' });
    const ghostsByFrame: Detection[][] = [];
    for (let i = 0; i < seq.frameCount; i++) {
      const frame = await seq.frame(i);
      const ego = frame.agents.find((a) => a.agentId === '100')!;
      const liar = frame.agents.find((a) => a.agentId === '101')!;
      // Ghost positions in open road the ego's beams crossed, ≥ 8 m from every true vehicle and from each other.
      const map = new FreeSpaceBuilder(freeSpaceGrid(models.grid)).build(await ego.loadPoints());
      const worldToEgo = invertRigid(ego.lidarToWorld);
      const truth = frame.agents.flatMap((a) => a.boxes).map((b) => transformBox(worldToEgo, b.box));
      const ghosts: Detection[] = [];
      for (let r = 10; r <= 34 && ghosts.length < GHOSTS_PER_FRAME; r += 6) {
        for (let deg = 0; deg < 360 && ghosts.length < GHOSTS_PER_FRAME; deg += 20) {
          const a = (deg * Math.PI) / 180;
          const g: Detection = { box: { x: r * Math.cos(a), y: r * Math.sin(a), z: -1, l: 4.5, w: 1.9, h: 1.6, yaw: 0 }, score: 0.95, cls: 'vehicle' };
          if ([...truth, ...ghosts.map((x) => x.box)].every((b) => Math.hypot(b.x - g.box.x, b.y - g.box.y) >= 8) && contradictsFreeSpace(map, g)) ghosts.push(g);
        }
      }
      assert.equal(ghosts.length, GHOSTS_PER_FRAME, `frame ${i}: room for the ghosts in the ego's free space`);
      ghostsByFrame.push(ghosts);
      // 101's real map, forged before its codec, sent as 101 would send it. The patch: the car its own head finds
      // strongest (a 9 × 9-cell patch a head reads as a car, unlike one around a car it barely sees).
      const features = Float32Array.from((await models.lidar.encode(await liar.loadPoints())).features);
      const source = (await models.head!.detect(features)).detections.filter((d) => d.cls === 'vehicle').sort((a, b) => b.score - a.score)[0];
      assert.ok(source, `frame ${i}: a car 101 sees`);
      const egoToLiar = multiply(invertRigid(liar.lidarToWorld), ego.lidarToWorld);
      const pasted = pasteFeaturePatches(features, models.grid, source.box, ghosts.map((g) => transformBox(egoToLiar, g.box)), 4, PATCH_SCALE);
      assert.equal(pasted, GHOSTS_PER_FRAME, `frame ${i}: every ghost on 101's map`);
      const coded = encodeFeatures(features, H, W, C, CODEC);
      await attacker.publish(agentTopic(session, '101', 'features'), encodeMessage('features', {
        header: { schemaVersion: 1, senderId: '101', sequence: i + 1, captureTimeNs: nsToWire(epochNs + (liar.timestampNs - t0)), senderPose: matrixToPose(liar.lidarToWorld), modelId: models.manifest.modelId },
        grid: describeFeatureGrid(models.grid), encoding: { ...coded.header, channelReductionRatio: 0 }, payload: coded.payload,
      }));
    }
    await attacker.end();

    const common = { session, broker: broker.url, dataset: FIXTURE, mode: 'intermediate' as const, rateHz: 0, epochNs, models: MODELS };
    const [egoAgent] = await Promise.all([
      runAgentNode({ ...common, agentId: '100', codec: 'raw', freeSpace: true }),
      runAgentNode({ ...common, agentId: '-1', codec: CODEC }),
    ]);
    assert.equal(egoAgent.stageMs['free-space']?.length, 3, 'the ego agent built a map per frame');
    const [sChecked, sOpen] = await Promise.all([withCheck, without]);
    assert.equal(sChecked.framesFused, 3);
    assert.equal(sOpen.framesFused, 3);
    assert.equal(sChecked.dropped['no-free-space'], undefined, 'the map came with the ego\'s features');
    assert.equal(sChecked.dropped['free-space-corrupt'], undefined, 'and arrived whole');
    assert.equal(sChecked.stageMs['consistency-head']?.length, 3, 'a head pass per frame');
    assert.equal(sOpen.dropped.inconsistent, undefined);

    const byCapture = (rs: FusionResultInit[]) => [...rs].sort((a, b) => Number(nsFromWire(a.header!.captureTimeNs) - nsFromWire(b.header!.captureTimeNs)));
    const contributions = (r: FusionResultInit) => Object.fromEntries(r.contributions!.map((c) => [c.agentId, c]));
    let refused = 0;
    byCapture(checked).forEach((r, i) => {
      const by = contributions(r);
      assert.equal(by['-1']?.used, true, `frame ${i}: the honest collaborator stays`);
      if (by['101']?.used === false) {
        assert.equal(by['101'].refusedReason, 'inconsistent');
        refused++;
        assert.ok(r.detections!.every((d) => !d.contributingAgents!.includes('101')), `frame ${i}: nothing of the refused attacker's is fused`);
      }
    });
    assert.equal(refused, 3, `attacker refused in ${refused} of 3 frames`);
    assert.equal(sChecked.dropped.inconsistent, refused, JSON.stringify(sChecked.dropped));
    // Without the check the forged maps are fused, and pasted cars come out of the fusion where the ego saw open road.
    let ghostsFused = 0;
    byCapture(open).forEach((r, i) => {
      assert.equal(contributions(r)['101']?.used, true, `frame ${i}: the attacker's map is fused`);
      for (const g of ghostsByFrame[i]!) if (r.detections!.some((d) => Math.hypot(d.box!.x! - g.box.x, d.box!.y! - g.box.y) < 2 && d.contributingAgents!.includes('101'))) ghostsFused++;
    });
    assert.ok(ghostsFused >= 2, `${ghostsFused} ghosts fused without the check`);
  } finally {
    controller.abort();
    await models.dispose();
    await broker.close();
  }
});
