"""The versioned JSON schema of ``report.json`` and its validation (the ``jsonschema`` library).

Bump ``SCHEMA_VERSION`` when a field changes meaning or a required field is added, so a consumer
(a CI gate, a dashboard) can refuse a report it does not understand instead of misreading it.
A report is validated before it is written: an invalid one is a bug and never reaches disk.
"""

from __future__ import annotations

from typing import Any

from ..errors import InputError
from .camera import SCHEMA as _CAMERA

SCHEMA_ID = "dpiqa-edge/report"
SCHEMA_VERSION = 1

_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_STR_OR_NULL = {"type": ["string", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}

# One metric with its bootstrap 95% interval (null where a metric is undefined, e.g. constant scores).
_METRIC = {
    "type": "object",
    "required": ["value", "ci95"],
    "additionalProperties": False,
    "properties": {
        "value": _NUM_OR_NULL,
        "ci95": {"type": ["array", "null"], "items": _NUM_OR_NULL, "minItems": 2, "maxItems": 2},
    },
}

_VS_MOS = {
    "type": "object",
    "required": ["srcc", "krcc", "plcc", "plcc_fitted", "rmse"],
    "additionalProperties": False,
    "properties": {k: _METRIC for k in ("srcc", "krcc", "plcc", "plcc_fitted", "rmse")},
}

_VS_TEACHER = {
    "type": "object",
    "required": ["srcc", "mean_abs_diff", "max_abs_diff", "gate_threshold", "gate_agreement"],
    "additionalProperties": False,
    "properties": {
        "srcc": _NUM_OR_NULL,
        "mean_abs_diff": _NUM_OR_NULL,
        "max_abs_diff": _NUM_OR_NULL,
        "gate_threshold": _NUM_OR_NULL,
        "gate_agreement": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    },
}

_VS_PARENT = {
    "type": ["object", "null"],
    "required": ["parent", "srcc_drop", "srcc_with_parent", "max_abs_change"],
    "additionalProperties": False,
    "properties": {
        "parent": {"type": "string"},
        "srcc_drop": _NUM_OR_NULL,
        # paired bootstrap 95% interval of the drop (optional: reports written before it lack the key)
        "srcc_drop_ci95": {"type": ["array", "null"], "items": _NUM_OR_NULL, "minItems": 2, "maxItems": 2},
        "srcc_with_parent": _NUM_OR_NULL,  # rank agreement with the parent (DESIGN: reported beside the drop)
        "max_abs_change": _NUM_OR_NULL,
    },
}

_COST = {
    "type": "object",
    "required": ["size_bytes", "params", "gmacs", "latency_ms", "latency_note"],
    "additionalProperties": False,
    "properties": {
        "size_bytes": _INT_OR_NULL,
        "params": _INT_OR_NULL,
        "gmacs": _NUM_OR_NULL,
        "latency_ms": {
            "type": ["object", "null"],
            "required": ["p50", "p95"],
            "properties": {"p50": _NUM, "p95": _NUM, "repeats": {"type": "integer"}, "threads": _INT_OR_NULL},
        },
        "latency_note": _STR_OR_NULL,
        "note": _STR_OR_NULL,  # e.g. why params/GMACs are missing
    },
}

_VARIANT = {
    "type": "object",
    "required": ["name", "artifact", "backend", "precision", "precision_ran", "label", "scores",
                 "vs_mos", "vs_teacher", "vs_parent", "cost"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "artifact": {"type": "string"},
        "student": _STR_OR_NULL,
        "target": _STR_OR_NULL,
        "backend": {"type": "string"},
        "precision": _STR_OR_NULL,  # what the artifact was exported as (fp32|fp16|int8)
        "precision_ran": {"type": "string"},  # what the backend actually executed (e.g. bf16 on AMX)
        "label": _STR_OR_NULL,  # e.g. "emulated on Linux" for CoreML rows
        "source_sha256": _STR_OR_NULL,
        "scores": {"type": "array", "items": _NUM},
        "vs_mos": _VS_MOS,
        "vs_teacher": {"oneOf": [_VS_TEACHER, {"type": "null"}]},
        "vs_parent": _VS_PARENT,
        "cost": _COST,
    },
}

_REFERENCE = {
    "type": "object",
    "required": ["name", "note", "scores", "vs_mos", "vs_teacher_srcc"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "note": {"type": "string"},
        "scores": {"type": "array", "items": _NUM},  # raw, as the method outputs them
        "vs_mos": _VS_MOS,
        "vs_teacher_srcc": _NUM_OR_NULL,
    },
}

REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "dpiqa-edge accuracy report",
    "type": "object",
    "required": ["schema", "schema_version", "dpiqa_edge_version", "created", "data", "teacher",
                 "variants", "references", "gate", "plots"],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "schema_version": {"const": SCHEMA_VERSION},
        "dpiqa_edge_version": {"type": "string"},
        "created": {"type": "string"},
        "data": {
            "type": "object",
            "required": ["manifest", "split", "n_images", "mos_label", "synthetic", "paths", "mos"],
            "additionalProperties": False,
            "properties": {
                "manifest": {"type": "string"},
                "split": {"type": "string"},
                "n_images": {"type": "integer", "minimum": 2},
                "mos_label": {"type": "string"},  # "MOS" or "synthetic pseudo-MOS"
                "synthetic": {"type": "boolean"},
                "paths": {"type": "array", "items": {"type": "string"}},
                "mos": {"type": "array", "items": _NUM},
            },
        },
        "teacher": {
            "type": "object",
            "required": ["scores_file", "device", "label", "scores"],
            "additionalProperties": False,
            "properties": {
                "scores_file": _STR_OR_NULL,
                "device": {"type": "string"},  # cuda | cpu | unknown: where the teacher's scores were computed
                "label": {"type": "string"},
                "scores": {"type": ["array", "null"], "items": _NUM},
                "vs_mos": {"oneOf": [_VS_MOS, {"type": "null"}]},
            },
        },
        "variants": {"type": "array", "minItems": 1, "items": _VARIANT},
        "references": {"type": "array", "items": _REFERENCE},
        "gate": {
            "type": "object",
            "required": ["max_srcc_drop", "passed", "failures"],
            "additionalProperties": False,
            "properties": {
                "max_srcc_drop": _NUM_OR_NULL,
                "passed": {"type": "boolean"},
                "failures": {"type": "array", "items": {"type": "string"}},
            },
        },
        "plots": {"type": "object", "additionalProperties": {"type": "string"}},
        "notes": {"type": "array", "items": {"type": "string"}},
        "camera": _CAMERA,  # optional: present on camera ladder sets (report/camera.py)
    },
}


def validate_report(report: dict[str, Any], where: str = "report.json") -> dict[str, Any]:
    """Raise :class:`InputError` (one line: the JSON path and the problem) unless ``report`` is valid."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(REPORT_SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(report))
    if error is not None:
        at = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise InputError(f"{where}: does not match schema {SCHEMA_ID} v{SCHEMA_VERSION} at {at}: {error.message}")
    return report
