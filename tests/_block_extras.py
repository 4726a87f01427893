"""Run ``dpiqa-edge`` with optional dependencies unimportable (as after a plain ``pip install dpiqa-edge``):
``python tests/_block_extras.py ARGS...``. A ``sys.meta_path`` finder refuses the top-level modules the extras
bring (``errors.MODULE_EXTRA``) except the base install's onnxruntime, and ``find_spec`` reports them absent.
``DPIQA_KEEP_EXTRAS=onnx,openvino`` keeps those extras' modules importable (a torch-free export install)."""

import importlib.abc
import importlib.util
import os
import sys

from dpiqa_edge.errors import MODULE_EXTRA

KEEP = {e for e in os.environ.get("DPIQA_KEEP_EXTRAS", "").split(",") if e}
BASE = {"onnxruntime"}
#: what a kept extra's packages install with them (pip resolves nncf to safetensors, scipy and scikit-learn)
DEPENDS = {"openvino": {"safetensors", "scipy", "sklearn"}}
BASE |= {m for extra in KEEP for m in DEPENDS.get(extra, ())}
BLOCKED = {name for name, extra in MODULE_EXTRA.items() if name not in BASE and extra not in KEEP}


class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


for mod in [m for m in sys.modules if m.split(".")[0] in BLOCKED]:
    del sys.modules[mod]
sys.meta_path.insert(0, _Block())
_find_spec = importlib.util.find_spec


def _find_spec_blocked(name, package=None):
    if name.split(".")[0] in BLOCKED:
        return None
    return _find_spec(name, package)


importlib.util.find_spec = _find_spec_blocked

if __name__ == "__main__":
    from dpiqa_edge.cli import main

    sys.argv[0] = "dpiqa-edge"
    main()
