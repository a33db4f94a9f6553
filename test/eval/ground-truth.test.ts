import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type Box7, carlaBoxToBox7, carlaPoseToMatrix, invertRigid, poseToMatrix, transformPoint } from '../../src/geometry/index.ts';
import type { AgentFrame, CooperativeFrame, GroundTruthBox, ObjectClass } from '../../src/datasets/index.ts';
import { GroundTruthError, OPENCOOD_GT_RANGE, cooperativeGroundTruth } from '../../src/eval/index.ts';

const close = (a: number, b: number, what = '', eps = 1e-9) => assert.ok(Math.abs(a - b) <= eps, `${what}: ${a} vs ${b}`);

// The ego's LiDAR sits at world (100, 50, 1.9) facing world +y (yaw 90°). World → ego: subtract (100, 50, 1.9),
// then rotate by −90°: (dx, dy) → (dy, −dx). So world (100, 60) → ego (10, 0) (10 m ahead) and world (90, 50)
// → ego (0, 10) (10 m to the left); a world heading of 90° becomes 0.
const EGO_POSE = { x: 100, y: 50, z: 1.9, roll: 0, pitch: 0, yaw: Math.PI / 2 };

const worldBox = (id: string, x: number, y: number, opts: { cls?: ObjectClass; yaw?: number; l?: number; w?: number; h?: number; z?: number } = {}): GroundTruthBox => {
  const h = opts.h ?? 1.5;
  const box: Box7 = { x, y, z: opts.z ?? h / 2, l: opts.l ?? 4, w: opts.w ?? 2, h, yaw: opts.yaw ?? Math.PI / 2 };
  return { id, cls: opts.cls ?? 'vehicle', rawClass: opts.cls ?? 'vehicle', box };
};

const agent = (agentId: string, x: number, y: number, boxes: GroundTruthBox[], yaw = 0): AgentFrame => ({
  agentId,
  kind: 'vehicle',
  timestampNs: 0n,
  lidarToWorld: poseToMatrix({ x, y, z: 1.9, roll: 0, pitch: 0, yaw }),
  lidarPath: `/nowhere/${agentId}.pcd`,
  loadPoints: async () => new Float32Array(0),
  cameras: [],
  boxes,
});

function scene(): CooperativeFrame {
  const ego: AgentFrame = { ...agent('e', 0, 0, [worldBox('1', 100, 60)]), lidarToWorld: poseToMatrix(EGO_POSE) };
  // c1: 60 m from the ego (in range). Lists '1' again, 1 m off (the ego's copy must win), '2', and the ego itself.
  const c1 = agent('c1', 100, 110, [
    worldBox('1', 100, 61),
    worldBox('2', 90, 50),
    worldBox('e', 100, 50),
    // Centre 139 m ahead (inside x ≤ 140), front corners at 141 m: OpenCOOD's all-corners test drops it.
    worldBox('4', 100, 189),
    // 45 m to the left: outside y ≤ 40 whatever the test.
    worldBox('5', 55, 50),
    // A pedestrian at ego (5, 5).
    worldBox('6', 95, 55, { cls: 'pedestrian', l: 0.8, w: 0.8, h: 1.8 }),
    // A 3.6 m tall bus at ego (0, −10): its top is at 3.6 − 1.9 = 1.7 m in the ego frame, above GT_RANGE's z 1.
    worldBox('7', 110, 50, { l: 12, w: 2.5, h: 3.6 }),
  ]);
  // c2: 80 m away → out of communication range; its '3' (ego (20, 0)) must not appear.
  const c2 = agent('c2', 100, 130, [worldBox('3', 100, 70)]);
  // c3: exactly 70 m away → in range (OpenCOOD skips only distance > 70); contributes '8' at ego (−20, 0).
  const c3 = agent('c3', 170, 50, [worldBox('8', 100, 30)]);
  return { frameId: '000001', index: 0, timestampNs: 0n, agents: [c1, ego, c2, c3] };
}

const byId = (boxes: { id: string }[]) => boxes.map((b) => b.id).sort();

