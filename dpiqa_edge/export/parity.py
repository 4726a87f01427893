"""Parity: every exported artifact, run through the runtime's own loader, against the torch model.

Real images (a manifest's held-out rows, else the photographs that ship in scikit-image /
scikit-learn / matplotlib) through the ONE preprocessing; batch 1, and a second batch size where the
artifact has a dynamic batch (optimum's habit: validate at a shape other than the trace shape). The
max absolute difference of each output is logged; beyond the declared tolerance the export FAILS with
a :class:`ToleranceError` naming the output and the difference.

Tolerances are declared per (backend, precision) in the format table (``runtime/formats.py``), each
with its reason; :data:`TOLERANCES` is the same table keyed by (backend, precision). The
quality-map tolerance scales with the map's peak (maps are in the teacher's feature units, not 0-100):
``|diff| <= map_rel * max(1, peak |map|)``.
"""

from __future__ import annotations

import functools
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ExportError, ToleranceError
from ..runtime.formats import COMPRESSED, FORMATS, Tolerance
from ..data.manifest import read_manifest
from ..metrics import srcc
from ..runtime.image import decode_image
from .source import NOISE_FACTOR

__all__ = ["COMPRESSED", "PACKAGE_PHOTOS", "TOLERANCES", "Tolerance", "check_parity", "compare", "package_photos",
           "parity_images"]


#: (backend, precision) -> Tolerance: the format table's rows (``runtime/formats.py``), each with its reason
TOLERANCES: dict[tuple[str, str], Tolerance] = {
    (f.name, precision): tol for f in FORMATS.values() for precision, tol in f.tolerances.items()}

#: photographs shipped inside packages (DATA.md); used when no manifest is given
PACKAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


@functools.lru_cache(maxsize=1)
def package_photos() -> tuple[tuple[str, np.ndarray], ...]:
    """(name, RGB uint8) of colour camera photos shipped in scikit-image and scikit-learn (cached)."""
    import importlib.util

    from skimage import data as skdata


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


def model_tolerance(floor: Tolerance, noise: dict[str, Any] | None) -> Tolerance:
    """The declared tolerance, widened to the source model's own spread where that is larger:
    ``max(floor, NOISE_FACTOR x noise)`` for the score and the map (``export.source.source_noise``)."""
    if not noise or floor.score is None:
        return floor
    score = max(floor.score, NOISE_FACTOR * float(noise["score"]))
    map_rel = floor.map_rel if floor.map_rel is None else max(floor.map_rel, NOISE_FACTOR * float(noise["map_rel"]))
    if score == floor.score and map_rel == floor.map_rel:
        why = (f"{floor.why}. The source model's own spread (batch 1 vs {noise.get('batch', {}).get('batch_size', 1)}, "
               f"threads) was {noise['score']:.2g} on the score: {NOISE_FACTOR:g}x that is within this floor")
    else:
        why = (f"max(floor, {NOISE_FACTOR:g} x the source model's own spread): the source moved {noise['score']:.3g} "
               f"(score) and {noise['map_rel']:.3g} (map, relative) between batch 1 and batch N and between thread "
               f"counts on these images; another runtime reorders every sum where those reorder some, so the artifact "
               f"may differ by several times that, while a wrong weight or op moves scores far more. Floor: {floor.why}")
    return Tolerance(score, map_rel, why)


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
        tolerance: defaults to the format row's ``tolerances[stored precision]``.
        batch_sizes: default ``(1, N)`` for dynamic-batch artifacts, ``(1,)`` otherwise.
        log: callable for one line per check (e.g. ``print``); None = silent.
    Returns a JSON-ready record; raises on failure (nothing to clean up here: the caller's atomic
    folder is discarded).
    """
    stored = getattr(backend, "stored_precision", None) or backend.metadata["precision"]
    compressed = backend.metadata.get("compression") not in (None, "none")
    tol = tolerance or (COMPRESSED if compressed else FORMATS[backend.name].tolerances[stored])
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
