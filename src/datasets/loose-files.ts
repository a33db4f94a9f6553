// Some samples are not cooperative sequences at all: a folder of point clouds with no yaml beside them, or a few
// camera images. inspect still tells a user what is there, and says what a sequence would need in addition.
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readPcd } from './pcd.ts';
import { pngSize } from './image-size.ts';

export interface LooseFilesReport {
  format: 'point-clouds' | 'images';
  root: string;
  /** What is missing for the folder to be a cooperative sequence. */
  note: string;
  files: Array<{ name: string; points?: number; fields?: string[]; data?: string; width?: number; height?: number }>;
}

/** A report on the folder's loose .pcd or .png files, or null when it has neither. */
export async function inspectLooseFiles(root: string): Promise<LooseFilesReport | null> {
  const names = (await readdir(root).catch(() => [] as string[])).sort();
  const pcds = names.filter((n) => n.endsWith('.pcd'));
  const pngs = names.filter((n) => n.endsWith('.png'));
  if (pcds.length > 0) {
    const files: LooseFilesReport['files'] = [];
    for (const name of pcds) {
      const pc = await readPcd(join(root, name));
      files.push({ name, points: pc.points, fields: pc.fields.map((f) => f.name), data: pc.data });
    }
    return { format: 'point-clouds', root, files, note: 'no NNNNNN.yaml beside the point clouds: poses, agents and ground truth are unknown, so this is not a cooperative sequence' };
  }
  if (pngs.length > 0) {
    const files: LooseFilesReport['files'] = [];
    for (const name of pngs) files.push({ name, ...(await pngSize(join(root, name))) });
    return { format: 'images', root, files, note: 'images only: no point clouds, poses or ground truth' };
  }
  return null;
}
