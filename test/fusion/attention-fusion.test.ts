// attentionFuse computes fusion_attention.onnx's parameter-free attention only where a collaborator covers a cell.
// It must give the model's output: on a real frame (the fixture's agents encoded, warped, two of them selection-
// coded), by hand on one cell, and where the ego's own mask leaves it out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { decodeFeatures, encodeFeatures, parseCodecSpec } from '../../src/codec/index.ts';
import { openDataset } from '../../src/datasets/index.ts';
import { attentionFuse, featureConfidenceMap, warpToEgo } from '../../src/fusion/index.ts';
import { invertRigid, multiply } from '../../src/geometry/index.ts';
import { PerceptionModels, featureShape } from '../../src/perception/index.ts';

const FIXTURE = path.resolve(process.cwd(), 'datasets/fixture/fixture-s1');

test('attentionFuse equals fusion_attention.onnx on a real frame, selection-coded collaborators included', async () => {
  const models = await PerceptionModels.load('models/manifest.json', { threads: 1 });
  try {
    assert.ok(models.attention, 'the shipped manifest has the attention model');
    const [C, H, W] = featureShape(models.grid);
    const plane = H * W;
    const frame = await (await openDataset(FIXTURE)).scenarios[0].frame(1);
    const [ego, ...others] = frame.agents;
    const egoMap = Float32Array.from((await models.lidar.encode(await ego.loadPoints())).features);
    const aligned: Float32Array[] = [egoMap];
    const masks: (Float32Array | null)[] = [null];
    for (const [k, a] of others.entries()) {
      const features = Float32Array.from((await models.lidar.encode(await a.loadPoints())).features);
      const confidence = Float32Array.from(featureConfidenceMap((await models.head!.detect(features)).clsLogits, new Float32Array(plane)));
      // One collaborator whole, the others top 10 %: full-coverage masks and sparse ones.
      const coded = encodeFeatures(features, H, W, C, parseCodecSpec(k === 0 ? 'raw' : 'int8+top10%+deflate'), { confidence });
      const d = decodeFeatures(coded.payload, coded.header);
      const w = warpToEgo(d.features, multiply(invertRigid(ego.lidarToWorld), a.lidarToWorld), models.grid, undefined, undefined, k === 0 ? undefined : d.mask);
      aligned.push(w.features);
      masks.push(w.mask);
    }
    assert.ok(aligned.length >= 3);
    const expected = Float32Array.from((await models.attention.fuse(aligned, masks)).fused);
    const got = attentionFuse(aligned, masks, new Float32Array(C * plane).fill(Number.NaN));
    let worst = 0, changed = 0;
    for (let i = 0; i < got.length; i++) {
      worst = Math.max(worst, Math.abs(got[i] - expected[i]));
      if (got[i] !== egoMap[i]) changed++;
    }
    assert.ok(worst < 1e-4, `max |TypeScript − ONNX| = ${worst}`);
    assert.ok(changed > 1000, `the collaborators changed ${changed} values`);
    // Cells no collaborator covers are the ego's own vector, exactly.
    for (let cell = 0; cell < plane; cell++) {
      if (masks.slice(1).some((m) => m![cell] > 0)) continue;
      for (let c = 0; c < C; c++) assert.equal(got[c * plane + cell], egoMap[c * plane + cell]);
    }
  } finally {
    await models.dispose();
  }
});

test('attentionFuse by hand: two channels, one cell both cover, one the ego alone, one the ego leaves out', () => {
  // 3 cells, C = 2: channel-major [c0: cell0 cell1 cell2, c1: cell0 cell1 cell2].
  const ego = new Float32Array([1, 5, 2, 0, 7, 1]);
  const other = new Float32Array([3, 9, 4, 1, 9, 2]);
  const fused = attentionFuse([ego, other], [new Float32Array([1, 1, 0]), new Float32Array([1, 0, 0])]);
  // Cell 0: scores (1·1 + 0·0)/√2 and (1·3 + 0·1)/√2; softmax; weighted sum of (1, 0) and (3, 1).
  const s0 = 1 / Math.SQRT2, s1 = 3 / Math.SQRT2;
  const w1 = Math.exp(s1) / (Math.exp(s0) + Math.exp(s1));
  assert.ok(Math.abs(fused[0] - ((1 - w1) * 1 + w1 * 3)) < 1e-6);
  assert.ok(Math.abs(fused[3] - ((1 - w1) * 0 + w1 * 1)) < 1e-6);
  // Cell 1: only the ego covers it: its own vector.
  assert.equal(fused[1], 5);
  assert.equal(fused[4], 7);
  // Cell 2: nobody covers it: every score is the masked one, so the softmax is uniform, as in the model.
  assert.ok(Math.abs(fused[2] - 3) < 1e-6 && Math.abs(fused[5] - 1.5) < 1e-6);
  assert.throws(() => attentionFuse([ego, other], [new Float32Array(3), new Float32Array(2)]), /masks\[1\]/);
  assert.throws(() => attentionFuse([ego], [null], ego), /alias/);
});
