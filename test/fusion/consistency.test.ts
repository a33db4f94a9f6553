// The CP-Guard-style consistency check: honest collaborators that see what the ego sees are kept; one that shifts
// its objects by metres or adds ghosts is excluded; objects nobody else can see are not held against anyone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Detection } from '../../src/eval/index.ts';
import { checkConsistency, filterConsistent } from '../../src/fusion/index.ts';

const car = (x: number, y: number, score = 0.8): Detection => ({ box: { x, y, z: -1, l: 4.5, w: 1.9, h: 1.6, yaw: 0 }, score, cls: 'vehicle' });
const SCENE = [car(10, 2), car(-12, 5), car(20, -8), car(5, 15), car(30, 3)];
// Another agent's detections of the same cars: a few decimetres off, as a detector's centres are.
const jitter = (list: Detection[], k = 1) => list.map((d, i) => car(d.box.x + 0.3 * Math.sin(i + k), d.box.y - 0.3 * Math.cos(i * k), d.score));

test('an honest collaborator that sees what the ego sees is kept with full agreement', () => {
  const [v] = checkConsistency({ id: 'ego', x: 0, y: 0, detections: SCENE }, [{ id: 'a', x: 15, y: 0, detections: jitter(SCENE) }]);
  assert.deepEqual([v!.checked, v!.confirmed, v!.exclude, v!.undecided], [5, 5, false, false]);
});

test('a collaborator that shifts its objects by 3 m or more is excluded; a 1 m error is tolerated', () => {
  for (const [shift, excluded] of [[1, false], [3, true], [5, true]] as const) {
    const shifted = jitter(SCENE).map((d) => car(d.box.x + shift, d.box.y, d.score));
    const [v] = checkConsistency({ id: 'ego', x: 0, y: 0, detections: SCENE }, [{ id: 'a', x: 15, y: 0, detections: shifted }]);
    assert.equal(v!.exclude, excluded, `shift ${shift} m: agreement ${v!.agreement}`);
  }
});

test('ghosts four times as many as the real objects get a collaborator excluded; a few stray false positives do not', () => {
  const ghosts = Array.from({ length: 21 }, (_, k) => car(35 * Math.cos(k), 35 * Math.sin(k)));
  const [liar] = checkConsistency({ id: 'ego', x: 0, y: 0, detections: SCENE }, [{ id: 'a', x: 15, y: 0, detections: [...jitter(SCENE), ...ghosts] }]);
  assert.ok(liar!.exclude, `agreement ${liar!.agreement}`);
  const [honest] = checkConsistency({ id: 'ego', x: 0, y: 0, detections: SCENE }, [{ id: 'a', x: 15, y: 0, detections: [...jitter(SCENE), ...ghosts.slice(0, 3)] }]);
  assert.equal(honest!.exclude, false);
});

test('a liar is excluded first and stops being a witness: the honest agent it failed to confirm is judged without it', () => {
  // h sees two cars the ego does not (beyond 50 m of the ego, within its own range); the liar, near h, reports
  // them shifted. Judged with the liar as a witness h would lose nothing here, but the liar is judged and excluded.
  const ego = { id: 'ego', x: 0, y: 0, detections: SCENE };
  const liar = { id: 'liar', x: 20, y: 0, detections: SCENE.map((d) => car(d.box.x + 5, d.box.y + 3)) };
  const h = { id: 'h', x: 25, y: 5, detections: jitter(SCENE, 4) };
  const verdicts = checkConsistency(ego, [liar, h]);
  assert.deepEqual(verdicts.map((v) => [v.id, v.exclude]), [['liar', true], ['h', false]]);
});

test('objects only the collaborator can see are not checked; another collaborator can confirm what the ego cannot see', () => {
  // Far beyond the ego's 50 m: nobody but b covers them.
  const far = [car(90, 0), car(95, 5), car(100, -5), car(92, 10)];
  const ego = { id: 'ego', x: 0, y: 0, detections: SCENE };
  const [alone] = checkConsistency(ego, [{ id: 'b', x: 80, y: 0, detections: far }]);
  assert.deepEqual([alone!.checked, alone!.undecided, alone!.exclude], [0, true, false]);
  assert.ok(Number.isNaN(alone!.agreement));
  // With a second collaborator nearby that sees the same far cars, they are checked and confirmed.
  const { kept, verdicts } = filterConsistent(ego, [{ id: 'b', x: 80, y: 0, detections: far }, { id: 'c', x: 85, y: 5, detections: jitter(far, 2) }]);
  assert.deepEqual(verdicts.map((v) => [v.id, v.checked, v.confirmed, v.exclude]), [['b', 4, 4, false], ['c', 4, 4, false]]);
  assert.deepEqual(kept.map((k) => k.id), ['b', 'c']);
});

test('two honest witnesses outvote a liar, and the liar does not get them excluded', () => {
  const ego = { id: 'ego', x: 0, y: 0, detections: SCENE };
  const liar = { id: 'liar', x: 10, y: 0, detections: jitter(SCENE).map((d) => car(d.box.x + 5, d.box.y + 2)) };
  const { kept, verdicts } = filterConsistent(ego, [{ id: 'h1', x: 12, y: 3, detections: jitter(SCENE, 3) }, liar, { id: 'h2', x: -8, y: 4, detections: jitter(SCENE, 5) }]);
  assert.deepEqual(kept.map((k) => k.id), ['h1', 'h2']);
  assert.equal(verdicts.find((v) => v.id === 'liar')!.confirmed, 0);
});

test('too few objects to judge (below minChecked): kept, marked undecided', () => {
  const [v] = checkConsistency({ id: 'ego', x: 0, y: 0, detections: SCENE }, [{ id: 'a', x: 15, y: 0, detections: [car(40, -30), car(-30, 30)] }]);
  assert.deepEqual([v!.checked, v!.undecided, v!.exclude], [2, true, false]);
});

test('low-score detections are neither checked nor witnesses', () => {
  const faint = SCENE.map((d) => car(d.box.x, d.box.y, 0.1));
  const [v] = checkConsistency({ id: 'ego', x: 0, y: 0, detections: faint }, [{ id: 'a', x: 15, y: 0, detections: jitter(SCENE) }]);
  assert.deepEqual([v!.checked, v!.confirmed, v!.exclude], [5, 0, true]);
  const [w] = checkConsistency({ id: 'ego', x: 0, y: 0, detections: SCENE }, [{ id: 'a', x: 15, y: 0, detections: faint }]);
  assert.deepEqual([w!.checked, w!.undecided], [0, true]);
});
