#!/usr/bin/python3
"""Post-training int8 quantisation (QDQ format) of lidar_backbone.onnx and detection_head.onnx for ONNX Runtime's
CPU provider, calibrated on real BEV canvases from the training shards. No retraining, no onnxruntime package:
onnx + numpy to rewrite the graph, torch to run the float graphs for calibration.

  /usr/bin/python3 tools/train/quantize.py --models models --shards /tmp/v2x/shards-default/train \
      --samples 36 --percentile 99.999 --install  # writes *_int8.onnx, adds models.<role>.int8 to manifest.json
                                                  # (the backbone's with its input's `canvas` quantisation)

What the rewritten graph looks like, and why (ORT's QDQ rules, onnxruntime/core/optimizer/qdq_transformer):
  - Every Conv gets DequantizeLinear on all three inputs and a QuantizeLinear on its output, the node group ORT's
    CPU provider fuses into one QLinearConv (a Conv whose bias is float, or whose output is not quantized, stays a
    float Conv between DQ nodes and gains nothing).
  - Weights: int8, symmetric, per output channel (axis 0, zero point 0, range ±127). Bias: int32 with scale
    x_scale * w_scale[c], zero point 0, as QLinearConv expects.
  - Activations: per tensor. Every activation here is a ReLU output (or the ReLU'd PFN canvas, or a Concat of two),
    so the default is uint8 with zero point 0 and scale = percentile / 255: all 256 levels cover [0, range] and the
    ReLU is exact (Q with zero point = the type's minimum clamps negatives to 0), so the ReLU node is dropped, which
    is what ORT's ReluQuantFusion would do. u8 activations with s8 weights is the U8S8 kernel; on AVX2 without VNNI
    its VPMADDUBSW can saturate (ORT's docs), on this AVX512-VNNI CPU it accumulates in int32. `--activations s8`
    writes int8 with zero point -128 instead (S8S8, ORT's default for QDQ), for comparison.
  - The 1x1 output convolutions of the head (cls_logits, box_deltas) stay float: they are 3 % of the head's
    arithmetic and their outputs are the scores and box offsets themselves.
  - ORT's CPU provider has no quantised ConvTranspose. The backbone's upsampling (ConvTranspose 2x2 stride 2 +
    BatchNorm + ReLU) is first rewritten into the same function as a 1x1 Conv + ReLU + DepthToSpace
    (upsampling_as_conv); the Conv is then quantised like the others, the DepthToSpace shuffles the quantised bytes,
    and the Concat after it becomes ORT's QLinearConcat. Measured on the backbone: 30.1 -> 26.6 ms (median of 60
    interleaved runs), the float upsampling having cost 4.0 ms plus its layout transposes.
Calibration: activation ranges are the given percentile of each tensor over all calibration canvases (exact: the
top (1 - p) share of values is kept across canvases), not the raw max, so a few extreme cells do not stretch the
scale. Canvases are the ego agent's of evenly spaced training samples: pillars from the shards (pillarised by the
TypeScript Pillarizer) -> lidar_pfn.onnx -> scatter, exactly the runtime's path. The head is calibrated on the
float backbone's outputs of the same canvases.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

QDQ_MARK = ("v2xfuse.quantization", "qdq-int8-1")


# ---- float reference: a small torch interpreter of the ops these graphs use ----------------------------------

def run_float(model: onnx.ModelProto, feeds: dict[str, np.ndarray], keep: set[str] | None = None) -> dict[str, np.ndarray]:
    """Runs the float graph with torch (fp32, one op at a time); returns graph outputs and the tensors in `keep`."""
    import torch
    import torch.nn.functional as F

    env = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in model.graph.initializer}
    env.update({k: torch.from_numpy(v) for k, v in feeds.items()})
    want = {o.name for o in model.graph.output} | (keep or set())
    out: dict[str, np.ndarray] = {}
    for node in model.graph.node:
        a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
        x = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            assert pads[:2] == pads[2:], "asymmetric padding"
            y = F.conv2d(x[0], x[1], x[2] if len(x) > 2 else None, stride=a.get("strides", [1, 1]),
                         padding=pads[:2], dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
        elif op == "ConvTranspose":
            assert a.get("pads", [0, 0, 0, 0]) == [0, 0, 0, 0] and a.get("group", 1) == 1
            y = F.conv_transpose2d(x[0], x[1], x[2] if len(x) > 2 else None, stride=a.get("strides", [1, 1]),
                                   dilation=a.get("dilations", [1, 1]))
        elif op == "BatchNormalization":
            y = F.batch_norm(x[0], x[3], x[4], x[1], x[2], training=False, eps=a.get("epsilon", 1e-5))
        elif op == "Relu":
            y = torch.relu(x[0])
        elif op == "DepthToSpace":
            assert a.get("mode", b"DCR") in (b"CRD", "CRD"), "DepthToSpace: only CRD (pixel shuffle) mode"
            y = F.pixel_shuffle(x[0], a["blocksize"])
        elif op == "Concat":
            y = torch.cat(x, dim=a["axis"])
        elif op == "MatMul":
            y = torch.matmul(x[0], x[1])
        elif op == "Add":
            y = x[0] + x[1]
        elif op == "ReduceMax":
            y = torch.amax(x[0], dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1)))
        else:
            raise SystemExit(f"quantize.py: no float reference for op {op} ({node.name or node.output[0]})")
        env[node.output[0]] = y
        if node.output[0] in want:
            out[node.output[0]] = y.numpy()
    return out


# ---- calibration ----------------------------------------------------------------------------------------------

class TopK:
    """The exact p-th percentile of every value seen, keeping only the top (1 - p) share (and the minimum)."""

    def __init__(self, percentile: float):
        self.p = percentile
        self.count = 0
        self.top = np.zeros(0, np.float32)
        self.min = math.inf
        self.max = -math.inf

    def add(self, values: np.ndarray) -> None:
        v = values.ravel()
        self.count += v.size
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))
        k = self.keep()
        part = np.partition(v, v.size - k)[v.size - k:] if k < v.size else v
        merged = np.concatenate([self.top, part])
        self.top = np.partition(merged, merged.size - k)[merged.size - k:] if merged.size > k else merged

    def keep(self) -> int:
        return max(1, int(math.ceil(self.count * (1 - self.p / 100))) + 1)

    def value(self) -> float:
        # The value with (1 - p) of all values above it: the smallest of the kept top when it holds exactly that many.
        k = self.keep()
        return float(np.sort(self.top)[-k]) if self.top.size >= k else float(self.top.min())


def calibration_canvases(pfn: onnx.ModelProto, shard_dirs: list[str], samples: int, grid_hw: tuple[int, int]):
    from data import ShardSet

    shards = ShardSet(shard_dirs)
    n = len(shards)
    picks = np.unique(np.linspace(0, n - 1, num=min(samples, n)).round().astype(int))
    H, W = grid_hw
    for i in picks:
        sample = shards.read(int(i))
        ego = sample.agents[0]
        feats = run_float(pfn, {"pillars": ego.padded()})["pillar_features"]
        canvas = np.zeros((1, feats.shape[1], H, W), np.float32)
        canvas[0][:, ego.coords[:, 0], ego.coords[:, 1]] = feats.T
        yield sample.key, canvas


# ---- upsampling as a convolution -------------------------------------------------------------------------------

def upsampling_as_conv(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrites each ConvTranspose whose kernel equals its stride (k x k, stride k, no padding, group 1), with the
    BatchNormalization and ReLU that follow it, into a 1x1 Conv to C_out * k^2 channels (BatchNorm folded in),
    ReLU, and DepthToSpace(k, CRD): the same function in exact arithmetic, since each output pixel of such a
    ConvTranspose reads exactly one input pixel. out[c, k*y + i, k*x + j] = sum_m in[m, y, x] * W[m, c, i, j] + b[c]
    is the 1x1 Conv's channel c*k^2 + i*k + j, which pixel shuffle (CRD) puts at (c, k*y + i, k*x + j); the ReLU
    moves ahead of the shuffle (a permutation). Why: ONNX Runtime's CPU provider has no quantised ConvTranspose, so the
    backbone's upsampling ran in float between a DequantizeLinear and layout transposes (4.0 ms of the int8 backbone's
    30 ms, the float Conv alone); as a Conv it is one more QLinearConv."""
    g = model.graph
    init = {i.name: i for i in g.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    outputs = {o.name for o in g.output}

    def sole_user(tensor: str, op: str) -> onnx.NodeProto | None:
        users = consumers.get(tensor, [])
        return users[0] if len(users) == 1 and users[0].op_type == op and tensor not in outputs else None

    replaced: dict[int, list[onnx.NodeProto]] = {}  # id(first node of a chain) -> its replacement
    dropped: set[int] = set()
    new_init = list(g.initializer)
    for n in g.node:
        if n.op_type != "ConvTranspose":
            continue
        a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
        w = numpy_helper.to_array(init[n.input[1]]).astype(np.float64)  # [C_in, C_out, k, k]
        k = w.shape[2]
        if (w.shape[3] != k or list(a.get("strides", [1, 1])) != [k, k] or any(a.get("pads", [0, 0, 0, 0]))
                or a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1]))
                or a.get("output_padding") or a.get("output_shape")):
            continue
        c_in, c_out = w.shape[0], w.shape[1]
        b = numpy_helper.to_array(init[n.input[2]]).astype(np.float64) if len(n.input) > 2 and n.input[2] else np.zeros(c_out)
        chain, tail = [n], n.output[0]
        bn = sole_user(tail, "BatchNormalization")
        if bn is not None:
            gamma, beta, mean, var = (numpy_helper.to_array(init[t]).astype(np.float64) for t in bn.input[1:5])
            eps = next((helper.get_attribute_value(x) for x in bn.attribute if x.name == "epsilon"), 1e-5)
            s = gamma / np.sqrt(var + eps)
            w = w * s[None, :, None, None]
            b = (b - mean) * s + beta
            chain.append(bn)
            tail = bn.output[0]
        relu = sole_user(tail, "Relu")
        if relu is not None:
            chain.append(relu)
            tail = relu.output[0]
        # Conv weight [C_out * k^2, C_in, 1, 1]: row c*k^2 + i*k + j is W[:, c, i, j].
        w1 = w.transpose(1, 2, 3, 0).reshape(c_out * k * k, c_in, 1, 1).astype(np.float32)
        b1 = np.repeat(b, k * k).astype(np.float32)
        base = (n.name.strip("/").replace("/", "_") or n.output[0]) + "_as_conv"
        new_init += [_const(f"{base}_w", w1), _const(f"{base}_b", b1)]
        conv_out = f"{base}_out"
        nodes = [helper.make_node("Conv", [n.input[0], f"{base}_w", f"{base}_b"], [conv_out], name=f"{base}", kernel_shape=[1, 1])]
        last = conv_out
        if relu is not None:
            nodes.append(helper.make_node("Relu", [conv_out], [f"{base}_relu"], name=f"{base}_relu"))
            last = f"{base}_relu"
        nodes.append(helper.make_node("DepthToSpace", [last], [tail], name=f"{base}_depth_to_space", blocksize=k, mode="CRD"))
        replaced[id(n)] = nodes
        dropped.update(id(c) for c in chain[1:])
    if not replaced:
        return model
    new_nodes: list[onnx.NodeProto] = []
    for n in g.node:
        if id(n) in replaced:
            new_nodes += replaced[id(n)]
        elif id(n) not in dropped:
            new_nodes.append(n)
    used = {i for n in new_nodes for i in n.input}
    graph = helper.make_graph(new_nodes, g.name, list(g.input), list(g.output), [i for i in new_init if i.name in used])
    out = helper.make_model(graph, opset_imports=list(model.opset_import), producer_name=model.producer_name)
    out.ir_version = model.ir_version
    helper.set_model_props(out, {p.key: p.value for p in model.metadata_props})
    onnx.checker.check_model(out)
    return out


