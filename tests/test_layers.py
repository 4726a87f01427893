"""The import-layer contract: the package's imports follow the road, checked over the source with ``ast``.

Every module of ``dpiqa_edge`` belongs to one unit (a package or a module) and every unit to one layer.
A module may import its own unit and any unit of a lower layer; never a unit of a higher layer, and
never a peer unit of its own layer (peers such as teacher and student stay independent). Imports inside
functions count exactly like top-level ones: placement is not a licence. The runtime layer may import
only the foundation and itself, and no training-side library, so it runs with numpy + Pillow + one
backend. Names with a leading underscore are private to their unit.

Why the runtime sits low: it is the one decoder, the one preprocessing and the one artifact loader
that every stage shares (training reads images through ``runtime.image``/``runtime.preprocess`` so that
training and deployment see the same pixels), so it is the first layer above the foundation, not the
last stage of the road. ``docs/ARCHITECTURE.md`` shows the same table.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "dpiqa_edge"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

#: lowest first; units in one tuple are peers. A unit is a package or module path (longest prefix wins).
LAYERS: list[tuple[str, ...]] = [
    ("dpiqa_edge", "dpiqa_edge.errors"),                                # version, score range, error types
    ("dpiqa_edge.io",),                                                 # atomic writes
    ("dpiqa_edge.config", "dpiqa_edge.hub", "dpiqa_edge.metrics", "dpiqa_edge.timing", "dpiqa_edge.quiet",
     "dpiqa_edge.models"),                                              # foundation helpers, shipped-model paths
    ("dpiqa_edge.runtime",),                                            # decode, preprocess, backends, scorer
    ("dpiqa_edge.data", "dpiqa_edge.peers"),                            # datasets, synthetic set, classic IQA
    ("dpiqa_edge.training", "dpiqa_edge.losses"),                       # the shared loop and shared losses
    ("dpiqa_edge.teacher", "dpiqa_edge.student"),
    ("dpiqa_edge.distill",),
    ("dpiqa_edge.quantize",),                                           # pruning + INT8 passes
    ("dpiqa_edge.web",),                                                # the browser page a web export bundles
    ("dpiqa_edge.export",),
    ("dpiqa_edge.report", "dpiqa_edge.authors"),                        # read exports / write checkpoints
    ("dpiqa_edge.bench",),                                              # every benchmark + the harness
    ("dpiqa_edge.demo",),
    ("dpiqa_edge.default_model",),                                      # the shipped model's build and card
    ("dpiqa_edge.cli",),
]
FOUNDATION = 3  # layers below the runtime
#: libraries of training and conversion that the on-device runtime must never import
TRAINING_LIBRARIES = {"torch", "torchvision", "timm", "diffusers", "transformers", "accelerate", "torch_pruning",
                      "nncf", "safetensors", "tqdm"}

LAYER_OF = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(name: str, is_module: bool = False) -> str | None:
    """The unit a dotted module (or ``module.attribute``) name belongs to; None if no unit claims it. The root
    claims only itself and its attributes (``dpiqa_edge.__version__``), never a module nobody assigned."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        prefix = ".".join(parts[:k])
        if prefix in LAYER_OF and (k > 1 or len(parts) == 1 or not (is_module or _is_module(parts[1]))):
            return prefix
    return None


def _is_module(child: str) -> bool:
    """Whether ``dpiqa_edge.<child>`` is a module or package (else it is an attribute of the root)."""
    return (ROOT / f"{child}.py").is_file() or (ROOT / child / "__init__.py").is_file()


