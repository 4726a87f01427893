"""Web target: the ONNX export (fp32, or int8 QDQ) inside a static page that scores camera frames and
photos in the browser with onnxruntime-web (``dpiqa_edge/web``).

The model is exactly the ``onnx`` target's ``model.onnx`` (its metadata says ``target: onnx``, so every
runtime loader reads it, and ``export_model`` checks its parity and INT8 accuracy gate as for any ONNX
export). The page reads the same metadata out of the file in the browser. onnxruntime-web comes from npm
(pinned, cached) and is fetched before the conversion, so a machine without npm fails in one line first.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ...web.bundle import ort_web_dir, write_bundle
from .base import ExportSettings, Int8Settings, Target, register_target
from .onnx import convert_onnx, onnx_int8_rungs


@register_target
class WebTarget(Target):
    """``--target web``: the onnx target's ``model.onnx`` inside a static page (``dpiqa_edge/web``); its
    artifact is an onnx row's, so every runtime loader reads it as onnx."""

    name = "web"
    format_name = "onnx"
    own_options = ("opset",)
    precisions = ("fp32", "int8")
    note = ("a static page (HTML + JS + the ONNX model + onnxruntime-web from npm) scoring camera frames and "
            "photos in the browser (WASM, WebGPU opt-in); serve it with dpiqa-edge serve")
    requires = ("onnx",)
    requires_int8 = ("sympy",)
    onnx_source = True

    def convert(self, model, settings: ExportSettings, dest_dir: Path, metadata: dict[str, str], calib=None,
                int8: Int8Settings | None = None) -> tuple[Path, dict[str, Any]]:
        """Write ``dest_dir/model.onnx`` plus the page; return (path, info for export.json)."""
        ort_web_dir(log=lambda m: print(m, file=sys.stderr))  # npm missing or the wrong tarball: fail before minutes of conversion
        artifact, info = convert_onnx(model, settings, dest_dir, metadata, calib=calib, int8=int8)
        info["web"] = write_bundle(Path(dest_dir), artifact.name)
        return artifact, info

    def int8_rungs(self, int8: Int8Settings) -> list[dict[str, Any]]:
        """The onnx target's INT8 ladder (the page runs the same ``model.onnx``)."""
        return onnx_int8_rungs(int8)
