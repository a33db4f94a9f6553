#!/usr/bin/python3
"""Trains the learned channel reduction (codec stages c4, c16, c64) against the frozen shipped detector.

  /usr/bin/python3 tools/train/train_compressor.py --checkpoint runs/lidar-mixed-s1/checkpoint-last.pt \\
      --shards /tmp/v2x/shards-default/train --out runs/compressor-s1 --ratios 4 16 64 --max-steps 1500 \\
      --threads 1 --seed 1 --install models

As Where2comm / OpenCOOD's compression: a sender turns its BEV map [C, H, W] into [C/r, H, W] with a 1x1 conv
(`channel_encoder_c{r}.onnx`), quantises and sends that; the receiver expands it back to [C, H, W] with a small
decoder (`channel_decoder_c{r}.onnx`: 3x3 conv, ReLU, 1x1 conv, ReLU; non-negative like the backbone's output, so
warping's zeros and max fusion keep their meaning) before warping and fusion. The ego's own map never goes
through it.

The detector (pillar net, backbone, attention, head) is frozen, in eval mode: each step encodes the sample's agents
once, without gradients, and every ratio's pair is trained on that same forward pass (the backbone dominates the
step time, so three ratios cost little more than one). Loss per ratio: the detection loss of train.py (focal +
smooth L1 of the head on the fused map, collaborators through the pair) plus `--recon-weight` times the relative
reconstruction error of the collaborators' maps, ||x̂ − x||² / ||x||². The encoder/decoder start from PCA of the
features (the encoder projects on the top C/r principal components, the decoder maps back and adds the mean), so
step 0 is already the best linear reduction; training then shapes it for detection. With `--quant-noise-prob`,
a step adds uniform noise of half an int8 step (per channel, (max − min)/255) to the reduced map, so the pair
also works behind the codec's int8 stage.

`--eval SHARDS` (with --eval-only, or after training) measures the monitoring AP (evaluate.py) of the frozen
detector with attention fusion on held-out shards, ego = the sequence's first agent, for: ego only, no reduction,
each c<r>, and each c<r> behind int8 quantisation as the codec does it.

`--install DIR` copies the ONNX pairs into DIR (models/) and adds them to DIR/manifest.json
(`models.channel_reduction`, read by src/perception/manifest.ts) with a card under `channelReduction`.
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
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from data import DIHEDRAL, AnchorGrid, ShardSet, collate, grid_is_symmetric_square, select_agents, transform_sample  # noqa: E402
from evaluate import ApAccumulator, detect  # noqa: E402
from export import OPSET, check_with_runtime_reader, load_checkpoint, sha256, tensor_spec, verify_with_onnxruntime  # noqa: E402
from model import AttentionFusion, CooperativeDetector, count_parameters, max_fusion, warp_to_ego  # noqa: E402
from train import PositiveNormalizer, box_loss, focal_loss, to_tensors  # noqa: E402


# ----------------------------------------------------------------------------------------------------------------
# The encoder / decoder pair

class ChannelEncoder(nn.Module):
    """Sender side: 1x1 conv C -> C/r (with bias). Linear, so PCA is its exact initialisation."""

    def __init__(self, channels: int, ratio: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels // ratio, 1)

    def forward(self, bev_features: torch.Tensor) -> torch.Tensor:
        return self.conv(bev_features)


class ChannelDecoder(nn.Module):
    """Receiver side: 3x3 conv C/r -> C, ReLU, 1x1 conv C -> C, ReLU. The 3x3 lets a cell borrow from its
    neighbours what the few channels could not carry; the final ReLU keeps the map non-negative as the backbone's."""

    def __init__(self, channels: int, ratio: int):
        super().__init__()
        self.expand = nn.Conv2d(channels // ratio, channels, 3, padding=1)
        self.refine = nn.Conv2d(channels, channels, 1)

    def forward(self, reduced: torch.Tensor) -> torch.Tensor:
        return F.relu(self.refine(F.relu(self.expand(reduced))))


class ChannelReduction(nn.Module):
    def __init__(self, channels: int, ratio: int):
        super().__init__()
        if ratio < 2 or channels % ratio:
            raise ValueError(f"ratio {ratio} must be >= 2 and divide the {channels} channels")
        self.ratio = ratio
        self.encoder = ChannelEncoder(channels, ratio)
        self.decoder = ChannelDecoder(channels, ratio)

    @torch.no_grad()
    def init_pca(self, mean: torch.Tensor, components: torch.Tensor) -> None:
        """components [C, k] (orthonormal columns, largest variance first), mean [C]: encoder z = Vᵀ(x − μ), decoder
        relu(V z + μ) through the 3x3's centre tap, then the 1x1 as identity."""
        k = self.encoder.conv.out_channels
        v = components[:, :k]
        self.encoder.conv.weight.copy_(v.T[:, :, None, None])
        self.encoder.conv.bias.copy_(-(v.T @ mean))
        self.decoder.expand.weight.zero_()
        self.decoder.expand.weight[:, :, 1, 1] = v
        self.decoder.expand.bias.copy_(mean)
        c = self.decoder.refine.weight.shape[0]
        self.decoder.refine.weight.copy_(torch.eye(c)[:, :, None, None])
        self.decoder.refine.bias.zero_()

    def forward(self, features: torch.Tensor, quant_noise: bool = False) -> torch.Tensor:
        z = self.encoder(features)
        if quant_noise:
            z = z + int8_noise(z)
        return self.decoder(z)


def int8_noise(z: torch.Tensor) -> torch.Tensor:
    """Uniform noise of ± half an int8 step per (map, channel): what the codec's int8 stage adds, as a training
    stand-in (rounding has no gradient)."""
    flat = z.detach().flatten(2)
    scale = (flat.amax(dim=2) - flat.amin(dim=2)) / 255.0  # [K, k]
    return (torch.rand_like(z) - 0.5) * scale[:, :, None, None]


def int8_round_trip(z: torch.Tensor) -> torch.Tensor:
    """The codec's int8 stage on a dense map (src/codec/features.ts: per channel over the sent values, offset = min,
    scale = (max − min) / 255, q = round((x − min) / scale)), for evaluation."""
    flat = z.flatten(2)
    lo = flat.amin(dim=2)[:, :, None, None]
    hi = flat.amax(dim=2)[:, :, None, None]
    scale = (hi - lo) / 255.0
    q = torch.where(scale > 0, torch.round((z - lo) / torch.where(scale > 0, scale, torch.ones_like(scale))), torch.zeros_like(z))
    return lo + q.clamp(0, 255) * scale


# ----------------------------------------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="the detector's train.py checkpoint (frozen)")
    p.add_argument("--shards", nargs="+", default=[], help="training shard folders")
    p.add_argument("--out", required=True, help="run folder: config.json, log.jsonl, compressor.pt, onnx/, summary.json")
    p.add_argument("--ratios", nargs="+", type=int, default=[4, 16, 64])
    p.add_argument("--max-steps", type=int, default=1500, help="optimizer steps (samples with collaborators)")
    p.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (AdamW, one-cycle)")
    p.add_argument("--recon-weight", type=float, default=0.5, help="weight of the relative reconstruction error")
    p.add_argument("--quant-noise-prob", type=float, default=0.5, help="chance per step of int8 noise on the reduced map")
    p.add_argument("--fusion", choices=["attention", "max", "mixed"], default="attention",
                   help="fusion used in the loss (mixed: max or attention at random per step)")
    p.add_argument("--pca-samples", type=int, default=24, help="samples whose collaborator maps give the PCA")
    p.add_argument("--val", nargs="+", default=[], help="validation shard folders: detection loss and reconstruction error "
                   "of each pair at the start and the end (and every --val-every steps)")
    p.add_argument("--val-samples", type=int, default=16, help="validation samples, evenly spread")
    p.add_argument("--val-every", type=int, default=0)
    p.add_argument("--max-agents", type=int, default=4)
    p.add_argument("--drop-prob", type=float, default=0.25, help="chance of dropping each collaborator")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared: keep 1)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--resume", action="store_true", help="continue from OUT/compressor.pt")
    p.add_argument("--quick", action="store_true", help="smoke test: 6 steps, PCA on 2 samples, export + verify")
    p.add_argument("--no-export", action="store_true")
    p.add_argument("--install", help="copy the ONNX pairs into this folder and add them to its manifest.json")
    p.add_argument("--eval", nargs="+", default=[], help="held-out shard folders for the AP comparison")
    p.add_argument("--eval-frames", type=int, default=0, help="at most this many frames per eval sequence (0: all)")
    p.add_argument("--eval-only", action="store_true", help="skip training: load OUT/compressor.pt and evaluate")
    args = p.parse_args(argv)
    if args.quick:
        args.max_steps = min(args.max_steps, 6)
        args.pca_samples = min(args.pca_samples, 2)
        args.log_every = 2
        args.val_samples = min(args.val_samples, 2)
    if not args.eval_only and not args.shards:
        p.error("--shards is required unless --eval-only")
    return args


