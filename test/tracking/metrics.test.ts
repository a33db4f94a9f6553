import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type MotFrame, clearMot, evaluateMot, recallThresholds } from '../../src/tracking/index.ts';

const close = (a: number, b: number, what: string, tol = 1e-9) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
const car = (x: number, y: number) => ({ x, y, z: 0, l: 4, w: 2, h: 1.5, yaw: 0 });

/*
 * Two objects over five frames, A along y = 0 and B along y = 10, both moving +1 m per frame. Track boxes copy the
 * ground truth (BEV IoU 1) except t1 in frame 0, shifted 4/3 m along x: I = (4 − 4/3)·2 = 16/3, U = 16 − 16/3,
 * IoU = 0.5. Scores are constant per track: t1 0.9, t2 0.8, t3 0.6, t9 0.3.
 *   frame 0: A–t1 (IoU 0.5), B–t2
 *   frame 1: A–t1, B–t2, and t9 at y = −20 matching nothing          → one false positive
 *   frame 2: A–t1, B has no track                                     → one miss
 *   frame 3: A–t3, B–t2                                               → A's id changes: one ID switch
 *   frame 4: A–t3, B–t2
 * Trajectories (matched track per frame): A = [1, 1, 1, 3, 3], B = [2, 2, −1, 2, 2].
 * GT = 10, TP = 9, FN = 1, FP = 1, IDS = 1 (A at frame 3: id differs from the last one, both frames matched).
 * FRAG = 2 by the devkit rule (id differs from the previous frame, matched before, matched now and next): A at
 *   frame 3 (the switch is also a fragmentation) and B at frame 3 (resumed after the miss).
 * MOTA = 1 − (FN + FP + IDS)/GT = 1 − 3/10 = 0.7; MODA = 1 − 2/10 = 0.8; MOTP = (0.5 + 8·1)/9 = 8.5/9.
 * MT: A 5/5 > 0.8; B 4/5 = 0.8 is not > 0.8 → PT. MT = 1/2, PT = 1/2, ML = 0. Recall = precision = F1 = 0.9.
 *
 * AMOTA. TP scores, sorted: 0.9 ×3 (t1), 0.8 ×4 (t2), 0.6 ×2 (t3); num_gt = 10. getThresholds appends every TP
 * (each one's recall (i+1)/10 is already past the next 1/40 point), labelled 0, 0.025, …, 0.2, and drops the first:
 *   thresholds [0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.6, 0.6], recalls [0.025 … 0.2].
 *   ≥ 0.9 keeps t1: TP 3, FN 7, FP 0, IDS 0 → MOTA 0.3, MOTP 2.5/3
 *   ≥ 0.8 keeps t1, t2: TP 7, FN 3, FP 0, IDS 0 → MOTA 0.7, MOTP 6.5/7
 *   ≥ 0.6 keeps t1, t2, t3: TP 9, FN 1, FP 0, IDS 1 → MOTA 0.8, MOTP 8.5/9
 * AMOTA = (2·0.3 + 4·0.7 + 2·0.8)/40 = 5/40 = 0.125; AMOTP = (2·2.5/3 + 4·6.5/7 + 2·8.5/9)/40;
 * sMOTA clamps to 1 at every one of these small recalls (e.g. r = 0.2: 1 − (2 − 0.8·10)/(0.2·10) = 4 → 1):
 * sAMOTA = 8/40 = 0.2.
 * IDF1: co-occurrences (IoU ≥ 0.25) A–t1 3, A–t3 2, B–t2 4; best one-to-one: A–t1 + B–t2 = 7 = IDTP;
 * IDFN = 10 − 7 = 3, IDFP = 10 − 7 = 3 → IDF1 = 14/20 = 0.7.
 */
function handSequence(): MotFrame[] {
  const gt = (f: number) => [{ id: 'A', box: car(f, 0) }, { id: 'B', box: car(f, 10) }];
  return [
    { groundTruth: gt(0), tracks: [{ id: 1, box: car(4 / 3, 0), score: 0.9 }, { id: 2, box: car(0, 10), score: 0.8 }] },
    { groundTruth: gt(1), tracks: [{ id: 1, box: car(1, 0), score: 0.9 }, { id: 2, box: car(1, 10), score: 0.8 }, { id: 9, box: car(1, -20), score: 0.3 }] },
    { groundTruth: gt(2), tracks: [{ id: 1, box: car(2, 0), score: 0.9 }] },
    { groundTruth: gt(3), tracks: [{ id: 3, box: car(3, 0), score: 0.6 }, { id: 2, box: car(3, 10), score: 0.8 }] },
    { groundTruth: gt(4), tracks: [{ id: 3, box: car(4, 0), score: 0.6 }, { id: 2, box: car(4, 10), score: 0.8 }] },
  ];
}

