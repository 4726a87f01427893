"""The model benchmark: its tables compute the ratios from the rows they show, its subprocess worker
really loads and times an artifact (and reports a broken one instead of crashing), its INT8-vs-fp32 pairs
are timed in one process, its model list is data, and the harness can find it. No speed is asserted:
speed targets live in BENCHMARKS.md, not in tests."""

from __future__ import annotations

import math

import pytest

from dpiqa_edge.bench import BENCHMARKS, Section, _resolve
from dpiqa_edge.timing import ratio
from dpiqa_edge.bench.models import PHONE_ENV, SIZE, Row, _sections, _worker, bench_models


def _row(model, backend, precision, p50, size, note=""):
    return Row(model, backend, precision, ran=precision, threads=2, size=512, params=1_000_000, gmacs=1.0, size_bytes=size,
               p50=p50, p95=p50 * 1.1, rss_bytes=100 * 2**20, throughput={"1": 1000 / p50}, note=note)


@pytest.fixture
def tables():
    rows = [
        _row("paper", "torch", "fp32", 800.0, 260_000_000),
        _row("paper", "onnxruntime", "fp32", 400.0, 250_000_000),
        _row("lite0", "torch", "fp32", 80.0, 15_000_000),
        _row("lite0", "onnxruntime", "fp32", 40.0, 14_000_000),
        _row("lite0", "onnxruntime", "int8", 20.0, 4_000_000),
        _row("lite0", "openvino", "fp32", 30.0, 14_000_000, note="f32 pinned"),
        _row("lite0", "openvino", "fp32", 15.0, 14_000_000, note="OpenVINO default here (bf16)"),
        _row("lite0", "openvino", "int8", 10.0, 4_000_000, note="f32 pinned"),
        _row("lite0", "openvino", "int8", 12.0, 4_000_000, note="OpenVINO default here (bf16)"),
        _row("lite0", "openvino", "int8", 25.0, 4_000_000, note="phone-like: 1 thread, ONEDNN_MAX_CPU_ISA=AVX2"),
        _row("lite0-pruned50", "openvino", "int8", 4.0, 1_000_000, note="f32 pinned"),
        _row("lite0-pruned50", "openvino", "int8", 3.0, 1_000_000, note="OpenVINO default here (bf16)"),
    ]
    teacher = {"p50": 20_000.0, "p95": 21_000.0, "rss_bytes": 5 * 2**30, "repeat": 2, "ran": "fp32", "params": 1e9}
    return {s.title: s for s in _sections(rows, teacher, False, "bf16", 60.0, Section, ratio)}


def _ratio(sec, comparison, backend):
    [row] = [r for r in sec.rows if r[0] == comparison and r[1] == backend]
    return row[2], row[3]


# exact: the ratios are divisions of the numbers given above
@pytest.mark.parametrize("comparison, backend, speed, size", [
    ("Lite0 INT8 vs paper fp32 (speed-up)", "onnxruntime", 400 / 20, 250 / 4),
    ("Lite0 INT8 vs teacher (speed-up)", "onnxruntime", 20_000 / 20, math.nan),
    ("Lite0 INT8 vs teacher (speed-up)", "openvino", 20_000 / 10, math.nan),
    ("lite0 INT8 vs fp32 (speed-up)", "onnxruntime", 40 / 20, 14 / 4),
    ("lite0 INT8 vs fp32 (speed-up)", "openvino", 30 / 10, 14 / 4),
    ("lite0 INT8 vs fp32, both at OpenVINO's default (bf16)", "openvino", 15 / 12, math.nan),
    ("lite0 INT8 (float ops pinned f32) vs fp32 at OpenVINO's default (bf16)", "openvino", 15 / 10, math.nan),
    ("lite0-pruned50 INT8 vs lite0 INT8 (float ops pinned f32)", "openvino", 10 / 4, 4 / 1),
    ("lite0-pruned50 INT8 vs lite0 INT8 (both at OpenVINO's default, bf16)", "openvino", 12 / 3, 4 / 1),
    ("lite0 vs paper, torch eager fp32 (speed-up)", "torch", 800 / 80, 260 / 15),
])
def test_ratios_from_rows(tables, comparison, backend, speed, size):
    sec = tables["Ratios (p50 latency at batch 1; size = artifact bytes)"]
    got_speed, got_size = _ratio(sec, comparison, backend)
    assert got_speed == pytest.approx(speed, rel=1e-12)
    assert (math.isnan(got_size) and math.isnan(size)) or got_size == pytest.approx(size, rel=1e-12)