# ---- the QDQ rewrite ------------------------------------------------------------------------------------------

def _const(name: str, array: np.ndarray) -> TensorProto:
    return numpy_helper.from_array(array, name)


def quantize_graph(model: onnx.ModelProto, ranges: dict[str, tuple[float, float]], activations: str,
                   float_convs: set[str]) -> onnx.ModelProto:
    """QDQ-rewrites every Conv not producing one of `float_convs`' outputs; `ranges` holds each activation's range."""
    g = model.graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    qtype = np.uint8 if activations == "u8" else np.int8
    zp_value = 0 if activations == "u8" else -128

    new_nodes: list[onnx.NodeProto] = []
    new_init: list[TensorProto] = [i for i in g.initializer]
    act_params: dict[str, tuple[str, str, float]] = {}  # tensor -> (scale name, zp name, scale)
    dequantized: dict[str, str] = {}  # float tensor -> its DQ'd copy

    def act_scale(tensor: str) -> tuple[str, str, float]:
        if tensor not in act_params:
            lo, hi = ranges[tensor]
            if lo < -1e-6:
                raise SystemExit(f"quantize.py: activation {tensor} has negative values ({lo}); only ReLU outputs are handled")
            scale = max(hi, 1e-8) / 255.0
            s, z = f"{tensor}_scale", f"{tensor}_zero_point"
            new_init.append(_const(s, np.array(scale, np.float32)))
            new_init.append(_const(z, np.array(zp_value, qtype)))
            act_params[tensor] = (s, z, scale)
        return act_params[tensor]

    def qdq(tensor: str, source: str | None = None) -> str:
        """Q(source or tensor) -> DQ with `tensor`'s parameters; returns the DQ output's name."""
        if tensor in dequantized:
            return dequantized[tensor]
        s, z, _ = act_scale(tensor)
        q, dq = f"{tensor}_quantized", f"{tensor}_dequantized"
        new_nodes.append(helper.make_node("QuantizeLinear", [source or tensor, s, z], [q], name=f"{tensor}_QuantizeLinear"))
        new_nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [dq], name=f"{tensor}_DequantizeLinear"))
        dequantized[tensor] = dq
        return dq

    # ReLUs whose input is a quantized Conv's output only: Q with zero point at the type's minimum does their clamp.
    relu_of: dict[str, onnx.NodeProto] = {}
    for n in g.node:
        if n.op_type == "Conv" and n.output[0] not in float_convs:
            users = consumers.get(n.output[0], [])
            if len(users) == 1 and users[0].op_type == "Relu":
                relu_of[n.output[0]] = users[0]
    dropped_relus = {id(r) for r in relu_of.values()}
    renamed: dict[str, str] = {}

    for n in g.node:
        if id(n) in dropped_relus:
            continue
        inputs = [renamed.get(i, i) for i in n.input]
        if n.op_type != "Conv" or n.output[0] in float_convs:
            new_nodes.append(helper.make_node(n.op_type, inputs, list(n.output), name=n.name, doc_string=n.doc_string))
            new_nodes[-1].attribute.extend(n.attribute)
            continue
        x = n.input[0]
        x_dq = qdq(x)
        _, _, x_scale = act_scale(x)
        w = init[n.input[1]].astype(np.float32)
        b = init[n.input[2]].astype(np.float32) if len(n.input) > 2 and n.input[2] else np.zeros(w.shape[0], np.float32)
        w_scale = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(axis=1), 1e-12) / 127.0
        w_q = np.clip(np.round(w / w_scale[:, None, None, None]), -127, 127).astype(np.int8)
        b_scale = (x_scale * w_scale).astype(np.float32)
        b_q = np.round(b / b_scale).astype(np.int64)
        if np.abs(b_q).max(initial=0) >= 2**31:
            raise SystemExit(f"quantize.py: bias of {n.name} overflows int32")
        base = n.name.strip("/").replace("/", "_") or n.output[0]
        names = {k: f"{base}_{k}" for k in ("w_q", "w_scale", "w_zp", "b_q", "b_scale", "b_zp", "w_dq", "b_dq")}
        new_init += [
            _const(names["w_q"], w_q), _const(names["w_scale"], w_scale.astype(np.float32)),
            _const(names["w_zp"], np.zeros(w.shape[0], np.int8)),
            _const(names["b_q"], b_q.astype(np.int32)), _const(names["b_scale"], b_scale),
            _const(names["b_zp"], np.zeros(w.shape[0], np.int32)),
        ]
        new_nodes.append(helper.make_node("DequantizeLinear", [names["w_q"], names["w_scale"], names["w_zp"]], [names["w_dq"]], axis=0, name=f"{base}_w_DequantizeLinear"))
        new_nodes.append(helper.make_node("DequantizeLinear", [names["b_q"], names["b_scale"], names["b_zp"]], [names["b_dq"]], axis=0, name=f"{base}_b_DequantizeLinear"))
        conv = helper.make_node("Conv", [x_dq, names["w_dq"], names["b_dq"]], [n.output[0]], name=n.name)
        conv.attribute.extend(n.attribute)
        new_nodes.append(conv)
        relu = relu_of.get(n.output[0])
        if relu is not None:
            # The ReLU's output keeps its name for the float graph's other users; Q reads the Conv output directly.
            y = relu.output[0]
            dq = qdq(y, source=n.output[0])
            renamed[y] = dq
        else:
            renamed[n.output[0]] = qdq(n.output[0])

    # Graph outputs that were dropped ReLUs' outputs: give them back their names through an Identity.
    outputs = {o.name for o in g.output}
    for name, dq in list(renamed.items()):
        if name in outputs:
            new_nodes.append(helper.make_node("Identity", [dq], [name], name=f"{name}_output"))

    # A DepthToSpace (a permutation) of a dequantized tensor moves ahead of its DequantizeLinear: it then shuffles
    # a quarter of the bytes, and ONNX Runtime's float DepthToSpace took 3.1 ms on the backbone's upsampling.
    producer = {o: nd for nd in new_nodes for o in nd.output}
    shuffled_nodes: dict[int, list[onnx.NodeProto]] = {}
    for nd in new_nodes:
        dq = producer.get(nd.input[0]) if nd.op_type == "DepthToSpace" else None
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 3:
            continue
        # Only a per-tensor DequantizeLinear commutes with a shuffle of channels into space.
        if any(a.name == "axis" for a in dq.attribute) or any(i.name == dq.input[1] and len(i.dims) > 0 for i in new_init):
            continue
        # Not "<name>_quantized": that is what qdq() calls the QuantizeLinear of <name> should a Conv read it.
        shuffled = f"{nd.output[0]}_shuffled_quantized"
        d2s = helper.make_node("DepthToSpace", [dq.input[0]], [shuffled], name=nd.name)
        d2s.attribute.extend(nd.attribute)
        shuffled_nodes[id(nd)] = [d2s, helper.make_node("DequantizeLinear", [shuffled, dq.input[1], dq.input[2]], [nd.output[0]],
                                                        name=f"{nd.output[0]}_DequantizeLinear")]
    new_nodes = [m for nd in new_nodes for m in shuffled_nodes.get(id(nd), [nd])]
    # A DequantizeLinear the shuffle no longer reads, read by nothing else (ORT still ran it: 0.3 ms).
    read = {i for nd in new_nodes for i in nd.input} | {o.name for o in g.output}
    new_nodes = [nd for nd in new_nodes if nd.op_type != "DequantizeLinear" or nd.output[0] in read]

    used_init = {i for n in new_nodes for i in n.input}
    graph = helper.make_graph(new_nodes, g.name, list(g.input), list(g.output),
                              [i for i in new_init if i.name in used_init])
    out = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="v2xfuse quantize")
    out.ir_version = model.ir_version
    props = {p.key: p.value for p in model.metadata_props}
    props[QDQ_MARK[0]] = QDQ_MARK[1]
    helper.set_model_props(out, props)
    onnx.checker.check_model(out)
    return out


