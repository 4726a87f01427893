"""The target contract: what one export target declares and does, and the registry that lists targets.

A target is a class in one module (``export/targets/<name>.py``) holding the whole "how" of its format:
the conversion, its INT8 / compression code (in that module or a sibling module of this package), the
INT8 rungs it tries in order, the checks it makes on the source model, and the options and modules it
needs. ``@register_target`` puts one instance of it in :data:`TARGETS`, the one table ``export_model``,
``check_options`` and the CLI read. Each hook has a default here, so a target writes only what differs.

Why a class with declared attributes and not a module found by name: ``export_model`` calls the
methods of ``TARGETS[target]`` (a static reader follows every call), a missing hook is the base
class's documented default instead of a ``hasattr`` probe, and the INT8 settings travel as one typed,
immutable :class:`Int8Settings` instead of a dict several steps write into. The registry holds
instances (targets are stateless) so callers read ``TARGETS[name].options`` as plain attributes.

The artifact's facts (file name, suffix, tolerances, backend) stay in the runtime's format table
(``runtime/formats.py``): the runtime must read an artifact without importing export. A target names
its row with ``format_name`` (``web`` packages an ``onnx`` artifact).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from ...runtime.formats import FORMATS, PRECISIONS, Format

#: options every target allows (``export_model`` keywords), and those that apply to int8 only
COMMON_OPTIONS = ("input_size", "parity_data", "parity_images")
INT8_OPTIONS = ("calib", "max_srcc_drop")


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
        compression: CoreML weight-only compression on top of fp32/fp16 (``targets.coreml_compress`` modes
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Int8Settings:
    """What a target's quantizer / compressor gets beyond :class:`ExportSettings` (immutable: each step
    that adds to it returns a new one).

    Args:
        options: keywords for the target's quantizer: the caller's ``int8_options``, then the rung's.
        val: labelled held-out val images ``(images, mos)`` (never test), or None: NNCF's accuracy control
            and OpenVINO's choice of precision for the ops left float.
        accuracy_control: the caller asked for accuracy-controlled quantization (openvino).
        max_srcc_drop: the SRCC budget given to the export, or None.
    """

    options: dict[str, Any] = field(default_factory=dict)
    val: Any = None
    accuracy_control: bool = False
    max_srcc_drop: float | None = None

    def with_options(self, **options: Any) -> Int8Settings:
        """A copy with ``options`` added (a rung's settings over the caller's)."""
        return dataclasses.replace(self, options={**self.options, **options})


class Target:
    """One export target. Subclasses set ``name`` and implement :meth:`convert`; the rest has defaults.

    Class attributes:
        name: the CLI ``--target`` value, the export folder's suffix.
        format_name: the format row (``runtime/formats.py``) of the artifact it writes; default ``name``.
            Its metadata ``target`` names that row, so every runtime loader reads the artifact.
        own_options: options beyond :data:`COMMON_OPTIONS` / :data:`INT8_OPTIONS` (``export_model`` keywords).
        precisions: the precisions it exports; default the format row's.
        note: one line for ``--help`` and export.json; default the format row's.
        requires / requires_int8: modules the conversion (int8: and its quantizer) imports, checked before
            any work so a missing one is one line naming ``extra``.
        extra: the pip extra that brings ``requires`` (None: the one ``errors.MODULE_EXTRA`` names).
        onnx_source: converts from an ONNX graph, so ``--model default`` exports it without torch.
    """

    name: str = ""
    format_name: str | None = None
    own_options: tuple[str, ...] = ()
    precisions: tuple[str, ...] | None = None
    note: str | None = None
    requires: tuple[str, ...] = ()
    requires_int8: tuple[str, ...] = ()
    extra: str | None = None
    onnx_source: bool = False

    def __init__(self) -> None:
        if not self.name:
            raise TypeError(f"{type(self).__name__}: a target declares its name")
        row = self.format  # a target whose format is not in the table fails here, at registration
        if self.precisions is None:
            self.precisions = row.precisions
        if self.note is None:
            self.note = row.note

    # -- declared facts ---------------------------------------------------------------------------
    @property
    def format(self) -> Format:
        """The format row of the artifact this target writes."""
        return FORMATS[self.format_name or self.name]

    @property
    def runs_as(self) -> str | None:
        """The artifact format when this target packages another's artifact (``web``: onnx), else None."""
        return self.format_name if self.format_name not in (None, self.name) else None

    @property
    def artifact(self) -> str:
        return self.format.artifact

    @property
    def options(self) -> tuple[str, ...]:
        """Every non-default option this target allows."""
        return COMMON_OPTIONS + INT8_OPTIONS + tuple(self.own_options)

    # -- hooks (defaults) ---------------------------------------------------------------------------
    def check_source(self, model, model_dir: Path) -> None:
        """Refuse a source this target cannot convert (one line). Default: every source converts."""

    def int8_rungs(self, int8: Int8Settings) -> list[dict[str, Any]]:
        """INT8 settings to try in order, fastest first (``export_model`` keeps the first whose accuracy gate
        passes). Default: one rung, the caller's options as they are."""
        return [{}]

    def prepare_int8(self, int8: Int8Settings) -> Int8Settings:
        """Adjust the INT8 settings once the held-out val images are known. Default: unchanged."""
        return int8

    def convert(self, model, settings: ExportSettings, dest_dir: Path, metadata: dict[str, str], calib=None,
                int8: Int8Settings | None = None) -> tuple[Path, dict[str, Any]]:
        """Write the artifact (``metadata`` embedded) into ``dest_dir``; return (its path, a JSON-ready
        ``info`` dict for export.json). ``info`` may carry ``runtime_options`` and ``int8_weights``, which
        ``export_model`` copies into the artifact's metadata record."""
        raise NotImplementedError(f"target {self.name}: convert")

    def __repr__(self) -> str:
        return f"<target {self.name}: {self.artifact}>"


#: target name -> the registered target (one instance per class)
TARGETS: dict[str, Target] = {}


def register_target(cls: type[Target]) -> type[Target]:
    """Class decorator: put one instance of ``cls`` in :data:`TARGETS` (its name must be new)."""
    target = cls()
    if target.name in TARGETS and type(TARGETS[target.name]) is not cls:
        raise ConfigError(f"export: target {target.name!r} is registered twice "
                          f"({type(TARGETS[target.name]).__name__}, {cls.__name__})")
    if set(target.precisions) - set(PRECISIONS):
        raise ConfigError(f"export: target {target.name!r} declares unknown precisions {target.precisions}")
    TARGETS[target.name] = target
    return cls