def test_main_and_phone_tables(tables):
    main = tables["Students vs backends"]
    assert len(main.rows) == 11 + 1  # every non-phone row plus the teacher
    col = {c: i for i, c in enumerate(main.columns)}
    lite_int8_ov = [r for r in main.rows if (r[0], r[col["backend"]], r[col["precision (stored -> ran)"]]) ==
                    ("lite0", "openvino", "int8 -> int8") and r[-1] == "f32 pinned"][0]
    assert lite_int8_ov[col["input"]] == 512
    assert lite_int8_ov[main.columns.index("x faster than teacher")] == pytest.approx(2000.0)
    assert main.rows[-1][0].startswith("teacher") and "CPU" in main.rows[-1][-1]
    [phone] = tables["Phone-like rows (1 thread; OpenVINO capped to AVX2)"].rows
    assert phone[5] == pytest.approx(25 / 10)  # vs the same model/backend/precision on all cores
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in phone[-1]


def test_worker_times_a_real_artifact(tmp_path):
    from test_report import _tiny_onnx

    art = _tiny_onnx(tmp_path / "tiny-onnx-fp32", 100.0, 0.0, "fp32", "c" * 64, size=SIZE)
    res = _worker({"kind": "artifact", "path": str(art), "threads": 1, "repeat": 3, "warmup": 1, "batches": [2]},
                  env=PHONE_ENV, timeout=120)
    assert "error" not in res, res
    assert res["ran"] == "fp32" and res["repeat"] == 3 and res["cpu_ms"] > 0
    assert 0 < res["p50"] <= res["p95"]
    assert res["throughput"]["2"] > 0 and res["throughput"]["1"] > 0
    assert res["rss_bytes"] > 20 * 2**20  # a Python process with numpy + onnxruntime loaded is far above 20 MiB


