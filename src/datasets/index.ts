// Public face of the datasets stage: open any supported layout, read point clouds, inspect a sequence.
import { readdir, stat } from 'node:fs/promises';
import { DatasetLayoutError } from './errors.ts';
import { isDairV2XCLayout, openDairV2XC } from './dair.ts';
import { isOpv2vLayout, openOpv2v } from './opv2v.ts';
import type { Dataset, DatasetFormat, OpenOptions } from './types.ts';

export * from './types.ts';
export * from './errors.ts';
export { type PcdField, type PointCloud, encodePcd, parsePcd, parsePcdXyzi, pointCloudToXyzi, readPcd, readPcdXyzi } from './pcd.ts';
export { isOpv2vLayout, openOpv2v } from './opv2v.ts';
export { isDairV2XCLayout, openDairV2XC } from './dair.ts';
export { type InspectReport, type ScenarioReport, inspectDataset } from './inspect.ts';
export { type OcclusionReport, occlusionStatistics } from './occlusion.ts';
export { type LooseFilesReport, inspectLooseFiles } from './loose-files.ts';
export { imageSize, pngSize } from './image-size.ts';

/** Which layout a folder is in, or null when it is none we read. */
export async function detectFormat(path: string): Promise<'opv2v' | 'dair-v2x-c' | null> {
  if (await isDairV2XCLayout(path)) return 'dair-v2x-c';
  if (await isOpv2vLayout(path)) return 'opv2v';
  return null;
}

/** Opens a dataset folder in whichever supported layout it is. */
export async function openDataset(path: string, opts: OpenOptions = {}): Promise<Dataset> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new DatasetLayoutError(path, 'no such file or folder');
  if (!info.isDirectory()) throw new DatasetLayoutError(path, 'not a folder', 'give the dataset root, a split folder or a scenario folder');
  const format = await detectFormat(path);
  if (format === 'dair-v2x-c') return openDairV2XC(path, opts);
  if (format === 'opv2v') return openOpv2v(path, opts);
  // Neither layout matched: let the reader the folder most resembles say precisely what is missing.
  const entries = new Set(await readdir(path).catch(() => [] as string[]));
  if (entries.has('cooperative') || entries.has('vehicle-side') || entries.has('infrastructure-side')) return openDairV2XC(path, opts);
  return openOpv2v(path, opts);
}

export type { DatasetFormat };
