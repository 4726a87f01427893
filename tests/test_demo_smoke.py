"""The whole road end to end at toy size (`dpiqa-edge demo --smoke`): nothing in it can break unnoticed.

Numbers from 21 images and one epoch mean nothing, so this checks that every stage ran and connected:
the files each stage promises, every export verified (parity recorded as passed), and a report that
validates against its schema and names every variant.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dpiqa_edge.cli import main

pytestmark = pytest.mark.slow


def test_demo_smoke_runs_the_whole_road(tmp_path):
    out = tmp_path / "demo"
    res = CliRunner().invoke(main, ["demo", "--smoke", "--out", str(out)])
    assert res.exit_code in (0, 1), res.output[-3000:]
    summary = json.loads((out / "demo.json").read_text())
    # A compressed variant of a 1-epoch, 7-image student may be judged constant by its accuracy gate (a
    # real verdict, not a crash): then the demo records why, finishes the road and exits 1 - nothing else.
    rejected = summary["rejected"]
    assert res.exit_code == (1 if rejected else 0)
    for r in rejected:
        assert r["reason"].startswith("accuracy gate failed") and r["exit_code"] == 1, r
        assert r["variant"].endswith("-int8"), r  # only compressed variants are gated; float ones must pass parity

    # 1. every stage left its artifact
    assert (out / "data" / "manifest.csv").is_file()
    for d in ("teacher", "students/lite0", "students/lite0-pruned"):
        assert (out / d / "config.json").is_file() and (out / d / "model.safetensors").is_file(), d
    assert (out / "targets" / "scores.csv").is_file()
    # 2 students x 6 variants (onnx/openvino fp32+int8, coreml fp32 + weight-only int8)
    assert len(summary["exports"]) + len(rejected) == 12
    for e in summary["exports"]:
        record = json.loads(open(f"{e}/export.json").read())
        lossy = record["precision"] == "int8" or record["settings"].get("compression")
        if lossy:  # int8 / weight compression: differences logged, the accuracy gate decides
            assert record["accuracy_gate"]["passed"] is True, e
        else:  # float: within the declared tolerance of torch
            assert record["parity"]["passed"] is True, e
        if record["target"] == "coreml":
            assert "emulated on Linux" in json.dumps(record["parity"]), "CoreML parity must say it was emulated"

    # 2. the report covers every variant and validates
    from dpiqa_edge.report import validate_report

    report = json.loads((out / "report" / "report.json").read_text())
    validate_report(report)
    assert sorted(v["name"] for v in report["variants"]) == sorted(e.rsplit("/", 1)[-1] for e in summary["exports"])
    assert report["data"]["mos_label"] == "synthetic pseudo-MOS"
    assert (out / "report" / "index.html").stat().st_size > 10_000
    # 3. the printout says where things are
    assert "report:" in res.output and "synthetic pseudo-MOS" in res.output
