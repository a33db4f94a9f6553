"""The LiDAR detector v2xfuse trains and ships as ONNX: PointPillars encoder, BEV backbone, cooperative fusion, head.

Shapes and names follow models/README.md (the contract with the TypeScript runtime):
  PillarFeatureNet  pillars [P, 32, 10]            -> pillar_features [P, 64]          (lidar_pfn.onnx)
  scatter_to_bev    [P, 64] + coords               -> [K, 64, 256, 256]                (TypeScript at run time)
  BevBackbone       bev_pillars [K, 64, 256, 256]  -> bev_features [K, C, 128, 128]    (lidar_backbone.onnx)
  warp_to_ego       agent features + agent_to_ego  -> aligned [K, C, 128, 128], mask   (TypeScript src/fusion)
  AttentionFusion   aligned, mask                  -> fused [1, C, 128, 128]           (fusion_attention.onnx)
  max_fusion        aligned, mask                  -> fused                            (TypeScript)
  DetectionHead     bev [1, C, 128, 128]           -> cls_logits [1, A, ...], box_deltas [1, 7A, ...]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class Grid:
    """The BEV grid of src/perception/grid.ts: rows along y (row 0 = yMin), columns along x (col 0 = xMin)."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    z_min: float
    z_max: float
    cell_size: float
    feature_stride: int
    channels: int

    @staticmethod
    def from_json(g: dict) -> "Grid":
        return Grid(g["xMin"], g["xMax"], g["yMin"], g["yMax"], g["zMin"], g["zMax"], g["cellSize"], g["featureStride"], g["channels"])

    def to_json(self) -> dict:
        return {"xMin": self.x_min, "xMax": self.x_max, "yMin": self.y_min, "yMax": self.y_max, "zMin": self.z_min,
                "zMax": self.z_max, "cellSize": self.cell_size, "featureStride": self.feature_stride, "channels": self.channels}

    @property
    def width(self) -> int:
        return round((self.x_max - self.x_min) / self.cell_size)

    @property
    def height(self) -> int:
        return round((self.y_max - self.y_min) / self.cell_size)

    @property
    def feature_width(self) -> int:
        return self.width // self.feature_stride

    @property
    def feature_height(self) -> int:
        return self.height // self.feature_stride

    @property
    def feature_cell(self) -> float:
        return self.cell_size * self.feature_stride


PILLAR_FEATURES = 10
PILLAR_CHANNELS = 64


class PillarFeatureNet(nn.Module):
    """OpenCOOD PFNLayer (last layer, use_norm): Linear(10 -> 64, no bias), BatchNorm over channels, ReLU, max over
    the pillar's point slots. Padded slots are zero rows, exactly as the TypeScript Pillarizer leaves them, and take
    part in the BatchNorm and the max as they do in OpenCOOD."""

    def __init__(self, in_features: int = PILLAR_FEATURES, out_channels: int = PILLAR_CHANNELS):
        super().__init__()
        self.linear = nn.Linear(in_features, out_channels, bias=False)
        self.norm = nn.BatchNorm1d(out_channels, eps=1e-3, momentum=0.1)

    def forward(self, pillars: torch.Tensor) -> torch.Tensor:
        """The exported form: padded [P, maxPoints, F] -> [P, C]."""
        x = self.linear(pillars)  # [P, N, C]
        x = self.norm(x.permute(0, 2, 1)).permute(0, 2, 1)
        return F.relu(x).max(dim=1).values  # [P, C]

    def forward_packed(self, points: torch.Tensor, point_pillar: torch.Tensor, num_points: torch.Tensor,
                       max_points: int) -> torch.Tensor:
        """The same function on packed points [N, F] (pillar p's points are the rows with point_pillar == p), for
        training: a padded [P, 32, 64] intermediate is ~4x larger than the real points and dominated the step time.

        A padded slot is a zero row, so through Linear (no bias), BatchNorm and ReLU it becomes relu(BN(0)), which
        enters the max of every pillar with fewer than max_points points: added back here explicitly. In eval mode
        (running statistics) this equals forward() exactly. In training, BatchNorm's batch statistics are taken over
        the real points only, whereas forward() would count the padded zeros too; both are self-consistent (the
        running statistics are collected the same way they are used), and the exported model uses running ones."""
        x = self.linear(points)  # [N, C]
        norm = self.norm
        if self.training:
            mean = x.mean(dim=0)
            var = x.var(dim=0, unbiased=False)
            with torch.no_grad():
                n = x.shape[0]
                m = norm.momentum
                norm.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                norm.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1, 1)), alpha=m)
                norm.num_batches_tracked.add_(1)
        else:
            mean, var = norm.running_mean, norm.running_var
        scale = norm.weight / torch.sqrt(var + norm.eps)
        shift = norm.bias - mean * scale
        y = F.relu(x * scale + shift)  # [N, C]
        pillars = num_points.shape[0]
        out = y.new_zeros(pillars, y.shape[1]).scatter_reduce(0, point_pillar[:, None].expand(-1, y.shape[1]), y,
                                                               reduce="amax", include_self=False)
        padding = F.relu(shift)  # relu(BN(0)) for a padded slot
        has_padding = (num_points < max_points)[:, None]
        return torch.where(has_padding, torch.maximum(out, padding[None, :]), out)


