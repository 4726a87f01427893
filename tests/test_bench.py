"""The bench harness's logic (statistics, memory, registry, markdown) with trivial functions: no long timings."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest

from dpiqa_edge import bench, timing
from dpiqa_edge.errors import ConfigError


def test_summarize_times_known_values():
    t = timing.summarize_times([0.001 * v for v in (5, 1, 3, 2, 4)], warmup=2)
    assert t.median_ms == pytest.approx(3.0) and t.mean_ms == pytest.approx(3.0) and t.min_ms == pytest.approx(1.0)
    # p95 by linear interpolation over sorted (1..5): position 0.95*4 = 3.8 -> 4 + 0.8*(5-4) = 4.8
    assert t.p95_ms == pytest.approx(4.8)
    assert (t.repeat, t.warmup) == (5, 2)
    assert timing.ratio(10.0, 4.0) == 2.5 and np.isnan(timing.ratio(1.0, 0.0))
    with pytest.raises(ConfigError):
        timing.summarize_times([])


def test_time_fn_warms_up_then_times():
    calls = []
    t = timing.time_fn(lambda: calls.append(1), warmup=3, repeat=7)
    assert len(calls) == 10 and t.repeat == 7 and t.warmup == 3
    assert 0 <= t.min_ms <= t.median_ms <= t.p95_ms
    busy = timing.time_fn(lambda: sum(range(20000)), warmup=0, repeat=5)
    assert busy.cpu_median_ms is not None and busy.cpu_median_ms > 0  # pure-Python work is all CPU time
    with pytest.raises(ConfigError):
        timing.time_fn(lambda: None, repeat=0)


def test_peak_memory_sees_a_numpy_allocation():
    mem = timing.peak_memory(lambda: np.ones(4 * 2**20 // 8).sum())  # a 4 MiB float64 buffer
    assert mem["python_peak_bytes"] >= 4 * 2**20  # numpy reports its buffers to tracemalloc
    assert mem["rss_peak_bytes"] > 4 * 2**20 and mem["rss_peak_is"] in ("this call", "process lifetime")


def test_machine_facts():
    facts = bench.machine_facts()
    assert facts["logical_cores"] >= 1 and facts["cpu"]
    assert set(facts["libraries"]) == set(bench.LIBRARIES) and facts["libraries"]["numpy"] == np.__version__


@pytest.fixture
def fake_registry(monkeypatch):
    mod = types.ModuleType("_fake_bench")
    mod.one = lambda quick: bench.Section("One | piped", ["name", "ms"], [["a", 1.23456], ["b", float("nan")]], ["a note"])
    mod.two = lambda quick: [bench.Section("Two", ["q"], [[str(quick)]])]
    monkeypatch.setitem(sys.modules, "_fake_bench", mod)
    monkeypatch.setattr(bench, "BENCHMARKS", {"one": "_fake_bench:one", "two": "_fake_bench:two"})
    return mod


def test_run_writes_markdown_and_only_keeps_other_sections(tmp_path, fake_registry):
    out = tmp_path / "BENCHMARKS.md"
    bench.run_benchmarks(out, ["one"], command="dpiqa-edge bench --only one", log=lambda m: None)
    text = out.read_text()
    assert "## One | piped" in text and "| a | 1.23 |" in text and "| b | n/a |" in text and "- a note" in text
    assert "dpiqa-edge bench --only one" in text and "CPU:" in text and "numpy" in text
    assert "## Two" not in text
    bench.run_benchmarks(out, ["two"], quick=True, log=lambda m: None)
    text = out.read_text()
    assert text.index("## One") < text.index("## Two")  # registry order; the earlier section is kept
    assert "| True |" in text and "(quick)" in text
    with pytest.raises(ConfigError, match="unknown benchmark 'nope'"):
        bench.run_benchmarks(out, ["nope"], log=lambda m: None)


def test_a_benchmark_that_cannot_measure_here_keeps_its_stored_section(tmp_path, fake_registry):
    out = tmp_path / "BENCHMARKS.md"
    bench.run_benchmarks(out, ["two"], log=lambda m: None)
    fake_registry.two = lambda quick: None  # e.g. the GPU teacher on a machine without CUDA
    said = []
    bench.run_benchmarks(out, ["one", "two"], log=said.append)
    text = out.read_text()
    assert "## One" in text and "## Two" in text and "| False |" in text
    assert any("two: nothing measured on this machine" in m for m in said)


def test_merge_labels_sections_measured_on_another_machine(tmp_path, fake_registry):
    from click.testing import CliRunner

    from dpiqa_edge.cli import main

    here, there = tmp_path / "B.md", tmp_path / "gpu" / "B.md"
    bench.run_benchmarks(here, ["one"], log=lambda m: None)
    bench.run_benchmarks(there, ["two"], log=lambda m: None)
    store = json.loads(there.with_suffix(".json").read_text())
    store["sections"]["two"]["machine"] = {**store["sections"]["two"]["machine"], "gpu": "NVIDIA H200",
                                           "cpu": "Some Xeon"}
    there.with_suffix(".json").write_text(json.dumps(store))
    res = CliRunner().invoke(main, ["bench", "--merge", str(there.with_suffix(".json")), "--out", str(here)])
    assert res.exit_code == 0, res.output
    text = here.read_text()
    one, two = text[text.index("## One"):text.index("## Two")], text[text.index("## Two"):]
    assert "another machine" not in one  # measured here: the header's machine
    assert "on another machine: NVIDIA H200, Some Xeon" in two and "| False |" in two
    merged = json.loads(here.with_suffix(".json").read_text())["sections"]
    assert merged["two"]["machine"]["gpu"] == "NVIDIA H200" and merged["one"]["machine"]["cpu"] != "Some Xeon"
    # a file that is not a harness store: one clear error, nothing written
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    before = here.read_text()
    res = CliRunner().invoke(main, ["bench", "--merge", str(bad), "--out", str(here)])
    assert res.exit_code != 0 and "not a BENCHMARKS.json written by the harness" in res.output
    assert here.read_text() == before


def test_cli_bench_list_and_bad_name(tmp_path, fake_registry):
    from click.testing import CliRunner

    from dpiqa_edge.cli import main

    res = CliRunner().invoke(main, ["bench", "--list"])
    assert res.exit_code == 0 and "one" in res.output and "two" in res.output
    res = CliRunner().invoke(main, ["bench", "--only", "two", "--out", str(tmp_path / "B.md")])
    assert res.exit_code == 0 and (tmp_path / "B.md").is_file() and (tmp_path / "B.json").is_file()
    assert CliRunner().invoke(main, ["bench", "--only", "nope", "--out", str(tmp_path / "B.md")]).exit_code == 2


def test_registry_entries_resolve():
    # Every registered benchmark points at a real function (imports only that stage's module).
    for name in bench.BENCHMARKS:
        assert callable(bench._resolve(name))


def test_peak_memory_without_tracing():
    mem = timing.peak_memory(lambda: np.ones(1000).sum(), trace_python=False)
    assert mem["python_peak_bytes"] is None and mem["rss_peak_bytes"] > 0
