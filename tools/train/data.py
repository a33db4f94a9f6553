"""Training shards (written by `v2xfuse export-training`, src/perception/shards.ts) -> numpy samples and anchor
targets. numpy only: no torch here, so the reader can be tested and reused without it.

A sample is one ego frame: the ego's pillars, each collaborator's pillars with its agent -> ego transform, and the
cooperative ground truth in the ego LiDAR frame. Anchors and target assignment follow models/README.md and
OpenCOOD's VoxelPostprocessor (see README.md, "Targets").
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace

import numpy as np

SHARD_FORMAT = "v2xfuse-training-shards"
SHARD_VERSION = 1
DTYPES = {"float16": "<f2", "float32": "<f4", "int8": "i1", "uint8": "u1", "int16": "<i2", "int32": "<i4"}


class ShardError(Exception):
    """A shard folder that cannot be used: names the file and what is wrong."""


@dataclass
class AgentData:
    id: str
    kind: str
    points: np.ndarray  # float32 [N, 10]: the pillars' points, packed (pillar p's rows follow pillar p - 1's)
    num_points: np.ndarray  # int64 [P]: points per pillar
    coords: np.ndarray  # int64 [P, 2] (row = y index, col = x index)
    agent_to_ego: np.ndarray  # float32 [4, 4]
    max_points: int = 32

    def padded(self) -> np.ndarray:
        """float32 [P, max_points, 10], zero-padded: the Pillarizer's (and lidar_pfn.onnx's) layout."""
        return unpack_pillars(self.points, self.num_points, self.max_points)

    def pillar_index(self) -> np.ndarray:
        """int64 [N]: the pillar of each packed point."""
        return np.repeat(np.arange(self.num_points.shape[0]), self.num_points)


@dataclass
class Sample:
    key: str  # "scenario/frameId/ego"
    agents: list[AgentData]  # ego first
    gt_boxes: np.ndarray  # float32 [G, 7] in the ego LiDAR frame
    gt_classes: np.ndarray  # int64 [G]: index into the TRAINING classes, -1 for classes not trained
    gt_points: np.ndarray  # int64 [G, K]: points of agent k inside box g
    gt_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AnchorClass:
    name: str
    l: float
    w: float
    h: float
    z: float
    yaws: tuple[float, ...]
    pos_iou: float
    neg_iou: float


# Per-class IoU thresholds (models/README.md; OpenCOOD uses 0.6 / 0.45 for cars).
IOU_THRESHOLDS = {"vehicle": (0.6, 0.45), "pedestrian": (0.5, 0.35), "cyclist": (0.5, 0.35)}


def anchor_classes(index: dict) -> list[AnchorClass]:
    out = []
    for a in index["anchors"]:
        pos, neg = IOU_THRESHOLDS.get(a["cls"], (0.6, 0.45))
        out.append(AnchorClass(a["cls"], a["l"], a["w"], a["h"], a["z"], tuple(a["yaws"]), pos, neg))
    return out


def expand_shard_dirs(paths: list[str]) -> list[str]:
    """A shard folder (with index.json) stays as it is; a folder without one stands for its sub-folders that have
    one (e.g. /tmp/v2x/shards/train holding one export per sequence), in sorted order."""
    out = []
    for p in paths:
        if os.path.isfile(os.path.join(p, "index.json")):
            out.append(p)
        elif os.path.isdir(p):
            subs = sorted(os.path.join(p, d) for d in os.listdir(p) if os.path.isfile(os.path.join(p, d, "index.json")))
            if not subs:
                raise ShardError(f"{p}: no index.json in it or in its sub-folders "
                                 f"(run `v2xfuse export-training DATASET --out {p}` first)")
            out.extend(subs)
        else:
            raise ShardError(f"{p}: not a shard folder (no such folder)")
    return out


class ShardSet:
    """One or more shard folders read as one list of samples (same grid and pillar layout required)."""

    def __init__(self, dirs: list[str] | str):
        dirs = expand_shard_dirs([dirs] if isinstance(dirs, str) else list(dirs))
        if not dirs:
            raise ShardError("no shard folder given")
        self.dirs = dirs
        self.entries: list[tuple[str, dict]] = []
        self.index: dict | None = None
        for d in dirs:
            path = os.path.join(d, "index.json")
            try:
                with open(path, encoding="utf-8") as f:
                    index = json.load(f)
            except FileNotFoundError:
                raise ShardError(f"{path}: no such file (run `v2xfuse export-training DATASET --out {d}` first)") from None
            if index.get("format") != SHARD_FORMAT or index.get("version") != SHARD_VERSION:
                raise ShardError(f"{path}: format {index.get('format')!r} version {index.get('version')!r}, "
                                 f"expected {SHARD_FORMAT!r} version {SHARD_VERSION}")
            if self.index is None:
                self.index = index
            else:
                for key in ("grid", "pillar", "anchors", "classes", "zOffsetByKind"):
                    if index.get(key) != self.index.get(key):
                        raise ShardError(f"{path}: {key} differs from {os.path.join(dirs[0], 'index.json')}: "
                                         f"{index.get(key)!r} vs {self.index.get(key)!r}")
            self.entries.extend((d, s) for s in index["samples"])
        assert self.index is not None
        self.grid = self.index["grid"]
        self.max_points = self.index["pillar"]["maxPointsPerPillar"]
        self.features = len(self.index["pillar"]["features"])
        self.anchors = anchor_classes(self.index)
        self.class_names = [a.name for a in self.anchors]
        shard_classes = self.index["classes"]
        # Shard class index -> training class index (-1: not trained, dropped from the targets).
        self.class_map = np.array([self.class_names.index(c) if c in self.class_names else -1 for c in shard_classes], np.int64)

    def __len__(self) -> int:
        return len(self.entries)

    def key(self, i: int) -> str:
        _, s = self.entries[i]
        return f"{s['scenario']}/{s['frameId']}/{s['ego']}"

    def read(self, i: int) -> Sample:
        d, s = self.entries[i]
        path = os.path.join(d, s["file"])
        try:
            blob = np.fromfile(path, dtype=np.uint8)
        except FileNotFoundError:
            raise ShardError(f"{path}: missing (listed by {os.path.join(d, 'index.json')})") from None
        arrays = {a["name"]: a for a in s["arrays"]}

        def get(name: str) -> np.ndarray:
            a = arrays.get(name)
            if a is None:
                raise ShardError(f"{path}: sample {self.key(i)} has no array {name!r}")
            end = a["offset"] + a["byteLength"]
            if end > blob.size:
                raise ShardError(f"{path}: array {name!r} ends at byte {end}, the file has {blob.size}")
            return blob[a["offset"]:end].view(DTYPES[a["dtype"]]).reshape(a["shape"])

        agents = []
        for k, meta in enumerate(s["agents"]):
            agents.append(AgentData(meta["id"], meta["kind"], get(f"points_{k}").astype(np.float32),
                                    get(f"num_points_{k}").astype(np.int64), get(f"coords_{k}").astype(np.int64),
                                    get(f"agent_to_ego_{k}").astype(np.float32), self.max_points))
        gt_classes = get("gt_classes").astype(np.int64)
        return Sample(
            key=self.key(i),
            agents=agents,
            gt_boxes=get("gt_boxes").astype(np.float32),
            gt_classes=self.class_map[gt_classes] if gt_classes.size else gt_classes,
            gt_points=get("gt_points").astype(np.int64),
            gt_ids=list(s.get("gtIds", [])),
        )


def unpack_pillars(points: np.ndarray, num_points: np.ndarray, max_points: int) -> np.ndarray:
    """Packed float16 rows [N, F] + points per pillar [P] -> float32 [P, max_points, F], zero-padded."""
    p = num_points.shape[0]
    out = np.zeros((p, max_points, points.shape[1]), np.float32)
    if p == 0:
        return out
    starts = np.cumsum(num_points) - num_points
    pillar = np.repeat(np.arange(p), num_points)
    slot = np.arange(points.shape[0]) - np.repeat(starts, num_points)
    out[pillar, slot] = points
    return out


# ----------------------------------------------------------------------------------------------------------------
# Agent selection and augmentation

def select_agents(sample: Sample, rng: np.random.Generator, max_agents: int, drop_prob: float,
                  ego_only_prob: float) -> Sample:
    """Keeps the ego and a random subset of collaborators: all of them dropped with ego_only_prob (so the head also
    learns to work ego-only), else each dropped with drop_prob, then at most max_agents agents in all."""
    k = len(sample.agents)
    if k == 1:
        return sample
    if rng.random() < ego_only_prob:
        keep = [0]
    else:
        others = [i for i in range(1, k) if rng.random() >= drop_prob]
        rng.shuffle(others)
        keep = [0] + sorted(others[: max(0, max_agents - 1)])
    return replace(sample, agents=[sample.agents[i] for i in keep], gt_points=sample.gt_points[:, keep])


# The dihedral group of the square as 2x2 integer matrices acting on (x, y): rotations by 0, 90, 180, 270 degrees,
# each optionally preceded by the mirror y -> -y.
def _dihedral() -> list[np.ndarray]:
    rot = np.array([[0, -1], [1, 0]])
    mirror = np.array([[1, 0], [0, -1]])
    out, r = [], np.eye(2, dtype=np.int64)
    for _ in range(4):
        out.append(r.copy())
        out.append(r @ mirror)
        r = rot @ r
    return out


DIHEDRAL = _dihedral()


def grid_is_symmetric_square(grid: dict) -> bool:
    return (math.isclose(grid["xMin"], -grid["xMax"]) and math.isclose(grid["yMin"], -grid["yMax"])
            and math.isclose(grid["xMax"], grid["yMax"]))


def transform_sample(sample: Sample, s2: np.ndarray, grid_cells: int) -> Sample:
    """Applies the same rotation/reflection S (2x2 in the dihedral group, about the LiDAR origin) to every agent's
    frame and to the ego frame. Exact on a square grid centred on the sensor: cell centres map onto cell centres, so
    pillars keep their points and only the x/y feature pairs, the cells, the transforms and the boxes change.
    agent_to_ego becomes S T S^-1 (S acting on x, y); box yaws follow S (reflections negate the angle)."""
    s3 = np.eye(4, dtype=np.float32)
    s3[:2, :2] = s2
    s3_inv = np.eye(4, dtype=np.float32)
    s3_inv[:2, :2] = s2.T  # orthogonal
    half = (grid_cells - 1) / 2.0
    agents = []
    for a in sample.agents:
        points = a.points.copy()
        for ix, iy in ((0, 1), (4, 5), (7, 8)):
            x, y = a.points[:, ix], a.points[:, iy]
            points[:, ix] = s2[0, 0] * x + s2[0, 1] * y
            points[:, iy] = s2[1, 0] * x + s2[1, 1] * y
        u = a.coords[:, 1] - half  # along x
        v = a.coords[:, 0] - half  # along y
        col = s2[0, 0] * u + s2[0, 1] * v + half
        row = s2[1, 0] * u + s2[1, 1] * v + half
        coords = np.stack([np.rint(row), np.rint(col)], axis=1).astype(np.int64)
        agents.append(AgentData(a.id, a.kind, points, a.num_points, coords, (s3 @ a.agent_to_ego @ s3_inv).astype(np.float32),
                                a.max_points))
    boxes = sample.gt_boxes.copy()
    if boxes.size:
        boxes[:, :2] = boxes[:, :2] @ s2.T.astype(np.float32)
        # S = R(phi) or S = R(phi) · M with M the mirror y -> -y; phi is the angle of S's first column.
        # A heading theta becomes phi + theta under a rotation and phi - theta under a reflection.
        phi = math.atan2(s2[1, 0], s2[0, 0])
        det = s2[0, 0] * s2[1, 1] - s2[0, 1] * s2[1, 0]
        boxes[:, 6] = phi + boxes[:, 6] if det > 0 else phi - boxes[:, 6]
        boxes[:, 6] = wrap_angle(boxes[:, 6])
    return replace(sample, agents=agents, gt_boxes=boxes)


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Wrapped to [-pi, pi)."""
    return (a + np.pi) % (2 * np.pi) - np.pi


