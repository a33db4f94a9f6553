// The fusion stage's public face: aligning collaborators' BEV features with the ego grid and max fusion.
// Attention fusion runs the fusion_attention.onnx model: FusionAttention in the perception stage.
export { type WarpResult, FusionInputError, maxFuse, warpToEgo } from './warp.ts';
