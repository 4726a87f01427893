"""The authors' first release, an ONNX file, read back into weights - or wrapped as it is.

``torch.onnx.export`` of their student folds every BatchNorm into the convolution before it and renames
most weights (``onnx::Conv_1234``), so names cannot be trusted; order and shapes can. :func:`read_units`
walks the graph in execution order and yields one *unit* per weighted layer (a Conv with its BatchNorm if
one follows, a ConvTranspose, a Gemm/MatMul linear); :func:`assign_units` lays them onto the modules of a
torch student in forward order, checking every shape, and un-folds BatchNorm where the export folded it:
the conv keeps the folded weight and its BN becomes ``y = x + b`` (weight 1, bias b, mean 0, var 1 - eps),
the same function. Any surprise (an op of unknown kind holding weights, a count or shape that differs)
is a :class:`MappingError` with the reason: the caller then keeps the ONNX graph itself (:func:`wrap`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import atomic_path


class MappingError(Exception):
    """The ONNX weights do not lay onto the torch student; the message says where and why."""


@dataclass
class Unit:
    """One weighted layer of the ONNX graph, weights as torch would hold them."""

    kind: str  #: conv | conv_transpose | linear
    node: str  #: the ONNX node's name (for messages)
    weight: np.ndarray
    bias: np.ndarray | None = None
    bn: dict[str, np.ndarray | float] | None = field(default=None)  #: scale, bias, mean, var, eps (unfolded export)


def _constants(graph) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # some exporters emit weights as Constant nodes instead of initializers
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(a.t)
    return values


def read_units(proto) -> list[Unit]:
    """Weighted layers of ``proto`` in execution order (see the module docstring)."""
    from onnx import helper

    graph = proto.graph
    const = _constants(graph)
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    attrs = lambda n: {a.name: helper.get_attribute_value(a) for a in n.attribute}  # noqa: E731
    units, used_bn = [], set()
    for node in graph.node:
        op, ins = node.op_type, list(node.input)
        weighted = [i for i in ins[1:] if i in const]
        if op in ("Conv", "ConvTranspose"):
            if ins[1] not in const:
                raise MappingError(f"node {node.name}: {op} weight is computed, not stored")
            unit = Unit("conv" if op == "Conv" else "conv_transpose", node.name, const[ins[1]],
                        const.get(ins[2]) if len(ins) > 2 and ins[2] else None)
            after = consumers.get(node.output[0], [])
            if op == "Conv" and len(after) == 1 and after[0].op_type == "BatchNormalization":
                bn = after[0]
                unit.bn = {"scale": const[bn.input[1]], "bias": const[bn.input[2]], "mean": const[bn.input[3]],
                           "var": const[bn.input[4]], "eps": float(attrs(bn).get("epsilon", 1e-5))}
                used_bn.add(id(bn))
            units.append(unit)
        elif op == "Gemm":
            a = attrs(node)
            if a.get("transA", 0) or float(a.get("alpha", 1.0)) != 1.0 or float(a.get("beta", 1.0)) != 1.0:
                raise MappingError(f"node {node.name}: Gemm with transA/alpha/beta is not a plain linear layer")
            w = const[ins[1]]
            units.append(Unit("linear", node.name, w if a.get("transB", 0) else w.T,
                              const.get(ins[2]) if len(ins) > 2 else None))
        elif op == "MatMul" and len(ins) == 2 and ins[1] in const:
            bias, after = None, consumers.get(node.output[0], [])
            if len(after) == 1 and after[0].op_type == "Add":
                other = [i for i in after[0].input if i != node.output[0]]
                bias = const.get(other[0]) if other else None
            units.append(Unit("linear", node.name, const[ins[1]].T, bias))
        elif op == "BatchNormalization":
            if id(node) not in used_bn:
                raise MappingError(f"node {node.name}: a BatchNormalization that follows no convolution")
        elif weighted and op not in ("Reshape", "Resize", "Concat", "Add", "Mul", "Sub", "Div", "Clip", "Gather",
                                     "Unsqueeze", "Slice", "Expand", "Pad", "Constant", "Squeeze", "Upsample"):
            raise MappingError(f"node {node.name}: op {op} holds weights this importer cannot place")
    return units


def torch_units(model) -> list[tuple[str, object, object | None]]:
    """``(kind, module, following BatchNorm or None)`` for every weighted module of ``model`` in forward
    order (module registration order, which is execution order for the paper student)."""
    from torch import nn

    mods = list(model.modules())
    out = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.ConvTranspose2d):
            out.append(("conv_transpose", m, None))
        elif isinstance(m, nn.Conv2d):
            nxt = mods[i + 1] if i + 1 < len(mods) else None
            out.append(("conv", m, nxt if isinstance(nxt, nn.BatchNorm2d) else None))
        elif isinstance(m, nn.Linear):
            out.append(("linear", m, None))
    return out


def assign_units(model, units: list[Unit]) -> dict:
    """Copy ``units`` onto ``model``'s weighted modules (same count, kinds and shapes, else MappingError);
    returns counts for the import notes."""
    import torch

    targets = torch_units(model)
    if len(targets) != len(units):
        raise MappingError(f"the graph has {len(units)} weighted layers, the paper student {len(targets)}")
    folded = unfolded = 0

    def put(param, value, what):
        value = torch.as_tensor(np.array(value, copy=True), dtype=param.dtype)
        if tuple(param.shape) != tuple(value.shape):
            raise MappingError(f"{what}: shape {tuple(value.shape)} in the graph, {tuple(param.shape)} in the student")
        param.data.copy_(value)

    with torch.no_grad():
        for i, ((kind, mod, bn), unit) in enumerate(zip(targets, units)):
            where = f"layer {i} (ONNX node {unit.node})"
            if kind != unit.kind:
                raise MappingError(f"{where}: a {unit.kind} in the graph where the student has a {kind}")
            put(mod.weight, unit.weight, where)
            if bn is None:
                if mod.bias is None and unit.bias is not None and np.any(unit.bias):
                    raise MappingError(f"{where}: the graph has a bias the student's layer lacks")
                if mod.bias is not None:
                    put(mod.bias, unit.bias if unit.bias is not None else np.zeros(mod.bias.shape, np.float32), where)
                continue
            if unit.bn is not None:  # exported unfolded: copy the BatchNorm, fold any conv bias into its mean
                mean = unit.bn["mean"] - (unit.bias if unit.bias is not None else 0.0)
                put(bn.weight, unit.bn["scale"], where), put(bn.bias, unit.bn["bias"], where)
                put(bn.running_mean, mean, where), put(bn.running_var, unit.bn["var"], where)
                bn.eps = unit.bn["eps"]
                unfolded += 1
            else:  # folded into the conv: BN(y) = y + b exactly when weight 1, mean 0, var + eps == 1
                b = unit.bias if unit.bias is not None else np.zeros(bn.weight.shape, np.float32)
                put(bn.weight, np.ones_like(b), where), put(bn.bias, b, where)
                put(bn.running_mean, np.zeros_like(b), where)
                put(bn.running_var, np.full(b.shape, np.float32(1.0) - np.float32(bn.eps), np.float32), where)
                folded += 1
    return {"layers": len(units), "batchnorm_unfolded_from_conv": folded, "batchnorm_copied": unfolded}


def io_names(proto) -> tuple[str, str, str]:
    """(input, score output, map output) of the authors' graph: the score is the 2-d output, the map 4-d."""
    graph = proto.graph
    inits = {t.name for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 2:
        raise MappingError(f"expected one image input and two outputs (score, feature map), found "
                           f"{len(inputs)} inputs and {len(graph.output)} outputs")
    ranks = {o.name: len(o.type.tensor_type.shape.dim) for o in graph.output}
    maps = [n for n, r in ranks.items() if r == 4]
    scores = [n for n, r in ranks.items() if r in (1, 2)]
    if len(maps) != 1 or len(scores) != 1:
        raise MappingError(f"cannot tell the score from the feature map among outputs {ranks}")
    return inputs[0], scores[0], maps[0]


#: operator domains of a graph ``torch.onnx.export`` writes; anything else is a custom op (a library of
#: someone's kernels onnxruntime would have to load), which the authors' student never uses
STANDARD_DOMAINS = ("", "ai.onnx")


def custom_domains(proto) -> list[str]:
    """Operator domains of ``proto`` (opset imports, nodes, local functions) outside :data:`STANDARD_DOMAINS`."""
    found = {o.domain for o in proto.opset_import} | {n.domain for n in proto.graph.node}
    for fn in proto.functions:
        found |= {fn.domain} | {n.domain for n in fn.node}
    return sorted(d for d in found if d not in STANDARD_DOMAINS)


def check_student_shape(proto) -> None:
    """The authors' student as a graph: one 3-channel image input (N, 3, H, W), a score and a 4-d map out,
    an EfficientNet's convolutions, the head's three linear layers and its transposed convolution.
    A graph that is none of that (any small ONNX) is a :class:`MappingError`."""
    inp, _, _ = io_names(proto)
    dims = input_dims(proto, inp)
    if len(dims) != 4 or dims[1] != 3:
        raise MappingError(f"input {inp!r} has dims {dims}, not an image batch (N, 3, H, W)")
    ops = [n.op_type for n in proto.graph.node]
    convs, linears = ops.count("Conv"), ops.count("Gemm") + ops.count("MatMul")
    if convs < 16 or linears < 3 or "ConvTranspose" not in ops:
        raise MappingError(f"{convs} convolutions, {linears} linear layers, {ops.count('ConvTranspose')} transposed "
                           "convolutions: not an EfficientNet with the authors' head (fc1-fc3 and a ConvTranspose map)")


def input_dims(proto, name: str) -> list[int | str]:
    (inp,) = [i for i in proto.graph.input if i.name == name]
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in inp.type.tensor_type.shape.dim]


