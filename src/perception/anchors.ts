// Anchors on the BEV feature grid and the box encoding the detection head regresses (models/README.md,
// "detection_head.onnx"; the SECOND / OpenCOOD residual coder, DerrickXuNu/OpenCOOD
// opencood/data_utils/post_processor/voxel_postprocessor.py delta_to_boxes3d, with boxes as x, y, z, l, w, h, yaw):
//   d = √(la² + wa²)
//   dx = (xg − xa) / d    dy = (yg − ya) / d    dz = (zg − za) / ha
//   dl = ln(lg / la)      dw = ln(wg / wa)      dh = ln(hg / ha)
//   dθ = θg − θa, wrapped to [−π/2, π/2)
// Why wrap dθ by π: a box and the same box turned by π have identical BEV corners, so IoU (what targets and AP are
// made of) cannot tell them apart, and a head asked to regress both would average them. Decoding therefore
// returns the orientation modulo π: decode(encode(b)) is b itself when b's yaw lies within [θa − π/2, θa + π/2),
// and b turned by π otherwise — the same box in BEV, heading reversed.
//
// Anchor index a = (position of the class in the anchor list) · yawsPerClass + yawIndex, which with the contract's
// two yaws per class is a = cls·2 + yawIdx. Tensor layouts: cls_logits channel a, box_deltas channel a·7 + k.

import { type Box7, wrapAngle } from '../geometry/index.ts';
import type { ObjectClass } from '../datasets/index.ts';
import { featureCellSize, featureHeight, featureWidth, type BevGrid } from './grid.ts';

/** Box parameters per regressed quantity, in tensor order. */
export const BOX_CODE_SIZE = 7;

/** One class's anchor shape: every feature cell gets one anchor per yaw. z is in the LiDAR frame. */
export interface AnchorClassSpec {
  cls: ObjectClass;
  l: number;
  w: number;
  h: number;
  z: number;
  yaws: readonly number[];
}

/** The contract's anchors (models/README.md): vehicles and pedestrians, yaws 0 and π/2. */
export const DEFAULT_ANCHORS: readonly AnchorClassSpec[] = Object.freeze([
  Object.freeze({ cls: 'vehicle', l: 4.5, w: 2.0, h: 1.6, z: -0.9, yaws: Object.freeze([0, Math.PI / 2]) }),
  Object.freeze({ cls: 'pedestrian', l: 0.6, w: 0.6, h: 1.75, z: -1.0, yaws: Object.freeze([0, Math.PI / 2]) }),
]) as readonly AnchorClassSpec[];

/** One anchor channel a: its class and the box it places at every feature cell centre (x, y vary by cell). */
export interface AnchorChannel {
  cls: ObjectClass;
  /** Index of the class in the anchor list (the class axis of per-class decoding and NMS). */
  classIndex: number;
  l: number;
  w: number;
  h: number;
  z: number;
  yaw: number;
  /** √(l² + w²): the x/y residual scale. */
  diagonal: number;
}

/** Anchors laid over a grid's feature map: A channels × H rows × W columns. */
export interface AnchorLayout {
  channels: readonly AnchorChannel[];
  classes: readonly ObjectClass[];
  width: number;
  height: number;
  /** Feature cell edge (cellSize · featureStride); anchor centres sit at cell centres. */
  cellSize: number;
  xMin: number;
  yMin: number;
}

export class AnchorError extends Error {
  constructor(readonly field: string, readonly value: unknown, detail: string) {
    super(`anchors: ${field} = ${String(value)}: ${detail}`);
    this.name = new.target.name;
  }
}

