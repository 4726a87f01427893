"""ruff with the project's small rule set (pyproject.toml [tool.ruff.lint]: syntax errors and pyflakes)
over the package and the tests, so `make test` fails on an undefined name or an unused import."""

from __future__ import annotations

import ast
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


# --- imports you can read: the package's own modules are imported at module top -----------------------
PACKAGE = ROOT / "dpiqa_edge"
#: at most this many imports of the package's own modules inside functions. Each one left has a reason on its
#: line: the module it names imports torch (or another optional library) at its top, and the importing module
#: must stay importable without it (the CLI, the runtime, config dataclasses). Lower it whenever the count
#: drops (issue 25 aimed at 30 or fewer).
MAX_INTERNAL_IMPORTS_IN_FUNCTIONS = 29


def internal_imports_in_functions(source: str) -> list[int]:
    """Line of every import of the package's own modules (relative, or ``dpiqa_edge...``) whose parents
    include a function or a lambda."""
    tree = ast.parse(source)
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            internal = node.level > 0 or (node.module or "").split(".")[0] == "dpiqa_edge"
        elif isinstance(node, ast.Import):
            internal = any(alias.name.split(".")[0] == "dpiqa_edge" for alias in node.names)
        else:
            continue
        up = parent.get(node)
        while up is not None and not isinstance(up, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            up = parent.get(up)
        if internal and up is not None:
            lines.append(node.lineno)
    return sorted(lines)


def test_own_modules_are_imported_at_module_top():
    counts = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        found = internal_imports_in_functions(path.read_text(encoding="utf-8"))
        if found:
            counts[path.relative_to(ROOT).as_posix()] = len(found)
    total = sum(counts.values())
    table = "\n".join(f"{n:5d}  {name}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    assert total <= MAX_INTERNAL_IMPORTS_IN_FUNCTIONS, (
        f"{total} imports of dpiqa_edge modules inside functions, at most {MAX_INTERNAL_IMPORTS_IN_FUNCTIONS}: "
        f"import them at module top (only a module that imports torch or another optional library at its top "
        f"stays inside a function, with the reason on its line)\n{table}")


@pytest.mark.parametrize("source, expected", [
    ("from .io import write_json\n\ndef f():\n    from ..errors import ConfigError\n    import numpy\n", [4]),
    ("def f():\n    if True:\n        import dpiqa_edge.io\n        from dpiqa_edge import models\n", [3, 4]),
    ("class A:\n    def m(self):\n        from . import x\n\n    from . import y\n", [3]),  # a class body is not a function
    ("g = lambda: __import__('x')\nasync def h():\n    from .x import y\n", [3]),
    ("import dpiqa_edge.runtime\nfrom dpiqa_edge.errors import InputError\ndef f():\n    import torch\n", []),
])
def test_counter_finds_imports_inside_functions_only(source, expected):
    assert internal_imports_in_functions(source) == expected
