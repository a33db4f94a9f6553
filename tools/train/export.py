#!/usr/bin/python3
"""Exports a train.py checkpoint to the four ONNX models of models/README.md and writes their manifest entries.

  /usr/bin/python3 tools/train/export.py --checkpoint runs/lidar-max/checkpoint-last.pt --out models

Writes OUT/lidar_pfn.onnx, lidar_backbone.onnx, fusion_attention.onnx, detection_head.onnx (opset 17, float32),
checks each with onnx.checker and, where Node and onnxruntime-node are installed (the project's own dependency),
runs each in ONNX Runtime on a real input and compares with PyTorch. Then creates or updates OUT/manifest.json
(or --manifest): one entry per model with file, sha256, inputs/outputs, plus the grid, classes, anchors, box
encoding and training provenance; `accuracy` is left null for the official TypeScript evaluation to fill in.
"""
from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from model import CooperativeDetector, Grid, count_parameters  # noqa: E402
from export_lean import LEAN  # noqa: E402

OPSET = 17
HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT_ROOT = os.path.dirname(os.path.dirname(HERE))


class _Pfn(torch.nn.Module):
    def __init__(self, pfn):
        super().__init__()
        self.pfn = pfn

    def forward(self, pillars):
        return self.pfn(pillars)


def load_checkpoint(path: str) -> tuple[CooperativeDetector, dict]:
    ckpt = torch.load(path, map_location="cpu")
    config = ckpt["config"]
    args = config["args"]
    grid = Grid.from_json(config["grid"])
    anchors = sum(len(a["yaws"]) for a in config["anchors"])
    model = CooperativeDetector(grid, anchors, args["fusion"], channels=grid.channels, depth=args.get("depth", 3))
    model.load_state_dict(ckpt["model"])
    model = model.to(memory_format=torch.contiguous_format).eval()
    return model, {**config, "step": ckpt.get("step"), "validation": ckpt.get("validation")}


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tensor_spec(name: str, shape: list) -> dict:
    return {"name": name, "dtype": "float32", "shape": shape}


