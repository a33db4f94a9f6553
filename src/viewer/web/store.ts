// The page's model of a run: envelopes in, frames out. A frame is one fused result (the ego's capture time) with
// what every agent sent for it, the ground truth and the dataset's points and images recorded beside it. No DOM
// here: the same code runs under node:test.
import type { Envelope } from '../envelope.ts';
import { type AgentStatus, type FeatureFrame, type FusionResult, type ObjectList, type PointCloudFrame, type Pose, nsOf, wire } from './wire.ts';

export interface GtBox {
  id: string;
  cls: string;
  x: number; y: number; z: number; l: number; w: number; h: number; yaw: number;
}

export interface CloudAtFrame {
  /** LiDAR → world: position and orientation quaternion. */
  position: [number, number, number];
  quaternion: [number, number, number, number];
  /** x, y, z, intensity in the LiDAR frame. */
  points: Float32Array;
}

export interface CameraImage {
  format: string;
  data: Uint8Array;
}

export interface AgentMessages {
  features: Map<bigint, FeatureFrame>;
  objects: Map<bigint, ObjectList>;
  points: Map<bigint, PointCloudFrame>;
  clouds: Map<bigint, CloudAtFrame>;
  cameras: Map<bigint, Map<string, CameraImage>>;
  statuses: { logNs: bigint; status: AgentStatus }[];
  /** Sequence numbers seen per message kind, to count what never arrived. */
  sequences: Map<string, number[]>;
  kind?: 'vehicle' | 'rsu';
}

export interface AgentStats {
  id: string;
  /** This frame. */
  bytes?: number;
  latencyMs?: number;
  used?: boolean;
  refusedReason?: string;
  codec?: string;
  selectedCells?: number;
  /** Up to this frame. */
  meanBytes: number;
  mbps: number;
  meanLatencyMs: number;
  /** Frames of the result without a used contribution from this agent, and sequence gaps in what it sent. */
  dropped: number;
  dropReasons: Record<string, number>;
  state?: string;
}

const decoder = new TextDecoder();

function base64Bytes(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function nsOfFoxgloveTime(t: { sec?: number; nsec?: number } | undefined): bigint {
  return t ? BigInt(t.sec ?? 0) * 1_000_000_000n + BigInt(t.nsec ?? 0) : 0n;
}

function yawOfQuaternion(q: { x?: number; y?: number; z?: number; w?: number }): number {
  const { x = 0, y = 0, z = 0, w = 1 } = q;
  return Math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z));
}

export class ViewerStore {
  session = '';
  readonly results = new Map<bigint, FusionResult>();
  readonly resultLogNs = new Map<bigint, bigint>();
  readonly gt = new Map<bigint, GtBox[]>();
  readonly agents = new Map<string, AgentMessages>();
  /** Capture times of the timeline, sorted. */
  timeline: bigint[] = [];
  decodeErrors = 0;
  #dirty = true;

