#!/usr/bin/python3
"""Trains the camera encoder (camera_backbone + camera_lift) against the frozen shipped LiDAR detector.

  /usr/bin/python3 tools/train/train_camera.py --checkpoint runs/lidar-mixed-s1/checkpoint-last.pt \\
      --shards /tmp/cam/shards/train --out runs/camera-s1 --max-steps 1500 --threads 1 --seed 1 --install models

Shards come from `v2xfuse export-training DATASET --out DIR --ego all --cameras`: per agent frame the camera
tensors exactly as the runtime makes them (sharp resize, normalisation) and the sampling grids computed by
src/perception/camera-lift.ts from the calibration. Each step takes one vehicle ego with cameras:

  camera features  = CameraLift(CameraBackbone(images), sampling_grid, valid)            (trained)
  LiDAR features   = the frozen detector's pillar net + backbone on the same agent frame    (teacher)
  loss = detection loss of the frozen head on the camera features (focal + smooth L1 as train.py, against the
         ground truth the ego's own LiDAR has points on; boxes nobody in the frame saw are ignored)
       + --distill-weight · ||cam − lidar||² / ||lidar||²   (the camera map should look like the LiDAR map)
       + with --both-prob: the head's loss on max(lidar, cam), the combination an agent with both sensors sends,
         so camera features do not add false positives where the LiDAR is sure

The LiDAR models and the head are never changed: the manifest's other models and their measured accuracy stay
valid, and camera features travel, warp and fuse like LiDAR ones.

`--install DIR` copies camera_backbone.onnx and camera_lift.onnx into DIR and adds them to DIR/manifest.json
(models.camera_backbone, models.camera_lift, the `camera` input contract, a modelCard entry and `cameraTraining`).
"""
from __future__ import annotations

import argparse
import copy
import datetime
import json
import math
import os
import shutil
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from camera_model import IMAGE_STRIDE, CameraEncoder  # noqa: E402
from data import DTYPES, AnchorGrid, ShardError, ShardSet, assign_targets  # noqa: E402
from evaluate import ApAccumulator, detect  # noqa: E402
from export import OPSET, check_with_runtime_reader, load_checkpoint, sha256, tensor_spec, verify_with_onnxruntime  # noqa: E402
from model import CooperativeDetector, count_parameters  # noqa: E402
from train import PositiveNormalizer, box_loss, focal_loss  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="the LiDAR detector's train.py checkpoint (frozen teacher and head)")
    p.add_argument("--shards", nargs="+", required=True, help="shard folders exported with --cameras")
    p.add_argument("--val", nargs="+", default=[], help="shard folders for the monitoring AP at the end (camera only)")
    p.add_argument("--val-samples", type=int, default=24)
    p.add_argument("--out", required=True, help="run folder: config.json, log.jsonl, camera.pt, onnx/, summary.json")
    p.add_argument("--max-steps", type=int, default=1500)
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW, one-cycle)")
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--distill-weight", type=float, default=1.0)
    p.add_argument("--both-prob", type=float, default=0.25, help="chance per step of adding the LiDAR+camera (max) loss")
    p.add_argument("--image-channels", type=int, default=48)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared: keep 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--resume", action="store_true", help="continue from OUT/camera.pt")
    p.add_argument("--quick", action="store_true", help="smoke test: 4 steps, export + verify")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--export-only", action="store_true", help="skip training: export OUT/camera.pt")
    p.add_argument("--install", help="copy the ONNX models into this folder and add them to its manifest.json")
    args = p.parse_args(argv)
    if args.quick:
        args.max_steps = min(args.max_steps, 4)
        args.log_every = 2
        args.val_samples = min(args.val_samples, 2)
    return args


# ----------------------------------------------------------------------------------------------------------------
# Shards

