// The lossless last stage: node:zlib deflate (zlib format, with its Adler-32) or brotli, synchronous. Node 20's
// zlib has no zstd (zstdCompressSync arrived in Node 22.15 / 23.8), so it is not offered.
// Decompression is bounded by the length the header announces, so a small corrupt or hostile payload cannot
// expand into gigabytes.
import { brotliCompressSync, brotliDecompressSync, constants, crc32, deflateSync, inflateSync } from 'node:zlib';
import { CodecError } from './errors.ts';
import type { EntropyStage } from './spec.ts';

function asPlainBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}

export interface CompressOptions {
  /**
   * The bytes are values of selected cells without long runs to match (a top-k / threshold feature payload):
   * deflate with Z_RLE, which on int8+top10% maps of the shipped model gave 4.5 % fewer bytes than the default
   * strategy at level 6 in a quarter of the time (63.0 vs 66.0 kB, 1.0 vs 4.3 ms; fp16+top10%, int8+top25% and
   * int4+top5% likewise smaller). Dense maps keep the default: their runs of empty cells are what LZ77 matches
   * (int8 dense: 339 kB default, 479 kB Z_RLE). Inflate reads either, so the wire format is the same.
   */
  runLengthOnly?: boolean;
}

export function compress(packed: Uint8Array, stage: EntropyStage, opts: CompressOptions = {}): Uint8Array {
  if (stage.coder === 'deflate') {
    return asPlainBytes(deflateSync(packed, { level: stage.level, ...(opts.runLengthOnly ? { strategy: constants.Z_RLE } : {}) }));
  }
  return asPlainBytes(
    brotliCompressSync(packed, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: stage.level,
        [constants.BROTLI_PARAM_SIZE_HINT]: packed.byteLength,
      },
    }),
  );
}

/** Decompresses to exactly `expectedLength` bytes or throws CodecError (kind 'corrupt') naming `what`. */
export function decompress(payload: Uint8Array, coder: 'deflate' | 'brotli', expectedLength: number, what: string): Uint8Array {
  let out: Buffer;
  try {
    // maxOutputLength ≥ 1: zlib refuses 0, and an empty packed buffer still has a non-empty compressed form.
    const options = { maxOutputLength: Math.max(1, expectedLength) };
    out = coder === 'deflate' ? inflateSync(payload, options) : brotliDecompressSync(payload, options);
  } catch (err) {
    const reason = (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' ? `it expands past the ${expectedLength} bytes the header announces` : (err as Error).message;
    throw new CodecError('corrupt', `corrupt ${what}: ${coder} stream does not decompress: ${reason}`);
  }
  if (out.byteLength !== expectedLength) {
    throw new CodecError('corrupt', `corrupt ${what}: ${coder} stream holds ${out.byteLength} bytes, the header announces ${expectedLength}`);
  }
  return asPlainBytes(out);
}

/** CRC-32 (zlib's polynomial, as gzip and PNG) of the bytes as sent. */
export function payloadCrc32(payload: Uint8Array): number {
  return crc32(payload) >>> 0;
}
