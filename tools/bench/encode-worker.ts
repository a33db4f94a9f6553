// A LiDAR encoder in a worker thread, for the workers section: points in and BEV features out through
// SharedArrayBuffers the main thread owns; messages carry only the point count and the timing. onnxruntime-node
// 1.30 refuses tensors on a SharedArrayBuffer ("Invalid argument"), so the backbone writes into the encoder's own
// buffer and the map is copied into the shared one (4 MB, ~1 ms): the pillariser reads the shared points as they are.
import { parentPort, workerData } from 'node:worker_threads';
import { LidarEncoder, loadManifest } from '../../src/perception/index.ts';

export interface EncodeWorkerData {
  models: string;
  threads: number;
  /** x, y, z, intensity records, written by the main thread before each request. */
  points: SharedArrayBuffer;
  /** [C, H, W] float32, written here. */
  features: SharedArrayBuffer;
}

const data = workerData as EncodeWorkerData;
const encoder = await LidarEncoder.load(await loadManifest(data.models), { threads: data.threads });
const points = new Float32Array(data.points);
const features = new Float32Array(data.features);
parentPort!.on('message', async (msg: { count: number } | 'close') => {
  if (msg === 'close') {
    await encoder.dispose();
    parentPort!.close();
    return;
  }
  const t = performance.now();
  features.set((await encoder.encode(points.subarray(0, 4 * msg.count))).features);
  parentPort!.postMessage({ ms: performance.now() - t });
});
parentPort!.postMessage('ready');
