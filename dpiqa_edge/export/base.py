"""The request side of export: checking a request against the targets registry, and where models come
from and go to by default. No torch here.

The targets themselves - their contract (``Target``), settings (``ExportSettings``, ``Int8Settings``) and
the registry ``TARGETS`` - live in ``export/targets/`` (``targets/base.py``); they are re-exported here for
the callers that always read them from this module. ``export_model`` (``export/__init__.py``) does
everything around a target's ``convert``: loading, parity, the accuracy gate, the model card, the atomic
rename.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelLoadError
from ..runtime.formats import PRECISIONS
from .targets import COMMON_OPTIONS, INT8_OPTIONS, TARGETS, ExportSettings, Int8Settings, Target

__all__ = ["COMMON_OPTIONS", "COMPRESSIONS", "INT8_OPTIONS", "PRECISIONS", "TARGETS", "ExportSettings", "Int8Settings",
           "Target", "check_options", "default_out_dir", "is_student_dir", "newest_student"]

#: CoreML weight-only compression modes (targets.coreml_compress.MODES minus macOS-only w8a8)
COMPRESSIONS = ("int8", "palettize8", "palettize6", "palettize4")


def check_options(target: str, precision: str, options: dict[str, Any]) -> Target:
    """Validate a request against the table: an unknown target, precision or option not allowed for the
    target is a :class:`ConfigError` listing the valid ones. ``options`` holds only non-default values."""
    if target not in TARGETS:
        raise ConfigError(f"export: unknown target {target!r}; valid targets: {', '.join(TARGETS)}")
    spec = TARGETS[target]
    if precision not in spec.precisions:
        raise ConfigError(f"export --target {target}: unknown precision {precision!r}; valid: {', '.join(spec.precisions)}")
    bad = sorted(k for k in options if k not in spec.options)
    if bad:
        raise ConfigError(f"export --target {target}: option(s) {_flags(bad)} not allowed; "
                          f"{target} allows: {_flags(spec.options)}")
    if precision != "int8":
        for k in INT8_OPTIONS:
            if k in options and not (k == "max_srcc_drop" and options.get("compression")):
                also = " or --compression" if k == "max_srcc_drop" else ""
                raise ConfigError(f"export: --{k.replace('_', '-')} applies to --precision int8{also} only")
    elif "calib" not in options:
        raise ConfigError("export --precision int8 needs --calib MANIFEST_OR_FOLDER (calibration images)")
    platform, why = spec.format.platforms.get(precision, (None, ""))
    if platform is not None and sys.platform != platform:
        raise ConfigError(f"export --target {target} --precision {precision} {why}")
    if options.get("compression") is not None:
        if options["compression"] not in COMPRESSIONS:
            raise ConfigError(f"export: unknown --compression {options['compression']!r}; valid: {', '.join(COMPRESSIONS)}")
        if precision == "int8":
            raise ConfigError("export: --compression is weight-only compression of an fp32/fp16 program; "
                              "--precision int8 is W8A8 already")
    if options.get("opset") is not None and int(options["opset"]) < 17:
        raise ConfigError(f"export: --opset {options['opset']} too old; use 17 or newer")
    return spec


def _flags(names) -> str:
    return ", ".join("--" + n.replace("_", "-") for n in names)


def is_student_dir(path: Path) -> bool:
    """config.json + model.safetensors (or model.onnx: an ONNX-only import)."""
    return (path / "config.json").is_file() and any((path / f).is_file() for f in ("model.safetensors", "model.onnx"))


def newest_student(runs: str | os.PathLike = "runs") -> Path:
    """The most recently written student checkpoint folder under ``runs`` (by model.safetensors mtime)."""
    runs = Path(runs)
    found = []
    for cfg in runs.rglob("config.json") if runs.is_dir() else []:
        folder = cfg.parent
        if not is_student_dir(folder) or any(p.startswith(".") for p in folder.parts):
            continue
        try:
            model_type = json.loads(cfg.read_text(encoding="utf-8")).get("model_type")
        except (OSError, ValueError):
            continue
        if model_type == "dpiqa_student":
            weights = folder / "model.safetensors"
            found.append(((weights if weights.is_file() else folder / "model.onnx").stat().st_mtime, str(folder)))
    if not found:
        raise ModelLoadError(f"{runs}: no student checkpoint (config.json with model_type dpiqa_student + "
                             "model.safetensors) found; give --model DIR")
    return Path(max(found)[1])


def default_out_dir(model_dir: Path, target: str, precision: str, root: str | os.PathLike = "exports",
                    compression: str | None = None, name: str | None = None) -> Path:
    """``./exports/<model>-<target>-<precision>[-<compression>]/`` (DESIGN.md); ``name`` replaces the
    model folder's name (the shipped default model's folder is called ``student``)."""
    suffix = f"-{compression}" if compression else ""
    return Path(root) / f"{name or Path(model_dir).resolve().name}-{target}-{precision}{suffix}"