def wrap(src: str | Path, dst: Path, scale: float, offset: float) -> dict:
    """Write the authors' graph with this toolkit's interface: input ``image``, outputs ``score`` (N, on 0-100:
    ``clip(scale * raw + offset, 0, 100)``) and ``quality_map``. Returns the input dims."""
    import onnx
    from onnx import TensorProto, helper

    proto = onnx.load(str(src))
    check_student_shape(proto)
    inp, score, fmap = io_names(proto)
    graph = proto.graph
    # their names -> ours; their outputs get private names first (they may already be called "score")
    names = {inp: "image", score: "dpiqa_authors_score", fmap: "dpiqa_authors_map"}
    for node in graph.node:
        node.input[:] = [names.get(i, i) for i in node.input]
        node.output[:] = [names.get(o, o) for o in node.output]
    for i in graph.input:
        i.name = names.get(i.name, i.name)
    score, fmap = names[score], names[fmap]
    consts = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in
              (("dpiqa_scale", scale), ("dpiqa_offset", offset), ("dpiqa_lo", 0.0), ("dpiqa_hi", 100.0))]
    consts.append(helper.make_tensor("dpiqa_flat", TensorProto.INT64, [1], [-1]))
    graph.initializer.extend(consts)
    graph.node.extend([
        helper.make_node("Reshape", [score, "dpiqa_flat"], ["dpiqa_raw"], name="dpiqa_score_flat"),
        helper.make_node("Mul", ["dpiqa_raw", "dpiqa_scale"], ["dpiqa_scaled"], name="dpiqa_score_scale"),
        helper.make_node("Add", ["dpiqa_scaled", "dpiqa_offset"], ["dpiqa_mapped"], name="dpiqa_score_offset"),
        helper.make_node("Clip", ["dpiqa_mapped", "dpiqa_lo", "dpiqa_hi"], ["score"], name="dpiqa_score_clip"),
        helper.make_node("Identity", [fmap], ["quality_map"], name="dpiqa_quality_map"),
    ])
    batch = graph.input[[i.name for i in graph.input].index("image")].type.tensor_type.shape.dim[0]
    map_out = [o for o in graph.output if names.get(o.name) == fmap][0]
    del graph.output[:]
    score_vi = helper.make_tensor_value_info("score", TensorProto.FLOAT, [None])
    score_vi.type.tensor_type.shape.dim[0].CopyFrom(batch)
    map_vi = helper.make_tensor_value_info("quality_map", TensorProto.FLOAT, None)
    map_vi.type.tensor_type.shape.CopyFrom(map_out.type.tensor_type.shape)
    graph.output.extend([score_vi, map_vi])
    onnx.checker.check_model(proto)

    with atomic_path(dst) as tmp:
        onnx.save(proto, str(tmp))
    return {"input_dims": input_dims(proto, "image")}
