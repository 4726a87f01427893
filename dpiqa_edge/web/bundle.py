"""The web page's files: our assets (package data) plus onnxruntime-web, taken from npm at export time.

Nothing is fetched from a CDN when the page runs: the folder holds every file it loads. onnxruntime-web
is pinned (version and the registry's sha512 integrity of its tarball) and fetched once per machine with
``npm pack`` into a cache (``$DPIQA_CACHE_DIR`` or ``~/.cache/dpiqa-edge``); an offline machine can be
given the tarball by copying it into that cache. Two of its builds are copied: the WASM build (SIMD +
threads: what the page runs by default and what the tests check) and the WebGPU build (its own WASM
binary, loaded only with ``?ep=webgpu``).

The camera gate's parameters the page uses come from ``runtime.gate`` itself (``CameraGate``'s defaults
and the cheap checks' constants), written into ``config.json``: the JS holds no copy of them.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import ExportError
from ..io import atomic_path, write_json, write_text
from ..runtime import gate
from ..runtime.image import MAX_PIXELS

ORT_WEB_VERSION = "1.31.1"
#: the npm registry's integrity of onnxruntime-web-1.31.1.tgz (npm view onnxruntime-web@1.31.1 dist.integrity)
ORT_WEB_INTEGRITY = "sha512-5GeH+bWQ+HxM10z7erGlsWqryrwMbSvm/1tkIsKTT48g0fI19VXVVC435t4t7VsPdSQeS7NmuZPXrQ73k82URw=="
#: backend -> (the ES module the page imports, the files it loads next to it)
ORT_BUILDS = {
    "wasm": ("ort.wasm.min.mjs", ("ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")),
    "webgpu": ("ort.webgpu.min.mjs", ("ort-wasm-simd-threaded.asyncify.mjs", "ort-wasm-simd-threaded.asyncify.wasm")),
}
ORT_FILES = tuple(f for main, extra in ORT_BUILDS.values() for f in (main, *extra))
#: our page (package data under dpiqa_edge/web/assets)
ASSETS = ("index.html", "app.mjs", "core.mjs", "style.css")

#: onnxruntime-web's licence: its package.json says MIT and every bundle's header says "Copyright (c)
#: Microsoft Corporation. Licensed under the MIT License"; the npm package carries no LICENSE file.
ORT_LICENSE = """MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def cache_dir() -> Path:
    """Where fetched packages are kept between exports."""
    if os.environ.get("DPIQA_CACHE_DIR"):
        return Path(os.environ["DPIQA_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dpiqa-edge"


def _integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def ort_web_dir(log=None) -> Path:
    """The cached folder holding :data:`ORT_FILES` of the pinned onnxruntime-web (fetched when missing).

    Raises :class:`ExportError` (one line naming what is missing) when npm is not there and no tarball is
    cached, or when the tarball is not the pinned one."""
    root = cache_dir()
    folder = root / f"onnxruntime-web-{ORT_WEB_VERSION}"
    if all((folder / f).is_file() for f in ORT_FILES):
        return folder
    tgz = root / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"
    if not tgz.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise ExportError(f"export --target web: needs onnxruntime-web {ORT_WEB_VERSION} from npm, and npm is not "
                              f"installed; install Node.js + npm, or copy onnxruntime-web-{ORT_WEB_VERSION}.tgz into {root}")
        root.mkdir(parents=True, exist_ok=True)
        if log:
            log(f"export: fetching onnxruntime-web {ORT_WEB_VERSION} from npm (once; cached in {root})")
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            proc = subprocess.run([npm, "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--pack-destination", tmp, "--silent"],
                                  capture_output=True, text=True, timeout=600)
            got = Path(tmp) / tgz.name
            if proc.returncode != 0 or not got.is_file():
                why = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise ExportError(f"export --target web: npm pack onnxruntime-web@{ORT_WEB_VERSION} failed ({why[:200]}); "
                                  f"or copy {tgz.name} into {root}")
            os.replace(got, tgz)
    if _integrity(tgz) != ORT_WEB_INTEGRITY:
        raise ExportError(f"{tgz}: not the pinned onnxruntime-web {ORT_WEB_VERSION} (sha512 differs from the npm "
                          "registry's integrity); delete it and export again")
    with atomic_path(folder) as tmp, tarfile.open(tgz, "r:gz") as tar:
        tmp.mkdir(parents=True)
        for name in ORT_FILES:
            try:
                member = tar.getmember(f"package/dist/{name}")
            except KeyError:
                raise ExportError(f"{tgz}: has no dist/{name}") from None
            with tar.extractfile(member) as src, open(tmp / name, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return folder


def gate_config() -> dict[str, Any]:
    """CameraGate's defaults and the cheap checks' constants, as the page's gate takes them."""
    defaults = {k: p.default for k, p in inspect.signature(gate.CameraGate.__init__).parameters.items()
                if k not in ("self", "threshold", "scorer")}
    return {**defaults, "dark": gate._DARK, "bright": gate._BRIGHT, "check_side": gate._CHECK_SIDE, "luma": list(gate._LUMA)}


def write_bundle(dest: Path, model_file: str, log=None) -> dict[str, Any]:
    """Write the page, onnxruntime-web and config.json into ``dest`` (which holds ``model_file``);
    returns what export.json records about it."""
    ort = ort_web_dir(log)
    dest = Path(dest)
    pkg = resources.files("dpiqa_edge.web") / "assets"
    for name in ASSETS:
        (dest / name).write_bytes((pkg / name).read_bytes())
    (dest / "ort").mkdir(exist_ok=True)
    hashes = {}
    for name in ORT_FILES:
        shutil.copyfile(ort / name, dest / "ort" / name)
        hashes[name] = hashlib.sha256((dest / "ort" / name).read_bytes()).hexdigest()
    source = {"package": "onnxruntime-web", "version": ORT_WEB_VERSION, "license": "MIT",
              "from": f"npm: onnxruntime-web@{ORT_WEB_VERSION}", "integrity": ORT_WEB_INTEGRITY, "sha256": hashes}
    write_text(dest / "ort" / "LICENSE", ORT_LICENSE)
    write_json(dest / "ort" / "VERSION.json", source)
    config = {"model": model_file, "onnxruntime_web": ORT_WEB_VERSION,
              "ort": {ep: {"module": main, "files": list(extra)} for ep, (main, extra) in ORT_BUILDS.items()},
              "gate": gate_config(), "max_pixels": MAX_PIXELS}
    write_text(dest / "config.json", json.dumps(config, indent=1) + "\n")
    return {"page": "index.html", "onnxruntime_web": source, "config": config,
            "serve": "dpiqa-edge serve DIR (sets the cross-origin isolation WASM threads need)"}
