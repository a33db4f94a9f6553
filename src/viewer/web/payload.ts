// What the page decodes from message payloads: which BEV cells a feature message carried (its index section, the
// front of the packed payload: proto/v2xfuse/v1/features.proto), the points of an early-fusion point cloud
// (points.proto, planes delta-coded as src/codec writes them) and a result's confidence map (fusion.proto). zlib streams go through the browser's DecompressionStream ('deflate' is the zlib format);
// brotli has no browser decoder, so such masks and clouds stay unknown.
import { type ConfidenceMap, type FeatureFrame, type PointCloudFrame, wire } from './wire.ts';

async function unpack(payload: Uint8Array, entropy: number | null | undefined): Promise<Uint8Array | undefined> {
  if (entropy === wire.EntropyCoding.ENTROPY_CODING_NONE) return payload;
  if (entropy !== wire.EntropyCoding.ENTROPY_CODING_DEFLATE) return undefined;
  const stream = new Blob([payload as BlobPart]).stream().pipeThrough(new DecompressionStream('deflate'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** H·W bytes, 1 where the sender sent the cell's features; undefined when the payload cannot be read here. */
export async function sentCells(frame: FeatureFrame): Promise<Uint8Array | undefined> {
  const enc = frame.encoding;
  if (!enc) return undefined;
  const cells = (enc.height ?? 0) * (enc.width ?? 0);
  if (cells === 0) return undefined;
  const mask = new Uint8Array(cells);
  if (enc.cellIndexCoding === wire.CellIndexCoding.CELL_INDEX_CODING_ALL_CELLS) return mask.fill(1);
  const packed = await unpack(frame.payload, enc.entropyCoding);
  if (!packed) return undefined;
  if (enc.cellIndexCoding === wire.CellIndexCoding.CELL_INDEX_CODING_BITMASK) {
    for (let i = 0; i < cells; i++) mask[i] = (packed[i >> 3] >> (i & 7)) & 1;
    return mask;
  }
  if (enc.cellIndexCoding === wire.CellIndexCoding.CELL_INDEX_CODING_DELTA_VARINT) {
    let at = 0, previous = -1;
    for (let k = 0; k < (enc.selectedCells ?? 0); k++) {
      let delta = 0, shift = 0, byte: number;
      do {
        if (at >= packed.length) return undefined;
        byte = packed[at++];
        delta += (byte & 0x7f) * 2 ** shift;
        shift += 7;
      } while (byte & 0x80);
      previous += delta + 1;
      if (previous >= cells) return undefined;
      mask[previous] = 1;
    }
    return mask;
  }
  return undefined;
}

/** width·height bytes (probability · 255, row r along y) of a result's confidence map; undefined when unreadable here. */
export async function confidenceCells(map: ConfidenceMap): Promise<Uint8Array | undefined> {
  const cells = (map.width ?? 0) * (map.height ?? 0);
  if (cells === 0 || !map.cells) return undefined;
  const bytes = await unpack(map.cells, map.entropyCoding);
  return bytes && bytes.length === cells ? bytes : undefined;
}

/** x, y, z, intensity (0..1) per point, in the sender's LiDAR frame. */
export async function cloudPoints(frame: PointCloudFrame): Promise<Float32Array | undefined> {
  const enc = frame.encoding;
  if (!enc) return undefined;
  const packed = await unpack(frame.payload, enc.entropyCoding);
  const n = enc.pointCount ?? 0;
  if (!packed || packed.length < 7 * n) return undefined;
  const out = new Float32Array(n * 4);
  const step = enc.stepM ?? 0.01;
  const origin = [enc.originX ?? 0, enc.originY ?? 0, enc.originZ ?? 0];
  for (let axis = 0; axis < 3; axis++) {
    const lo = 2 * axis * n, hi = lo + n;
    // Each plane holds differences from the previous point (mod 2^16, as src/codec writes them).
    let q = 0;
    for (let i = 0; i < n; i++) {
      q = (q + ((packed[hi + i] << 8) | packed[lo + i])) & 0xffff;
      out[i * 4 + axis] = origin[axis] + ((q << 16) >> 16) * step;
    }
  }
  for (let i = 0; i < n; i++) out[i * 4 + 3] = packed[6 * n + i] / 255;
  return out;
}