def frozen_detector(checkpoint: str) -> tuple[CooperativeDetector, dict]:
    model, config = load_checkpoint(checkpoint)
    for prm in model.parameters():
        prm.requires_grad_(False)
    model.eval()  # BatchNorm on its running statistics, as exported
    return model.to(memory_format=torch.channels_last), config


def prepare(shards: ShardSet, i: int, anchor_grid: AnchorGrid, args, rng: np.random.Generator | None):
    """One sample with collaborators (None when none is left): random collaborator drop + dihedral augmentation
    when rng is given, else every agent within range (at most --max-agents)."""
    sample = shards.read(i)
    if rng is not None:
        sample = select_agents(sample, rng, args.max_agents, args.drop_prob, 0.0)
    elif len(sample.agents) > args.max_agents:
        sample = select_agents(sample, np.random.default_rng(0), args.max_agents, 0.0, 0.0)
    if rng is not None and not args.no_augment and grid_is_symmetric_square(shards.grid):
        s2 = DIHEDRAL[int(rng.integers(len(DIHEDRAL)))]
        sample = transform_sample(sample, s2, round((shards.grid["xMax"] - shards.grid["xMin"]) / shards.grid["cellSize"]))
    return collate(sample, anchor_grid)


@torch.no_grad()
def encode_agents(model: CooperativeDetector, batch) -> torch.Tensor:
    points, point_pillar, num_points, coords, agent_index, agent_to_ego = to_tensors(batch, torch.device("cpu"))
    return model.encode(points, point_pillar, num_points, coords, agent_index, agent_to_ego.shape[0],
                        batch.sample.agents[0].max_points)


