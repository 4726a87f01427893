"""The export side of the toy format (tests/toy_backend.py): one target class, registered with
``@register_target``, reusing the onnx target's fp32 graph export and packing it into the toy container.
Importing this module registers the format row (through its backend module) and then the target."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import toy_backend  # noqa: F401  (registers the format row this target writes)

from dpiqa_edge.export.targets import ExportSettings, Int8Settings, Target, register_target
from dpiqa_edge.export.targets.onnx import export_onnx_fp32


@register_target
class ToyTarget(Target):
    """``--target toy``: fp32 only; the checked ONNX graph with its metadata, inside an ``.npz``."""

    name = "toy"
    requires = ("onnx",)

    def convert(self, model, settings: ExportSettings, dest_dir: Path, metadata: dict[str, str], calib=None,
                int8: Int8Settings | None = None) -> tuple[Path, dict[str, Any]]:
        with tempfile.TemporaryDirectory(prefix="dpiqa-toy-") as tmp:
            graph = export_onnx_fp32(model, settings, Path(tmp) / "model.onnx", metadata).read_bytes()
        dest = Path(dest_dir) / self.artifact
        with open(dest, "wb") as fh:
            np.savez(fh, graph=np.frombuffer(graph, dtype=np.uint8), metadata=np.array(json.dumps(metadata)))
        return dest, {"container": "npz: the fp32 ONNX graph's bytes + the metadata as one JSON string"}
