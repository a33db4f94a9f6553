"""The camera encoder v2xfuse trains and ships as two ONNX models (models/README.md, "Camera encoder"):

  CameraBackbone  images [N, 3, Hc, Wc]                        -> image_features [N, Cf, Hc/4, Wc/4]   (camera_backbone.onnx)
  CameraLift      image_features, sampling_grid [N, Z, H*W, 2],
                  valid [N, Z, H*W]                            -> bev_features [1, C, H, W]           (camera_lift.onnx)

The sampling grid is computed in TypeScript (src/perception/camera-lift.ts: each BEV feature cell's pillar points at
Z heights, projected with the cameras' intrinsics and extrinsics, normalised for grid_sample with
align_corners=False, invalid samples at -2) and reaches training through the shards: no geometry here.

The lift gathers, per BEV cell and height, the image features of every camera that sees that point (bilinear),
averages over those cameras, keeps the heights apart as channels (a pillar's bottom samples see where an object
meets the road, which is what fixes its distance), adds a per-height "seen by some camera" channel, and a small BEV
network (a full-resolution path plus a stride-2 path for context along the camera rays) turns that into C
non-negative channels in the LiDAR backbone's feature space, so the same detection head and fusion apply.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from model import Grid, conv_bn_relu

IMAGE_STRIDE = 4


class CameraBackbone(nn.Module):
    """Stride-4 image features: three stride-2 stages (to 1/2, 1/4, 1/8), the 1/8 stage brought back to 1/4 by a
    transposed conv and added to the 1/4 stage (a two-level FPN), BN + ReLU."""

    def __init__(self, out_channels: int = 48, c1: int = 24, c2: int = 48, c3: int = 64):
        super().__init__()
        self.stem = conv_bn_relu(3, c1, 2)
        self.stage2 = nn.Sequential(conv_bn_relu(c1, c2, 2), conv_bn_relu(c2, c2))
        self.stage3 = nn.Sequential(conv_bn_relu(c2, c3, 2), conv_bn_relu(c3, c3), conv_bn_relu(c3, c3))
        self.lateral = nn.Conv2d(c2, out_channels, 1, bias=False)
        self.top = nn.ConvTranspose2d(c3, out_channels, 2, stride=2, bias=False)
        self.norm = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x2 = self.stage2(self.stem(images))
        x3 = self.stage3(x2)
        return F.relu(self.norm(self.lateral(x2) + self.top(x3)))


class CameraLift(nn.Module):
    def __init__(self, grid: Grid, image_channels: int = 48, heights: int = 4, channels: int = 64, hidden: int = 64,
                 context: int = 96):
        super().__init__()
        self.grid = grid
        self.image_channels = image_channels
        self.heights = heights
        self.reduce = nn.Sequential(nn.Conv2d(image_channels * heights + heights, hidden, 1, bias=False),
                                    nn.BatchNorm2d(hidden, eps=1e-3), nn.ReLU(inplace=True))
        self.down = nn.Sequential(conv_bn_relu(hidden, context, 2), conv_bn_relu(context, context), conv_bn_relu(context, context))
        self.up = nn.Sequential(nn.ConvTranspose2d(context, hidden, 2, stride=2, bias=False), nn.BatchNorm2d(hidden, eps=1e-3),
                                nn.ReLU(inplace=True))
        self.refine = conv_bn_relu(hidden, hidden)
        # Plain 1x1 + ReLU at the end (no BN): the output is matched to the LiDAR features' scale by distillation.
        self.out = nn.Conv2d(hidden, channels, 1)

    def lift(self, image_features: torch.Tensor, sampling_grid: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """[N, Cf, h, w] features, [N, Z, HW, 2] grid, [N, Z, HW] valid -> [1, Cf*Z + Z, H, W] lifted BEV input."""
        h, w = self.grid.feature_height, self.grid.feature_width
        sampled = F.grid_sample(image_features, sampling_grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        v = valid.unsqueeze(1)  # [N, 1, Z, HW]
        summed = (sampled * v).sum(dim=0)  # [Cf, Z, HW]
        count = v.sum(dim=0)  # [1, Z, HW]
        mean = summed / torch.clamp(count, min=1.0)
        seen = (count > 0).to(mean.dtype)
        lifted = torch.cat([mean.reshape(self.image_channels * self.heights, h, w), seen.reshape(self.heights, h, w)], dim=0)
        return lifted.unsqueeze(0)

    def forward(self, image_features: torch.Tensor, sampling_grid: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x = self.reduce(self.lift(image_features, sampling_grid, valid))
        x = self.refine(x + self.up(self.down(x)))
        return F.relu(self.out(x))


class CameraEncoder(nn.Module):
    """Training-time composition of the two exported parts."""

    def __init__(self, grid: Grid, heights: int, image_channels: int = 48):
        super().__init__()
        self.backbone = CameraBackbone(image_channels)
        self.lift = CameraLift(grid, image_channels, heights, grid.channels)

    def forward(self, images: torch.Tensor, sampling_grid: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.lift(self.backbone(images), sampling_grid, valid)
