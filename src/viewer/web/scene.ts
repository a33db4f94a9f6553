// The three.js side: one frame of the store drawn in the world or the ego frame. Every object lives under a root
// in world coordinates; the ego view only changes the root's matrix. Geometry buffers are reused across frames and
// grow when a frame needs more.
import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import type { GtBox, ViewerStore } from './store.ts';
import type { ConfidenceMap, Pose } from './wire.ts';
import { CLASS_NAMES } from './wire.ts';

export type ViewName = 'orbit' | 'top' | 'chase';
export type DisplayFrame = 'ego' | 'world';
export type HeatMode = 'off' | 'cells' | 'confidence';
export type DetectionColouring = 'score' | 'agents';

export interface Layers {
  points: boolean;
  gt: boolean;
  detections: boolean;
  tracks: boolean;
  predictions: boolean;
  agents: boolean;
  /** Each agent's own object list (late and hybrid fusion), as it sent it. */
  objects: boolean;
}

/** A set of agents that contributed to detections of the drawn frame, its colour and how many detections it has. */
export interface ContributorSet {
  agents: string[];
  colour: number;
  detections: number;
}

export interface SceneCounts {
  points: number;
  boxes: number;
  detections: number;
  tracks: number;
  predictions: number;
  agents: number;
  heatCells: number;
  /** Boxes of the agents' object lists drawn. */
  objects: number;
  /** Detections whose result names the agents behind them. */
  attributed: number;
}

export const BACKGROUND = 0x10141b;
export const GT_COLOUR: Record<string, number> = { vehicle: 0x33dd4d, pedestrian: 0xf2cc33, cyclist: 0x4dccf2, other: 0xb3b3b3 };
export const AGENT_PALETTE = [0xff6b6b, 0x4dabf7, 0xffa94d, 0xb197fc, 0x63e6be, 0xf783ac, 0xffd43b, 0x74c0fc];

/** Score 0..1 → blue (low) … magenta … red (high): the detections' legend. */
export function scoreColour(score: number, out = new THREE.Color()): THREE.Color {
  const s = Math.min(1, Math.max(0, score));
  return out.setHSL(0.66 - 0.66 * s, 0.95, 0.55);
}

/**
 * The colour of a set of contributing agents: one agent's own colour, the mean of several agents' colours (the
 * legend names each set drawn), white for a detection whose result names no one.
 */
export function contributorColour(agents: readonly string[], ids: readonly string[]): number {
  if (agents.length === 0) return 0xffffff;
  let r = 0, g = 0, b = 0;
  for (const a of agents) {
    const k = Math.max(0, ids.indexOf(a));
    const hex = AGENT_PALETTE[k % AGENT_PALETTE.length];
    r += (hex >> 16) & 255; g += (hex >> 8) & 255; b += hex & 255;
  }
  const n = agents.length;
  return (Math.round(r / n) << 16) | (Math.round(g / n) << 8) | Math.round(b / n);
}

export function trackColour(id: number, out = new THREE.Color()): THREE.Color {
  return out.setHSL(((id * 0.618034) % 1 + 1) % 1, 0.75, 0.62);
}

export function poseMatrix(p: Pose | undefined, out = new THREE.Matrix4()): THREE.Matrix4 {
  if (!p) return out.identity();
  // R = Rz(yaw)·Ry(pitch)·Rx(roll) (src/geometry): three's Euler order 'ZYX' builds the same product.
  const q = new THREE.Quaternion().setFromEuler(new THREE.Euler(p.roll ?? 0, p.pitch ?? 0, p.yaw ?? 0, 'ZYX'));
  return out.compose(new THREE.Vector3(p.x ?? 0, p.y ?? 0, p.z ?? 0), q, new THREE.Vector3(1, 1, 1));
}

// The 12 edges of a box as corner index pairs; corners: bit 0 = ±l, bit 1 = ±w, bit 2 = ±h.
const EDGES = [0, 1, 2, 3, 4, 5, 6, 7, 0, 2, 1, 3, 4, 6, 5, 7, 0, 4, 1, 5, 2, 6, 3, 7];
// A heading tick from the centre to the front face: which way a box faces.
const VERTS_PER_BOX = EDGES.length + 2;

