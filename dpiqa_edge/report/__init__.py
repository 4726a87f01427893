"""The report stage: accuracy of every exported variant against MOS, the teacher and its float parent,
with cost (size, parameters, GMACs, latency here), as report.json (versioned schema), report.md,
a self-contained index.html and PNG plots.

``make_report(manifest, teacher_scores, variants, out_dir, max_srcc_drop=None, ...) -> Path``
(ARCHITECTURE.md). Names resolve lazily so importing the package loads neither matplotlib nor a backend.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "make_report": ".build",
    "assemble_report": ".build",
    "write_report": ".build",
    "read_teacher_scores": ".build",
    "validate_report": ".schema",
    "REPORT_SCHEMA": ".schema",
    "SCHEMA_VERSION": ".schema",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
