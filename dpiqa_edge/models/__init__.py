"""Models shipped inside the package (no download: the installed package holds them).

``default``: the camera-check student, an EfficientNet-Lite0 trained with the camera recipe
(:mod:`dpiqa_edge.distill.camera`) on real photos from pip and Debian packages; its card is
``default/MODEL_CARD.md``. Two forms:

* ``default/onnx-int8/``: the INT8 ONNX export folder (``model.onnx`` + ``export.json``), what ``dpiqa-edge
  check`` runs when no ``--model`` is given (numpy + Pillow + onnxruntime, no torch);
* ``default/student/``: the float checkpoint (``config.json`` + ``model.safetensors``), what ``dpiqa-edge export
  --model default --target coreml`` converts (torch);
* ``default/onnx-fp32/``: the float ONNX export of that checkpoint (checked against it), what ``export --model
  default --target onnx|openvino|web`` converts without torch;
* ``default/frames/``: small JPEG frames made from public-domain / CC0 package photos (``LICENSES.md``), listed in
  ``manifest.csv``: ``train`` rows calibrate INT8, ``test`` rows (camera ladders of held-out photos, synthetic
  severity labels) serve parity and the accuracy gate of those exports.

``dpiqa-edge default-model --out DIR --install`` rebuilds both (and this card) from the photos; that build and
the card's writer are :mod:`dpiqa_edge.default_model`, at the top of the layer order. This module stays in the
foundation (it imports only ``errors``) because ``check``, the runtime scorer and ``export --model default``
read these paths torch-free.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError

DEFAULT_DIR = Path(__file__).parent / "default"
NAME = "default"


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise ModelLoadError(f"{path}: the shipped default model's {what} is missing (this install has no default "
                             "model; rebuild it with `dpiqa-edge default-model --out runs/default-model --install` "
                             "or give --model)")
    return path


def default_artifact() -> Path:
    """The shipped INT8 ONNX export folder (what ``check`` uses without ``--model``)."""
    return _need(DEFAULT_DIR / "onnx-int8", "INT8 ONNX export")


def default_student() -> Path:
    """The shipped float checkpoint folder (what ``export --model default`` converts)."""
    return _need(DEFAULT_DIR / "student", "float checkpoint")


def default_float_onnx() -> Path:
    """The shipped float ONNX (``onnx-fp32/model.onnx``): the torch-free exports' source."""
    return _need(DEFAULT_DIR / "onnx-fp32" / "model.onnx", "float ONNX")


def has_float_onnx() -> bool:
    return (DEFAULT_DIR / "onnx-fp32" / "model.onnx").is_file()


def default_frames() -> Path:
    """The shipped frames' manifest (calibration: train rows; parity and accuracy gate: test rows)."""
    return _need(DEFAULT_DIR / "frames" / "manifest.csv", "calibration and parity frames")


def has_default() -> bool:
    return (DEFAULT_DIR / "onnx-int8" / "model.onnx").is_file() and (DEFAULT_DIR / "student" / "model.safetensors").is_file()


def resolve_artifact(model: str | None) -> Path | str:
    """``check --model``: None or ``default`` -> the shipped INT8 export; anything else is a path."""
    return default_artifact() if model in (None, NAME) else model


def resolve_student(model: str | None) -> Path | str | None:
    """``export --model``: ``default`` -> the shipped float checkpoint; anything else unchanged."""
    return default_student() if model == NAME else model
