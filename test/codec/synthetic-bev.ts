// A deterministic stand-in for a backbone's BEV output: ReLU-sparse, mostly zero, a faint speckle of small
// activations and a few strong blobs (objects) that every channel sees with its own gain, plus the per-cell
// confidence map a detection head would give (high on the blobs, low elsewhere).

/** mulberry32: a tiny seeded PRNG, so every run builds the same map. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface SyntheticBev {
  features: Float32Array;
  confidence: Float32Array;
  channels: number;
  height: number;
  width: number;
}

export function syntheticBev(channels: number, height: number, width: number, seed = 7): SyntheticBev {
  const random = seededRandom(seed);
  const cells = height * width;
  const blobs = Array.from({ length: 8 }, () => ({
    row: random() * height,
    col: random() * width,
    sigma: 1 + random() * 3,
  }));
  const shape = new Float32Array(cells);
  const confidence = new Float32Array(cells);
  for (let r = 0; r < height; r++) {
    for (let c = 0; c < width; c++) {
      let s = 0;
      for (const b of blobs) s = Math.max(s, Math.exp(-((r - b.row) ** 2 + (c - b.col) ** 2) / (2 * b.sigma ** 2)));
      shape[r * width + c] = s;
      // Detection-score-like: near 1 on objects, a low noisy floor elsewhere.
      confidence[r * width + c] = Math.min(0.999, s * 0.95 + random() * 0.05);
    }
  }
  const features = new Float32Array(channels * cells);
  for (let ch = 0; ch < channels; ch++) {
    const gain = random() < 0.2 ? 0 : 1 + 7 * random(); // some channels never fire on objects
    for (let i = 0; i < cells; i++) {
      const speckle = random() < 0.1 ? 0.3 * random() : 0;
      const v = gain * shape[i] + speckle - 0.05; // the ReLU's input
      features[ch * cells + i] = v > 0 ? v : 0;
    }
  }
  return { features, confidence, channels, height, width };
}
