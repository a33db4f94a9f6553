#!/usr/bin/python3
"""Trains v2xfuse's cooperative LiDAR detector on shards from `v2xfuse export-training`.

  /usr/bin/python3 tools/train/train.py --shards /tmp/v2x/shards/train --val /tmp/v2x/shards/val \\
      --out runs/lidar-max --epochs 1 --fusion max --threads 2 --seed 1

Each step takes one sample (an ego frame with its collaborators), encodes every kept agent with the shared
PillarFeatureNet + BevBackbone, warps the collaborators into the ego grid, fuses (max, attention or none), runs the
head and takes focal + smooth-L1 losses against the cooperative ground truth. See README.md.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import warnings

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from data import DIHEDRAL, AnchorGrid, Batch, ShardSet, collate, grid_is_symmetric_square, select_agents, transform_sample  # noqa: E402
from evaluate import ApAccumulator, detect  # noqa: E402
from model import CooperativeDetector, Grid, count_parameters  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shards", nargs="+", required=True, help="training shard folders (each with an index.json)")
    p.add_argument("--val", nargs="+", default=[], help="validation shard folders (monitoring AP; optional)")
    p.add_argument("--out", required=True, help="run folder: config.json, log.jsonl, checkpoints, onnx/")
    p.add_argument("--epochs", type=float, default=1.0, help="passes over the training samples (fractions allowed)")
    p.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: epochs decide)")
    p.add_argument("--fusion", choices=["max", "attention", "none", "mixed"], default="max",
                   help="mixed: each step fuses with max or attention at random, so one head serves both")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the machine is shared: keep 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (cuda when torch sees one)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate of the one-cycle schedule")
    p.add_argument("--weight-decay", type=float, default=1e-2)
    p.add_argument("--max-agents", type=int, default=4, help="agents per sample at most (ego included)")
    p.add_argument("--drop-prob", type=float, default=0.25, help="chance of dropping each collaborator")
    p.add_argument("--ego-only-prob", type=float, default=0.2, help="chance of dropping every collaborator")
    p.add_argument("--no-augment", action="store_true", help="no random rotation by k·90° / mirror of the sample")
    p.add_argument("--min-points", type=int, default=1, help="boxes with fewer LiDAR points (kept agents) are ignored")
    p.add_argument("--val-every", type=int, default=0, help="validate every N steps (0: at the end of each epoch)")
    p.add_argument("--val-samples", type=int, default=0, help="validate on at most N samples, evenly spread (0: all)")
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoint-last.pt writes")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint-last.pt")
    p.add_argument("--quick", action="store_true", help="smoke test: 12 steps, 4 validation samples, export ONNX")
    p.add_argument("--no-export", action="store_true", help="do not export ONNX at the end")
    p.add_argument("--channels", type=int, default=64, help="C, backbone output channels")
    p.add_argument("--depth", type=int, default=3, help="3x3 convs per backbone block")
    args = p.parse_args(argv)
    if args.quick:
        args.max_steps = args.max_steps or 12
        args.val_samples = args.val_samples or 4
        args.log_every = min(args.log_every, 2)
    return args


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("train.py: --device cuda but torch sees no CUDA device")
    return torch.device(name)


# ----------------------------------------------------------------------------------------------------------------
# Losses

def focal_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, alpha: float = 0.25,
               gamma: float = 2.0) -> torch.Tensor:
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")
    p_t = p * labels + (1 - p) * (1 - labels)
    alpha_t = alpha * labels + (1 - alpha) * (1 - labels)
    return (alpha_t * (1 - p_t).pow(gamma) * ce * weights).sum()


def box_loss(pred: torch.Tensor, target: torch.Tensor, positive: torch.Tensor, beta: float = 1.0 / 9.0) -> torch.Tensor:
    """Smooth L1 over positives; the angle through SECOND's sin-difference: sin(p − t) = sin p cos t − cos p sin t,
    so a prediction off by π costs nothing (BEV boxes have no front)."""
    p = pred.permute(0, 2, 3, 1)[positive]  # [N, 7]
    t = target.permute(0, 2, 3, 1)[positive]
    if p.shape[0] == 0:
        return pred.sum() * 0
    p_angle = torch.sin(p[:, 6:7]) * torch.cos(t[:, 6:7])
    t_angle = torch.cos(p[:, 6:7]) * torch.sin(t[:, 6:7])
    p = torch.cat([p[:, :6], p_angle], dim=1)
    t = torch.cat([t[:, :6], t_angle], dim=1)
    return F.smooth_l1_loss(p, t, beta=beta, reduction="sum")


def to_tensors(batch: Batch, device: torch.device):
    return tuple(torch.from_numpy(a).to(device) for a in (batch.points, batch.point_pillar, batch.num_points, batch.coords,
                                                          batch.agent_index, batch.agent_to_ego))


class PositiveNormalizer:
    """The losses are sums over anchors divided by the number of positives. With one sample per step that count
    is 0–3 in a third of the ego-only samples (an RSU ego sees few boxes in the grid's z range), and dividing by it
    blew single steps up 30-fold; so divide by a running mean over samples instead (a large virtual batch)."""

    def __init__(self, momentum: float = 0.98, value: float | None = None):
        self.momentum = momentum
        self.value = value

    def update(self, positives: int) -> float:
        p = max(1.0, float(positives))
        self.value = p if self.value is None else self.momentum * self.value + (1 - self.momentum) * p
        return max(1.0, self.value)


def compute_loss(model: CooperativeDetector, batch: Batch, device: torch.device, box_weight: float = 2.0,
                 norm: float | None = None, fusion: str | None = None):
    """Focal + box_weight · smooth-L1, each summed and divided by `norm` (default: this sample's positives)."""
    cls_logits, box_deltas = model(*to_tensors(batch, device), max_points=batch.sample.agents[0].max_points, fusion=fusion)
    t = batch.targets
    labels = torch.from_numpy(t.labels).to(device).unsqueeze(0)
    weights = torch.from_numpy(t.weights).to(device).unsqueeze(0)
    a = labels.shape[1]
    box_target = torch.from_numpy(t.box_targets).to(device)  # [A, 7, H, W]
    pred = box_deltas.view(a, 7, *box_deltas.shape[2:])
    positive = torch.from_numpy(t.labels > 0).to(device)  # [A, H, W]
    norm = max(1.0, float(t.positives)) if norm is None else norm
    cls = focal_loss(cls_logits, labels, weights) / norm
    box = box_loss(pred, box_target, positive) / norm
    return cls + box_weight * box, cls.detach(), box.detach(), (cls_logits, box_deltas)


# ----------------------------------------------------------------------------------------------------------------

def prepare(shards: ShardSet, i: int, anchor_grid: AnchorGrid, args, rng: np.random.Generator | None) -> Batch:
    """rng None: validation (all agents within range, or only the ego for fusion none; no augmentation)."""
    sample = shards.read(i)
    if args.fusion == "none":
        sample = select_agents(sample, np.random.default_rng(0), 1, 1.0, 1.0)
    elif rng is not None:
        sample = select_agents(sample, rng, args.max_agents, args.drop_prob, args.ego_only_prob)
    elif len(sample.agents) > args.max_agents:
        sample = select_agents(sample, np.random.default_rng(0), args.max_agents, 0.0, 0.0)
    if rng is not None and not args.no_augment and grid_is_symmetric_square(shards.grid):
        s2 = DIHEDRAL[int(rng.integers(len(DIHEDRAL)))]
        sample = transform_sample(sample, s2, round((shards.grid["xMax"] - shards.grid["xMin"]) / shards.grid["cellSize"]))
    return collate(sample, anchor_grid, args.min_points)


@torch.no_grad()
def validate(model: CooperativeDetector, shards: ShardSet, anchor_grid: AnchorGrid, args, device) -> dict:
    model.eval()
    n = len(shards)
    picks = range(n) if not args.val_samples or args.val_samples >= n else np.linspace(0, n - 1, args.val_samples).round().astype(int)
    accs = [ApAccumulator() for _ in anchor_grid.classes]
    losses = []
    t0 = time.time()
    for i in picks:
        batch = prepare(shards, int(i), anchor_grid, args, None)
        loss, _, _, (cls_logits, box_deltas) = compute_loss(model, batch, device)
        losses.append(float(loss))
        dets = detect(cls_logits[0].float().cpu().numpy(), box_deltas[0].float().cpu().numpy(), anchor_grid)
        s = batch.sample
        for ci, (boxes, scores, _) in enumerate(dets):
            accs[ci].add(boxes, scores, s.gt_boxes[s.gt_classes == ci])
    model.train()
    out = {"samples": len(picks), "loss": float(np.mean(losses)) if losses else None, "seconds": round(time.time() - t0, 1)}
    for c, acc in zip(anchor_grid.classes, accs):
        out[c.name] = {f"AP@{t}": (None if v is None else round(v, 4)) for t, v in acc.ap().items()}
        out[c.name]["gt"] = acc.gt_count
    return out


def save_checkpoint(path: str, model, optimizer, scheduler, step: int, epoch: int, args, extra: dict) -> None:
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": step, "epoch": epoch, "args": vars(args), **extra}, tmp)
    os.replace(tmp, path)


def main(argv=None) -> int:
    warnings.filterwarnings("ignore", message="scatter_reduce")
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = pick_device(args.device)
    os.makedirs(args.out, exist_ok=True)

    train_set = ShardSet(args.shards)
    val_set = ShardSet(args.val) if args.val else None
    if val_set and (val_set.grid != train_set.grid or val_set.index["anchors"] != train_set.index["anchors"]):
        raise SystemExit("train.py: --val shards have another grid or anchor set than --shards")
    if len(train_set) == 0:
        raise SystemExit(f"train.py: no samples in {args.shards}")
    grid = Grid.from_json({**train_set.grid, "channels": args.channels})
    anchor_grid = AnchorGrid(train_set.grid, train_set.anchors)
    model = CooperativeDetector(grid, anchor_grid.count, args.fusion, channels=args.channels, depth=args.depth).to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)

    steps_per_epoch = len(train_set)
    total_steps = max(1, math.ceil(args.epochs * steps_per_epoch))
    if args.max_steps:
        total_steps = min(total_steps, args.max_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=total_steps, pct_start=0.15,
                                                    div_factor=10, final_div_factor=100)
    start_step = 0
    resumed_norm = None
    ckpt_path = os.path.join(args.out, "checkpoint-last.pt")
    if args.resume and os.path.exists(ckpt_path):
        ckpt = torch.load(ckpt_path, map_location=device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_step = ckpt["step"]
        resumed_norm = ckpt.get("config", {}).get("positive_norm")
        print(f"resumed at step {start_step}", flush=True)

    config = {"args": vars(args), "grid": grid.to_json(), "anchors": train_set.index["anchors"], "classes": train_set.class_names,
              "train_samples": len(train_set), "val_samples": len(val_set) if val_set else 0, "total_steps": total_steps,
              "parameters": count_parameters(model), "torch": torch.__version__, "device": str(device),
              "zOffsetByKind": train_set.index.get("zOffsetByKind", {}),
              "pillar": train_set.index["pillar"],
              "train_scenarios": sorted({s["scenario"] for _, s in train_set.entries}),
              "val_scenarios": sorted({s["scenario"] for _, s in val_set.entries}) if val_set else [],
              "positive_norm": resumed_norm}
    with open(os.path.join(args.out, "config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)
    print(f"train: {len(train_set)} samples, {total_steps} steps, fusion {args.fusion}, {config['parameters']:,} parameters, "
          f"device {device}, {args.threads} threads", flush=True)

    with open(os.path.join(args.out, "log.jsonl"), "a", encoding="utf-8") as log:
        step, last_val = train_loop(model, optimizer, scheduler, train_set, val_set, anchor_grid, args, device, config,
                                    start_step, total_steps, ckpt_path, log)
    return finish(model, optimizer, scheduler, step, last_val, args, config, ckpt_path, start_step)


def train_loop(model, optimizer, scheduler, train_set, val_set, anchor_grid, args, device, config, start_step, total_steps,
               ckpt_path, log):
    steps_per_epoch = len(train_set)
    model.train()
    step = start_step
    t_start = time.time()
    window = {"loss": [], "cls": [], "box": [], "agents": [], "t": time.time(), "n": 0}
    last_val = None
    epoch = step // steps_per_epoch
    normalizer = PositiveNormalizer(value=config.get("positive_norm"))
    while step < total_steps:
        # Deterministic order and draws from (seed, epoch): a resumed run replays the same stream.
        rng = np.random.default_rng([args.seed, epoch])
        order = rng.permutation(steps_per_epoch)
        for pos in range(step - epoch * steps_per_epoch, steps_per_epoch):
            if step >= total_steps:
                break
            step_rng = np.random.default_rng([args.seed, epoch, pos])
            batch = prepare(train_set, int(order[pos]), anchor_grid, args, step_rng)
            fusion = ("max" if step_rng.random() < 0.5 else "attention") if args.fusion == "mixed" else None
            loss, cls, box, _ = compute_loss(model, batch, device, norm=normalizer.update(batch.targets.positives), fusion=fusion)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            step += 1
            if step < total_steps:  # OneCycleLR is defined for total_steps optimizer steps
                scheduler.step()
            window["loss"].append(float(loss))
            window["cls"].append(float(cls))
            window["box"].append(float(box))
            window["agents"].append(len(batch.sample.agents))
            window["n"] += 1
            if step % args.log_every == 0 or step == total_steps:
                dt = time.time() - window["t"]
                rec = {"step": step, "epoch": epoch, "loss": np.mean(window["loss"]), "cls": np.mean(window["cls"]),
                       "box": np.mean(window["box"]), "agents": np.mean(window["agents"]), "lr": scheduler.get_last_lr()[0],
                       "samples_per_s": window["n"] / dt if dt > 0 else None, "elapsed_s": time.time() - t_start}
                rec = {k: (round(float(v), 5) if isinstance(v, (float, np.floating)) else v) for k, v in rec.items()}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                eta = (total_steps - step) / rec["samples_per_s"] if rec["samples_per_s"] else 0
                print(f"step {step}/{total_steps} loss {rec['loss']:.4f} (cls {rec['cls']:.4f} box {rec['box']:.4f}) "
                      f"agents {rec['agents']:.2f} lr {rec['lr']:.2e} {rec['samples_per_s']:.3f} samples/s eta {eta / 60:.1f} min",
                      flush=True)
                window = {"loss": [], "cls": [], "box": [], "agents": [], "t": time.time(), "n": 0}
            config["positive_norm"] = normalizer.value
            if step % args.checkpoint_every == 0:
                save_checkpoint(ckpt_path, model, optimizer, scheduler, step, epoch, args, {"config": config})
            if val_set and args.val_every and step % args.val_every == 0:
                last_val = run_validation(model, val_set, anchor_grid, args, device, step, log)
        if step >= (epoch + 1) * steps_per_epoch or step >= total_steps:
            if val_set and not args.val_every:
                last_val = run_validation(model, val_set, anchor_grid, args, device, step, log)
            epoch += 1
    config["train_seconds"] = round(time.time() - t_start, 1)
    return step, last_val


def finish(model, optimizer, scheduler, step, last_val, args, config, ckpt_path, start_step) -> int:
    epoch = step // max(1, config["train_samples"])
    save_checkpoint(ckpt_path, model, optimizer, scheduler, step, epoch, args, {"config": config, "validation": last_val})
    elapsed = config.get("train_seconds", 0.0)
    summary = {"steps": step, "seconds": round(elapsed, 1), "samples_per_s": round((step - start_step) / elapsed, 4) if elapsed else None,
               "validation": last_val}
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print(f"done: {step} steps in {elapsed / 60:.1f} min; checkpoint {ckpt_path}", flush=True)

    if not args.no_export:
        from export import export_all  # noqa: E402  (imports onnx only when exporting)
        onnx_dir = os.path.join(args.out, "onnx")
        export_all(ckpt_path, onnx_dir, os.path.join(onnx_dir, "manifest.json"), verify=True)
        print(f"exported ONNX models to {onnx_dir}", flush=True)
    return 0


def run_validation(model, val_set, anchor_grid, args, device, step, log):
    result = validate(model, val_set, anchor_grid, args, device)
    log.write(json.dumps({"step": step, "validation": result}) + "\n")
    log.flush()
    print(f"validation at step {step}: {json.dumps(result)}", flush=True)
    return result


if __name__ == "__main__":
    sys.exit(main())
