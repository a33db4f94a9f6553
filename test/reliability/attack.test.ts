// AP under attack through tools/reliability/attack-ap.ts's evaluation, on synthetic views (no models): three agents
// see the same cars with decimetre errors; one collaborator shifts what it sends by 5 m. Without the consistency
// check its shifted boxes survive NMS as false positives (and can suppress true ones); with it the liar is
// excluded every frame, nobody honest is, and AP returns to the level of the honest agents alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Detection } from '../../src/eval/index.ts';
import { type FrameViews, attackRow } from '../../tools/reliability/attack-ap.ts';

const RANGE = { xMin: -51.2, xMax: 51.2, yMin: -51.2, yMax: 51.2 };

function views(frames: number): FrameViews[] {
  return Array.from({ length: frames }, (_, f) => {
    const cars = Array.from({ length: 8 }, (_, k) => ({ x: -30 + 8 * k + f * 0.5, y: (k % 3) * 6 - 6, yaw: 0.1 * k }));
    const gt = cars.map((c) => ({ box: { x: c.x, y: c.y, z: -1, l: 4.5, w: 1.9, h: 1.6, yaw: c.yaw }, cls: 'vehicle' as const }));
    const seen = (k: number, miss: number): Detection[] =>
      gt.filter((_, i) => i % 5 !== miss).map((g, i) => ({ box: { ...g.box, x: g.box.x + 0.2 * Math.sin(i + k), y: g.box.y + 0.2 * Math.cos(i * k) }, score: 0.6 + 0.04 * i, cls: 'vehicle' as const }));
    return {
      agents: [
        { id: 'ego', x: 0, y: 0, detections: seen(1, 0) },
        { id: 'liar', x: 10, y: 5, detections: seen(2, 1) },
        { id: 'honest', x: -10, y: -5, detections: seen(3, 2) },
      ],
      groundTruth: gt.map((g, i) => ({ ...g, id: String(i) })) as unknown as FrameViews['groundTruth'],
    };
  });
}

test('a collaborator shifting its objects by 5 m: the check excludes it every frame and AP recovers', () => {
  const v = views(10);
  const clean = attackRow(v, 'ego', 'liar', { kind: 'none' }, false, 0.15, RANGE);
  const off = attackRow(v, 'ego', 'liar', { kind: 'shift', metres: 5 }, false, 0.15, RANGE);
  const on = attackRow(v, 'ego', 'liar', { kind: 'shift', metres: 5 }, true, 0.15, RANGE);
  const cleanOn = attackRow(v, 'ego', 'liar', { kind: 'none' }, true, 0.15, RANGE);
  console.log(`AP@0.5 clean ${clean.ap50.toFixed(3)}, attacked ${off.ap50.toFixed(3)}, attacked with the check ${on.ap50.toFixed(3)}`);
  assert.ok(off.ap50 < clean.ap50 - 0.05, `the attack must hurt: ${off.ap50} vs ${clean.ap50}`);
  assert.equal(on.attackerExcluded, 10);
  assert.equal(on.honestExcluded, 0);
  assert.ok(on.ap50 > off.ap50 + 0.05, `${on.ap50} vs ${off.ap50}`);
  // No attack: the check changes nothing.
  assert.deepEqual([cleanOn.attackerExcluded, cleanOn.honestExcluded, cleanOn.ap50], [0, 0, clean.ap50]);
});
