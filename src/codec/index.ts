// The codec stage: how BEV features, point clouds and (through the object-list proto, no codec) objects are
// squeezed into bytes. Pure functions on typed arrays; each encoder reports its exact payload bytes and each
// decoder checks what it reads and throws CodecError (userFacing, with a `kind` to count rejections by).
//
// Feature codecs are named by strings a user types (spec.ts): `raw`, `fp16`, `int8`, `int4`, plus cell selection
// (`top10%`, `top500`, `thr0.3`) and an entropy stage (`deflate`, `brotli`), e.g. `int8+top10%+deflate`.
// Channel reduction with a learned encoder/decoder (`c4`, `c16`, `c64`) runs outside the codec (perception's
// ChannelReducer, models from the manifest); the codec encodes the reduced map and accepts `c<ratio>` only when the
// caller's capabilities list that ratio. See README.md.
export { CodecError, type CodecErrorKind } from './errors.ts';
export {
  type CellSelection,
  type CodecCapabilities,
  type EntropyCoderName,
  type EntropyStage,
  type FeatureCodecSpec,
  type PointCodecSpec,
  type QuantizationName,
  DEFAULT_BROTLI_QUALITY,
  DEFAULT_DEFLATE_LEVEL,
  assertCodecAvailable,
  canonicalCodecSpec,
  formatCodecSpec,
  formatPointCodecSpec,
  parseCodecSpec,
  parsePointCodecSpec,
} from './spec.ts';
export {
  type DecodeFeaturesOptions,
  type DecodedFeatures,
  type EncodeFeaturesOptions,
  type EncodedFeatures,
  type FeatureEncodingFields,
  type FeatureEncodingHeader,
  DEFAULT_MAX_FEATURE_VALUES,
  decodeFeatures,
  encodeFeatures,
} from './features.ts';
export {
  type DecodePointsOptions,
  type DecodedPoints,
  type EncodePointsOptions,
  type EncodedPoints,
  type PointCloudEncodingFields,
  type PointCloudEncodingHeader,
  DEFAULT_MAX_POINTS,
  decodePoints,
  encodePoints,
} from './points.ts';
export { selectCells, topPercentCount } from './selection.ts';
export { FLOAT16_MAX, float16Table, toFloat16Bits } from './float16.ts';
export {
  CellIndexCoding,
  type CellIndexCodingValue,
  EntropyCoding,
  type EntropyCodingValue,
  Quantization,
  type QuantizationValue,
} from './wire.ts';
