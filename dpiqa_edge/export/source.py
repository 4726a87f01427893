"""The model an export starts from when no torch is needed: a float ONNX run by onnxruntime.

``export --model default --target onnx|openvino|web`` converts the shipped float ONNX
(``dpiqa_edge/models/default/onnx-fp32``, itself exported from the float checkpoint and checked against it)
instead of tracing the torch student: ONNX and OpenVINO take an ONNX graph anyway, onnxruntime quantizes
it, NNCF quantizes the IR made from it. :class:`OnnxSource` stands where the torch student stands in
``export_model``: ``export_proto`` hands the graph to the targets (as an ONNX-only import does) and
:func:`reference_outputs` runs it for parity, the gate threshold and the accuracy gate. The parity of
every artifact made from it is then checked against this float ONNX through the runtime's own loader.

Nothing here imports torch; :func:`reference_outputs` imports it only for a torch student.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..student.onnx_graph import prepare_proto


class OnnxSource:
    """A float ONNX (input ``image`` float32 N x 3 x H x W in 0..1, outputs ``score``, ``quality_map``) as
    an export's source model.

    Args:
        path: the float ONNX file (an fp32 export's ``model.onnx``).
        reason: why the export starts from it (recorded in export.json).
        threads: onnxruntime intra-op threads for the reference outputs (None: its default).
    """

    onnx_only = True  # export.targets.onnx: hand over this graph instead of a trace

    def __init__(self, path: str | os.PathLike, reason: str, threads: int | None = None):
        self.path, self.reason, self.threads = Path(path), reason, threads
        self._session = None

    # the few nn.Module calls export_model makes on a source model
    def eval(self) -> "OnnxSource":
        return self

    def modules(self):
        return iter(())

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            if self.threads:
                opts.intra_op_num_threads = int(self.threads)
            self._session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        return self._session

    def export_proto(self, raw_input: bool, dynamic_batch: bool):
        return prepare_proto(self.path, raw_input, dynamic_batch)

    def run(self, x: np.ndarray, batch: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """float32 N x 3 x H x W -> (score N, quality_map N x 8 x m x m), ``batch`` images per call
        (1 where the graph has a fixed batch)."""
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        fixed = self.session.get_inputs()[0].shape[0]
        step = fixed if isinstance(fixed, int) else max(1, int(batch))
        outs = [self.session.run(["score", "quality_map"], {"image": x[i:i + step]}) for i in range(0, len(x), step)]
        return (np.concatenate([np.asarray(o[0], np.float32).reshape(-1) for o in outs]),
                np.concatenate([np.asarray(o[1], np.float32) for o in outs]))

    def metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)


def reference_outputs(model: Any, x: np.ndarray, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The source model's (score, quality_map) on a float NCHW batch: onnxruntime for an
    :class:`OnnxSource`, torch for a student."""
    if isinstance(model, OnnxSource):
        return model.run(x, batch=batch)
    from .graph import torch_outputs

    return torch_outputs(model, x, batch=batch)


def torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


#: tolerance = max(declared floor, NOISE_FACTOR x the source model's own spread). Measured ratios of a correct
#: fp32 artifact's parity diff to that spread: 8.7 (B7 authors' layout at 512 px, ONNX: 0.0024 vs 2.7e-4) and
#: 7 (issue 24's B7 replica: 0.0154 vs 0.0022); 20 leaves twice that, and a wrong weight moves scores by far more.
NOISE_FACTOR = 20.0


def source_noise(model: Any, x: np.ndarray, ref: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """How far the source model moves from ``ref`` (its batch-1 outputs on ``x``) by itself: run at batch N
    (the whole set at once) and with another thread count. Another runtime reorders every sum where these
    reorder some, so a correct artifact may differ from the source by several times this (``NOISE_FACTOR``)."""
    out: dict[str, Any] = {}
    peak = max(1.0, float(np.max(np.abs(ref[1])))) if ref[1].size else 1.0

    def diff(got) -> dict[str, float]:
        return {"score": float(np.max(np.abs(got[0].astype(np.float64) - ref[0]))),
                "map_rel": float(np.max(np.abs(got[1].astype(np.float64) - ref[1]))) / peak}

    if len(x) > 1:
        out["batch"] = {"batch_size": len(x), **diff(reference_outputs(model, x, batch=len(x)))}
    with _other_threads(model) as (other, n):
        out["threads"] = {"threads": n, **diff(reference_outputs(other, x, batch=1))}
    out["score"] = max(v["score"] for v in out.values())
    out["map_rel"] = max(v["map_rel"] for k, v in out.items() if isinstance(v, dict))
    return out


class _other_threads:
    """The source model with a different intra-op thread count (1, or 2 where it runs 1 already)."""

    def __init__(self, model: Any):
        self.model = model

    def __enter__(self):
        if isinstance(self.model, OnnxSource):
            n = 1 if (os.cpu_count() or 1) > 1 else 2
            return OnnxSource(self.model.path, self.model.reason, threads=n), n
        import torch

        self.saved = torch.get_num_threads()
        n = 1 if self.saved > 1 else 2
        torch.set_num_threads(n)
        return self.model, n

    def __exit__(self, *exc):
        if not isinstance(self.model, OnnxSource):
            import torch

            torch.set_num_threads(self.saved)
        return False