/** Expands per-class specs into anchor channels, in the contract's order (class-major, then yaw). */
export function anchorLayout(grid: BevGrid, specs: readonly AnchorClassSpec[] = DEFAULT_ANCHORS): AnchorLayout {
  const channels: AnchorChannel[] = [];
  const classes: ObjectClass[] = [];
  specs.forEach((spec, classIndex) => {
    if (classes.includes(spec.cls)) throw new AnchorError(`[${classIndex}].cls`, spec.cls, 'listed twice');
    for (const f of ['l', 'w', 'h'] as const) {
      if (!(spec[f] > 0)) throw new AnchorError(`[${classIndex}].${f}`, spec[f], 'must be > 0');
    }
    if (spec.yaws.length === 0) throw new AnchorError(`[${classIndex}].yaws`, '[]', 'needs at least one yaw');
    classes.push(spec.cls);
    for (const yaw of spec.yaws) {
      channels.push({ cls: spec.cls, classIndex, l: spec.l, w: spec.w, h: spec.h, z: spec.z, yaw, diagonal: Math.hypot(spec.l, spec.w) });
    }
  });
  return {
    channels,
    classes,
    width: featureWidth(grid),
    height: featureHeight(grid),
    cellSize: featureCellSize(grid),
    xMin: grid.xMin,
    yMin: grid.yMin,
  };
}

/**
 * Every anchor as x, y, z, l, w, h, yaw records, laid out [A, H, W, 7] (a, then row, then column): the order of
 * the head's channels, for training-side target assignment and for tests.
 */
export function generateAnchors(layout: AnchorLayout): Float32Array {
  const { width, height, cellSize, xMin, yMin } = layout;
  const out = new Float32Array(layout.channels.length * height * width * BOX_CODE_SIZE);
  let o = 0;
  for (const ch of layout.channels) {
    for (let row = 0; row < height; row++) {
      const y = yMin + (row + 0.5) * cellSize;
      for (let col = 0; col < width; col++) {
        out[o++] = xMin + (col + 0.5) * cellSize;
        out[o++] = y;
        out[o++] = ch.z;
        out[o++] = ch.l;
        out[o++] = ch.w;
        out[o++] = ch.h;
        out[o++] = ch.yaw;
      }
    }
  }
  return out;
}

/** The anchor box of channel a at feature cell (row, col). */
export function anchorBox(layout: AnchorLayout, a: number, row: number, col: number): Box7 {
  const ch = layout.channels[a];
  return {
    x: layout.xMin + (col + 0.5) * layout.cellSize,
    y: layout.yMin + (row + 0.5) * layout.cellSize,
    z: ch.z,
    l: ch.l,
    w: ch.w,
    h: ch.h,
    yaw: ch.yaw,
  };
}

/** Angle wrapped to [−π/2, π/2): the orientation difference modulo π. */
export function wrapHalfTurn(a: number): number {
  return a - Math.PI * Math.floor((a + Math.PI / 2) / Math.PI);
}

/** Residuals (dx, dy, dz, dl, dw, dh, dθ) that take `anchor` to `box`. */
export function encodeBox(box: Box7, anchor: Box7, out: Float64Array = new Float64Array(BOX_CODE_SIZE)): Float64Array {
  const d = Math.hypot(anchor.l, anchor.w);
  out[0] = (box.x - anchor.x) / d;
  out[1] = (box.y - anchor.y) / d;
  out[2] = (box.z - anchor.z) / anchor.h;
  out[3] = Math.log(box.l / anchor.l);
  out[4] = Math.log(box.w / anchor.w);
  out[5] = Math.log(box.h / anchor.h);
  out[6] = wrapHalfTurn(box.yaw - anchor.yaw);
  return out;
}

/** The box the residuals `deltas` (7 values from `offset`) describe relative to `anchor`; yaw wrapped to [−π, π). */
export function decodeBox(deltas: ArrayLike<number>, anchor: Box7, offset = 0): Box7 {
  const d = Math.hypot(anchor.l, anchor.w);
  return {
    x: deltas[offset] * d + anchor.x,
    y: deltas[offset + 1] * d + anchor.y,
    z: deltas[offset + 2] * anchor.h + anchor.z,
    l: Math.exp(deltas[offset + 3]) * anchor.l,
    w: Math.exp(deltas[offset + 4]) * anchor.w,
    h: Math.exp(deltas[offset + 5]) * anchor.h,
    yaw: wrapAngle(deltas[offset + 6] + anchor.yaw),
  };
}
