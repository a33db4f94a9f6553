// Per-stage latency of one agent frame and one fusion frame on the benchmark sequence, p50/p99 over frames:
// the agent's pillarise, PFN, scatter, backbone, its own head (the confidence map that top-k selection needs),
// the codec split into selection / quantise / entropy, protobuf, MQTT publish to receive through the embedded
// broker; the fusion node's protobuf and codec decode, align, fuse (max and attention, 2 and 4 agents), head,
// decode, NMS, track, predict.
import { fileURLToPath } from 'node:url';
import { constants as zlibConstants, deflateSync } from 'node:zlib';
import { encodeFeatures, parseCodecSpec, selectCells } from '../../src/codec/index.ts';
import { type Mat4 } from '../../src/geometry/index.ts';
import { CameraEncoder, PerceptionModels } from '../../src/perception/index.ts';
import { openDataset } from '../../src/datasets/index.ts';
import { MotionPredictor } from '../../src/prediction/index.ts';
import { MqttLink, startEmbeddedBroker } from '../../src/transport/index.ts';
import { type BenchOptions, Samples, type SectionResult, benchSequence, roundStats, stat, thinCloud } from './common.ts';
import { AgentPipeline, DEFAULT_CODEC, FusionPipeline } from './pipeline.ts';

/** A committed sequence with camera images, for the camera encoder's stages. */
export const CAMERA_SEQUENCE = fileURLToPath(new URL('../../datasets/fixture/fixture-s1', import.meta.url));

export interface LoadedFrame {
  index: number;
  captureNs: bigint;
  agents: { id: string; points: Float32Array; pose: Mat4 }[];
}

export async function loadFrames(o: BenchOptions): Promise<LoadedFrame[]> {
  const { seq } = await benchSequence(o);
  const frames: LoadedFrame[] = [];
  for (let i = 0; i < seq.frameCount; i++) {
    const f = await seq.frame(i);
    const agents = [];
    for (const a of f.agents) agents.push({ id: a.agentId, points: await a.loadPoints(), pose: a.lidarToWorld });
    frames.push({ index: i, captureNs: f.timestampNs ?? BigInt(i) * 100_000_000n, agents });
  }
  return frames;
}