# ----------------------------------------------------------------------------------------------------------------
# Anchors and targets

class AnchorGrid:
    """Anchors on the backbone's feature map: centres at feature-cell centres, x = xMin + (col + 0.5) · 0.8 and
    y = yMin + (row + 0.5) · 0.8; anchor index a = class · len(yaws) + yawIndex."""

    def __init__(self, grid: dict, classes: list[AnchorClass]):
        self.classes = classes
        stride = grid["featureStride"]
        self.cell = grid["cellSize"] * stride
        self.width = round((grid["xMax"] - grid["xMin"]) / grid["cellSize"]) // stride
        self.height = round((grid["yMax"] - grid["yMin"]) / grid["cellSize"]) // stride
        xs = grid["xMin"] + (np.arange(self.width) + 0.5) * self.cell
        ys = grid["yMin"] + (np.arange(self.height) + 0.5) * self.cell
        yy, xx = np.meshgrid(ys, xs, indexing="ij")  # [H, W]
        per_cell = []
        for c in classes:
            for yaw in c.yaws:
                per_cell.append((c.l, c.w, c.h, c.z, yaw))
        self.per_cell = np.array(per_cell, np.float32)  # [A, 5]
        a = len(per_cell)
        anchors = np.zeros((a, self.height, self.width, 7), np.float32)
        for i, (l, w, h, z, yaw) in enumerate(per_cell):
            anchors[i] = np.stack([xx, yy, np.full_like(xx, z), np.full_like(xx, l), np.full_like(xx, w),
                                   np.full_like(xx, h), np.full_like(xx, yaw)], axis=-1)
        self.anchors = anchors  # [A, H, W, 7]
        self.anchor_class = np.repeat(np.arange(len(classes)), [len(c.yaws) for c in classes])  # [A]

    @property
    def count(self) -> int:
        return self.anchors.shape[0]


