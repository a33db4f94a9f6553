import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type Box7, bevIoU } from '../../src/geometry/index.ts';
import {
  ApAccumulator, ClassAwareApAccumulator, type Detection, EvaluationInputError, evaluateDetections, vocAveragePrecision,
} from '../../src/eval/index.ts';

const close = (a: number, b: number, what = '', eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${what}: ${a} vs ${b}`);
const closeAll = (a: readonly number[], b: readonly number[], what = '') => {
  assert.equal(a.length, b.length, `${what}: length`);
  a.forEach((v, i) => close(v, b[i], `${what}[${i}]`));
};

// Boxes 6 m long and 2 m wide (area 12) along x. Two of them offset by d along x overlap (6 − d) × 2, so
// IoU = 2(6 − d) / (24 − 2(6 − d)) = (6 − d) / (6 + d): d = 0 → 1, d = 0.5 → 11/13 ≈ 0.846, d = 1.5 → 0.6,
// d = 2 → 0.5, d = 3 → 1/3.
const car = (x: number, y = 0, yaw = 0): Box7 => ({ x, y, z: 0, l: 6, w: 2, h: 1.5, yaw });
const det = (box: Box7, score: number): Detection => ({ box, score });

test('the box family behind the hand computations has the IoUs the comments claim', () => {
  close(bevIoU(car(1.5), car(0)), 0.6, 'd=1.5');
  close(bevIoU(car(20.5), car(20)), 11 / 13, 'd=0.5');
  close(bevIoU(car(2), car(0)), 0.5, 'd=2');
  close(bevIoU(car(3), car(0)), 1 / 3, 'd=3');
});

test('one frame, 2 GT and 3 detections: tp/fp per threshold and AP by hand', () => {
  // GT A at x=0, GT B at x=20. D1 (0.9) on A with IoU 0.6, D3 (0.8) far from everything, D2 (0.7) on B with IoU
  // 11/13. Given out of score order to check the per-frame sort.
  const acc = new ApAccumulator();
  acc.addFrame([det(car(20.5), 0.7), det(car(1.5), 0.9), det(car(40), 0.8)], [car(0), car(20)]);
  const r = acc.result();

  // IoU 0.3 and 0.5: D1 TP, D3 FP, D2 TP. cum tp 1,1,2; cum fp 0,1,1.
  // precision 1, 1/2, 2/3; recall 1/2, 1/2, 1.
  // mrec 0, .5, .5, 1, 1; mpre 0, 1, .5, 2/3, 0 → envelope 1, 1, 2/3, 2/3, 0.
  // AP = .5·1 + 0·(2/3) + .5·(2/3) + 0·0 = 5/6.
  for (const key of ['0.3', '0.5']) {
    closeAll(r[key].precision, [1, 1 / 2, 2 / 3], `precision@${key}`);
    closeAll(r[key].recall, [0.5, 0.5, 1], `recall@${key}`);
    close(r[key].ap, 5 / 6, `AP@${key}`);
    assert.deepEqual([r[key].tp, r[key].fp, r[key].gt], [2, 1, 2]);
  }
  // IoU 0.7: D1 is now an FP (0.6 < 0.7) and A stays free; D3 FP; D2 TP. cum tp 0,0,1; cum fp 1,2,2.
  // precision 0, 0, 1/3; recall 0, 0, 1/2. mrec 0,0,0,.5,1; mpre 0,0,0,1/3,0 → envelope 1/3,1/3,1/3,1/3,0.
  // AP = .5 · 1/3 = 1/6.
  closeAll(r['0.7'].precision, [0, 0, 1 / 3], 'precision@0.7');
  closeAll(r['0.7'].recall, [0, 0, 0.5], 'recall@0.7');
  close(r['0.7'].ap, 1 / 6, 'AP@0.7');
  assert.deepEqual([r['0.7'].tp, r['0.7'].fp, r['0.7'].gt], [1, 2, 2]);
});

test('global sort and frame order give different AP, both by hand', () => {
  // Frame 1: GT A, detection p (0.4) exact → TP. Frame 2: GT B, q1 (0.9) exact → TP, q2 (0.8) nowhere → FP.
  const acc = new ApAccumulator([0.5]);
  acc.addFrame([det(car(0), 0.4)], [car(0)]);
  acc.addFrame([det(car(50), 0.9), det(car(90), 0.8)], [car(50)]);
  // Frame order: p(T), q1(T), q2(F): precision 1, 1, 2/3; recall .5, 1, 1 → AP = .5·1 + .5·1 = 1.
  const frame = acc.result('frame')['0.5'];
  closeAll(frame.precision, [1, 1, 2 / 3], 'frame precision');
  close(frame.ap, 1, 'frame AP');
  // Global: q1(T, .9), q2(F, .8), p(T, .4): precision 1, 1/2, 2/3; recall .5, .5, 1
  // → envelope 1, 2/3, 2/3 → AP = .5·1 + .5·(2/3) = 5/6.
  const global = acc.result('global')['0.5'];
  closeAll(global.precision, [1, 1 / 2, 2 / 3], 'global precision');
  closeAll(global.recall, [0.5, 0.5, 1], 'global recall');
  close(global.ap, 5 / 6, 'global AP');
  // The default is the global sort.
  close(acc.result()['0.5'].ap, 5 / 6, 'default');
});

test('a duplicate detection of an already matched GT is a false positive', () => {
  const acc = new ApAccumulator([0.5]);
  acc.addFrame([det(car(0), 0.9), det(car(0), 0.8)], [car(0)]);
  const r = acc.result()['0.5'];
  // d1 TP, d2 FP: precision 1, 1/2; recall 1, 1 → AP = 1·1 = 1 (the FP comes after full recall).
  assert.deepEqual([r.tp, r.fp, r.gt], [1, 1, 1]);
  closeAll(r.precision, [1, 0.5], 'precision');
  close(r.ap, 1, 'AP');
});

test('greedy by score: a higher-score detection with lower IoU claims the GT first', () => {
  // A at x=0 (spans −3..3), B at x=7 (4..10). X (0.9) at x=1.5: IoU 0.6 with A, with B overlap 4..4.5 → 1/23.
  // Y (0.8) at x=0.5: IoU 11/13 with A, none with B. X takes A; Y's only remaining GT is B at IoU 0 → FP.
  const acc = new ApAccumulator([0.5]);
  acc.addFrame([det(car(0.5), 0.8), det(car(1.5), 0.9)], [car(0), car(7)]);
  const r = acc.result()['0.5'];
  // X TP, Y FP: precision 1, 1/2; recall 1/2, 1/2 → AP = .5·1 = 0.5.
  assert.deepEqual([r.tp, r.fp], [1, 1]);
  closeAll(r.precision, [1, 0.5], 'precision');
  close(r.ap, 0.5, 'AP');
});

test('a detection whose best GT is taken matches the next best when it clears the threshold', () => {
  // A at x=0 (−3..3), B at x=5 (2..8). X (0.9) at x=0 takes A (IoU 1). Y (0.8) at x=2 (−1..5): IoU with A
  // = 4·2/(24 − 8) = 0.5, with B = 3·2/(24 − 6) = 1/3. A is taken, so Y falls back to B at 1/3.
  close(bevIoU(car(2), car(5)), 1 / 3, 'Y vs B');
  const acc = new ApAccumulator([0.3, 0.5]);
  acc.addFrame([det(car(0), 0.9), det(car(2), 0.8)], [car(0), car(5)]);
  const r = acc.result();
  // 0.3: both TP → precision 1, 1; recall .5, 1 → AP 1.
  assert.deepEqual([r['0.3'].tp, r['0.3'].fp], [2, 0]);
  close(r['0.3'].ap, 1, 'AP@0.3');
  // 0.5: 1/3 < 0.5 → Y FP; precision 1, 1/2; recall .5, .5 → AP 0.5.
  assert.deepEqual([r['0.5'].tp, r['0.5'].fp], [1, 1]);
  close(r['0.5'].ap, 0.5, 'AP@0.5');
});

test('an IoU exactly at the threshold is a true positive (OpenCOOD: FP only when IoU < threshold)', () => {
  const iou = bevIoU(car(2), car(0));
  const acc = new ApAccumulator([iou]);
  acc.addFrame([det(car(2), 0.5)], [car(0)]);
  assert.equal(acc.result()[String(iou)].tp, 1);
});

test('rotated IoU is used: a detection turned 90° on the GT centre is not a match at 0.5', () => {
  // 4×2 boxes on one centre, one turned 90°: overlap is the 2×2 square, IoU = 4 / (8 + 8 − 4) = 1/3.
  const gt: Box7 = { x: 10, y: 5, z: 0, l: 4, w: 2, h: 1.5, yaw: 0 };
  const turned: Box7 = { ...gt, yaw: Math.PI / 2 };
  close(bevIoU(turned, gt), 1 / 3, 'IoU');
  const acc = new ApAccumulator();
  acc.addFrame([det(turned, 0.9)], [gt]);
  const r = acc.result();
  assert.deepEqual([r['0.3'].tp, r['0.5'].tp, r['0.7'].tp], [1, 0, 0]);
});

test('VOC interpolation fills a precision dip from the right, by hand', () => {
  // recall .2, .2, .4, .6; precision 1, .5, .6, .75 (dips to .5 and recovers).
  // mrec 0, .2, .2, .4, .6, 1; mpre 0, 1, .5, .6, .75, 0 → envelope 1, 1, .75, .75, .75, 0.
  // AP = .2·1 + 0·.75 + .2·.75 + .2·.75 + .4·0 = 0.5 (the raw curve would give .2 + .12 + .15 = 0.47).
  close(vocAveragePrecision([0.2, 0.2, 0.4, 0.6], [1, 0.5, 0.6, 0.75]), 0.5, 'AP');
  // Empty curve: mrec 0, 1; mpre 0, 0 → 0.
  assert.equal(vocAveragePrecision([], []), 0);
  assert.throws(() => vocAveragePrecision([0.5], []), RangeError);
});

test('no detections → AP 0; perfect detections → AP 1; no ground truth → NaN', () => {
  const none = new ApAccumulator();
  none.addFrame([], [car(0), car(20)]);
  none.addFrame([], [car(0)]);
  for (const r of Object.values(none.result())) {
    assert.equal(r.ap, 0);
    assert.equal(r.gt, 3);
    assert.deepEqual(r.precision, []);
  }

  const perfect = new ApAccumulator();
  perfect.addFrame([det(car(0), 0.3), det(car(20), 0.9)], [car(0), car(20)]);
  perfect.addFrame([det(car(-15, 4, 0.7), 0.5)], [car(-15, 4, 0.7)]);
  for (const r of Object.values(perfect.result())) {
    close(r.ap, 1, 'perfect AP');
    assert.deepEqual([r.tp, r.fp, r.gt], [3, 0, 3]);
  }
  for (const r of Object.values(perfect.result('frame'))) close(r.ap, 1, 'perfect AP, frame order');

  const noGt = new ApAccumulator();
  noGt.addFrame([det(car(0), 0.9)], []);
  const r = noGt.result()['0.5'];
  assert.ok(Number.isNaN(r.ap));
  assert.deepEqual([r.tp, r.fp, r.gt], [0, 1, 0]);
});

test('bad input is refused with the frame and field named', () => {
  const acc = new ApAccumulator();
  acc.addFrame([], []);
  assert.throws(() => acc.addFrame([det(car(0), Number.NaN)], []), (e: unknown) => {
    assert.ok(e instanceof EvaluationInputError);
    assert.equal(e.frame, 1);
    assert.equal(e.field, 'detections[0].score');
    return true;
  });
  assert.throws(() => new ApAccumulator([0.5, 1.5]), RangeError);
  assert.throws(() => new ApAccumulator([]), RangeError);
});

test('per class: a detection only matches GT of its own class; vehicle AP and the class mean', () => {
  const acc = new ClassAwareApAccumulator([0.5]);
  // Vehicle GT at 0 detected as a vehicle (TP); pedestrian GT at 30 detected only by a box labelled vehicle.
  const ped: Box7 = { x: 30, y: 0, z: 0, l: 0.8, w: 0.8, h: 1.8, yaw: 0 };
  acc.addFrame(
    [{ box: car(0), score: 0.9 }, { box: ped, score: 0.8, cls: 'vehicle' }],
    [{ box: car(0), cls: 'vehicle' }, { box: ped, cls: 'pedestrian' }],
  );
  const r = acc.result();
  // Vehicle: TP then FP → precision 1, 1/2; recall 1, 1 → AP 1. Pedestrian: 1 GT, no detections → AP 0.
  assert.deepEqual([r.vehicle['0.5'].tp, r.vehicle['0.5'].fp, r.vehicle['0.5'].gt], [1, 1, 1]);
  close(r.vehicle['0.5'].ap, 1, 'vehicle AP');
  assert.equal(r.byClass.pedestrian!['0.5'].ap, 0);
  close(r.meanAp['0.5'], 0.5, 'mean AP');

  // With a fixed class list, other classes are ignored entirely.
  const vehiclesOnly = evaluateDetections(
    [{ detections: [{ box: ped, score: 0.8, cls: 'pedestrian' }], groundTruth: [{ box: ped, cls: 'pedestrian' }, { box: car(0), cls: 'vehicle' }] }],
    { thresholds: [0.5], classes: ['vehicle'] },
  );
  assert.deepEqual(Object.keys(vehiclesOnly.byClass), ['vehicle']);
  assert.deepEqual([vehiclesOnly.vehicle['0.5'].tp, vehiclesOnly.vehicle['0.5'].fp, vehiclesOnly.vehicle['0.5'].gt], [0, 0, 1]);
});

test('many frames of many boxes: every shifted pair a true positive (time printed, not asserted)', () => {
  const acc = new ApAccumulator();
  const gts: Box7[] = [];
  for (let i = 0; i < 100; i++) gts.push(car((i % 10) * 12, Math.floor(i / 10) * 5));
  const dets = gts.map((g, i) => det({ ...g, x: g.x + 0.2 }, (i * 37) % 100 / 100));
  const t0 = performance.now();
  for (let f = 0; f < 50; f++) acc.addFrame(dets, gts);
  const elapsed = performance.now() - t0;
  const r = acc.result();
  // Shift 0.2: IoU = 5.8/6.2 ≈ 0.935, a TP at every threshold.
  assert.equal(r['0.7'].tp, 5000);
  close(r['0.7'].ap, 1, 'AP');
  console.log(`# 50 frames of 100×100 boxes in ${elapsed.toFixed(0)} ms`);
});