test('union of in-range agents, deduplicated by id, ego first, ego box dropped, OpenCOOD range', () => {
  const gt = cooperativeGroundTruth(scene(), 'e');
  assert.deepEqual(byId(gt), ['1', '2', '6', '8']);
  const one = gt.find((g) => g.id === '1')!;
  // The ego's own copy (world (100, 60)) wins over c1's (100, 61): ego (10, 0), heading 0.
  close(one.box.x, 10, 'x'); close(one.box.y, 0, 'y'); close(one.box.yaw, 0, 'yaw');
  // z: box centre at world 0.75, LiDAR at 1.9 → −1.15.
  close(one.box.z, -1.15, 'z');
  assert.equal(one.source, 'e');
  const two = gt.find((g) => g.id === '2')!;
  close(two.box.x, 0, 'x2'); close(two.box.y, 10, 'y2'); close(two.box.yaw, 0, 'yaw2');
  assert.equal(two.source, 'c1');
  const eight = gt.find((g) => g.id === '8')!;
  close(eight.box.x, -20, 'x8'); close(eight.box.y, 0, 'y8');
  assert.equal(eight.source, 'c3');
});

test('communication range: agents beyond it contribute nothing', () => {
  assert.deepEqual(byId(cooperativeGroundTruth(scene(), 'e', { commRangeM: 100 })), ['1', '2', '3', '6', '8']);
  // 50 m: only the ego itself.
  assert.deepEqual(byId(cooperativeGroundTruth(scene(), 'e', { commRangeM: 50 })), ['1']);
});

test('range test by corners (OpenCOOD) or by centre; z bounds only when given', () => {
  // By centre, '4' (centre x 139) is in; the bus '7' (centre z 1.8 − 1.9 = −0.1) is in as well.
  assert.deepEqual(byId(cooperativeGroundTruth(scene(), 'e', { rangeTest: 'centre' })), ['1', '2', '4', '6', '7', '8']);
  // Corners without z bounds: '4' still out (x corner 141), the bus comes back.
  const xyOnly = { xMin: -140, xMax: 140, yMin: -40, yMax: 40 };
  assert.deepEqual(byId(cooperativeGroundTruth(scene(), 'e', { evalRange: xyOnly })), ['1', '2', '6', '7', '8']);
  // A tight range: x in [−5, 15], y in [−3, 3] keeps '1' (corners x 8..12, y −1..1) and nothing else.
  assert.deepEqual(byId(cooperativeGroundTruth(scene(), 'e', { evalRange: { xMin: -5, xMax: 15, yMin: -3, yMax: 3 } })), ['1']);
  assert.deepEqual(OPENCOOD_GT_RANGE, { xMin: -140, xMax: 140, yMin: -40, yMax: 40, zMin: -3, zMax: 1 });
  assert.throws(() => cooperativeGroundTruth(scene(), 'e', { evalRange: { xMin: 1, xMax: -1, yMin: -1, yMax: 1 } }), RangeError);
});

test('class filter and keeping the ego box on request', () => {
  assert.deepEqual(byId(cooperativeGroundTruth(scene(), 'e', { classes: ['vehicle'] })), ['1', '2', '8']);
  const withEgo = cooperativeGroundTruth(scene(), 'e', { includeEgoBox: true });
  const ego = withEgo.find((g) => g.id === 'e')!;
  close(ego.box.x, 0, 'ego x'); close(ego.box.y, 0, 'ego y');
});

test('a first copy outside the range does not shadow a later copy inside it (filter before dedup)', () => {
  const frame = scene();
  // The ego lists '9' at ego y = 45 (out of range); c1 lists it at ego y = 5 (in range).
  frame.agents[1].boxes.push(worldBox('9', 55, 50));
  frame.agents[0].boxes.push(worldBox('9', 95, 50));
  const nine = cooperativeGroundTruth(frame, 'e').find((g) => g.id === '9')!;
  close(nine.box.y, 5, 'y9');
  assert.equal(nine.source, 'c1');
});

test('dataset cooperative labels replace the union (DAIR-V2X-C label_world)', () => {
  const frame = scene();
  frame.cooperativeBoxes = [worldBox('cooperative-0', 100, 80), worldBox('cooperative-1', 100, 250)];
  const gt = cooperativeGroundTruth(frame, 'e');
  // Only the cooperative list: (100, 80) → ego (30, 0); (100, 250) → 200 m ahead, out of range.
  assert.deepEqual(byId(gt), ['cooperative-0']);
  close(gt[0].box.x, 30, 'x'); close(gt[0].box.y, 0, 'y');
  assert.equal(gt[0].source, 'cooperative');
});