  /** Adds one envelope; returns false when it was dropped (another run's, or undecodable). */
  add(e: Envelope): boolean {
    if (e.session && e.session !== this.session) {
      // Follow the newest run: its first data message replaces an older run (retained statuses alone do not).
      if (this.session && e.kind === 'status') return false;
      if (this.session) this.reset();
      this.session = e.session;
    }
    try {
      switch (e.kind) {
        case 'result': {
          const r = wire.FusionResult.decode(e.data);
          const t = nsOf(r.header?.captureTimeNs);
          this.results.set(t, r);
          this.resultLogNs.set(t, e.logNs);
          this.#dirty = true;
          return true;
        }
        case 'features': {
          const f = wire.FeatureFrame.decode(e.data);
          this.#agent(e.sender, f.header?.senderKind).features.set(nsOf(f.header?.captureTimeNs), f);
          this.#sequence(e.sender, 'features', f.header?.sequence);
          return true;
        }
        case 'objects': {
          const o = wire.ObjectList.decode(e.data);
          this.#agent(e.sender, o.header?.senderKind).objects.set(nsOf(o.header?.captureTimeNs), o);
          this.#sequence(e.sender, 'objects', o.header?.sequence);
          return true;
        }
        case 'points': {
          const p = wire.PointCloudFrame.decode(e.data);
          this.#agent(e.sender, p.header?.senderKind).points.set(nsOf(p.header?.captureTimeNs), p);
          this.#sequence(e.sender, 'points', p.header?.sequence);
          return true;
        }
        case 'status': {
          const s = wire.AgentStatus.decode(e.data);
          const a = this.#agent(e.sender, s.header?.senderKind);
          a.statuses.push({ logNs: e.logNs, status: s });
          return true;
        }
        case 'gt': {
          const scene = JSON.parse(decoder.decode(e.data)) as {
            entities?: { id: string; metadata?: { key: string; value: string }[]; cubes?: { pose: { position: { x: number; y: number; z: number }; orientation: { x: number; y: number; z: number; w: number } }; size: { x: number; y: number; z: number } }[] }[];
          };
          const boxes: GtBox[] = [];
          for (const ent of scene.entities ?? []) {
            const cls = ent.metadata?.find((m) => m.key === 'class')?.value ?? 'other';
            for (const c of ent.cubes ?? []) {
              boxes.push({ id: ent.id, cls, x: c.pose.position.x, y: c.pose.position.y, z: c.pose.position.z, l: c.size.x, w: c.size.y, h: c.size.z, yaw: yawOfQuaternion(c.pose.orientation) });
            }
          }
          this.gt.set(e.logNs, boxes);
          this.#dirty = true;
          return true;
        }
        case 'lidar': {
          const pc = JSON.parse(decoder.decode(e.data)) as {
            timestamp?: { sec: number; nsec: number }; point_stride: number; data: string;
            pose: { position: { x: number; y: number; z: number }; orientation: { x: number; y: number; z: number; w: number } };
          };
          const bytes = base64Bytes(pc.data);
          if (pc.point_stride !== 16) return false;
          const t = nsOfFoxgloveTime(pc.timestamp) || e.logNs;
          const o = pc.pose.orientation;
          this.#agent(e.sender).clouds.set(t, {
            position: [pc.pose.position.x, pc.pose.position.y, pc.pose.position.z],
            quaternion: [o.x, o.y, o.z, o.w],
            points: new Float32Array(bytes.buffer, 0, bytes.byteLength >> 2),
          });
          this.#dirty = true;
          return true;
        }
        case 'camera': {
          const img = JSON.parse(decoder.decode(e.data)) as { timestamp?: { sec: number; nsec: number }; data: string; format: string };
          const t = nsOfFoxgloveTime(img.timestamp) || e.logNs;
          const a = this.#agent(e.sender);
          let at = a.cameras.get(t);
          if (!at) a.cameras.set(t, (at = new Map()));
          at.set(e.camera ?? 'camera', { format: img.format, data: base64Bytes(img.data) });
          return true;
        }
      }
    } catch {
      this.decodeErrors++;
    }
    return false;
  }

  reset(): void {
    this.results.clear();
    this.resultLogNs.clear();
    this.gt.clear();
    this.agents.clear();
    this.timeline = [];
    this.#dirty = true;
  }

  /** The timeline: every fused result; without results (a recording of agents only), the ground-truth frames. */
  frames(): bigint[] {
    if (this.#dirty) {
      const keys = this.results.size ? [...this.results.keys()] : [...this.gt.keys()];
      this.timeline = keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.#dirty = false;
    }
    return this.timeline;
  }

  agentIds(): string[] {
    const ids = new Set<string>(this.agents.keys());
    for (const r of this.results.values()) for (const c of r.contributions) if (c.agentId) ids.add(c.agentId);
    return [...ids].sort();
  }

  /** The ego's pose at a frame: the result header's (the fusion node stamps the ego's capture pose). */
  egoPose(t: bigint): Pose | undefined {
    return this.results.get(t)?.header?.senderPose ?? undefined;
  }

  egoId(): string | undefined {
    for (const r of this.results.values()) {
      const ego = r.contributions[0]?.agentId;
      if (ego) return ego;
    }
    return undefined;
  }

  /** The capture time of the message an agent contributed to frame t (its own clock may differ from the ego's). */
  agentTime(agentId: string, t: bigint): bigint {
    const c = this.results.get(t)?.contributions.find((x) => x.agentId === agentId);
    const used = nsOf(c?.captureTimeNs);
    return used > 0n ? used : t;
  }

  /** The agent's pose at frame t, from whatever it sent for that frame, else its recorded LiDAR pose. */
  agentPose(agentId: string, t: bigint): Pose | undefined {
    const a = this.agents.get(agentId);
    if (!a) return undefined;
    const at = this.agentTime(agentId, t);
    const header = a.features.get(at)?.header ?? a.objects.get(at)?.header ?? a.points.get(at)?.header;
    if (header?.senderPose) return header.senderPose;
    const cloud = a.clouds.get(t);
    if (cloud) {
      const [x, y, z, w] = cloud.quaternion;
      return { x: cloud.position[0], y: cloud.position[1], z: cloud.position[2], roll: 0, pitch: 0, yaw: Math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)) };
    }
    return undefined;
  }

  /** The agent's latest status at or before frame t's arrival (the last one when t is unknown). */
  status(agentId: string, t?: bigint): AgentStatus | undefined {
    const list = this.agents.get(agentId)?.statuses ?? [];
    const limit = t === undefined ? undefined : this.resultLogNs.get(t);
    let best: AgentStatus | undefined;
    for (const s of list) if (limit === undefined || s.logNs <= limit || !best) best = s.status;
    return best;
  }

  /** Seconds between frames: the median step of the timeline, 0.1 s (10 Hz) with fewer than two frames. */
  framePeriodS(): number {
    const f = this.frames();
    if (f.length < 2) return 0.1;
    const steps = f.slice(1).map((t, i) => Number(t - f[i]) / 1e9).sort((a, b) => a - b);
    return steps[steps.length >> 1] || 0.1;
  }

  /** Bytes, bit rate, drops and latency per agent, for frame index `upTo` and the frames before it. */
  stats(upTo: number): AgentStats[] {
    const frames = this.frames().slice(0, upTo + 1);
    const period = this.framePeriodS();
    const current = frames[frames.length - 1];
    return this.agentIds().map((id) => {
      let bytes = 0, msgs = 0, latency = 0, latencies = 0, dropped = 0;
      const dropReasons: Record<string, number> = {};
      let now: AgentStats | undefined;
      for (const t of frames) {
        const r = this.results.get(t);
        if (!r) continue;
        const c = r.contributions.find((x) => x.agentId === id);
        if (!c || !c.used) {
          dropped++;
          const reason = c?.refusedReason || 'missing';
          dropReasons[reason] = (dropReasons[reason] ?? 0) + 1;
        }
        if (c && c.bytes) {
          bytes += c.bytes;
          msgs++;
        }
        if (c && c.used && c.latencyMs) {
          latency += c.latencyMs;
          latencies++;
        }
        if (t === current && c) {
          now = { id, bytes: c.bytes ?? 0, latencyMs: c.latencyMs ?? 0, used: !!c.used, refusedReason: c.refusedReason || undefined, codec: c.codec || undefined, selectedCells: c.selectedCells ?? 0, meanBytes: 0, mbps: 0, meanLatencyMs: 0, dropped: 0, dropReasons };
        }
      }
      // Sequence gaps: messages the agent sent that never reached this viewer.
      for (const seqs of this.agents.get(id)?.sequences.values() ?? []) {
        const sorted = [...seqs].sort((a, b) => a - b);
        for (let i = 1; i < sorted.length; i++) if (sorted[i] - sorted[i - 1] > 1) dropReasons.lost = (dropReasons.lost ?? 0) + sorted[i] - sorted[i - 1] - 1;
      }
      const meanBytes = msgs ? bytes / msgs : 0;
      const status = current === undefined ? this.status(id) : this.status(id, current);
      return {
        ...(now ?? { id, dropReasons }),
        id,
        meanBytes,
        mbps: (meanBytes * 8) / period / 1e6,
        meanLatencyMs: latencies ? latency / latencies : 0,
        dropped: dropped + (dropReasons.lost ?? 0),
        dropReasons,
        state: status ? STATE[status.state ?? 0] : undefined,
      };
    });
  }

  #agent(id: string, kind?: number | null): AgentMessages {
    let a = this.agents.get(id);
    if (!a) {
      a = { features: new Map(), objects: new Map(), points: new Map(), clouds: new Map(), cameras: new Map(), statuses: [], sequences: new Map() };
      this.agents.set(id, a);
    }
    if (kind === wire.AgentKind.AGENT_KIND_VEHICLE) a.kind = 'vehicle';
    else if (kind === wire.AgentKind.AGENT_KIND_RSU) a.kind = 'rsu';
    return a;
  }

  #sequence(id: string, kind: string, sequence: number | null | undefined): void {
    if (!sequence) return;
    const a = this.#agent(id);
    let list = a.sequences.get(kind);
    if (!list) a.sequences.set(kind, (list = []));
    list.push(sequence);
  }
}

const STATE: Record<number, string> = { 0: 'unspecified', 1: 'starting', 2: 'running', 3: 'stopping', 4: 'offline', 5: 'failed' };