def imports_of(module: str, source: str, is_package: bool = False) -> list[tuple[int, str]]:
    """Every import in ``source`` (any depth: inside functions too) as ``(line, absolute dotted name)``;
    ``from X import a`` yields ``X.a`` so that importing a submodule by name is seen."""
    pkg = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            found += [(node.lineno, f"{origin}.{a.name}") for a in node.names]
    return found


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """What ``module`` (dotted name) with ``source`` imports against the contract, one line each."""
    me = unit_of(module, is_module=True)
    if me is None:
        return [f"{module}: no layer claims this module; add it to LAYERS in tests/test_layers.py"]
    mine = LAYER_OF[me]
    out = []
    for line, name in imports_of(module, source, is_package):
        where = f"{module}:{line} imports {name}"
        top = name.split(".")[0]
        if top != PACKAGE:
            if me == "dpiqa_edge.runtime" and top in TRAINING_LIBRARIES:
                out.append(f"{where}: the runtime never imports training-side libraries")
            continue
        other = unit_of(name)
        if other is None:
            out.append(f"{where}: no layer claims {name}")
            continue
        if other == me:
            continue
        theirs = LAYER_OF[other]
        if me == "dpiqa_edge.runtime" and theirs >= FOUNDATION:
            out.append(f"{where}: the runtime imports only the foundation ({other} is a later stage)")
        elif theirs > mine:
            out.append(f"{where}: {me} (layer {mine}) imports a later stage {other} (layer {theirs})")
        elif theirs == mine:
            out.append(f"{where}: {me} and {other} are peers and must not import each other")
        elif name.rpartition(".")[2].startswith("_") and not name.rpartition(".")[2].startswith("__"):
            out.append(f"{where}: a private name of {other}; make it public or keep it in its unit")
    return out


def package_modules():
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        yield ".".join(parts), path, is_package


def test_every_import_follows_the_layer_order():
    found = []
    for module, path, is_package in package_modules():
        found += violations(module, path.read_text(), is_package)
    assert not found, "imports against the layer order:\n" + "\n".join(found)


def test_every_layer_unit_exists():
    for unit in LAYER_OF:
        rel = unit.split(".")[1:]
        path = ROOT.joinpath(*rel) if rel else ROOT
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), f"{unit}: no such module"


# --- the checker itself fails on new violations ---------------------------------------------------------
@pytest.mark.parametrize("module, source, expected", [
    ("dpiqa_edge.runtime.fake", "def f():\n    from ..export import export_model\n", "later stage"),
    ("dpiqa_edge.runtime.fake", "def f():\n    import torch\n", "training-side"),
    ("dpiqa_edge.runtime.backends.fake", "from ...student import load_student\n", "only the foundation"),
    ("dpiqa_edge.teacher.fake", "from ..distill.losses import rank_loss\n", "later stage"),
    ("dpiqa_edge.quantize.fake", "import dpiqa_edge.export.parity\n", "later stage"),
    ("dpiqa_edge.student.fake", "from ..teacher import model\n", "peers"),
    ("dpiqa_edge.export.fake", "from ..runtime.backends.coreml_mil import _load\n", "private"),
    ("dpiqa_edge.data.fake", "from .. import bench\n", "later stage"),
    ("dpiqa_edge.newstage", "import numpy\n", "no layer claims"),
])
def test_checker_flags_a_violation(module, source, expected):
    found = violations(module, source)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize("module, source", [
    ("dpiqa_edge.export.fake", "from ..runtime.artifact import encode_metadata\nfrom .. import __version__\n"),
    ("dpiqa_edge.runtime.fake", "import numpy\nfrom ..errors import InputError\nfrom .image import decode_image\n"),
    ("dpiqa_edge.distill.fake", "def f():\n    from ..teacher.targets import Targets\n    import torch\n"),
    ("dpiqa_edge.bench.fake", "from . import Section\nfrom ..timing import time_fn\nfrom .models import _calib\n"),
])
def test_checker_accepts_imports_down_the_road(module, source):
    assert violations(module, source) == []


