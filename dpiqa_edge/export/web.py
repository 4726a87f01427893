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

from .base import ExportSettings


def convert(model, settings: ExportSettings, dest_dir: Path, metadata: dict[str, str], calib=None,
            val=None) -> tuple[Path, dict[str, Any]]:
    """Write ``dest_dir/model.onnx`` plus the page; return (path, info for export.json)."""
    from ..web.bundle import ort_web_dir, write_bundle
    from . import onnx

    ort_web_dir(log=lambda m: print(m, file=sys.stderr))  # npm missing or the wrong tarball: fail before minutes of conversion
    artifact, info = onnx.convert(model, settings, dest_dir, metadata, calib=calib, val=val)
    info["web"] = write_bundle(Path(dest_dir), artifact.name)
    return artifact, info


def int8_rungs(int8_options: dict[str, Any]) -> list[dict[str, Any]]:
    """The onnx target's INT8 ladder (the page runs the same ``model.onnx``)."""
    from .onnx import int8_rungs as onnx_rungs

    return onnx_rungs(int8_options)
