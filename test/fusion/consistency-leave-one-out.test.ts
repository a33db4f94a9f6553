// Leave-one-out attribution (feature modes): the fused detections that exist only with a collaborator, or score much
// higher with it, and lie in the ego's free space are blamed on it; one the fusion has without it too, or one in
// space the ego cannot see, is not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Detection } from '../../src/eval/index.ts';
import { FreeSpaceBuilder, attributeToCollaborator } from '../../src/fusion/index.ts';
import { GRID, sweep } from './synthetic-sweep.ts';

const car = (x: number, y: number, score: number, yaw = 0): Detection => ({ box: { x, y, z: -1.1, l: 4.5, w: 1.9, h: 1.6, yaw }, score, cls: 'vehicle' });


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
