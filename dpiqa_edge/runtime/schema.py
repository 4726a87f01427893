"""One validated schema for every metadata file the toolkit reads (torch-free: numpy is not even needed).

A model folder is something people download and share, so nothing in it is used as given: the artifact
metadata (ONNX ``metadata_props``, OpenVINO ``rt_info``, CoreML ``user_defined_metadata``, repeated in
``export.json``), ``export.json`` itself, a checkpoint's ``config.json`` and the recorded runtime options
are checked here for type, range and (for file names) that they stay inside their folder. Every failure
is a :class:`~dpiqa_edge.errors.ModelLoadError` (exit 2) naming the file and the field, so a crafted
``preprocessing.size`` cannot allocate gigabytes, an ``artifact`` of ``../x`` cannot point outside the
folder, and a ``gate_threshold`` of ``true`` cannot pass every image.

The readers (``runtime.artifact``, ``runtime.backends.onnx``, ``student.checkpoint``) call these
functions; they add no defaults of their own.
"""

from __future__ import annotations

import math
import os
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import ModelLoadError
from .formats import FORMATS

#: model input side in pixels: the smallest a CNN student runs at, the largest any export is asked for
#: (DP-IQA trains at 512; 4096 x 4096 x 3 float32 is 200 MB per image, already far beyond a phone)
SIZE_MIN, SIZE_MAX = 16, 4096
RESAMPLES = ("bilinear", "bicubic", "nearest", "area")
PRECISIONS = ("fp32", "fp16", "int8")
ORT_LEVELS = ("ORT_DISABLE_ALL", "ORT_ENABLE_BASIC", "ORT_ENABLE_EXTENDED", "ORT_ENABLE_LAYOUT", "ORT_ENABLE_ALL")
#: onnxruntime ``add_session_config_entry`` keys an artifact may record: the ones that change how kernels
#: are chosen or threads spin, never ones that write files, load other files or change logging
ORT_SESSION_CONFIG = (
    "session.disable_prepacking", "session.intra_op.allow_spinning", "session.inter_op.allow_spinning",
    "session.qdqisint8allowed", "session.disable_quant_qdq", "session.enable_quant_qdq_cleanup",
    "session.disable_double_qdq_remover", "session.x64quantprecision", "session.disable_aot_function_inlining",
    "mlas.enable_gemm_fastmath_arm64_bfloat16",
)
OPENVINO_HINTS = ("f32", "bf16", "f16")
#: a threshold or score on the toolkit's scale
SCORE_LO, SCORE_HI = 0.0, 100.0


