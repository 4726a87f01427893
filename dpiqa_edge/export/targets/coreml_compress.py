"""CoreML weight compression with coremltools.optimize.coreml: INT8 weights and palettization, any OS.

Modes (the names used in the targets table, ``export.json`` and the CLI):

* ``int8``: weight-only linear INT8, symmetric, per output channel (``linear_quantize_weights`` with
  ``OpLinearQuantizerConfig(mode="linear_symmetric", granularity="per_channel")``). Activations stay
  float: this is *not* W8A8.
* ``palettize8`` / ``palettize6`` / ``palettize4``: k-means palettization to 256 / 64 / 16 values per
  tensor (``palettize_weights`` with ``OpPalettizerConfig(mode="kmeans", nbits=...)``).
* ``w8a8``: activation calibration (``linear_quantize_activations``) runs the model through
  ``MLModel.predict`` on sample data, so it needs macOS; elsewhere it is refused with a message saying so.

Compression rewrites the stored weights as ``constexpr_*`` ops (iOS16: ``constexpr_affine_dequantize``
/ ``constexpr_lut_to_dense``; iOS18 targets: ``constexpr_blockwise_shift_scale`` / the iOS18
``constexpr_lut_to_dense``) which the Linux emulator (``runtime.backends.coreml_mil``) dequantizes as
the op definitions say, so a compressed model is checked on Linux too ("emulated on Linux").

The last weight layer on the way to each model output (score head, quality-map head) is kept float by
default: those layers are tiny, and quantizing the one layer that sets the output scale costs accuracy
for no size gain. ``info["kept_float"]`` lists what was kept.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ...errors import ConfigError, ExportError
from ...io import atomic_path, dir_size
from ...runtime.backends.coreml_mil import coreml_predict, load_ml_program

MODES = {
    "int8": "weight-only INT8, linear symmetric, per output channel (activations float)",
    "palettize8": "k-means palettization, 8 bit (256-entry LUT per tensor)",
    "palettize6": "k-means palettization, 6 bit (64-entry LUT per tensor)",
    "palettize4": "k-means palettization, 4 bit (16-entry LUT per tensor)",
    "w8a8": "INT8 weights and activations (activation calibration: macOS only)",
}
_WEIGHT_OPS = ("conv", "conv_transpose", "linear", "matmul")


def compress_coreml(
    src_mlpackage: str | os.PathLike,
    dst_mlpackage: str | os.PathLike,
    mode: str = "int8",
    *,
    keep_output_layers: bool = True,
    keep_float_ops: Iterable[str] = (),
    weight_threshold: int = 2048,
    calib: list[dict[str, Any]] | None = None,
    probe: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Compress the weights of a saved ML program; write ``dst_mlpackage``; return what was done.

    Args:
        src_mlpackage: a float ``.mlpackage`` (fp32 or fp16 program).
        dst_mlpackage: where the compressed package goes (written atomically).
        mode: one of ``MODES``.
        keep_output_layers: keep float the last weight op before each program output (the heads).
        keep_float_ops: further op names (conv/linear) whose weights stay float.
        weight_threshold: coremltools' threshold: tensors with fewer elements stay float (2048, its default).
        calib: ``w8a8`` only: sample inputs (list of ``{input_name: array}``) for activation calibration.
        probe: optional inputs; when given, source and result are both evaluated (Apple's predict on
            macOS, the emulator elsewhere) and ``info["probe_max_abs_diff"]`` holds the max |difference|
            per output, labelled with how it ran.

    Returns:
        dict: mode, description, constexpr ops by type, weight ops compressed / kept float (names),
        parameter counts, sizes in bytes (``src_bytes``, ``dst_bytes``, ``size_ratio``), spec version.
    """
    # 1. check the request before any heavy import
    src, dst = Path(src_mlpackage), Path(dst_mlpackage)
    if mode not in MODES:
        raise ConfigError(f"{src}: unknown CoreML compression {mode!r}; valid: {sorted(MODES)}")
    if mode == "w8a8" and sys.platform != "darwin":
        raise ExportError(
            f"{src}: CoreML W8A8 needs macOS: activation calibration (coremltools linear_quantize_activations) "
            "runs the model with MLModel.predict, which exists only on macOS; on this OS use int8 (weight-only) "
            "or palettize8/palettize6/palettize4"
        )
    if mode == "w8a8" and not calib:
        raise ConfigError(f"{src}: w8a8 needs calibration samples (calib=[{{input_name: array}}, ...])")
    try:
        import coremltools as ct
        import coremltools.optimize.coreml as cto
    except ImportError as exc:
        raise ExportError(f"{src}: CoreML compression needs coremltools (pip install dpiqa-edge[coreml]): {exc}") from None

    # 2. which layers stay float
    prog, _ = load_ml_program(src)
    keep = set(keep_float_ops) | (_output_layers(prog) if keep_output_layers else set())
    op_names = {op.name for op in _ops(prog)}
    unknown = sorted(set(keep_float_ops) - op_names)
    if unknown:
        raise ConfigError(f"{src}: keep_float_ops names {unknown} not in the program")

    # 3. compress with coremltools
    if mode == "int8" or mode == "w8a8":
        op_cfg = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", granularity="per_channel",
                                             weight_threshold=weight_threshold)
    else:
        op_cfg = cto.OpPalettizerConfig(mode="kmeans", nbits=int(mode[len("palettize"):]), granularity="per_tensor",
                                        weight_threshold=weight_threshold)
    config = cto.OptimizationConfig(global_config=op_cfg, op_name_configs={name: None for name in keep})
    model = ct.models.MLModel(str(src), skip_model_load=sys.platform != "darwin")
    # errstate: trained nets have dead (all-zero) channels (the bundled Lite0 has four); coremltools then
    # computes 0/0 for their int8 codes. Their scale is 0, so they dequantize to exactly 0 regardless.
    with np.errstate(invalid="ignore", divide="ignore"):
        out = _compress(cto, model, mode, config, keep, calib, src)
    # Keep the artifact's own metadata (preprocessing, score range...) and descriptions.
    out.user_defined_metadata.update(dict(model.user_defined_metadata))
    out.user_defined_metadata["coreml_compression"] = mode
    for attr in ("author", "license", "short_description", "version"):
        if getattr(model, attr, None):
            setattr(out, attr, getattr(model, attr))
    with atomic_path(dst) as tmp:
        out.save(str(tmp))

    # 4. what happened, read back from the saved package
    info = describe_compression(dst)
    info.update(mode=mode, description=MODES[mode], kept_float=sorted(keep), weight_threshold=weight_threshold,
                src_bytes=dir_size(src), dst_bytes=dir_size(dst))
    info["size_ratio"] = round(info["dst_bytes"] / info["src_bytes"], 4)
    if probe is not None:
        info["probe_max_abs_diff"], info["probe_ran"] = _probe(src, dst, probe)
    return info


