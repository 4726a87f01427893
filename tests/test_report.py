"""The accuracy report (engineer H): numbers equal scipy's computed here, the schema validates and
rejects broken reports, every plot is embedded in index.html and is a real (non-blank) image, and
``--max-srcc-drop`` exits 1 on a forced drop - the last through the CLI on tiny real ONNX artifacts."""

from __future__ import annotations

import base64
import copy
import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from dpiqa_edge.errors import InputError
from dpiqa_edge.report.build import assemble_report, write_report
from dpiqa_edge.report.schema import validate_report
from dpiqa_edge.report.variants import ScoredVariant, assign_parents

N = 16  # images in the tiny set: enough for non-degenerate ranks, fast bootstrap
TOL = 1e-12  # same scipy functions on the same float64 arrays: equal up to float rounding


def _variants(rng):
    """A float parent, an INT8-like variant (small noise) and a reversed one (a forced large drop)."""
    mos = rng.uniform(5, 95, N)
    parent = mos + rng.normal(0, 8, N)
    close = parent + rng.normal(0, 1.5, N)
    bad = 100 - parent
    common = dict(source_sha256="a" * 64, target="onnx", backend="onnx", gate_threshold=50.0,
                  cost={"size_bytes": 1000, "params": 10, "gmacs": 0.1, "latency_ms": {"p50": 1.0, "p95": 2.0},
                        "latency_note": None})
    vs = [ScoredVariant("s-onnx-fp32", "a", parent, precision="fp32", precision_ran="fp32", **common),
          ScoredVariant("s-onnx-int8", "b", close, precision="int8", precision_ran="int8", **common),
          ScoredVariant("s-onnx-bad", "c", bad, precision="int8", precision_ran="int8", **common)]
    assign_parents(vs)
    return mos, vs


def _report(rng, n_boot=20, **kw):
    rng = np.random.default_rng(0) if rng is None else rng
    mos, vs = _variants(rng)
    teacher = mos + rng.normal(0, 4, N)
    brisque = -mos + rng.normal(0, 20, N)  # raw BRISQUE-like: lower = better
    rep = assemble_report(manifest="m.csv", split="test", paths=[f"{i}.png" for i in range(N)], mos=mos,
                          variants=vs, teacher=teacher, references={"BRISQUE": brisque}, n_boot=n_boot, **kw)
    return rep, mos, vs, teacher, brisque


def test_parents_found_from_source_sha(rng):
    _, vs = _variants(rng)
    assert [v.parent for v in vs] == [None, "s-onnx-fp32", "s-onnx-fp32"]


def test_metrics_equal_scipy(rng):
    rep, mos, vs, teacher, brisque = _report(rng, synthetic=True)
    for v, row in zip(vs, rep["variants"]):
        m = row["vs_mos"]
        assert m["srcc"]["value"] == pytest.approx(stats.spearmanr(v.scores, mos).statistic, abs=TOL)
        assert m["krcc"]["value"] == pytest.approx(stats.kendalltau(v.scores, mos).statistic, abs=TOL)
        assert m["plcc"]["value"] == pytest.approx(stats.pearsonr(v.scores, mos).statistic, abs=TOL)
        lo, hi = m["srcc"]["ci95"]
        assert lo <= hi and -1 <= lo and hi <= 1
        t = row["vs_teacher"]
        assert t["srcc"] == pytest.approx(stats.spearmanr(v.scores, teacher).statistic, abs=TOL)
        assert t["mean_abs_diff"] == pytest.approx(np.abs(v.scores - teacher).mean(), abs=TOL)
        assert t["max_abs_diff"] == pytest.approx(np.abs(v.scores - teacher).max(), abs=TOL)
        assert t["gate_agreement"] == pytest.approx(np.mean((v.scores >= 50) == (teacher >= 50)), abs=TOL)
    parent = vs[0].scores
    for v, row in zip(vs[1:], rep["variants"][1:]):
        p = row["vs_parent"]
        drop = stats.spearmanr(parent, mos).statistic - stats.spearmanr(v.scores, mos).statistic
        assert p["srcc_drop"] == pytest.approx(drop, abs=TOL)
        lo, hi = p["srcc_drop_ci95"]  # paired bootstrap: brackets the drop it describes
        assert lo - TOL <= p["srcc_drop"] <= hi + TOL
        assert p["srcc_with_parent"] == pytest.approx(stats.spearmanr(v.scores, parent).statistic, abs=TOL)
        assert p["max_abs_change"] == pytest.approx(np.abs(v.scores - parent).max(), abs=TOL)
    ref = rep["references"][0]
    # BRISQUE is lower = better: the report negates it, so its SRCC is minus scipy's on the raw scores
    assert ref["vs_mos"]["srcc"]["value"] == pytest.approx(-stats.spearmanr(brisque, mos).statistic, abs=TOL)
    assert rep["data"]["mos_label"] == "synthetic pseudo-MOS"


