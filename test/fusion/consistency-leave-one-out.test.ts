// Leave-one-out attribution (feature modes): the fused detections that exist only with a collaborator, or score much
// higher with it, and lie in the ego's free space are blamed on it; one the fusion has without it too, or one in
// space the ego cannot see, is not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Detection } from '../../src/eval/index.ts';
import { FreeSpaceBuilder, attributeToCollaborator } from '../../src/fusion/index.ts';

const GROUND = -1.9;
const GRID = { xMin: -40, yMin: -40, cellSize: 0.8, width: 100, height: 100 };
const car = (x: number, y: number, score: number, yaw = 0): Detection => ({ box: { x, y, z: -1.1, l: 4.5, w: 1.9, h: 1.6, yaw }, score, cls: 'vehicle' });

/** Ground returns every 0.5° out to 35 m, except behind a car at x = 12 (|y| ≤ 1), where the beams end on it. */
function sweep(): Float32Array {
  const pts: number[] = [];
  for (let deg = 0; deg < 360; deg += 0.5) {
    const a = (deg * Math.PI) / 180;
    const c = Math.cos(a), s = Math.sin(a);
    const blocked = c > 0 && Math.abs((12 * s) / c) <= 1;
    const end = blocked ? 12 / c : 35;
    for (let r = 3; r < end; r += 0.5) pts.push(r * c, r * s, GROUND, 0.3);
    if (blocked) for (const z of [-1.5, -1.0, -0.6]) pts.push(12, (12 * s) / c, z, 0.8);
  }
  return Float32Array.from(pts);
}

const map = new FreeSpaceBuilder(GRID).build(sweep());
const scoresOf = (...args: Parameters<typeof attributeToCollaborator>) => attributeToCollaborator(...args).map((d) => d.score);

test('a fused car in free space that only exists with the collaborator is attributed to it, with its score', () => {
  const without = [car(14.3, 0, 0.8)];
  const withAll = [car(14.3, 0, 0.82), car(8, 10, 0.45, 0.7), car(-10, -6, 0.6)];
  assert.deepEqual(scoresOf(map, withAll, without), [0.6, 0.45]);
});

test('a car the fusion has without the collaborator too is not attributed, unless the collaborator raised its score by minGain', () => {
  const withAll = [car(8, 10, 0.7, 0.7)];
  assert.deepEqual(scoresOf(map, withAll, [car(8.5, 10.3, 0.6, 0.7)]), [], 'an existing detection, a little stronger');
  assert.deepEqual(scoresOf(map, withAll, [car(8.5, 10.3, 0.25, 0.7)]), [0.7], 'a weak one made strong: 0.45 gained');
  assert.deepEqual(scoresOf(map, withAll, [car(12, 14, 0.7, 0.7)]), [0.7], 'a detection 5 m away is another one');
});

test('cars in space the ego cannot see (behind its occluder, off the map) or with an ego return inside are never attributed', () => {
  const withAll = [car(19, 0, 0.9), car(60, 0, 0.9), car(14.3, 0, 0.9)];
  assert.deepEqual(scoresOf(map, withAll, []), []);
});

test('below the judged score nothing is attributed; the settings move the thresholds', () => {
  const withAll = [car(8, 10, 0.15, 0.7)];
  assert.deepEqual(scoresOf(map, withAll, []), [], 'default minScore 0.2');
  assert.deepEqual(scoresOf(map, withAll, [], { leaveOneOut: { minScore: 0.1, minGain: 0.1 } }), [0.15]);
  assert.deepEqual(scoresOf(map, withAll, [], { leaveOneOut: { minScore: 0.1 } }), [], 'a 0.15 car gained less than the default minGain 0.2');
  assert.deepEqual(scoresOf(map, [car(8, 10, 0.7, 0.7)], [car(8, 10, 0.25, 0.7)], { leaveOneOut: { minGain: 0.5 } }), [], 'a 0.45 gain under minGain 0.5');
});
