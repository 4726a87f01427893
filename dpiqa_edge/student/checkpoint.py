"""Student checkpoints: a folder with ``config.json`` (rebuilds the model exactly) + ``model.safetensors``.

``config.json``::

    {"model_type": "dpiqa_student", "producer_version": ..., "student": StudentConfig,
     "preprocessing": Preprocess.to_dict(), "score_range": [0, 100], "higher_is_better": true,
     "outputs": ["score", "quality_map"], "map_size": m, "provenance": {...}}

Loading never downloads or reads package weights: the architecture is built empty from the config
(pruned widths applied first, by ``student.widths.apply_widths``) and filled from safetensors, strictly.

One other kind of student folder exists: an *ONNX-only import* (``"weights_format": "onnx"``, config.json +
model.onnx), the authors' ONNX graph kept as it is where its weights could not be mapped onto a torch
student. Only ``export`` takes it (``load_student(..., allow_onnx=True)``): to ONNX and OpenVINO.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from .. import __version__
from ..config import from_dict
from ..errors import ConfigError, ModelLoadError
from ..io import atomic_path, read_json, write_json
from ..runtime.schema import check_config
from .config import StudentConfig
from .widths import apply_widths

MODEL_TYPE = "dpiqa_student"


def save_student(model, cfg: StudentConfig, directory: str | os.PathLike, **provenance) -> Path:
    """Write ``directory/model.safetensors`` then ``config.json`` (each atomically); returns the folder."""
    from safetensors.torch import save_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / "model.safetensors") as tmp:
        save_model(model, str(tmp), metadata={"format": "pt", "model_type": MODEL_TYPE})
    cfg = cfg.resolved()
    write_json(directory / "config.json", {
        "model_type": MODEL_TYPE,
        "producer_version": __version__,
        "student": cfg.to_dict(),
        "preprocessing": cfg.preprocessing().to_dict(),
        "score_range": [0, 100],
        "higher_is_better": True,
        "outputs": ["score", "quality_map"],
        "map_size": cfg.map_size,
        "provenance": provenance,
    })
    return directory


def onnx_only_config(cfg: StudentConfig, reason: str, **provenance) -> dict:
    """config.json of an ONNX-only student folder (beside its ``model.onnx``)."""
    cfg = cfg.resolved()
    return {"model_type": MODEL_TYPE, "producer_version": __version__, "weights_format": "onnx",
            "onnx_only_reason": reason, "student": cfg.to_dict(), "preprocessing": cfg.preprocessing().to_dict(),
            "score_range": [0, 100], "higher_is_better": True, "outputs": ["score", "quality_map"],
            "map_size": cfg.map_size, "provenance": provenance}


def weights_file(directory: str | os.PathLike) -> Path:
    """The file holding a student folder's weights: model.safetensors, or model.onnx for an ONNX-only import."""
    directory = Path(directory)
    _, meta = read_student_config(directory)
    return directory / ("model.onnx" if meta.get("weights_format") == "onnx" else "model.safetensors")


def read_student_config(directory: str | os.PathLike) -> tuple[StudentConfig, dict]:
    """``(StudentConfig, the whole config.json)``; clear errors for a missing or foreign checkpoint."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: student folder not found")
    meta = read_json(directory / "config.json")
    if isinstance(meta, dict) and meta.get("model_type") == MODEL_TYPE:
        check_config(meta, directory / "config.json")  # sizes, names and thresholds before anything is built
    if not isinstance(meta, dict) or meta.get("model_type") != MODEL_TYPE:
        got = meta.get("model_type") if isinstance(meta, dict) else type(meta).__name__
        raise ModelLoadError(f"{directory / 'config.json'}: model_type {got!r} is not {MODEL_TYPE!r}")
    try:
        cfg = from_dict(StudentConfig, meta.get("student", {}), where=f"{directory / 'config.json'}:student")
    except ConfigError as exc:
        raise ModelLoadError(str(exc)) from None
    return cfg, meta


def load_student(directory: str | os.PathLike, allow_onnx: bool = False):
    """``(model in eval mode, StudentConfig)`` from a folder written by :func:`save_student`.

    ``allow_onnx``: an ONNX-only import comes back as an :class:`~dpiqa_edge.student.onnx_student.OnnxStudent`
    (onnxruntime behind the student forward); otherwise it is a one-line error saying what it can do."""
    from safetensors.torch import load_model

    from .models import build_student  # lazy: student.models imports torch at top

    directory = Path(directory)
    cfg, meta = read_student_config(directory)
    if meta.get("weights_format") == "onnx":
        reason = meta.get("onnx_only_reason", "its weights could not be mapped")
        if not allow_onnx:
            raise ModelLoadError(f"{directory}: an ONNX-only import ({reason}); it has no torch weights: "
                                 "only export --target onnx|openvino takes it")
        from .onnx_student import OnnxStudent  # lazy: student.onnx_student imports torch at top

        return OnnxStudent(directory / "model.onnx", reason), cfg
    weights = directory / "model.safetensors"
    if not weights.is_file():
        raise ModelLoadError(f"{weights}: file not found")
    # Build without any pretrained load: the safetensors file holds every weight.
    model = build_student(replace(cfg, pretrained=False, weights=None))
    if cfg.widths is not None:
        apply_widths(model, cfg.widths)
    try:
        load_model(model, str(weights), strict=True)
    except Exception as exc:  # noqa: BLE001 - truncated file, wrong shapes, missing keys: one line
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"{weights}: cannot load student weights ({msg[:300]})") from None
    return model.eval(), cfg