@pytest.mark.parametrize("max_drop, passed", [(None, True), (2.5, True), (0.5, False)])
def test_gate_in_report(rng, max_drop, passed):
    rep, *_ = _report(rng, n_boot=0, max_srcc_drop=max_drop)
    assert rep["gate"]["passed"] is passed
    if not passed:  # only the reversed variant exceeds the budget (its drop is ~1.9)
        assert len(rep["gate"]["failures"]) == 1 and "s-onnx-bad" in rep["gate"]["failures"][0]


def _break_missing(r):
    del r["variants"][0]["vs_mos"]


def _break_type(r):
    r["variants"][0]["cost"]["size_bytes"] = "big"


def _break_version(r):
    r["schema_version"] = 999


def _break_agreement(r):
    r["variants"][0]["vs_teacher"]["gate_agreement"] = 1.5


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """One report (with a failing gate) drawn and written once for the file-level tests."""
    out = tmp_path_factory.mktemp("report")
    rep, *_ = _report(None, n_boot=5, max_srcc_drop=0.5)
    write_report(rep, out)  # validates before writing
    return rep, out


@pytest.mark.parametrize("breaker", [_break_missing, _break_type, _break_version, _break_agreement])
def test_schema_validates_and_rejects(written, breaker):
    rep, out = written
    validate_report(json.loads((out / "report.json").read_text()))
    broken = copy.deepcopy(rep)
    breaker(broken)
    with pytest.raises(InputError, match="does not match schema"):
        validate_report(broken)


def test_html_embeds_every_plot_and_none_blank(written):
    from PIL import Image

    _, tmp_path = written
    on_disk = json.loads((tmp_path / "report.json").read_text())
    # per-variant scatter (3) + SRCC-drop bars + Pareto chart
    assert len(on_disk["plots"]) == 3 + 2
    page = (tmp_path / "index.html").read_text()
    uris = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(uris) == len(on_disk["plots"])
    assert "http" not in page.replace("https://json-schema.org", "")  # self-contained: nothing fetched
    for rel, b64 in zip(on_disk["plots"].values(), uris):
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))).convert("L"), dtype=np.float32)
        assert img.shape[0] > 100 and img.shape[1] > 100
        assert img.std() > 0, f"{rel} is blank"
        assert (tmp_path / rel).read_bytes() == base64.b64decode(b64)
    md = (tmp_path / "report.md").read_text()
    assert "s-onnx-bad" in md and "FAILED" in md


# -- the CLI on tiny real ONNX artifacts ------------------------------------------------------------

SIZE = 32  # model input; the tiny graph's cost is independent of anything the report checks


