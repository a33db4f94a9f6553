#!/usr/bin/env python3
"""Writes the tiny ONNX models, manifest and torch reference outputs the TypeScript perception tests run against.

    /usr/bin/python3 tools/make-test-models.py      (torch 1.13, numpy; writes test/fixtures/onnx/)

The models have the input/output names and ranks of the real ones (docs: models/README.md, "ONNX models")
but a handful of channels on a 12 x 8 pillar grid, so the runtime tests exercise the real loading code (manifest,
sha256, dynamic P and K axes, device option, preallocated outputs) in milliseconds and the files stay a few KB.

Reference outputs are torch's own, for inputs built here independently of the TypeScript code:
  - reference.json: two point clouds, pillarised here in numpy by the rules src/perception/pillarize.ts documents,
    their backbone output, the head's raw outputs on the first, and attention fusion of K = 3 random maps;
  - warp-reference.json: feature maps resampled into an ego grid with F.grid_sample (bilinear, zeros,
    align_corners=False) from the sampling grid the fusion contract defines; the centred case is cross-checked
    against F.affine_grid.
Everything is seeded, so re-running gives the same weights and references (the sha256 in the manifest may still
change across torch versions, as the ONNX bytes do).
"""
import hashlib
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, 'test', 'fixtures', 'onnx')
OPSET = 17

# Tiny grid: 12 x 8 pillars of 0.4 m, stride 2 -> 6 x 4 features. Deliberately not square, so an H/W mix-up fails.
GRID = dict(xMin=-2.4, xMax=2.4, yMin=-1.6, yMax=1.6, zMin=-3.0, zMax=1.0, cellSize=0.4, featureStride=2, channels=2)
PILLAR_W, PILLAR_H = 12, 8
MAX_POINTS = 32
MAX_PILLARS = 64
PFN_CHANNELS = 4
FEATURE_NAMES = ['x', 'y', 'z', 'intensity', 'xMinusMeanX', 'yMinusMeanY', 'zMinusMeanZ',
                 'xMinusCenterX', 'yMinusCenterY', 'zMinusCenterZ']
ANCHORS = [
    dict(cls='vehicle', l=4.5, w=2.0, h=1.6, z=-0.9, yaws=[0.0, math.pi / 2]),
    dict(cls='pedestrian', l=0.6, w=0.6, h=1.75, z=-1.0, yaws=[0.0, math.pi / 2]),
]
NUM_ANCHORS = sum(len(a['yaws']) for a in ANCHORS)


def randomise_batchnorm(module, gen):
    for m in module.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            m.weight.data.copy_(torch.rand(n, generator=gen) * 0.5 + 0.75)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)


class PillarFeatureNet(nn.Module):
    """OpenCOOD PFNLayer (last layer): Linear without bias, BatchNorm1d, ReLU, max over the points."""

    def __init__(self, cin, cout):
        super().__init__()
        self.linear = nn.Linear(cin, cout, bias=False)
        self.norm = nn.BatchNorm1d(cout, eps=1e-3, momentum=0.01)

    def forward(self, pillars):  # [P, 32, 10] -> [P, C]
        x = self.linear(pillars)
        x = self.norm(x.permute(0, 2, 1)).permute(0, 2, 1)
        return F.relu(x).max(dim=1)[0]


def conv_block(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU())


