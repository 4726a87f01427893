"""The small interface every target shares: the table of targets (the format table's rows plus ``web``)
and the options each allows, the settings one export runs with, and where models come from and go to
by default. No torch here.

Each target module (``export/onnx.py``, ``openvino.py``, ``coreml.py``) provides one function::

    convert(model, settings, dest_dir, metadata, calib=None, val=None) -> (artifact_path, info)

that writes its artifact (metadata embedded) into ``dest_dir`` and returns a JSON-ready ``info`` dict
for ``export.json``. ``export_model`` (``export/__init__.py``) does everything around it: loading,
parity, the accuracy gate, the model card, the atomic rename.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelLoadError
from ..runtime.formats import FORMATS, PRECISIONS, Format

__all__ = ["COMPRESSIONS", "PRECISIONS", "TARGETS", "ExportSettings", "Target", "check_options", "default_out_dir",
           "is_student_dir", "newest_student"]

#: CoreML weight-only compression modes (quantize.coreml_compress.MODES minus macOS-only w8a8)
COMPRESSIONS = ("int8", "palettize8", "palettize6", "palettize4")


@dataclass(frozen=True)
class Target:
    """One export target: a format of the table (``runtime/formats.py``) or a target packaging one.

    Args:
        name: ``onnx`` | ``openvino`` | ``coreml`` | ``web`` (spelled the same in CLI, folders, metadata).
        artifact: the artifact's file name inside the export folder.
        precisions: precisions this target exports.
        options: the non-default options it allows (names as ``export_model`` keywords).
        note: one line shown in ``--help`` and export.json.
        runs_as: the artifact format when a target packages another's artifact (``web``: an ONNX model in
            a page); its metadata ``target`` names that format, so every runtime loader reads it.
    """

    name: str
    artifact: str
    precisions: tuple[str, ...]
    options: tuple[str, ...]
    note: str = ""
    runs_as: str | None = None

    @property
    def format(self) -> Format:
        """The format row of the artifact this target writes."""
        return FORMATS[self.runs_as or self.name]


_COMMON = ("input_size", "parity_data", "parity_images")
_INT8 = ("calib", "max_srcc_drop")

#: every format is a target with its own options; ``web`` writes an onnx artifact inside a page
TARGETS: dict[str, Target] = {
    **{f.name: Target(f.name, f.artifact, f.precisions, _COMMON + _INT8 + f.options, f.note)
       for f in FORMATS.values()},
    "web": Target("web", FORMATS["onnx"].artifact, ("fp32", "int8"), _COMMON + _INT8 + ("opset",),
                  "a static page (HTML + JS + the ONNX model + onnxruntime-web from npm) scoring camera frames and "
                  "photos in the browser (WASM, WebGPU opt-in); serve it with dpiqa-edge serve", runs_as="onnx"),
}


@dataclass
class ExportSettings:
    """Everything one conversion depends on (recorded in export.json as ``settings``).

    Args:
        target: a key of :data:`TARGETS`.
        precision: ``fp32`` | ``fp16`` | ``int8``.
        input_size: square model input side in pixels (default: the student's own preprocessing size).
        raw_input: bake ``/255`` and NHWC->NCHW into the graph; the input is uint8 RGB ``N x H x W x 3``.
        dynamic_batch: batch dimension left symbolic (onnx, openvino); otherwise batch 1.
        image_input: CoreML input as an RGB image (an app hands a camera pixel buffer straight in).
        min_deployment_target: CoreML minimum deployment target (``iOS16`` default: fp16 I/O, ML program).
        opset: ONNX opset (>= 17).
        compression: CoreML weight-only compression on top of fp32/fp16 (``quantize.coreml_compress`` modes
            int8 | palettize8 | palettize6 | palettize4), or None.
    """

    target: str
    precision: str = "fp32"
    input_size: int | None = None
    raw_input: bool = False
    dynamic_batch: bool = False
    image_input: bool = False
    min_deployment_target: str = "iOS16"
    opset: int = 17
    compression: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        for k in _INT8:
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
    import json

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