def scatter_to_bev(pillar_features: torch.Tensor, coords: torch.Tensor, agent_index: torch.Tensor, agents: int,
                   height: int, width: int) -> torch.Tensor:
    """OpenCOOD PointPillarScatter for K agents at once: pillar p goes to canvas[agent_index[p], :, row, col].
    coords is [P, 2] (row = y index, col = x index), as in the shards and src/perception/pillarize.ts."""
    channels = pillar_features.shape[1]
    canvas = pillar_features.new_zeros(agents * height * width, channels)
    flat = agent_index * (height * width) + coords[:, 0] * width + coords[:, 1]
    canvas = canvas.index_put((flat,), pillar_features)
    # [K, C, H, W] in channels-last memory (no copy): what the CPU convolutions prefer.
    return canvas.view(agents, height, width, channels).permute(0, 3, 1, 2)


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out, eps=1e-3),
                         nn.ReLU(inplace=True))


class BevBackbone(nn.Module):
    """A light PointPillars-style 2D backbone (sized to train on a 2-core CPU):
    block 1: stride 2 to 128² with c1 channels (`depth` 3x3 convs); block 2: stride 2 to 64² with c2 channels;
    block 2 is upsampled back to 128² (transposed conv 2x2, stride 2), concatenated with block 1, and a 1x1 conv +
    BN + ReLU gives C channels. The output is non-negative (ReLU), so zero means "nothing here" for max fusion and
    for cells outside an agent's warped grid."""

    def __init__(self, in_channels: int = PILLAR_CHANNELS, out_channels: int = 64, c1: int = 64, c2: int = 128,
                 depth: int = 3):
        super().__init__()
        self.block1 = nn.Sequential(conv_bn_relu(in_channels, c1, 2), *[conv_bn_relu(c1, c1) for _ in range(depth - 1)])
        self.block2 = nn.Sequential(conv_bn_relu(c1, c2, 2), *[conv_bn_relu(c2, c2) for _ in range(depth - 1)])
        self.up2 = nn.Sequential(nn.ConvTranspose2d(c2, c1, 2, stride=2, bias=False), nn.BatchNorm2d(c1, eps=1e-3),
                                 nn.ReLU(inplace=True))
        self.fuse = nn.Sequential(nn.Conv2d(2 * c1, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels, eps=1e-3),
                                  nn.ReLU(inplace=True))

    def forward(self, bev_pillars: torch.Tensor) -> torch.Tensor:
        x1 = self.block1(bev_pillars)
        x2 = self.up2(self.block2(x1))
        return self.fuse(torch.cat([x1, x2], dim=1))


