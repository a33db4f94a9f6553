// The proto enum values the codec headers carry (proto/v2xfuse/v1/common.proto, features.proto). Kept here so the
// codec stays a set of pure functions with no generated code in it; test/messages/codec-header.test.ts fails if
// they ever disagree with the generated enums.

export const Quantization = { FLOAT32: 1, FP16: 2, INT8: 3, INT4: 4 } as const;
export type QuantizationValue = (typeof Quantization)[keyof typeof Quantization];

export const CellIndexCoding = { ALL_CELLS: 1, DELTA_VARINT: 2, BITMASK: 3 } as const;
export type CellIndexCodingValue = (typeof CellIndexCoding)[keyof typeof CellIndexCoding];

export const EntropyCoding = { NONE: 1, DEFLATE: 2, BROTLI: 3 } as const;
export type EntropyCodingValue = (typeof EntropyCoding)[keyof typeof EntropyCoding];

// Hosts this runs on (x86-64, arm64, every browser) are little-endian, as the wire format is; typed-array views
// are used on the wire bytes directly, so a big-endian host would misread them. Refuse it loudly instead.
export function assertLittleEndianHost(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error('v2xfuse codecs assume a little-endian host (the wire format is little-endian)');
  }
}