def standup_boxes(boxes: np.ndarray) -> np.ndarray:
    """Axis-aligned BEV bounds [x0, y0, x1, y1] enclosing each rotated box (OpenCOOD's corner2d_to_standup_box)."""
    c, s = np.abs(np.cos(boxes[:, 6])), np.abs(np.sin(boxes[:, 6]))
    hx = (c * boxes[:, 3] + s * boxes[:, 4]) / 2
    hy = (s * boxes[:, 3] + c * boxes[:, 4]) / 2
    return np.stack([boxes[:, 0] - hx, boxes[:, 1] - hy, boxes[:, 0] + hx, boxes[:, 1] + hy], axis=1)


def standup_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of axis-aligned boxes [N, 4] x [M, 4] -> [N, M]."""
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def encode_boxes(gt: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """SECOND / OpenCOOD residuals [N, 7]: d = sqrt(la^2 + wa^2); dx = (xg - xa) / d, dy = (yg - ya) / d,
    dz = (zg - za) / ha, dl = ln(lg / la), dw = ln(wg / wa), dh = ln(hg / ha), dtheta = thetag - thetaa wrapped to
    [-pi/2, pi/2) (BEV boxes are the same shape under a half turn)."""
    d = np.sqrt(anchors[:, 3] ** 2 + anchors[:, 4] ** 2)
    out = np.empty_like(gt)
    out[:, 0] = (gt[:, 0] - anchors[:, 0]) / d
    out[:, 1] = (gt[:, 1] - anchors[:, 1]) / d
    out[:, 2] = (gt[:, 2] - anchors[:, 2]) / anchors[:, 5]
    out[:, 3] = np.log(gt[:, 3] / anchors[:, 3])
    out[:, 4] = np.log(gt[:, 4] / anchors[:, 4])
    out[:, 5] = np.log(gt[:, 5] / anchors[:, 5])
    out[:, 6] = (gt[:, 6] - anchors[:, 6] + np.pi / 2) % np.pi - np.pi / 2
    return out


def decode_boxes(deltas: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Inverse of encode_boxes: [N, 7] deltas + anchors -> boxes (yaw = thetaa + dtheta)."""
    d = np.sqrt(anchors[:, 3] ** 2 + anchors[:, 4] ** 2)
    out = np.empty_like(deltas)
    out[:, 0] = deltas[:, 0] * d + anchors[:, 0]
    out[:, 1] = deltas[:, 1] * d + anchors[:, 1]
    out[:, 2] = deltas[:, 2] * anchors[:, 5] + anchors[:, 2]
    out[:, 3] = np.exp(deltas[:, 3]) * anchors[:, 3]
    out[:, 4] = np.exp(deltas[:, 4]) * anchors[:, 4]
    out[:, 5] = np.exp(deltas[:, 5]) * anchors[:, 5]
    out[:, 6] = deltas[:, 6] + anchors[:, 6]
    return out


