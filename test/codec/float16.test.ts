import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLOAT16_MAX, float16Table, toFloat16Bits } from '../../src/codec/index.ts';
import { seededRandom } from './synthetic-bev.ts';

test('known binary16 bit patterns (IEEE 754 examples)', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [0.1, 0x2e66], // 0.0999755859375
    [1 / 3, 0x3555],
    [65520, 0x7c00], // rounds up past the largest finite: infinity
    [Infinity, 0x7c00],
  ];
  for (const [value, bits] of cases) assert.equal(toFloat16Bits(value), bits, `${value}`);
  assert.equal((toFloat16Bits(NaN) & 0x7c00) === 0x7c00 && (toFloat16Bits(NaN) & 0x3ff) !== 0, true);
});

test('ties round to even', () => {
  // 1 + 2^-11 is halfway between 1 (0x3c00, even) and 1 + 2^-10 (0x3c01): to the even one.
  assert.equal(toFloat16Bits(1 + 2 ** -11), 0x3c00);
  // 1 + 3·2^-11 is halfway between 0x3c01 (odd) and 0x3c02: up.
  assert.equal(toFloat16Bits(1 + 3 * 2 ** -11), 0x3c02);
  // Subnormal tie: 1.5·2^-24 between 0x0001 (odd) and 0x0002: up; 2.5·2^-24: down to 0x0002.
  assert.equal(toFloat16Bits(1.5 * 2 ** -24), 0x0002);
  assert.equal(toFloat16Bits(2.5 * 2 ** -24), 0x0002);
});

test('the table inverts the encoder on every finite half, and the stated error bound holds', () => {
  const table = float16Table();
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00) continue;
    assert.equal(toFloat16Bits(table[h]), h === 0x8000 ? 0x8000 : h);
  }
  assert.equal(table[0x7bff], FLOAT16_MAX);
  assert.equal(table[0x7c00], Infinity);
  assert.ok(Number.isNaN(table[0x7e00]));
  const random = seededRandom(3);
  for (let i = 0; i < 20000; i++) {
    const x = Math.fround((random() - 0.5) * 2 ** (random() * 40 - 24));
    if (Math.abs(x) > FLOAT16_MAX) continue;
    const err = Math.abs(table[toFloat16Bits(x)] - x);
    const bound = Math.abs(x) >= 2 ** -14 ? Math.abs(x) * 2 ** -11 : 2 ** -25;
    assert.ok(err <= bound, `${x}: error ${err} > ${bound}`);
  }
});
