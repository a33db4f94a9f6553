// Simulated agents for the reliability and load tests: each publishes, at a fixed rate, the object list (late
// fusion) it would send, made from the ground truth of a dataset sequence in its own LiDAR frame, with fresh
// capture times on the wall clock, its retained status (republished after a reconnect: the broker may have lost
// it) and a last will. No models run, so dozens of agents fit on a small machine, and the fusion node, which is
// the node under test, sees well-formed traffic at a known rate.
import { readFile } from 'node:fs/promises';
import { openDataset } from '../../src/datasets/index.ts';
import { detectionsToObjects } from '../../src/fusion/index.ts';
import { type Mat4, invertRigid, matrixToPose, transformBox } from '../../src/geometry/index.ts';
import { type HeaderInit, type MessageInitOfKind, SCHEMA_VERSION, agentKindToWire, encodeMessage, nsToWire, type SigningKey, signMessage, wire } from '../../src/messages/index.ts';
import { MqttLink, agentTopic, epochNowNs } from '../../src/transport/index.ts';

export interface AgentFrameObjects {
  pose: Mat4;
  /** Objects in the agent's LiDAR frame. */
  objects: NonNullable<MessageInitOfKind['objects']['objects']>;
}

/** Per agent id, per frame: its pose and the ground-truth boxes within `rangeM` of it, as its own detections. */
export async function groundTruthObjects(dataset: string, rangeM = 50): Promise<Map<string, AgentFrameObjects[]>> {
  const seq = (await openDataset(dataset)).scenarios[0]!;
  const out = new Map<string, AgentFrameObjects[]>();
  for (let i = 0; i < seq.frameCount; i++) {
    const frame = await seq.frame(i);
    for (const a of frame.agents) {
      const toAgent = invertRigid(a.lidarToWorld);
      const boxes = a.boxes.map((b) => ({ ...b, box: transformBox(toAgent, b.box) })).filter((b) => Math.hypot(b.box.x, b.box.y) < rangeM);
      const objects = detectionsToObjects(boxes.map((b) => ({ box: b.box, score: 0.9, cls: b.cls === 'other' ? 'vehicle' : b.cls })));
      const list = out.get(a.agentId) ?? [];
      list.push({ pose: a.lidarToWorld, objects });
      out.set(a.agentId, list);
    }
  }
  return out;
}

export async function manifestModelId(manifestPath: string): Promise<string> {
  return (JSON.parse(await readFile(manifestPath, 'utf8')) as { modelId: string }).modelId;
}

export interface SimAgentOptions {
  id: string;
  session: string;
  url: string;
  username?: string;
  password?: string;
  modelId: string;
  frames: AgentFrameObjects[];
  key?: SigningKey;
  /** Rewrites the objects before they are sent (an attacker's shift or ghosts). */
  tamper?: (objects: AgentFrameObjects['objects']) => AgentFrameObjects['objects'];
  protocol?: 'auto' | 4 | 5;
}

export class SimAgent {
  readonly id: string;
  published = 0;
  #sequence = { objects: 0, status: 0 };
  #frame = 0;
  private constructor(
    readonly link: MqttLink,
    private readonly o: SimAgentOptions,
  ) {
    this.id = o.id;
  }

  static async start(o: SimAgentOptions): Promise<SimAgent> {
    const statusTopic = agentTopic(o.session, o.id, 'status');
    const link = await MqttLink.connect({
      url: o.url, clientId: `sim-${o.session}-${o.id}`, username: o.username, password: o.password, protocol: o.protocol ?? 'auto',
      connectTimeoutMs: 10_000, reconnectPeriodMs: 300,
      will: { topic: statusTopic, payload: SimAgent.statusBytes(o, wire.AgentState.AGENT_STATE_OFFLINE, 0), retain: true, qos: 1 },
    });
    const agent = new SimAgent(link, o);
    link.on('reconnect', () => void agent.sendStatus(wire.AgentState.AGENT_STATE_RUNNING).catch(() => {}));
    await agent.sendStatus(wire.AgentState.AGENT_STATE_RUNNING);
    return agent;
  }

  private static header(o: SimAgentOptions, sequence: number, captureNs: bigint, pose?: Mat4): HeaderInit {
    const p = pose ? matrixToPose(pose) : undefined;
    return {
      schemaVersion: SCHEMA_VERSION, senderId: o.id, senderKind: agentKindToWire('vehicle'), sequence,
      captureTimeNs: nsToWire(captureNs), sendTimeNs: nsToWire(epochNowNs()),
      ...(p ? { senderPose: { x: p.x, y: p.y, z: p.z, roll: p.roll, pitch: p.pitch, yaw: p.yaw } } : {}),
      modelId: o.modelId,
    };
  }

  private static statusBytes(o: SimAgentOptions, state: number, sequence: number): Uint8Array {
    const bytes = encodeMessage('status', {
      header: SimAgent.header(o, sequence, epochNowNs()), state, fusionMode: wire.FusionMode.FUSION_MODE_LATE, codec: 'objects', frameRateHz: 10,
    });
    return o.key ? signMessage('status', bytes, o.key) : bytes;
  }

  async sendStatus(state: number): Promise<void> {
    await this.link.publish(agentTopic(this.o.session, this.o.id, 'status'), SimAgent.statusBytes(this.o, state, ++this.#sequence.status), { qos: 1, retain: true });
  }

  /** Publishes its next frame's object list captured at `captureNs` (all agents of a tick share it, as synchronised sensors do). */
  async publishFrame(captureNs: bigint): Promise<void> {
    const f = this.o.frames[this.#frame++ % this.o.frames.length]!;
    const objects = this.o.tamper ? this.o.tamper(f.objects) : f.objects;
    const bytes = encodeMessage('objects', { header: SimAgent.header(this.o, ++this.#sequence.objects, captureNs, f.pose), objects });
    const signed = this.o.key ? signMessage('objects', bytes, this.o.key) : bytes;
    await this.link.publish(agentTopic(this.o.session, this.o.id, 'objects'), signed, { qos: 0 });
    this.published++;
  }

  /** A clean goodbye: status OFFLINE, then disconnect. */
  async finish(): Promise<void> {
    await this.sendStatus(wire.AgentState.AGENT_STATE_OFFLINE).catch(() => {});
    await this.link.end();
  }

  /** A crash: the connection drops without DISCONNECT, the broker publishes the will. */
  async crash(): Promise<void> {
    await this.link.abort();
  }
}

/** Ticks every `periodMs`: each live agent publishes its next frame with the tick's capture time. */
export function runTicker(agents: () => readonly SimAgent[], periodMs: number): { stop(): void; ticks: () => number } {
  let ticks = 0;
  const timer = setInterval(() => {
    ticks++;
    const t = epochNowNs();
    for (const a of agents()) void a.publishFrame(t).catch(() => {});
  }, periodMs);
  return { stop: () => clearInterval(timer), ticks: () => ticks };
}
