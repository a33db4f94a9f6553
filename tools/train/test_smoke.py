#!/usr/bin/python3
"""Tests of tools/train (unittest, no pytest needed):  /usr/bin/python3 tools/train/test_smoke.py  [-k warp]

Fast tests: the warp (a feature blob lands in the cell computed by hand; arbitrary poses agree with a direct
per-cell bilinear reference), the packed pillar feature net against the padded (ONNX) one, box encoding, target
assignment, the dihedral augmentation, the channel-reduction pair's PCA start and int8 stand-in, quantize.py's
rewrite of the backbone's upsampling (against torch's ConvTranspose) and where it puts the shuffle. The end-to-end
test (`-k end_to_end`, ~1 min) exports shards from the real DAIR-V2X-C sample with the TypeScript CLI, reads them,
trains two steps and exports + verifies the ONNX models, then runs train_compressor.py --quick on that checkpoint
(train, evaluate, export, verify in ONNX Runtime, install into the run's manifest and read it back with the
runtime's reader).
"""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import warnings

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

from data import (DIHEDRAL, AgentData, AnchorClass, AnchorGrid, Sample, ShardSet, assign_targets, decode_boxes,  # noqa: E402
                  encode_boxes, select_agents, transform_sample, unpack_pillars)
from model import AttentionFusion, Grid, PillarFeatureNet, max_fusion, warp_theta, warp_to_ego  # noqa: E402
from train_compressor import ChannelReduction, int8_round_trip  # noqa: E402

warnings.filterwarnings("ignore", message="scatter_reduce")
torch.set_num_threads(2)

GRID_JSON = {"xMin": -51.2, "xMax": 51.2, "yMin": -51.2, "yMax": 51.2, "zMin": -3, "zMax": 1, "cellSize": 0.4,
             "featureStride": 2, "channels": 64}
GRID = Grid.from_json(GRID_JSON)
ANCHORS = [AnchorClass("vehicle", 4.5, 2.0, 1.6, -0.9, (0.0, math.pi / 2), 0.6, 0.45),
           AnchorClass("pedestrian", 0.6, 0.6, 1.75, -1.0, (0.0, math.pi / 2), 0.5, 0.35)]


def pose(yaw: float, tx: float, ty: float, tz: float = 0.0) -> np.ndarray:
    m = np.eye(4, dtype=np.float32)
    m[:2, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]]
    m[:3, 3] = [tx, ty, tz]
    return m


def feature_cell(x: float, y: float) -> tuple[int, int]:
    """(row, col) of the 128 x 128 feature cell holding (x, y): 0.8 m cells from -51.2."""
    return int(math.floor((y + 51.2) / 0.8)), int(math.floor((x + 51.2) / 0.8))


