#!/usr/bin/python3
"""Trains v2xfuse's learned motion predictor: 1 s of a track's history in, K future trajectories over 3 s with
their probabilities out (MultiPath / MTR-style: winner-takes-all regression + mode classification), exported to
ONNX for src/prediction (MotionPredictor).

  npx tsx src/cli/main.ts export-tracks /tmp/v2x/train --out /tmp/v2x/pred/train
  npx tsx src/cli/main.ts export-tracks /tmp/v2x/val --out /tmp/v2x/pred/val
  /usr/bin/python3 tools/train/train_predictor.py --train /tmp/v2x/pred/train --val /tmp/v2x/pred/val \
      --out runs/predictor-s1 --seed 1 --install models

One data path: the samples (history in the track's own frame, the future in the same frame) are cut and encoded by
the TypeScript exporter (src/prediction/tracks.ts, track-frame.ts); this script only reads samples.bin.

Model: an MLP over the flattened history (H x (x, y, valid)) and the class one-hot -> K modes of T waypoints,
each predicted as an offset from the constant-velocity extrapolation of the last history step (so an untrained
mode starts as CV), a per-mode 1-sigma position spread sigma(t) = a + b t, and mode logits (softmax in the graph).
Loss: the mode closest to the truth (mean of ADE and FDE) is the winner; smooth-L1 on its waypoints, cross-entropy
on the winner's index, Gaussian NLL of its (detached) errors for sigma.

Reproducible from --seed (torch.manual_seed, sample order and augmentation draws from numpy's
default_rng([seed, epoch])); one thread (--threads 1). --quick is the smoke test (2 epochs on 512 samples).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from export import OPSET, PROJECT_ROOT, check_with_runtime_reader, sha256, verify_with_onnxruntime  # noqa: E402

AGENT_CLASSES = ["vehicle", "pedestrian", "cyclist", "other"]
POS_SCALE = 10.0  # metres per network unit: histories span up to ~30 m, futures up to ~90 m
MIN_SIGMA = 0.05
MISS_THRESHOLD_M = 2.0


# ---- data -------------------------------------------------------------------------------------------------------

def load_samples(folder: str) -> dict:
    """Reads FOLDER/tracks.json's `samples` block and the arrays of FOLDER/samples.bin (src/prediction/tracks.ts)."""
    with open(os.path.join(folder, "tracks.json"), encoding="utf-8") as f:
        index = json.load(f)
    if index.get("format") != "v2xfuse-tracks" or "samples" not in index:
        raise SystemExit(f"{folder}/tracks.json: not a v2xfuse-tracks export with samples (run `v2xfuse export-tracks`)")
    s = index["samples"]
    if s.get("agentClasses") != AGENT_CLASSES:
        raise SystemExit(f"{folder}: agentClasses {s.get('agentClasses')} differ from {AGENT_CLASSES}")
    buf = np.fromfile(os.path.join(folder, s["file"]), dtype=np.uint8)
    arrays = {}
    for a in s["arrays"]:
        dt = np.dtype(a["dtype"]).newbyteorder("<")
        arrays[a["name"]] = np.frombuffer(buf, dtype=dt, count=int(np.prod(a["shape"])), offset=a["offset"]).reshape(a["shape"]).copy()
    return {"history": arrays["history"], "agent_class": arrays["agent_class"], "future": arrays["future"],
            "origin": arrays["origin"], "rate_hz": s["rateHz"], "history_steps": s["historySteps"],
            "future_steps": s["futureSteps"], "sequences": [q["name"] for q in index["sequences"]]}


def concat(sets: list[dict]) -> dict:
    out = dict(sets[0])
    for k in ("history", "agent_class", "future"):
        out[k] = np.concatenate([s[k] for s in sets])
    out["sequences"] = [n for s in sets for n in s["sequences"]]
    for s in sets[1:]:
        if (s["rate_hz"], s["history_steps"], s["future_steps"]) != (out["rate_hz"], out["history_steps"], out["future_steps"]):
            raise SystemExit("the sample folders were exported with different --history / --future / rates")
    return out


