// The free-space (ghost) check: a beam from the ego's LiDAR to a return proves the cells it crossed empty; a car a
// collaborator reports there is a contradiction, one behind an occluder (cells no beam reached) is not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Detection } from '../../src/eval/index.ts';
import {
  CELL_FREE,
  CELL_OCCUPIED,
  CELL_UNKNOWN,
  FreeSpaceBuilder,
  type FreeSpaceMap,
  checkConsistency,
  contradictsFreeSpace,
  estimateGroundZ,
  filterConsistent,
  footprintOnMap,
  freeSpaceFromWire,
  wireFreeSpace,
} from '../../src/fusion/index.ts';
import { GRID, GROUND, sweep } from './synthetic-sweep.ts';

const car = (x: number, y: number, yaw = 0, score = 0.9): Detection => ({ box: { x, y, z: -1.1, l: 4.5, w: 1.9, h: 1.6, yaw }, score, cls: 'vehicle' });


const cellAt = (m: FreeSpaceMap, x: number, y: number) => m.state[Math.floor((y - m.grid.yMin) / m.grid.cellSize) * m.grid.width + Math.floor((x - m.grid.xMin) / m.grid.cellSize)];

test('free space: cells low beams crossed are free, cells with returns occupied, cells behind an occluder unknown', () => {
  const m = new FreeSpaceBuilder(GRID).build(sweep());
  assert.equal(cellAt(m, 8, 10), CELL_FREE, 'open road crossed by beams');
  assert.equal(cellAt(m, 12.1, 0.2), CELL_OCCUPIED, "the car's near side");
  assert.equal(cellAt(m, 16, 0), CELL_UNKNOWN, 'behind the car: no beam got there');
  assert.equal(cellAt(m, 38, 38), CELL_UNKNOWN, 'beyond the returns');
  // Ground read off the cloud itself: the most common height.
  assert.ok(Math.abs(estimateGroundZ(sweep()) - GROUND) < 0.1);
});

test('a ghost in open road contradicts the ego\'s free space; the car the ego sees, and one hidden behind it, do not', () => {
  const m = new FreeSpaceBuilder(GRID).build(sweep());
  assert.equal(contradictsFreeSpace(m, car(8, 10, 0.7)), true, 'ghost');
  assert.equal(contradictsFreeSpace(m, car(14.3, 0)), false, 'the occluder itself: ego returns inside');
  assert.equal(contradictsFreeSpace(m, car(19, 0)), false, 'occluded: its cells are unknown, not free');
  assert.equal(contradictsFreeSpace(m, car(60, 0)), false, 'off the map');
  assert.equal(contradictsFreeSpace(m, car(8, 10, 0.7, 0.1)), false, 'below the score judged');
  const pedestrian: Detection = { box: { x: 8, y: 10, z: -1, l: 0.6, w: 0.6, h: 1.7, yaw: 0 }, score: 0.9, cls: 'pedestrian' };
  assert.equal(contradictsFreeSpace(m, pedestrian), false, 'too small for 0.8 m cells to rule out');
  // A beam high over the ground (a pole LiDAR 6 m up, returns far away) proves nothing near the pole.
  const pole = Float32Array.from([30, 0, -6, 0, 30, 0.5, -6, 0]);
  const high = new FreeSpaceBuilder(GRID, { groundZ: -6 }).build(pole);
  assert.equal(cellAt(high, 5, 0), CELL_UNKNOWN);
  assert.equal(cellAt(high, 27, 0), CELL_FREE);
});

test('the builder reuses its buffers; every frame starts from unknown', () => {
  const b = new FreeSpaceBuilder(GRID);
  const first = b.build(sweep());
  const second = b.build(new Float32Array(0));
  assert.equal(first, second, 'one map object, overwritten');
  assert.ok(second.state.every((s) => s === CELL_UNKNOWN), 'an empty sweep knows nothing');
});

test('on the wire: two deflated bit planes round-trip exactly, well under the raw size; damage is refused naming the field', () => {
  const m = new FreeSpaceBuilder(GRID).build(sweep());
  const w = wireFreeSpace(m);
  assert.ok(w.planes.byteLength < (2 * GRID.width * GRID.height) / 8 / 2, `${w.planes.byteLength} bytes`);
  const back = freeSpaceFromWire(w);
  assert.deepEqual(back.grid, GRID);
  assert.deepEqual(back.state, m.state);
  assert.throws(() => freeSpaceFromWire({ ...w, planes: w.planes.subarray(0, 10) }), /freeSpace\.planes/);
  assert.throws(() => freeSpaceFromWire({ ...w, width: 50 }), /freeSpace\.planes/, 'planes larger than the grid says');
  assert.throws(() => freeSpaceFromWire({ ...w, width: 1e6 }), /grid\.width/);
});

test('consistency with the free-space map: a collaborator adding ghosts is excluded; an honest one seeing the occluded car is kept', () => {
  const freeSpace = new FreeSpaceBuilder(GRID).build(sweep());
  const seen = [car(14.3, 0)];
  const ego = { id: 'ego', x: 0, y: 0, detections: seen, freeSpace };
  const honest = { id: 'honest', x: 25, y: 0, detections: [car(14.4, 0.1), car(19, 0)] };
  const liar = { id: 'liar', x: -5, y: 20, detections: [...seen, car(8, 10, 0.7), car(-6, 12, 2), car(10, -14, 0.3)] };
  const verdicts = checkConsistency(ego, [honest, liar]);
  assert.deepEqual(verdicts.map((v) => [v.id, v.contradictions, v.exclude, v.reason]), [['honest', 0, false, undefined], ['liar', 3, true, 'free-space']]);
  // Without the map the liar passes: everything it adds is merely unconfirmed, and half its list is confirmed.
  assert.equal(checkConsistency({ ...ego, freeSpace: undefined }, [honest, liar]).find((v) => v.id === 'liar')?.exclude, false);
  // One stray object (up to maxContradictions) keeps the collaborator but not that object.
  const stray = { id: 'stray', x: -5, y: 20, detections: [...seen, car(8, 10, 0.7)] };
  const { kept, verdicts: v2 } = filterConsistent(ego, [honest, stray]);
  assert.equal(v2[1]!.exclude, false);
  assert.equal(kept[1]!.detections.length, seen.length);
  assert.equal(kept[0], honest, 'a collaborator with nothing contradicted is passed through as it is');
});

test('a footprint check costs at most the grid\'s resolution, however large the box', () => {
  const map = new FreeSpaceBuilder(GRID).build(sweep());
  const huge: Detection = { box: { x: 0, y: 0, z: -1, l: 1e9, w: 1e9, h: 2, yaw: 0 }, score: 0.9, cls: 'vehicle' };
  const f = footprintOnMap(map, huge.box);
  assert.ok(f.samples <= (2 * GRID.width) ** 2, `${f.samples} samples`);
  // Its samples are kilometres apart, so none falls on the 80 m map: it is not judged (and the gate refuses it first).
  assert.equal(f.outside, f.samples);
});
