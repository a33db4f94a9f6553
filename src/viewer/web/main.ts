// The page: loads a recording or follows a live run, keeps the store, draws the selected frame, and runs the
// timeline, the panel, the legends and the keyboard. window.__v2xfuseViewer is the handle the browser tests use.
import * as THREE from 'three';
import { decodeEnvelopes } from '../envelope.ts';
import { cloudPoints, confidenceCells, sentCells } from './payload.ts';
import { AGENT_PALETTE, type ContributorSet, type DetectionColouring, type DisplayFrame, GT_COLOUR, type HeatMode, type Layers, type SceneCounts, type ViewName, ViewerScene, trackColour } from './scene.ts';
import { ViewerStore } from './store.ts';
import { FUSION_MODE_NAMES } from './wire.ts';

interface SourceInfo {
  mode: 'recording' | 'live';
  name: string;
}

export interface ViewerHandle {
  ready: boolean;
  mode: 'recording' | 'live' | '';
  frameIndex: number;
  frameCount: number;
  playing: boolean;
  view: ViewName;
  display: DisplayFrame;
  heat: HeatMode;
  counts: SceneCounts;
  agents: string[];
  /** Moves n frames (negative: back); returns the new index. */
  step(n: number): number;
  seek(index: number): number;
  play(): void;
  pause(): void;
  setView(v: ViewName): void;
  setDisplay(d: DisplayFrame): void;
  setHeat(h: HeatMode): void;
  setColouring(c: DetectionColouring): void;
  setLayers(l: Partial<Layers>): void;
  selectAgent(id: string | undefined): void;
  /** Builds and renders the current frame now; resolves once pending payload decodes (cells sent) are drawn. */
  redraw(): Promise<SceneCounts>;
  /** The contributor sets of the drawn frame (what the 'by agents' legend lists). */
  contributorSets(): ContributorSet[];
  /** Stats the panel shows for the current frame. */
  panel(): { id: string; meanBytes: number; mbps: number; dropped: number; meanLatencyMs: number }[];
}

declare global {
  interface Window {
    __v2xfuseViewer: ViewerHandle;
  }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const canvas = $<HTMLCanvasElement>('view');
const store = new ViewerStore();
const masks = new Map<string, Uint8Array | undefined>();
const pendingMasks = new Map<string, Promise<void>>();
// Decoded confidence maps by result capture time (inflating is async in the browser: DecompressionStream).
const confidence = new Map<bigint, Uint8Array | undefined>();
let frameIndex = 0;
let follow = true;
let playing = false;
let lastStep = 0;
let needsBuild = true;
let source: SourceInfo = { mode: 'recording', name: '' };

const scene = new ViewerScene(canvas, (id, t) => {
  const key = `${id}@${store.agentTime(id, t)}`;
  if (masks.has(key)) return masks.get(key);
  if (!pendingMasks.has(key)) {
    const frame = store.agents.get(id)?.features.get(store.agentTime(id, t));
    if (!frame) {
      masks.set(key, undefined);
      return undefined;
    }
    pendingMasks.set(key, sentCells(frame).catch(() => undefined).then((m) => {
      masks.set(key, m);
      pendingMasks.delete(key);
      needsBuild = true;
    }));
  }
  return undefined;
}, (t, map) => {
  if (confidence.has(t)) return confidence.get(t);
  const key = `confidence@${t}`;
  if (!pendingMasks.has(key)) {
    pendingMasks.set(key, confidenceCells(map).catch(() => undefined).then((cells) => {
      confidence.set(t, cells);
      pendingMasks.delete(key);
      needsBuild = true;
    }));
  }
  return undefined;
});

function currentTime(): bigint | undefined {
  return store.frames()[frameIndex];
}

function resize(): void {
  const r = canvas.parentElement!.getBoundingClientRect();
  scene.resize(Math.max(1, Math.floor(r.width)), Math.max(1, Math.floor(r.height)));
  needsBuild = true;
}

function seek(index: number): number {
  const n = store.frames().length;
  frameIndex = Math.max(0, Math.min(n - 1, Math.round(index)));
  if (n === 0) frameIndex = 0;
  follow = source.mode === 'live' && frameIndex === n - 1;
  needsBuild = true;
  return frameIndex;
}

function setButtons(attr: string, value: string): void {
  for (const b of document.querySelectorAll<HTMLButtonElement>(`button[data-${attr}]`)) b.classList.toggle('on', b.dataset[attr] === value);
}

function build(): void {
  const t = currentTime();
  scene.update(store, t);
  needsBuild = false;
  const frames = store.frames();
  const scrub = $<HTMLInputElement>('scrub');
  scrub.max = String(Math.max(0, frames.length - 1));
  scrub.value = String(frameIndex);
  const result = t === undefined ? undefined : store.results.get(t);
  $('frameLabel').textContent = frames.length
    ? `frame ${frameIndex + 1} / ${frames.length}  ·  t = ${((Number((t ?? 0n) - frames[0]) / 1e9)).toFixed(2)} s${source.mode === 'live' ? (follow ? '  · live' : '  · paused live') : ''}`
    : source.mode === 'live' ? 'waiting for the fusion node…' : 'no frames';
  $('play').textContent = playing ? 'Pause' : 'Play';
  renderPanel(t, result);
  renderLegend();
}

function fmtBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} MB` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} kB` : `${Math.round(n)} B`;
}