# --- no import cycles ------------------------------------------------------------------------------------
#: cycles allowed to remain, each as the sorted module set of one cycle: none (the teacher's loading <-> model,
#: the last one, was cut by moving ``build_full_teacher`` into ``teacher.model``). Kept exact, so a listed cycle
#: that is cut fails the test until its entry goes.
KNOWN_CYCLES: list[tuple[str, ...]] = []


def module_of(name: str, modules: set[str]) -> str | None:
    """The package module a dotted import name lands in (``dpiqa_edge.io.write_json`` -> ``dpiqa_edge.io``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def module_graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """module -> the package modules it imports, at module top and inside functions alike (``imports_of``),
    from ``{module: (source, is_package)}``. A submodule's implicit import of its parent package is not an
    arrow: Python finishes a package's ``__init__`` before it runs any submodule it does not import itself."""
    modules = set(sources)
    graph = {}
    for module, (source, is_package) in sources.items():
        targets = {module_of(name, modules) for _, name in imports_of(module, source, is_package)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module, as a path that returns to its
    first module (``a -> b -> a``), sorted; Tarjan's algorithm, iterative."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(set(component))
    return sorted(_cycle_path(graph, component) for component in components)


def _cycle_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path inside ``component`` from its first module back to itself (breadth first)."""
    start = min(component)
    parent = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & component):
            if child == start:
                path = [node]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if child not in parent:
                parent[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def test_the_import_graph_has_no_cycles():
    sources = {module: (path.read_text(), is_package) for module, path, is_package in package_modules()}
    cycles = find_cycles(module_graph(sources))
    new = [c for c in cycles if tuple(sorted(set(c))) not in KNOWN_CYCLES]
    assert not new, "import cycles (imports inside functions count):\n" + "\n".join(" -> ".join(c) for c in new)
    gone = set(KNOWN_CYCLES) - {tuple(sorted(set(c))) for c in cycles}
    assert not gone, f"cut, delete from KNOWN_CYCLES: {sorted(gone)}"


# --- the cycle checker itself finds a cycle ----------------------------------------------------------------
def test_checker_flags_a_cycle_through_an_import_inside_a_function():
    sources = {
        "dpiqa_edge.teacher": ("", True),
        "dpiqa_edge.teacher.loading": ("from .model import TeacherConfig\n", False),
        "dpiqa_edge.teacher.model": ("import torch\n\ndef build():\n    from .prompts import embed\n", False),
        "dpiqa_edge.teacher.prompts": ("from ..io import atomic_path\n\ndef f():\n    from . import loading\n", False),
        "dpiqa_edge.io": ("import os\n", False),
    }
    graph = module_graph(sources)
    assert graph["dpiqa_edge.teacher.prompts"] == {"dpiqa_edge.io", "dpiqa_edge.teacher.loading"}
    assert find_cycles(graph) == [["dpiqa_edge.teacher.loading", "dpiqa_edge.teacher.model",
                                   "dpiqa_edge.teacher.prompts", "dpiqa_edge.teacher.loading"]]


def test_checker_accepts_a_graph_without_cycles():
    sources = {
        "dpiqa_edge.runtime": ("from .scorer import QualityScorer\n", True),
        "dpiqa_edge.runtime.scorer": ("from .image import decode_image\nfrom ..io import write_json\n", False),
        "dpiqa_edge.runtime.image": ("from . import preprocess\n", False),  # its package: no arrow back
        "dpiqa_edge.runtime.preprocess": ("import numpy\n", False),
        "dpiqa_edge.io": ("def f():\n    from .errors import ConfigError\n", False),
        "dpiqa_edge.errors": ("", False),
    }
    graph = module_graph(sources)
    assert graph["dpiqa_edge.runtime.image"] == {"dpiqa_edge.runtime.preprocess"}
    assert find_cycles(graph) == []


def test_checker_reports_each_cycle_once_with_its_path():
    graph = {"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}, "e": {"a"}}
    assert find_cycles(graph) == [["a", "b", "a"], ["c", "d", "c"]]  # e only leads into a cycle
