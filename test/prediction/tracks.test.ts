import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { CooperativeFrame, CooperativeSequence, GroundTruthBox } from '../../src/datasets/index.ts';
import { openDataset } from '../../src/datasets/index.ts';
import {
  TracksError,
  encodeHistory,
  exportPredictionSamples,
  extractGroundTruthTracks,
  fromTrackFrame,
  parseTracksJson,
  predictionWindows,
  toTrackFrame,
  trackFrameOf,
  tracksToJson,
} from '../../src/prediction/index.ts';

const FIXTURE = path.resolve('datasets/fixture/fixture-s1');

function gtBox(id: string, x: number, y: number, yaw = 0): GroundTruthBox {
  return { id, cls: 'vehicle', rawClass: 'car', box: { x, y, z: 0, l: 4, w: 2, h: 1.5, yaw } };
}

/** A sequence whose frame i lists `objects[i]` (one agent) at `times[i]` ns. */
function fakeSequence(objects: GroundTruthBox[][], times: bigint[]): CooperativeSequence {
  const frame = async (i: number): Promise<CooperativeFrame> =>
    ({ frameId: String(i), index: i, timestampNs: times[i], agents: [{ agentId: '1', kind: 'vehicle', boxes: objects[i] }] }) as unknown as CooperativeFrame;
  return { format: 'opv2v', name: 'fake', root: '/fake', agents: [], frameCount: objects.length, frameIds: [], frame, frames: async function* () {} };
}

describe('extractGroundTruthTracks', () => {
  it('follows every listed object of the fixture sequence frame to frame, deduplicated over agents', async () => {
    const ds = await openDataset(FIXTURE);
    const seq = ds.scenarios[0];
    const tracks = await extractGroundTruthTracks(seq);
    const frames = await Promise.all(Array.from({ length: seq.frameCount }, (_, i) => seq.frame(i)));
    const ids = new Set(frames.flatMap((f) => f.agents.flatMap((a) => a.boxes.map((b) => b.id))));
    assert.equal(new Set(tracks.tracks.map((t) => t.id)).size, ids.size);
    for (const t of tracks.tracks) {
      t.states.forEach((_, k) => {
        if (k % 3 !== 0) return;
        const f = frames[t.firstFrame + k / 3];
        const b = f.agents.flatMap((a) => a.boxes).find((x) => x.id === t.id)!;
        assert.deepEqual([t.states[k], t.states[k + 1], t.states[k + 2]], [b.box.x, b.box.y, b.box.yaw]);
      });
    }
    assert.ok(Math.abs(tracks.frameIntervalS - 0.1) < 1e-6, `interval ${tracks.frameIntervalS}`);
  });

  it('starts a new track when an object misses a frame or time jumps', async () => {
    const ms = (v: number) => BigInt(v) * 1_000_000n;
    const seq = fakeSequence(
      [[gtBox('a', 0, 0), gtBox('b', 9, 9)], [gtBox('a', 1, 0), gtBox('b', 9, 9)], [gtBox('b', 9, 9)], [gtBox('a', 3, 0), gtBox('b', 9, 9)], [gtBox('a', 4, 0), gtBox('b', 9, 9)], [gtBox('a', 5, 0), gtBox('b', 9, 9)]],
      [ms(0), ms(100), ms(200), ms(300), ms(400), ms(900)],
    );
    const t = await extractGroundTruthTracks(seq);
    const summary = t.tracks.map((x) => `${x.id}@${x.firstFrame}:${x.states.length / 3}`);
    assert.deepEqual(summary, ['a@0:2', 'b@0:5', 'a@3:2', 'a@5:1', 'b@5:1']);
    assert.equal(t.frameIntervalS, 0.1);
  });
});