def quantized_canvas_input(model: onnx.ModelProto, name: str = "bev_pillars") -> tuple[onnx.ModelProto, float]:
    """The backbone taking its canvas already quantised, uint8 [1, H, W, C] (NHWC): the graph input's
    QuantizeLinear becomes a Transpose to NCHW, which ORT's layout transformer cancels against the NHWC transpose it
    puts in front of the first QLinearConv. The caller (the LiDAR encoder) then scatters the pillar features
    straight into a 4 MB byte canvas, q = round-half-even(x / scale) clamped to 0..255 as QuantizeLinear computes
    it, instead of zero-filling a 16 MB float one that ORT then quantises and transposes (1.2 + 1.9 ms in ORT's
    profile, plus the memset). Returns the model and the input scale, which the manifest carries."""
    g = model.graph
    (inp,) = [i for i in g.input if i.name == name]
    q = [n for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == name]
    if len(q) != 1 or any(name in n.input for n in g.node if n is not q[0]):
        raise SystemExit(f"quantize.py: {name} must feed exactly one QuantizeLinear")
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    scale, zp = init[q[0].input[1]], init[q[0].input[2]]
    if scale.size != 1 or zp.dtype != np.uint8 or int(zp) != 0:
        raise SystemExit(f"quantize.py: {name} must be quantised per tensor to uint8 with zero point 0")
    dims = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    if len(dims) != 4 or not all(dims):
        raise SystemExit(f"quantize.py: {name} must have a fixed 4-d shape, has {dims}")
    n, c, h, w = dims
    nodes = [helper.make_node("Transpose", [name], list(q[0].output), name=f"{name}_to_nchw", perm=[0, 3, 1, 2])
             if node is q[0] else node for node in g.node]
    inputs = [helper.make_tensor_value_info(name, TensorProto.UINT8, [n, h, w, c]) if i.name == name else i for i in g.input]
    used = {i for node in nodes for i in node.input}
    graph = helper.make_graph(nodes, g.name, inputs, list(g.output), [i for i in g.initializer if i.name in used])
    out = helper.make_model(graph, opset_imports=list(model.opset_import), producer_name=model.producer_name)
    out.ir_version = model.ir_version
    helper.set_model_props(out, {p.key: p.value for p in model.metadata_props})
    onnx.checker.check_model(out)
    return out, float(scale.astype(np.float32))


