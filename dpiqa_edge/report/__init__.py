"""The report stage: accuracy of every exported variant against MOS, the teacher and its float parent,
with cost (size, parameters, GMACs, latency here), as report.json (versioned schema), report.md,
a self-contained index.html and PNG plots.

``make_report(manifest, teacher_scores, variants, out_dir, max_srcc_drop=None, ...) -> Path``
(ARCHITECTURE.md). Importing the package loads neither matplotlib nor jsonschema nor a backend: each is
imported where it is used.
"""

from __future__ import annotations

from .build import assemble_report, make_report, read_teacher_scores, write_report
from .schema import REPORT_SCHEMA, SCHEMA_VERSION, validate_report

__all__ = ["REPORT_SCHEMA", "SCHEMA_VERSION", "assemble_report", "make_report", "read_teacher_scores", "validate_report",
           "write_report"]
