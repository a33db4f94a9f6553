#!/usr/bin/python3
"""PyTorch side of the ONNX Runtime comparison (tools/bench/torch.ts writes the inputs and runs this script).

  /usr/bin/python3 tools/bench/bench_torch.py --inputs DIR [--checkpoint runs/.../checkpoint-last.pt] [--repeats N]

Times the PyTorch definitions (tools/train/model.py) of the models shipped as ONNX on the same input tensors, one
thread, eval mode, inference_mode: lidar_pfn, lidar_backbone, detection_head, fusion_attention. With a checkpoint
its weights are loaded (and outputs are compared with ONNX Runtime's); without one the modules are randomly
initialised (the same operations and shapes, so the same cost). Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "train"))

from model import AttentionFusion, BevBackbone, DetectionHead, PillarFeatureNet  # noqa: E402


def load(inputs: str, name: str) -> torch.Tensor:
    with open(os.path.join(inputs, name + ".json")) as f:
        shape = json.load(f)["shape"]
    return torch.from_numpy(np.fromfile(os.path.join(inputs, name + ".bin"), dtype="<f4").reshape(shape))


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--checkpoint")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with open(os.path.join(args.inputs, "meta.json")) as f:
        meta = json.load(f)
    channels, anchors = meta["channels"], meta["anchors"]
    if args.checkpoint and os.path.exists(args.checkpoint):
        from export import load_checkpoint  # noqa: E402
        model, _ = load_checkpoint(args.checkpoint)
        pfn, backbone, head, attention = model.pfn, model.backbone, model.head, model.attention
        weights = "checkpoint"
    else:
        pfn, backbone = PillarFeatureNet(), BevBackbone(64, channels, 64, 128, meta.get("depth", 3))
        head, attention = DetectionHead(channels, anchors), AttentionFusion()
        weights = "random"
    for m in (pfn, backbone, head, attention):
        m.eval()
    pillars, canvas, bev = load(args.inputs, "pillars"), load(args.inputs, "canvas"), load(args.inputs, "bev")
    aligned, mask = load(args.inputs, "aligned"), load(args.inputs, "mask")
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "weights": weights, "ms": {}, "maxAbsDiff": {}}
    with torch.inference_mode():
        out["ms"]["lidar_pfn"] = median_ms(lambda: pfn(pillars), args.repeats)
        out["ms"]["lidar_backbone"] = median_ms(lambda: backbone(canvas), args.repeats)
        out["ms"]["detection_head"] = median_ms(lambda: head(bev), args.repeats)
        out["ms"]["fusion_attention"] = median_ms(lambda: attention(aligned, mask), args.repeats)
        if weights == "checkpoint":
            out["maxAbsDiff"]["lidar_backbone"] = float((backbone(canvas) - load(args.inputs, "bev")).abs().max())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