/** A growable line-segment buffer: positions and colours, drawn up to `count` vertices. */
class SegmentBuffer {
  readonly object: THREE.LineSegments;
  #positions = new Float32Array(0);
  #colours = new Float32Array(0);
  count = 0;
  constructor(opacity = 1) {
    const material = new THREE.LineBasicMaterial({ vertexColors: true, transparent: opacity < 1, opacity });
    this.object = new THREE.LineSegments(new THREE.BufferGeometry(), material);
    this.object.frustumCulled = false;
  }
  begin(): void {
    this.count = 0;
  }
  #reserve(n: number): void {
    if (this.#positions.length >= n * 3) return;
    const cap = Math.max(n, 256) * 2;
    const p = new Float32Array(cap * 3), c = new Float32Array(cap * 3);
    p.set(this.#positions);
    c.set(this.#colours);
    this.#positions = p;
    this.#colours = c;
    const g = this.object.geometry;
    g.setAttribute('position', new THREE.BufferAttribute(p, 3));
    g.setAttribute('color', new THREE.BufferAttribute(c, 3));
  }
  push(x: number, y: number, z: number, colour: THREE.Color): void {
    this.#reserve(this.count + 1);
    const i = this.count++ * 3;
    this.#positions[i] = x; this.#positions[i + 1] = y; this.#positions[i + 2] = z;
    this.#colours[i] = colour.r; this.#colours[i + 1] = colour.g; this.#colours[i + 2] = colour.b;
  }
  end(): void {
    this.#reserve(1);
    const g = this.object.geometry;
    (g.getAttribute('position') as THREE.BufferAttribute).needsUpdate = true;
    (g.getAttribute('color') as THREE.BufferAttribute).needsUpdate = true;
    g.setDrawRange(0, this.count);
  }
}

const tmpV = new THREE.Vector3();

/** Pushes a box's edges (and heading tick), transformed by `m`, into `buf`. */
function pushBox(buf: SegmentBuffer, m: THREE.Matrix4, b: { x: number; y: number; z: number; l: number; w: number; h: number; yaw: number }, colour: THREE.Color): void {
  const c = Math.cos(b.yaw), s = Math.sin(b.yaw);
  const corner = (k: number) => {
    const dx = (k & 1 ? 0.5 : -0.5) * b.l, dy = (k & 2 ? 0.5 : -0.5) * b.w, dz = (k & 4 ? 0.5 : -0.5) * b.h;
    return tmpV.set(b.x + c * dx - s * dy, b.y + s * dx + c * dy, b.z + dz).applyMatrix4(m);
  };
  for (const k of EDGES) {
    const v = corner(k);
    buf.push(v.x, v.y, v.z, colour);
  }
  let v = tmpV.set(b.x, b.y, b.z + 0.5 * b.h).applyMatrix4(m);
  buf.push(v.x, v.y, v.z, colour);
  v = tmpV.set(b.x + c * 0.5 * b.l, b.y + s * 0.5 * b.l, b.z + 0.5 * b.h).applyMatrix4(m);
  buf.push(v.x, v.y, v.z, colour);
}

/** Text on a sprite, for track ids and trajectory probabilities. Textures are cached by text. */
class LabelPool {
  readonly group = new THREE.Group();
  #sprites: THREE.Sprite[] = [];
  #textures = new Map<string, THREE.CanvasTexture>();
  #used = 0;
  begin(): void {
    this.#used = 0;
  }
  add(text: string, colour: string, position: THREE.Vector3, scale = 1): void {
    let tex = this.#textures.get(text + colour);
    if (!tex) {
      const canvas = document.createElement('canvas');
      canvas.width = 128;
      canvas.height = 48;
      const ctx = canvas.getContext('2d')!;
      ctx.font = 'bold 30px system-ui, sans-serif';
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.lineWidth = 6;
      ctx.strokeStyle = 'rgba(0,0,0,0.85)';
      ctx.strokeText(text, 64, 24);
      ctx.fillStyle = colour;
      ctx.fillText(text, 64, 24);
      tex = new THREE.CanvasTexture(canvas);
      this.#textures.set(text + colour, tex);
    }
    let sprite = this.#sprites[this.#used];
    if (!sprite) {
      sprite = new THREE.Sprite(new THREE.SpriteMaterial({ depthTest: false, transparent: true }));
      sprite.renderOrder = 10;
      this.#sprites.push(sprite);
      this.group.add(sprite);
    }
    this.#used++;
    sprite.material.map = tex;
    sprite.material.needsUpdate = true;
    sprite.position.copy(position);
    sprite.scale.set(4 * scale, 1.5 * scale, 1);
    sprite.visible = true;
  }
  end(): number {
    for (let i = this.#used; i < this.#sprites.length; i++) this.#sprites[i].visible = false;
    return this.#used;
  }
}

interface AgentObjects {
  points: THREE.Points;
  marker: THREE.Group;
  range: THREE.LineLoop;
  heat: THREE.Mesh;
  heatTexture: THREE.DataTexture;
  /** The mask drawn into heatTexture (identity check, to skip re-uploads). */
  heatMask?: Uint8Array;
}

export class ViewerScene {
  readonly renderer: THREE.WebGLRenderer;
  readonly scene = new THREE.Scene();
  readonly camera = new THREE.PerspectiveCamera(55, 1, 0.5, 2000);
  readonly controls: OrbitControls;
  readonly root = new THREE.Group();
  view: ViewName = 'orbit';
  display: DisplayFrame = 'ego';
  heat: HeatMode = 'off';
  colouring: DetectionColouring = 'score';
  layers: Layers = { points: true, gt: true, detections: true, tracks: true, predictions: true, agents: true, objects: true };
  selectedAgent: string | undefined;
  counts: SceneCounts = { points: 0, boxes: 0, detections: 0, tracks: 0, predictions: 0, agents: 0, heatCells: 0, objects: 0, attributed: 0 };
  /** The contributor sets of the drawn frame's detections, most detections first (the legend). */
  contributorSets: ContributorSet[] = [];
  /** The drawn frame's confidence map: its size, or undefined when the result carries none. */
  confidenceShape: { width: number; height: number } | undefined;

  readonly #gt = new SegmentBuffer();
  readonly #detections = new SegmentBuffer();
  readonly #objects = new SegmentBuffer(0.6);
  readonly #tracks = new SegmentBuffer();
  readonly #trails = new SegmentBuffer(0.9);
  readonly #predictions = new SegmentBuffer(0.95);
  readonly #labels = new LabelPool();
  readonly #agents = new Map<string, AgentObjects>();
  readonly #confidence: THREE.Mesh;
  #confidenceTexture: THREE.DataTexture;
  /** The ego pose of the frame drawn last (world), for the cameras that follow it. */
  #ego = new THREE.Matrix4();
  #viewInitialised = false;

  constructor(
    readonly canvas: HTMLCanvasElement,
    readonly masksOf: (agentId: string, t: bigint) => Uint8Array | undefined,
    /** The decoded cells of frame t's confidence map (undefined while decoding or when there is none). */
    readonly confidenceOf: (t: bigint, map: ConfidenceMap) => Uint8Array | undefined,
  ) {
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
    this.scene.background = new THREE.Color(BACKGROUND);
    this.camera.up.set(0, 0, 1);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.enableDamping = false;
    this.scene.add(this.root);
    this.root.matrixAutoUpdate = false;
    const grid = new THREE.GridHelper(300, 30, 0x2a3342, 0x1d2430);
    grid.rotation.x = Math.PI / 2;
    grid.position.z = -2;
    this.scene.add(grid);
    for (const b of [this.#gt, this.#detections, this.#objects, this.#tracks, this.#trails, this.#predictions]) this.root.add(b.object);
    this.root.add(this.#labels.group);
    const conf = new Uint8Array(128 * 128 * 4);
    this.#confidenceTexture = new THREE.DataTexture(conf, 128, 128, THREE.RGBAFormat);
    this.#confidence = new THREE.Mesh(
      new THREE.PlaneGeometry(1, 1),
      new THREE.MeshBasicMaterial({ map: this.#confidenceTexture, transparent: true, depthWrite: false, side: THREE.DoubleSide }),
    );
    this.#confidence.matrixAutoUpdate = false;
    this.root.add(this.#confidence);
    this.camera.position.set(-40, -40, 45);
    this.controls.target.set(0, 0, 0);
  }

  resize(width: number, height: number): void {
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / Math.max(1, height);
    this.camera.updateProjectionMatrix();
  }

  setView(view: ViewName): void {
    this.view = view;
    this.#viewInitialised = false;
  }

  /** Builds frame `t` of the store. */
  update(store: ViewerStore, t: bigint | undefined): void {
    const counts: SceneCounts = { points: 0, boxes: 0, detections: 0, tracks: 0, predictions: 0, agents: 0, heatCells: 0, objects: 0, attributed: 0 };
    const colour = new THREE.Color();
    this.#gt.begin(); this.#detections.begin(); this.#objects.begin(); this.#tracks.begin(); this.#trails.begin(); this.#predictions.begin();
    this.#labels.begin();
    const result = t === undefined ? undefined : store.results.get(t);
    const egoPose = t === undefined ? undefined : store.egoPose(t);
    const egoToWorld = poseMatrix(egoPose);
    this.#ego.copy(egoToWorld);
    // The ego view: world → ego of this frame, so the ego sits at the origin facing +x.
    this.root.matrix.copy(this.display === 'ego' ? egoToWorld.clone().invert() : new THREE.Matrix4());
    this.root.matrixWorldNeedsUpdate = true;

    // Ground truth (world frame).
    const gt: GtBox[] = t === undefined ? [] : store.gt.get(t) ?? [];
    if (this.layers.gt) {
      const identity = new THREE.Matrix4();
      for (const b of gt) pushBox(this.#gt, identity, b, colour.setHex(GT_COLOUR[b.cls] ?? GT_COLOUR.other));
      counts.boxes = gt.length;
    }

    // Agents: points, pose marker, sensor range, cells sent.
    const ids = store.agentIds();
    for (const [k, id] of ids.entries()) {
      const obj = this.#agentObjects(id, AGENT_PALETTE[k % AGENT_PALETTE.length]);
      const pose = t === undefined ? undefined : store.agentPose(id, t);
      const toWorld = poseMatrix(pose);
      const cloud = t === undefined ? undefined : store.agents.get(id)?.clouds.get(t);
      const showPoints = this.layers.points && !!cloud;
      obj.points.visible = showPoints;
      if (cloud && showPoints) {
        const geo = obj.points.geometry;
        let attr = geo.getAttribute('position') as THREE.InterleavedBufferAttribute | undefined;
        if (!attr || (attr.data.array as Float32Array) !== cloud.points) {
          const inter = new THREE.InterleavedBuffer(cloud.points, 4);
          geo.setAttribute('position', new THREE.InterleavedBufferAttribute(inter, 3, 0));
          attr = geo.getAttribute('position') as THREE.InterleavedBufferAttribute;
        }
        geo.setDrawRange(0, cloud.points.length / 4);
        obj.points.matrix.compose(new THREE.Vector3(...cloud.position), new THREE.Quaternion(...cloud.quaternion), new THREE.Vector3(1, 1, 1));
        counts.points += cloud.points.length / 4;
      }
      const visible = this.layers.agents && !!pose;
      obj.marker.visible = visible;
      obj.range.visible = visible;
      if (pose) {
        obj.marker.matrix.copy(toWorld);
        obj.range.matrix.copy(toWorld);
        const grid = store.status(id, t)?.grid;
        const xmin = grid?.xMin ?? -51.2, xmax = grid?.xMax ?? 51.2, ymin = grid?.yMin ?? -51.2, ymax = grid?.yMax ?? 51.2;
        const pos = obj.range.geometry.getAttribute('position') as THREE.BufferAttribute;
        pos.setXYZ(0, xmin, ymin, 0); pos.setXYZ(1, xmax, ymin, 0); pos.setXYZ(2, xmax, ymax, 0); pos.setXYZ(3, xmin, ymax, 0);
        pos.needsUpdate = true;
        obj.range.geometry.computeBoundingSphere();
        if (visible) counts.agents++;
        // Cells sent: the agent's mask in its own BEV grid.
        const mask = this.heat === 'cells' && t !== undefined ? this.masksOf(id, t) : undefined;
        // The ego's own map never goes on air (and is dense): shown only when selected.
        obj.heat.visible = !!mask && (this.selectedAgent === undefined ? id !== store.egoId() : this.selectedAgent === id);
        if (mask && obj.heat.visible) {
          const enc = store.agents.get(id)?.features.get(store.agentTime(id, t!))?.encoding;
          const w = enc?.width ?? 128, h = enc?.height ?? 128;
          if (obj.heatMask !== mask) {
            obj.heatMask = mask;
            if (obj.heatTexture.image.width !== w || obj.heatTexture.image.height !== h) {
              obj.heatTexture.dispose();
              obj.heatTexture = new THREE.DataTexture(new Uint8Array(w * h * 4), w, h, THREE.RGBAFormat);
              (obj.heat.material as THREE.MeshBasicMaterial).map = obj.heatTexture;
            }
            const data = obj.heatTexture.image.data as Uint8Array;
            const c = new THREE.Color(AGENT_PALETTE[k % AGENT_PALETTE.length]);
            for (let i = 0; i < w * h; i++) {
              data[i * 4] = c.r * 255; data[i * 4 + 1] = c.g * 255; data[i * 4 + 2] = c.b * 255;
              data[i * 4 + 3] = mask[i] ? 150 : 0;
            }
            obj.heatTexture.needsUpdate = true;
            (obj.heat.material as THREE.MeshBasicMaterial).needsUpdate = true;
          }
          let sent = 0;
          for (let i = 0; i < mask.length; i++) sent += mask[i];
          counts.heatCells += sent;
          // Row r runs along y, column c along x (features.proto BevGrid); the plane's texture v runs along y.
          obj.heat.matrix.copy(toWorld).multiply(new THREE.Matrix4().compose(
            new THREE.Vector3((xmin + xmax) / 2, (ymin + ymax) / 2, -1.5), new THREE.Quaternion(), new THREE.Vector3(xmax - xmin, ymax - ymin, 1)));
        }
      } else {
        obj.heat.visible = false;
      }
      // The agent's own object list for this frame (late, hybrid), in its frame at its capture time: thin boxes in
      // its colour, smaller than the fused ones and nested per agent, so that where several agents saw the same car
      // every one of their boxes stays visible.
      const list = t === undefined ? undefined : store.agents.get(id)?.objects.get(store.agentTime(id, t));
      if (this.layers.objects && list) {
        const m = poseMatrix(list.header?.senderPose ?? undefined);
        const shrink = 0.92 - 0.06 * (k % 4);
        colour.setHex(AGENT_PALETTE[k % AGENT_PALETTE.length]);
        for (const o of list.objects) {
          const p = o.position, s = o.dimensions;
          if (!p || !s) continue;
          pushBox(this.#objects, m, { x: p.x ?? 0, y: p.y ?? 0, z: p.z ?? 0, l: (s.x ?? 0) * shrink, w: (s.y ?? 0) * shrink, h: (s.z ?? 0) * shrink, yaw: o.yaw ?? 0 }, colour);
          counts.objects++;
        }
      }
    }

    // Fused detections and tracks: ego LiDAR frame at the capture time.
    const sets = new Map<string, ContributorSet>();
    if (result && this.layers.detections) {
      for (const d of result.detections) {
        if (!d.box) continue;
        const b = { x: d.box.x ?? 0, y: d.box.y ?? 0, z: d.box.z ?? 0, l: d.box.l ?? 0, w: d.box.w ?? 0, h: d.box.h ?? 0, yaw: d.box.yaw ?? 0 };
        const agents = d.contributingAgents ?? [];
        if (agents.length) counts.attributed++;
        if (this.colouring === 'score') scoreColour(d.score ?? 0, colour);
        else {
          const key = agents.join('+');
          let set = sets.get(key);
          if (!set) sets.set(key, (set = { agents: [...agents], colour: contributorColour(agents, ids), detections: 0 }));
          set.detections++;
          colour.setHex(set.colour);
        }
        pushBox(this.#detections, egoToWorld, b, colour);
      }
      counts.detections = result.detections.length;
    }
    this.contributorSets = [...sets.values()].sort((a, b) => b.detections - a.detections || a.agents.length - b.agents.length);
    if (result && t !== undefined) {
      const history = this.#trackHistory(store, t);
      for (const tr of result.tracks) {
        if (!tr.box) continue;
        const id = tr.trackId ?? 0;
        trackColour(id, colour);
        const b = { x: tr.box.x ?? 0, y: tr.box.y ?? 0, z: tr.box.z ?? 0, l: (tr.box.l ?? 0) * 1.08, w: (tr.box.w ?? 0) * 1.08, h: (tr.box.h ?? 0) * 1.08, yaw: tr.box.yaw ?? 0 };
        if (this.layers.tracks) {
          pushBox(this.#tracks, egoToWorld, b, colour);
          counts.tracks++;
          const top = new THREE.Vector3(b.x, b.y, b.z + b.h / 2 + 1.2).applyMatrix4(egoToWorld);
          this.#labels.add(`#${id}`, `#${colour.getHexString()}`, top);
          const trail = history.get(id) ?? [];
          for (let i = 1; i < trail.length; i++) {
            this.#trails.push(trail[i - 1].x, trail[i - 1].y, trail[i - 1].z, colour);
            this.#trails.push(trail[i].x, trail[i].y, trail[i].z, colour);
          }
        }
        if (this.layers.predictions) {
          // Only the likeliest mode gets a label: six labels per track drown the scene.
          const modes = tr.predictions ?? [];
          const best = modes.reduce((m, x) => ((x.probability ?? 0) > (m?.probability ?? -1) ? x : m), modes[0]);
          for (const mode of modes) {
            const p = mode.probability ?? 0;
            const c = colour.clone().multiplyScalar(0.35 + 0.65 * Math.min(1, p * 1.5));
            let prev = new THREE.Vector3(b.x, b.y, b.z).applyMatrix4(egoToWorld);
            const waypoints = mode.waypoints ?? [];
            for (const w of waypoints) {
              const next = new THREE.Vector3(w.x ?? 0, w.y ?? 0, b.z).applyMatrix4(egoToWorld);
              this.#predictions.push(prev.x, prev.y, prev.z, c);
              this.#predictions.push(next.x, next.y, next.z, c);
              prev = next;
            }
            if (mode === best && waypoints.length) this.#labels.add(`${Math.round(p * 100)}%`, `#${c.getHexString()}`, prev.clone().setZ(prev.z + 0.8), 0.8);
            counts.predictions++;
          }
        }
      }
    }

    // Fused confidence: the map the fusion node put in the result (the head's max class probability per cell).
    const map = result?.confidenceMap ?? undefined;
    this.confidenceShape = map?.width && map.height ? { width: map.width, height: map.height } : undefined;
    const cells = this.heat === 'confidence' && map && t !== undefined ? this.confidenceOf(t, map) : undefined;
    this.#confidence.visible = !!cells;
    if (cells && map) {
      const w = map.width!, h = map.height!;
      if (this.#confidenceTexture.image.width !== w || this.#confidenceTexture.image.height !== h) {
        this.#confidenceTexture.dispose();
        this.#confidenceTexture = new THREE.DataTexture(new Uint8Array(w * h * 4), w, h, THREE.RGBAFormat);
        (this.#confidence.material as THREE.MeshBasicMaterial).map = this.#confidenceTexture;
        (this.#confidence.material as THREE.MeshBasicMaterial).needsUpdate = true;
      }
      const data = this.#confidenceTexture.image.data as Uint8Array;
      // Cells under 2 % stay clear: the background's faint probabilities would tint the whole grid.
      for (let i = 0; i < w * h; i++) {
        const p = cells[i] / 255;
        scoreColour(p, colour);
        data[i * 4] = colour.r * 255; data[i * 4 + 1] = colour.g * 255; data[i * 4 + 2] = colour.b * 255;
        data[i * 4 + 3] = p > 0.02 ? 60 + 160 * p : 0;
        if (p > 0.02) counts.heatCells++;
      }
      this.#confidenceTexture.needsUpdate = true;
      // Row r along y, column c along x (fusion.proto ConfidenceMap): the plane's texture v runs along y.
      const xMin = map.xMin ?? -51.2, xMax = map.xMax ?? 51.2, yMin = map.yMin ?? -51.2, yMax = map.yMax ?? 51.2;
      this.#confidence.matrix.copy(egoToWorld).multiply(new THREE.Matrix4().compose(
        new THREE.Vector3((xMin + xMax) / 2, (yMin + yMax) / 2, -1.5), new THREE.Quaternion(), new THREE.Vector3(xMax - xMin, yMax - yMin, 1)));
    }

    for (const b of [this.#gt, this.#detections, this.#objects, this.#tracks, this.#trails, this.#predictions]) b.end();
    this.#labels.end();
    this.counts = counts;
    this.#placeCamera();
  }

  render(): void {
    if (this.view === 'orbit') this.controls.update();
    this.renderer.render(this.scene, this.camera);
  }

  /** The ego pose in display coordinates (what the cameras aim at). */
  #egoInDisplay(): THREE.Matrix4 {
    return this.display === 'ego' ? new THREE.Matrix4() : this.#ego.clone();
  }

  #placeCamera(): void {
    const ego = this.#egoInDisplay();
    const origin = new THREE.Vector3().setFromMatrixPosition(ego);
    this.controls.enabled = this.view === 'orbit';
    if (this.view === 'orbit') {
      if (!this.#viewInitialised) {
        this.camera.up.set(0, 0, 1);
        this.camera.position.copy(new THREE.Vector3(-45, -45, 50).applyMatrix4(ego));
        this.controls.target.copy(origin);
        this.#viewInitialised = true;
      }
      return;
    }
    if (this.view === 'top') {
      // Straight down, the ego's heading up the screen.
      this.camera.position.set(origin.x, origin.y, 120);
      this.camera.up.copy(new THREE.Vector3(1, 0, 0).transformDirection(ego));
      this.camera.lookAt(origin);
    } else {
      this.camera.up.set(0, 0, 1);
      this.camera.position.copy(new THREE.Vector3(-24, 0, 13).applyMatrix4(ego));
      this.camera.lookAt(new THREE.Vector3(25, 0, 0).applyMatrix4(ego));
    }
    this.#viewInitialised = true;
  }

  /** Track centres in the world over the frames before t (and t), by track id: the trails. */
  #trackHistory(store: ViewerStore, t: bigint): Map<number, THREE.Vector3[]> {
    const out = new Map<number, THREE.Vector3[]>();
    const frames = store.frames();
    const end = frames.indexOf(t);
    for (let i = Math.max(0, end - 30); i <= end; i++) {
      const r = store.results.get(frames[i]);
      if (!r) continue;
      const m = poseMatrix(r.header?.senderPose ?? undefined);
      for (const tr of r.tracks) {
        if (!tr.box) continue;
        let list = out.get(tr.trackId ?? 0);
        if (!list) out.set(tr.trackId ?? 0, (list = []));
        list.push(new THREE.Vector3(tr.box.x ?? 0, tr.box.y ?? 0, (tr.box.z ?? 0) - (tr.box.h ?? 0) / 2 + 0.1).applyMatrix4(m));
      }
    }
    return out;
  }

  #agentObjects(id: string, hex: number): AgentObjects {
    let obj = this.#agents.get(id);
    if (obj) return obj;
    const colour = new THREE.Color(hex);
    const points = new THREE.Points(new THREE.BufferGeometry(), new THREE.PointsMaterial({ color: colour, size: 0.14, sizeAttenuation: true }));
    points.matrixAutoUpdate = false;
    points.frustumCulled = false;
    const marker = new THREE.Group();
    marker.matrixAutoUpdate = false;
    const cone = new THREE.Mesh(new THREE.ConeGeometry(1.1, 3.2, 12), new THREE.MeshBasicMaterial({ color: colour }));
    cone.rotation.z = -Math.PI / 2; // the cone's tip (+y) along the agent's heading (+x)
    cone.position.z = 1;
    marker.add(cone);
    const ring = new THREE.Mesh(new THREE.RingGeometry(1.8, 2.3, 24), new THREE.MeshBasicMaterial({ color: colour, side: THREE.DoubleSide }));
    marker.add(ring);
    const rangeGeo = new THREE.BufferGeometry();
    rangeGeo.setAttribute('position', new THREE.BufferAttribute(new Float32Array(12), 3));
    const range = new THREE.LineLoop(rangeGeo, new THREE.LineDashedMaterial({ color: colour, transparent: true, opacity: 0.55 }));
    range.matrixAutoUpdate = false;
    const heatTexture = new THREE.DataTexture(new Uint8Array(128 * 128 * 4), 128, 128, THREE.RGBAFormat);
    const heat = new THREE.Mesh(new THREE.PlaneGeometry(1, 1), new THREE.MeshBasicMaterial({ map: heatTexture, transparent: true, depthWrite: false, side: THREE.DoubleSide }));
    heat.matrixAutoUpdate = false;
    heat.visible = false;
    this.root.add(points, marker, range, heat);
    obj = { points, marker, range, heat, heatTexture };
    this.#agents.set(id, obj);
    return obj;
  }
}

export { CLASS_NAMES };