class WarpTest(unittest.TestCase):
    def blob(self, row: int, col: int) -> torch.Tensor:
        f = torch.zeros(2, 3, 128, 128)  # agent 0 = ego (empty), agent 1 = collaborator
        f[1, :, row, col] = torch.tensor([1.0, 2.0, 3.0])
        return f

    def moved_to(self, aligned: torch.Tensor) -> tuple[int, int]:
        nz = torch.nonzero(aligned[1, 0] > 0.5)
        self.assertEqual(len(nz), 1, f"one cell expected, got {nz.tolist()}")
        return tuple(nz[0].tolist())

    def test_translation_moves_the_blob_by_whole_cells(self):
        # Collaborator cell (row 64, col 64) has centre (0.4, 0.4) in its own frame. The collaborator sits 8 m ahead
        # and 4 m left of the ego (no rotation): ego (8.4, 4.4) -> col (8.4 + 51.2) / 0.8 - 0.5 = 74, row 69.
        aligned, mask = warp_to_ego(self.blob(64, 64), torch.from_numpy(np.stack([np.eye(4, dtype=np.float32), pose(0, 8, 4)])), GRID)
        self.assertEqual(self.moved_to(aligned), (69, 74))
        self.assertEqual(self.moved_to(aligned), feature_cell(8.4, 4.4))
        torch.testing.assert_close(aligned[1, :, 69, 74], torch.tensor([1.0, 2.0, 3.0]), atol=1e-5, rtol=0)
        # The mask: the collaborator's map covers ego x in [-43.2, 59.2), y in [-47.2, 55.2).
        self.assertEqual(mask[1, 0, 64, 10].item(), 1.0)  # x = -51.2 + 10.5 * 0.8 = -42.8: covered
        self.assertEqual(mask[1, 0, 64, 5].item(), 0.0)  # x = -46.8: not covered
        self.assertEqual(mask[1, 0, 2, 64].item(), 0.0)  # y = -49.2: not covered
        self.assertTrue(bool((mask[0] == 1).all()))

    def test_quarter_turn_rotates_the_blob(self):
        # Collaborator at the ego's origin, turned 90° left: its point (x, y) is the ego's (-y, x).
        # Its cell (row 64, col 74), centre (8.4, 0.4), lands at ego (-0.4, 8.4): row 74, col 63.
        aligned, _ = warp_to_ego(self.blob(64, 74), torch.from_numpy(np.stack([np.eye(4, dtype=np.float32), pose(math.pi / 2, 0, 0)])), GRID)
        self.assertEqual(self.moved_to(aligned), (74, 63))
        # Turned and moved: collaborator 9.6 m (12 cells) behind the ego facing backwards (yaw 180°): (x, y) ->
        # (-9.6 - x, -y). Centre (8.4, 0.4) -> ego (-18.0, -0.4): row 63, col 41.
        aligned, _ = warp_to_ego(self.blob(64, 74), torch.from_numpy(np.stack([np.eye(4, dtype=np.float32), pose(math.pi, -9.6, 0)])), GRID)
        self.assertEqual(self.moved_to(aligned), feature_cell(-18.0, -0.4))
        self.assertEqual(self.moved_to(aligned), (63, 41))

    def test_arbitrary_pose_matches_a_per_cell_bilinear_reference(self):
        rng = np.random.default_rng(3)
        feats = torch.from_numpy(rng.random((2, 2, 128, 128)).astype(np.float32))
        t = pose(0.7, 13.3, -21.9, 0.5)
        aligned, mask = warp_to_ego(feats, torch.from_numpy(np.stack([np.eye(4, dtype=np.float32), t])), GRID)
        src = feats[1].numpy()
        inv = np.linalg.inv(t.astype(np.float64))
        for row, col in [(5, 7), (64, 64), (100, 31), (127, 127), (0, 90), (77, 120)]:
            xe, ye = -51.2 + (col + 0.5) * 0.8, -51.2 + (row + 0.5) * 0.8
            xa, ya, _ = (inv @ np.array([xe, ye, 0.0, 1.0]))[:3]
            # Continuous pixel coordinates in the agent map (pixel centres at integers).
            fc, fr = (xa + 51.2) / 0.8 - 0.5, (ya + 51.2) / 0.8 - 0.5
            inside = -51.2 <= xa <= 51.2 and -51.2 <= ya <= 51.2
            c0, r0 = math.floor(fc), math.floor(fr)
            expected = np.zeros(2)
            for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):
                r, c = r0 + dr, c0 + dc
                wgt = (1 - abs(fr - r)) * (1 - abs(fc - c))
                if 0 <= r < 128 and 0 <= c < 128:
                    expected += wgt * src[:, r, c]
            if not inside:
                expected[:] = 0
            self.assertEqual(mask[1, 0, row, col].item(), 1.0 if inside else 0.0, f"mask at {(row, col)}")
            np.testing.assert_allclose(aligned[1, :, row, col].numpy(), expected, atol=2e-4, err_msg=f"cell {(row, col)}")

    def test_identity_and_theta_of_a_pure_translation(self):
        theta = warp_theta(torch.from_numpy(pose(0, 10.24, -5.12)[None]), GRID)[0]
        # u_a = u_e - tx / Lx: 10.24 m is 0.2 of the 51.2 m half extent.
        np.testing.assert_allclose(theta.numpy(), [[1, 0, -0.2], [0, 1, 0.1]], atol=1e-6)


class FusionTest(unittest.TestCase):
    def test_max_fusion_ignores_masked_cells(self):
        aligned = torch.zeros(2, 1, 2, 2)
        aligned[0] = 0.5
        aligned[1] = torch.tensor([[1.0, 0.2], [3.0, 0.0]])
        mask = torch.ones(2, 1, 2, 2)
        mask[1, 0, 1, 0] = 0
        np.testing.assert_allclose(max_fusion(aligned, mask)[0, 0].numpy(), [[1.0, 0.5], [0.5, 0.5]])

    def test_attention_fusion_by_hand(self):
        # One cell, C = 2, agents: ego e = (1, 0), a = (0, 2), b = (3, 3) but b masked out.
        aligned = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]).view(3, 2, 1, 1)
        mask = torch.tensor([1.0, 1.0, 0.0]).view(3, 1, 1, 1)
        fused = AttentionFusion()(aligned, mask)[0, :, 0, 0].numpy()
        # scores e·e / √2 = 1/√2, e·a / √2 = 0; softmax -> weights (σ, 1 − σ) with σ = 1 / (1 + e^(−1/√2)).
        s = 1 / (1 + math.exp(-1 / math.sqrt(2)))
        np.testing.assert_allclose(fused, [s * 1.0, (1 - s) * 2.0], rtol=1e-6)
        # Single agent: attention returns the ego's features.
        np.testing.assert_allclose(AttentionFusion()(aligned[:1], mask[:1]).numpy(), aligned[:1].numpy(), rtol=1e-6)


class PillarNetTest(unittest.TestCase):
    def test_packed_equals_padded_in_eval_mode(self):
        torch.manual_seed(0)
        pfn = PillarFeatureNet()
        with torch.no_grad():
            pfn.norm.running_mean.uniform_(-1, 1)
            pfn.norm.running_var.uniform_(0.5, 2)
            pfn.norm.weight.uniform_(0.5, 1.5)
            pfn.norm.bias.uniform_(-1, 1)
        pfn.eval()
        rng = np.random.default_rng(1)
        num_points = np.array([1, 32, 5, 17, 2], np.int64)
        points = rng.normal(0, 1, (num_points.sum(), 10)).astype(np.float32)
        padded = torch.from_numpy(unpack_pillars(points, num_points, 32))
        with torch.no_grad():
            ref = pfn(padded)
            got = pfn.forward_packed(torch.from_numpy(points), torch.from_numpy(np.repeat(np.arange(5), num_points)),
                                     torch.from_numpy(num_points), 32)
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)

    def test_unpack_layout(self):
        points = np.arange(12, dtype=np.float32).reshape(6, 2)
        out = unpack_pillars(points, np.array([2, 1, 3]), 4)
        np.testing.assert_array_equal(out[0, :2], points[:2])
        np.testing.assert_array_equal(out[1, 0], points[2])
        np.testing.assert_array_equal(out[2, :3], points[3:])
        self.assertTrue((out[0, 2:] == 0).all() and (out[1, 1:] == 0).all() and (out[2, 3] == 0).all())