@dataclass
class Targets:
    labels: np.ndarray  # float32 [A, H, W]: 1 positive, 0 negative
    weights: np.ndarray  # float32 [A, H, W]: 1 where the label counts, 0 ignored
    box_targets: np.ndarray  # float32 [A, 7, H, W] (valid where positive)
    positives: int


def assign_targets(anchor_grid: AnchorGrid, gt_boxes: np.ndarray, gt_classes: np.ndarray, gt_seen: np.ndarray) -> Targets:
    """Per class (OpenCOOD VoxelPostprocessor.generate_label, per-class thresholds): IoU of the standup (axis-aligned
    enclosing) BEV boxes of anchors and ground truth; an anchor is positive when its best IoU >= pos_iou or it is the
    best anchor of some box (IoU > 0), negative when its best IoU < neg_iou, else ignored. Boxes nobody in the
    sample saw (gt_seen false) never make positives and are not taught as background either: their anchors are
    ignored. Boxes of untrained classes (-1) are left out."""
    a_count, h, w = anchor_grid.count, anchor_grid.height, anchor_grid.width
    labels = np.zeros((a_count, h * w), np.float32)
    weights = np.ones((a_count, h * w), np.float32)
    box_targets = np.zeros((a_count, h * w, 7), np.float32)
    anchors = anchor_grid.anchors.reshape(a_count, h * w, 7)
    positives = 0
    for ci, c in enumerate(anchor_grid.classes):
        sel = np.nonzero(gt_classes == ci)[0]
        if sel.size == 0:
            continue
        a_idx = np.nonzero(anchor_grid.anchor_class == ci)[0]
        cls_anchors = anchors[a_idx].reshape(-1, 7)  # [Ac·HW, 7]
        gts = gt_boxes[sel]
        seen = gt_seen[sel]
        iou = standup_iou(standup_boxes(cls_anchors), standup_boxes(gts))  # [Ac·HW, G]
        best_gt = iou.argmax(axis=1)
        best_iou = iou[np.arange(iou.shape[0]), best_gt]
        pos = best_iou >= c.pos_iou
        # Every box gets its best anchor (OpenCOOD: anchor with the highest IoU per box, if above 0).
        best_anchor = iou.argmax(axis=0)
        has = iou[best_anchor, np.arange(len(sel))] > 0
        pos[best_anchor[has]] = True
        best_gt[best_anchor[has]] = np.nonzero(has)[0]
        neg = (best_iou < c.neg_iou) & ~pos
        lab = np.where(pos, 1.0, 0.0).astype(np.float32)
        wt = (pos | neg).astype(np.float32)
        # Unseen boxes: neither positive nor background.
        unseen_overlap = (iou[:, ~seen] >= c.neg_iou).any(axis=1) if (~seen).any() else np.zeros_like(pos)
        pos_unseen = pos & ~seen[best_gt]
        lab[pos_unseen] = 0.0
        wt[pos_unseen | (unseen_overlap & ~pos)] = 0.0
        pos = pos & ~pos_unseen
        targets = np.zeros((cls_anchors.shape[0], 7), np.float32)
        if pos.any():
            targets[pos] = encode_boxes(gts[best_gt[pos]], cls_anchors[pos])
        positives += int(pos.sum())
        labels[a_idx] = lab.reshape(len(a_idx), h * w)
        weights[a_idx] = wt.reshape(len(a_idx), h * w)
        box_targets[a_idx] = targets.reshape(len(a_idx), h * w, 7)
    return Targets(labels.reshape(a_count, h, w), weights.reshape(a_count, h, w),
                   box_targets.reshape(a_count, h, w, 7).transpose(0, 3, 1, 2).copy(), positives)