test('an unknown ego id is a GroundTruthError naming the frame and the agents', () => {
  assert.throws(() => cooperativeGroundTruth(scene(), 'nobody'), (e: unknown) => {
    assert.ok(e instanceof GroundTruthError);
    assert.equal(e.frameId, '000001');
    assert.match(e.message, /c1, e, c2, c3/);
    return true;
  });
});

// Real OPV2V metadata (test_culvercity 2021_09_03_09_32_17, CAVs 302 and 311, frame 006220), read here with the
// geometry module's CARLA converters rather than the dataset reader (the sample has no point clouds, which the
// reader requires). 311 lists 302 in its `vehicles`; 302 lists 311.
const OPV2V_SCENARIO = path.resolve(process.cwd(), '../shared/data/opv2v-culver/TwoCars_1');

async function opv2vAgent(id: string, frame: string): Promise<{ agent: AgentFrame; trueEgoPos: number[] }> {
  const doc = parseYaml(await readFile(path.join(OPV2V_SCENARIO, id, `${frame}.yaml`), 'utf8')) as {
    lidar_pose: number[];
    true_ego_pos: number[];
    vehicles: Record<string, { location: number[]; center: number[]; extent: number[]; angle: number[] }>;
  };
  const boxes: GroundTruthBox[] = Object.entries(doc.vehicles).map(([vid, v]) => ({
    id: vid, cls: 'vehicle', rawClass: 'vehicle', box: carlaBoxToBox7(v.location, v.center, v.extent, v.angle),
  }));
  const agent: AgentFrame = {
    agentId: id, kind: 'vehicle', timestampNs: 0n, lidarToWorld: carlaPoseToMatrix(doc.lidar_pose),
    lidarPath: '', loadPoints: async () => new Float32Array(0), cameras: [], boxes,
  };
  return { agent, trueEgoPos: doc.true_ego_pos };
}

test('real OPV2V frame: the ego listed by the other CAV lands on the ego; the other CAV lands on its own LiDAR', async () => {
  const [a302, a311] = await Promise.all([opv2vAgent('302', '006220'), opv2vAgent('311', '006220')]);
  const frame: CooperativeFrame = { frameId: '006220', index: 0, timestampNs: 0n, agents: [a302.agent, a311.agent] };
  // The LiDARs are 59.8 m apart (Δ = (43.8, 40.8) m in CARLA x, y): 311 is within the 70 m range.
  assert.ok(a311.agent.boxes.some((b) => b.id === '302'));

  const gt = cooperativeGroundTruth(frame, '302');
  assert.ok(!gt.some((g) => g.id === '302'), 'ego box dropped by default');
  // Every id either CAV lists, minus the ego, minus what falls outside GT_RANGE, appears once.
  assert.equal(new Set(gt.map((g) => g.id)).size, gt.length);

  const withEgo = cooperativeGroundTruth(frame, '302', { includeEgoBox: true });
  const self = withEgo.find((g) => g.id === '302')!;
  assert.equal(self.source, '311');
  // true_ego_pos is 0.50 m ahead of lidar_pose along the heading (by hand: Δ = (0.4486, −0.2291) CARLA, heading
  // −27.158° → forward 0.4486·0.8897 + 0.2291·0.4565 = 0.504, sideways 0.4486·0.4565 − 0.2291·0.8897 ≈ 0.000;
  // the 0.11° pitch over the 1.18 m drop takes 0.002 off x); the box centre is 0.72 m above the vehicle origin,
  // which is 1.899 m below the LiDAR → z ≈ −1.18; same heading → yaw ≈ 0.
  close(self.box.x, 0.502, 'self x', 0.01);
  close(self.box.y, 0, 'self y', 0.01);
  close(self.box.z, 0.0328 + 0.7189 - 1.9318, 'self z', 0.01);
  close(self.box.yaw, 0, 'self yaw', 0.01);

  // 311 as listed by 302, seen from 302, sits where 311's own LiDAR is, up to the LiDAR's mounting offset on 311.
  const other = gt.find((g) => g.id === '311')!;
  const lidar311InEgo = transformPoint(invertRigid(a302.agent.lidarToWorld), a311.agent.lidarToWorld[3], a311.agent.lidarToWorld[7], a311.agent.lidarToWorld[11]);
  assert.ok(Math.hypot(other.box.x - lidar311InEgo[0], other.box.y - lidar311InEgo[1]) < 1, `311 box vs 311 LiDAR: ${other.box.x}, ${other.box.y} vs ${lidar311InEgo[0]}, ${lidar311InEgo[1]}`);
});