class TargetsTest(unittest.TestCase):
    def test_encode_decode_round_trip_and_angle_wrap(self):
        anchors = np.array([[1.2, -3.6, -0.9, 4.5, 2.0, 1.6, 0.0], [0.4, 0.4, -1.0, 0.6, 0.6, 1.75, math.pi / 2]], np.float32)
        gt = np.array([[1.9, -3.1, -0.7, 4.2, 1.9, 1.5, 3.0], [0.5, 0.1, -0.9, 0.7, 0.5, 1.8, -1.2]], np.float32)
        d = encode_boxes(gt, anchors)
        # Heading 3.0 vs anchor 0: the box is the same as one at 3.0 − π = −0.1416 (in [−π/2, π/2)).
        self.assertAlmostEqual(float(d[0, 6]), 3.0 - math.pi, places=5)
        self.assertAlmostEqual(float(d[0, 0]), 0.7 / math.sqrt(4.5 ** 2 + 4), places=6)
        back = decode_boxes(d, anchors)
        np.testing.assert_allclose(back[:, :6], gt[:, :6], rtol=1e-5, atol=1e-5)
        # Yaw equal modulo π.
        np.testing.assert_allclose(np.sin(2 * back[:, 6]), np.sin(2 * gt[:, 6]), atol=1e-5)

    def test_a_vehicle_on_an_anchor_is_positive_there_and_unseen_boxes_are_ignored(self):
        ag = AnchorGrid(GRID_JSON, ANCHORS)
        # A car exactly on the anchor of feature cell (row 70, col 80) heading along y (anchor yaw index 1).
        x, y = -51.2 + 80.5 * 0.8, -51.2 + 70.5 * 0.8
        gt = np.array([[x, y, -0.9, 4.5, 2.0, 1.6, math.pi / 2], [-20.0, -20.0, -0.9, 4.5, 2.0, 1.6, 0.0]], np.float32)
        t = assign_targets(ag, gt, np.array([0, 0]), np.array([True, False]))
        self.assertEqual(t.labels[1, 70, 80], 1.0)
        self.assertEqual(t.weights[1, 70, 80], 1.0)
        np.testing.assert_allclose(t.box_targets[1, :, 70, 80], np.zeros(7), atol=1e-6)
        # The other heading of the same cell: standup IoU of 4.5x2 vs 2x4.5 = 4/(18 - 4) < 0.45: negative.
        self.assertEqual(t.labels[0, 70, 80], 0.0)
        self.assertEqual(t.weights[0, 70, 80], 1.0)
        # Pedestrian anchors never match a vehicle.
        self.assertEqual(t.labels[2:].sum(), 0.0)
        # The unseen car: no positive, and its best anchor is ignored rather than taught as background.
        r, c = feature_cell(-20.0, -20.0)
        self.assertEqual(t.labels[0, r - 1:r + 2, c - 1:c + 2].sum(), 0.0)
        self.assertEqual(t.weights[0, r, c], 0.0)
        self.assertEqual(t.positives, int(t.labels.sum()))
        # Far from everything: negative, counted.
        self.assertEqual(t.labels[:, 10, 10].tolist(), [0.0] * 4)
        self.assertEqual(t.weights[:, 10, 10].tolist(), [1.0] * 4)

    def test_pedestrian_gets_its_best_anchor(self):
        ag = AnchorGrid(GRID_JSON, ANCHORS)
        # Between anchor centres: no anchor reaches 0.5 IoU, the best one is still positive.
        gt = np.array([[0.7, 0.7, -1.0, 0.6, 0.6, 1.75, 0.3]], np.float32)
        t = assign_targets(ag, gt, np.array([1]), np.array([True]))
        self.assertGreaterEqual(t.labels[2:].sum(), 1.0)
        self.assertEqual(t.labels[:2].sum(), 0.0)