function agentColour(id: string): string {
  const k = store.agentIds().indexOf(id);
  return `#${new THREE.Color(AGENT_PALETTE[(k < 0 ? 0 : k) % AGENT_PALETTE.length]).getHexString()}`;
}

function renderPanel(t: bigint | undefined, result: ReturnType<typeof store.results.get>): void {
  const c = scene.counts;
  $('summary').innerHTML = result
    ? `fusion <b>${FUSION_MODE_NAMES[result.mode ?? 0]}</b> · ego <b>${store.egoId() ?? '?'}</b><br>` +
      `${result.detections.length} detections · ${result.tracks.length} tracks · ${c.boxes} GT boxes · ${c.points.toLocaleString()} points`
    : `${c.boxes} GT boxes · ${c.points.toLocaleString()} points`;
  const stats = store.stats(frameIndex);
  const rows = stats.map((s) => {
    const reasons = Object.entries(s.dropReasons).map(([k, v]) => `${k} ${v}`).join(', ');
    const now = s.bytes !== undefined ? `${fmtBytes(s.bytes)}${s.used === false ? ` <span title="${s.refusedReason ?? ''}">✕</span>` : ''}` : '–';
    return `<tr data-agent="${s.id}" class="${scene.selectedAgent === s.id ? 'selected' : ''}" title="${s.codec ?? ''}${s.state ? ` · ${s.state}` : ''}">` +
      `<td><span class="swatch" style="background:${agentColour(s.id)}"></span>${s.id}${s.id === store.egoId() ? ' (ego)' : ''}</td>` +
      `<td>${now}</td><td>${fmtBytes(s.meanBytes)}</td><td>${s.mbps.toFixed(2)}</td><td title="${reasons}">${s.dropped}</td>` +
      `<td>${s.latencyMs !== undefined ? s.latencyMs.toFixed(0) : '–'} / ${s.meanLatencyMs.toFixed(0)}</td></tr>`;
  });
  $('agents').innerHTML = `<tr><th>agent</th><th>frame</th><th>B/msg</th><th>Mbps</th><th>drop</th><th>lat ms</th></tr>${rows.join('')}`;
  const lat = result?.latencies ?? [];
  const max = Math.max(1, ...lat.map((l) => l.ms ?? 0));
  $('stages').innerHTML = lat.length
    ? lat.map((l) => `<div><span style="width:64px">${l.stage}</span><span class="bar" style="width:${(120 * (l.ms ?? 0)) / max}px"></span>${(l.ms ?? 0).toFixed(1)} ms</div>`).join('')
    : '<i>no result for this frame</i>';
  renderCameras(t);
}

let cameraKey = '';
function renderCameras(t: bigint | undefined): void {
  const ids = store.agentIds();
  const id = scene.selectedAgent ?? store.egoId() ?? ids[0];
  const images = t === undefined || !id ? undefined : store.agents.get(id)?.cameras.get(t);
  const key = `${id}@${t}`;
  if (key === cameraKey) return;
  cameraKey = key;
  $('cameraAgent').textContent = id ? `· ${id}` : '';
  const box = $('cameras');
  for (const img of box.querySelectorAll('img')) URL.revokeObjectURL(img.src);
  box.innerHTML = images?.size ? '' : '<i>no images for this agent and frame</i>';
  for (const [name, img] of images ?? []) {
    const el = document.createElement('img');
    el.alt = name;
    el.title = name;
    el.src = URL.createObjectURL(new Blob([img.data as BlobPart], { type: `image/${img.format}` }));
    box.append(el);
  }
}

