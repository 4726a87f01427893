"""onnxruntime loader (CPU execution provider).

Precision: ORT runs what the graph holds. An fp32 artifact runs fp32; an fp16 artifact keeps fp16
weights and activations, and ORT's CPU provider inserts casts to fp32 around the ops that have no fp16
kernel on this CPU, so ``precision`` reports ``fp16`` (the stored precision) - the numbers are those of
the fp16 graph as ORT executes it. INT8 (QDQ) artifacts run ORT's int8 kernels once its graph optimiser
has fused each DequantizeLinear -> op -> QuantizeLinear unit into an integer op (QLinearConv, ...).

Session options: an artifact may record the ones it was judged with in its ``runtime_options`` metadata
(``graph_optimization_level``, ``session_config`` entries for ``add_session_config_entry``);
:func:`session_options` applies them, and every onnxruntime session made from an artifact - this loader,
the kernel profiler (``export.targets.ort_kernels``) - is built by it, so what was measured is what runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelLoadError
from . import Backend
from ..schema import check_input_shape, check_runtime_options

#: ``runtime_options`` keys this loader understands
OPTION_KEYS = ("graph_optimization_level", "session_config")
LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_LAYOUT", "ORT_ENABLE_ALL")


def session_options(ort, options: dict[str, Any] | None, threads: int | None, where: str = "artifact"):
    """An ``ort.SessionOptions`` with the artifact's recorded ``runtime_options`` and the thread count.

    Unknown keys or levels are a :class:`ModelLoadError` (a misspelt option would otherwise be ignored and
    the artifact would run differently from how its gate judged it).
    """
    options = dict(check_runtime_options(options, "onnx", where) or {})  # the allowlist (runtime/schema.py)
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # warnings about inserted casts are expected for fp16 graphs
    level = options.get("graph_optimization_level")
    if level is not None:
        if level not in LEVELS or not hasattr(ort.GraphOptimizationLevel, level):
            raise ModelLoadError(f"{where}: runtime_options graph_optimization_level {level!r}; valid: {', '.join(LEVELS)}")
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    for key, value in dict(options.get("session_config") or {}).items():
        opts.add_session_config_entry(str(key), str(value))
    return opts


class OnnxBackend(Backend):
    """An ``.onnx`` artifact in an ``onnxruntime.InferenceSession`` (thread-safe per ORT's docs)."""

    name = "onnx"

    @staticmethod
    def read_metadata(file: Path) -> dict[str, str]:
        try:
            import onnx
        except ImportError:  # runtime-only install: onnxruntime reads the same metadata_props
            import onnxruntime as ort

            return dict(ort.InferenceSession(str(file), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map)
        model = onnx.load(str(file), load_external_data=False)
        return {p.key: p.value for p in model.metadata_props}

    def _load(self, precision_hint: str | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError(f"{self.file}: onnxruntime is not installed (pip install dpiqa-edge[onnx])") from None
        if precision_hint not in (None, self.precision):
            raise ModelLoadError(f"{self.file}: onnxruntime runs the precision stored in the graph ({self.precision}); "
                                 f"precision hint {precision_hint!r} cannot be honoured")
        opts = session_options(ort, self.metadata.get("runtime_options"), self.threads, str(self.file))
        try:
            self.session = ort.InferenceSession(str(self.file), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf types
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelLoadError(f"{self.file}: onnxruntime cannot load it ({msg})") from None
        check_input_shape(list(self.session.get_inputs()[0].shape), self.metadata, self.file)
        names = [o.name for o in self.session.get_outputs()]
        if names[:2] != ["score", "quality_map"] or self.session.get_inputs()[0].name != self.input_name:
            raise ModelLoadError(f"{self.file}: expected input {self.input_name!r} and outputs score, quality_map; "
                                 f"found {self.session.get_inputs()[0].name!r} -> {names}")

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score, qmap = self.session.run(["score", "quality_map"], {self.input_name: x})
        return score, qmap