def fuse_and_detect(model: CooperativeDetector, features: torch.Tensor, agent_to_ego: torch.Tensor, fusion: str):
    if features.shape[0] == 1:
        fused = features
    else:
        aligned, mask = warp_to_ego(features, agent_to_ego, model.grid)
        fused = max_fusion(aligned, mask) if fusion == "max" else model.attention(aligned, mask)
    return model.head(fused)


def detection_loss(cls_logits, box_deltas, targets, norm: float, box_weight: float = 2.0) -> torch.Tensor:
    """train.py's compute_loss on given head outputs."""
    labels = torch.from_numpy(targets.labels).unsqueeze(0)
    weights = torch.from_numpy(targets.weights).unsqueeze(0)
    a = labels.shape[1]
    pred = box_deltas.reshape(a, 7, *box_deltas.shape[2:])
    positive = torch.from_numpy(targets.labels > 0)
    return (focal_loss(cls_logits, labels, weights) + box_weight * box_loss(pred, torch.from_numpy(targets.box_targets), positive)) / norm


def relative_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return ((x_hat - x) ** 2).sum() / (x ** 2).sum().clamp_min(1e-12)


@torch.no_grad()
def pca_basis(model, shards: ShardSet, anchor_grid, args, picks) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean [C] and principal directions [C, C] (columns, by decreasing variance) of the collaborators' feature
    vectors over the cells where they have any feature (empty cells are exactly 0 and would swamp the statistics)."""
    c = model.grid.channels
    total = torch.zeros(c, dtype=torch.float64)
    outer = torch.zeros(c, c, dtype=torch.float64)
    n = 0
    for i in picks:
        batch = prepare(shards, int(i), anchor_grid, args, None)
        if len(batch.sample.agents) < 2:
            continue
        f = encode_agents(model, batch)[1:]
        x = f.permute(0, 2, 3, 1).reshape(-1, c).to(torch.float64)
        x = x[(x > 0).any(dim=1)]
        total += x.sum(0)
        outer += x.T @ x
        n += x.shape[0]
    if n == 0:
        raise SystemExit("train_compressor.py: no collaborator features found for the PCA (samples without collaborators?)")
    mean = total / n
    cov = outer / n - torch.outer(mean, mean)
    evals, evecs = torch.linalg.eigh(cov)
    order = torch.argsort(evals, descending=True)
    return mean.to(torch.float32), evecs[:, order].to(torch.float32).contiguous()


@torch.no_grad()
def validate(model, pairs: dict, shards: ShardSet, anchor_grid, args) -> dict:
    """Mean detection loss (attention fusion, every collaborator, no augmentation) with each pair and without any,
    and each pair's relative reconstruction error, on --val-samples samples with collaborators."""
    for m in pairs.values():
        m.eval()
    picks = np.linspace(0, len(shards) - 1, min(args.val_samples, len(shards))).round().astype(int)
    sums = {"uncompressed": 0.0, **{f"c{r}": 0.0 for r in pairs}}
    errs = {f"c{r}": 0.0 for r in pairs}
    n = 0
    for i in picks:
        batch = prepare(shards, int(i), anchor_grid, args, None)
        if len(batch.sample.agents) < 2:
            continue
        n += 1
        features = encode_agents(model, batch)
        agent_to_ego = torch.from_numpy(batch.agent_to_ego)
        norm = max(1.0, float(batch.targets.positives))
        sums["uncompressed"] += float(detection_loss(*fuse_and_detect(model, features, agent_to_ego, "attention"), batch.targets, norm))
        for r, pair in pairs.items():
            recon = pair(features[1:])
            sums[f"c{r}"] += float(detection_loss(*fuse_and_detect(model, torch.cat([features[:1], recon]), agent_to_ego, "attention"),
                                                  batch.targets, norm))
            errs[f"c{r}"] += float(relative_error(recon, features[1:]))
    for m in pairs.values():
        m.train()
    n = max(n, 1)
    return {"samples": n, "detLoss": {k: round(v / n, 4) for k, v in sums.items()}, "relErr": {k: round(v / n, 4) for k, v in errs.items()}}