describe('prediction windows and the track frame', () => {
  const track = { id: 'x', cls: 'vehicle' as const, rawClass: 'car', firstFrame: 0, states: new Float64Array(15 * 3).map((_, i) => (i % 3 === 0 ? i : i % 3 === 1 ? 2 : 0)) };

  it('cuts every full history + full future, the future being the positions after the anchor', () => {
    const w = [...predictionWindows(track, 4, 5)];
    assert.equal(w.length, 15 - 4 - 5 + 1);
    assert.equal(w[0].anchor, 3);
    assert.deepEqual([...w[0].history], [...track.states.subarray(0, 12)]);
    assert.deepEqual([...w[0].future.subarray(0, 4)], [track.states[12], 2, track.states[15], 2]);
    assert.deepEqual([...predictionWindows(track, 4, 5, 3)].map((x) => x.anchor), [3, 6, 9]);
  });

  it('track frame: origin at the last position, x along the motion; out and back is the identity', () => {
    // Moving along +y at 10 m/s with a box yaw that says otherwise: the frame follows the motion.
    const h = Float64Array.from([0, 0, 0, 0, 1, 3, 0, 2, 3].map((v, i) => (i % 3 === 0 ? 5 : v)));
    const frame = trackFrameOf(h, 10);
    assert.deepEqual([frame.x, frame.y], [5, 2]);
    assert.ok(Math.abs(frame.heading - Math.PI / 2) < 1e-12);
    const enc = new Float32Array(4 * 3).fill(9);
    encodeHistory(h, 4, frame, enc);
    const r = [...enc].map((v) => Math.round(v * 1e6) / 1e6 + 0);
    assert.deepEqual(r, [0, 0, 0, /* */ -2, 0, 1, -1, 0, 1, 0, 0, 1], 'padding first, then (x, y, valid) with x forward');
    const p = new Float64Array(2);
    toTrackFrame(frame, 1.5, -7, p);
    fromTrackFrame(frame, p[0], p[1], p);
    assert.ok(Math.abs(p[0] - 1.5) < 1e-12 && Math.abs(p[1] + 7) < 1e-12);
  });
});

describe('tracks files', () => {
  it('export-tracks writes tracks.json and samples.bin whose arrays decode to the windows', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'v2xfuse-tracks-'));
    try {
      const ds = await openDataset(FIXTURE);
      const summary = await exportPredictionSamples(ds, dir, { historySteps: 2, futureSteps: 1 });
      const index = JSON.parse(await readFile(path.join(dir, 'tracks.json'), 'utf8'));
      const back = parseTracksJson(index, 'tracks.json');
      const expected = back.flatMap((s) => s.tracks.flatMap((t) => [...predictionWindows(t, 2, 1)])).length;
      assert.equal(summary.samples, expected);
      assert.ok(expected > 0, 'the 3-frame fixture has windows of 2 + 1 steps');
      const bin = await readFile(path.join(dir, 'samples.bin'));
      const arrays = Object.fromEntries(index.samples.arrays.map((a: { name: string; offset: number; byteLength: number }) => [a.name, bin.subarray(a.offset, a.offset + a.byteLength)]));
      const hist = new Float32Array(arrays.history.buffer.slice(arrays.history.byteOffset, arrays.history.byteOffset + arrays.history.byteLength));
      const fut = new Float32Array(arrays.future.buffer.slice(arrays.future.byteOffset, arrays.future.byteOffset + arrays.future.byteLength));
      assert.equal(hist.length, expected * 2 * 3);
      for (let i = 0; i < expected; i++) {
        assert.deepEqual([hist[i * 6 + 3] + 0, hist[i * 6 + 4] + 0, hist[i * 6 + 5]], [0, 0, 1], 'the last history step is the origin');
        // The track frame's x is along the motion, so a vehicle moving on keeps y near 0 one step ahead.
        assert.ok(Number.isFinite(fut[i * 2]) && Number.isFinite(fut[i * 2 + 1]));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('round-trips through JSON to the millimetre, and names the file on a bad one', async () => {
    const ds = await openDataset(FIXTURE);
    const tracks = await extractGroundTruthTracks(ds.scenarios[0]);
    const back = parseTracksJson(JSON.parse(JSON.stringify(tracksToJson([tracks]))), 'x.json')[0];
    assert.equal(back.tracks.length, tracks.tracks.length);
    back.tracks.forEach((t, i) => t.states.forEach((v, k) => assert.ok(Math.abs(v - tracks.tracks[i].states[k]) <= 5e-4)));
    assert.throws(() => parseTracksJson({ format: 'other' }, 'bad.json'), (e: unknown) => e instanceof TracksError && /bad\.json: format/.test(e.message));
    assert.throws(
      () => parseTracksJson({ format: 'v2xfuse-tracks', version: 1, sequences: [{ tracks: [{ id: 'a', cls: 'vehicle', x: [1], y: [], yaw: [0] }] }] }, 'b.json'),
      /b\.json: sequences\[0\]\.tracks\[0\]/,
    );
  });
});