test('CLEAR MOT on the hand-made sequence', () => {
  const r = clearMot([handSequence()]);
  assert.deepEqual({ gt: r.gt, tp: r.tp, fn: r.fn, fp: r.fp, ids: r.ids, frag: r.frag }, { gt: 10, tp: 9, fn: 1, fp: 1, ids: 1, frag: 2 });
  close(r.mota, 0.7, 'MOTA');
  close(r.moda, 0.8, 'MODA');
  close(r.motp, 8.5 / 9, 'MOTP');
  close(r.smota, 0.7, 'sMOTA at recall 1');
  assert.deepEqual([r.mostlyTracked, r.partiallyTracked, r.mostlyLost], [1, 1, 0]);
  close(r.mt, 0.5, 'MT');
  close(r.ml, 0, 'ML');
  close(r.recall, 0.9, 'recall');
  close(r.precision, 0.9, 'precision');
  assert.equal(r.gtTrajectories, 2);
  assert.equal(r.trackerTrajectories, 4);
});

test('recall thresholds follow the devkit getThresholds', () => {
  const [thr, rec] = recallThresholds([0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.6, 0.6], 10);
  assert.deepEqual(thr, [0.9, 0.9, 0.8, 0.8, 0.8, 0.8, 0.6, 0.6]);
  rec.forEach((r, k) => close(r, 0.025 * (k + 1), `recall ${k}`, 1e-12));
  // Many TPs: the points are 1/40 apart and the thresholds pick the scores where recall crosses them.
  const scores = Array.from({ length: 400 }, (_, i) => 1 - i / 400);
  const [t2, r2] = recallThresholds(scores, 400);
  assert.equal(t2.length, 40);
  close(r2[39], 1, 'last recall point', 1e-9);
  close(t2[0], 1 - 9 / 400, 'threshold at recall 1/40 (10th TP)', 1e-12);
});

test('AMOTA, AMOTP, sAMOTA and IDF1 on the hand-made sequence', () => {
  const m = evaluateMot([handSequence()]);
  assert.equal(m.recallPoints.length, 8);
  close(m.amota, 0.125, 'AMOTA');
  close(m.amotp, (2 * (2.5 / 3) + 4 * (6.5 / 7) + 2 * (8.5 / 9)) / 40, 'AMOTP');
  close(m.samota, 0.2, 'sAMOTA');
  assert.deepEqual([m.idtp, m.idfp, m.idfn], [7, 3, 3]);
  close(m.idf1, 0.7, 'IDF1');
  // The switch is what IDF1 punishes and MOTA barely does: with t3 renamed t1, IDTP = 9, IDF1 = 18/20.
  const fixed = handSequence().map((f) => ({ ...f, tracks: f.tracks.map((t) => (t.id === 3 ? { ...t, id: 1 } : t)) }));
  const n = evaluateMot([fixed]);
  assert.equal(n.ids, 0);
  close(n.idf1, 0.9, 'IDF1 without the switch');
});

test('a 3D overlap and a stricter threshold change the matches', () => {
  // With min IoU 0.6 the IoU-0.5 pair of frame 0 is no match: one more FN and FP; A's trajectory starts unmatched.
  const r = clearMot([handSequence()], { threshold: 0.6 });
  assert.deepEqual([r.tp, r.fn, r.fp], [8, 2, 2]);
  // A box lifted 1 m keeps its BEV IoU but loses 3D IoU (h = 1.5: h∩ = 0.5 → IoU = 0.5·8/(2·12 − 4) = 0.2).
  const lifted: MotFrame[] = [{ groundTruth: [{ id: 'A', box: car(0, 0) }], tracks: [{ id: 1, box: { ...car(0, 0), z: 1 }, score: 1 }] }];
  assert.equal(clearMot([lifted]).tp, 1);
  assert.equal(clearMot([lifted], { overlap: '3d' }).tp, 0);
});

test('devkit edge rules: a trajectory first matched in its last frame counts a fragmentation; never matched is ML', () => {
  const gt = (f: number) => [{ id: 'A', box: car(f, 0) }, { id: 'B', box: car(f, 10) }];
  const seq: MotFrame[] = [
    { groundTruth: gt(0), tracks: [] },
    { groundTruth: gt(1), tracks: [] },
    { groundTruth: gt(2), tracks: [{ id: 5, box: car(2, 0), score: 1 }] },
  ];
  const r = clearMot([seq]);
  assert.equal(r.frag, 1);
  assert.equal(r.ids, 0);
  assert.deepEqual([r.mostlyTracked, r.partiallyTracked, r.mostlyLost], [0, 1, 1]);
  // No ground truth at all: MOTA is undefined (NaN), not −inf.
  assert.ok(Number.isNaN(clearMot([[{ groundTruth: [], tracks: [{ id: 1, box: car(0, 0), score: 1 }] }]]).mota));
});
