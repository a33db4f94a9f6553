// One LiDAR encoder of a LidarEncoderPool, in its worker thread: points in, BEV features out (transferred, not
// copied), with the encoder's timings.
import { parentPort, workerData } from 'node:worker_threads';
import type { PerceptionManifest } from './manifest.ts';
import { type DeviceOption, LidarEncoder } from './runtime.ts';

export interface EncoderWorkerData {
  manifest: PerceptionManifest;
  threads?: number;
  device?: DeviceOption;
}
export interface EncodeRequest {
  id: number;
  points: Float32Array;
}
export type EncodeReply =
  | { id: number; features: Float32Array; timings: Record<string, number>; droppedPillars: number }
  | { id: number; error: string };

const data = workerData as EncoderWorkerData;
const encoder = await LidarEncoder.load(data.manifest, { threads: data.threads, device: data.device });
parentPort!.on('message', async (msg: EncodeRequest | 'close') => {
  if (msg === 'close') {
    await encoder.dispose();
    parentPort!.close();
    return;
  }
  try {
    const r = await encoder.encode(msg.points);
    const features = Float32Array.from(r.features);
    const reply: EncodeReply = { id: msg.id, features, timings: r.timings as Record<string, number>, droppedPillars: r.pillars.droppedPillars };
    parentPort!.postMessage(reply, [features.buffer]);
  } catch (err) {
    parentPort!.postMessage({ id: msg.id, error: (err as Error).message } satisfies EncodeReply);
  }
});
parentPort!.postMessage('ready');
