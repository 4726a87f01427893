"""Parity: every exported artifact, run through the runtime's own loader, against the torch model.

Real images (a manifest's held-out rows, else the photographs that ship in scikit-image /
scikit-learn / matplotlib) through the ONE preprocessing; batch 1, and a second batch size where the
artifact has a dynamic batch (optimum's habit: validate at a shape other than the trace shape). The
max absolute difference of each output is logged; beyond the declared tolerance the export FAILS with
a :class:`ToleranceError` naming the output and the difference.

Tolerances are declared per (backend, precision) in :data:`TOLERANCES`, each with its reason. The
quality-map tolerance scales with the map's peak (maps are in the teacher's feature units, not 0-100):
``|diff| <= map_rel * max(1, peak |map|)``.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ExportError, ToleranceError


@dataclass(frozen=True)
class Tolerance:
    """Declared agreement between an artifact and its torch source.

    Args:
        score: max |score diff| on the 0-100 scale; ``None`` = measured only (int8: the accuracy gate judges).
        map_rel: max |map diff| relative to ``max(1, peak |map|)``.
        why: the justification recorded in export.json.
    """

    score: float | None
    map_rel: float | None
    why: str


_FP32 = Tolerance(2e-3, 1e-3, "fp32 vs fp32: only kernels and summation order differ; measured 2e-4..6e-4 on "
                  "0-100 (Lite0 64 px, B7 96 px; torch itself moves 3e-4 between batch 1 and 7), so 2e-3 "
                  "(4e-5 relative to a mid-scale score) leaves margin yet catches any real graph error")
_FP16 = Tolerance(0.5, 3e-2, "fp16 keeps ~3 significant digits per op (unit roundoff 4.9e-4); over ~50 "
                  "layers errors compound to ~1e-2 relative; 0.5 on 0-100 is far below MOS spread (std ~5-10)")
_INT8 = Tolerance(None, None, "int8 changes every activation by design: differences are measured and "
                  "logged here; the accuracy gate (--max-srcc-drop) decides")

#: (backend, precision) -> Tolerance. OpenVINO is checked with the f32 execution hint (bf16 would add
#: ~3e-3 by itself); CoreML fp16 computes every op in fp16 (ORT fp16 upcasts ops lacking fp16 kernels).
TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("onnx", "fp32"): _FP32, ("openvino", "fp32"): _FP32, ("coreml", "fp32"): _FP32,
    ("onnx", "fp16"): _FP16, ("openvino", "fp16"): _FP16,
    ("coreml", "fp16"): Tolerance(2.0, 5e-2, "CoreML fp16 stores every activation in fp16 (no fp32 islands): "
                                  "measured 1.1 on 0-100 for the Lite0 test stand-in; 2.0 is a fraction of "
                                  "MOS spread (std ~15 on 0-100); rank agreement is recorded beside it"),
    ("onnx", "int8"): _INT8, ("openvino", "int8"): _INT8, ("coreml", "int8"): _INT8,
}
#: CoreML weight-only compression (palettization, int8 weights) changes weights by design, like int8
COMPRESSED = Tolerance(None, None, "weight compression changes every weight by design: differences are "
                       "measured and logged here; the accuracy gate (--max-srcc-drop) decides")

#: photographs shipped inside packages (DATA.md); used when no manifest is given
PACKAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


@functools.lru_cache(maxsize=1)
def package_photos() -> tuple[tuple[str, np.ndarray], ...]:
    """(name, RGB uint8) of colour camera photos shipped in scikit-image and scikit-learn (cached)."""
    import importlib.util

    from skimage import data as skdata

    from ..runtime.image import decode_image

    out = [(f"skimage.data.{name}", getattr(skdata, name)()) for name in PACKAGE_PHOTOS]
    out.append(("skimage.data.stereo_motorcycle[0]", skdata.stereo_motorcycle()[0]))
    # scikit-learn's two sample JPEGs, read as files (importing sklearn.datasets takes seconds).
    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "images"
        for fname in ("china.jpg", "flower.jpg"):
            if (folder / fname).is_file():
                out.append((f"sklearn:{fname}", decode_image(folder / fname)))
    return tuple(out)


def parity_images(preprocess, manifest=None, n: int = 8) -> tuple[list[str], np.ndarray]:
    """Pick ``n`` real images and preprocess them: a manifest's test rows (then val, then any), sorted by
    path for a stable pick; package photos without a manifest. Returns (names, float32 N x 3 x H x W)."""
    if manifest is not None:
        from ..data.manifest import read_manifest

        rows = read_manifest(manifest)
        pool = rows.split("test") or rows.split("val") or rows
        chosen = sorted(pool, key=lambda r: r.path)[:n]
        names = [r.path for r in chosen]
        x = preprocess.batch([r.abspath for r in chosen])
    else:
        photos = package_photos()[:n]
        names = [name for name, _ in photos]
        x = preprocess.batch([img for _, img in photos])
    return names, x


def compare(ref: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray], tol: Tolerance,
            label: str) -> dict[str, Any]:
    """Max abs difference per output; raises ToleranceError / ExportError (shape) when out of bounds."""
    result: dict[str, Any] = {}
    for name, r, g in (("score", ref[0], got[0]), ("quality_map", ref[1], got[1])):
        if r.shape != g.shape:
            raise ExportError(f"{label}: output {name} has shape {g.shape}, the torch model gives {r.shape}")
        if not np.isfinite(g).all():
            raise ToleranceError(f"{label}: output {name} contains NaN/Inf")
        diff = float(np.max(np.abs(g.astype(np.float64) - r.astype(np.float64)))) if r.size else 0.0
        if name == "score":
            bound = tol.score
        else:
            bound = None if tol.map_rel is None else tol.map_rel * max(1.0, float(np.max(np.abs(r))))
        result[name] = {"max_abs_diff": diff, "tolerance": bound, "ok": None if bound is None else diff <= bound}
    for name, entry in result.items():
        if entry["ok"] is False:
            raise ToleranceError(f"{label}: output {name} max abs diff {entry['max_abs_diff']:.3g} exceeds "
                                 f"tolerance {entry['tolerance']:.3g} (artifact not kept)")
    return result


def _srcc(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    from ..metrics import srcc

    return round(float(srcc(a, b)), 6)


def check_parity(backend, ref: tuple[np.ndarray, np.ndarray], x: np.ndarray, *, names: Sequence[str] = (),
                 source: str = "", tolerance: Tolerance | None = None, batch_sizes: Sequence[int] | None = None,
                 log=None) -> dict[str, Any]:
    """Run ``backend`` on ``x`` and compare with the torch outputs ``ref`` at each batch size.

    Args:
        backend: a loaded ``runtime.backends`` Backend (the artifact as the runtime sees it).
        ref: torch (score, quality_map) for ``x``.
        x: float32 N x 3 x H x W in 0..1 (the shared preprocessing's output).
        names: image names (for the record).
        source: where the images came from (manifest path or "package photos").
        tolerance: defaults to ``TOLERANCES[(backend.name, stored precision)]``.
        batch_sizes: default ``(1, N)`` for dynamic-batch artifacts, ``(1,)`` otherwise.
        log: callable for one line per check (e.g. ``print``); None = silent.
    Returns a JSON-ready record; raises on failure (nothing to clean up here: the caller's atomic
    folder is discarded).
    """
    stored = getattr(backend, "stored_precision", None) or backend.metadata["precision"]
    compressed = backend.metadata.get("compression") not in (None, "none")
    tol = tolerance or (COMPRESSED if compressed else TOLERANCES[(backend.name, stored)])
    n = len(x)
    if batch_sizes is None:
        batch_sizes = (1, n) if backend.dynamic_batch and n > 1 else (1,)
    checks = []
    for bs in batch_sizes:
        label = f"parity {backend.label} batch {bs}"
        outs = [backend.run(x[i:i + bs]) for i in range(0, n, bs)]
        got = (np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs]))
        try:
            entry = compare(ref, got, tol, label)
        finally:
            if log is not None:
                d = [float(np.max(np.abs(g - r))) if g.shape == r.shape else float("nan") for g, r in zip(got, ref)]
                log(f"{label}: max |diff| score {d[0]:.3g}, quality_map {d[1]:.3g} on {n} images")
        entry["score_rank_agreement"] = _srcc(ref[0], got[0])  # SRCC artifact vs torch: lossy variants' key number
        checks.append({"batch_size": bs, **entry})
    return {
        "backend": backend.name,
        "label": backend.label,
        "emulated": bool(getattr(backend, "emulated", False)),
        "ran_precision": backend.precision,
        "images": list(names), "image_source": source, "n_images": n,
        "tolerance": asdict(tol),
        "checks": checks,
        "passed": True if tol.score is not None else None,
        "note": ("CoreML predict is macOS-only: the saved ML program was evaluated by dpiqa-edge's numpy MIL "
                 "evaluator (emulated on Linux)") if getattr(backend, "emulated", False) else "",
    }