def _fail(where: Any, field: str, problem: str) -> ModelLoadError:
    return ModelLoadError(f"{where}: {field} {problem}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def is_number(value: Any) -> bool:
    """A real, finite number (bools are not numbers here: ``true`` must not read as 1)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_bool(value: Any, where: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, field, f"{_short(value)} is not true/false")
    return value


def check_str(value: Any, where: Any, field: str, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or (choices is not None and value not in choices):
        valid = f"; valid: {', '.join(choices)}" if choices else ""
        raise _fail(where, field, f"{_short(value)} is not {'one of the names' if choices else 'a string'}{valid}")
    return value


def check_int(value: Any, where: Any, field: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _fail(where, field, f"{_short(value)} is not a whole number in {lo}..{hi}")
    return value


def check_threshold(value: Any, where: Any, field: str = "gate_threshold") -> float:
    """A keep/retake threshold: a finite number in 0-100 (not a bool, not NaN)."""
    if not is_number(value) or not SCORE_LO <= value <= SCORE_HI:
        raise _fail(where, field, f"{_short(value)} is not a finite number in 0-100")
    return float(value)


def check_size(value: Any, where: Any, field: str = "preprocessing.size") -> tuple[int, int]:
    """``[h, w]`` with each side in SIZE_MIN..SIZE_MAX."""
    sides = value
    if not isinstance(sides, (list, tuple)) or len(sides) != 2:
        raise _fail(where, field, f"{_short(value)} is not [height, width]")
    for side in sides:
        if isinstance(side, bool) or not isinstance(side, int) or not SIZE_MIN <= side <= SIZE_MAX:
            raise _fail(where, field, f"{_short(value)}: each side must be a whole number in {SIZE_MIN}..{SIZE_MAX}")
    return int(sides[0]), int(sides[1])


def check_preprocessing(value: Any, where: Any, field: str = "preprocessing") -> dict[str, Any]:
    """The ``Preprocess`` dict: bounded size, known resize/resample, a finite input range."""
    if not isinstance(value, dict):
        raise _fail(where, field, f"{_short(value)} is not a JSON object")
    if "size" not in value:
        raise _fail(where, field, "has no input size")
    check_size(value["size"], where, f"{field}.size")
    if "resize" in value:
        check_str(value["resize"], where, f"{field}.resize", ("stretch",))
    if "resample" in value:
        check_str(value["resample"], where, f"{field}.resample", RESAMPLES)
    if "layout" in value:
        check_str(value["layout"], where, f"{field}.layout", ("NCHW",))
    if "input_range" in value:
        rng = value["input_range"]
        if not isinstance(rng, (list, tuple)) or len(rng) != 2 or not all(is_number(v) and abs(v) <= 1e6 for v in rng):
            raise _fail(where, field + ".input_range", f"{_short(rng)} is not two finite numbers")
    return value


def check_runtime_options(value: Any, target: str, where: Any, field: str = "runtime_options") -> dict[str, Any]:
    """The session options an artifact records, against the allowlist of its backend."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(where, field, f"{_short(value)} is not a JSON object")
    if target == "onnx":
        allowed = ("graph_optimization_level", "session_config")
    elif target == "openvino":
        allowed = ("INFERENCE_PRECISION_HINT",)
    else:
        allowed = ()
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        loader = {"onnx": "onnxruntime", "openvino": "OpenVINO"}.get(target, target)
        raise _fail(where, field, f"{unknown} unknown to the {loader} loader; valid: {', '.join(allowed) or 'none'}")
    if "graph_optimization_level" in value:
        check_str(value["graph_optimization_level"], where, f"{field}.graph_optimization_level", ORT_LEVELS)
    if "INFERENCE_PRECISION_HINT" in value:
        check_str(value["INFERENCE_PRECISION_HINT"], where, f"{field}.INFERENCE_PRECISION_HINT", OPENVINO_HINTS)
    config = value.get("session_config")
    if config is not None:
        if not isinstance(config, dict):
            raise _fail(where, f"{field}.session_config", f"{_short(config)} is not a JSON object")
        for key, entry in config.items():
            if key not in ORT_SESSION_CONFIG:
                raise _fail(where, f"{field}.session_config", f"key {_short(key)} is not an allowed onnxruntime "
                            f"session option (valid: {', '.join(ORT_SESSION_CONFIG)})")
            if str(entry) not in ("0", "1") or isinstance(entry, (bool, float)):
                raise _fail(where, f"{field}.session_config.{key}", f"{_short(entry)} is not \"0\" or \"1\"")
    return value


def check_metadata(meta: dict[str, Any], where: Any) -> dict[str, Any]:
    """Decoded artifact metadata (``runtime.artifact.decode_metadata``'s result): every field the runtime
    uses, typed and bounded. Returns ``meta`` unchanged."""
    check_str(meta.get("target"), where, "metadata target", tuple(FORMATS))
    check_str(meta.get("precision"), where, "metadata precision", PRECISIONS)
    check_str(meta.get("input_name"), where, "metadata input_name")
    check_preprocessing(meta.get("preprocessing"), where, "metadata preprocessing")
    check_bool(meta.get("raw_input"), where, "metadata raw_input")
    for key in ("dynamic_batch", "image_input"):
        if key in meta:
            check_bool(meta[key], where, f"metadata {key}")
    if meta.get("gate_threshold") is not None:
        check_threshold(meta["gate_threshold"], where, "metadata gate_threshold")
    if "runtime_options" in meta:  # absent is "none"; present must be an object
        if not isinstance(meta["runtime_options"], dict):
            raise _fail(where, "metadata runtime_options", f"{_short(meta['runtime_options'])} is not a JSON object")
        check_runtime_options(meta["runtime_options"], meta["target"], where, "metadata runtime_options")
    return meta


def check_input_shape(dims: list[Any], meta: dict[str, Any], where: Any) -> None:
    """A static graph input must take the size the metadata says (else every score is an onnxruntime error).
    ``dims``: the graph's input dims, ints where static, anything else where symbolic."""
    h, w = check_size(meta["preprocessing"]["size"], where, "metadata preprocessing.size")
    if len(dims) != 4:
        raise _fail(where, "graph input", f"has {len(dims)} dimensions; a dpiqa-edge model takes 4 (N, C, H, W)")
    spatial = dims[1:3] if meta.get("raw_input") else dims[2:4]
    for got, want, name in zip(spatial, (h, w), ("height", "width")):
        if isinstance(got, int) and got > 0 and got != want:
            raise _fail(where, "metadata preprocessing.size", f"[{h}, {w}] disagrees with the graph's input "
                        f"{name} {got}")


def check_name(value: Any, folder: Path, where: Any, field: str) -> Path:
    """A file name recorded in a folder's metadata: relative, no ``..``, no drive or NUL, and (symlinks
    resolved) inside ``folder``. Returns the path to the file."""
    if not isinstance(value, str) or not value or "\x00" in value or "\\" in value:
        raise _fail(where, field, f"{_short(value)} is not a file name")
    pure = PurePosixPath(value)
    if (pure.is_absolute() or not pure.parts or any(part in ("..", ".", "") for part in pure.parts)
            or value.startswith("~") or ":" in pure.parts[0]):
        raise _fail(where, field, f"{_short(value)} is not a plain name inside {folder}")
    path = folder / pure
    try:
        real, root = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
        inside = real != root and real.is_relative_to(root)
    except (OSError, ValueError):
        inside = False
    if not inside:
        raise _fail(where, field, f"{_short(value)} leads outside {folder} (a link?)")
    return path


def check_export_record(record: Any, path: Path) -> dict[str, Any]:
    """``export.json``: ``artifact`` a plain name in its folder, ``files`` name -> byte count, a valid
    ``gate_threshold`` where recorded. Returns the record."""
    if not isinstance(record, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    folder = path.parent
    if "artifact" not in record:
        raise _fail(path, "artifact", "is missing")
    check_name(record["artifact"], folder, path, "artifact")
    files = record.get("files")
    if files is not None:
        if not isinstance(files, dict):
            raise _fail(path, "files", f"{_short(files)} is not a JSON object (name -> bytes)")
        for name, size in files.items():
            check_name(name, folder, path, "files key")
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise _fail(path, f"files[{_short(name)}]", f"{_short(size)} is not a byte count")
    gate = record.get("gate_threshold")  # {"threshold": T, "n_val": ..., "calibrated": ...} as export writes it
    if isinstance(gate, dict):
        if gate.get("threshold") is not None:
            check_threshold(gate["threshold"], path, "gate_threshold.threshold")
    elif gate is not None:
        check_threshold(gate, path, "gate_threshold")
    if "metadata" in record and not isinstance(record["metadata"], dict):
        raise _fail(path, "metadata", f"{_short(record['metadata'])} is not a JSON object")
    return record


def check_config(config: Any, path: Path) -> dict[str, Any]:
    """A checkpoint's ``config.json`` (student, teacher, import): the fields that size or route the model."""
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    check_str(config.get("model_type"), path, "model_type")
    if "producer_version" in config:
        check_str(config["producer_version"], path, "producer_version")
    if "preprocessing" in config:
        check_preprocessing(config["preprocessing"], path)
    student = config.get("student")
    if student is not None:
        if not isinstance(student, dict):
            raise _fail(path, "student", f"{_short(student)} is not a JSON object")
        if "input_size" in student:
            check_int(student["input_size"], path, "student.input_size", SIZE_MIN, SIZE_MAX)
        if "map_size" in student:
            check_int(student["map_size"], path, "student.map_size", 1, SIZE_MAX)
    if "weights_format" in config:
        check_str(config["weights_format"], path, "weights_format", ("safetensors", "onnx"))
    if "gate_threshold" in config and config["gate_threshold"] is not None:
        check_threshold(config["gate_threshold"], path)
    return config


__all__ = ["SIZE_MIN", "SIZE_MAX", "check_metadata", "check_export_record", "check_config", "check_name",
           "check_threshold", "check_size", "check_preprocessing", "check_runtime_options", "check_input_shape"]
