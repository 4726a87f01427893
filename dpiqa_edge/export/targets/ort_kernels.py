"""Which onnxruntime kernels an artifact really runs, from ORT's own profiler.

A QDQ INT8 graph is only fast when ORT's optimiser turns each ``DequantizeLinear -> op -> QuantizeLinear``
unit into an integer kernel (QLinearConv, QLinearAdd, QGemm ...). When it cannot (a DequantizeLinear
shared by two consumers, int8 activations on an x86 build that only fuses uint8 ones), the op runs as a
float kernel between a dequantize and a quantize, and the "INT8" model is slower than fp32 while its file
is a quarter of the size. Nothing in the file says so; the profiler does. :func:`profile_kernels` runs an
artifact a few times with ``SessionOptions.enable_profiling`` - the session built by the shared loader's
:func:`~dpiqa_edge.runtime.backends.onnx.session_options`, so with the artifact's own recorded options -
and counts the kernels per run and their time, grouped into:

* ``integer``: int8 compute kernels (``QLinear*``, ``QGemm``, ``ConvInteger``, ``MatMulInteger`` ...);
* ``float``: float convolutions and matrix products (``Conv``, ``FusedConv``, ``Gemm``, ``MatMul`` ...),
  the MAC-heavy ops a fully quantized backbone should not have;
* ``convert``: ``QuantizeLinear`` / ``DequantizeLinear`` / ``Cast`` (each one is a float<->int8 boundary);
* ``layout``: ``Transpose`` / ``ReorderInput`` / ``ReorderOutput`` (NCHW <-> NHWC / NCHWc changes);
* ``other``: everything else (element-wise ops, pooling, Resize ...).

No torch: the runtime's numpy + onnxruntime only.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from ...runtime.artifact import resolve_artifact
from ...runtime.backends.onnx import session_options

_INTEGER = {"QGemm", "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QAttention"}
_FLOAT = {"Conv", "FusedConv", "NhwcFusedConv", "ConvTranspose", "Gemm", "FusedGemm", "MatMul", "FusedMatMul"}
_CONVERT = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Cast"}
_LAYOUT = {"Transpose", "ReorderInput", "ReorderOutput"}
GROUPS = ("integer", "float", "convert", "layout", "other")


def kernel_group(op: str) -> str:
    """The group (module doc) of one ORT kernel name."""
    if op.startswith("QLinear") or op in _INTEGER:
        return "integer"
    for name, members in (("float", _FLOAT), ("convert", _CONVERT), ("layout", _LAYOUT)):
        if op in members:
            return name
    return "other"


def profile_kernels(artifact: str | os.PathLike, runs: int = 10, threads: int | None = 1) -> dict[str, Any]:
    """Run ``artifact`` (file or export folder) ``runs`` times at batch 1 under ORT's profiler.

    Returns a JSON-ready dict: ``ops`` (kernel name -> ``{"count", "ms", "group"}`` per run; ``ms`` sums
    each node's median time), ``groups`` (group -> ``{"count", "ms"}``), ``float_convs`` (Conv-type float
    kernels per run), ``integer_share`` (integer kernels' share of the kernel time), ``runs``, ``threads``,
    ``onnxruntime`` (version). Counts do not depend on threads or load; times do (they are this machine's,
    shared with whatever else ran).
    """
    import onnxruntime as ort

    file, meta = resolve_artifact(artifact)
    h, w = meta["preprocessing"]["size"]
    rng = np.random.default_rng(0)  # values do not change which kernels run
    if meta.get("raw_input"):
        x = rng.integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    else:
        x = rng.random((1, 3, h, w), dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="dpiqa-ortprof-") as tmp:
        opts = session_options(ort, meta.get("runtime_options"), threads, str(file))
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "ort")
        sess = ort.InferenceSession(str(file), sess_options=opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        for _ in range(max(1, int(runs))):
            sess.run(None, {name: x})
        events = json.loads(Path(sess.end_profiling()).read_text())
    return summarize_events(events, max(1, int(runs)), threads)


def summarize_events(events: list[dict], runs: int, threads: int | None = None) -> dict[str, Any]:
    """ORT profiler events (the JSON list ``end_profiling`` writes) -> the dict :func:`profile_kernels` returns."""
    import onnxruntime as ort

    per_node: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        if e.get("cat") == "Node" and str(e.get("name", "")).endswith("_kernel_time"):
            per_node[(e["name"][: -len("_kernel_time")], e["args"]["op_name"])].append(float(e["dur"]))
    ops: dict[str, dict[str, Any]] = {}
    for (_node, op), durations in per_node.items():
        entry = ops.setdefault(op, {"count": 0.0, "ms": 0.0, "group": kernel_group(op)})
        entry["count"] += len(durations) / runs
        entry["ms"] += float(np.median(durations)) / 1000.0
    for entry in ops.values():
        entry["count"] = int(round(entry["count"]))
        entry["ms"] = round(entry["ms"], 4)
    groups = {g: {"count": sum(o["count"] for o in ops.values() if o["group"] == g),
                  "ms": round(sum(o["ms"] for o in ops.values() if o["group"] == g), 4)} for g in GROUPS}
    total = sum(g["ms"] for g in groups.values())
    float_convs = sum(o["count"] for k, o in ops.items() if k in ("Conv", "FusedConv", "NhwcFusedConv", "ConvTranspose"))
    return {"ops": dict(sorted(ops.items(), key=lambda kv: -kv[1]["ms"])), "groups": groups,
            "float_convs": float_convs, "integer_share": round(groups["integer"]["ms"] / total, 4) if total else None,
            "runs": runs, "threads": threads, "onnxruntime": ort.__version__}


def kernel_summary(profile: dict[str, Any]) -> str:
    """One line for a model card or a bench cell, e.g.
    ``integer: QLinearConv 50, QLinearAdd 9, QGemm 1 | float: Gemm 1 | convert: 10 | layout: 3 | 95% of kernel time integer``."""
    parts = []
    for group in ("integer", "float"):
        ops = [f"{k} {v['count']}" for k, v in sorted(profile["ops"].items(), key=lambda kv: -kv[1]["count"])
               if v["group"] == group]
        parts.append(f"{group}: " + (", ".join(ops) if ops else "none"))
    for group in ("convert", "layout"):
        parts.append(f"{group}: {profile['groups'][group]['count']}")
    share = profile.get("integer_share")
    if share is not None:
        parts.append(f"{100 * share:.0f}% of kernel time in integer kernels")
    return " | ".join(parts)