def test_worker_reports_a_broken_artifact(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    res = _worker({"kind": "artifact", "path": str(bad), "repeat": 1, "warmup": 0}, timeout=120)
    assert res["error"].startswith("exit ") and "model.onnx" in res["error"]


def test_registered_in_the_harness():
    assert "models" in BENCHMARKS and _resolve("models") is bench_models


@pytest.mark.parametrize("load, env, expected", [(100.0, None, 1), (0.0, None, None), (100.0, "3", 3)])
def test_choose_threads(monkeypatch, load, env, expected):
    import os

    from dpiqa_edge.bench.models import choose_threads

    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    if env is None:
        monkeypatch.delenv("DPIQA_BENCH_THREADS", raising=False)
    else:
        monkeypatch.setenv("DPIQA_BENCH_THREADS", env)
    cores = len(os.sched_getaffinity(0))
    threads, why = choose_threads()
    assert threads == (cores if expected is None else expected) and why


def test_pair_worker_times_fp32_and_int8_in_one_process(tmp_path):
    """kind=pair: both artifacts through the runtime loader, round-robin; the speed-up is the ratio of the
    two medians it reports (exact arithmetic), the precision each ran is read back."""
    from test_report import _tiny_onnx

    a = _tiny_onnx(tmp_path / "a", 100.0, 0.0, "fp32", "c" * 64, size=SIZE)
    b = _tiny_onnx(tmp_path / "b", 100.0, 0.0, "int8", "c" * 64, size=SIZE)
    res = _worker({"kind": "pair", "fp32": str(a), "int8": str(b), "threads": 1, "rounds": 2, "per_round": 2,
                   "warmup": 1}, timeout=120)
    assert "error" not in res, res
    assert res["fp32"]["n"] == res["int8"]["n"] == 4 and res["int8"]["ran"] == "int8"
    assert res["speedup"] == pytest.approx(res["fp32"]["p50"] / res["int8"]["p50"], rel=1e-12)


def test_int8_section_judges_each_pair_against_its_backend_target():
    from dpiqa_edge.bench.models_int8 import TARGETS, int8_section, pair_plan

    def res(f, q):
        return {"fp32": {"p50": f, "ran": "fp32", "n": 45}, "int8": {"p50": q, "ran": "int8", "n": 45}, "speedup": f / q}

    facts = lambda b, t: {"model": "lite0@224", "size": 224, "backend": b, "threads": t, "how": f"{t} threads"}  # noqa: E731
    sec = int8_section([(facts("onnxruntime", 2), res(10.0, 5.0)), (facts("onnxruntime", 1), res(10.0, 7.0)),
                        (facts("openvino", 2), res(6.5, 5.0)), (facts("openvino", 1), {"error": "exit 1: boom"})], Section)
    speed, met = sec.columns.index("speed-up"), sec.columns.index("met")
    assert [r[speed] for r in sec.rows[:3]] == [2.0, 10 / 7, 1.3]
    assert [r[met] for r in sec.rows] == ["yes", "NO", "yes", "FAILED: exit 1: boom"]  # 1.43 < 1.5; 1.3 >= 1.3
    assert TARGETS == {"onnxruntime": 1.5, "openvino": 1.3}
    # the plan: both backends at all cores and phone-like (ORT 1 thread; OpenVINO 1 thread + AVX2 cap)
    models = {"m": {"size": 224, "exports": {(t, p): f"/x/{t}-{p}" for t in ("onnx", "openvino") for p in ("fp32", "int8")}}}
    plan = pair_plan(models, 2, PHONE_ENV, quick=True)
    got = [(f["backend"], s["threads"], env) for f, s, env in plan]
    assert got == [("onnxruntime", 2, None), ("onnxruntime", 1, None), ("openvino", 2, None), ("openvino", 1, PHONE_ENV)]
    assert [(s.get("fp32_hint"), s.get("int8_hint")) for _, s, _ in plan] == [
        (None, None), (None, None), ("default", None), ("f32", "f32")]  # bf16 under the AVX2 cap crashes oneDNN


def test_kernel_section_reads_the_exports_profile():
    from dpiqa_edge.bench.models_int8 import kernel_section

    prof = {"ops": {"QLinearConv": {"count": 50, "ms": 1.0, "group": "integer"},
                    "Conv": {"count": 2, "ms": 0.5, "group": "float"}},
            "groups": {"integer": {"count": 50, "ms": 1.0}, "float": {"count": 2, "ms": 0.5},
                       "convert": {"count": 10, "ms": 0.1}, "layout": {"count": 3, "ms": 0.0}, "other": {"count": 0, "ms": 0}},
            "float_convs": 2, "integer_share": 0.625}
    sec = kernel_section({"lite0 (224x224)": {"conversion": {"ort_kernels": prof}}, "old": {"conversion": {}}}, Section)
    assert sec.rows[0][:5] == ["lite0 (224x224)", 50, 2, 10, 3] and "QLinearConv 50" in sec.rows[0][5]
    assert sec.rows[1][-1] == "not profiled by this export"


def test_model_list_is_data_and_a_missing_checkpoint_is_skipped(tmp_path):
    from dpiqa_edge.bench.models import MODELS, BenchModel, build_students

    labels = [m.label for m in MODELS]
    for label in ("lite0", "lite0-pruned50", "lite0@224", "lite0-pruned50@224", "default"):
        assert label in labels
    assert {m.size for m in MODELS if m.label.endswith("@224")} == {224}
    said = []
    out = build_students(tmp_path, True, said.append, models=(BenchModel("shipped", "no/such/checkpoint", None),))
    assert out == {} and "skipping shipped" in said[0] and "no/such/checkpoint" in said[0]


def test_the_shipped_default_model_entry_resolves_to_its_checkpoint():
    # The entry's relative path is looked up inside the installed package: when this fails the benchmark
    # silently drops the model users actually run (it did once, after the benchmarks moved into bench/).
    from dpiqa_edge import models
    from dpiqa_edge.bench.models import MODELS, resolve_checkpoint

    if not models.has_default():
        pytest.skip("this install ships no default model")
    entry = next(m for m in MODELS if m.label == "default")
    assert resolve_checkpoint(entry.student) == models.DEFAULT_DIR / "student"
