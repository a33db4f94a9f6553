import { open } from 'node:fs/promises';
import sharp from 'sharp';
import { DatasetFormatError, DatasetLayoutError } from './errors.ts';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from a PNG's IHDR chunk (the first 24 bytes), without decoding the image. */
export async function pngSize(file: string): Promise<{ width: number; height: number }> {
  const fh = await open(file, 'r').catch(() => {
    throw new DatasetLayoutError(file, 'image missing');
  });
  try {
    const buf = Buffer.alloc(24);
    const { bytesRead } = await fh.read(buf, 0, 24, 0);
    if (bytesRead < 24 || PNG_SIGNATURE.some((b, i) => buf[i] !== b) || buf.toString('latin1', 12, 16) !== 'IHDR') {
      throw new DatasetFormatError(file, 'png header', 'not a PNG file');
    }
    return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
  } finally {
    await fh.close();
  }
}

/** Width and height of any image sharp reads (JPEG, PNG, …) from its header; PNGs without sharp. */
export async function imageSize(file: string): Promise<{ width: number; height: number }> {
  if (file.toLowerCase().endsWith('.png')) return pngSize(file);
  await open(file, 'r').then((fh) => fh.close(), () => {
    throw new DatasetLayoutError(file, 'image missing');
  });
  try {
    const meta = await sharp(file).metadata();
    return { width: meta.width, height: meta.height };
  } catch (err) {
    throw new DatasetFormatError(file, 'image header', `not a readable image (${(err as Error).message})`);
  }
}