class AugmentTest(unittest.TestCase):
    def sample(self) -> Sample:
        # One ego with two pillars; one collaborator 20 m ahead turned 90°; a box around the ego's first pillar.
        pts = np.array([[10.1, 5.3, -1.0, 0.5, 0.0, 0.0, 0.0, 0.1 - 0.0, 5.3 - 5.2, 0.0],
                        [-3.3, 7.7, -1.5, 0.2, 0.0, 0.0, 0.0, -3.3 + 3.4, 7.7 - 7.6, -0.5]], np.float32)
        pts[0, 7] = 10.1 - (-51.2 + (math.floor((10.1 + 51.2) / 0.4) + 0.5) * 0.4)
        pts[1, 7] = -3.3 - (-51.2 + (math.floor((-3.3 + 51.2) / 0.4) + 0.5) * 0.4)
        pts[0, 8] = 5.3 - (-51.2 + (math.floor((5.3 + 51.2) / 0.4) + 0.5) * 0.4)
        pts[1, 8] = 7.7 - (-51.2 + (math.floor((7.7 + 51.2) / 0.4) + 0.5) * 0.4)
        coords = np.array([[math.floor((p[1] + 51.2) / 0.4), math.floor((p[0] + 51.2) / 0.4)] for p in pts], np.int64)
        ego = AgentData("e", "vehicle", pts, np.array([1, 1]), coords, np.eye(4, dtype=np.float32))
        collab = AgentData("c", "vehicle", pts.copy(), np.array([1, 1]), coords.copy(), pose(math.pi / 2, 20, 0))
        boxes = np.array([[10.0, 5.0, -1.0, 4.0, 2.0, 1.5, 0.3]], np.float32)
        return Sample("s", [ego, collab], boxes, np.array([0]), np.array([[1, 1]]))

    def test_every_dihedral_element_keeps_the_scene_consistent(self):
        s = self.sample()
        for s2 in DIHEDRAL:
            t = transform_sample(s, s2, 256)
            for a_old, a_new in zip(s.agents, t.agents):
                # Pillar cell = cell of its (transformed) raw x, y; the centre offsets still point to that cell's centre.
                for p in range(len(a_new.coords)):
                    x, y = a_new.points[p, 0], a_new.points[p, 1]
                    self.assertEqual(tuple(a_new.coords[p]), (math.floor((y + 51.2) / 0.4), math.floor((x + 51.2) / 0.4)))
                    cx, cy = -51.2 + (a_new.coords[p, 1] + 0.5) * 0.4, -51.2 + (a_new.coords[p, 0] + 0.5) * 0.4
                    self.assertAlmostEqual(float(a_new.points[p, 7]), x - cx, places=4)
                    self.assertAlmostEqual(float(a_new.points[p, 8]), y - cy, places=4)
                # A point of the agent lands in the same place of the ego frame as before, transformed by S.
                p_old = a_old.agent_to_ego @ np.array([*a_old.points[0, :3], 1.0])
                p_new = a_new.agent_to_ego @ np.array([*a_new.points[0, :3], 1.0])
                np.testing.assert_allclose(p_new[:2], s2 @ p_old[:2], atol=1e-4)
                np.testing.assert_allclose(p_new[2], p_old[2], atol=1e-5)
            # The box: centre transformed; the ego point (10.1, 5.3) that was inside stays inside (heading checks yaw).
            b = t.gt_boxes[0]
            np.testing.assert_allclose(b[:2], s2 @ s.gt_boxes[0, :2], atol=1e-5)
            px, py = t.agents[0].points[0, :2]
            dx, dy = px - b[0], py - b[1]
            c, sn = math.cos(b[6]), math.sin(b[6])
            self.assertLessEqual(abs(c * dx + sn * dy), b[3] / 2)
            self.assertLessEqual(abs(-sn * dx + c * dy), b[4] / 2)
            # The box corner (l/2, w/2) direction: the corner maps to a corner.
            corner = s.gt_boxes[0, :2] + np.array([[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]]) @ np.array([2.0, 1.0])
            moved = s2 @ corner
            local = np.array([[c, sn], [-sn, c]]) @ (moved - b[:2])
            np.testing.assert_allclose(np.abs(local), [2.0, 1.0], atol=1e-4)

    def test_select_agents(self):
        s = self.sample()
        rng = np.random.default_rng(0)
        self.assertEqual([a.id for a in select_agents(s, rng, 4, 0.0, 1.0).agents], ["e"])
        kept = select_agents(s, rng, 4, 0.0, 0.0)
        self.assertEqual([a.id for a in kept.agents], ["e", "c"])
        self.assertEqual(select_agents(s, rng, 1, 0.0, 0.0).gt_points.shape, (1, 1))


class ChannelReductionTest(unittest.TestCase):
    def test_pca_start_reconstructs_features_of_low_rank_exactly(self):
        # Non-negative 8-channel features that lie in a 2-dimensional affine subspace: PCA with 8 / 4 = 2 components
        # must reproduce them (up to float32), and through the 3x3 decoder only its centre tap may act.
        rng = np.random.default_rng(5)
        basis = rng.random((8, 2)).astype(np.float32)
        codes = rng.random((2, 2, 6, 6)).astype(np.float32)
        x = torch.from_numpy(np.einsum("ck,nkhw->nchw", basis, codes) + 0.5)
        flat = x.permute(0, 2, 3, 1).reshape(-1, 8).double()
        mean = flat.mean(0)
        evals, evecs = torch.linalg.eigh(torch.cov(flat.T, correction=0))
        components = evecs[:, torch.argsort(evals, descending=True)].float()
        pair = ChannelReduction(8, 4)
        pair.init_pca(mean.float(), components)
        with torch.no_grad():
            self.assertEqual(tuple(pair.encoder(x).shape), (2, 2, 6, 6))
            torch.testing.assert_close(pair(x), x, atol=1e-5, rtol=1e-5)
            # A rank-2 code cannot carry a third direction: the error shows up once the data leaves the subspace.
            y = x.clone()
            y[:, 0] += 1.0
            self.assertGreater(float(((pair(y) - y) ** 2).sum() / (y ** 2).sum()), 1e-3)
        with self.assertRaises(ValueError):
            ChannelReduction(64, 5)

    def test_int8_round_trip_matches_the_codec_bound(self):
        rng = np.random.default_rng(6)
        z = torch.from_numpy(rng.normal(0, 3, (2, 4, 16, 16)).astype(np.float32))
        z[1, 2] = 1.25  # a constant channel comes back exactly
        q = int8_round_trip(z)
        scale = (z.flatten(2).amax(2) - z.flatten(2).amin(2)) / 255
        err = (q - z).abs().flatten(2).amax(2)
        self.assertTrue(bool((err <= scale / 2 + 1e-5).all()), f"{err} vs {scale / 2}")
        torch.testing.assert_close(q.flatten(2).amin(2), z.flatten(2).amin(2))
        torch.testing.assert_close(q[1, 2], z[1, 2])


