import { open } from 'node:fs/promises';
import { DatasetFormatError } from './errors.ts';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Width and height from a PNG's IHDR chunk (the first 24 bytes), without decoding the image. */
export async function pngSize(file: string): Promise<{ width: number; height: number }> {
  const fh = await open(file, 'r');
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