test('ignored ("difficult") ground truth: not counted in recall, and a detection on it is neither TP nor FP', () => {
  // GT A at x=0 (scored), GT H at x=40 (ignored). D1 (0.9) on H with IoU 1, D2 (0.8) on A with IoU 0.6, D3 (0.7)
  // far from both. Scored sequence: D2 TP, D3 FP → precision [1, 1/2], recall [1, 1], AP = 1.
  // Without the flag: D1 TP, D2 TP@0.5, D3 FP over 2 GT → recall [1/2, 1, 1], precision [1, 1, 2/3], AP = 1 too,
  // so the difference is checked on tp/fp/gt and on a case where the ignored box would be missed.
  const acc = new ApAccumulator([0.5]);
  acc.addFrame([det(car(40), 0.9), det(car(1.5), 0.8), det(car(-30), 0.7)], [car(0), car(40)], [false, true]);
  const r = acc.result()['0.5'];
  assert.equal(r.gt, 1);
  assert.equal(r.tp, 1);
  assert.equal(r.fp, 1);
  closeAll(r.precision, [1, 1 / 2], 'precision');
  closeAll(r.recall, [1, 1], 'recall');
  close(r.ap, 1, 'AP');

  // An ignored box nobody detects costs nothing; the same box scored halves the recall ceiling.
  const hidden = new ApAccumulator([0.5]);
  hidden.addFrame([det(car(0), 0.9)], [car(0), car(40)], [false, true]);
  close(hidden.result()['0.5'].ap, 1, 'missed ignored box');
  const scored = new ApAccumulator([0.5]);
  scored.addFrame([det(car(0), 0.9)], [car(0), car(40)]);
  close(scored.result()['0.5'].ap, 0.5, 'missed scored box');

  // Two detections on one ignored box: both dropped (VOC), not one TP and one duplicate FP.
  const twice = new ApAccumulator([0.5]);
  twice.addFrame([det(car(40), 0.9), det(car(40.5), 0.8)], [car(40)], [true]);
  const t = twice.result()['0.5'];
  assert.deepEqual([t.tp, t.fp, t.gt, t.precision.length], [0, 0, 0, 0]);
  assert.ok(Number.isNaN(t.ap));

  assert.throws(() => new ApAccumulator().addFrame([], [car(0)], []), EvaluationInputError);
});

test('the class-aware accumulator carries ClassedBox.ignored to its class', () => {
  const acc = new ClassAwareApAccumulator([0.5], ['vehicle', 'pedestrian']);
  acc.addFrame(
    [{ box: car(0), score: 0.9, cls: 'vehicle' }],
    [{ box: car(0), cls: 'vehicle' }, { box: car(40), cls: 'vehicle', ignored: true }, { box: car(80), cls: 'pedestrian', ignored: true }],
  );
  const r = acc.result();
  close(r.vehicle['0.5'].ap, 1, 'vehicle AP with the unseen box ignored');
  assert.equal(r.vehicle['0.5'].gt, 1);
  assert.equal(r.byClass.pedestrian!['0.5'].gt, 0);
});
