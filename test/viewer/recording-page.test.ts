// The viewer in a real browser (Debian's chromium, WebGL on SwiftShader) on a recording of the fixture run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inflateSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { openDataset } from '../../src/datasets/index.ts';
import { decodeMessage } from '../../src/messages/index.ts';
import { type ViewerServer, readRecording, startViewerServer } from '../../src/viewer/index.ts';
import { AGENT_PALETTE, GT_COLOUR, contributorColour } from '../../src/viewer/web/scene.ts';
import { projectRoot, runCli } from '../cli/helpers.ts';
import { browserMissing, canvasPixels, countColour, countDifferent, launchChromium, openViewer } from './browser.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const skip = browserMissing();

let dir = '';
let recording = '';
let server: ViewerServer | undefined;
let browser: Browser | undefined;
let page: Page;
let errors: string[] = [];

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'v2xfuse-view-'));
  recording = join(dir, 'fixture.mcap');
  const run = await runCli(['run', FIXTURE, '--frames', '2', '--record', recording], 170_000);
  assert.equal(run.code, 0, run.stderr);
  server = await startViewerServer({ recording, port: 0 });
  browser = await launchChromium();
  ({ page, errors } = await openViewer(browser, server.url));
}, { timeout: 240_000 });

after(async () => {
  await browser?.close();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs `fn` in the page with the viewer's test handle (the function travels as source, as page.evaluate's do). */
const hook = <T>(fn: (h: Window['__v2xfuseViewer']) => T | Promise<T>): Promise<T> =>
  page.evaluate(`(${fn.toString()})(window.__v2xfuseViewer)`) as Promise<T>;

test('the recording is drawn: every agent\'s points, the ground-truth boxes and the fused detections', { skip }, async () => {
  const ds = await openDataset(FIXTURE);
  const frame0 = await ds.scenarios[0].frame(0);
  const gtIds = new Set(frame0.agents.flatMap((a) => a.boxes.map((b) => b.id)));
  let points = 0;
  for (const a of frame0.agents) points += Math.ceil((await a.loadPoints()).length / 4 / 2);
  const envelopes = await readRecording(recording);
  const results = envelopes.filter((e) => e.kind === 'result').map((e) => decodeMessage('result', e.data));
  results.sort((a, b) => Number(BigInt(a.header!.captureTimeNs!.toString()) - BigInt(b.header!.captureTimeNs!.toString())));

  const state = await hook(async (h) => {
    h.seek(0);
    h.setView('top');
    return { counts: await h.redraw(), frames: h.frameCount, agents: h.agents };
  });
  assert.equal(state.frames, 2);
  assert.deepEqual(state.agents, frame0.agents.map((a) => a.agentId).sort());
  assert.equal(state.counts.boxes, gtIds.size);
  assert.equal(state.counts.points, points);
  assert.equal(state.counts.detections, results[0].detections.length);
  assert.equal(state.counts.tracks, results[0].tracks.length);
  assert.equal(state.counts.agents, frame0.agents.length);

  // Pixels: ground truth alone paints its colour; without it that colour is (nearly) gone.
  await hook(async (h) => { h.setLayers({ points: false, detections: false, tracks: false, predictions: false, agents: false, gt: true }); await h.redraw(); });
  const gtOnly = countColour(await canvasPixels(page), GT_COLOUR.vehicle);
  await hook(async (h) => { h.setLayers({ gt: false }); await h.redraw(); });
  const none = countColour(await canvasPixels(page), GT_COLOUR.vehicle);
  assert.ok(gtOnly > 150 && none < gtOnly / 20, `GT-coloured pixels: ${gtOnly} with boxes, ${none} without`);
  // Points alone: each agent's cloud in its own colour.
  await hook(async (h) => { h.setLayers({ points: true }); await h.redraw(); });
  const pixels = await canvasPixels(page);
  for (let k = 0; k < state.agents.length; k++) {
    const n = countColour(pixels, AGENT_PALETTE[k], 90);
    assert.ok(n > 100, `agent ${state.agents[k]}: ${n} pixels in its colour`);
  }
  await hook(async (h) => { h.setLayers({ detections: true, tracks: true, predictions: true, agents: true, gt: true }); await h.redraw(); });
  assert.deepEqual(errors, []);
});

test('the timeline steps with the keyboard and the buttons, scrubs and plays', { skip }, async () => {
  await hook((h) => h.seek(0));
  await page.keyboard.press('ArrowRight');
  assert.equal(await hook((h) => h.frameIndex), 1);
  await hook((h) => h.redraw());
  assert.match(await page.textContent('#frameLabel') ?? '', /frame 2 \/ 2/);
  await page.keyboard.press('ArrowRight'); // the last frame stays the last
  assert.equal(await hook((h) => h.frameIndex), 1);
  await page.click('#back');
  assert.equal(await hook((h) => h.frameIndex), 0);
  await page.fill('#scrub', '1');
  assert.equal(await hook((h) => h.frameIndex), 1);
  // Frame 2 has its own result: the trails of tracks seen in both frames are drawn now.
  const counts = await hook((h) => h.redraw());
  assert.ok(counts.detections > 0);
  await page.keyboard.press(' ');
  assert.equal(await hook((h) => h.playing), true);
  await page.waitForFunction(() => window.__v2xfuseViewer.frameIndex === 0, null, { timeout: 10_000 }); // wraps around
  await page.keyboard.press(' ');
  assert.equal(await hook((h) => h.playing), false);
});

test('orbit, top-down and chase cameras and the ego/world frame switch give different pictures of the same scene', { skip }, async () => {
  await hook(async (h) => { h.seek(0); await h.redraw(); });
  const shots = [];
  for (const [key, view] of [['1', 'orbit'], ['2', 'top'], ['3', 'chase']] as const) {
    await page.keyboard.press(key);
    const state = await hook(async (h) => ({ view: h.view, counts: await h.redraw() }));
    assert.equal(state.view, view);
    assert.ok(state.counts.boxes > 0);
    shots.push(await canvasPixels(page));
  }
  const total = shots[0].width * shots[0].height;
  assert.ok(countDifferent(shots[0], shots[1]) > total * 0.05, 'orbit vs top');
  assert.ok(countDifferent(shots[1], shots[2]) > total * 0.05, 'top vs chase');
  await page.keyboard.press('2');
  await page.keyboard.press('f');
  const world = await hook(async (h) => ({ display: h.display, counts: await h.redraw() }));
  assert.equal(world.display, 'world');
  const worldShot = await canvasPixels(page);
  assert.ok(countDifferent(shots[1], worldShot) > total * 0.02, 'ego vs world frame');
  await page.keyboard.press('f');
  await page.keyboard.press('1');
});

/** The fused results of the recording, in capture order. */
async function recordedResults() {
  const results = (await readRecording(recording)).filter((e) => e.kind === 'result').map((e) => decodeMessage('result', e.data));
  return results.sort((a, b) => Number(BigInt(a.header!.captureTimeNs!.toString()) - BigInt(b.header!.captureTimeNs!.toString())));
}

test('the confidence heat map is the head\'s own map from the result, not one made up from the boxes', { skip }, async () => {
  const [first] = await recordedResults();
  const map = first.confidenceMap!;
  // The fusion node's default: 2 × 2 feature cells per map cell, deflated.
  assert.equal(map.width, 64);
  assert.equal(map.height, 64);
  const cells = inflateSync(map.cells!);
  assert.equal(cells.length, 64 * 64);
  const expected = cells.filter((v) => v / 255 > 0.02).length;
  assert.ok(expected > 0 && expected < cells.length);
  // Each detection's score is the probability of the anchor it came from, a cell or two from its regressed centre
  // (1.6 m map cells): the map holds at least that score there.
  for (const d of first.detections) {
    const row = Math.floor((d.box!.y! + 51.2) / 1.6), col = Math.floor((d.box!.x! + 51.2) / 1.6);
    let peak = 0;
    for (let r = Math.max(0, row - 2); r <= Math.min(63, row + 2); r++) for (let c = Math.max(0, col - 2); c <= Math.min(63, col + 2); c++) peak = Math.max(peak, cells[r * 64 + c]);
    assert.ok(peak >= Math.round(d.score! * 255) - 1, `map ${peak / 255} near a detection of score ${d.score}`);
  }

  const off = await hook(async (h) => { h.seek(0); h.setView('top'); h.setLayers({ points: false, gt: false, detections: false, tracks: false, predictions: false, agents: false }); h.setHeat('off'); await h.redraw(); return true; });
  assert.ok(off);
  const before = await canvasPixels(page);
  const heatCells = await hook(async (h) => { h.setHeat('confidence'); return (await h.redraw()).heatCells; });
  assert.equal(heatCells, expected);
  assert.ok(countDifferent(before, await canvasPixels(page)) > 500, 'the map is drawn');
  assert.match(await page.textContent('#legend') ?? '', /head confidence 64×64/);
  await hook(async (h) => { h.setHeat('off'); h.setLayers({ points: true, gt: true, detections: true, tracks: true, predictions: true, agents: true }); h.setView('orbit'); await h.redraw(); });
});

test('detections coloured by the agents the result names, with a legend of the sets', { skip }, async () => {
  const [first] = await recordedResults();
  const ego = first.contributions[0].agentId!;
  // Intermediate fusion: the ego's own map covers every cell, so it is behind every detection.
  assert.ok(first.detections.length > 0 && first.detections.every((d) => (d.contributingAgents ?? []).includes(ego)), JSON.stringify(first.detections.map((d) => (d.contributingAgents ?? []))));
  const expected = new Map<string, number>();
  for (const d of first.detections) expected.set((d.contributingAgents ?? []).join('+'), (expected.get((d.contributingAgents ?? []).join('+')) ?? 0) + 1);

  const state = await hook(async (h) => {
    h.seek(0);
    h.setView('top');
    h.setLayers({ points: false, gt: false, tracks: false, predictions: false, agents: false });
    h.setColouring('agents');
    const counts = await h.redraw();
    return { counts, sets: h.contributorSets(), agents: h.agents };
  });
  assert.equal(state.counts.attributed, first.detections.length);
  assert.deepEqual(new Map(state.sets.map((s) => [s.agents.join('+'), s.detections])), expected);
  const legend = await page.textContent('#legend') ?? '';
  for (const s of state.sets) assert.ok(legend.includes(`${s.agents.join(' + ')} (${s.detections})`), legend);
  // The boxes are drawn in their set's colour (the ego's alone, or mixed with collaborators').
  const pixels = await canvasPixels(page);
  const main = state.sets[0];
  assert.equal(main.colour, contributorColour(main.agents, state.agents));
  const inColour = countColour(pixels, main.colour, 40);
  await hook(async (h) => { h.setColouring('score'); await h.redraw(); });
  const byScore = countColour(await canvasPixels(page), main.colour, 40);
  assert.ok(inColour > 30 && inColour > 3 * byScore, `set colour: ${inColour} px by agents, ${byScore} px by score`);
  await hook(async (h) => { h.setLayers({ points: true, gt: true, tracks: true, predictions: true, agents: true }); h.setView('orbit'); await h.redraw(); });
});

test('the heat map shows the cells each collaborator sent; the panel gives bytes, Mbps, drops, latency and images', { skip }, async () => {
  const cells = await hook(async (h) => { h.seek(0); h.setHeat('cells'); return (await h.redraw()).heatCells; });
  const collaborators = (await hook((h) => h.agents)).length - 1;
  // int8+top10%: about a tenth of each collaborator's 128 × 128 cells, never the ego's dense map.
  assert.ok(cells > 0.05 * 128 * 128 && cells < 0.2 * 128 * 128 * collaborators, `cells sent: ${cells}`);
  await hook(async (h) => { h.setHeat('off'); await h.redraw(); });

  const rows = await page.$$eval('#agents tr[data-agent]', (trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
  assert.equal(rows.length, collaborators + 1);
  for (const row of rows) assert.ok(Number(row[3]) > 0, `Mbps of ${row[0]}: ${row[3]}`);
  const panel = await hook((h) => h.panel());
  assert.ok(panel.every((p) => p.meanBytes > 0 && p.dropped === 0 && p.meanLatencyMs > 0));
  assert.ok((await page.$$('#cameras img')).length > 0);
  // Selecting another agent in the panel shows its cameras.
  await page.click(`#agents tr[data-agent="${panel[0].id}"]`);
  await hook((h) => h.redraw());
  assert.match(await page.textContent('#cameraAgent') ?? '', new RegExp(panel[0].id));
});
