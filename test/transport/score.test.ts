// Scoring published fusion results against a dataset: a hand-made sequence in which one car drives straight along
// x at 10 m/s past an ego that moves too, so the ego-frame bookkeeping (ground truth, futures) is exercised.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CooperativeFrame, CooperativeSequence } from '../../src/datasets/index.ts';
import { ClassAwareApAccumulator } from '../../src/eval/index.ts';
import { poseToMatrix } from '../../src/geometry/index.ts';
import { type FusionResult, wire } from '../../src/messages/index.ts';
import { type ScoredFrame, scoreFusionResults } from '../../src/transport/score.ts';

const FRAMES = 40;
const EGO_SPEED = 5; // m/s along world x
const CAR_SPEED = 10; // m/s along world x, 8 m to the ego's left
const car = (i: number) => ({ x: 10 + CAR_SPEED * 0.1 * i, y: 8 });
const egoX = (i: number) => EGO_SPEED * 0.1 * i;

function frameAt(i: number): CooperativeFrame {
  const c = car(i);
  return {
    frameId: String(i).padStart(6, '0'),
    index: i,
    timestampNs: BigInt(i) * 100_000_000n,
    agents: [
      {
        agentId: '100', kind: 'vehicle', timestampNs: BigInt(i) * 100_000_000n,
        lidarToWorld: poseToMatrix({ x: egoX(i), y: 0, z: 0, roll: 0, pitch: 0, yaw: 0 }),
        lidarPath: '', loadPoints: async () => new Float32Array(0), cameras: [],
        boxes: [{ id: 'car-1', cls: 'vehicle', rawClass: 'car', box: { x: c.x, y: c.y, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0 } }],
      },
    ],
  };
}

const seq: CooperativeSequence = {
  format: 'opv2v', name: 'straight', root: '/nowhere', agents: [{ id: '100', kind: 'vehicle', frames: FRAMES }],
  frameCount: FRAMES, frameIds: Array.from({ length: FRAMES }, (_, i) => String(i)),
  frame: async (i) => frameAt(i),
  frames: async function* () {
    for (let i = 0; i < FRAMES; i++) yield frameAt(i);
  },
};

/** What a perfect fusion node would publish at frame i: the car where it is, tracked, and its true future. */
function perfectResult(i: number, futureBiasM = 0): FusionResult {
  const c = car(i);
  const inEgo = { x: c.x - egoX(i), y: c.y, z: -1, l: 4.5, w: 2, h: 1.6, yaw: 0 };
  const waypoints = Array.from({ length: 30 }, (_, k) => ({
    timeOffsetS: (k + 1) / 10,
    // Relative to the ego frame AT frame i (it does not move with the ego afterwards).
    x: inEgo.x + CAR_SPEED * (k + 1) * 0.1 + futureBiasM,
    y: inEgo.y,
    yaw: 0,
    positionStd: 0,
  }));
  return wire.FusionResult.fromObject({
    detections: [{ box: inEgo, objectClass: wire.ObjectClass.OBJECT_CLASS_VEHICLE, score: 0.9 }],
    tracks: [{ trackId: 7, box: inEgo, objectClass: wire.ObjectClass.OBJECT_CLASS_VEHICLE, score: 0.9, predictions: [{ probability: 1, waypoints }] }],
  });
}

const grid = { xMin: -51.2, xMax: 51.2, yMin: -51.2, yMax: 51.2, zMin: -3, zMax: 1 };

test('perfect results score AP 1, MOTA 1, and zero displacement error over the futures the sequence has', async () => {
  const frames: ScoredFrame[] = Array.from({ length: FRAMES }, (_, i) => ({ index: i, captureNs: BigInt(i), result: perfectResult(i) }));
  const ap = new ClassAwareApAccumulator(undefined, ['vehicle']);
  const { tracking, prediction } = await scoreFusionResults(seq, '100', frames, grid, ap);
  assert.equal(ap.result().vehicle['0.7'].ap, 1);
  assert.equal(tracking!.mota, 1);
  assert.equal(tracking!.ids, 0);
  assert.equal(tracking!.idf1, 1);
  // Frames 0..9 have 30 known future frames (the last is frame 39); later ones are skipped, not guessed.
  assert.equal(prediction!.count, 10);
  assert.equal(prediction!.skipped, 30);
  assert.ok(prediction!.ade < 1e-4 && prediction!.fde < 1e-4, `ADE ${prediction!.ade} FDE ${prediction!.fde}`);
  assert.equal(prediction!.horizonS, 3);
});

test('a prediction 1 m off at every step scores ADE = FDE = 1 m; a missing result counts its car as missed', async () => {
  const frames: ScoredFrame[] = Array.from({ length: FRAMES }, (_, i) => ({ index: i, captureNs: BigInt(i), result: i === 5 ? undefined : perfectResult(i, 1) }));
  const ap = new ClassAwareApAccumulator(undefined, ['vehicle']);
  const { tracking, prediction } = await scoreFusionResults(seq, '100', frames, grid, ap);
  assert.ok(Math.abs(prediction!.ade - 1) < 1e-4 && Math.abs(prediction!.fde - 1) < 1e-4);
  assert.equal(prediction!.count, 9);
  assert.equal(tracking!.fn, 1);
  assert.equal(ap.result().vehicle['0.5'].gt, FRAMES);
  assert.equal(ap.result().vehicle['0.5'].tp, FRAMES - 1);
});
