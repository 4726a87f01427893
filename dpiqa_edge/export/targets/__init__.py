"""Export targets: one module per format, one class per target, one registry (``TARGETS``).

``base.py`` declares the contract (:class:`Target`, :class:`ExportSettings`, :class:`Int8Settings`) and the
registry; ``onnx.py``, ``openvino.py``, ``coreml.py`` and ``web.py`` each hold one target's whole "how",
INT8 / compression included (their quantizers sit beside them: ``onnx_int8.py`` + ``ort_kernels.py``,
``openvino_int8.py``, ``coreml_compress.py``). Importing this package registers the built-in targets in
this order, which is the order ``--help`` lists them in; a new target registers itself with
``@register_target`` wherever its module is imported (docs/ARCHITECTURE.md, "Adding a format").
"""

from __future__ import annotations

from .base import (COMMON_OPTIONS, INT8_OPTIONS, TARGETS, ExportSettings, Int8Settings, Target,
                   register_target)

__all__ = ["COMMON_OPTIONS", "INT8_OPTIONS", "TARGETS", "ExportSettings", "Int8Settings", "Target",
           "register_target"]

# each module registers its target; this order is the registry's (and --help's): the format table's, then web
from . import onnx  # noqa: E402,F401
from . import openvino  # noqa: E402,F401
from . import coreml  # noqa: E402,F401
from . import web  # noqa: E402,F401