class DetectionHead(nn.Module):
    """Two 3x3 conv + BN + ReLU, then 1x1 convs to A class logits and 7A box deltas (channel a*7 + k)."""

    def __init__(self, channels: int = 64, anchors: int = 4, hidden: int = 64):
        super().__init__()
        self.shared = nn.Sequential(conv_bn_relu(channels, hidden), conv_bn_relu(hidden, hidden))
        self.cls = nn.Conv2d(hidden, anchors, 1)
        self.box = nn.Conv2d(hidden, 7 * anchors, 1)
        # Focal-loss prior (RetinaNet): start every anchor at p = 0.01 so the many negatives do not swamp the loss.
        nn.init.constant_(self.cls.bias, -math.log((1 - 0.01) / 0.01))
        nn.init.normal_(self.box.weight, std=0.001)
        nn.init.zeros_(self.box.bias)

    def forward(self, bev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.shared(bev)
        return self.cls(x), self.box(x)


# ----------------------------------------------------------------------------------------------------------------
# Warp (the formula is written out in tools/train/README.md; src/fusion implements the same)

def rigid_2d(agent_to_ego: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(yaw, tx, ty) of the rotation about z and the x/y translation of [K, 4, 4] agent LiDAR -> ego LiDAR."""
    yaw = torch.atan2(agent_to_ego[:, 1, 0], agent_to_ego[:, 0, 0])
    return yaw, agent_to_ego[:, 0, 3], agent_to_ego[:, 1, 3]


def warp_theta(agent_to_ego: torch.Tensor, grid: Grid) -> torch.Tensor:
    """[K, 2, 3] affine_grid theta that resamples an agent's BEV map into the ego's grid.

    For an ego cell with normalised coordinates (u, v) (u along x / columns, v along y / rows, align_corners=False:
    u = -1 at x_min, +1 at x_max), its metric centre is p_e = (cx + Lx u, cy + Ly v) with c the grid centre and L
    the half extents. The same place in the agent frame is p_a = R(-yaw) (p_e - t), whose normalised coordinates
    in the agent's map are ((p_a.x - cx) / Lx, (p_a.y - cy) / Ly). So theta = N^-1 [R^T, -R^T t] N with
    N = [[Lx, 0, cx], [0, Ly, cy], [0, 0, 1]]."""
    yaw, tx, ty = rigid_2d(agent_to_ego.to(torch.float64))
    c, s = torch.cos(yaw), torch.sin(yaw)
    lx, ly = (grid.x_max - grid.x_min) / 2, (grid.y_max - grid.y_min) / 2
    cx, cy = (grid.x_max + grid.x_min) / 2, (grid.y_max + grid.y_min) / 2
    # p_a = R^T (p_e - t):  x_a = c (x_e - tx) + s (y_e - ty);  y_a = -s (x_e - tx) + c (y_e - ty)
    # with x_e = cx + lx u, y_e = cy + ly v; then u_a = (x_a - cx) / lx, v_a = (y_a - cy) / ly.
    ox, oy = cx - tx, cy - ty
    theta = torch.stack([
        torch.stack([c, s * ly / lx, (c * ox + s * oy - cx) / lx], dim=-1),
        torch.stack([-s * lx / ly, c, (-s * ox + c * oy - cy) / ly], dim=-1),
    ], dim=1)
    return theta.to(torch.float32)


def warp_to_ego(features: torch.Tensor, agent_to_ego: torch.Tensor, grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
    """Resamples [K, C, H, W] agent feature maps into the ego grid (bilinear, zeros outside, align_corners=False).
    Returns (aligned [K, C, H, W], mask [K, 1, H, W]); mask is 1 where the sampling point lies inside the agent's
    map (-1 <= u_a < 1 and -1 <= v_a < 1), and aligned is zeroed where it is 0. Agent 0 is the ego: copied as it
    is, mask all ones."""
    k, c, h, w = features.shape
    if k == 1:
        return features, features.new_ones(1, 1, h, w)
    theta = warp_theta(agent_to_ego[1:], grid)
    sampling = F.affine_grid(theta, [k - 1, c, h, w], align_corners=False)  # [K-1, H, W, 2] (u, v)
    warped = F.grid_sample(features[1:], sampling, mode="bilinear", padding_mode="zeros", align_corners=False)
    # Half-open like the grid itself (x in [xMin, xMax)), as src/fusion/warp.ts computes it.
    inside = ((sampling >= -1) & (sampling < 1)).all(dim=-1).unsqueeze(1).to(features.dtype)
    aligned = torch.cat([features[:1], warped * inside], dim=0)
    mask = torch.cat([features.new_ones(1, 1, h, w), inside], dim=0)
    return aligned, mask


def max_fusion(aligned: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Element-wise max over agents of the masked features ([K, C, H, W] -> [1, C, H, W]). Features are >= 0, and
    every cell is covered by the ego, so masked-out zeros never win over a covering agent's value."""
    return (aligned * mask).max(dim=0, keepdim=True).values


class AttentionFusion(nn.Module):
    """OpenCOOD AttFusion: per cell, scaled dot-product self-attention across the K agents' feature vectors
    (query = key = value = the features, no learned weights), keeping the ego's row. Agents whose mask is 0 at a
    cell are left out of that cell's softmax (OpenCOOD has no mask: there, uncovered cells are zero vectors that
    still take part)."""

    def forward(self, aligned: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        k, c, h, w = aligned.shape
        x = aligned.reshape(k, c, h * w).permute(2, 0, 1)  # [HW, K, C]
        query = x[:, :1, :]  # the ego's row
        score = torch.matmul(query, x.transpose(1, 2)) * (1.0 / math.sqrt(c))  # [HW, 1, K]
        valid = mask.reshape(k, 1, h * w).permute(2, 1, 0)  # [HW, 1, K]
        score = torch.where(valid > 0, score, torch.full_like(score, -1e9))
        attention = torch.softmax(score, dim=-1)
        fused = torch.matmul(attention, x)  # [HW, 1, C]
        return fused.permute(1, 2, 0).reshape(1, c, h, w)


class CooperativeDetector(nn.Module):
    """The training-time composition: shared encoder over every agent, warp into the ego grid, fusion, head."""

    def __init__(self, grid: Grid, anchors_per_cell: int, fusion: str = "max", channels: int = 64, c1: int = 64,
                 c2: int = 128, depth: int = 3):
        super().__init__()
        if fusion not in ("max", "attention", "none", "mixed"):
            raise ValueError(f"fusion must be max, attention, none or mixed, got {fusion!r}")
        self.grid = grid
        self.fusion = fusion
        self.pfn = PillarFeatureNet()
        self.backbone = BevBackbone(PILLAR_CHANNELS, channels, c1, c2, depth)
        self.attention = AttentionFusion()
        self.head = DetectionHead(channels, anchors_per_cell)

    def encode(self, points: torch.Tensor, point_pillar: torch.Tensor, num_points: torch.Tensor, coords: torch.Tensor,
               agent_index: torch.Tensor, agents: int, max_points: int = 32) -> torch.Tensor:
        pillar_features = self.pfn.forward_packed(points, point_pillar, num_points, max_points)
        canvas = scatter_to_bev(pillar_features, coords, agent_index, agents, self.grid.height, self.grid.width)
        return self.backbone(canvas)

    def forward(self, points: torch.Tensor, point_pillar: torch.Tensor, num_points: torch.Tensor, coords: torch.Tensor,
                agent_index: torch.Tensor, agent_to_ego: torch.Tensor, max_points: int = 32,
                fusion: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One sample: every agent's packed pillars (agent_index per pillar; agent 0 is the ego) -> head outputs.
        `fusion` overrides the model's mode for this call ('mixed' models train with max and attention in turn and
        use max otherwise)."""
        mode = fusion or self.fusion
        if mode == "mixed":
            mode = "max"
        agents = agent_to_ego.shape[0]
        features = self.encode(points, point_pillar, num_points, coords, agent_index, agents, max_points)
        if mode == "none" or agents == 1:
            fused = features[:1]
        else:
            aligned, mask = warp_to_ego(features, agent_to_ego, self.grid)
            fused = max_fusion(aligned, mask) if mode == "max" else self.attention(aligned, mask)
        return self.head(fused)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
