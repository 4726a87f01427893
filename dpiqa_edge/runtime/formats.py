"""The format table: one row per artifact format, read by export, the runtime, parity and the report.

A row says everything that is a fact of the format itself: the artifact's file name (and so its suffix),
the files that must sit beside it, the backend class that runs it (``runtime/backends/<name>.py``, named
as a ``"module:Class"`` string and imported only when used: the backend modules import this table, so
the table cannot import them, and this module needs neither a backend library nor torch), the precisions
it is exported at, its parity tolerance per precision with the reason, and the platform a precision
needs. The backend class also reads the artifact's metadata (``Backend.read_metadata``), so a format's
runtime side is one module.

The export *targets* (``export/targets/``) declare which row they write (``web``: a static page that
bundles an ONNX model, so its artifact is an ``onnx`` row's and every runtime loader reads it as ``onnx``),
their options and their conversion; the runtime never imports export.

Adding a format is a row (in this file, or ``register_format`` beside its backend), its backend module and
its target module (docs/ARCHITECTURE.md, "Adding a format").
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class Tolerance:
    """Declared agreement between an artifact and its torch source.

    Args:
        score: max |score diff| on the 0-100 scale; ``None`` = measured only (int8: the accuracy gate judges).
        map_rel: max |map diff| relative to ``max(1, peak |map|)``.
        why: the justification recorded in export.json.
    """

    score: float | None
    map_rel: float | None
    why: str


_FP32 = Tolerance(2e-3, 1e-3, "fp32 vs fp32: only kernels and summation order differ; measured 2e-4..6e-4 on "
                  "0-100 (Lite0 64 px, B7 96 px; torch itself moves 3e-4 between batch 1 and 7), so 2e-3 "
                  "(4e-5 relative to a mid-scale score) leaves margin yet catches any real graph error")
_FP16 = Tolerance(0.5, 3e-2, "fp16 keeps ~3 significant digits per op (unit roundoff 4.9e-4); over ~50 "
                  "layers errors compound to ~1e-2 relative; 0.5 on 0-100 is far below MOS spread (std ~5-10)")
_INT8 = Tolerance(None, None, "int8 changes every activation by design: differences are measured and "
                  "logged here; the accuracy gate (--max-srcc-drop) decides")
#: CoreML fp16 computes every op in fp16 (ORT fp16 upcasts ops lacking fp16 kernels), hence its own row
_COREML_FP16 = Tolerance(2.0, 5e-2, "CoreML fp16 stores every activation in fp16 (no fp32 islands): "
                         "measured 1.1 on 0-100 for the Lite0 test stand-in; 2.0 is a fraction of "
                         "MOS spread (std ~15 on 0-100); rank agreement is recorded beside it")
#: weight-only compression (palettization, int8 weights) changes weights by design, like int8
COMPRESSED = Tolerance(None, None, "weight compression changes every weight by design: differences are "
                       "measured and logged here; the accuracy gate (--max-srcc-drop) decides")

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Format:
    """One row of the format table.

    Args:
        name: ``onnx`` | ``openvino`` | ``coreml``: the backend name, the metadata ``target``, the CLI target.
        artifact: the artifact's file (or ``.mlpackage`` folder) name inside an export folder.
        label: how error messages name the file type (``OpenVINO .xml``).
        loader: ``"module:Class"`` of its ``runtime.backends.Backend`` subclass (which also reads the
            artifact's metadata: ``read_metadata(file)``).
        tolerances: precision -> parity :class:`Tolerance` (OpenVINO is checked with the f32 execution
            hint: bf16 would add ~3e-3 by itself).
        companions: suffixes of files that belong to the artifact beside it (OpenVINO's ``.bin`` weights).
        platforms: precision -> (``sys.platform`` it needs, why) for exports that run only there.
        note: one line for ``--help`` and export.json.
        library: what runs the artifact, as the benchmarks label their rows (``onnxruntime``, ``openvino``).
        benchmarked: timed by the CPU benchmarks (``bench models``, ``runtime``, the INT8 pairs); CoreML is
            not: its latency is a device measurement, and on Linux it runs in the MIL emulator.
    """

    name: str
    artifact: str
    label: str
    loader: str
    tolerances: dict[str, Tolerance]
    companions: tuple[str, ...] = ()
    platforms: dict[str, tuple[str, str]] = field(default_factory=dict)
    precisions: tuple[str, ...] = PRECISIONS
    note: str = ""
    library: str = ""
    benchmarked: bool = False

    @property
    def suffix(self) -> str:
        return Path(self.artifact).suffix

    def load_class(self) -> Any:
        """The backend class (imports its library now)."""
        return resolve(self.loader)

    def read_metadata(self, file: Path) -> dict[str, str]:
        """The artifact's string metadata, read by its backend class (``Backend.read_metadata``)."""
        return self.load_class().read_metadata(file)


def resolve(spec: str) -> Any:
    """``"package.module:name"`` -> the object, importing the module on first use."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


_RT = "dpiqa_edge.runtime"

FORMATS: dict[str, Format] = {
    "onnx": Format(
        "onnx", "model.onnx", ".onnx", f"{_RT}.backends.onnx:OnnxBackend",
        {"fp32": _FP32, "fp16": _FP16, "int8": _INT8},
        note="ONNX (opset >= 17), run by onnxruntime; fp16 keeps float32 inputs/outputs",
        library="onnxruntime", benchmarked=True),
    "openvino": Format(
        "openvino", "model.xml", "OpenVINO .xml", f"{_RT}.backends.openvino:OpenVINOBackend",
        {"fp32": _FP32, "fp16": _FP16, "int8": _INT8}, companions=(".bin",),
        note="OpenVINO IR (.xml + .bin); fp16 = fp16-compressed weights, compute per precision hint",
        library="openvino", benchmarked=True),
    "coreml": Format(
        "coreml", "model.mlpackage", ".mlpackage", f"{_RT}.backends.coreml:CoreMLBackend",
        {"fp32": _FP32, "fp16": _COREML_FP16, "int8": _INT8},
        platforms={"int8": ("darwin", "is W8A8, whose activation calibration runs MLModel.predict (macOS only); "
                                      "on this OS use --precision fp16 --compression int8 (weight-only INT8) or "
                                      "--compression palettize6")},
        note="CoreML ML program (.mlpackage), batch 1; int8 = W8A8 (activation calibration needs macOS); "
             "--compression int8|palettize8|palettize6|palettize4 = weight-only, on fp32/fp16; "
             "runs fp16 on GPU/Neural Engine by default on device",
        library="coremltools"),
}

#: artifact file suffix -> format name
BY_SUFFIX: dict[str, str] = {f.suffix: f.name for f in FORMATS.values()}


def register_format(row: Format) -> Format:
    """Add a row to the table (a format outside this file: its backend module calls this at import).

    Its name and suffix must be new: two formats sharing a suffix would make an artifact ambiguous.
    """
    taken = FORMATS.get(row.name)
    if taken is not None and taken != row:
        raise ConfigError(f"format {row.name!r} is already in the table")
    if BY_SUFFIX.get(row.suffix, row.name) != row.name:
        raise ConfigError(f"format {row.name!r}: suffix {row.suffix} is {BY_SUFFIX[row.suffix]}'s already")
    if not row.suffix or not set(row.tolerances) == set(row.precisions) <= set(PRECISIONS):
        raise ConfigError(f"format {row.name!r}: needs a file suffix and one tolerance per precision ({PRECISIONS})")
    FORMATS[row.name] = row
    BY_SUFFIX[row.suffix] = row.name
    return row


def benchmarked_formats() -> tuple[str, ...]:
    """The formats the CPU benchmarks time, in table order (``onnx``, ``openvino``)."""
    return tuple(name for name, row in FORMATS.items() if row.benchmarked)


def file_types() -> str:
    """``.onnx, OpenVINO .xml or .mlpackage``: the artifact file types, for error messages."""
    labels = [f.label for f in FORMATS.values()]
    return ", ".join(labels[:-1]) + " or " + labels[-1]


def format_of(file: str | Path) -> Format | None:
    """The row whose suffix the file has, or None."""
    name = BY_SUFFIX.get(Path(file).suffix)
    return FORMATS[name] if name else None
