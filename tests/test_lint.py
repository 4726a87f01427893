"""ruff with the project's small rule set (pyproject.toml [tool.ruff.lint]: syntax errors and pyflakes)
over the package and the tests, so `make test` fails on an undefined name or an unused import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    pytest.importorskip("ruff", reason="ruff is not installed (the dev extra installs it: pip install -e '.[dev]')")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "dpiqa_edge", "tests"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