export async function runStages(o: BenchOptions): Promise<SectionResult> {
  const frames = await loadFrames(o);
  const iterations = o.quick ? frames.length : 2 * frames.length;
  const models = await PerceptionModels.load(o.models, { device: o.device, precision: o.precision });
  const manifest = models.manifest;
  const predictor = manifest.motionPredictor ? await MotionPredictor.fromEntry(manifest.motionPredictor, { device: models.provider }) : undefined;
  const agent = new AgentPipeline(models);
  const fusion = new FusionPipeline(models, predictor);
  const broker = await startEmbeddedBroker({ host: '127.0.0.1', port: 0 });
  const pub = await MqttLink.connect({ url: broker.url, clientId: 'bench-stages-pub' });
  const sub = await MqttLink.connect({ url: broker.url, clientId: 'bench-stages-sub' });
  let arrived: (() => void) | undefined;
  sub.onMessage(() => arrived?.());
  await sub.subscribe('bench/stages', 0);

  const agentSamples = new Samples();
  const codecSamples = new Samples();
  const fusionSamples: Record<string, Samples> = { 'attention, 4 agents': new Samples(), 'max, 4 agents': new Samples(), 'attention, 2 agents': new Samples(), 'max, 2 agents': new Samples() };
  const fusion4: number[] = [];
  const agent30k: number[] = [];
  const threadSamples = new Samples();
  const cameraSamples = new Samples();
  const cameraCounts = new Set<number>();
  const spec = parseCodecSpec(DEFAULT_CODEC);
  const noEntropy = parseCodecSpec('int8+top10%');
  const { C, H, W } = agent;
  let points30k = 0;
  let pointsFull: number[] = [];
  let messageBytes: number[] = [];
  try {
    for (let it = 0; it < iterations; it++) {
      const f = frames[it % frames.length];
      const [ego, ...others] = f.agents;
      // Collaborators first: their messages, as the fusion node would receive them.
      const received: { features: Float32Array; mask: Uint8Array; pose: Mat4 }[] = [];
      for (let k = 0; k < others.length; k++) {
        const a = others[k];
        const { bytes } = await agent.run(a.id, a.points, a.pose, f.captureNs, agentSamples);
        pointsFull.push(a.points.length / 4);
        messageBytes.push(bytes.byteLength);
        const t = performance.now();
        const got = new Promise<void>((resolve) => (arrived = resolve));
        await pub.publish('bench/stages', bytes, { qos: 0 });
        await got;
        agentSamples.add('mqttPublishToReceive', performance.now() - t);
        received.push(fusion.decode(k, bytes, agentSamples));
      }
      // The codec of the last collaborator's map, stage by stage.
      const last = others[others.length - 1];
      const { features } = await agent.run(last.id, last.points, last.pose, f.captureNs);
      const confidence = agent.lastConfidence;
      let t = performance.now();
      selectCells(H * W, spec.selection, confidence, undefined);
      const selectMs = performance.now() - t;
      codecSamples.add('selection', selectMs);
      t = performance.now();
      const packed = encodeFeatures(features, H, W, C, noEntropy, { confidence });
      codecSamples.add('quantise', Math.max(0, performance.now() - t - selectMs));
      t = performance.now();
      // As the codec does for a payload of selected cells (src/codec/entropy.ts): run-length deflate.
      deflateSync(packed.payload, { level: spec.entropy!.level, strategy: zlibConstants.Z_RLE });
      codecSamples.add('entropy', performance.now() - t);

      // The ego: its own map, uncompressed (it never leaves the vehicle), then fusion variants.
      const egoEnc = await agent.run(ego.id, ego.points, ego.pose, f.captureNs);
      const egoMap = Float32Array.from(egoEnc.features);
      const nearest = [...received].sort((a, b) => dist(a.pose, ego.pose) - dist(b.pose, ego.pose));
      for (const [name, s] of Object.entries(fusionSamples)) {
        const K = name.endsWith('4 agents') ? 3 : 1;
        const combine = name.startsWith('attention') ? 'attention' : 'max';
        await fusion.fuse(egoMap, ego.pose, nearest.slice(0, K), s, { combine, track: name === 'attention, 4 agents' });
      }
      const s4 = fusionSamples['attention, 4 agents'].byName;
      const lastOf = (k: string) => s4.get(k)?.at(-1) ?? 0;
      fusion4.push(lastOf('align') + lastOf('fuse') + lastOf('head') + lastOf('decode') + lastOf('nms'));

      // The reference frame: about 30k points (every nth point of the ego's scan).
      const thin = thinCloud(ego.points, 30_000);
      points30k = thin.length / 4;
      const enc = await models.lidar.encode(thin);
      agent30k.push((enc.timings.pillarise ?? 0) + (enc.timings.pfn ?? 0) + (enc.timings.scatter ?? 0) + (enc.timings.backbone ?? 0));
      o.log(`stages: frame ${it + 1}/${iterations}`);
    }
    // ONNX Runtime's intra-op threads: its default (one per physical core) against one, interleaved frame by frame
    // on the 30k-point frame, so both see the same machine load.
    const single = await PerceptionModels.load(o.models, { device: o.device, threads: 1, precision: o.precision });
    try {
      for (let it = 0; it < iterations; it++) {
        const thin = thinCloud(frames[it % frames.length].agents[0].points, 30_000);
        for (const [name, m] of [['defaultThreads', models], ['oneThread', single]] as const) {
          const t = performance.now();
          await m.lidar.encode(thin);
          threadSamples.add(name, performance.now() - t);
        }
      }
    } finally {
      await single.dispose();
    }
    // The camera encoder, on the committed fixture sequence (the benchmark sequence is simulated without images):
    // every camera agent of its frames, the images decoded and resized by sharp each time, the rig's sampling grid
    // cached after the first frame of an agent (as in a running agent).
    if (manifest.camera) {
      const camera = await CameraEncoder.load(manifest, { device: models.provider });
      try {
        const seq = (await openDataset(CAMERA_SEQUENCE)).scenarios[0];
        const rounds = o.quick ? 1 : 4;
        for (let r = 0; r < rounds; r++) {
          for (let i = 0; i < seq.frameCount; i++) {
            for (const a of (await seq.frame(i)).agents) {
              if (a.cameras.length === 0) continue;
              const t = performance.now();
              const enc = await camera.encode(a.cameras, { agentId: a.agentId });
              cameraSamples.add('cameraEncode', performance.now() - t);
              for (const [k, v] of Object.entries(enc.timings)) cameraSamples.add(k, v as number);
              cameraCounts.add(enc.cameras);
            }
          }
        }
      } finally {
        await camera.dispose();
      }
    }
  } finally {
    await pub.end();
    await sub.end();
    await broker.close();
    await predictor?.release();
    await models.dispose();
  }
  const agentStats = agentSamples.stats();
  const encodeTotals = (agentSamples.byName.get('pillarise') ?? []).map((v, i) =>
    v + agentSamples.byName.get('pfn')![i] + agentSamples.byName.get('scatter')![i] + agentSamples.byName.get('backbone')![i]);
  const codecRoundTrip = (agentSamples.byName.get('codecEncode') ?? []).map((v, i) => v + (agentSamples.byName.get('codecDecode')?.[i] ?? 0));
  pointsFull = [...new Set(pointsFull)];
  messageBytes = messageBytes.sort((a, b) => a - b);
  return {
    iterations,
    codec: DEFAULT_CODEC,
    pointsPerScan: { min: Math.min(...pointsFull), max: Math.max(...pointsFull) },
    messageBytesMedian: messageBytes[Math.floor(messageBytes.length / 2)],
    agent: roundStats(agentStats),
    codecStages: roundStats(codecSamples.stats()),
    camera: roundStats(cameraSamples.stats()),
    camerasPerAgent: [...cameraCounts].sort((a, b) => a - b).join('–'),
    fusion: Object.fromEntries(Object.entries(fusionSamples).map(([k, s]) => [k, roundStats(s.stats())])),
    totals: roundStats({
      agentEncodeFullScan: stat(encodeTotals),
      [`agentEncode30k`]: stat(agent30k),
      fusion4PlusHead: stat(fusion4),
      codecEncodePlusDecode: stat(codecRoundTrip),
    }),
    points30k,
    encode30kByOrtThreads: roundStats(threadSamples.stats()),
    notes: [
      'agent stages: every agent of the frame (3 vehicles with ~90k-point scans, 1 roadside unit); agentEncode30k: the ego scan thinned to every nth point',
      'quantise = encodeFeatures without its entropy stage minus the selection time; entropy = deflate of that packed payload',
      manifest.camera ? `camera encoder: ${[...cameraCounts].sort((a, b) => a - b).join('–')} cameras per agent of datasets/fixture/fixture-s1 (committed; the benchmark sequence has no images); cameraEncode = images (sharp) + grid + camera_backbone + camera_lift` : 'camera encoder: not measured (the manifest ships no camera models)',
      `ORT threads: ONNX Runtime's default (one per physical core), device ${models.provider}`,
    ],
  };
}

function dist(a: Mat4, b: Mat4): number {
  return Math.hypot(a[3] - b[3], a[7] - b[7]);
}