def _tiny_onnx(folder: Path, scale: float, bias: float, precision: str, sha: str, size: int = SIZE) -> Path:
    """An export folder with a hand-built ONNX graph: score = bias + scale * mean(image); quality map
    = 8 copies of the 4x4 average-pooled luma. Built with onnx.helper (no torch: fast)."""
    import onnx
    from onnx import TensorProto, helper

    from dpiqa_edge.io import write_json
    from dpiqa_edge.runtime.artifact import encode_metadata
    from dpiqa_edge.runtime.preprocess import Preprocess

    k = size // 4
    c = lambda name, v: helper.make_tensor(name, TensorProto.FLOAT, [len(v)] if len(v) > 1 else [], v)  # noqa: E731
    nodes = [
        helper.make_node("ReduceMean", ["image"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Constant", [], ["scale"], value=c("scale", [scale])),
        helper.make_node("Constant", [], ["bias"], value=c("bias", [bias])),
        helper.make_node("Mul", ["m", "scale"], ["ms"]),
        helper.make_node("Add", ["ms", "bias"], ["score"]),
        helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["grey"], ["pooled"], kernel_shape=[k, k], strides=[k, k]),
        helper.make_node("Constant", [], ["shape"], value=helper.make_tensor("shape", TensorProto.INT64, [4], [1, 8, 1, 1])),
        helper.make_node("Expand", ["pooled", "shape"], ["quality_map"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, size, size])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["n"]),
         helper.make_tensor_value_info("quality_map", TensorProto.FLOAT, ["n", 8, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = {"dpiqa_edge_version": "0.1.0", "model_type": "dpiqa_student", "student": "tiny", "target": "onnx",
            "precision": precision, "preprocessing": Preprocess(size=(size, size)).to_dict(), "raw_input": False,
            "score_range": "0,100", "higher_is_better": True, "gate_threshold": 50.0, "source_sha256": sha,
            "outputs": "score,quality_map", "input_name": "image", "dynamic_batch": True}
    helper.set_model_props(model, encode_metadata(meta))
    folder.mkdir(parents=True)
    onnx.save(model, str(folder / "model.onnx"))
    write_json(folder / "export.json", {"artifact": "model.onnx", "target": "onnx", "precision": precision,
                                        "source_sha256": sha, "params": 0})
    return folder


@pytest.fixture
def tiny_set(tmp_path, rng):
    """8 test images of graded brightness; MOS = brightness (so mean-brightness models rank them)."""
    from PIL import Image

    from dpiqa_edge.data.manifest import Row, write_manifest

    rows, teacher = [], []
    for i in range(8):
        level = 20 + 25 * i
        img = np.clip(rng.normal(level, 10, (40, 40, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"im{i}.png")
        mos = 100 * level / 255
        rows.append(Row(f"im{i}.png", mos, "test"))
        teacher.append(mos + (-1) ** i)
    write_manifest(tmp_path / "manifest.csv", rows)
    with open(tmp_path / "scores.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "teacher_score"])
        w.writerows([(r.path, t) for r, t in zip(rows, teacher)])
    sha = "b" * 64
    arts = [_tiny_onnx(tmp_path / "tiny-onnx-fp32", 100.0, 0.0, "fp32", sha),
            _tiny_onnx(tmp_path / "tiny-onnx-int8", -100.0, 100.0, "int8", sha)]  # reversed: a forced drop
    return tmp_path, arts


@pytest.mark.parametrize("max_drop, code", [("0.05", 1), ("2.5", 0)])
def test_cli_max_srcc_drop(tiny_set, max_drop, code):
    from click.testing import CliRunner

    from dpiqa_edge.cli import main

    root, arts = tiny_set
    out = root / "rep"
    args = ["report", "--data", str(root / "manifest.csv"), "--teacher-scores", str(root / "scores.csv"),
            "--variants", *map(str, arts), "--out", str(out), "--max-srcc-drop", max_drop, "--no-peers",
            "--bootstrap", "0", "--latency-repeats", "3", "--threads", "1"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == code, res.output
    rep = json.loads((out / "report.json").read_text())  # written even when the gate fails
    fp32, int8 = rep["variants"]
    assert fp32["vs_mos"]["srcc"]["value"] == pytest.approx(1.0)  # brightness ranks exactly as MOS
    assert int8["vs_parent"]["parent"] == "tiny-onnx-fp32"
    assert int8["vs_parent"]["srcc_drop"] == pytest.approx(2.0)  # 1 - (-1)
    assert fp32["backend"] == "onnx" and fp32["cost"]["latency_ms"]["p50"] > 0
    # both timed in the same 3 round-robin rounds (one call each per round), 1 thread as asked
    assert [v["cost"]["latency_ms"]["repeats"] for v in (fp32, int8)] == [3, 3]
    assert {v["cost"]["latency_ms"]["threads"] for v in (fp32, int8)} == {1}
    assert fp32["cost"]["size_bytes"] == (root / "tiny-onnx-fp32" / "model.onnx").stat().st_size
    if code:
        assert "tiny-onnx-int8" in res.output and "max-srcc-drop" in res.output


@pytest.mark.parametrize("points, front", [
    ([(3.0, 0.9), (1.5, 0.88), (2.0, 0.7)], [1, 0]),  # (2.0, 0.7) is slower and worse than (1.5, 0.88)
    ([(1.0, 0.5), (2.0, 0.5)], [0]),  # equal accuracy, slower: dominated
    ([(1.0, 0.9)], [0]),
])
def test_pareto_front(points, front):
    from dpiqa_edge.report.plots import pareto_front

    assert pareto_front(points) == front


def _sv(name, precision, target, sha, parent_sha=None):
    return ScoredVariant(name, name, np.zeros(3), precision=precision, target=target, source_sha256=sha,
                         parent_source_sha256=parent_sha)


def test_parent_rules():
    vs = [_sv("s-onnx-fp32", "fp32", "onnx", "a"), _sv("s-openvino-fp32", "fp32", "openvino", "a"),
          _sv("s-openvino-int8", "int8", "openvino", "a"), _sv("s-coreml-fp32", "fp32", "coreml", "a"),
          _sv("p-onnx-fp32", "fp32", "onnx", "p", parent_sha="a"), _sv("p-onnx-int8", "int8", "onnx", "p")]
    assign_parents(vs)
    assert {v.name: v.parent for v in vs} == {
        "s-onnx-fp32": None,  # the float reference
        "s-openvino-fp32": "s-onnx-fp32",  # conversion drift vs the fp32 ONNX
        "s-openvino-int8": "s-openvino-fp32",  # same target's float export first
        "s-coreml-fp32": "s-onnx-fp32",
        "p-onnx-fp32": "s-onnx-fp32",  # pruned: the checkpoint it was pruned from (config provenance)
        "p-onnx-int8": "p-onnx-fp32",  # INT8 of the pruned student: the pruned float export
    }
    assign_parents(vs, explicit=vs[3])
    assert [v.parent for v in vs] == ["s-coreml-fp32"] * 3 + [None] + ["s-coreml-fp32"] * 2


def test_the_teacher_is_called_the_gpu_teacher_only_when_a_gpu_scored():
    from dpiqa_edge.report.build import teacher_label

    assert teacher_label("cuda:0") == "the GPU teacher"
    assert "GPU teacher" not in teacher_label("cpu") and "cpu" in teacher_label("cpu")
    assert "unknown" in teacher_label("unknown")
