// tools/reliability/attack-ap.ts's feature attack: the patch around a real car is copied, every channel, to each
// ghost position of the sender's map, clipped at the map's edge, the source read before anything is written.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pasteFeaturePatches } from '../../tools/reliability/attack-ap.ts';

// 2 channels of 16 × 16 cells of 1 m (cellSize 0.5 × stride 2) over [-8, 8) m.
const GRID = { xMin: -8, xMax: 8, yMin: -8, yMax: 8, zMin: -3, zMax: 1, cellSize: 0.5, featureStride: 2, channels: 2 };
const at = (f: Float32Array, c: number, row: number, col: number) => f[c * 256 + row * 16 + col];

test('pasteFeaturePatches copies the car patch, every channel, to each target, clipped at the edge', () => {
  const f = new Float32Array(2 * 256);
  // A "car" at cell (row 4, col 4), i.e. x = y = -3.5 m: channel c holds 10·c + 1 at the centre, 5 at its neighbours.
  for (let c = 0; c < 2; c++) {
    f[c * 256 + 4 * 16 + 4] = 10 * c + 1;
    f[c * 256 + 4 * 16 + 5] = 5;
  }
  const pasted = pasteFeaturePatches(f, GRID, { x: -3.5, y: -3.5 }, [{ x: 3.5, y: 4.5 }, { x: 7.5, y: 7.5 }, { x: 30, y: 0 }], 1);
  assert.equal(pasted, 2, 'the target off the map is skipped');
  for (let c = 0; c < 2; c++) {
    assert.equal(at(f, c, 12, 11), 10 * c + 1, 'centre copied (row from y = 4.5, col from x = 3.5)');
    assert.equal(at(f, c, 12, 12), 5, 'neighbour copied');
    assert.equal(at(f, c, 15, 15), 10 * c + 1, 'at the corner: the part on the map');
    assert.equal(at(f, c, 4, 4), 10 * c + 1, 'the source itself untouched');
  }
  // Nothing else written: the patch copies the zeros around the car too.
  let nonzero = 0;
  for (const v of f) if (v !== 0) nonzero++;
  assert.equal(nonzero, 2 * (2 + 2 + 1));
});
