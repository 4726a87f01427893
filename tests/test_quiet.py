"""Quiet by default: what libraries print inside ``third_party_output`` lands in the log file, the project's
own lines stay on the terminal, and ``--verbose`` / ``DPIQA_VERBOSE=1`` leaves everything on the terminal.

The redirection works on file descriptors, so it is checked in a child process with real pipes (pytest's
own capture would hide the difference)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dpiqa_edge.quiet import LOG_NAME, VERBOSE_ENV

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import logging, os, sys, warnings
from dpiqa_edge.quiet import third_party_output
early = logging.getLogger("lib.early"); early.addHandler(logging.StreamHandler(sys.stdout)); early.setLevel(logging.INFO)
print("mine: before", flush=True)
with third_party_output(sys.argv[1]) as log:
    print("lib: print")
    print("lib: stderr", file=sys.stderr)
    os.write(1, b"lib: native fd1\n"); os.write(2, b"lib: native fd2\n")
    early.info("lib: early logger")
    late = logging.getLogger("lib.late"); h = logging.StreamHandler(); late.addHandler(h); h.flush = sys.stderr.flush
    late.warning("lib: late logger")
    warnings.warn("lib: a warning")
late.warning("mine: late logger after the block")
print("mine: after", log is None, flush=True)
"""


def _child(tmp_path: Path, env_extra: dict[str, str]) -> tuple[subprocess.CompletedProcess, Path]:
    log = tmp_path / "out" / LOG_NAME
    env = {k: v for k, v in os.environ.items() if k != VERBOSE_ENV}
    env.update(PYTHONPATH=str(ROOT), **env_extra)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(log)], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc, log


def test_library_output_goes_to_the_log_and_the_projects_stays(tmp_path):
    proc, log = _child(tmp_path, {})
    terminal = proc.stdout + proc.stderr
    assert "lib:" not in terminal, terminal
    assert "mine: before" in proc.stdout and "mine: after False" in proc.stdout
    # a handler created inside the block (transformers binds sys.stderr.flush) still works afterwards
    assert "mine: late logger after the block" in proc.stderr
    text = log.read_text()
    for line in ("lib: print", "lib: stderr", "lib: native fd1", "lib: native fd2", "lib: early logger",
                 "lib: late logger", "lib: a warning"):
        assert line in text, (line, text)
    assert "mine:" not in text


def test_verbose_leaves_everything_on_the_terminal(tmp_path):
    proc, log = _child(tmp_path, {VERBOSE_ENV: "1"})
    terminal = proc.stdout + proc.stderr
    assert "lib: print" in proc.stdout and "lib: native fd2" in proc.stderr and "lib: a warning" in terminal
    assert "mine: after True" in proc.stdout and not log.exists()


def test_verbose_flag_of_the_cli_reaches_workers_through_the_environment(monkeypatch):
    from dpiqa_edge.cli import main

    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    res = CliRunner().invoke(main, ["bench", "--list"])
    assert res.exit_code == 0 and VERBOSE_ENV not in os.environ
    res = CliRunner().invoke(main, ["--verbose", "bench", "--list"])
    assert res.exit_code == 0 and os.environ[VERBOSE_ENV] == "1"


def test_export_keeps_the_log_beside_the_artifact_but_out_of_its_file_list(tmp_path, monkeypatch):
    from dpiqa_edge.export import export_model
    from dpiqa_edge.runtime.backends import load_backend
    from dpiqa_edge.student import StudentConfig, build_student, save_student

    monkeypatch.delenv(VERBOSE_ENV, raising=False)
    cfg = StudentConfig(name="lite0", input_size=64, map_size=8)
    save_student(build_student(cfg).eval(), cfg, tmp_path / "student")
    out = export_model(tmp_path / "student", "onnx", "fp32", tmp_path / "export", parity_images=2, log=None)
    record = json.loads((out / "export.json").read_text())
    assert (out / LOG_NAME).is_file() and LOG_NAME not in record["files"]
    assert load_backend(out).name == "onnx"  # the size check over export.json's files still passes


def test_check_on_a_coreml_artifact_is_quiet_and_reads_it_without_torch(tmp_path):
    """``check`` on an .mlpackage (Linux: the saved program evaluated): coremltools' version warnings and
    "Failed to load _MLModelProxy" lines go to the library log, and coremltools is imported without torch
    and scikit-learn (their import was ~12 of the ~18 s such a check took)."""
    import pytest

    pytest.importorskip("coremltools")
    pytest.importorskip("torch")
    from test_export import make_student

    from dpiqa_edge.export import export_model
    from dpiqa_edge.export.parity import package_photos

    photos = tmp_path / "photos"
    photos.mkdir()
    from PIL import Image

    for name, rgb in package_photos()[:3]:
        Image.fromarray(rgb).save(photos / f"{name.replace(':', '_')}.png")
    from dpiqa_edge.data.manifest import Row, write_manifest

    rows = [Row(p.name, 50.0 + i, "val" if i < 2 else "test") for i, p in enumerate(sorted(photos.iterdir()))]
    manifest = write_manifest(photos / "manifest.csv", rows)
    student = make_student(tmp_path / "runs", "lite0", manifest, size=64)
    out = export_model(student, "coreml", out_dir=tmp_path / "coreml", parity_images=2, log=None)
    env = {k: v for k, v in os.environ.items() if k != VERBOSE_ENV}
    env.update(PYTHONPATH=str(ROOT), DPIQA_CACHE_DIR=str(tmp_path / "cache"))
    photo = next(photos.glob("*.png"))
    res = subprocess.run([sys.executable, "-m", "dpiqa_edge.cli", "check", "--model", str(out), str(photo)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode in (0, 1), res.stderr
    noise = ("coremltools", "Failed to load", "Torch version", "scikit-learn", "Warning")
    assert not [line for line in (res.stdout + res.stderr).splitlines() if any(n in line for n in noise)], res.stderr
    assert "emulated on Linux" in res.stdout
    assert "Failed to load" in (tmp_path / "cache" / LOG_NAME).read_text()
    probe = ("import sys; from dpiqa_edge.runtime.scorer import read_only_coreml, QualityScorer; "
             f"read_only_coreml([{str(out)!r}]); s = QualityScorer({str(out)!r}); "
             "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().splitlines()[-1] == "[]", res.stdout + res.stderr