class CameraShards:
    """The samples of a ShardSet whose ego is a vehicle with cameras, and their camera arrays (agent 0 = the ego)."""

    def __init__(self, dirs: list[str]):
        self.shards = ShardSet(dirs)
        camera = self.shards.index.get("camera")
        if not camera:
            raise ShardError(f"{self.shards.dirs[0]}: no camera inputs (export with `v2xfuse export-training ... --cameras`)")
        for d in self.shards.dirs:
            with open(os.path.join(d, "index.json"), encoding="utf-8") as f:
                other = json.load(f).get("camera")
            if other != camera:
                raise ShardError(f"{d}: camera layout {other!r} differs from {self.shards.dirs[0]}'s {camera!r}")
        self.camera = camera
        self.picks = [i for i, (_, s) in enumerate(self.shards.entries)
                      if s["agents"][0]["kind"] == "vehicle" and s["agents"][0].get("cameras")]
        if not self.picks:
            raise ShardError(f"{self.shards.dirs}: no sample has a vehicle ego with cameras")

    def __len__(self) -> int:
        return len(self.picks)

    def read(self, j: int):
        """(sample with the ego only, images [N,3,H,W], grid [N,Z,HW,2], valid [N,Z,HW]) as float32 numpy."""
        i = self.picks[j]
        sample = self.shards.read(i)
        d, s = self.shards.entries[i]
        path = os.path.join(d, s["file"])
        blob = np.fromfile(path, dtype=np.uint8)
        arrays = {a["name"]: a for a in s["arrays"]}

        def get(name: str) -> np.ndarray:
            a = arrays.get(name)
            if a is None:
                raise ShardError(f"{path}: sample {self.shards.key(i)} has no array {name!r}")
            return blob[a["offset"]:a["offset"] + a["byteLength"]].view(DTYPES[a["dtype"]]).reshape(a["shape"])

        images = get("images_0").astype(np.float32)
        grid = get("sampling_grid_0").astype(np.float32)
        valid = get("camera_valid_0").astype(np.float32)
        return sample, images, grid, valid


def ego_targets(sample, anchor_grid: AnchorGrid):
    """Anchor targets for the ego alone: boxes its own LiDAR has no point on are ignored, not taught as background
    (what a roof camera sees is close to what the roof LiDAR sees)."""
    seen = sample.gt_points[:, 0] >= 1 if sample.gt_points.size else np.zeros(sample.gt_boxes.shape[0], bool)
    return assign_targets(anchor_grid, sample.gt_boxes, sample.gt_classes, seen)


def lidar_features(detector: CooperativeDetector, sample) -> torch.Tensor:
    a = sample.agents[0]
    with torch.no_grad():
        return detector.encode(torch.from_numpy(a.points), torch.from_numpy(a.pillar_index()), torch.from_numpy(a.num_points),
                               torch.from_numpy(a.coords), torch.zeros(a.coords.shape[0], dtype=torch.int64), 1, a.max_points)


def head_loss(detector: CooperativeDetector, bev: torch.Tensor, targets, norm: float, box_weight: float = 2.0):
    cls_logits, box_deltas = detector.head(bev)
    labels = torch.from_numpy(targets.labels).unsqueeze(0)
    weights = torch.from_numpy(targets.weights).unsqueeze(0)
    a = labels.shape[1]
    pred = box_deltas.view(a, 7, *box_deltas.shape[2:])
    positive = torch.from_numpy(targets.labels > 0)
    cls = focal_loss(cls_logits, labels, weights) / norm
    box = box_loss(pred, torch.from_numpy(targets.box_targets), positive) / norm
    return cls + box_weight * box, (cls_logits, box_deltas)


def distill_loss(cam: torch.Tensor, lidar: torch.Tensor) -> torch.Tensor:
    return ((cam - lidar) ** 2).sum() / lidar.pow(2).sum().clamp(min=1e-6)


# ----------------------------------------------------------------------------------------------------------------

def frozen_detector(checkpoint: str) -> tuple[CooperativeDetector, dict]:
    model, config = load_checkpoint(checkpoint)
    for prm in model.parameters():
        prm.requires_grad_(False)
    return model.eval(), config


def save(path: str, model, optimizer, scheduler, step: int, config: dict) -> None:
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler else None, "step": step, "config": config}, tmp)
    os.replace(tmp, path)