def export_all(checkpoint: str, out_dir: str, manifest_path: str | None = None, verify: bool = True,
               model_id: str | None = None) -> dict:
    model, config = load_checkpoint(checkpoint)
    grid: Grid = model.grid
    a = model.head.cls.out_channels
    c = grid.channels
    h, w = grid.height, grid.width
    fh, fw = grid.feature_height, grid.feature_width
    max_points = config["pillar"]["maxPointsPerPillar"]
    features = len(config["pillar"]["features"])
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(0)

    # Example inputs: sparse, like real data (a few thousand pillars, non-negative BEV features).
    p = 3000
    pillars = torch.zeros(p, max_points, features)
    counts = rng.integers(1, max_points + 1, p)
    for i, n in enumerate(counts):
        pillars[i, :n] = torch.from_numpy(rng.normal(0, 1, (n, features)).astype(np.float32))
    bev_pillars = torch.zeros(1, 64, h, w)
    cells = torch.from_numpy(rng.choice(h * w, p, replace=False))
    with torch.no_grad():
        bev_pillars.view(1, 64, -1)[0, :, cells] = model.pfn(pillars).T
        bev_features = model.backbone(bev_pillars)
    k = 3
    aligned = torch.relu(torch.from_numpy(rng.normal(0, 1, (k, c, fh, fw)).astype(np.float32)))
    mask = torch.from_numpy((rng.random((k, 1, fh, fw)) > 0.3).astype(np.float32))
    mask[0] = 1
    aligned = aligned * mask

    specs = {
        "lidar_pfn": dict(module=_Pfn(model.pfn), args=(pillars,), inputs=["pillars"], outputs=["pillar_features"],
                          dynamic={"pillars": {0: "P"}, "pillar_features": {0: "P"}},
                          in_shapes=[["P", max_points, features]], out_shapes=[["P", 64]], params=model.pfn),
        "lidar_backbone": dict(module=model.backbone, args=(bev_pillars,), inputs=["bev_pillars"], outputs=["bev_features"],
                               dynamic=None, in_shapes=[[1, 64, h, w]], out_shapes=[[1, c, fh, fw]], params=model.backbone),
        "fusion_attention": dict(module=model.attention, args=(aligned, mask), inputs=["aligned", "mask"], outputs=["fused"],
                                 dynamic={"aligned": {0: "K"}, "mask": {0: "K"}},
                                 in_shapes=[["K", c, fh, fw], ["K", 1, fh, fw]], out_shapes=[[1, c, fh, fw]], params=model.attention),
        "detection_head": dict(module=model.head, args=(bev_features,), inputs=["bev"], outputs=["cls_logits", "box_deltas"],
                               dynamic=None, in_shapes=[[1, c, fh, fw]], out_shapes=[[1, a, fh, fw], [1, 7 * a, fh, fw]], params=model.head),
    }

    import onnx  # noqa: E402  (only needed here)

    # The attention's 1/sqrt(C) is traced as a constant: right, C is fixed by the model.
    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)

    entries = {}
    checks = []
    for name, s in specs.items():
        path = os.path.join(out_dir, f"{name}.onnx")
        module = copy.deepcopy(s["module"]).eval()
        with torch.no_grad():
            torch.onnx.export(module, s["args"], path, opset_version=OPSET, input_names=s["inputs"], output_names=s["outputs"],
                              dynamic_axes=s["dynamic"], do_constant_folding=True)
            expected = module(*s["args"])
        if name in LEAN:
            # The traced PFN and attention graphs are transpose-bound in ONNX Runtime: same weights, lean graph.
            onnx.save(LEAN[name](onnx.load(path)), path)
        expected = expected if isinstance(expected, tuple) else (expected,)
        onnx.checker.check_model(onnx.load(path))
        entries[name] = {
            "file": f"{name}.onnx",
            "sha256": sha256(path),
            "bytes": os.path.getsize(path),
            "opset": OPSET,
            "parameters": count_parameters(s["params"]),
            "inputs": [tensor_spec(n, sh) for n, sh in zip(s["inputs"], s["in_shapes"])],
            "outputs": [tensor_spec(n, sh) for n, sh in zip(s["outputs"], s["out_shapes"])],
        }
        checks.append((name, path, s["inputs"], [t.numpy() for t in s["args"]], s["outputs"], [t.numpy() for t in expected]))

    if verify:
        verify_with_onnxruntime(checks)

    manifest = build_manifest(manifest_path, entries, config, checkpoint, model_id)
    if manifest_path:
        with open(manifest_path, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        if verify:
            check_with_runtime_reader(manifest_path)
    return manifest


def verify_with_onnxruntime(checks) -> None:
    """Runs each model in onnxruntime-node (tools/train/verify_onnx.mjs) on the export's example input and compares
    with PyTorch. Skipped, with a note, when node or onnxruntime-node is not installed."""
    node = shutil.which("node")
    if not node or not os.path.isdir(os.path.join(PROJECT_ROOT, "node_modules", "onnxruntime-node")):
        print("export: node or onnxruntime-node not found: ONNX Runtime check skipped (onnx.checker passed)", flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="v2xfuse-onnx-verify-") as tmp:
        cases = []
        for name, path, in_names, inputs, out_names, outputs in checks:
            case = {"name": name, "model": os.path.abspath(path), "inputs": [], "outputs": []}
            for kind, names, arrays in (("inputs", in_names, inputs), ("outputs", out_names, outputs)):
                for n, arr in zip(names, arrays):
                    f = os.path.join(tmp, f"{name}.{kind}.{n}.bin")
                    np.ascontiguousarray(arr, dtype="<f4").tofile(f)
                    case[kind].append({"name": n, "file": f, "shape": list(arr.shape)})
            cases.append(case)
        spec = os.path.join(tmp, "cases.json")
        with open(spec, "w", encoding="utf-8") as f:
            json.dump(cases, f)
        result = subprocess.run([node, os.path.join(HERE, "verify_onnx.mjs"), spec], cwd=PROJECT_ROOT, capture_output=True, text=True)
        sys.stdout.write(result.stdout)
        if result.returncode != 0:
            raise SystemExit(f"export: ONNX Runtime disagrees with PyTorch or failed:\n{result.stderr}")


def build_manifest(manifest_path: str | None, entries: dict, config: dict, checkpoint: str, model_id: str | None = None) -> dict:
    """The manifest src/perception/manifest.ts reads (formatVersion 1: strict grid / pillar / anchors / postprocess /
    models {file, sha256}); everything else goes into top-level keys the runtime ignores (modelCard, encoding,
    fusion, training, accuracy). An existing manifest keeps its other models and keys."""
    manifest = {}
    if manifest_path and os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    args = config["args"]
    fusion = args["fusion"]
    exported_at = datetime.datetime.now(datetime.timezone.utc)
    if not model_id:
        model_id = f"pp-v2xfuse-{fusion}-s{args['seed']}-{exported_at:%Y%m%d}-{entries['lidar_backbone']['sha256'][:8]}"
    pillar = config["pillar"]
    manifest.update({
        "formatVersion": 1,
        "modelId": model_id,
        "description": f"PointPillars-style LiDAR encoder + detection head trained with {fusion} fusion by tools/train "
                       f"({config.get('step')} steps on {', '.join(config.get('train_scenarios', [])[:6])}"
                       f"{' …' if len(config.get('train_scenarios', [])) > 6 else ''})",
        "grid": config["grid"],
        "pillar": {"maxPointsPerPillar": pillar["maxPointsPerPillar"], "maxPillars": pillar["maxPillars"],
                   "features": pillar["features"]},
        "anchors": [{k: a[k] for k in ("cls", "l", "w", "h", "z", "yaws")} for a in config["anchors"]],
        "postprocess": {"scoreThreshold": 0.2, "nmsIouThreshold": 0.15, "preNmsTopK": 1000},
        # Metres added to an agent's point z before pillarising, by agent kind (export-training --rsu-z-offset);
        # the runtime must apply the same shift or the model sees that agent's points at the wrong height.
        "pointZOffsetByKind": config.get("zOffsetByKind", {}),
        "encoding": {
            "boxDeltas": "channel = a * 7 + k, k in (dx, dy, dz, dl, dw, dh, dtheta); a = classIndex * len(yaws) + yawIndex",
            "decode": "d = sqrt(la^2 + wa^2); x = dx*d + xa; y = dy*d + ya; z = dz*ha + za; l = exp(dl)*la; "
                      "w = exp(dw)*wa; h = exp(dh)*ha; yaw = ya + dtheta (yaw is defined modulo pi)",
            "anchorCentres": "feature-cell centres: x = xMin + (col + 0.5) * cellSize * featureStride, y likewise with row",
            "score": "sigmoid(cls_logits)",
        },
        "fusion": {
            "warp": "tools/train/README.md: theta = N^-1 [R^T, -R^T t] N, F.grid_sample bilinear, zeros, align_corners=False",
            "max": "element-wise max over agents of the masked aligned features",
            "attention": "fusion_attention.onnx (per-cell scaled dot-product across agents, ego row, masked)",
            "headTrainedWith": fusion,
        },
    })
    models = manifest.setdefault("models", {})
    cards = manifest.setdefault("modelCard", {})
    for role, e in entries.items():
        models[role] = {"file": e["file"], "sha256": e["sha256"]}
        cards[role] = {k: v for k, v in e.items() if k not in ("file", "sha256")}
    manifest["training"] = {
        "checkpoint": os.path.abspath(checkpoint),
        "exportedAt": exported_at.isoformat(timespec="seconds"),
        "fusion": fusion,
        "seed": args["seed"],
        "steps": config.get("step"),
        "trainSeconds": config.get("train_seconds"),
        "shards": args["shards"],
        "val": args.get("val", []),
        "trainScenarios": config.get("train_scenarios", []),
        "valScenarios": config.get("val_scenarios", []),
        "trainSamples": config.get("train_samples"),
        "hyperparameters": {k: args[k] for k in ("lr", "weight_decay", "max_agents", "drop_prob", "ego_only_prob",
                                                 "no_augment", "min_points", "epochs", "max_steps", "depth") if k in args},
        "monitoringValidation": config.get("validation"),
        "command": "/usr/bin/python3 tools/train/train.py " + " ".join(_cli_args(args)),
    }
    # Filled in by the official TypeScript evaluation (v2xfuse detect), never by training.
    manifest["accuracy"] = manifest.get("accuracy") or None
    return manifest


def check_with_runtime_reader(manifest_path: str) -> None:
    """Parses the written manifest with the runtime's own reader (src/perception/manifest.ts), when present."""
    node = shutil.which("node")
    reader = os.path.join(PROJECT_ROOT, "src", "perception", "manifest.ts")
    if not node or not os.path.exists(reader) or not os.path.isdir(os.path.join(PROJECT_ROOT, "node_modules", "tsx")):
        print("export: runtime manifest reader not available: manifest not cross-checked", flush=True)
        return
    script = (f"const m = await import({json.dumps(reader)});"
              f"const r = await m.loadManifest({json.dumps(os.path.abspath(manifest_path))});"
              "console.log(`manifest ok for the runtime reader: ${r.modelId}, models ${Object.keys(r.models).join(', ')}`);")
    result = subprocess.run([node, "--import", "tsx", "--input-type=module", "-e", script], cwd=PROJECT_ROOT,
                            capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode != 0:
        raise SystemExit(f"export: src/perception/manifest.ts refuses {manifest_path}:\n{result.stderr.strip()}")


def _cli_args(args: dict) -> list[str]:
    out = ["--shards", *args["shards"]]
    if args.get("val"):
        out += ["--val", *args["val"]]
    out += ["--out", args["out"], "--epochs", str(args["epochs"]), "--fusion", args["fusion"], "--seed", str(args["seed"]),
            "--threads", str(args["threads"])]
    if args.get("max_steps"):
        out += ["--max-steps", str(args["max_steps"])]
    if args.get("quick"):
        out.append("--quick")
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="folder for the .onnx files (models/ for the shipped ones)")
    p.add_argument("--manifest", help="manifest to create or update (default OUT/manifest.json)")
    p.add_argument("--model-id", help="manifest modelId (default pp-v2xfuse-FUSION-sSEED-DATE-HASH8)")
    p.add_argument("--no-verify", action="store_true", help="skip the ONNX Runtime comparison and the manifest check")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    manifest = export_all(args.checkpoint, args.out, args.manifest or os.path.join(args.out, "manifest.json"),
                          verify=not args.no_verify, model_id=args.model_id)
    for name, e in manifest["models"].items():
        card = manifest["modelCard"].get(name, {})
        print(f"{name}: {e['file']} {card.get('bytes', 0) / 1e6:.2f} MB, {card.get('parameters', 0):,} parameters, "
              f"sha256 {e['sha256'][:12]}…")
    return 0


if __name__ == "__main__":
    sys.exit(main())