class QuantizeUpsamplingTest(unittest.TestCase):
    """quantize.py's ConvTranspose -> 1x1 Conv + DepthToSpace rewrite, against torch's own ConvTranspose."""

    def graph(self, kernel: int, stride: int):
        from onnx import TensorProto, helper, numpy_helper
        g = torch.Generator().manual_seed(3)
        w = torch.randn(6, 4, kernel, kernel, generator=g)  # [C_in, C_out, k, k]
        b = torch.randn(4, generator=g)
        bn = [torch.rand(4, generator=g) + 0.5, torch.randn(4, generator=g), torch.randn(4, generator=g), torch.rand(4, generator=g) + 0.1]
        inits = [numpy_helper.from_array(t.numpy(), n) for t, n in zip([w, b, *bn], ["w", "b", "gamma", "beta", "mean", "var"])]
        nodes = [
            helper.make_node("ConvTranspose", ["x", "w", "b"], ["up"], name="/up/ConvTranspose", kernel_shape=[kernel, kernel], strides=[stride, stride]),
            helper.make_node("BatchNormalization", ["up", "gamma", "beta", "mean", "var"], ["bn"], epsilon=1e-3),
            helper.make_node("Relu", ["bn"], ["relu"]),
            helper.make_node("Concat", ["relu", "skip"], ["y"], axis=1),
        ]
        out_hw = (5 - 1) * stride + kernel
        graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 5, 5]),
                                               helper.make_tensor_value_info("skip", TensorProto.FLOAT, [1, 3, out_hw, out_hw])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 7, out_hw, out_hw])], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

        def reference(x: np.ndarray, skip: np.ndarray) -> np.ndarray:
            up = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), w, b, stride=stride)
            bnd = torch.nn.functional.batch_norm(up, bn[2], bn[3], bn[0], bn[1], training=False, eps=1e-3)
            return torch.cat([torch.relu(bnd), torch.from_numpy(skip)], 1).numpy()
        return model, reference, out_hw

    def test_kernel_equal_to_stride_becomes_a_conv_and_a_shuffle_with_the_same_output(self):
        import quantize
        model, reference, hw = self.graph(2, 2)
        rewritten = quantize.upsampling_as_conv(model)
        self.assertEqual([n.op_type for n in rewritten.graph.node], ["Conv", "Relu", "DepthToSpace", "Concat"])
        g = np.random.default_rng(5)
        x = g.standard_normal((1, 6, 5, 5)).astype(np.float32)
        skip = g.standard_normal((1, 3, hw, hw)).astype(np.float32)
        got = quantize.run_float(rewritten, {"x": x, "skip": skip})["y"]
        np.testing.assert_allclose(got, reference(x, skip), atol=1e-5)

    def test_other_upsamplings_are_left_alone(self):
        import quantize
        model, _, _ = self.graph(3, 2)
        self.assertIs(quantize.upsampling_as_conv(model), model)

    def test_the_shuffle_runs_on_the_quantised_bytes_with_the_concat_range(self):
        import quantize
        model = quantize.upsampling_as_conv(self.graph(2, 2)[0])
        ranges = {"x": (0.0, 2.0), "up_ConvTranspose_as_conv_relu": (0.0, 1.0), "y": (0.0, 3.0)}
        quantize.shuffle_ranges_as_their_concat(model, ranges)
        self.assertEqual(ranges["up_ConvTranspose_as_conv_relu"], (0.0, 3.0))
        q = quantize.quantize_graph(model, ranges, "u8", set())
        producer = {o: n for n in q.graph.node for o in n.output}
        d2s = next(n for n in q.graph.node if n.op_type == "DepthToSpace")
        self.assertEqual(producer[d2s.input[0]].op_type, "QuantizeLinear")
        users = [n for n in q.graph.node if d2s.output[0] in n.input]
        self.assertEqual([n.op_type for n in users], ["DequantizeLinear"])
        read = {i for n in q.graph.node for i in n.input} | {o.name for o in q.graph.output}
        self.assertEqual([n.name for n in q.graph.node if n.output[0] not in read], [], "nodes whose output nothing reads")
        self.assertEqual(len({o for n in q.graph.node for o in n.output}), sum(len(n.output) for n in q.graph.node), "an output name twice")

        # The canvas taken already quantised: uint8, channels last, through a Transpose where the QuantizeLinear was.
        from onnx import TensorProto
        c, scale = quantize.quantized_canvas_input(q, "x")
        self.assertAlmostEqual(scale, float(np.float32(2.0 / 255)), places=12)
        (x,) = [i for i in c.graph.input if i.name == "x"]
        self.assertEqual(x.type.tensor_type.elem_type, TensorProto.UINT8)
        self.assertEqual([d.dim_value for d in x.type.tensor_type.shape.dim], [1, 5, 5, 6])
        users = [n for n in c.graph.node if "x" in n.input]
        self.assertEqual([(n.op_type, list(n.attribute[0].ints)) for n in users], [("Transpose", [0, 3, 1, 2])])
        self.assertFalse(any(n.op_type == "QuantizeLinear" and n.input[0] == "x" for n in c.graph.node))


@unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(ROOT, "node_modules", "tsx")), "needs node + tsx")
class EndToEndTest(unittest.TestCase):
    def test_end_to_end_dair_shards_train_export(self):
        dair = os.path.join(os.path.dirname(ROOT), "shared", "data", "dair-v2x-c-example", "cooperative-vehicle-infrastructure")
        if not os.path.isdir(dair):
            self.skipTest(f"{dair} not present")
        with tempfile.TemporaryDirectory(prefix="v2xfuse-train-smoke-") as tmp:
            shards = os.path.join(tmp, "shards")
            script = ("const { Command } = await import('commander');"
                      "const { registerExportTraining } = await import('./src/cli/export-training.ts');"
                      "const p = new Command(); registerExportTraining(p);"
                      f"await p.parseAsync(['export-training', {json.dumps(dair)}, '--out', {json.dumps(shards)}, '--ego', 'all', "
                      "'--skip-missing', '--json'], { from: 'user' });")
            r = subprocess.run(["node", "--import", "tsx", "--input-type=module", "-e", script], cwd=ROOT, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["samples"], 20)
            ss = ShardSet(shards)
            self.assertEqual(len(ss), 20)
            s = ss.read(0)
            self.assertEqual(len(s.agents), 2)
            np.testing.assert_array_equal(s.agents[0].agent_to_ego, np.eye(4, dtype=np.float32))
            self.assertEqual(int(s.agents[0].num_points.sum()), s.agents[0].points.shape[0])
            self.assertTrue((s.agents[0].coords >= 0).all() and (s.agents[0].coords < 256).all())
            # Pillar features are internally consistent: x − x_c matches the cell (within float16).
            a = s.agents[0]
            cx = -51.2 + (a.coords[a.pillar_index(), 1] + 0.5) * 0.4
            np.testing.assert_allclose(a.points[:, 0] - a.points[:, 7], cx, atol=0.04)
            self.assertGreater(len(s.gt_boxes), 0)

            import train  # noqa: E402
            run = os.path.join(tmp, "run")
            code = train.main(["--shards", shards, "--val", shards, "--out", run, "--fusion", "attention", "--max-steps", "2",
                               "--val-samples", "2", "--threads", "2", "--seed", "3"])
            self.assertEqual(code, 0)
            with open(os.path.join(run, "onnx", "manifest.json"), encoding="utf-8") as f:
                manifest = json.load(f)
            for name in ("lidar_pfn", "lidar_backbone", "fusion_attention", "detection_head"):
                entry = manifest["models"][name]
                self.assertEqual(set(entry), {"file", "sha256"})  # the runtime's schema is strict there
                self.assertTrue(os.path.exists(os.path.join(run, "onnx", entry["file"])))
                self.assertLess(manifest["modelCard"][name]["bytes"], 5e6)
            self.assertEqual(manifest["modelCard"]["lidar_pfn"]["inputs"][0]["shape"], ["P", 32, 10])
            self.assertEqual(manifest["modelCard"]["detection_head"]["outputs"][1]["shape"], [1, 28, 128, 128])
            self.assertEqual(manifest["formatVersion"], 1)
            self.assertEqual([a["cls"] for a in manifest["anchors"]], ["vehicle", "pedestrian"])
            self.assertIsNone(manifest["accuracy"])
            self.assertEqual(manifest["training"]["fusion"], "attention")

            # The channel-reduction pairs on that (frozen) detector: --quick trains, evaluates, exports, verifies in
            # ONNX Runtime, installs into the run's manifest and reads it back with src/perception/manifest.ts.
            import train_compressor  # noqa: E402
            comp = os.path.join(tmp, "compressor")
            code = train_compressor.main(["--checkpoint", os.path.join(run, "checkpoint-last.pt"), "--shards", shards,
                                          "--val", shards, "--out", comp, "--quick", "--threads", "1", "--seed", "3",
                                          "--eval", shards, "--eval-frames", "2", "--install", os.path.join(run, "onnx")])
            self.assertEqual(code, 0)
            with open(os.path.join(run, "onnx", "manifest.json"), encoding="utf-8") as f:
                manifest = json.load(f)
            self.assertEqual(sorted(manifest["models"]["channel_reduction"], key=int), ["4", "16", "64"])
            for r, pair in manifest["models"]["channel_reduction"].items():
                for role in ("encoder", "decoder"):
                    self.assertEqual(set(pair[role]), {"file", "sha256"})
                    self.assertEqual(pair[role]["file"], f"channel_{role}_c{r}.onnx")
                    card = manifest["channelReduction"]["modelCard"][pair[role]["file"]]
                    self.assertLess(card["bytes"], 300_000)
                enc = manifest["channelReduction"]["modelCard"][pair["encoder"]["file"]]
                self.assertEqual(enc["outputs"][0]["shape"], [1, 64 // int(r), 128, 128])
            acc = manifest["channelReduction"]["accuracy"]
            seq = next(iter(acc["sequences"].values()))
            self.assertEqual(seq["frames"], 2)
            self.assertTrue({"none", "attention", "c4", "c16", "c64", "c4+int8", "c16+int8", "c64+int8"} <= set(seq), seq)
            self.assertEqual(acc["bytesPerCollaboratorMessage"]["c16+int8"], 4 * 128 * 128)
            with open(os.path.join(comp, "log.jsonl"), encoding="utf-8") as f:
                steps = [json.loads(line) for line in f if '"step"' in line and "validation" not in line]
            self.assertEqual(steps[-1]["step"], 6)


class CameraLiftTest(unittest.TestCase):
    """The lift's tensor plumbing: a sample lands in the cell its grid entry belongs to, under the channel
    (feature c, height z) -> c * Z + z, invalid samples and cameras that do not see a cell stay out of its mean."""

    def test_a_sampled_pixel_lands_in_its_cell_and_cameras_are_averaged(self):
        from camera_model import CameraLift  # noqa: E402

        grid = Grid.from_json({**GRID_JSON, "xMin": -3.2, "xMax": 3.2, "yMin": -3.2, "yMax": 3.2})  # 8 x 8 cells
        cf, z, h, w = 3, 2, 6, 10
        lift = CameraLift(grid, image_channels=cf, heights=z, channels=4)
        feats = torch.zeros(2, cf, h, w)
        feats[0, :, 2, 7] = torch.tensor([1.0, 2.0, 3.0])  # camera 0, pixel (row 2, col 7)
        feats[1, :, 4, 1] = torch.tensor([3.0, 4.0, 5.0])  # camera 1, pixel (row 4, col 1)
        sgrid = torch.full((2, z, 64, 2), -2.0)
        valid = torch.zeros(2, z, 64)

        def at(cam, k, cell, row, col):
            # align_corners=False: pixel i's centre is at (2i + 1) / size - 1.
            sgrid[cam, k, cell] = torch.tensor([(2 * col + 1) / w - 1, (2 * row + 1) / h - 1])
            valid[cam, k, cell] = 1

        at(0, 1, 5 * 8 + 3, 2, 7)  # cell (row 5, col 3), height 1: camera 0 only
        at(0, 0, 9, 2, 7)  # cell 9, height 0: both cameras -> their mean
        at(1, 0, 9, 4, 1)
        sgrid[1, 1, 20] = torch.tensor([0.0, 0.0])  # a grid entry marked invalid must not count
        out = lift.lift(feats, sgrid, valid)[0]  # [cf * z + z, 8, 8]
        self.assertEqual(tuple(out.shape), (cf * z + z, 8, 8))
        torch.testing.assert_close(out[[c * z + 1 for c in range(cf)], 5, 3], torch.tensor([1.0, 2.0, 3.0]))
        torch.testing.assert_close(out[[c * z + 0 for c in range(cf)], 1, 1], torch.tensor([2.0, 3.0, 4.0]))
        self.assertEqual(float(out[:cf * z].abs().sum()), 6.0 + 9.0)
        seen = out[cf * z:]
        self.assertEqual(seen[1, 5, 3].item(), 1.0)
        self.assertEqual(seen[0, 1, 1].item(), 1.0)
        self.assertEqual(float(seen.sum()), 2.0)  # cell 20 (marked invalid) is not seen
        self.assertEqual(tuple(lift(feats, sgrid, valid).shape), (1, 4, 8, 8))


@unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(ROOT, "node_modules", "tsx")), "needs node + tsx")
class CameraEndToEndTest(unittest.TestCase):
    def test_camera_shards_train_export_install(self):
        """Simulated cameras -> export-training --cameras (images and sampling grids from TypeScript) -> a 1-step
        LiDAR detector as the frozen teacher -> train_camera.py --quick -> ONNX verified in onnxruntime-node ->
        installed into the run's manifest and read back by src/perception/manifest.ts."""
        with tempfile.TemporaryDirectory(prefix="v2xfuse-camera-smoke-") as tmp:
            seq = os.path.join(tmp, "fixture-s5")
            shards = os.path.join(tmp, "shards")
            for argv in (["simulate", "--scenario", "fixture", "--frames", "2", "--seed", "5", "--out", seq],
                         ["export-training", seq, "--out", shards, "--ego", "all", "--cameras", "--json"]):
                r = subprocess.run(["node", "--import", "tsx", "src/cli/main.ts", *argv], cwd=ROOT, capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stderr)
            from train_camera import CameraShards  # noqa: E402
            cs = CameraShards(shards)
            self.assertEqual(len(cs), 4)  # 2 frames x 2 vehicles (the RSU ego is not a training sample)
            sample, images, sgrid, valid = cs.read(0)
            self.assertEqual(images.shape, (4, 3, 192, 256))
            self.assertEqual(sgrid.shape, (4, 4, 128 * 128, 2))
            self.assertEqual(valid.shape, (4, 4, 128 * 128))
            # valid <-> inside the image; invalid entries are -2 (camera-lift.ts INVALID_SAMPLE)
            inside = (np.abs(sgrid) <= 1).all(axis=-1)
            np.testing.assert_array_equal(inside, valid > 0)
            self.assertTrue((sgrid[valid == 0] == -2).all())
            self.assertGreater(valid.mean(), 0.05)

            import train  # noqa: E402
            run = os.path.join(tmp, "run")
            self.assertEqual(train.main(["--shards", shards, "--out", run, "--max-steps", "1", "--threads", "1", "--seed", "3"]), 0)
            import train_camera  # noqa: E402
            cam_run = os.path.join(tmp, "camera")
            code = train_camera.main(["--checkpoint", os.path.join(run, "checkpoint-last.pt"), "--shards", shards, "--val", shards,
                                      "--out", cam_run, "--quick", "--seed", "3", "--install", os.path.join(run, "onnx")])
            self.assertEqual(code, 0)
            with open(os.path.join(run, "onnx", "manifest.json"), encoding="utf-8") as f:
                manifest = json.load(f)
            for name in ("camera_backbone", "camera_lift"):
                self.assertEqual(set(manifest["models"][name]), {"file", "sha256"})
                self.assertLess(manifest["modelCard"][name]["bytes"], 5e6)
            self.assertEqual(manifest["camera"]["heights"], [-1.7, -1.1, -0.5, 0.1])
            self.assertEqual((manifest["camera"]["width"], manifest["camera"]["height"]), (256, 192))
            self.assertEqual(manifest["modelCard"]["camera_lift"]["outputs"][0]["shape"], [1, 64, 128, 128])
            self.assertTrue(manifest["cameraTraining"]["quick"])
            self.assertIn("featureCosine", manifest["cameraTraining"]["monitoringValidation"])


