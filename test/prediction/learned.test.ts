import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ManifestError, ModelFileError, loadManifest } from '../../src/perception/index.ts';
import {
  ConstantVelocityPredictor,
  CtrvPredictor,
  MotionPredictor,
  evaluatePredictors,
  predictTracks,
  readTracksFile,
} from '../../src/prediction/index.ts';

const MANIFEST = path.resolve('models/manifest.json');
const CURVED = 'test/fixtures/prediction/curved-tracks.json';

/** A 10-step history (10 Hz) of a car turning left at 8 m/s, 0.3 rad/s, ending at the origin heading +x. */
function turningHistory(): Float64Array {
  const h = new Float64Array(30);
  const v = 8;
  const w = 0.3;
  for (let i = 0; i < 10; i++) {
    const t = (i - 9) / 10;
    h.set([(v / w) * Math.sin(w * t), (v / w) * (1 - Math.cos(w * t)), w * t], i * 3);
  }
  return h;
}

describe('the shipped learned motion predictor', () => {
  let predictor: MotionPredictor;
  before(async () => {
    predictor = await MotionPredictor.load(MANIFEST, { threads: 1 });
  });
  after(async () => {
    await predictor?.release();
  });

  it('is listed in the manifest with its contract, and the file is the one the manifest hashes', async () => {
    const m = await loadManifest(MANIFEST);
    const e = m.motionPredictor;
    assert.ok(e, 'models.motion_predictor');
    assert.deepEqual([e.rateHz, e.historySteps, e.horizonSteps, e.modes], [10, 10, 30, 6]);
    const bytes = await readFile(e.path);
    assert.equal(createHash('sha256').update(bytes).digest('hex'), e.sha256);
    assert.ok(bytes.byteLength < 1_000_000, `${bytes.byteLength} bytes`);
    assert.equal(predictor.modes, 6);
    assert.deepEqual(predictor.horizon, { horizonS: 3, rateHz: 10 });
  });

  it('refuses a model file whose sha256 differs from the manifest, and a manifest without a predictor', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'v2xfuse-predictor-'));
    try {
      const json = JSON.parse(await readFile(MANIFEST, 'utf8'));
      for (const entry of Object.values(json.models) as { file?: string }[]) if (entry.file) entry.file = path.resolve('models', entry.file);
      json.models.motion_predictor.sha256 = '0'.repeat(64);
      await writeFile(path.join(dir, 'tampered.json'), JSON.stringify(json));
      await assert.rejects(MotionPredictor.load(path.join(dir, 'tampered.json')), (e: unknown) => e instanceof ModelFileError && /sha256/.test(e.message));
      delete json.models.motion_predictor;
      await writeFile(path.join(dir, 'none.json'), JSON.stringify(json));
      await assert.rejects(MotionPredictor.load(path.join(dir, 'none.json')), (e: unknown) => e instanceof ManifestError && e.field === 'models.motion_predictor');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('gives K modes by descending probability summing to 1, with a position spread that grows', async () => {
    const [p] = await predictor.predict([{ states: turningHistory(), cls: 'vehicle' }]);
    assert.equal(p.modes, 6);
    assert.equal(p.steps, 30);
    const sum = p.probabilities.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-5, `sum ${sum}`);
    for (let k = 1; k < 6; k++) assert.ok(p.probabilities[k] <= p.probabilities[k - 1]);
    const std = p.positionStd!;
    assert.ok(std[0] > 0 && std[29] > std[0], `σ ${std[0]} → ${std[29]}`);
    // Moving forward at 8 m/s: the most probable mode ends well ahead of where it started.
    assert.ok(p.waypoints[29 * 3] > 10, `x after 3 s ${p.waypoints[29 * 3]}`);
  });

  it('is equivariant: a rotated and shifted history gives the same trajectories rotated and shifted', async () => {
    const h = turningHistory();
    const a = 2.1;
    const [tx, ty] = [120, -45];
    const moved = new Float64Array(h.length);
    for (let i = 0; i < 10; i++) {
      const [x, y, yaw] = [h[i * 3], h[i * 3 + 1], h[i * 3 + 2]];
      moved.set([tx + Math.cos(a) * x - Math.sin(a) * y, ty + Math.sin(a) * x + Math.cos(a) * y, yaw + a], i * 3);
    }
    const [p, q] = await predictor.predict([{ states: h }, { states: moved }]);
    for (let k = 0; k < p.modes * p.steps; k++) {
      const [x, y] = [p.waypoints[k * 3], p.waypoints[k * 3 + 1]];
      const ex = tx + Math.cos(a) * x - Math.sin(a) * y;
      const ey = ty + Math.sin(a) * x + Math.cos(a) * y;
      assert.ok(Math.hypot(q.waypoints[k * 3] - ex, q.waypoints[k * 3 + 1] - ey) < 1e-3, `waypoint ${k}`);
    }
    assert.deepEqual([...q.probabilities].map((v) => v.toFixed(4)), [...p.probabilities].map((v) => v.toFixed(4)));
  });

  it('beats constant velocity on held-out curved tracks (minADE_6 and minFDE_6)', async () => {
    const sequences = await readTracksFile(CURVED);
    const [cv, ctrv, learned] = await evaluatePredictors(sequences, [new ConstantVelocityPredictor(), new CtrvPredictor(), predictor]);
    const [c, l] = [cv.subsets.all, learned.subsets.all];
    assert.equal(l.count, 25);
    assert.ok(l.minAde < 0.8 * c.minAde, `learned minADE_6 ${l.minAde.toFixed(3)} vs CV ${c.minAde.toFixed(3)} (CTRV ${ctrv.subsets.all.minAde.toFixed(3)})`);
    assert.ok(l.minFde < c.minFde, `learned minFDE_6 ${l.minFde.toFixed(3)} vs CV ${c.minFde.toFixed(3)}`);
  });

  it('predictTracks gives the FusionResult shape with all six modes', async () => {
    const h = turningHistory();
    const boxes = Array.from({ length: 10 }, (_, i) => ({ x: h[i * 3], y: h[i * 3 + 1], z: 0, l: 4.5, w: 2, h: 1.6, yaw: h[i * 3 + 2] }));
    const [out] = await predictTracks([{ trackId: 'car', cls: 'vehicle', boxes }], predictor);
    assert.equal(out.trajectories.length, 6);
    assert.ok(Math.abs(out.trajectories.reduce((s, t) => s + t.probability, 0) - 1) < 1e-5);
    assert.ok(out.trajectories.every((t) => t.waypoints.length === 30 && t.waypoints.every((w) => w.positionStd > 0)));
    assert.equal(out.trajectories[0].waypoints[9].timeOffsetS, 1);
  });

  it('a shorter horizon at the model rate is a prefix of the full one; another rate is refused', async () => {
    const short = await MotionPredictor.load(MANIFEST, { threads: 1, horizon: { horizonS: 1, rateHz: 10 } });
    try {
      const [s] = await short.predict([{ states: turningHistory() }]);
      const [f] = await predictor.predict([{ states: turningHistory() }]);
      assert.equal(s.steps, 10);
      assert.deepEqual([...s.waypoints.subarray(0, 30)], [...f.waypoints.subarray(0, 30)]);
    } finally {
      await short.release();
    }
    await assert.rejects(MotionPredictor.load(MANIFEST, { horizon: { horizonS: 3, rateHz: 20 } }), /predicts 30 steps at 10 Hz/);
  });
});
