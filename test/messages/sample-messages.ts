// Valid messages of every kind, as an agent or fusion node would send them, for the gate, signing and fuzz tests.
// Each builder takes the fields a test varies; everything else is a plausible value that passes the gate.
import { encodeFeatures, encodePoints } from '../../src/codec/index.ts';
import {
  type GateGrid,
  type HeaderInit,
  type MessageInitOfKind,
  type MessageKind,
  SCHEMA_VERSION,
  agentKindToWire,
  encodeMessage,
  nsToWire,
  objectClassToWire,
  wire,
} from '../../src/messages/index.ts';
import { seededRandom, syntheticBev } from '../codec/synthetic-bev.ts';

export const NOW_NS = 1_700_000_000_000_000_000n;
export const CAPTURE_NS = NOW_NS - 50_000_000n; // 50 ms before the receiver's now
export const MODEL_ID = 'pp-v2xfuse-mixed-s1';

// A small map (8 × 32 × 32) keeps the fuzz fast; the grid is the shipped one's range at stride 8.
export const CHANNELS = 8;
export const HEIGHT = 32;
export const WIDTH = 32;
export const RECEIVER_GRID: GateGrid = {
  xMin: -51.2,
  xMax: 51.2,
  yMin: -51.2,
  yMax: 51.2,
  zMin: -3,
  zMax: 1,
  cellSize: 0.4,
  featureStride: 8,
  channels: CHANNELS,
  height: HEIGHT,
  width: WIDTH,
};

export const BEV = syntheticBev(CHANNELS, HEIGHT, WIDTH, 3);
export const FEATURE_CODEC = 'int8+top10%+deflate';
export const ENCODED_FEATURES = encodeFeatures(BEV.features, HEIGHT, WIDTH, CHANNELS, FEATURE_CODEC, { confidence: BEV.confidence });

export const POINTS = (() => {
  const random = seededRandom(11);
  const p = new Float32Array(4 * 200);
  for (let i = 0; i < 200; i++) {
    p[4 * i] = (random() - 0.5) * 100;
    p[4 * i + 1] = (random() - 0.5) * 100;
    p[4 * i + 2] = -1.5 + random() * 3;
    p[4 * i + 3] = random();
  }
  return p;
})();
export const POINT_STEP_M = 0.01;
export const ENCODED_POINTS = encodePoints(POINTS, '1cm+deflate');

export interface HeaderOptions {
  senderId?: string;
  sequence?: number;
  captureNs?: bigint;
  modelId?: string;
}

export function header(o: HeaderOptions = {}): HeaderInit {
  return {
    schemaVersion: SCHEMA_VERSION,
    senderId: o.senderId ?? '100',
    senderKind: agentKindToWire('vehicle'),
    sequence: o.sequence ?? 7,
    captureTimeNs: nsToWire(o.captureNs ?? CAPTURE_NS),
    sendTimeNs: nsToWire((o.captureNs ?? CAPTURE_NS) + 20_000_000n),
    senderPose: { x: 512.25, y: -33.5, z: 1.9, roll: 0.01, pitch: -0.02, yaw: 1.2, covariance: [0.04, 0.04, 0.09, 1e-4, 1e-4, 4e-4] },
    modelId: o.modelId ?? MODEL_ID,
  };
}

export function featuresInit(o: HeaderOptions = {}): MessageInitOfKind['features'] {
  const { channels, height, width, featureStride, ...floats } = RECEIVER_GRID;
  return {
    header: header(o),
    grid: { ...floats, featureStride, channels, height, width },
    encoding: { ...ENCODED_FEATURES.header, channelScale: [...ENCODED_FEATURES.header.channelScale], channelOffset: [...ENCODED_FEATURES.header.channelOffset] },
    payload: ENCODED_FEATURES.payload,
  };
}

export function pointsInit(o: HeaderOptions = {}): MessageInitOfKind['points'] {
  return { header: header(o), encoding: { ...ENCODED_POINTS.header }, payload: ENCODED_POINTS.payload };
}

export function objectsInit(o: HeaderOptions = {}): MessageInitOfKind['objects'] {
  return {
    header: header(o),
    objects: [
      {
        objectId: 12,
        position: { x: 12.5, y: -3.25, z: -0.9, xConfidence: 0.3, yConfidence: 0.3, zConfidence: 0.5 },
        velocity: { x: 8, y: 0.5, z: 0 },
        dimensions: { x: 4.5, y: 2, z: 1.6 },
        yaw: 0.1,
        objectClass: objectClassToWire('vehicle'),
        classConfidence: 0.8,
        existenceConfidence: 0.9,
      },
      {
        objectId: 13,
        position: { x: -4, y: 7, z: -1 },
        dimensions: { x: 0.6, y: 0.6, z: 1.7 },
        yaw: -2,
        objectClass: objectClassToWire('pedestrian'),
        classConfidence: 0.6,
        existenceConfidence: 0.55,
      },
    ],
  };
}

export function statusInit(o: HeaderOptions = {}, state = wire.AgentState.AGENT_STATE_RUNNING): MessageInitOfKind['status'] {
  const { channels, height, width, featureStride, ...floats } = RECEIVER_GRID;
  return {
    header: header(o),
    state,
    fusionMode: wire.FusionMode.FUSION_MODE_INTERMEDIATE,
    codec: FEATURE_CODEC,
    frameRateHz: 10,
    framesPublished: 42,
    bytesPublished: nsToWire(1_234_567n),
    grid: { ...floats, featureStride, channels, height, width },
    softwareVersion: '0.1.0',
  };
}

export function resultInit(o: HeaderOptions = {}): MessageInitOfKind['result'] {
  return {
    header: header({ senderId: 'fusion-100', ...o }),
    mode: wire.FusionMode.FUSION_MODE_INTERMEDIATE,
    detections: [{ box: { x: 1, y: 2, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0.5 }, objectClass: 1, score: 0.75 }],
    tracks: [
      {
        trackId: 4,
        box: { x: 1, y: 2, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0.5 },
        objectClass: 1,
        score: 0.7,
        velocityX: 3,
        predictions: [{ probability: 1, waypoints: [{ timeOffsetS: 0.5, x: 3, y: 2 }] }],
      },
    ],
    contributions: [{ agentId: '101', mode: wire.FusionMode.FUSION_MODE_INTERMEDIATE, used: true, bytes: 51234, latencyMs: 40 }],
    latencies: [{ stage: 'fuse', ms: 3.5 }],
  };
}

export function sampleInit<K extends MessageKind>(kind: K, o: HeaderOptions = {}): MessageInitOfKind[K] {
  const builders: { [P in MessageKind]: (o: HeaderOptions) => MessageInitOfKind[P] } = {
    features: featuresInit,
    points: pointsInit,
    objects: objectsInit,
    status: (h) => statusInit(h),
    result: resultInit,
  };
  return builders[kind](o) as MessageInitOfKind[K];
}

/** The sender id a kind's sample uses (results come from a fusion node). */
export function sampleSender(kind: MessageKind): string {
  return kind === 'result' ? 'fusion-100' : '100';
}

export function sampleBytes<K extends MessageKind>(kind: K, o: HeaderOptions = {}): Uint8Array {
  return encodeMessage(kind, sampleInit(kind, o));
}
