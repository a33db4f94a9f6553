// AP under attack through tools/reliability/attack-ap.ts's evaluation, on synthetic views (no models): three agents
// see the same cars with decimetre errors; one collaborator shifts what it sends by 5 m. Without the consistency
// check its shifted boxes survive NMS as false positives (and can suppress true ones); with it the liar is
// excluded every frame, nobody honest is, and AP returns to the level of the honest agents alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Detection } from '../../src/eval/index.ts';
import { CELL_FREE, CELL_OCCUPIED, wireFreeSpace } from '../../src/fusion/index.ts';
import { type FrameViews, attackRow } from '../../tools/reliability/attack-ap.ts';

const RANGE = { xMin: -51.2, xMax: 51.2, yMin: -51.2, yMax: 51.2 };

/** The ego's free space in a scene it sees whole: every cell free but those under a car (occupied). */
function egoFreeSpace(gt: { box: Detection['box'] }[]): FrameViews['egoFreeSpace'] {
  const grid = { xMin: -51.2, yMin: -51.2, cellSize: 0.8, width: 128, height: 128 };
  const state = new Uint8Array(128 * 128).fill(CELL_FREE);
  for (const { box } of gt) {
    for (let dx = -2.4; dx <= 2.4; dx += 0.4) for (let dy = -1.2; dy <= 1.2; dy += 0.4) {
      state[Math.floor((box.y + dy + 51.2) / 0.8) * 128 + Math.floor((box.x + dx + 51.2) / 0.8)] = CELL_OCCUPIED;
    }
  }
  const w = wireFreeSpace({ grid, state });
  return { ...w, planes: Buffer.from(w.planes).toString('base64') };
}

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
      egoFreeSpace: egoFreeSpace(gt),
    };
  });
}

test('a collaborator shifting its objects by 5 m: the check excludes it every frame and AP recovers', () => {
  const v = views(10);
  const clean = attackRow(v, 'ego', 'liar', { kind: 'none' }, 'off', 0.15, RANGE);
  const off = attackRow(v, 'ego', 'liar', { kind: 'shift', metres: 5 }, 'off', 0.15, RANGE);
  const on = attackRow(v, 'ego', 'liar', { kind: 'shift', metres: 5 }, 'agreement', 0.15, RANGE);
  const cleanOn = attackRow(v, 'ego', 'liar', { kind: 'none' }, 'agreement', 0.15, RANGE);
  console.log(`AP@0.5 clean ${clean.ap50.toFixed(3)}, attacked ${off.ap50.toFixed(3)}, attacked with the check ${on.ap50.toFixed(3)}`);
  assert.ok(off.ap50 < clean.ap50 - 0.05, `the attack must hurt: ${off.ap50} vs ${clean.ap50}`);
  assert.equal(on.attackerExcluded, 10);
  assert.equal(on.honestExcluded, 0);
  assert.ok(on.ap50 > off.ap50 + 0.05, `${on.ap50} vs ${off.ap50}`);
  // No attack: the check changes nothing.
  assert.deepEqual([cleanOn.attackerExcluded, cleanOn.honestExcluded, cleanOn.ap50], [0, 0, clean.ap50]);
});

test('a collaborator adding 10 ghost cars: the agreement check misses it, the free-space check excludes it and nobody honest', () => {
  const v = views(10);
  const clean = attackRow(v, 'ego', 'liar', { kind: 'none' }, 'off', 0.15, RANGE);
  const off = attackRow(v, 'ego', 'liar', { kind: 'ghosts', count: 10 }, 'off', 0.15, RANGE);
  const agreement = attackRow(v, 'ego', 'liar', { kind: 'ghosts', count: 10 }, 'agreement', 0.15, RANGE);
  const free = attackRow(v, 'ego', 'liar', { kind: 'ghosts', count: 10 }, 'both', 0.15, RANGE);
  const cleanFree = attackRow(v, 'ego', 'liar', { kind: 'none' }, 'both', 0.15, RANGE);
  console.log(`AP@0.5 clean ${clean.ap50.toFixed(3)}, 10 ghosts ${off.ap50.toFixed(3)}, agreement check ${agreement.ap50.toFixed(3)}, free-space check ${free.ap50.toFixed(3)}`);
  assert.ok(off.ap50 < clean.ap50 - 0.05, `the attack must hurt: ${off.ap50} vs ${clean.ap50}`);
  assert.equal(agreement.attackerExcluded, 0, 'ghosts beside a confirmed list pass the agreement check');
  assert.equal(free.attackerExcluded, 10);
  assert.equal(free.honestExcluded, 0);
  assert.ok(free.ap50 > off.ap50 + 0.05, `${free.ap50} vs ${off.ap50}`);
  assert.deepEqual([cleanFree.attackerExcluded, cleanFree.honestExcluded, cleanFree.ap50], [0, 0, clean.ap50]);
});