def main(argv=None) -> int:
    warnings.filterwarnings("ignore", message="scatter_reduce")
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    detector, det_config = frozen_detector(args.checkpoint)
    train_set = CameraShards(args.shards)
    shards = train_set.shards
    for key in ("xMin", "xMax", "yMin", "yMax", "cellSize", "featureStride"):
        if shards.grid[key] != det_config["grid"][key]:
            raise SystemExit(f"train_camera.py: shard grid {key} = {shards.grid[key]} but the detector's is {det_config['grid'][key]}")
    anchor_grid = AnchorGrid(shards.grid, shards.anchors)
    camera = train_set.camera
    model = CameraEncoder(detector.grid, len(camera["heights"]), args.image_channels)
    ckpt_path = os.path.join(args.out, "camera.pt")
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    total = max(1, args.max_steps)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=total, pct_start=0.1,
                                                    div_factor=10, final_div_factor=100)
    config = {"args": vars(args), "camera": camera, "grid": det_config["grid"], "detector": os.path.abspath(args.checkpoint),
              "detectorStep": det_config.get("step"), "train_samples": len(train_set),
              "train_scenarios": sorted({s["scenario"] for _, s in shards.entries}), "parameters": count_parameters(model),
              "image_stride": IMAGE_STRIDE, "torch": torch.__version__}
    step = 0
    if (args.resume or args.export_only) and os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path, map_location="cpu")
        model.load_state_dict(ckpt["model"])
        if not args.export_only:
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
        step = ckpt["step"]
        # --export-only keeps the training run's config (its arguments are what the manifest records).
        config = ckpt["config"] if args.export_only else {**config, **{k: v for k, v in ckpt["config"].items() if k in ("train_seconds",)}}
        print(f"loaded {ckpt_path} at step {step}", flush=True)
    elif args.export_only:
        raise SystemExit(f"train_camera.py: --export-only but {ckpt_path} does not exist")
    if not args.export_only:
        with open(os.path.join(args.out, "config.json"), "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)

    if not args.export_only:
        print(f"train_camera: {len(train_set)} vehicle-ego samples with cameras, {total} steps, "
              f"{config['parameters']:,} parameters, {args.threads} threads", flush=True)
        step = train(model, detector, optimizer, scheduler, train_set, anchor_grid, args, config, step, total, ckpt_path)
        save(ckpt_path, model, optimizer, scheduler, step, config)
    model.eval()
    summary = {"steps": step, "seconds": config.get("train_seconds"), "quick": bool(config["args"].get("quick"))}
    if args.val:
        summary["validation"] = validate(model, detector, CameraShards(args.val), anchor_grid, args)
        print(f"validation: {json.dumps(summary['validation'])}", flush=True)
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    if not args.no_export:
        onnx_dir = os.path.join(args.out, "onnx")
        entries = export(model, train_set, onnx_dir)
        if args.install:
            install(entries, onnx_dir, args.install, config, step, summary)
    return 0


def train(model, detector, optimizer, scheduler, train_set: CameraShards, anchor_grid, args, config, step, total, ckpt_path) -> int:
    model.train()
    normalizer = PositiveNormalizer(value=config.get("positive_norm"))
    t_start = time.time() - (config.get("train_seconds") or 0.0)
    window: dict[str, list] = {"loss": [], "det": [], "distill": [], "both": []}
    t_window = time.time()
    n = len(train_set)
    with open(os.path.join(args.out, "log.jsonl"), "a", encoding="utf-8") as log:
        while step < total:
            epoch, pos = divmod(step, n)
            order = np.random.default_rng([args.seed, epoch]).permutation(n)
            rng = np.random.default_rng([args.seed, epoch, pos])
            sample, images, grid, valid = train_set.read(int(order[pos]))
            targets = ego_targets(sample, anchor_grid)
            norm = normalizer.update(targets.positives)
            teacher = lidar_features(detector, sample)
            cam = model(torch.from_numpy(images), torch.from_numpy(grid), torch.from_numpy(valid))
            det, _ = head_loss(detector, cam, targets, norm)
            distill = distill_loss(cam, teacher)
            loss = det + args.distill_weight * distill
            both = None
            if rng.random() < args.both_prob:
                both, _ = head_loss(detector, torch.maximum(cam, teacher), targets, norm)
                loss = loss + both
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            step += 1
            if step < total:
                scheduler.step()
            window["loss"].append(float(loss))
            window["det"].append(float(det))
            window["distill"].append(float(distill))
            if both is not None:
                window["both"].append(float(both))
            config["positive_norm"] = normalizer.value
            if step % args.log_every == 0 or step == total:
                dt = time.time() - t_window
                rec = {"step": step, **{k: round(float(np.mean(v)), 5) if v else None for k, v in window.items()},
                       "lr": scheduler.get_last_lr()[0], "s_per_step": round(dt / max(1, len(window["loss"])), 3),
                       "elapsed_s": round(time.time() - t_start, 1)}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                print(f"step {step}/{total} loss {rec['loss']:.4f} (det {rec['det']:.4f} distill {rec['distill']:.4f} "
                      f"both {rec['both'] if rec['both'] is None else round(rec['both'], 4)}) {rec['s_per_step']:.2f} s/step "
                      f"eta {(total - step) * rec['s_per_step'] / 60:.1f} min", flush=True)
                window = {k: [] for k in window}
                t_window = time.time()
            config["train_seconds"] = round(time.time() - t_start, 1)
            if step % args.checkpoint_every == 0:
                save(ckpt_path, model, optimizer, scheduler, step, config)
    config["train_seconds"] = round(time.time() - t_start, 1)
    print(f"done: {step} steps in {config['train_seconds'] / 60:.1f} min", flush=True)
    return step


@torch.no_grad()
def validate(model, detector, val_set: CameraShards, anchor_grid, args) -> dict:
    """Monitoring AP (evaluate.py) of the head on camera features, LiDAR features and their max, ego only, against
    the ego-visible ground truth; the official numbers come from `v2xfuse detect`."""
    n = len(val_set)
    picks = np.linspace(0, n - 1, min(n, args.val_samples)).round().astype(int)
    accs = {m: ApAccumulator() for m in ("camera", "lidar", "both")}
    cos = []
    for j in picks:
        sample, images, grid, valid = val_set.read(int(j))
        teacher = lidar_features(detector, sample)
        cam = model(torch.from_numpy(images), torch.from_numpy(grid), torch.from_numpy(valid))
        cos.append(float(F.cosine_similarity(cam.flatten(), teacher.flatten(), dim=0)))
        seen = sample.gt_points[:, 0] >= 1 if sample.gt_points.size else np.zeros(0, bool)
        gt = sample.gt_boxes[(sample.gt_classes == 0) & seen]
        for mode, bev in (("camera", cam), ("lidar", teacher), ("both", torch.maximum(cam, teacher))):
            cls_logits, box_deltas = detector.head(bev)
            boxes, scores, _ = detect(cls_logits[0].numpy(), box_deltas[0].numpy(), anchor_grid)[0]
            accs[mode].add(boxes, scores, gt)
    out = {"samples": len(picks), "featureCosine": round(float(np.mean(cos)), 4)}
    for mode, acc in accs.items():
        out[mode] = {f"AP@{t}": (None if v is None else round(v, 4)) for t, v in acc.ap().items()}
    return out


# ----------------------------------------------------------------------------------------------------------------
# Export

def export(model: CameraEncoder, train_set: CameraShards, out_dir: str) -> dict:
    import onnx  # noqa: E402

    os.makedirs(out_dir, exist_ok=True)
    model = copy.deepcopy(model).eval()
    camera = train_set.camera
    h, w = camera["height"], camera["width"]
    z = len(camera["heights"])
    grid = model.lift.grid
    fh, fw = grid.feature_height, grid.feature_width
    cf = model.lift.image_channels
    # A real example input: the first sample's cameras (so the parity check runs on real sampling patterns).
    _, images, sgrid, valid = train_set.read(0)
    images_t, grid_t, valid_t = torch.from_numpy(images), torch.from_numpy(sgrid), torch.from_numpy(valid)
    n = images_t.shape[0]
    with torch.no_grad():
        feats = model.backbone(images_t)
    ih, iw = feats.shape[2], feats.shape[3]
    specs = {
        "camera_backbone": dict(module=model.backbone, args=(images_t,), inputs=["images"], outputs=["image_features"],
                                dynamic={"images": {0: "N"}, "image_features": {0: "N"}},
                                in_shapes=[["N", 3, h, w]], out_shapes=[["N", cf, ih, iw]]),
        "camera_lift": dict(module=model.lift, args=(feats, grid_t, valid_t), inputs=["image_features", "sampling_grid", "valid"],
                            outputs=["bev_features"],
                            dynamic={"image_features": {0: "N"}, "sampling_grid": {0: "N"}, "valid": {0: "N"}},
                            in_shapes=[["N", cf, ih, iw], ["N", z, fh * fw, 2], ["N", z, fh * fw]],
                            out_shapes=[[1, grid.channels, fh, fw]]),
    }
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    entries, checks = {}, []
    for name, s in specs.items():
        path = os.path.join(out_dir, f"{name}.onnx")
        with torch.no_grad():
            torch.onnx.export(s["module"], s["args"], path, opset_version=OPSET, input_names=s["inputs"],
                              output_names=s["outputs"], dynamic_axes=s["dynamic"], do_constant_folding=True)
            expected = s["module"](*s["args"])
        onnx.checker.check_model(onnx.load(path))
        entries[name] = {"file": f"{name}.onnx", "sha256": sha256(path), "bytes": os.path.getsize(path), "opset": OPSET,
                         "parameters": count_parameters(s["module"]),
                         "inputs": [tensor_spec(a, sh) for a, sh in zip(s["inputs"], s["in_shapes"])],
                         "outputs": [tensor_spec(a, sh) for a, sh in zip(s["outputs"], s["out_shapes"])]}
        checks.append((name, path, s["inputs"], [t.numpy() for t in s["args"]], s["outputs"], [expected.numpy()]))
    verify_with_onnxruntime(checks)
    print(f"exported {', '.join(entries)} to {out_dir} ({n} cameras in the check)", flush=True)
    return entries


def install(entries: dict, onnx_dir: str, target: str, config: dict, step: int, summary: dict) -> None:
    manifest_path = os.path.join(target, "manifest.json")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    for name, e in entries.items():
        shutil.copyfile(os.path.join(onnx_dir, e["file"]), os.path.join(target, e["file"]))
        manifest["models"][name] = {"file": e["file"], "sha256": e["sha256"]}
        manifest.setdefault("modelCard", {})[name] = {k: v for k, v in e.items() if k not in ("file", "sha256")}
    camera = config["camera"]
    manifest["camera"] = {"width": camera["width"], "height": camera["height"], "heights": camera["heights"],
                          "minDepth": camera["minDepth"], "mean": camera["mean"], "std": camera["std"], "lidarFusion": "max"}
    args = config["args"]
    manifest["cameraTraining"] = {
        "exportedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": bool(args.get("quick")),
        "teacher": config.get("detector"),
        "seed": args["seed"],
        "steps": step,
        "trainSeconds": config.get("train_seconds"),
        "shards": args["shards"],
        "trainScenarios": config.get("train_scenarios"),
        "trainSamples": config.get("train_samples"),
        "hyperparameters": {k: args[k] for k in ("lr", "weight_decay", "distill_weight", "both_prob", "image_channels", "max_steps")},
        "monitoringValidation": summary.get("validation"),
        "command": "/usr/bin/python3 tools/train/train_camera.py " + " ".join(
            ["--checkpoint", args["checkpoint"], "--shards", *args["shards"], "--out", args["out"], "--max-steps", str(args["max_steps"]),
             "--threads", str(args["threads"]), "--seed", str(args["seed"])] + (["--quick"] if args.get("quick") else [])),
    }
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    check_with_runtime_reader(manifest_path)
    print(f"installed {', '.join(entries)} into {manifest_path}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