def _compress(cto, model, mode: str, config, keep: set[str], calib, src: Path):
    try:
        if mode == "w8a8":  # pragma: no cover - macOS only
            act_cfg = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(mode="linear_symmetric"),
                                             op_name_configs={name: None for name in keep})
            model = cto.linear_quantize_activations(model, act_cfg, calib)
            return cto.linear_quantize_weights(model, config)
        if mode == "int8":
            return cto.linear_quantize_weights(model, config)
        return cto.palettize_weights(model, config)
    except Exception as exc:  # coremltools raises ValueError/AssertionError/RuntimeError alike
        raise ExportError(f"{src}: coremltools {mode} compression failed ({type(exc).__name__}: {exc})") from None


def describe_compression(mlpackage: str | os.PathLike) -> dict[str, Any]:
    """The compressed state of a saved ML program: constexpr ops, and which weight ops read them."""
    prog, spec = load_ml_program(Path(mlpackage))
    ops = _ops(prog)
    constexpr: dict[str, int] = {}
    compressed, float_ops = [], []
    params_c = params_f = 0
    for op in ops:
        if op.op_type.startswith("constexpr_"):
            constexpr[op.op_type] = constexpr.get(op.op_type, 0) + 1
        w = op.inputs.get("y" if op.op_type == "matmul" else "weight") if op.op_type in _WEIGHT_OPS else None
        if w is not None:
            producer = w.op.op_type if w.op is not None else "input"
            n = int(np.prod(w.shape)) if w.shape else 1
            if producer.startswith("constexpr_"):
                compressed.append(op.name)
                params_c += n
            elif producer == "const":
                float_ops.append(op.name)
                params_f += n
    return {
        "constexpr_ops": constexpr,
        "weight_ops_compressed": len(compressed),
        "weight_ops_float": sorted(float_ops),
        "params_compressed": params_c,
        "params_float": params_f,
        "specification_version": int(spec.specificationVersion),
    }


def _ops(prog) -> list:
    return [op for f in prog.functions.values() for op in f.operations]


def _output_layers(prog) -> set[str]:
    """For each program output, the nearest weight op upstream (breadth-first through its inputs)."""
    keep: set[str] = set()
    for func in prog.functions.values():
        for out in func.outputs:
            frontier, seen = [out.op], set()
            while frontier:
                op = frontier.pop(0)
                if op is None or op.name in seen or op.op_type == "const" or op.op_type.startswith("constexpr_"):
                    continue
                seen.add(op.name)
                if op.op_type in _WEIGHT_OPS and "weight" in op.inputs:
                    keep.add(op.name)
                    continue
                for v in op.inputs.values():
                    for var in v if isinstance(v, (list, tuple)) else [v]:
                        frontier.append(var.op)
    return keep


def _probe(src: Path, dst: Path, inputs: dict[str, np.ndarray]) -> tuple[dict[str, float], str]:
    a, how = coreml_predict(src, inputs)
    b, _ = coreml_predict(dst, inputs)
    return {k: float(np.max(np.abs(np.asarray(a[k], np.float64) - np.asarray(b[k], np.float64)))) for k in a}, how