def augment(history: np.ndarray, rng: np.random.Generator, truncate_prob: float, noise_m: float) -> np.ndarray:
    """Shorter histories (a track just born: its oldest steps missing, as encodeHistory pads them) and position
    jitter on every step but the last (the origin of the track frame, exact by construction)."""
    h = history.copy()
    n, steps, _ = h.shape
    if noise_m > 0:
        h[:, :-1, :2] += rng.normal(0, noise_m, size=(n, steps - 1, 2)).astype(np.float32) * h[:, :-1, 2:3]
    cut = rng.random(n) < truncate_prob
    keep = rng.integers(min(2, steps), steps + 1, size=n)  # at least the last two steps
    mask = (np.arange(steps)[None, :] < (steps - keep)[:, None]) & cut[:, None]
    h[mask] = 0.0
    return h


# ---- model ------------------------------------------------------------------------------------------------------

class MotionPredictorNet(nn.Module):
    def __init__(self, history_steps: int, future_steps: int, modes: int, hidden: int, rate_hz: float):
        super().__init__()
        self.h, self.t, self.k, self.rate = history_steps, future_steps, modes, rate_hz
        n_in = history_steps * 3 + len(AGENT_CLASSES)
        self.trunk = nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                   nn.Linear(hidden, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, modes * (future_steps * 2 + 2) + modes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():  # modes start apart: a small, different lateral/longitudinal bias each
            b = self.head.bias[: modes * future_steps * 2].view(modes, future_steps, 2)
            tt = torch.arange(1, future_steps + 1, dtype=torch.float32) / future_steps
            for m in range(modes):
                ang = 2 * math.pi * m / modes
                b[m, :, 0] = 0.5 * math.cos(ang) * tt
                b[m, :, 1] = 0.5 * math.sin(ang) * tt
        self.register_buffer("times", torch.arange(1, future_steps + 1, dtype=torch.float32) / rate_hz)

    def forward_train(self, history: torch.Tensor, agent_class: torch.Tensor):
        b = history.shape[0]
        xy = history[..., :2] / POS_SCALE
        feat = torch.cat([torch.cat([xy, history[..., 2:3]], -1).reshape(b, -1), agent_class], -1)
        out = self.head(self.trunk(feat))
        kt2 = self.k * self.t * 2
        offsets = out[:, :kt2].view(b, self.k, self.t, 2) * POS_SCALE
        spread = out[:, kt2: kt2 + 2 * self.k].view(b, self.k, 2)
        logits = out[:, kt2 + 2 * self.k:]
        # Constant velocity from the last two steps (none when the second-last is padding).
        v = (history[:, -1, :2] - history[:, -2, :2]) * self.rate * history[:, -2, 2:3]
        base = v[:, None, None, :] * self.times[None, None, :, None]
        traj = base + offsets
        sigma = MIN_SIGMA + F.softplus(spread[..., :1]) + F.softplus(spread[..., 1:]) * self.times[None, None, :]
        return traj, sigma, logits

    def forward(self, history: torch.Tensor, agent_class: torch.Tensor):
        traj, sigma, logits = self.forward_train(history, agent_class)
        return traj, sigma, torch.softmax(logits, dim=-1)


def losses(traj, sigma, logits, future, cls_weight: float, nll_weight: float):
    err = torch.linalg.norm(traj - future[:, None], dim=-1)  # [B, K, T]
    score = err.mean(-1) + err[..., -1]
    best = score.argmin(dim=1)
    idx = torch.arange(traj.shape[0])
    reg = F.smooth_l1_loss(traj[idx, best], future, beta=1.0, reduction="none").sum(-1).mean()
    cls = F.cross_entropy(logits, best)
    s = sigma[idx, best]
    d2 = ((traj[idx, best].detach() - future) ** 2).sum(-1)
    nll = (2 * torch.log(s) + d2 / (2 * s * s)).mean()
    return reg + cls_weight * cls + nll_weight * nll, {"reg": reg.item(), "cls": cls.item(), "nll": nll.item()}


@torch.no_grad()
def evaluate(net: MotionPredictorNet, data: dict, k: int) -> dict:
    """Argoverse metrics in the track frame: ADE/FDE of the most probable mode; minFDE_k over the k most probable,
    minADE_k of that same mode; MR_k = minFDE_k > 2 m. Also CV (the last two steps) for reference."""
    net.eval()
    h = torch.from_numpy(data["history"])
    c = torch.from_numpy(data["agent_class"])
    fut = torch.from_numpy(data["future"])
    traj, _, probs = net(h, c)
    err = torch.linalg.norm(traj - fut[:, None], dim=-1)
    order = probs.argsort(dim=1, descending=True)[:, :k]
    idx = torch.arange(len(h))[:, None]
    e_top = err[idx[:, 0], order[:, 0]]
    fde_k = err[idx, order, -1]
    best = order[idx[:, 0], fde_k.argmin(1)]
    e_best = err[idx[:, 0], best]
    v = (h[:, -1, :2] - h[:, -2, :2]) * net.rate * h[:, -2, 2:3]
    cv = v[:, None, :] * net.times[None, :, None]
    e_cv = torch.linalg.norm(cv - fut, dim=-1)
    net.train()
    return {"count": len(h), "ade": e_top.mean().item(), "fde": e_top[:, -1].mean().item(),
            f"minAde{k}": e_best.mean().item(), f"minFde{k}": e_best[:, -1].mean().item(),
            f"missRate{k}": (e_best[:, -1] > MISS_THRESHOLD_M).float().mean().item(),
            "cvAde": e_cv.mean().item(), "cvFde": e_cv[:, -1].mean().item()}


# ---- export -----------------------------------------------------------------------------------------------------

def export_onnx(net: MotionPredictorNet, path: str, verify: bool = True) -> dict:
    net.eval()
    example_h = torch.zeros(3, net.h, 3)
    example_h[:, :, 0] = torch.linspace(-9, 0, net.h)[None] * torch.tensor([[0.0], [1.0], [0.3]])
    example_h[:, :, 2] = 1
    example_c = torch.zeros(3, len(AGENT_CLASSES))
    example_c[:, 0] = 1
    names_in, names_out = ["history", "agent_class"], ["trajectories", "position_std", "mode_probs"]
    torch.onnx.export(net, (example_h, example_c), path, opset_version=OPSET, input_names=names_in, output_names=names_out,
                      dynamic_axes={n: {0: "batch"} for n in names_in + names_out})
    import onnx
    onnx.checker.check_model(onnx.load(path))
    if verify:
        with torch.no_grad():
            outs = [o.numpy() for o in net(example_h, example_c)]
        verify_with_onnxruntime([("motion_predictor", path, names_in, [example_h.numpy(), example_c.numpy()], names_out, outs)])
    return {
        "inputs": [{"name": "history", "dtype": "float32", "shape": ["batch", net.h, 3]},
                   {"name": "agent_class", "dtype": "float32", "shape": ["batch", len(AGENT_CLASSES)]}],
        "outputs": [{"name": "trajectories", "dtype": "float32", "shape": ["batch", net.k, net.t, 2]},
                    {"name": "position_std", "dtype": "float32", "shape": ["batch", net.k, net.t]},
                    {"name": "mode_probs", "dtype": "float32", "shape": ["batch", net.k]}],
    }


def install(onnx_path: str, models_dir: str, entry: dict) -> str:
    """Copies the model into models_dir and records it as `models.motion_predictor` in its manifest.json (the rest of
    the manifest is left as it is)."""
    shutil.copyfile(onnx_path, os.path.join(models_dir, entry["file"]))
    manifest_path = os.path.join(models_dir, "manifest.json")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    manifest["models"]["motion_predictor"] = entry
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    check_with_runtime_reader(manifest_path)
    return manifest_path


# ---- main -------------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train", nargs="+", required=True, help="export-tracks folders (tracks.json + samples.bin)")
    p.add_argument("--val", nargs="*", default=[], help="export-tracks folders for validation")
    p.add_argument("--out", required=True, help="run folder: config.json, log.jsonl, checkpoint.pt, predictor.onnx, summary.json")
    p.add_argument("--modes", type=int, default=6)
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--cls-weight", type=float, default=1.0)
    p.add_argument("--nll-weight", type=float, default=0.1)
    p.add_argument("--truncate-prob", type=float, default=0.15, help="fraction of samples whose oldest steps are dropped")
    p.add_argument("--history-noise", type=float, default=0.03, help="1-sigma jitter (m) on past positions")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="smoke test: 2 epochs on 512 samples, export + verify")
    p.add_argument("--install", help="copy predictor.onnx into this folder (models/) and add models.motion_predictor to its manifest.json")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-node check of the export")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    train = concat([load_samples(d) for d in args.train])
    val = concat([load_samples(d) for d in args.val]) if args.val else None
    if args.quick:
        args.epochs = 2
        for d in (train, val):
            if d is not None:
                for k in ("history", "agent_class", "future"):
                    d[k] = d[k][:512]
    n = len(train["history"])
    with open(os.path.join(args.out, "config.json"), "w", encoding="utf-8") as f:
        json.dump({**vars(args), "trainSamples": n, "valSamples": 0 if val is None else len(val["history"]),
                   "trainSequences": train["sequences"], "valSequences": [] if val is None else val["sequences"]}, f, indent=2)
    net = MotionPredictorNet(train["history_steps"], train["future_steps"], args.modes, args.hidden, train["rate_hz"])
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = math.ceil(n / args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch, pct_start=0.1)
    log = open(os.path.join(args.out, "log.jsonl"), "w", encoding="utf-8")
    t0 = time.time()
    best = None
    for epoch in range(args.epochs):
        rng = np.random.default_rng([args.seed, epoch])
        order = rng.permutation(n)
        hist = augment(train["history"][order], rng, args.truncate_prob, args.history_noise)
        cls, fut = train["agent_class"][order], train["future"][order]
        sums = {"loss": 0.0, "reg": 0.0, "cls": 0.0, "nll": 0.0}
        for i in range(steps_per_epoch):
            sl = slice(i * args.batch, (i + 1) * args.batch)
            traj, sigma, logits = net.forward_train(torch.from_numpy(hist[sl]), torch.from_numpy(cls[sl]))
            loss, parts = losses(traj, sigma, logits, torch.from_numpy(fut[sl]), args.cls_weight, args.nll_weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            sums["loss"] += loss.item()
            for k2, v in parts.items():
                sums[k2] += v
        record = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1), **{k2: v / steps_per_epoch for k2, v in sums.items()}}
        if val is not None:
            record["val"] = evaluate(net, val, args.modes)
            score = record["val"][f"minFde{args.modes}"] + record["val"]["fde"]
            if best is None or score < best[0]:
                best = (score, epoch + 1, {k2: v.clone() for k2, v in net.state_dict().items()})
        log.write(json.dumps(record) + "\n")
        log.flush()
        print(json.dumps(record), flush=True)
    if best is not None:  # the epoch with the best validation minFDE_k + FDE
        net.load_state_dict(best[2])
    train_seconds = time.time() - t0
    torch.save({"model": net.state_dict(), "args": vars(args)}, os.path.join(args.out, "checkpoint.pt"))
    onnx_path = os.path.join(args.out, "predictor.onnx")
    io = export_onnx(net, onnx_path, verify=not args.no_verify)
    summary = {
        "parameters": params, "onnxBytes": os.path.getsize(onnx_path), "trainSeconds": round(train_seconds, 1),
        "bestEpoch": None if best is None else best[1], "val": None if val is None else evaluate(net, val, args.modes),
    }
    with open(os.path.join(args.out, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary), flush=True)
    if args.install:
        entry = {
            "file": "predictor.onnx",
            "sha256": sha256(onnx_path),
            "modelId": f"mlp-predictor-k{args.modes}-s{args.seed}-{datetime.date.today():%Y%m%d}-{sha256(onnx_path)[:8]}",
            "rateHz": train["rate_hz"],
            "historySteps": train["history_steps"],
            "horizonSteps": train["future_steps"],
            "modes": args.modes,
            "agentClasses": AGENT_CLASSES,
            **io,
            "training": {"command": "tools/train/train_predictor.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                         "trainSequences": train["sequences"], "trainSamples": n,
                         "valSequences": [] if val is None else val["sequences"], "seed": args.seed,
                         "epochs": args.epochs, "bestEpoch": summary["bestEpoch"], "trainSeconds": summary["trainSeconds"],
                         "parameters": params},
            "metrics": {"validation": summary["val"]},
        }
        print("installed into", install(onnx_path, args.install, entry), flush=True)
    return summary


if __name__ == "__main__":
    main()
