// The models in models/ must detect, not just load. The held-out data is regenerated from its scenario and seed
// (the simulator writes the same bytes for the same seed, so this is as fixed as committed files, at a few bytes
// instead of tens of megabytes of point clouds). Seed 103 was never used for training (11-16), validation (101)
// or the model card's test set (102). Thresholds sit a little under what the shipped model measured on these
// frames (models/README.md); a retrained model that is worse fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openDataset } from '../../src/datasets/index.ts';
import { ClassAwareApAccumulator } from '../../src/eval/index.ts';
import { CooperativeDetector, type FusionMode, evaluateSequence } from '../../src/fusion/index.ts';
import { PerceptionModels } from '../../src/perception/index.ts';
import { loadScenario, simulateSequence } from '../../src/sim/index.ts';

const MANIFEST = resolve(import.meta.dirname, '../../models/manifest.json');
const FRAMES = 6;
const SEED = 103;

// Measured with the shipped model (pp-v2xfuse-mixed-s1) on these frames: ego-only 0.634, fused 0.930.
const MIN_EGO_AP50 = 0.55;
const MIN_FUSED_AP50 = 0.85;
const MIN_GAIN_AP50 = 0.2;
// On the vehicles the ego's LiDAR hits (57 of the 81 boxes): measured 0.901; the target is 0.6.
const MIN_EGO_VISIBLE_AP50 = 0.8;

test(`shipped models on held-out intersection frames (seed ${SEED}): ego-only detects, fusion adds accuracy`, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'v2xfuse-heldout-'));
  const models = await PerceptionModels.load(MANIFEST, { device: 'cpu' });
  try {
    await simulateSequence({ scenario: await loadScenario('intersection'), frames: FRAMES, seed: SEED, outDir: dir, cameras: false });
    const seq = (await openDataset(dir)).scenarios[0];
    const ego = seq.agents[0].id;
    const ap50: Record<string, number> = {};
    const ap50Gt: Record<string, number> = {};
    for (const mode of ['none', 'attention'] as FusionMode[]) {
      const detector = new CooperativeDetector(models, mode);
      const acc = new ClassAwareApAccumulator(undefined, ['vehicle']);
      const run = await evaluateSequence(seq, detector, ego, acc);
      assert.equal(run.frames, FRAMES);
      const res = acc.result().vehicle['0.5'];
      assert.ok(res.gt > 20, `only ${res.gt} ground-truth vehicles`);
      ap50[mode] = res.ap;
      ap50Gt[mode] = res.gt;
    }
    // The ego-only target (0.6) on the vehicles the ego's LiDAR can see at all: OpenCOOD's protocol also
    // scores the ones buildings hide from it, which no ego-only detector can find.
    const visibleAcc = new ClassAwareApAccumulator(undefined, ['vehicle']);
    await evaluateSequence(seq, new CooperativeDetector(models, 'none'), ego, visibleAcc, { gtVisibility: 'ego' });
    const egoVisible = visibleAcc.result().vehicle['0.5'];
    assert.ok(egoVisible.gt > 10 && egoVisible.gt < ap50Gt.none, `${egoVisible.gt} of ${ap50Gt.none} ground-truth vehicles seen by the ego`);
    process.stdout.write(`# held-out vehicle AP@0.5: ego-only ${ap50.none.toFixed(3)} (on the ${egoVisible.gt} of ${ap50Gt.none} vehicles the ego sees: ${egoVisible.ap.toFixed(3)}), fused ${ap50.attention.toFixed(3)}\n`);
    assert.ok(egoVisible.ap >= MIN_EGO_VISIBLE_AP50, `ego-only AP@0.5 on vehicles the ego sees ${egoVisible.ap}`);
    assert.ok(ap50.none >= MIN_EGO_AP50, `ego-only AP@0.5 ${ap50.none}`);
    assert.ok(ap50.attention >= MIN_FUSED_AP50, `fused AP@0.5 ${ap50.attention}`);
    assert.ok(ap50.attention - ap50.none >= MIN_GAIN_AP50, `fusion gain ${ap50.attention - ap50.none}`);
  } finally {
    await models.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});
