"""Typed errors with the exit code the CLI maps them to (DESIGN.md: 0 ok, 1 input fails, 2 usage/model).

Every message is one line that names the file (or row) and the problem; the CLI prints it without a
traceback. Raise these instead of letting a backend's own exception escape.
"""

from __future__ import annotations


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
