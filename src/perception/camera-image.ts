// Camera images as the camera encoder's `images` input: decoded and resized with sharp, laid out CHW in RGB order,
// normalised per channel as torchvision does ((value / 255 − mean) / std, ImageNet statistics by default).
//
// The resize is sharp's fit 'fill': the whole image is stretched onto the target size (aspect ratio not kept,
// nothing cropped), edges onto edges. That is the resize camera-lift.ts assumes when it normalises projected
// pixels by the ORIGINAL image size; a crop or letterbox would need a different sampling grid.
// Measured on sharp 0.35 with a linear ramp: downscales and integer upscales are centre-aligned (original pixel
// coordinate (i + 0.5)·W/W' − 0.5 for output pixel i) to within uint8 rounding; non-integer upscales land within
// about ±0.5 original pixel of it, small next to the encoder's feature stride.
// Pixels are used as stored: no EXIF auto-rotation (calibration refers to the stored pixels) and no undistortion.

import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { DatasetLayoutError, imageSize } from '../datasets/index.ts';

export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/** An image that is missing, unreadable, not an image, or not the size its calibration says; names the file. */
export class CameraImageError extends Error {
  readonly userFacing = true;
  constructor(readonly imagePath: string, detail: string) {
    super(`camera image ${imagePath}: ${detail}`);
    this.name = new.target.name;
  }
}

/** Options a caller got wrong (sizes, statistics): a programming error. */
export class CameraTensorOptionsError extends Error {
  constructor(readonly field: string, readonly value: unknown, detail: string) {
    super(`camera tensor: ${field} = ${String(value)}: ${detail}`);
    this.name = new.target.name;
  }
}

export interface CameraTensorOptions {
  /** Size of the tensor the model sees (the image is resized to exactly this). */
  width: number;
  height: number;
  /** Per-channel RGB mean and standard deviation of value / 255; ImageNet's by default. */
  mean?: readonly number[];
  std?: readonly number[];
}

export interface ImageSize {
  width: number;
  height: number;
}

interface ResolvedOptions {
  width: number;
  height: number;
  /** value · scale[ch] + offset[ch] = (value / 255 − mean) / std */
  scale: [number, number, number];
  offset: [number, number, number];
}

function resolveOptions(opts: CameraTensorOptions): ResolvedOptions {
  for (const f of ['width', 'height'] as const) {
    if (!Number.isInteger(opts[f]) || opts[f] < 1) throw new CameraTensorOptionsError(f, opts[f], 'must be a positive integer');
  }
  const mean = opts.mean ?? IMAGENET_MEAN;
  const std = opts.std ?? IMAGENET_STD;
  if (mean.length !== 3 || !mean.every(Number.isFinite)) throw new CameraTensorOptionsError('mean', mean.join(', '), 'needs 3 finite numbers (R, G, B)');
  if (std.length !== 3 || !std.every((v) => Number.isFinite(v) && v > 0)) throw new CameraTensorOptionsError('std', std.join(', '), 'needs 3 finite numbers > 0 (R, G, B)');
  return {
    width: opts.width,
    height: opts.height,
    scale: [1 / (255 * std[0]), 1 / (255 * std[1]), 1 / (255 * std[2])],
    offset: [-mean[0] / std[0], -mean[1] / std[1], -mean[2] / std[2]],
  };
}