function renderLegend(): void {
  const ids = store.agentIds();
  const agents = ids.map((id) => `<span class="row"><span class="swatch" style="background:${agentColour(id)}"></span>${id}${id === store.egoId() ? ' (ego)' : ''}</span>`).join('');
  const gt = Object.entries(GT_COLOUR).map(([cls, hex]) => `<span class="swatch" style="background:#${hex.toString(16).padStart(6, '0')}"></span>${cls}`).join(' ');
  const hex = (n: number) => `#${n.toString(16).padStart(6, '0')}`;
  const sets = scene.contributorSets;
  const det = scene.colouring === 'score'
    ? '<span class="row">detections: score 0 <span class="ramp"></span> 1</span>'
    : `<div>detections by contributing agents:</div>${sets.length
      ? sets.map((s) => `<span class="row" data-set="${s.agents.join('+')}"><span class="swatch" style="background:${hex(s.colour)}"></span>${s.agents.length ? s.agents.join(' + ') : 'not stated'} (${s.detections})</span>`).join('')
      : '<span class="row"><i>no detections</i></span>'}`;
  const objects = scene.layers.objects && scene.counts.objects ? '<div>thin boxes: each agent\'s own object list (its colour)</div>' : '';
  const tc = `#${trackColour(1).getHexString()}`;
  const shape = scene.confidenceShape;
  const heat = scene.heat === 'cells'
    ? '<div>heat: BEV cells each agent sent (its colour)</div>'
    : scene.heat === 'confidence'
      ? shape
        ? `<div class="row">heat: head confidence ${shape.width}×${shape.height}, 0 <span class="ramp"></span> 1</div>`
        : '<div>heat: this result carries no confidence map (late fusion, or --confidence-map 0)</div>'
      : '';
  $('legend').innerHTML = `<div>points &amp; agents (pose, BEV range):</div>${agents}<div>GT boxes: ${gt}</div>${det}${objects}` +
    `<div><span class="swatch" style="background:${tc}"></span>tracks #id, trails, predictions (brighter = likelier, %)</div>${heat}`;
}

function render(): void {
  if (needsBuild) build();
  scene.render();
}

function loop(now: number): void {
  if (playing && now - lastStep > 1000 * Math.max(0.05, store.framePeriodS())) {
    lastStep = now;
    const n = store.frames().length;
    if (frameIndex < n - 1) seek(frameIndex + 1);
    else if (source.mode === 'recording') seek(0);
  }
  render();
  requestAnimationFrame(loop);
}

function setPlaying(on: boolean): void {
  playing = on;
  needsBuild = true;
}

const handle: ViewerHandle = {
  ready: false,
  mode: '',
  get frameIndex() { return frameIndex; },
  get frameCount() { return store.frames().length; },
  get playing() { return playing; },
  get view() { return scene.view; },
  get display() { return scene.display; },
  get heat() { return scene.heat; },
  get counts() { return scene.counts; },
  get agents() { return store.agentIds(); },
  step: (n) => { setPlaying(false); return seek(frameIndex + n); },
  seek: (i) => seek(i),
  play: () => setPlaying(true),
  pause: () => setPlaying(false),
  setView: (v) => { scene.setView(v); setButtons('view', v); needsBuild = true; },
  setDisplay: (d) => { scene.display = d; scene.setView(scene.view); setButtons('display', d); needsBuild = true; },
  setHeat: (h) => { scene.heat = h; setButtons('heat', h); needsBuild = true; },
  setColouring: (c) => { scene.colouring = c; setButtons('colouring', c); needsBuild = true; },
  setLayers: (l) => {
    Object.assign(scene.layers, l);
    for (const box of document.querySelectorAll<HTMLInputElement>('input[data-layer]')) box.checked = scene.layers[box.dataset.layer as keyof Layers];
    needsBuild = true;
  },
  selectAgent: (id) => { scene.selectedAgent = id; cameraKey = ''; needsBuild = true; },
  redraw: async () => {
    build();
    if (pendingMasks.size) {
      await Promise.all(pendingMasks.values());
      build();
    }
    scene.render();
    return scene.counts;
  },
  contributorSets: () => scene.contributorSets.map((s) => ({ ...s, agents: [...s.agents] })),
  panel: () => store.stats(frameIndex).map(({ id, meanBytes, mbps, dropped, meanLatencyMs }) => ({ id, meanBytes, mbps, dropped, meanLatencyMs })),
};
window.__v2xfuseViewer = handle;

// Controls.
for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-view]')) b.onclick = () => handle.setView(b.dataset.view as ViewName);
for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-display]')) b.onclick = () => handle.setDisplay(b.dataset.display as DisplayFrame);
for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-heat]')) b.onclick = () => handle.setHeat(b.dataset.heat as HeatMode);
for (const b of document.querySelectorAll<HTMLButtonElement>('button[data-colouring]')) b.onclick = () => handle.setColouring(b.dataset.colouring as DetectionColouring);
for (const box of document.querySelectorAll<HTMLInputElement>('input[data-layer]')) box.onchange = () => handle.setLayers({ [box.dataset.layer!]: box.checked });
$('play').onclick = () => setPlaying(!playing);
$('back').onclick = () => handle.step(-1);
$('fwd').onclick = () => handle.step(1);
$<HTMLInputElement>('scrub').oninput = (e) => { setPlaying(false); seek(Number((e.target as HTMLInputElement).value)); };
$('helpButton').onclick = () => { $('help').hidden = !$('help').hidden; };
$('agents').onclick = (e) => {
  const row = (e.target as HTMLElement).closest('tr[data-agent]') as HTMLElement | null;
  if (row) handle.selectAgent(scene.selectedAgent === row.dataset.agent ? undefined : row.dataset.agent);
};

