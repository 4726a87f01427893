"""Held-out accuracy of a distilled student next to the classical peers, on the same images.

``evaluate_student(student_dir, manifest, split="test", peers=("brisque", "niqe")) -> dict``:
SRCC (with a percentile bootstrap interval over images, ``metrics.bootstrap_ci``), PLCC and KRCC of the
student and of each peer, overall and per distortion type (rows of that type only; pristine rows count
in the overall figure), and whether the student beats each peer everywhere. Peers score lower = better,
so their scores are negated before correlating with MOS. Labels on the synthetic set are synthetic
pseudo-MOS and the result says so.
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

from .. import peers as peer_mod
from ..data.manifest import mos_label, read_manifest
from ..errors import InputError
from ..metrics import bootstrap_ci, evaluate
from ..student import load_student


def _summary(pred: np.ndarray, mos: np.ndarray, kinds: list[str], n_boot: int, seed: int) -> dict:
    overall = evaluate(pred, mos)
    out = {"srcc": overall["srcc"], "plcc": overall["plcc"], "krcc": overall["krcc"],
           "srcc_ci95": list(bootstrap_ci(pred, mos, "srcc", n=n_boot, seed=seed)), "per_distortion": {}}
    groups = defaultdict(list)
    for i, k in enumerate(kinds):
        if k and k != "pristine":
            groups[k].append(i)
    for kind, idx in sorted(groups.items()):
        if len(idx) >= 3:
            out["per_distortion"][kind] = {"srcc": evaluate(pred[idx], mos[idx])["srcc"], "n": len(idx)}
    return out


PEERS = ("brisque", "niqe")


def check_peers(peers) -> None:
    unknown = [p for p in peers if p not in PEERS]
    if unknown:
        raise InputError(f"evaluate: unknown peer(s) {', '.join(map(repr, unknown))}; valid: {', '.join(PEERS)}")


def peer_scores(peers: tuple[str, ...], paths: list[str], progress: bool = False) -> dict[str, np.ndarray]:
    """Each classical peer's scores of ``paths``, negated (their own scale is lower = better) so that,
    like every model here, higher = better."""
    check_peers(peers)
    fns = {"brisque": peer_mod.brisque_scores, "niqe": peer_mod.niqe_scores}
    return {p: -fns[p](paths, progress=progress) for p in peers}


def student_scores(student_dir: str | os.PathLike, rows, batch_size: int = 32) -> np.ndarray:
    """A saved student's scores (0-100) of manifest rows: its own preprocessing, eval mode, no augmentation."""
    from .data import DistillItems, predict  # lazy: distill.data imports torch at top

    model, cfg = load_student(student_dir)
    items = DistillItems(rows, cfg.preprocessing(), None, cfg.map_size, cache=False)
    return predict(model, items, batch_size).astype(float)


def evaluate_student(student_dir: str | os.PathLike, manifest: str | os.PathLike, split: str = "test",
                     peers: tuple[str, ...] = PEERS, n_boot: int = 1000, seed: int = 0,
                     batch_size: int = 32, progress: bool = False) -> dict:
    """Student (and peers) vs MOS on one split of ``manifest`` (see the module docstring)."""
    rows = read_manifest(manifest).split(split).labelled()
    if len(rows) < 3:
        raise InputError(f"{manifest}: fewer than 3 labelled {split!r} rows to evaluate on")
    mos = np.array([r.mos for r in rows], dtype=float)
    kinds = [r.distortion for r in rows]
    scores = {"student": student_scores(student_dir, rows, batch_size)}
    scores.update(peer_scores(peers, [r.abspath for r in rows], progress))
    models = {name: _summary(s, mos, kinds, n_boot, seed) for name, s in scores.items()}
    student = models["student"]
    beats = {}
    for peer in peers:
        per = {k: v["srcc"] > models[peer]["per_distortion"].get(k, {}).get("srcc", -np.inf)
               for k, v in student["per_distortion"].items()}
        beats[peer] = {"overall": student["srcc"] > models[peer]["srcc"], "per_distortion": per,
                       "everywhere": bool(student["srcc"] > models[peer]["srcc"] and all(per.values()))}
    return {"split": split, "n": len(rows), "seed": seed, "bootstrap": n_boot,
            "label": mos_label(manifest), "student_dir": str(student_dir),
            "models": models, "beats": beats, "scores": {k: v.tolist() for k, v in scores.items()},
            "paths": [r.path for r in rows]}