class Backbone(nn.Module):
    """The real backbone's shape in miniature: stride 2, a second scale at stride 4 upsampled back, concat, 1x1."""

    def __init__(self, cin, cout):
        super().__init__()
        self.down1 = conv_block(cin, 4, 2)
        self.down2 = conv_block(4, 4, 2)
        self.up2 = nn.Sequential(nn.ConvTranspose2d(4, 4, 2, stride=2, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.out = nn.Conv2d(8, cout, 1)

    def forward(self, bev_pillars):
        x1 = self.down1(bev_pillars)
        x2 = self.up2(self.down2(x1))
        return self.out(torch.cat([x1, x2], dim=1))


class DetectionHead(nn.Module):
    def __init__(self, c, anchors):
        super().__init__()
        self.cls = nn.Conv2d(c, anchors, 1)
        self.box = nn.Conv2d(c, 7 * anchors, 1)

    def forward(self, bev):
        return self.cls(bev), self.box(bev)


class AttentionFusion(nn.Module):
    """OpenCOOD AttFusion: per-cell scaled dot-product self-attention across agents, masked keys, ego row kept."""

    def __init__(self, channels):
        super().__init__()
        self.channels = channels

    def forward(self, aligned, mask):  # [K, C, H, W], [K, 1, H, W] -> [1, C, H, W]
        c = self.channels
        h, w = aligned.shape[2], aligned.shape[3]
        x = aligned.flatten(2).permute(2, 0, 1)                     # [HW, K, C]
        keys_valid = mask.flatten(2).permute(2, 1, 0)               # [HW, 1, K]
        score = torch.bmm(x, x.transpose(1, 2)) * (1 / math.sqrt(c))  # [HW, K, K]
        score = score.masked_fill(keys_valid == 0, -1e9)
        context = torch.bmm(torch.softmax(score, dim=-1), x)       # [HW, K, C]
        return context[:, 0, :].permute(1, 0).reshape(1, c, h, w)


def export(model, args, path, input_names, output_names, dynamic_axes=None):
    model.eval()
    with torch.no_grad():
        torch.onnx.export(model, args, path, opset_version=OPSET, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes or {})


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def pillarise(points):
    """The Pillarizer's rules (src/perception/pillarize.ts), written again in numpy for an independent reference."""
    s, x_min, y_min, z_min, z_max = GRID['cellSize'], GRID['xMin'], GRID['yMin'], GRID['zMin'], GRID['zMax']
    cell_to_pillar, members, coords = {}, [], []
    for i, (x, y, z, _) in enumerate(points.astype(np.float64)):
        col, row = math.floor((x - x_min) / s), math.floor((y - y_min) / s)
        if not (0 <= col < PILLAR_W and 0 <= row < PILLAR_H and z_min <= z < z_max):
            continue
        p = cell_to_pillar.get((row, col))
        if p is None:
            if len(members) == MAX_PILLARS:
                continue
            p = cell_to_pillar[(row, col)] = len(members)
            members.append([])
            coords.append((row, col))
        if len(members[p]) < MAX_POINTS:
            members[p].append(i)
    feats = np.zeros((len(members), MAX_POINTS, 10), np.float32)
    z_center = z_min + (z_max - z_min) / 2
    for p, idx in enumerate(members):
        pts = points[idx].astype(np.float64)
        mean = pts[:, :3].mean(axis=0)
        row, col = coords[p]
        center = np.array([x_min + (col + 0.5) * s, y_min + (row + 0.5) * s, z_center])
        feats[p, :len(idx), :4] = pts
        feats[p, :len(idx), 4:7] = pts[:, :3] - mean
        feats[p, :len(idx), 7:10] = pts[:, :3] - center
    return feats, np.array(coords, np.int64).reshape(-1, 2)


def scatter(pillar_features, coords):
    canvas = torch.zeros(1, PFN_CHANNELS, PILLAR_H, PILLAR_W)
    for p, (row, col) in enumerate(coords):
        canvas[0, :, row, col] = pillar_features[p]
    return canvas


def make_points(gen, n, crowded_cell):
    pts = torch.empty(n, 4)
    pts[:, 0] = torch.rand(n, generator=gen) * 5.6 - 2.8     # some beyond +-2.4 m: dropped
    pts[:, 1] = torch.rand(n, generator=gen) * 3.6 - 1.8
    pts[:, 2] = torch.rand(n, generator=gen) * 3.0 - 2.5
    pts[:, 3] = torch.rand(n, generator=gen)
    if crowded_cell:  # 40 points in one pillar: the last 8 must be dropped
        extra = torch.empty(40, 4)
        extra[:, 0] = 0.45 + torch.rand(40, generator=gen) * 0.3
        extra[:, 1] = -0.75 + torch.rand(40, generator=gen) * 0.3
        extra[:, 2] = torch.rand(40, generator=gen) * 2 - 2
        extra[:, 3] = torch.rand(40, generator=gen)
        pts = torch.cat([pts[: n // 2], extra, pts[n // 2:]])
    return pts.numpy().astype(np.float32)


def flat(t, digits=8):
    a = t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return [float(f'{v:.{digits}g}') for v in a.astype(np.float64).ravel()]


# ---- warp reference -------------------------------------------------------------------------------------------

def warp_sampling_grid(h, w, x_min, y_min, s, yaw, tx, ty):
    """The fusion contract: ego cell centre -> agent frame -> normalised (u, v) for grid_sample, align_corners=False."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
    xe = x_min + (cols + 0.5) * s
    ye = y_min + (rows + 0.5) * s
    dx, dy = xe - tx, ye - ty
    c, sn = math.cos(yaw), math.sin(yaw)
    xa = c * dx + sn * dy              # p_agent = R(-yaw) (p_ego - t)
    ya = -sn * dx + c * dy
    u = 2 * (xa - x_min) / (w * s) - 1
    v = 2 * (ya - y_min) / (h * s) - 1
    return np.stack([u, v], axis=-1)[None].astype(np.float32)  # [1, H, W, 2], (x, y) order


def warp_case(gen, name, c, h, w, x_min, y_min, yaw, tx, ty, cross_check_affine):
    s = 0.8
    feat = torch.randn(1, c, h, w, generator=gen)
    grid = torch.from_numpy(warp_sampling_grid(h, w, x_min, y_min, s, yaw, tx, ty))
    out = F.grid_sample(feat, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    u, v = grid[0, ..., 0], grid[0, ..., 1]
    mask = ((u >= -1) & (u < 1) & (v >= -1) & (v < 1)).float()
    if cross_check_affine:
        # Centred grid: the same warp as OpenCOOD builds it, an affine_grid in normalised coordinates.
        assert abs(x_min + w * s / 2) < 1e-9 and abs(y_min + h * s / 2) < 1e-9
        cs, sn = math.cos(yaw), math.sin(yaw)
        theta = torch.tensor([[[cs, sn * h / w, -(cs * tx + sn * ty) / (w * s / 2)],
                               [-sn * w / h, cs, (sn * tx - cs * ty) / (h * s / 2)]]], dtype=torch.float32)
        affine = F.affine_grid(theta, [1, c, h, w], align_corners=False)
        assert torch.allclose(affine, grid, atol=1e-5), 'explicit sampling grid disagrees with affine_grid'
        out_affine = F.grid_sample(feat, affine, mode='bilinear', padding_mode='zeros', align_corners=False)
        assert torch.allclose(out_affine, out, atol=1e-5)
    grid_desc = dict(xMin=x_min, xMax=x_min + w * s, yMin=y_min, yMax=y_min + h * s, zMin=-3.0, zMax=1.0,
                     cellSize=0.4, featureStride=2, channels=c)
    return dict(name=name, grid=grid_desc, yaw=yaw, tx=tx, ty=ty, shape=[c, h, w],
                features=flat(feat[0], 9), warped=flat(out[0], 9), mask=flat(mask, 2))


def main():
    os.makedirs(OUT, exist_ok=True)
    gen = torch.Generator().manual_seed(20261121)
    torch.manual_seed(7)

    pfn = PillarFeatureNet(10, PFN_CHANNELS)
    backbone = Backbone(PFN_CHANNELS, GRID['channels'])
    head = DetectionHead(GRID['channels'], NUM_ANCHORS)
    fusion = AttentionFusion(GRID['channels'])
    for m in (pfn, backbone, head):
        randomise_batchnorm(m, gen)
        m.eval()
    # Some cells above the 0.2 score threshold, so decoding and NMS have work to do.
    with torch.no_grad():
        head.cls.bias.copy_(torch.tensor([0.5, -0.5, -1.0, -2.0]))
        head.box.weight.mul_(0.3)

    files = {
        'lidar_pfn': 'lidar_pfn.onnx',
        'lidar_backbone': 'lidar_backbone.onnx',
        'detection_head': 'detection_head.onnx',
        'fusion_attention': 'fusion_attention.onnx',
    }
    p = lambda key: os.path.join(OUT, files[key])
    export(pfn, (torch.zeros(5, MAX_POINTS, 10),), p('lidar_pfn'), ['pillars'], ['pillar_features'],
           {'pillars': {0: 'P'}, 'pillar_features': {0: 'P'}})
    export(backbone, (torch.zeros(1, PFN_CHANNELS, PILLAR_H, PILLAR_W),), p('lidar_backbone'),
           ['bev_pillars'], ['bev_features'])
    fh, fw = PILLAR_H // GRID['featureStride'], PILLAR_W // GRID['featureStride']
    export(head, (torch.zeros(1, GRID['channels'], fh, fw),), p('detection_head'), ['bev'],
           ['cls_logits', 'box_deltas'])
    export(fusion, (torch.zeros(2, GRID['channels'], fh, fw), torch.ones(2, 1, fh, fw)), p('fusion_attention'),
           ['aligned', 'mask'], ['fused'], {'aligned': {0: 'K'}, 'mask': {0: 'K'}})

    manifest = dict(
        formatVersion=1,
        modelId='test-tiny-0',
        description='Tiny random-weight models for the runtime tests (tools/make-test-models.py); not trained.',
        grid=GRID,
        pillar=dict(maxPointsPerPillar=MAX_POINTS, maxPillars=MAX_PILLARS, features=FEATURE_NAMES),
        anchors=ANCHORS,
        postprocess=dict(scoreThreshold=0.2, nmsIouThreshold=0.15, preNmsTopK=1000),
        models={k: dict(file=f, sha256=sha256(os.path.join(OUT, f))) for k, f in files.items()},
    )
    with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2)
        f.write('\n')

    frames = []
    with torch.no_grad():
        for n, crowded in ((40, True), (25, False)):
            points = make_points(gen, n, crowded)
            feats, coords = pillarise(points)
            pillar_features = pfn(torch.from_numpy(feats))
            bev = backbone(scatter(pillar_features, coords))
            frames.append(dict(points=flat(points, 9), pillarCount=len(coords), coords=coords.ravel().tolist(),
                               pillarFeatures=flat(pillar_features), bevFeatures=flat(bev[0])))
        bev0 = torch.tensor(frames[0]['bevFeatures'], dtype=torch.float32).reshape(1, GRID['channels'], fh, fw)
        cls_logits, box_deltas = head(bev0)
        k = 3
        aligned = torch.randn(k, GRID['channels'], fh, fw, generator=gen)
        mask = (torch.rand(k, 1, fh, fw, generator=gen) > 0.3).float()
        mask[0] = 1
        aligned = aligned * mask
        fused = fusion(aligned, mask)
    reference = dict(
        frames=frames,
        head=dict(input=flat(bev0[0]), clsLogits=flat(cls_logits[0]), boxDeltas=flat(box_deltas[0])),
        fusion=dict(k=k, aligned=flat(aligned, 9), mask=flat(mask, 2), fused=flat(fused[0])),
    )
    with open(os.path.join(OUT, 'reference.json'), 'w') as f:
        json.dump(reference, f, separators=(',', ':'))
        f.write('\n')

    warp = dict(
        note='F.grid_sample(bilinear, zeros, align_corners=False); features/warped are [C, H, W], mask [H, W]',
        cases=[
            warp_case(gen, 'centred-square', 5, 8, 8, -3.2, -3.2, 0.3, 0.9, -0.5, True),
            warp_case(gen, 'offset-rectangle', 3, 6, 8, 0.0, -2.4, 0.7, 1.3, -0.45, False),
        ],
    )
    with open(os.path.join(OUT, 'warp-reference.json'), 'w') as f:
        json.dump(warp, f, separators=(',', ':'))
        f.write('\n')

    for name in sorted(os.listdir(OUT)):
        print(f'{os.path.getsize(os.path.join(OUT, name)):>7} B  test/fixtures/onnx/{name}')


if __name__ == '__main__':
    main()