def run_validation(model, pairs, val_set, anchor_grid, args, step, log, info) -> None:
    if val_set is None:
        return
    t = time.time()
    result = validate(model, pairs, val_set, anchor_grid, args)
    result["step"] = step
    result["seconds"] = round(time.time() - t, 1)
    log.write(json.dumps({"validation": result}) + "\n")
    log.flush()
    info.setdefault("validation", []).append(result)
    print(f"validation at step {step}: {json.dumps(result)}", flush=True)


def save_state(path: str, pairs: dict, optimizer, scheduler, step: int, extra: dict) -> None:
    tmp = path + ".tmp"
    torch.save({"pairs": {r: m.state_dict() for r, m in pairs.items()}, "optimizer": optimizer.state_dict() if optimizer else None,
                "scheduler": scheduler.state_dict() if scheduler else None, "step": step, **extra}, tmp)
    os.replace(tmp, path)


def train(args, model, config) -> tuple[dict, dict]:
    shards = ShardSet(args.shards)
    anchor_grid = AnchorGrid(shards.grid, shards.anchors)
    c = model.grid.channels
    pairs = {r: ChannelReduction(c, r) for r in args.ratios}
    params = [p for m in pairs.values() for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, total_steps=max(2, args.max_steps), pct_start=0.1,
                                                    div_factor=10, final_div_factor=50)
    state_path = os.path.join(args.out, "compressor.pt")
    step = 0
    info: dict = {}
    if args.resume and os.path.exists(state_path):
        state = torch.load(state_path, map_location="cpu")
        for r, m in pairs.items():
            m.load_state_dict(state["pairs"][r])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        info = state.get("info", {})
        print(f"resumed at step {step}", flush=True)
    else:
        t = time.time()
        picks = np.random.default_rng([args.seed, 999]).choice(len(shards), size=min(args.pca_samples, len(shards)), replace=False)
        mean, components = pca_basis(model, shards, anchor_grid, args, picks)
        for m in pairs.values():
            m.init_pca(mean, components)
        info["pcaSeconds"] = round(time.time() - t, 1)
        info["pcaSamples"] = len(picks)
        print(f"PCA init from {len(picks)} samples in {info['pcaSeconds']} s", flush=True)

    normalizer = PositiveNormalizer(value=info.get("positiveNorm"))
    for m in pairs.values():
        m.train()
    log = open(os.path.join(args.out, "log.jsonl"), "a", encoding="utf-8")
    val_set = ShardSet(args.val) if args.val else None
    if step == 0:
        run_validation(model, pairs, val_set, anchor_grid, args, 0, log, info)
    t_start = time.time() - info.get("trainSeconds", 0.0)
    window = {r: {"det": [], "rec": []} for r in args.ratios}
    window_t, window_n, skipped = time.time(), 0, 0
    # Deterministic stream: one permutation of the samples per pass, each draw from (seed, pass, position).
    position = info.get("position", 0)
    n = len(shards)
    while step < args.max_steps:
        epoch, pos = divmod(position, n)
        order = np.random.default_rng([args.seed, epoch]).permutation(n)
        rng = np.random.default_rng([args.seed, epoch, pos])
        position += 1
        batch = prepare(shards, int(order[pos]), anchor_grid, args, rng)
        if len(batch.sample.agents) < 2:
            skipped += 1
            continue
        fusion = args.fusion if args.fusion != "mixed" else ("max" if rng.random() < 0.5 else "attention")
        noisy = rng.random() < args.quant_noise_prob
        features = encode_agents(model, batch)
        agent_to_ego = torch.from_numpy(batch.agent_to_ego)
        norm = normalizer.update(batch.targets.positives)
        total = 0.0
        for r, pair in pairs.items():
            recon = pair(features[1:], quant_noise=noisy)
            cls_logits, box_deltas = fuse_and_detect(model, torch.cat([features[:1], recon]), agent_to_ego, fusion)
            det = detection_loss(cls_logits, box_deltas, batch.targets, norm)
            rec = relative_error(recon, features[1:])
            total = total + det + args.recon_weight * rec
            window[r]["det"].append(float(det))
            window[r]["rec"].append(float(rec))
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
        step += 1
        if step < args.max_steps:
            scheduler.step()
        window_n += 1
        if step % args.log_every == 0 or step == args.max_steps:
            dt = time.time() - window_t
            rec = {"step": step, "lr": scheduler.get_last_lr()[0], "samples_per_s": round(window_n / dt, 4), "skipped": skipped,
                   "elapsed_s": round(time.time() - t_start, 1)}
            for r in args.ratios:
                rec[f"c{r}"] = {"det": round(float(np.mean(window[r]["det"])), 5), "rel_err": round(float(np.mean(window[r]["rec"])), 5)}
            log.write(json.dumps(rec) + "\n")
            log.flush()
            eta = (args.max_steps - step) / rec["samples_per_s"] / 60
            print(f"step {step}/{args.max_steps} " + " ".join(f"c{r} det {rec[f'c{r}']['det']:.3f} err {rec[f'c{r}']['rel_err']:.3f}" for r in args.ratios)
                  + f" {rec['samples_per_s']:.3f} samples/s eta {eta:.1f} min", flush=True)
            window = {r: {"det": [], "rec": []} for r in args.ratios}
            window_t, window_n = time.time(), 0
        if args.val_every and step % args.val_every == 0 and step < args.max_steps:
            run_validation(model, pairs, val_set, anchor_grid, args, step, log, info)
        info.update(position=position, positiveNorm=normalizer.value, trainSeconds=round(time.time() - t_start, 1))
        if step % args.checkpoint_every == 0:
            save_state(state_path, pairs, optimizer, scheduler, step, {"info": info, "args": vars(args)})
    info["trainSeconds"] = round(time.time() - t_start, 1)
    run_validation(model, pairs, val_set, anchor_grid, args, step, log, info)
    info["steps"] = step
    info["trainScenarios"] = sorted({s["scenario"] for _, s in shards.entries})
    info["trainSamples"] = len(shards)
    save_state(state_path, pairs, optimizer, scheduler, step, {"info": info, "args": vars(args)})
    log.close()
    print(f"done: {step} steps in {info['trainSeconds'] / 60:.1f} min ({skipped} samples without collaborators skipped)", flush=True)
    return pairs, info


