// Live mode: the viewer's server follows a run on a broker and forwards every message to the page over a
// WebSocket; the page decodes them as they come (early fusion, so the points come off the wire too).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { type EmbeddedBroker, startEmbeddedBroker } from '../../src/transport/index.ts';
import { type ViewerServer, startViewerServer } from '../../src/viewer/index.ts';
import { projectRoot, runCli } from '../cli/helpers.ts';
import { browserMissing, launchChromium, openViewer } from './browser.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const skip = browserMissing();

let broker: EmbeddedBroker | undefined;
let server: ViewerServer | undefined;
let browser: Browser | undefined;
let page: Page;
let errors: string[] = [];

before(async () => {
  if (skip) return;
  broker = await startEmbeddedBroker({ host: '127.0.0.1', port: 0 });
  server = await startViewerServer({ broker: broker.url, port: 0 });
  browser = await launchChromium();
  ({ page, errors } = await openViewer(browser, server.url));
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await server?.close();
  await broker?.close();
});

const hook = <T>(fn: (h: Window['__v2xfuseViewer']) => T | Promise<T>): Promise<T> =>
  page.evaluate(`(${fn.toString()})(window.__v2xfuseViewer)`) as Promise<T>;

test('the page follows a live run frame by frame, with the points the agents send', { skip, timeout: 200_000 }, async () => {
  assert.equal(await hook((h) => h.mode), 'live');
  // The label follows the mode at the next drawn frame; under load that can be a moment after the mode is known.
  await page.waitForFunction(() => /waiting/.test(document.querySelector('#frameLabel')?.textContent ?? ''), null, { timeout: 10_000 });
  const run = runCli(['run', FIXTURE, '--frames', '2', '--fusion', 'early', '--broker', broker!.url], 180_000);
  // The first fused frame shows up while the run is still going.
  await page.waitForFunction(() => window.__v2xfuseViewer.frameCount >= 1, null, { timeout: 170_000 });
  const done = await run;
  assert.equal(done.code, 0, done.stderr);
  await page.waitForFunction(() => window.__v2xfuseViewer.frameCount === 2, null, { timeout: 10_000 });
  const state = await hook(async (h) => ({ index: h.frameIndex, counts: await h.redraw(), agents: h.agents, panel: h.panel() }));
  // Following: the newest frame is on screen.
  assert.equal(state.index, 1);
  assert.equal(state.agents.length, 3);
  assert.ok(state.counts.detections > 0, 'detections drawn');
  // Early fusion: collaborators' clouds decoded from their PointCloudFrames in the page.
  assert.ok(state.counts.points > 1000, `points drawn: ${state.counts.points}`);
  assert.equal(state.counts.boxes, 0, 'no ground truth live');
  assert.ok(state.panel.some((p) => p.mbps > 0));
  assert.match(await page.textContent('#frameLabel') ?? '', /frame 2 \/ 2 .* live/);
  assert.deepEqual(errors, []);
});
