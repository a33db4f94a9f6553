import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { SweepDefinitionError, configurationKey, expandGrid, expandGrids, parsePoseNoiseLevel, parseSweepDefinition } from '../../src/sweep/index.ts';
import { projectRoot } from '../cli/helpers.ts';

test('the grid collapses what a mode ignores: ego only has no codec or impairment, late no codec, early a point codec', () => {
  const { configurations, skipped } = expandGrid(
    { fusion: ['none', 'late:wbf', 'early', 'max'], codecs: ['none', 'int8+deflate'], loss: [0, 0.5] },
    false,
  );
  const names = configurations.map((c) => `${c.fusion}|${c.codec}|${c.lateMerge}|${c.loss}`);
  assert.deepEqual(names, [
    'none|null|null|0',
    'late|null|wbf|0', 'late|null|wbf|0.5',
    'early|1cm+deflate|null|0', 'early|1cm+deflate|null|0.5',
    'max|null|null|0', 'max|null|null|0.5', 'max|int8+deflate|null|0', 'max|int8+deflate|null|0.5',
  ]);
  assert.deepEqual(skipped, []);
});

test('intermediate resolves to attention only when the models have it; hybrid without cell selection is skipped', () => {
  assert.equal(expandGrid({ fusion: ['intermediate'], codecs: [] }, true).configurations[0].fusion, 'attention');
  assert.equal(expandGrid({ fusion: ['intermediate'], codecs: [] }, false).configurations[0].fusion, 'max');
  const r = expandGrid({ fusion: ['hybrid'], codecs: ['int8+deflate', 'int8+top10%'] }, false);
  assert.deepEqual(r.configurations.map((c) => c.codec), ['int8+top10%']);
  assert.match(r.skipped[0], /hybrid needs a codec that selects cells/);
  assert.throws(() => expandGrid({ fusion: ['max:wbf'], codecs: [] }, false), SweepDefinitionError);
});

test('pose noise levels: one number for both stds, a pair, 0 for none; garbage refused', () => {
  assert.deepEqual(parsePoseNoiseLevel('0.2'), { posM: 0.2, yawDeg: 0.2 });
  assert.deepEqual(parsePoseNoiseLevel('0.4/1'), { posM: 0.4, yawDeg: 1 });
  assert.equal(parsePoseNoiseLevel('0'), null);
  assert.throws(() => parsePoseNoiseLevel('a'), /pose noise 'a'/);
  assert.throws(() => parsePoseNoiseLevel('-1'), SweepDefinitionError);
});

test('a configuration key changes with anything that changes the numbers', () => {
  const ctx = { dataset: '/d', scenario: 's', ego: '1', frames: 20, fromFrame: 0, seed: 0, modelId: 'm' };
  const [a] = expandGrid({ fusion: ['max'], codecs: ['int8+deflate'] }, false).configurations;
  assert.equal(configurationKey(a, ctx), configurationKey({ ...a }, { ...ctx }));
  for (const changed of [{ ...ctx, frames: 21 }, { ...ctx, seed: 1 }, { ...ctx, modelId: 'n' }]) assert.notEqual(configurationKey(a, changed), configurationKey(a, ctx));
  assert.notEqual(configurationKey({ ...a, loss: 0.1 }, ctx), configurationKey(a, ctx));
});

test('sweeps/headline.yaml parses into the README table\'s rows, the channel-reduction rows among them', async () => {
  const def = parseSweepDefinition(await readFile(resolve(projectRoot, 'sweeps/headline.yaml'), 'utf8'), 'headline.yaml');
  assert.equal(def.frames, 20);
  const { configurations, skipped } = expandGrids(def.grids.map((g) => ({ ...g, codecs: g.codecs ?? [] })), true, 'headline.yaml');
  assert.equal(configurations.length, 15);
  assert.equal(configurations.filter((c) => c.codec?.startsWith('c')).length, 4);
  assert.deepEqual(new Set(configurations.map((c) => c.fusion)), new Set(['none', 'attention', 'max', 'hybrid', 'late', 'early']));
  assert.equal(skipped.length, 0);
  assert.throws(() => parseSweepDefinition('grids: []', 'x.yaml'), /x\.yaml: grids/);
  assert.throws(() => parseSweepDefinition('grids:\n  - fusion: max\n    colour: red\n', 'x.yaml'), SweepDefinitionError);
});
