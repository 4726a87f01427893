"""The runtime side of a toy artifact format, written only through the documented "add a format" path
(docs/ARCHITECTURE.md): a format row registered beside its backend, and the backend class (loader and
metadata reader). Nothing in ``dpiqa_edge`` names it.

A ``model.toy`` file is an ``.npz`` archive holding the fp32 ONNX graph's bytes (``graph``) and the
artifact metadata as one JSON string (``metadata``): a different container, read with numpy alone, whose
graph onnxruntime runs. Used by tests/test_toy_format.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dpiqa_edge.runtime.backends import Backend
from dpiqa_edge.runtime.formats import Format, Tolerance, register_format

ROW = register_format(Format(
    "toy", "model.toy", ".toy (npz)", f"{__name__}:ToyBackend",
    {"fp32": Tolerance(2e-3, 1e-3, "the onnx target's fp32 graph run by the same onnxruntime kernels; only the "
                                   "container differs, so the onnx fp32 tolerance holds")},
    precisions=("fp32",), note="toy: the fp32 ONNX graph inside an .npz, for tests/test_toy_format.py"))


class ToyBackend(Backend):
    """A ``model.toy`` archive: metadata read with numpy; the graph in an onnxruntime session."""

    name = "toy"

    @staticmethod
    def read_metadata(file: Path) -> dict[str, str]:
        with np.load(file, allow_pickle=False) as archive:
            return dict(json.loads(str(archive["metadata"])))

    def _load(self, precision_hint: str | None) -> None:
        import onnxruntime as ort

        with np.load(self.file, allow_pickle=False) as archive:
            graph = archive["graph"].tobytes()
        self.session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score, qmap = self.session.run(["score", "quality_map"], {self.input_name: x})
        return score, qmap
