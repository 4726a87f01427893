"""Adding a format takes what docs/ARCHITECTURE.md ("Adding a format") says and nothing else: a toy format
(tests/toy_backend.py: its row and backend; tests/toy_target.py: its target class) registered from outside
the package goes through export_model (parity against torch with its row's tolerance, the options it
declares), the runtime's loader, QualityScorer and ``dpiqa-edge check``, and scores each photo as the torch
student does on the same pixels, within the toy row's tolerance."""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from test_export import lite0, manifest, torch_ref  # noqa: E402,F401  (fixtures reused)

ROOT = Path(__file__).resolve().parents[1]
#: what the package would contain if the toy format had needed an edit inside it
_NAMED = re.compile(r"""["']toy["']|\.toy\b|toy_backend|toy_target|ToyBackend|ToyTarget""")


@pytest.fixture
def toy():
    """Register the toy format by importing its target module; unregister it afterwards."""
    from dpiqa_edge.export.targets import TARGETS
    from dpiqa_edge.runtime.formats import BY_SUFFIX, FORMATS

    assert "toy" not in FORMATS and "toy" not in TARGETS
    yield importlib.import_module("toy_target")
    TARGETS.pop("toy", None)
    FORMATS.pop("toy", None)
    BY_SUFFIX.pop(".toy", None)
    for name in ("toy_target", "toy_backend"):
        sys.modules.pop(name, None)


def test_the_toy_format_needs_two_files_outside_the_package(toy):
    from dpiqa_edge.export.targets import TARGETS
    from dpiqa_edge.runtime.formats import FORMATS, format_of

    row, target = FORMATS["toy"], TARGETS["toy"]
    files = {Path(inspect.getsourcefile(row.load_class())), Path(inspect.getsourcefile(type(target))),
             Path(inspect.getsourcefile(sys.modules[row.loader.partition(":")[0]]))}
    assert files == {ROOT / "tests" / "toy_backend.py", ROOT / "tests" / "toy_target.py"}
    assert len(files) <= 3  # the bound for a new format
    edited = [str(p.relative_to(ROOT)) for p in (ROOT / "dpiqa_edge").rglob("*.py") if _NAMED.search(p.read_text())]
    assert edited == [], "the package names the toy format: adding a format needed an edit inside it"
    # what the registry now says about it, all declared in those two files
    assert format_of("x/model.toy") is row and target.format is row and target.artifact == "model.toy"
    assert target.precisions == ("fp32",) and target.options == ("input_size", "parity_data", "parity_images",
                                                                  "calib", "max_srcc_drop")


def test_the_toy_format_exports_verifies_loads_and_checks(toy, lite0, manifest, tmp_path):  # noqa: F811
    from click.testing import CliRunner

    from dpiqa_edge.cli import main
    from dpiqa_edge.errors import ConfigError
    from dpiqa_edge.export import export_model
    from dpiqa_edge.runtime.backends import load_backend
    from dpiqa_edge.runtime.scorer import QualityScorer

    # 1. export: parity with torch through the toy backend, judged by the toy row's tolerance
    out = export_model(lite0, "toy", out_dir=tmp_path / "toy", parity_data=manifest, log=None)
    record = json.loads((out / "export.json").read_text())
    assert record["artifact"] == "model.toy" and record["target"] == "toy" and record["metadata"]["target"] == "toy"
    assert record["parity"]["passed"] is True and record["parity"]["label"] == "toy fp32"
    assert record["parity"]["tolerance"]["score"] >= 2e-3  # the row's floor (or 20 x torch's own noise)
    assert record["files"]["model.toy"] == (out / "model.toy").stat().st_size and record["gate_threshold"]["threshold"]
    # the contract it declared: fp32 only, no options beyond the common ones
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        export_model(lite0, "toy", "fp16", out_dir=tmp_path / "no", log=None)
    with pytest.raises(ConfigError, match="--raw-input not allowed"):
        export_model(lite0, "toy", out_dir=tmp_path / "no", raw_input=True, log=None)
    assert not (tmp_path / "no").exists()

    # 2. the runtime's own loader picks the toy backend by suffix; QualityScorer (decode, resize, the toy
    #    backend) scores each photo as the torch student does on the same pixels, within the row's tolerance
    backend = load_backend(out)
    assert type(backend).__name__ == "ToyBackend" and backend.metadata["target"] == "toy"
    images = sorted(Path(manifest).parent.glob("*.png"))
    ref, _maps = torch_ref(lite0, backend.preprocess.batch(images))
    toy_scorer = QualityScorer(out)
    tol = record["parity"]["tolerance"]["score"]
    for image, want in zip(images, ref):
        verdict = toy_scorer.check(image)
        assert verdict.score == pytest.approx(float(want), abs=tol)
        assert verdict.threshold == toy_scorer.gate_threshold

    # 3. dpiqa-edge check runs it as any artifact: with the recorded threshold (a retake exits 1), and with 0
    for args, code in (([], 1 if toy_scorer.score(images[0]) < toy_scorer.gate_threshold else 0),
                       (["--threshold", "0"], 0)):
        result = CliRunner().invoke(main, ["check", "--model", str(out), "--json", *args, str(images[0])])
        assert result.exit_code == code, result.output
        line = json.loads([ln for ln in result.output.splitlines() if ln.startswith("{")][0])
        assert line["score"] == pytest.approx(toy_scorer.score(images[0]), abs=1e-3)
