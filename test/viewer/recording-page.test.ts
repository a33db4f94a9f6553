// The viewer in a real browser (Debian's chromium, WebGL on SwiftShader) on a recording of the fixture run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { openDataset } from '../../src/datasets/index.ts';
import { decodeMessage } from '../../src/messages/index.ts';
import { type ViewerServer, readRecording, startViewerServer } from '../../src/viewer/index.ts';
import { AGENT_PALETTE, GT_COLOUR } from '../../src/viewer/web/scene.ts';
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

test('the heat map shows the cells each collaborator sent; the panel gives bytes, Mbps, drops, latency and images', { skip }, async () => {
  const cells = await hook(async (h) => { h.seek(0); h.setHeat('cells'); return (await h.redraw()).heatCells; });
  const collaborators = (await hook((h) => h.agents)).length - 1;
  // int8+top10%: about a tenth of each collaborator's 128 × 128 cells, never the ego's dense map.
  assert.ok(cells > 0.05 * 128 * 128 && cells < 0.2 * 128 * 128 * collaborators, `cells sent: ${cells}`);
  const confidence = await hook(async (h) => { h.setHeat('confidence'); return (await h.redraw()).heatCells; });
  assert.ok(confidence > 0);
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
