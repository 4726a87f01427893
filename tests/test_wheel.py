"""The wheel as users get it (issue 24): built from this tree, installed into a virtual environment holding only
the base dependencies (numpy, Pillow, click, rich, onnxruntime from PyPI; never torch), then ``dpiqa-edge check``
on a photo and the README's Python example, run from an unrelated folder.

The environment is cached across sessions (``$DPIQA_CACHE_DIR`` or ``~/.cache/dpiqa-edge``, keyed by the base
dependency list): the first run downloads the base dependencies (~1 min), later runs reinstall only the wheel.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest

from test_base_install import FRAMES, _readme_block

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

#: never in a base install
HEAVY = ("torch", "onnx", "openvino", "nncf", "coremltools", "scikit-image", "scipy")


def _base_deps() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=kw.pop("timeout", 900), **kw)


def _shared_dir(tmp_path_factory, config) -> Path:
    """One folder for this whole test run: under xdist every worker has its own basetemp, and their common
    parent is this run's (``pytest-N``); without xdist the basetemp itself is."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if hasattr(config, "workerinput") else base


def _clean_source(dst: Path) -> Path:
    """A copy of what the wheel is built from, so that the build never reads or writes this checkout's
    ``build/`` (a stale ``build/lib`` would ship deleted modules; two builds there race on its dist-info)."""
    dst.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(ROOT / "dpiqa_edge", dst / "dpiqa_edge", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


@pytest.fixture(scope="session")
def wheel(tmp_path_factory, pytestconfig) -> Path:
    """Built once per test run, whichever xdist worker gets here first; the others wait on the lock."""
    from filelock import FileLock

    shared = _shared_dir(tmp_path_factory, pytestconfig)
    out = shared / "wheel"
    with FileLock(str(shared / "wheel.lock")):
        found = sorted(out.glob("dpiqa_edge-*.whl"))
        if not found:
            src = _clean_source(shared / "wheel-src")
            res = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", out, src],
                       cwd=src)
            assert res.returncode == 0, res.stderr[-2000:]
            found = sorted(out.glob("dpiqa_edge-*.whl"))
    (whl,) = found
    return whl


@pytest.fixture(scope="session")
def base_venv(wheel, tmp_path_factory, pytestconfig) -> Path:
    """The cached base-only environment with this run's wheel in it. Creating it and installing the wheel
    happen under one lock, so two xdist workers never pip into the same environment at once."""
    from filelock import FileLock

    deps = _base_deps()
    key = hashlib.sha256("\n".join([sys.version, *deps]).encode()).hexdigest()[:12]
    cache = Path(os.environ.get("DPIQA_CACHE_DIR") or Path.home() / ".cache" / "dpiqa-edge")
    cache.mkdir(parents=True, exist_ok=True)
    env_dir = cache / f"wheel-venv-{key}"
    py = env_dir / "bin" / "python"
    shared = _shared_dir(tmp_path_factory, pytestconfig)
    with FileLock(str(cache / f"wheel-venv-{key}.lock")):
        if not (env_dir / ".deps-installed").is_file():
            shutil.rmtree(env_dir, ignore_errors=True)
            venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
            res = _run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", *deps])
            if res.returncode != 0:
                pytest.skip(f"cannot install the base dependencies from the package index: {res.stderr.strip()[-300:]}")
            (env_dir / ".deps-installed").write_text("\n".join(deps) + "\n")
        # the wheel itself, fresh every run (once: the marker is per run), with its declared dependencies
        # (already there: nothing downloads)
        marker = shared / "wheel-installed"
        if not marker.is_file():
            res = _run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--force-reinstall", "--no-deps",
                        wheel])
            assert res.returncode == 0, res.stderr[-2000:]
            res = _run([py, "-m", "pip", "check"])
            assert res.returncode == 0, res.stdout + res.stderr
            marker.write_text(str(wheel) + "\n")
    return env_dir


def test_the_base_install_holds_no_heavy_package(base_venv):
    names = _run([base_venv / "bin" / "python", "-m", "pip", "list", "--format=freeze"]).stdout.lower()
    installed = {line.split("==")[0] for line in names.splitlines()}
    assert not installed & set(HEAVY), installed & set(HEAVY)
    assert {"onnxruntime", "numpy", "pillow", "click", "dpiqa-edge"} <= installed


def test_check_scores_a_photo_from_an_unrelated_folder(base_venv, tmp_path):
    photo = tmp_path / "photo.jpg"
    shutil.copyfile(FRAMES / "test_coffee_pristine_0.jpg", photo)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DPIQA_TRACEBACK")}
    res = _run([base_venv / "bin" / "dpiqa-edge", "check", "--json", "photo.jpg"], cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    import json

    rec = json.loads(res.stdout.strip().splitlines()[-1])
    shipped = json.loads((Path(__file__).parents[1] / "dpiqa_edge/models/default/onnx-int8/export.json").read_text())
    threshold = shipped["gate_threshold"]["threshold"]
    assert rec["verdict"] == "keep" and threshold <= rec["score"] <= 100  # a pristine held-out photo
    # the module ran from the installed wheel, not from this checkout
    where = _run([base_venv / "bin" / "python", "-c", "import dpiqa_edge; print(dpiqa_edge.__file__)"], cwd=tmp_path, env=env)
    assert str(base_venv) in where.stdout
    # an export that needs an extra says which, in one line, exit 2
    res = _run([base_venv / "bin" / "dpiqa-edge", "export", "--model", "default", "--target", "openvino"], cwd=tmp_path, env=env)
    assert res.returncode == 2 and "pip install 'dpiqa-edge[openvino]'" in res.stderr and "Traceback" not in res.stderr


def test_the_readme_example_runs_on_the_wheel(base_venv, tmp_path):
    shutil.copyfile(FRAMES / "test_coffee_pristine_0.jpg", tmp_path / "photo.jpg")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = _run([base_venv / "bin" / "python", "-c", _readme_block("## Use it from Python")], cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("keep") >= 3
