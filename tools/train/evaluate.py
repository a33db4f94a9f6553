"""Monitoring-only evaluation for train.py: decode, rotated-BEV NMS and a VOC-style AP in numpy.

The official numbers come from the TypeScript evaluator (src/eval, `v2xfuse detect`); this file only lets a
training run tell whether it is improving. It follows the same protocol in outline (OpenCOOD's eval_utils:
greedy matching by score at a BEV IoU threshold, all-point interpolated AP).
"""
from __future__ import annotations

import numpy as np

from data import AnchorGrid, decode_boxes


def bev_corners(box: np.ndarray) -> np.ndarray:
    """[4, 2] corners, counter-clockwise (as src/geometry bevCorners)."""
    x, y, _, l, w, _, yaw = box[:7]
    c, s = np.cos(yaw), np.sin(yaw)
    local = np.array([[l / 2, w / 2], [-l / 2, w / 2], [-l / 2, -w / 2], [l / 2, -w / 2]])
    return local @ np.array([[c, s], [-s, c]]) + np.array([x, y])


def _clip(subject: list, clip: np.ndarray) -> list:
    """Sutherland-Hodgman: subject polygon clipped by a convex counter-clockwise polygon."""
    out = subject
    for i in range(len(clip)):
        a, b = clip[i], clip[(i + 1) % len(clip)]
        if not out:
            break
        inp, out = out, []
        edge = b - a

        def inside(p):
            return edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0]) >= 0

        for j in range(len(inp)):
            p, q = inp[j], inp[(j + 1) % len(inp)]
            pin, qin = inside(p), inside(q)
            if pin:
                out.append(p)
            if pin != qin:
                d = q - p
                denom = edge[0] * d[1] - edge[1] * d[0]
                if denom != 0:
                    # p + t d lies on the edge's line: cross(edge, p + t d - a) = 0.
                    t = -(edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0])) / denom
                    out.append(p + t * d)
    return out


def _area(poly: list) -> float:
    if len(poly) < 3:
        return 0.0
    p = np.array(poly)
    return 0.5 * abs(np.dot(p[:, 0], np.roll(p[:, 1], -1)) - np.dot(p[:, 1], np.roll(p[:, 0], -1)))


def bev_iou(a: np.ndarray, b: np.ndarray) -> float:
    ca, cb = bev_corners(a), bev_corners(b)
    inter = _area(_clip(list(ca), cb))
    union = a[3] * a[4] + b[3] * b[4] - inter
    return inter / union if union > 0 else 0.0


def bev_iou_many(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one box with each of others [N, 7]; pairs whose enclosing circles do not touch are 0 without clipping."""
    out = np.zeros(len(others))
    if len(others) == 0:
        return out
    r = np.hypot(box[3], box[4]) / 2 + np.hypot(others[:, 3], others[:, 4]) / 2
    near = np.hypot(others[:, 0] - box[0], others[:, 1] - box[1]) < r
    for i in np.nonzero(near)[0]:
        out[i] = bev_iou(box, others[i])
    return out


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_out: int) -> np.ndarray:
    order = np.argsort(-scores)
    keep = []
    suppressed = np.zeros(len(boxes), bool)
    for idx in order:
        if suppressed[idx]:
            continue
        keep.append(idx)
        if len(keep) >= max_out:
            break
        rest = np.nonzero(~suppressed)[0]
        ious = bev_iou_many(boxes[idx], boxes[rest])
        suppressed[rest[ious > iou_threshold]] = True
    return np.array(keep, np.int64)


def detect(cls_logits: np.ndarray, box_deltas: np.ndarray, anchor_grid: AnchorGrid, score_threshold: float = 0.2,
           nms_iou: float = 0.15, pre_nms: int = 500, max_out: int = 100) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """cls_logits [A, H, W], box_deltas [7A, H, W] -> per class (boxes [N, 7], scores [N], class index)."""
    a, h, w = cls_logits.shape
    scores = 1 / (1 + np.exp(-cls_logits))
    deltas = box_deltas.reshape(a, 7, h, w).transpose(0, 2, 3, 1)  # [A, H, W, 7]
    out = []
    for ci in range(len(anchor_grid.classes)):
        a_idx = np.nonzero(anchor_grid.anchor_class == ci)[0]
        s = scores[a_idx].reshape(-1)
        d = deltas[a_idx].reshape(-1, 7)
        an = anchor_grid.anchors[a_idx].reshape(-1, 7)
        cand = np.nonzero(s >= score_threshold)[0]
        cand = cand[np.argsort(-s[cand])][:pre_nms]
        boxes = decode_boxes(d[cand], an[cand])
        keep = nms(boxes, s[cand], nms_iou, max_out)
        out.append((boxes[keep] if len(keep) else np.zeros((0, 7), np.float32), s[cand][keep] if len(keep) else np.zeros(0),
                    np.full(len(keep), ci)))
    return out


class ApAccumulator:
    """All-point interpolated AP (OpenCOOD eval_utils.calculate_ap) for one class at several IoU thresholds."""

    def __init__(self, thresholds=(0.3, 0.5, 0.7)):
        self.thresholds = thresholds
        self.records = {t: [] for t in thresholds}  # (score, tp)
        self.gt_count = 0

    def add(self, det_boxes: np.ndarray, det_scores: np.ndarray, gt_boxes: np.ndarray) -> None:
        self.gt_count += len(gt_boxes)
        order = np.argsort(-det_scores)
        ious = np.array([bev_iou_many(det_boxes[i], gt_boxes) for i in order]) if len(order) else np.zeros((0, len(gt_boxes)))
        for t in self.thresholds:
            used = np.zeros(len(gt_boxes), bool)
            for row, i in enumerate(order):
                tp = 0
                if len(gt_boxes):
                    cand = np.where(used, -1.0, ious[row])
                    j = int(np.argmax(cand))
                    if cand[j] >= t:
                        used[j] = True
                        tp = 1
                self.records[t].append((float(det_scores[i]), tp))

    def ap(self) -> dict:
        out = {}
        for t, rec in self.records.items():
            if self.gt_count == 0:
                out[t] = None
                continue
            rec = sorted(rec, key=lambda r: -r[0])
            tp = np.cumsum([r[1] for r in rec]) if rec else np.zeros(0)
            fp = np.cumsum([1 - r[1] for r in rec]) if rec else np.zeros(0)
            recall = tp / self.gt_count
            precision = tp / np.maximum(tp + fp, 1e-9)
            mrec = np.concatenate([[0.0], recall, [1.0]])
            mpre = np.concatenate([[0.0], precision, [0.0]])
            for i in range(len(mpre) - 2, -1, -1):
                mpre[i] = max(mpre[i], mpre[i + 1])
            idx = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
            out[t] = float(np.sum((mrec[idx] - mrec[idx - 1]) * mpre[idx]))
        return out
