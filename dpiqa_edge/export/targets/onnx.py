"""ONNX target: ``torch.onnx.export`` -> ``onnx.checker`` -> metadata_props -> (fp16 | int8).

Exporter choice (torch 2.14): the torch.export-based ("dynamo") exporter needs ``onnxscript``, which
is not a dependency here; the TorchScript exporter (``dynamo=False``) handles every student (traced
CNNs, no control flow) and is what this module uses, with its deprecation warning silenced.
fp16 converts the checked fp32 graph with onnxruntime's bundled ``float16`` converter, keeping float32
inputs and outputs (``keep_io_types``) so callers feed the same arrays; ops it blocks (Resize, ...)
stay float32. int8 hands the fp32 file to ``onnx_int8.quantize_onnx`` (ORT QDQ, beside this module) and
profiles what ORT runs with ``ort_kernels``.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

from ...errors import ExportError
from ...runtime.artifact import encode_metadata
from ...runtime.formats import FORMATS
from .base import ExportSettings, Int8Settings, Target, register_target
from .onnx_int8 import FLOAT_FIRST_CONVS_LADDER, RUNTIME_OPTIONS, quantize_onnx
from .ort_kernels import profile_kernels


def export_onnx_fp32(model, settings: ExportSettings, path: Path, metadata: dict[str, str]) -> Path:
    """Trace ``model`` (wrapped for the input form) to a checked fp32 ONNX file carrying ``metadata``.
    An ONNX-only import (``student.onnx_student``) hands over its own graph instead of a trace."""
    import onnx

    if getattr(model, "onnx_only", False):
        proto = model.export_proto(settings.raw_input, settings.dynamic_batch)
        onnx.checker.check_model(proto, full_check=True)
        set_metadata(proto, metadata)
        onnx.save(proto, str(path))
        return path
    import torch

    from ..graph import ExportWrapper, example_input

    # 1. Export the wrapped model (named input/outputs, batch axis symbolic only when asked).
    wrapper = ExportWrapper(model, settings.raw_input).eval()
    example = example_input(settings.input_size, settings.raw_input)
    axes = {n: {0: "batch"} for n in ("image", "score", "quality_map")} if settings.dynamic_batch else None
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapper, (example,), str(path), dynamo=False, opset_version=settings.opset,
                              input_names=["image"], output_names=["score", "quality_map"], dynamic_axes=axes,
                              do_constant_folding=True)
    except Exception as exc:
        raise ExportError(f"{path.name}: torch.onnx.export failed ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    # 2. Check the graph and embed the metadata.
    proto = onnx.load(str(path))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{path.name}: onnx.checker rejected the exported graph ({str(exc).splitlines()[0]})") from None
    set_metadata(proto, metadata)
    onnx.save(proto, str(path))
    return path


def set_metadata(proto, metadata: dict[str, str]) -> None:
    """Replace an ONNX model's metadata_props with ``metadata`` (all strings)."""
    del proto.metadata_props[:]
    for key, value in metadata.items():
        proto.metadata_props.add(key=key, value=value)
    proto.producer_name = "dpiqa-edge"
    proto.doc_string = "DP-IQA student: image -> score (0-100, higher = better), quality_map"