const cycle = <T,>(list: readonly T[], value: T): T => list[(list.indexOf(value) + 1) % list.length];
window.addEventListener('keydown', (e) => {
  if ((e.target as HTMLElement).tagName === 'INPUT' && (e.target as HTMLInputElement).type !== 'range' && (e.target as HTMLInputElement).type !== 'checkbox') return;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  const actions: Record<string, () => void> = {
    ' ': () => setPlaying(!playing),
    ArrowRight: () => handle.step(1),
    ArrowLeft: () => handle.step(-1),
    Home: () => seek(0),
    End: () => seek(store.frames().length - 1),
    '1': () => handle.setView('orbit'),
    '2': () => handle.setView('top'),
    '3': () => handle.setView('chase'),
    f: () => handle.setDisplay(scene.display === 'ego' ? 'world' : 'ego'),
    h: () => handle.setHeat(cycle(['off', 'cells', 'confidence'] as const, scene.heat)),
    c: () => handle.setColouring(scene.colouring === 'score' ? 'agents' : 'score'),
    a: () => handle.selectAgent(cycle([undefined, ...store.agentIds()], scene.selectedAgent)),
    p: () => handle.setLayers({ points: !scene.layers.points }),
    g: () => handle.setLayers({ gt: !scene.layers.gt }),
    d: () => handle.setLayers({ detections: !scene.layers.detections }),
    t: () => handle.setLayers({ tracks: !scene.layers.tracks, predictions: !scene.layers.tracks }),
    o: () => handle.setLayers({ objects: !scene.layers.objects }),
    '?': () => { $('help').hidden = !$('help').hidden; },
  };
  const act = actions[key];
  if (act) {
    act();
    e.preventDefault();
  }
});
new ResizeObserver(resize).observe(canvas.parentElement!);

/** Early fusion sends points on the wire: decode them where no recorded cloud stands in. */
function decodeWirePoints(agentId: string): void {
  const a = store.agents.get(agentId);
  if (!a) return;
  for (const [t, frame] of a.points) {
    if (a.clouds.has(t)) continue;
    const pose = frame.header?.senderPose;
    void cloudPoints(frame).then((points) => {
      if (!points || a.clouds.has(t)) return;
      const q = new THREE.Quaternion().setFromEuler(new THREE.Euler(pose?.roll ?? 0, pose?.pitch ?? 0, pose?.yaw ?? 0, 'ZYX'));
      a.clouds.set(t, { position: [pose?.x ?? 0, pose?.y ?? 0, pose?.z ?? 0], quaternion: [q.x, q.y, q.z, q.w], points });
      needsBuild = true;
    });
  }
}

function ingest(bytes: Uint8Array): void {
  const before = store.frames().length;
  const session = store.session;
  const senders = new Set<string>();
  for (const e of decodeEnvelopes(bytes)) if (store.add(e) && e.kind === 'points') senders.add(e.sender);
  if (store.session !== session) {
    masks.clear();
    confidence.clear();
    frameIndex = 0;
  }
  for (const id of senders) decodeWirePoints(id);
  const after = store.frames().length;
  if (after !== before && (follow || source.mode === 'recording')) {
    frameIndex = source.mode === 'live' ? after - 1 : Math.min(frameIndex, after - 1);
  }
  needsBuild = true;
}

async function start(): Promise<void> {
  source = (await (await fetch('/api/source')).json()) as SourceInfo;
  handle.mode = source.mode;
  // The frame label depends on the mode ('waiting for the fusion node…' live): draw it again now, not at the first frame.
  needsBuild = true;
  $('source').textContent = `${source.mode}: ${source.name}`;
  $('source').title = source.name;
  resize();
  if (source.mode === 'recording') {
    const res = await fetch('/api/recording');
    if (!res.ok) throw new Error(`recording: ${res.status} ${await res.text()}`);
    ingest(new Uint8Array(await res.arrayBuffer()));
    seek(0);
    handle.ready = true;
  } else {
    const connect = () => {
      const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/live`);
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => { handle.ready = true; };
      ws.onmessage = (m) => ingest(new Uint8Array(m.data as ArrayBuffer));
      ws.onclose = () => setTimeout(connect, 1000);
    };
    connect();
  }
  requestAnimationFrame(loop);
}

start().catch((err: Error) => {
  $('frameLabel').textContent = `error: ${err.message}`;
  console.error(err);
});

