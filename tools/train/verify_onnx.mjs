// Runs exported models in ONNX Runtime for Node (what the v2xfuse runtime uses) and compares with PyTorch's
// outputs. Called by export.py: `node tools/train/verify_onnx.mjs CASES.json`, where CASES.json lists per model its
// file and raw little-endian float32 input / expected-output files with shapes. Exit 1 on any disagreement.
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

// Relative tolerance against the largest expected magnitude: float32 reassociation across a few hundred MACs per
// output, and ONNX Runtime's fused Conv+BN, stay far below it; a wrong layout or weight does not.
const RELATIVE_TOLERANCE = 1e-4;

const readFloats = (file) => {
  const b = readFileSync(file);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};

const cases = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let failed = false;
for (const c of cases) {
  const session = await ort.InferenceSession.create(c.model, { intraOpNumThreads: 2, interOpNumThreads: 1 });
  const feeds = {};
  for (const i of c.inputs) feeds[i.name] = new ort.Tensor('float32', readFloats(i.file), i.shape);
  const results = await session.run(feeds);
  for (const o of c.outputs) {
    const got = results[o.name];
    const want = readFloats(o.file);
    if (!got || got.data.length !== want.length || got.dims.join(',') !== o.shape.join(',')) {
      console.error(`${c.name}.${o.name}: shape ${got?.dims} vs ${o.shape}`);
      failed = true;
      continue;
    }
    let maxDiff = 0;
    let maxAbs = 0;
    for (let i = 0; i < want.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(got.data[i] - want[i]));
      maxAbs = Math.max(maxAbs, Math.abs(want[i]));
    }
    const ok = maxDiff <= RELATIVE_TOLERANCE * Math.max(1, maxAbs);
    console.log(`onnxruntime-node ${c.name}.${o.name} [${o.shape}]: max |ort - torch| = ${maxDiff.toExponential(2)} (max |torch| ${maxAbs.toFixed(3)}) ${ok ? 'ok' : 'MISMATCH'}`);
    if (!ok) failed = true;
  }
}
process.exit(failed ? 1 : 0);
