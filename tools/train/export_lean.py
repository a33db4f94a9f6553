#!/usr/bin/python3
"""Rewrites the traced lidar_pfn.onnx and fusion_attention.onnx into lean graphs of the same function and weights.

  /usr/bin/python3 tools/train/export_lean.py --models models            # rewrite in place, update manifest.json
  /usr/bin/python3 tools/train/export_lean.py --models models --check    # only say whether they are lean already

Why: torch.onnx traces these two modules into layouts ONNX Runtime's CPU provider runs slowly (measured with ORT
its profiler on a 30k-point frame, one thread):
  - lidar_pfn: MatMul -> Transpose -> BatchNormalization -> Transpose -> Relu -> ReduceMax. The two transposes of
    [P, 32, 64] and the BatchNorm on the transposed layout took ~80% of the time, the matmul itself ~20%.
    Lean: BatchNorm (running statistics) folded into the matmul weight and a bias, and the max taken before the
    bias and ReLU (both monotonic), so MatMul -> ReduceMax on the contiguous [P, 32, 64] layout, Add -> Relu on
    [P, 64].
  - fusion_attention: per-cell scaled dot-product across agents, exported as Transposes of [K, C, H*W] around
    16,384 tiny batched matmuls; the transposes were ~85% of its time. Lean: the same arithmetic as element-wise
    ops on the [K, C, H, W] layout: scores = sum_c aligned * ego / sqrt(C), masked to -1e9 where mask <= 0,
    softmax over the agents, fused = sum_k weights * aligned.
The input and output names, shapes and dynamic axes stay as they are (the TypeScript runtime's contract). Weights
are read from the traced file itself, so nothing is retrained: the lean graph computes the same function up to
float32 rounding (folding changes the order of a few multiplications; test/perception/lean-models.test.ts holds
the two within 1e-4 of each other on a real frame). A file already lean is left alone.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17
LEAN_MARK = ("v2xfuse.graph", "lean-1")


def _is_lean(model: onnx.ModelProto) -> bool:
    return any(p.key == LEAN_MARK[0] and p.value == LEAN_MARK[1] for p in model.metadata_props)


def _io(model: onnx.ModelProto):
    return list(model.graph.input), list(model.graph.output)


def _finish(graph: onnx.GraphProto, source: onnx.ModelProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="v2xfuse export_lean")
    model.ir_version = source.ir_version
    helper.set_model_props(model, dict([LEAN_MARK]))
    onnx.checker.check_model(model)
    return model


def lean_pfn(traced: onnx.ModelProto) -> onnx.ModelProto:
    """lidar_pfn: Linear (no bias) + BatchNorm (eval) + ReLU + max over slots, BatchNorm folded into the Linear."""
    init = {i.name: numpy_helper.to_array(i) for i in traced.graph.initializer}
    matmuls = [n for n in traced.graph.node if n.op_type == "MatMul"]
    norms = [n for n in traced.graph.node if n.op_type == "BatchNormalization"]
    if len(matmuls) != 1 or len(norms) != 1:
        raise SystemExit("export_lean: lidar_pfn is not the traced Linear + BatchNorm + ReLU + max graph")
    weight = init[matmuls[0].input[1]].astype(np.float64)  # [F, C]
    gamma, beta, mean, var = (init[name].astype(np.float64) for name in norms[0].input[1:5])
    eps = next(a.f for a in norms[0].attribute if a.name == "epsilon")
    scale = gamma / np.sqrt(var + np.float64(np.float32(eps)))
    folded_w = (weight * scale[None, :]).astype(np.float32)
    folded_b = (beta - mean * scale).astype(np.float32)
    (pillars,), (features,) = _io(traced)
    # max_n relu(x_n W + b) = relu(max_n(x_n W) + b) exactly: adding b and relu are monotonic, also under float
    # rounding. So only the matmul and the max touch [P, 32, 64]; the bias and ReLU run on [P, 64].
    nodes = [
        helper.make_node("MatMul", [pillars.name, "pfn.weight_bn_folded"], ["linear"]),
        helper.make_node("ReduceMax", ["linear"], ["slot_max"], axes=[1], keepdims=0),
        helper.make_node("Add", ["slot_max", "pfn.bias_bn_folded"], ["normed"]),
        helper.make_node("Relu", ["normed"], [features.name]),
    ]
    graph = helper.make_graph(nodes, "lidar_pfn_lean", [pillars], [features], [
        numpy_helper.from_array(folded_w, "pfn.weight_bn_folded"),
        numpy_helper.from_array(folded_b, "pfn.bias_bn_folded"),
    ])
    return _finish(graph, traced)


def _attention_constants(traced: onnx.ModelProto) -> tuple[float, float]:
    """(score scale, masked score) of the traced attention: the Mul after the first MatMul and the fill of Where."""
    consts = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in traced.graph.node if n.op_type == "Constant"}
    by_output = {n.output[0]: n for n in traced.graph.node}
    scale = masked = None
    for n in traced.graph.node:
        if n.op_type == "Mul" and by_output.get(n.input[0], None) is not None and by_output[n.input[0]].op_type == "MatMul":
            scale = float(consts[n.input[1]])
        if n.op_type == "ConstantOfShape":
            masked = float(numpy_helper.to_array(n.attribute[0].t).reshape(-1)[0])
    if scale is None or masked is None or len([n for n in traced.graph.node if n.op_type == "Softmax"]) != 1:
        raise SystemExit("export_lean: fusion_attention is not the traced per-cell dot-product attention graph")
    return scale, masked


def lean_attention(traced: onnx.ModelProto) -> onnx.ModelProto:
    """fusion_attention: the ego row attends over the K agents of its cell, element-wise on [K, C, H, W]."""
    scale, masked = _attention_constants(traced)
    (aligned, mask), (fused,) = _io(traced)
    f32 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.float32), name)  # noqa: E731
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, dtype=np.int64), name)  # noqa: E731
    nodes = [
        helper.make_node("Slice", [aligned.name, "zero", "one", "zero"], ["ego"]),  # [1, C, H, W]: the query
        helper.make_node("Mul", [aligned.name, "ego"], ["products"]),  # [K, C, H, W]
        helper.make_node("ReduceSum", ["products", "one"], ["dots"], keepdims=1),  # [K, 1, H, W]
        helper.make_node("Mul", ["dots", "scale"], ["scores"]),
        helper.make_node("Greater", [mask.name, "zero_f"], ["covered"]),
        helper.make_node("Where", ["covered", "scores", "masked"], ["masked_scores"]),
        helper.make_node("Softmax", ["masked_scores"], ["weights"], axis=0),  # over the agents of each cell
        helper.make_node("Mul", [aligned.name, "weights"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "zero"], [fused.name], keepdims=1),  # [1, C, H, W]
    ]
    graph = helper.make_graph(nodes, "fusion_attention_lean", [aligned, mask], [fused], [
        i64("zero", [0]), i64("one", [1]), f32("scale", scale), f32("zero_f", 0.0), f32("masked", masked),
    ])
    return _finish(graph, traced)


LEAN = {"lidar_pfn": lean_pfn, "fusion_attention": lean_attention}


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def rewrite(path: str, role: str) -> bool:
    """Rewrites one file in place; False when it was lean already."""
    traced = onnx.load(path)
    if _is_lean(traced):
        return False
    onnx.save(LEAN[role](traced), path)
    return True


def update_manifest(manifest_path: str, models_dir: str, roles: list[str]) -> None:
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    for role in roles:
        entry = manifest["models"][role]
        path = os.path.join(models_dir, entry["file"])
        entry["sha256"] = sha256(path)
        card = manifest.get("modelCard", {}).get(role)
        if card is not None:
            card["bytes"] = os.path.getsize(path)
            card["graph"] = "lean (tools/train/export_lean.py): " + ("BatchNorm folded into the matmul; MatMul, "
                            "ReduceMax, then Add, Relu on [P, 64]" if role == "lidar_pfn" else "element-wise scores, softmax over agents, "
                            "weighted sum on [K, C, H, W]; no transposes")
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True, help="folder with lidar_pfn.onnx, fusion_attention.onnx and manifest.json")
    p.add_argument("--manifest", help="manifest to update (default MODELS/manifest.json)")
    p.add_argument("--check", action="store_true", help="only report whether the files are lean")
    args = p.parse_args(argv)
    manifest = args.manifest or os.path.join(args.models, "manifest.json")
    changed = []
    for role in LEAN:
        path = os.path.join(args.models, f"{role}.onnx")
        if args.check:
            print(f"{path}: {'lean' if _is_lean(onnx.load(path)) else 'traced'}")
            continue
        if rewrite(path, role):
            changed.append(role)
            print(f"{path}: rewritten lean, sha256 {sha256(path)[:12]}…")
        else:
            print(f"{path}: lean already")
    if changed and os.path.exists(manifest):
        update_manifest(manifest, args.models, changed)
        print(f"{manifest}: sha256 updated for {', '.join(changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