def toposort(graph) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs (Kahn's order,
    stable otherwise); ONNX requires it and some converters append nodes out of order."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ExportError("onnx: graph has a cycle or an input produced by no node")
        for n in ready:
            available.update(n.output)
        ordered += ready
        ready_ids = {id(n) for n in ready}
        pending = [n for n in pending if id(n) not in ready_ids]
    copies = [type(n)() for n in ordered]
    for c, n in zip(copies, ordered):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def convert_onnx(model, settings: ExportSettings, dest_dir: Path, metadata: dict[str, str], calib=None,
                 int8: Int8Settings | None = None) -> tuple[Path, dict[str, Any]]:
    """Write ``dest_dir/model.onnx`` at ``settings.precision``; return (path, info for export.json)."""
    import onnx

    dest = Path(dest_dir) / FORMATS["onnx"].artifact
    info: dict[str, Any] = {"exporter": "torch.onnx.export (TorchScript, dynamo=False)", "opset": settings.opset}
    if settings.precision == "fp32":
        export_onnx_fp32(model, settings, dest, metadata)
    elif settings.precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        export_onnx_fp32(model, settings, dest, metadata)
        proto = convert_float_to_float16(onnx.load(str(dest)), keep_io_types=True)
        toposort(proto.graph)  # the converter appends its input casts after their consumers
        onnx.checker.check_model(proto)
        set_metadata(proto, metadata)
        onnx.save(proto, str(dest))
        info["fp16"] = "onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)"
    elif settings.precision == "int8":
        with tempfile.TemporaryDirectory(prefix="dpiqa-onnx-fp32-") as tmp:
            fp32 = export_onnx_fp32(model, settings, Path(tmp) / "model.onnx", {**metadata, "precision": "fp32"})
            info["quantization"] = quantize_onnx(fp32, dest, calib, **(int8 or Int8Settings()).options)
        # quantize_onnx carries the metadata; make sure it is all ours, with the session options the
        # gate and the bench run it with (the shared loader applies them)
        info["runtime_options"] = dict(RUNTIME_OPTIONS)
        # the weight range (7-bit unless asked otherwise: quantize_onnx's reduce_range) travels in the file,
        # so whoever runs it on a CPU without VNNI can see it was made not to saturate there
        info["int8_weights"] = info["quantization"]["weight_range"]
        proto = onnx.load(str(dest))
        set_metadata(proto, {**metadata, **encode_metadata({"runtime_options": info["runtime_options"],
                                                            "int8_weights": info["int8_weights"]})})
        onnx.save(proto, str(dest))
        # what ORT really runs (kernel counts per run, from its profiler): a QDQ graph ORT could not
        # fuse runs float kernels between Q/DQ pairs and is slower than fp32 (ort_kernels)
        info["ort_kernels"] = profile_kernels(dest, runs=5, threads=1)
    else:  # guarded by check_options
        raise ExportError(f"onnx: unknown precision {settings.precision!r}")
    return dest, info


def onnx_int8_rungs(int8: Int8Settings) -> list[dict[str, Any]]:
    """INT8 settings to try in order, fastest first (``export_model`` keeps the first whose gate passes).

    ``float_first_convs`` 3, then 6 (``onnx_int8.FLOAT_FIRST_CONVS_LADDER``): the first
    convolutions, at full resolution, are where quality models read fine texture; kept float on x86 they
    are also faster than ORT's int8 kernels there, and a pruned Lite0 ran 1.6-1.8x its fp32 speed with
    3 kept float against 1.4-1.6x with 6. The export keeps the first rung whose accuracy gate passes (or
    the first when no labelled held-out images judge it); an explicit ``float_first_convs`` is used as is.
    """
    if "float_first_convs" in int8.options:
        return [{}]
    return [{"float_first_convs": n} for n in FLOAT_FIRST_CONVS_LADDER]


@register_target
class OnnxTarget(Target):
    """``--target onnx``: a checked ONNX graph run by onnxruntime; int8 = ORT static QDQ (``onnx_int8``)."""

    name = "onnx"
    own_options = ("raw_input", "dynamic_batch", "opset")
    requires = ("onnx",)
    requires_int8 = ("sympy",)
    onnx_source = True

    def convert(self, model, settings: ExportSettings, dest_dir: Path, metadata: dict[str, str], calib=None,
                int8: Int8Settings | None = None) -> tuple[Path, dict[str, Any]]:
        return convert_onnx(model, settings, dest_dir, metadata, calib=calib, int8=int8)

    def int8_rungs(self, int8: Int8Settings) -> list[dict[str, Any]]:
        return onnx_int8_rungs(int8)
