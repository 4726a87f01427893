"""The format table (``runtime/formats.py``) is the one place export, the runtime, parity and the report
read format facts from: every row resolves, and every name the other layers use maps to a row."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from dpiqa_edge.export import TARGETS
from dpiqa_edge.export.parity import TOLERANCES
from dpiqa_edge.runtime import formats
from dpiqa_edge.runtime.artifact import SUFFIX_TO_BACKEND, backend_name
from dpiqa_edge.runtime.backends import Backend, backend_class
from dpiqa_edge.runtime.formats import FORMATS, PRECISIONS, format_of

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", list(FORMATS))
def test_row_loader_and_metadata_reader_resolve(name):
    row = FORMATS[name]
    assert row.name == name and row.suffix == Path(row.artifact).suffix != ""
    # backend modules import their library inside _load, so every class resolves without that library
    cls = backend_class(name)
    assert cls is formats.resolve(row.loader) and issubclass(cls, Backend) and cls.name == name, row.loader
    # the metadata reader sits beside the loader, on the backend class
    assert "read_metadata" in vars(cls) and list(inspect.signature(cls.read_metadata).parameters) == ["file"], row.loader
    assert set(row.tolerances) == set(row.precisions) <= set(PRECISIONS)
    assert all(t.why for t in row.tolerances.values())
    for precision, (platform, why) in row.platforms.items():
        assert precision in row.precisions and platform and why


def test_every_suffix_and_target_maps_to_a_row():
    assert set(SUFFIX_TO_BACKEND.values()) == set(FORMATS)
    for suffix, name in SUFFIX_TO_BACKEND.items():
        assert format_of(f"x/model{suffix}") is FORMATS[name] and backend_name(f"m{suffix}") == name
    assert format_of("model.tflite") is None
    for target in TARGETS.values():
        row = target.format  # web: the onnx row (an ONNX model inside a page)
        assert target.artifact == row.artifact and set(target.precisions) <= set(row.precisions)
    assert TARGETS["web"].format is FORMATS["onnx"]
    assert {k[0] for k in TOLERANCES} == set(FORMATS)


def test_table_imports_no_torch():
    code = ("import sys; import dpiqa_edge.runtime.formats, dpiqa_edge.runtime.artifact, dpiqa_edge.runtime.backends; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_broken_row_string_fails_and_platform_checks_read_the_row():
    with pytest.raises(AttributeError):
        formats.resolve("dpiqa_edge.runtime.backends.onnx:NoSuchBackend")
    with pytest.raises(ModuleNotFoundError):
        formats.resolve("dpiqa_edge.runtime.backends.tflite:TFLiteBackend")
    from dpiqa_edge.errors import ConfigError
    from dpiqa_edge.export.base import check_options

    if sys.platform != "darwin":  # CoreML W8A8 needs macOS: the row's platforms entry, checked by export
        with pytest.raises(ConfigError, match="coreml --precision int8 is W8A8.*macOS only"):
            check_options("coreml", "int8", {"calib": "x"})
    assert check_options("web", "int8", {"calib": "x"}).format is FORMATS["onnx"]


def test_benchmarks_take_their_formats_from_the_table():
    """The CPU benchmarks time the rows marked ``benchmarked`` (no hard-coded list), labelled by their library."""
    from dpiqa_edge.bench.models_int8 import pair_plan

    assert formats.benchmarked_formats() == ("onnx", "openvino")
    assert all(FORMATS[f].library for f in formats.benchmarked_formats())
    exports = {(t, p): Path(f"/x/{t}-{p}") for t in FORMATS for p in ("fp32", "int8")}
    plan = pair_plan({"lite0": {"size": 64, "exports": exports}}, threads=1, phone_env={}, quick=True)
    assert list(dict.fromkeys(facts["backend"] for facts, _spec, _env in plan)) == ["onnxruntime", "openvino"]