async function readImageFile(imagePath: string): Promise<Buffer> {
  try {
    return await readFile(imagePath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CameraImageError(imagePath, code === 'ENOENT' ? 'no such file' : `cannot be read (${(err as Error).message})`);
  }
}

/** Decodes, resizes and normalises one image into `out` (3·height·width floats); returns the original size. */
async function decodeInto(imagePath: string, o: ResolvedOptions, out: Float32Array): Promise<ImageSize> {
  const bytes = await readImageFile(imagePath);
  let original: ImageSize;
  let rgb: Buffer;
  try {
    const image = sharp(bytes);
    const meta = await image.metadata();
    original = { width: meta.width, height: meta.height };
    // Grey, palette, 16-bit and alpha images all come out as 8-bit sRGB with 3 channels.
    const { data, info } = await image
      .removeAlpha()
      .toColourspace('srgb')
      .resize(o.width, o.height, { fit: 'fill' })
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== o.width || info.height !== o.height) {
      throw new Error(`decoded to ${info.width} × ${info.height} × ${info.channels}, expected ${o.width} × ${o.height} × 3`);
    }
    rgb = data;
  } catch (err) {
    throw new CameraImageError(imagePath, `not a readable image (${(err as Error).message})`);
  }
  const plane = o.width * o.height;
  const [s0, s1, s2] = o.scale;
  const [f0, f1, f2] = o.offset;
  for (let i = 0, j = 0; i < plane; i++, j += 3) {
    out[i] = rgb[j] * s0 + f0;
    out[plane + i] = rgb[j + 1] * s1 + f1;
    out[2 * plane + i] = rgb[j + 2] * s2 + f2;
  }
  return original;
}

function outputBuffer(out: Float32Array | undefined, length: number, what: string): Float32Array {
  if (out === undefined) return new Float32Array(length);
  if (out.length !== length) throw new CameraTensorOptionsError('out', out.length, `${what} needs exactly ${length} floats`);
  return out;
}

/** One image as a [3, height, width] float32 tensor (RGB planes, normalised). `out` is reused when given. */
export async function loadCameraTensor(imagePath: string, opts: CameraTensorOptions, out?: Float32Array): Promise<Float32Array> {
  const o = resolveOptions(opts);
  const tensor = outputBuffer(out, 3 * o.width * o.height, `a [3, ${o.height}, ${o.width}] tensor`);
  await decodeInto(imagePath, o, tensor);
  return tensor;
}

/**
 * The images of `cameras` as one [N, 3, height, width] tensor, in the cameras' order (the order the sampling grid
 * uses). A camera that states its image size must match the file: the lift normalises by that size, so a mismatch
 * would put every feature in the wrong place.
 */
export async function loadCameraBatch(
  cameras: readonly { path: string; width?: number; height?: number }[],
  opts: CameraTensorOptions,
  out?: Float32Array,
): Promise<Float32Array> {
  const o = resolveOptions(opts);
  const per = 3 * o.width * o.height;
  const batch = outputBuffer(out, cameras.length * per, `a [${cameras.length}, 3, ${o.height}, ${o.width}] batch`);
  await Promise.all(
    cameras.map(async (cam, i) => {
      const size = await decodeInto(cam.path, o, batch.subarray(i * per, (i + 1) * per));
      if ((cam.width !== undefined && cam.width !== size.width) || (cam.height !== undefined && cam.height !== size.height)) {
        throw new CameraImageError(cam.path, `is ${size.width} × ${size.height} but its calibration says ${cam.width} × ${cam.height}`);
      }
    }),
  );
  return batch;
}

/** Width and height of an image from its header (the pixels are not decoded). */
export async function readImageSize(imagePath: string): Promise<ImageSize> {
  try {
    return await imageSize(imagePath);
  } catch (err) {
    if (err instanceof DatasetLayoutError) throw new CameraImageError(imagePath, 'no such file');
    throw new CameraImageError(imagePath, `not a readable image (${(err as Error).message})`);
  }
}

/**
 * The cameras with width and height filled in from their image headers where the dataset does not state them
 * (DAIR's vehicle intrinsics carry no size); cameras that state one are returned as they are.
 */
export async function completeImageSizes<C extends { path: string; width?: number; height?: number }>(cameras: readonly C[]): Promise<C[]> {
  return Promise.all(
    cameras.map(async (cam) => {
      if (cam.width !== undefined && cam.height !== undefined) return cam;
      const size = await readImageSize(cam.path);
      return { ...cam, width: size.width, height: size.height };
    }),
  );
}