def conv_outputs_to_keep_float(model: onnx.ModelProto) -> set[str]:
    """Conv outputs that are graph outputs (the head's cls_logits / box_deltas): kept float."""
    outputs = {o.name for o in model.graph.output}
    return {n.output[0] for n in model.graph.node if n.op_type == "Conv" and n.output[0] in outputs}


def conv_inputs_and_relus(model: onnx.ModelProto, float_convs: set[str]) -> set[str]:
    """Tensors that get activation ranges: inputs of quantized Convs and the ReLU (or raw) outputs of those Convs."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    tensors = set()
    for n in model.graph.node:
        if n.op_type == "Conv" and n.output[0] not in float_convs:
            tensors.add(n.input[0])
            users = consumers.get(n.output[0], [])
            tensors.add(users[0].output[0] if len(users) == 1 and users[0].op_type == "Relu" else n.output[0])
    return tensors


def shuffle_ranges_as_their_concat(model: onnx.ModelProto, ranges: dict[str, tuple[float, float]]) -> None:
    """A tensor that reaches a Concat only through a DepthToSpace gets at least the Concat's range. The Concat
    requantises it to its own scale anyway, so a narrower range of its own only clips: the upsampling's output
    (p99.999 3.6, max 11.3) would lose what the float ConvTranspose path kept up to the Concat's 15.7."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for n in model.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    for n in model.graph.node:
        users = consumers.get(n.output[0], []) if n.op_type == "DepthToSpace" else []
        if n.input[0] in ranges and len(users) == 1 and users[0].op_type == "Concat" and users[0].output[0] in ranges:
            lo, hi = ranges[n.input[0]]
            ranges[n.input[0]] = (lo, max(hi, ranges[users[0].output[0]][1]))


def sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="models", help="folder with manifest.json and the float models")
    ap.add_argument("--shards", nargs="+", default=["/tmp/v2x/shards-default/train"], help="training shard folders (calibration)")
    ap.add_argument("--samples", type=int, default=36, help="calibration canvases (ego of evenly spaced samples)")
    ap.add_argument("--percentile", type=float, default=99.999, help="activation range = this percentile of each tensor")
    ap.add_argument("--activations", choices=["u8", "s8"], default="u8")
    ap.add_argument("--canvas", choices=["nhwc-u8", "nchw-float"], default=None,
                    help="the int8 backbone's input: the canvas quantised by the caller (uint8 NHWC, written to the manifest's "
                         "models.lidar_backbone.int8.canvas; the default with --activations u8) or float NCHW as the float "
                         "model's (the default, and the only choice, with --activations s8)")
    ap.add_argument("--roles", nargs="+", default=["lidar_backbone", "detection_head"], choices=["lidar_backbone", "detection_head"])
    ap.add_argument("--out", default=None, help="output folder (default: --models)")
    ap.add_argument("--install", action="store_true", help="add models.<role>.int8 {file, sha256, calibration} to the manifest")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    if args.canvas is None:
        args.canvas = "nhwc-u8" if args.activations == "u8" else "nchw-float"
    if args.canvas == "nhwc-u8" and args.activations != "u8":
        ap.error("--canvas nhwc-u8 needs --activations u8 (the canvas is quantised to uint8 with zero point 0)")

    import torch
    torch.set_num_threads(args.threads)
    out_dir = args.out or args.models
    manifest_path = os.path.join(args.models, "manifest.json")
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    grid = manifest["grid"]
    H = round((grid["yMax"] - grid["yMin"]) / grid["cellSize"])
    W = round((grid["xMax"] - grid["xMin"]) / grid["cellSize"])
    load = lambda role: onnx.load(os.path.join(args.models, manifest["models"][role]["file"]))  # noqa: E731
    pfn, backbone, head = load("lidar_pfn"), load("lidar_backbone"), load("detection_head")
    if any(p.key == QDQ_MARK[0] for p in backbone.metadata_props):
        raise SystemExit("quantize.py: lidar_backbone is already quantized")
    backbone = upsampling_as_conv(backbone)

    float_b, float_h = conv_outputs_to_keep_float(backbone), conv_outputs_to_keep_float(head)
    want_b, want_h = conv_inputs_and_relus(backbone, float_b), conv_inputs_and_relus(head, float_h)
    stats_b = {t: TopK(args.percentile) for t in want_b}
    stats_h = {t: TopK(args.percentile) for t in want_h}
    keys = []
    for key, canvas in calibration_canvases(pfn, args.shards, args.samples, (H, W)):
        keys.append(key)
        got = run_float(backbone, {"bev_pillars": canvas}, want_b)
        got["bev_pillars"] = canvas
        for t in want_b:
            stats_b[t].add(got[t])
        got_h = run_float(head, {"bev": got["bev_features"]}, want_h)
        got_h["bev"] = got["bev_features"]
        for t in want_h:
            stats_h[t].add(got_h[t])
        print(f"calibrated on {key}", file=sys.stderr)

    calibration = {"shards": args.shards, "canvases": len(keys), "percentile": args.percentile,
                   "activations": args.activations, "weights": "s8 symmetric per output channel"}
    for role, model, stats, float_convs in (("lidar_backbone", backbone, stats_b, float_b), ("detection_head", head, stats_h, float_h)):
        if role not in args.roles:
            continue
        ranges = {t: (s.min, s.value()) for t, s in stats.items()}
        shuffle_ranges_as_their_concat(model, ranges)
        for t, s in sorted(stats.items()):
            print(f"{role} {t}: max {s.max:.4g}, p{args.percentile} {s.value():.4g}", file=sys.stderr)
        q = quantize_graph(model, ranges, args.activations, float_convs)
        canvas = None
        if role == "lidar_backbone" and args.canvas == "nhwc-u8":
            q, canvas_scale = quantized_canvas_input(q)
            canvas = {"layout": "NHWC", "type": "uint8", "scale": canvas_scale, "zeroPoint": 0}
        stem = os.path.splitext(manifest["models"][role]["file"])[0]
        file = f"{stem}_int8.onnx" if args.activations == "u8" else f"{stem}_int8_s8.onnx"
        path = os.path.join(out_dir, file)
        onnx.save(q, path)
        digest = sha256(path)
        print(f"wrote {path} ({os.path.getsize(path)} bytes, sha256 {digest})")
        if args.install:
            manifest["models"][role]["int8"] = {"file": file, "sha256": digest, **({"canvas": canvas} if canvas else {}),
                                                "calibration": calibration}
    if args.install:
        with open(manifest_path, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.write("\n")
        print(f"updated {manifest_path}")


if __name__ == "__main__":
    main()