def load_pairs(args, channels: int) -> tuple[dict, dict]:
    state_path = os.path.join(args.out, "compressor.pt")
    if not os.path.exists(state_path):
        raise SystemExit(f"train_compressor.py: {state_path}: no such file (train first, without --eval-only)")
    state = torch.load(state_path, map_location="cpu")
    pairs = {}
    for r, sd in state["pairs"].items():
        pairs[int(r)] = ChannelReduction(channels, int(r))
        pairs[int(r)].load_state_dict(sd)
    return pairs, state.get("info", {})


# ----------------------------------------------------------------------------------------------------------------
# Evaluation

@torch.no_grad()
def evaluate_codecs(model, pairs: dict, eval_dirs: list[str], args) -> dict:
    """Monitoring AP (evaluate.py) per variant on held-out shards, ego = each sequence's first ego, attention fusion."""
    for m in pairs.values():
        m.eval()
    variants = ["none", "attention"] + [f"c{r}" for r in sorted(pairs)] + [f"c{r}+int8" for r in sorted(pairs)]
    result = {"protocol": "tools/train/evaluate.py monitoring AP (BEV, greedy by score, VOC all-point), shard ground truth "
                          "(cooperative, all corners inside the grid, no z bound); ego = the sequence's first agent; "
                          "attention fusion with every collaborator within 70 m; collaborators' maps through each pair",
              "sequences": {}}
    overall = {v: None for v in variants}
    for d in eval_dirs:
        shards = ShardSet(d)
        anchor_grid = AnchorGrid(shards.grid, shards.anchors)
        vehicle = anchor_grid.classes.index(next(c for c in anchor_grid.classes if c.name == "vehicle"))
        first_ego = shards.entries[0][1]["ego"]
        picks = [i for i, (_, s) in enumerate(shards.entries) if s["ego"] == first_ego]
        if args.eval_frames:
            picks = picks[: args.eval_frames]
        accs = {v: ApAccumulator() for v in variants}
        agents = []
        t0 = time.time()
        for i in picks:
            batch = prepare(shards, i, anchor_grid, args, None)
            s = batch.sample
            gt = s.gt_boxes[s.gt_classes == vehicle]
            features = encode_agents(model, batch)
            agent_to_ego = torch.from_numpy(batch.agent_to_ego)
            agents.append(features.shape[0])
            for v in variants:
                if v == "none":
                    f = features[:1]
                elif v == "attention" or features.shape[0] == 1:
                    f = features
                else:
                    r = int(v.split("+")[0][1:])
                    z = pairs[r].encoder(features[1:])
                    if v.endswith("+int8"):
                        z = int8_round_trip(z)
                    f = torch.cat([features[:1], pairs[r].decoder(z)])
                cls_logits, box_deltas = fuse_and_detect(model, f, agent_to_ego[: f.shape[0]], "attention")
                boxes, scores, _ = detect(cls_logits[0].numpy(), box_deltas[0].numpy(), anchor_grid)[vehicle]
                accs[v].add(boxes, scores, gt)
        seq = {"shards": d, "ego": first_ego, "frames": len(picks), "agentsPerFrame": round(float(np.mean(agents)), 2),
               "seconds": round(time.time() - t0, 1), "vehicleGt": accs["none"].gt_count}
        for v in variants:
            seq[v] = {str(t): (None if a is None else round(a, 4)) for t, a in accs[v].ap().items()}
        result["sequences"][os.path.basename(os.path.normpath(d))] = seq
        print(f"eval {d}: {json.dumps(seq)}", flush=True)
    c, h, w = model.grid.channels, model.grid.feature_height, model.grid.feature_width
    result["bytesPerCollaboratorMessage"] = {"note": "dense map, every cell sent, values only (no header, no entropy coding)",
                                            "raw": c * h * w * 4, "int8": c * h * w}
    for r in sorted(pairs):
        result["bytesPerCollaboratorMessage"][f"c{r}"] = c // r * h * w * 4
        result["bytesPerCollaboratorMessage"][f"c{r}+int8"] = c // r * h * w
    del overall
    return result