def gt_seen_mask(sample: Sample, min_points: int = 1) -> np.ndarray:
    """True for boxes with at least min_points LiDAR points from the agents in the sample."""
    if sample.gt_points.size == 0:
        return np.zeros(sample.gt_boxes.shape[0], bool)
    return sample.gt_points.sum(axis=1) >= min_points


@dataclass
class Batch:
    """One sample's model inputs: every agent's pillars concatenated, in the packed layout."""
    points: np.ndarray  # float32 [sum N, 10]
    point_pillar: np.ndarray  # int64 [sum N]: pillar (row of coords) of each point
    num_points: np.ndarray  # int64 [sum P]
    coords: np.ndarray  # int64 [sum P, 2]
    agent_index: np.ndarray  # int64 [sum P]
    agent_to_ego: np.ndarray  # float32 [K, 4, 4]
    targets: Targets
    sample: Sample


def collate(sample: Sample, anchor_grid: AnchorGrid, min_points: int = 1) -> Batch:
    points = np.concatenate([a.points for a in sample.agents], axis=0)
    num_points = np.concatenate([a.num_points for a in sample.agents])
    point_pillar = np.repeat(np.arange(num_points.shape[0]), num_points)
    coords = np.concatenate([a.coords for a in sample.agents], axis=0)
    agent_index = np.concatenate([np.full(a.coords.shape[0], k, np.int64) for k, a in enumerate(sample.agents)])
    agent_to_ego = np.stack([a.agent_to_ego for a in sample.agents])
    targets = assign_targets(anchor_grid, sample.gt_boxes, sample.gt_classes, gt_seen_mask(sample, min_points))
    return Batch(points, point_pillar, num_points, coords, agent_index, agent_to_ego, targets, sample)