class PredictorTest(unittest.TestCase):
    """tools/train/train_predictor.py: the learned motion predictor."""

    def test_untrained_modes_start_at_constant_velocity_and_only_the_winner_is_regressed(self):
        from train_predictor import MotionPredictorNet, losses
        net = MotionPredictorNet(history_steps=4, future_steps=3, modes=2, hidden=8, rate_hz=10.0)
        torch.nn.init.zeros_(net.head.bias)  # no mode offsets: every mode is the constant-velocity extrapolation
        h = torch.tensor([[[-3.0, 0, 1], [-2.0, 0, 1], [-1.0, 0, 1], [0.0, 0, 1]]])  # 10 m/s along x
        traj, sigma, probs = net(h, torch.tensor([[1.0, 0, 0, 0]]))
        np.testing.assert_allclose(traj[0, 0].detach().numpy(), [[1, 0], [2, 0], [3, 0]], atol=1e-6)
        np.testing.assert_allclose(probs.detach().numpy(), [[0.5, 0.5]], atol=1e-6)
        self.assertTrue((sigma > 0).all())
        # The second history step is padding: no velocity, the modes stand.
        h2 = h.clone()
        h2[0, :3] = 0
        np.testing.assert_allclose(net(h2, torch.tensor([[1.0, 0, 0, 0]]))[0].detach().numpy(), 0, atol=1e-6)
        # Winner-takes-all: the mode nearer the truth gets the regression gradient, the other none.
        traj = torch.tensor([[[[1.0, 0], [2, 0], [3, 0]], [[1, 5], [2, 5], [3, 5]]]], requires_grad=True)
        loss, _ = losses(traj, torch.ones(1, 2, 3), torch.zeros(1, 2, requires_grad=True), torch.tensor([[[1.0, 0.5], [2, 0.5], [3, 0.5]]]), 1.0, 0.0)
        loss.backward()
        self.assertGreater(traj.grad[0, 0].abs().sum().item(), 0)
        self.assertEqual(traj.grad[0, 1].abs().sum().item(), 0)

    @unittest.skipUnless(shutil.which("node") and os.path.isdir(os.path.join(ROOT, "node_modules", "tsx")), "needs node + tsx")
    def test_quick_run_from_exported_tracks_exports_and_installs(self):
        import train_predictor
        with tempfile.TemporaryDirectory(prefix="v2xfuse-predictor-") as tmp:
            samples = os.path.join(tmp, "samples")
            r = subprocess.run(["node", "--import", "tsx", "src/cli/main.ts", "export-tracks", "datasets/fixture/fixture-s1", "--out", samples,
                                "--history", "2", "--future", "1"], cwd=ROOT, capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            models = os.path.join(tmp, "models")
            os.makedirs(models)
            shutil.copyfile(os.path.join(ROOT, "models", "manifest.json"), os.path.join(models, "manifest.json"))
            summary = train_predictor.main(["--train", samples, "--val", samples, "--out", os.path.join(tmp, "run"), "--quick",
                                            "--seed", "2", "--install", models])
            self.assertLess(summary["onnxBytes"], 1e6)
            with open(os.path.join(models, "manifest.json"), encoding="utf-8") as f:
                entry = json.load(f)["models"]["motion_predictor"]
            self.assertEqual((entry["historySteps"], entry["horizonSteps"], entry["modes"], entry["rateHz"]), (2, 1, 6, 10))
            from export import sha256
            self.assertEqual(entry["sha256"], sha256(os.path.join(models, "predictor.onnx")))


if __name__ == "__main__":
    unittest.main()