# ----------------------------------------------------------------------------------------------------------------
# Export

def export_pairs(pairs: dict, model, example: torch.Tensor, out_dir: str, verify: bool = True) -> dict:
    """channel_encoder_c{r}.onnx ('bev_features' [1, C, H, W] -> 'reduced' [1, C/r, H, W]) and
    channel_decoder_c{r}.onnx ('reduced' -> 'bev_features'), checked with onnx.checker and ONNX Runtime."""
    import onnx  # noqa: E402

    os.makedirs(out_dir, exist_ok=True)
    c, h, w = model.grid.channels, model.grid.feature_height, model.grid.feature_width
    entries, checks = {}, []
    for r, pair in sorted(pairs.items()):
        pair = copy.deepcopy(pair).eval()
        k = c // r
        with torch.no_grad():
            reduced = pair.encoder(example)
            expanded = pair.decoder(reduced)
        for role, module, x, y, in_name, out_name, in_shape, out_shape in (
                ("encoder", pair.encoder, example, reduced, "bev_features", "reduced", [1, c, h, w], [1, k, h, w]),
                ("decoder", pair.decoder, reduced, expanded, "reduced", "bev_features", [1, k, h, w], [1, c, h, w])):
            name = f"channel_{role}_c{r}"
            path = os.path.join(out_dir, f"{name}.onnx")
            with torch.no_grad():
                torch.onnx.export(module, (x,), path, opset_version=OPSET, input_names=[in_name], output_names=[out_name],
                                  do_constant_folding=True)
            onnx.checker.check_model(onnx.load(path))
            entries.setdefault(str(r), {})[role] = {
                "file": f"{name}.onnx", "sha256": sha256(path), "bytes": os.path.getsize(path), "opset": OPSET,
                "parameters": count_parameters(module), "inputs": [tensor_spec(in_name, in_shape)],
                "outputs": [tensor_spec(out_name, out_shape)]}
            checks.append((name, path, [in_name], [x.numpy()], [out_name], [y.numpy()]))
    if verify:
        verify_with_onnxruntime(checks)
    return entries


