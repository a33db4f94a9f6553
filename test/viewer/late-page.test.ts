// A late-fusion recording in the browser: each agent's object list drawn as thin boxes in its colour (a layer that
// toggles), detections coloured by the agents whose objects were merged into them, and no confidence map.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { bevIoU, invertRigid, multiply, poseToMatrix, transformBox } from '../../src/geometry/index.ts';
import { type FusionResult, type ObjectList, decodeMessage, nsFromWire } from '../../src/messages/index.ts';
import { type ViewerServer, readRecording, startViewerServer } from '../../src/viewer/index.ts';
import { AGENT_PALETTE, BACKGROUND } from '../../src/viewer/web/scene.ts';
import { projectRoot, runCli } from '../cli/helpers.ts';
import { browserMissing, canvasPixels, countColour, launchChromium, openViewer } from './browser.ts';

const FIXTURE = resolve(projectRoot, 'datasets/fixture/fixture-s1');
const skip = browserMissing();

let dir = '';
let server: ViewerServer | undefined;
let browser: Browser | undefined;
let page: Page;
let errors: string[] = [];
let result: FusionResult;
/** Per agent, the object list it contributed to the first fused frame. */
const lists = new Map<string, ObjectList>();

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'v2xfuse-view-late-'));
  const recording = join(dir, 'late.mcap');
  const run = await runCli(['run', FIXTURE, '--frames', '2', '--fusion', 'late', '--record', recording], 170_000);
  assert.equal(run.code, 0, run.stderr);
  const envelopes = await readRecording(recording);
  const results = envelopes.filter((e) => e.kind === 'result').map((e) => decodeMessage('result', e.data));
  result = results.sort((a, b) => Number(nsFromWire(a.header?.captureTimeNs) - nsFromWire(b.header?.captureTimeNs)))[0];
  for (const c of result.contributions) {
    const e = envelopes.find((x) => x.kind === 'objects' && x.sender === c.agentId && nsFromWire(decodeMessage('objects', x.data).header?.captureTimeNs) === nsFromWire(c.captureTimeNs));
    if (e) lists.set(c.agentId!, decodeMessage('objects', e.data));
  }
  server = await startViewerServer({ recording, port: 0 });
  browser = await launchChromium();
  ({ page, errors } = await openViewer(browser, server.url));
}, { timeout: 240_000 });

after(async () => {
  await browser?.close();
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** An agent's colour as its object boxes show it: drawn at 60 % opacity over the background. */
function objectColour(k: number): number {
  const mix = (shift: number) => Math.round(0.6 * ((AGENT_PALETTE[k] >> shift) & 255) + 0.4 * ((BACKGROUND >> shift) & 255));
  return (mix(16) << 16) | (mix(8) << 8) | mix(0);
}

const hook = <T>(fn: (h: Window['__v2xfuseViewer']) => T | Promise<T>): Promise<T> =>
  page.evaluate(`(${fn.toString()})(window.__v2xfuseViewer)`) as Promise<T>;

test('each agent\'s object list is drawn as thin boxes in its colour, and the layer toggles with O', { skip }, async () => {
  assert.ok(lists.size >= 2, 'the ego and a collaborator sent object lists');
  const sent = [...lists.values()].reduce((n, l) => n + l.objects.length, 0);
  const state = await hook(async (h) => { h.seek(0); h.setView('top'); h.setLayers({ points: false, gt: false, detections: false, tracks: false, predictions: false, agents: false, objects: true }); return { counts: await h.redraw(), agents: h.agents }; });
  assert.equal(state.counts.objects, sent);
  const on = await canvasPixels(page);
  const drawn = state.agents.map((id, k) => ({ id, px: countColour(on, objectColour(k), 40), objects: lists.get(id)?.objects.length ?? 0 }));
  for (const a of drawn) if (a.objects > 0) assert.ok(a.px > 20, `agent ${a.id}: ${a.px} pixels for ${a.objects} objects`);
  assert.match(await page.textContent('#legend') ?? '', /own object list/);

  await page.keyboard.press('o');
  const off = await hook(async (h) => (await h.redraw()).objects);
  assert.equal(off, 0);
  const offPixels = await canvasPixels(page);
  for (const [k, a] of drawn.entries()) if (a.objects > 0) assert.ok(countColour(offPixels, objectColour(k), 40) < a.px / 10, `agent ${a.id} after O`);
  assert.equal(await page.isChecked('input[data-layer="objects"]'), false);
  await page.keyboard.press('o');
  assert.equal(await hook(async (h) => (await h.redraw()).objects), sent);
});

test('late detections name the agents whose objects were merged into them, and the page colours by those', { skip }, async () => {
  const pose = (p: { x?: number | null; y?: number | null; z?: number | null; roll?: number | null; pitch?: number | null; yaw?: number | null } | null | undefined) => poseToMatrix({ x: p?.x ?? 0, y: p?.y ?? 0, z: p?.z ?? 0, roll: p?.roll ?? 0, pitch: p?.pitch ?? 0, yaw: p?.yaw ?? 0 });
  const worldToEgo = invertRigid(pose(result.header!.senderPose));
  const toEgo = new Map([...lists].map(([id, l]) => [id, multiply(worldToEgo, pose(l.header!.senderPose))]));
  assert.ok(result.detections.length > 0);
  let merged = 0;
  for (const d of result.detections) {
    assert.ok((d.contributingAgents ?? []).length >= 1, 'every late detection comes from someone');
    if ((d.contributingAgents ?? []).length > 1) merged++;
    // Each named agent sent an object of the same class that overlaps the fused box (what NMS merged).
    for (const id of (d.contributingAgents ?? [])) {
      const objects = lists.get(id)!.objects.map((o) => transformBox(toEgo.get(id)!, { x: o.position!.x!, y: o.position!.y!, z: o.position!.z!, l: o.dimensions!.x!, w: o.dimensions!.y!, h: o.dimensions!.z!, yaw: o.yaw! }));
      const box = { x: d.box!.x!, y: d.box!.y!, z: d.box!.z!, l: d.box!.l!, w: d.box!.w!, h: d.box!.h!, yaw: d.box!.yaw! };
      assert.ok(objects.some((o) => bevIoU(o, box) > 0.15), `detection at ${box.x.toFixed(1)}, ${box.y.toFixed(1)} names ${id}`);
    }
  }
  // The fixture's agents see some cars together: those boxes name more than one agent.
  assert.ok(merged > 0, 'no detection names more than one agent');
  const sets = await hook(async (h) => {
    h.setLayers({ detections: true, objects: false });
    h.setColouring('agents');
    await h.redraw();
    return h.contributorSets();
  });
  assert.equal(sets.reduce((n, s) => n + s.detections, 0), result.detections.length);
  assert.ok(sets.every((s) => s.agents.length > 0));
  assert.match(await page.textContent('#legend') ?? '', /detections by contributing agents/);
  // Late fusion runs no head in the fusion node: no confidence map, and the legend says so.
  assert.equal(result.confidenceMap ?? null, null);
  const heat = await hook(async (h) => { h.setHeat('confidence'); return (await h.redraw()).heatCells; });
  assert.equal(heat, 0);
  assert.match(await page.textContent('#legend') ?? '', /no confidence map/);
  assert.deepEqual(errors, []);
});
