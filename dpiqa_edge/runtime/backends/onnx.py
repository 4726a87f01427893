"""onnxruntime loader (CPU execution provider).

Precision: ORT runs what the graph holds. An fp32 artifact runs fp32; an fp16 artifact keeps fp16
weights and activations, and ORT's CPU provider inserts casts to fp32 around the ops that have no fp16
kernel on this CPU, so ``precision`` reports ``fp16`` (the stored precision) - the numbers are those of
the fp16 graph as ORT executes it. INT8 (QDQ) artifacts run ORT's int8 kernels.
"""

from __future__ import annotations

import numpy as np

from ...errors import ModelLoadError
from . import Backend


class OnnxBackend(Backend):
    """An ``.onnx`` artifact in an ``onnxruntime.InferenceSession`` (thread-safe per ORT's docs)."""

    name = "onnx"

    def _load(self, precision_hint: str | None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError(f"{self.file}: onnxruntime is not installed (pip install dpiqa-edge[onnx])") from None
        if precision_hint not in (None, self.precision):
            raise ModelLoadError(f"{self.file}: onnxruntime runs the precision stored in the graph ({self.precision}); "
                                 f"precision hint {precision_hint!r} cannot be honoured")
        opts = ort.SessionOptions()
        if self.threads:
            opts.intra_op_num_threads = int(self.threads)
            opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # warnings about inserted casts are expected for fp16 graphs
        try:
            self.session = ort.InferenceSession(str(self.file), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own Fail/InvalidProtobuf types
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ModelLoadError(f"{self.file}: onnxruntime cannot load it ({msg})") from None
        names = [o.name for o in self.session.get_outputs()]
        if names[:2] != ["score", "quality_map"] or self.session.get_inputs()[0].name != self.input_name:
            raise ModelLoadError(f"{self.file}: expected input {self.input_name!r} and outputs score, quality_map; "
                                 f"found {self.session.get_inputs()[0].name!r} -> {names}")

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score, qmap = self.session.run(["score", "quality_map"], {self.input_name: x})
        return score, qmap