def install(entries: dict, onnx_dir: str, models_dir: str, card: dict) -> str:
    """Copies the pairs into models_dir and records them in its manifest.json: `models.channel_reduction` holds
    what the runtime reads ({ratio: {encoder: {file, sha256}, decoder: {file, sha256}}}), `channelReduction` the card."""
    manifest_path = os.path.join(models_dir, "manifest.json")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    runtime_entries = {}
    files = {}
    for r, pair in sorted(entries.items(), key=lambda kv: int(kv[0])):
        runtime_entries[r] = {}
        for role in ("encoder", "decoder"):
            e = pair[role]
            shutil.copyfile(os.path.join(onnx_dir, e["file"]), os.path.join(models_dir, e["file"]))
            runtime_entries[r][role] = {"file": e["file"], "sha256": e["sha256"]}
            files[e["file"]] = {k: v for k, v in e.items() if k not in ("file", "sha256")}
    manifest["models"]["channel_reduction"] = runtime_entries
    manifest["channelReduction"] = {**card, "modelCard": files}
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    check_with_runtime_reader(manifest_path)
    return manifest_path


def example_features(model, shard_dirs: list[str], args) -> torch.Tensor:
    """A real collaborator map (the first sample with one) as the export's example input; zeros+noise otherwise."""
    if shard_dirs:
        shards = ShardSet(shard_dirs)
        anchor_grid = AnchorGrid(shards.grid, shards.anchors)
        for i in range(min(len(shards), 50)):
            batch = prepare(shards, i, anchor_grid, args, None)
            if len(batch.sample.agents) > 1:
                return encode_agents(model, batch)[1:2].contiguous()
    g = model.grid
    return torch.relu(torch.randn(1, g.channels, g.feature_height, g.feature_width))


