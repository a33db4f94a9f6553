// Ground-truth object tracks of a dataset sequence (world frame, one state per frame), the prediction windows cut
// from them, and their export for tools/train/train_predictor.py: `tracks.json` (the tracks, world frame) and
// `samples.bin` (model-ready windows, encoded by track-frame.ts). Python only reads these files.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CooperativeSequence, Dataset, DatasetFormat, ObjectClass } from '../datasets/index.ts';
import { AGENT_CLASSES, ENCODED_STEP_SIZE, encodeAgentClass, encodeHistory, toTrackFrame, trackFrameOf } from './track-frame.ts';
import { HISTORY_STRIDE, PredictionInputError } from './types.ts';

export const TRACKS_FORMAT = 'v2xfuse-tracks';
export const TRACKS_FORMAT_VERSION = 1;

/** A tracks file or dataset that cannot give prediction samples; the message names the file or sequence. */
export class TracksError extends Error {
  readonly userFacing = true;
  constructor(readonly source: string, detail: string) {
    super(`${source}: ${detail}`);
    this.name = new.target.name;
  }
}

/** One object over consecutive frames of a sequence (an object that leaves and comes back gives two tracks). */
export interface ObjectTrack {
  id: string;
  cls: ObjectClass;
  rawClass: string;
  /** Index of the sequence frame of the first state. */
  firstFrame: number;
  /** (x, y, yaw) per frame, world frame. */
  states: Float64Array;
}

export interface SequenceTracks {
  name: string;
  root: string;
  format: DatasetFormat;
  frameCount: number;
  /** Median time between frames, seconds. */
  frameIntervalS: number;
  tracks: ObjectTrack[];
}

/** Steps of a track. */
export function trackLength(t: ObjectTrack): number {
  return t.states.length / HISTORY_STRIDE;
}

/**
 * Every object any agent of a frame lists (plus the frame's cooperative labels), deduplicated by id, followed from
 * frame to frame. A missing frame for an object, or a gap in time over 1.5 frame intervals, starts a new track.
 */