def main(argv=None) -> int:
    warnings.filterwarnings("ignore", message="scatter_reduce")
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.makedirs(args.out, exist_ok=True)
    model, det_config = frozen_detector(args.checkpoint)

    if args.eval_only:
        pairs, info = load_pairs(args, model.grid.channels)
    else:
        with open(os.path.join(args.out, "config.json"), "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "detectorCheckpoint": os.path.abspath(args.checkpoint), "torch": torch.__version__}, f, indent=2)
        pairs, info = train(args, model, det_config)

    summary_path = os.path.join(args.out, "summary.json")
    summary = {}
    if os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            summary = json.load(f)
    summary["training"] = info
    command = "/usr/bin/python3 tools/train/train_compressor.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if not args.eval_only:
        summary["command"] = command
    if args.eval:
        summary["accuracy"] = evaluate_codecs(model, pairs, args.eval, args)
        summary["accuracy"]["command"] = command
    with open(summary_path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)

    if not args.no_export and not args.eval_only or args.install:
        onnx_dir = os.path.join(args.out, "onnx")
        example = example_features(model, args.shards or args.eval, args)
        entries = export_pairs(pairs, model, example, onnx_dir)
        with open(os.path.join(onnx_dir, "channel_reduction.json"), "w", encoding="utf-8") as f:
            json.dump(entries, f, indent=2)
        print(f"exported {len(entries)} channel-reduction pairs to {onnx_dir}", flush=True)
        if args.install:
            card = {
                "description": "learned channel reduction (codec stage c<ratio>): sender 1x1 conv C -> C/ratio; receiver 3x3 conv, "
                               "ReLU, 1x1 conv, ReLU back to C; trained with the detector frozen (tools/train/train_compressor.py)",
                "detectorCheckpoint": os.path.abspath(args.checkpoint),
                "exportedAt": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "training": {**summary.get("training", {}), "command": summary.get("command"),
                             "hyperparameters": {k: getattr(args, k) for k in ("lr", "recon_weight", "quant_noise_prob", "fusion",
                                                                               "pca_samples", "max_agents", "drop_prob", "seed")}},
                "accuracy": summary.get("accuracy"),
            }
            path = install(entries, onnx_dir, args.install, card)
            print(f"installed into {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