export async function extractGroundTruthTracks(seq: CooperativeSequence, onFrame?: (done: number, total: number) => void): Promise<SequenceTracks> {
  const times: bigint[] = [];
  interface Open { track: ObjectTrack; states: number[]; lastFrame: number }
  const open = new Map<string, Open>();
  const closed: Open[] = [];
  const perFrame: Map<string, { cls: ObjectClass; rawClass: string; x: number; y: number; yaw: number }>[] = [];
  for (let i = 0; i < seq.frameCount; i++) {
    const frame = await seq.frame(i);
    times.push(frame.timestampNs);
    const objects = new Map<string, { cls: ObjectClass; rawClass: string; x: number; y: number; yaw: number }>();
    for (const b of [...(frame.cooperativeBoxes ?? []), ...frame.agents.flatMap((a) => a.boxes)]) {
      if (!objects.has(b.id)) objects.set(b.id, { cls: b.cls, rawClass: b.rawClass, x: b.box.x, y: b.box.y, yaw: b.box.yaw });
    }
    perFrame.push(objects);
    onFrame?.(i + 1, seq.frameCount);
  }
  const gaps = times.slice(1).map((t, i) => Number(t - times[i]) / 1e9).sort((a, b) => a - b);
  const interval = gaps.length ? gaps[Math.floor(gaps.length / 2)] : 0.1;
  for (let i = 0; i < perFrame.length; i++) {
    const jump = i > 0 && Number(times[i] - times[i - 1]) / 1e9 > 1.5 * interval;
    for (const [id, o] of open) {
      if (jump || o.lastFrame !== i - 1 || !perFrame[i].has(id)) {
        closed.push(o);
        open.delete(id);
      }
    }
    for (const [id, b] of perFrame[i]) {
      let o = open.get(id);
      if (!o) {
        o = { track: { id, cls: b.cls, rawClass: b.rawClass, firstFrame: i, states: new Float64Array(0) }, states: [], lastFrame: i };
        open.set(id, o);
      }
      o.states.push(b.x, b.y, b.yaw);
      o.lastFrame = i;
    }
  }
  closed.push(...open.values());
  const tracks = closed
    .map((o) => ({ ...o.track, states: Float64Array.from(o.states) }))
    .sort((a, b) => a.firstFrame - b.firstFrame || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { name: seq.name, root: seq.root, format: seq.format, frameCount: seq.frameCount, frameIntervalS: interval, tracks };
}

/** A history / future pair cut from a track at one anchor frame (the history's last step). */
export interface PredictionWindow {
  track: ObjectTrack;
  /** Index into the track's states of the history's last step. */
  anchor: number;
  /** (x, y, yaw) × historySteps, a view into the track. */
  history: Float64Array;
  /** (x, y) × futureSteps, the true positions after the anchor. */
  future: Float64Array;
}

/** Every window with a full history and a full future, anchors `stride` steps apart. */
export function* predictionWindows(track: ObjectTrack, historySteps: number, futureSteps: number, stride = 1): Generator<PredictionWindow> {
  if (!Number.isInteger(stride) || stride < 1) throw new PredictionInputError('stride', stride, 'must be an integer ≥ 1');
  const n = trackLength(track);
  for (let anchor = historySteps - 1; anchor + futureSteps < n; anchor += stride) {
    const history = track.states.subarray((anchor - historySteps + 1) * HISTORY_STRIDE, (anchor + 1) * HISTORY_STRIDE);
    const future = new Float64Array(futureSteps * 2);
    for (let i = 0; i < futureSteps; i++) {
      future[2 * i] = track.states[(anchor + 1 + i) * HISTORY_STRIDE];
      future[2 * i + 1] = track.states[(anchor + 1 + i) * HISTORY_STRIDE + 1];
    }
    yield { track, anchor, history, future };
  }
}

// ---- files ----------------------------------------------------------------------------------------------------

interface TrackJson {
  id: string;
  cls: ObjectClass;
  rawClass: string;
  firstFrame: number;
  x: number[];
  y: number[];
  yaw: number[];
}

const round = (v: number, digits: number) => Number(v.toFixed(digits));

/** The tracks as the JSON `tracks.json` holds (positions to the millimetre, yaw to 1e-4 rad). */
export function tracksToJson(sequences: readonly SequenceTracks[]): object {
  return {
    format: TRACKS_FORMAT,
    version: TRACKS_FORMAT_VERSION,
    frame: 'world',
    sequences: sequences.map((s) => ({
      name: s.name,
      root: s.root,
      format: s.format,
      frameCount: s.frameCount,
      frameIntervalS: s.frameIntervalS,
      tracks: s.tracks.map((t): TrackJson => {
        const n = trackLength(t);
        const pick = (k: number, digits: number) => Array.from({ length: n }, (_, i) => round(t.states[i * HISTORY_STRIDE + k], digits));
        return { id: t.id, cls: t.cls, rawClass: t.rawClass, firstFrame: t.firstFrame, x: pick(0, 3), y: pick(1, 3), yaw: pick(2, 4) };
      }),
    })),
  };
}

/** Reads back what tracksToJson wrote (e.g. a committed fixture); `source` names the file in errors. */
export function parseTracksJson(json: unknown, source: string): SequenceTracks[] {
  const j = json as { format?: unknown; version?: unknown; sequences?: unknown };
  if (j?.format !== TRACKS_FORMAT) throw new TracksError(source, `format must be '${TRACKS_FORMAT}'`);
  if (j.version !== TRACKS_FORMAT_VERSION) throw new TracksError(source, `version ${String(j.version)} is not ${TRACKS_FORMAT_VERSION}`);
  if (!Array.isArray(j.sequences)) throw new TracksError(source, 'sequences must be an array');
  return j.sequences.map((s: Omit<SequenceTracks, 'tracks'> & { tracks: TrackJson[] }, si: number) => ({
    name: s.name,
    root: s.root,
    format: s.format,
    frameCount: s.frameCount,
    frameIntervalS: s.frameIntervalS,
    tracks: s.tracks.map((t, ti) => {
      if (!Array.isArray(t.x) || t.x.length !== t.y?.length || t.x.length !== t.yaw?.length || t.x.length === 0) {
        throw new TracksError(source, `sequences[${si}].tracks[${ti}]: x, y and yaw must be arrays of one equal, non-zero length`);
      }
      if (!AGENT_CLASSES.includes(t.cls)) throw new TracksError(source, `sequences[${si}].tracks[${ti}].cls: '${String(t.cls)}' is not a class`);
      const states = new Float64Array(t.x.length * HISTORY_STRIDE);
      for (let i = 0; i < t.x.length; i++) states.set([t.x[i], t.y[i], t.yaw[i]], i * HISTORY_STRIDE);
      if (!states.every(Number.isFinite)) throw new TracksError(source, `sequences[${si}].tracks[${ti}]: non-finite state`);
      return { id: String(t.id), cls: t.cls, rawClass: t.rawClass, firstFrame: t.firstFrame, states };
    }),
  }));
}

export async function readTracksFile(file: string): Promise<SequenceTracks[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new TracksError(file, (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message);
  }
  try {
    return parseTracksJson(JSON.parse(text), file);
  } catch (err) {
    if (err instanceof SyntaxError) throw new TracksError(file, `not valid JSON: ${err.message}`);
    throw err;
  }
}

export interface ExportTracksOptions {
  /** History steps per sample (the model's input). Default 10 (1 s at 10 Hz). */
  historySteps?: number;
  /** Future steps per sample. Default 30 (3 s at 10 Hz). */
  futureSteps?: number;
  /** Anchor spacing in frames. Default 1. */
  stride?: number;
  /** The rate the samples are for; sequences whose frame interval differs by over 10 % are refused. Default 10 Hz. */
  rateHz?: number;
  onProgress?: (done: number, total: number, sequence: string) => void;
}

export interface ExportTracksSummary {
  outDir: string;
  sequences: number;
  tracks: number;
  samples: number;
  samplesByClass: Partial<Record<ObjectClass, number>>;
  bytes: number;
}

/**
 * Writes OUT/tracks.json (every sequence's ground-truth tracks, world frame, and a `samples` block describing
 * samples.bin) and OUT/samples.bin: little-endian float32 arrays `history` [N, H, 3] (x, y, valid in the track
 * frame), `agent_class` [N, 4], `future` [N, T, 2] (track frame), then int32 `origin` [N, 3] (sequence, track,
 * anchor).
 */
export async function exportPredictionSamples(dataset: Dataset, outDir: string, opts: ExportTracksOptions = {}): Promise<ExportTracksSummary> {
  const H = opts.historySteps ?? 10;
  const T = opts.futureSteps ?? 30;
  const rateHz = opts.rateHz ?? 10;
  const sequences: SequenceTracks[] = [];
  for (const seq of dataset.scenarios) {
    const tracks = await extractGroundTruthTracks(seq, (done, total) => opts.onProgress?.(done, total, seq.name));
    if (Math.abs(tracks.frameIntervalS * rateHz - 1) > 0.1) {
      throw new TracksError(seq.root, `frames are ${tracks.frameIntervalS.toFixed(3)} s apart; the samples are for ${rateHz} Hz`);
    }
    sequences.push(tracks);
  }
  const windows: { s: number; t: number; w: PredictionWindow }[] = [];
  sequences.forEach((seq, s) =>
    seq.tracks.forEach((track, t) => {
      for (const w of predictionWindows(track, H, T, opts.stride ?? 1)) windows.push({ s, t, w });
    }),
  );
  const N = windows.length;
  const history = new Float32Array(N * H * ENCODED_STEP_SIZE);
  const agentClass = new Float32Array(N * AGENT_CLASSES.length);
  const future = new Float32Array(N * T * 2);
  const origin = new Int32Array(N * 3);
  const samplesByClass: Partial<Record<ObjectClass, number>> = {};
  windows.forEach(({ s, t, w }, i) => {
    const frame = trackFrameOf(w.history, rateHz);
    encodeHistory(w.history, H, frame, history, i * H * ENCODED_STEP_SIZE);
    encodeAgentClass(w.track.cls, agentClass, i * AGENT_CLASSES.length);
    for (let k = 0; k < T; k++) toTrackFrame(frame, w.future[2 * k], w.future[2 * k + 1], future, (i * T + k) * 2);
    origin.set([s, t, w.anchor], i * 3);
    samplesByClass[w.track.cls] = (samplesByClass[w.track.cls] ?? 0) + 1;
  });
  const arrays = [
    { name: 'history', dtype: 'float32', shape: [N, H, ENCODED_STEP_SIZE], data: history },
    { name: 'agent_class', dtype: 'float32', shape: [N, AGENT_CLASSES.length], data: agentClass },
    { name: 'future', dtype: 'float32', shape: [N, T, 2], data: future },
    { name: 'origin', dtype: 'int32', shape: [N, 3], data: origin },
  ];
  let offset = 0;
  const layout = arrays.map((a) => {
    const entry = { name: a.name, dtype: a.dtype, shape: a.shape, offset, byteLength: a.data.byteLength };
    offset += a.data.byteLength;
    return entry;
  });
  const bin = Buffer.alloc(offset);
  arrays.forEach((a, i) => Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).copy(bin, layout[i].offset));
  if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new TracksError(outDir, 'samples.bin is little-endian; this machine is not');
  const index = {
    ...tracksToJson(sequences),
    samples: {
      file: 'samples.bin',
      count: N,
      rateHz,
      historySteps: H,
      futureSteps: T,
      stride: opts.stride ?? 1,
      agentClasses: AGENT_CLASSES,
      encoding: 'src/prediction/track-frame.ts: history rows (x, y, valid) in the track frame (origin = last position, x along the heading), oldest first, missing steps (0, 0, 0) in front; future (x, y) in the same frame',
      endianness: 'little',
      arrays: layout,
    },
  };
  await mkdir(outDir, { recursive: true });
  await writeFile(path.join(outDir, 'samples.bin'), bin);
  const json = JSON.stringify(index);
  await writeFile(path.join(outDir, 'tracks.json'), json);
  return {
    outDir,
    sequences: sequences.length,
    tracks: sequences.reduce((n, s) => n + s.tracks.length, 0),
    samples: N,
    samplesByClass,
    bytes: bin.byteLength + Buffer.byteLength(json),
  };
}
