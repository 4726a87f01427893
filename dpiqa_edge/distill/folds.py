"""k grouped folds: how well a distillation recipe generalises to unseen scenes, on a small set.

One fixed test split of a small set (the synthetic set's test split is 3 scenes) measures the scenes it
happens to hold as much as the recipe. ``distill_folds`` instead trains ``k`` students with the same
recipe: fold ``i`` tests on one group of scenes, picks its best epoch on the next group (``i+1 mod k``)
and trains on the rest. Every labelled image is then predicted exactly once, by a student that never
saw its scene. The result judges the student next to the classical peers on the same images twice: per
fold, averaged over the folds (``fold_mean``, overall and per distortion: each fold's student is
compared on its own test scenes), and pooled over every out-of-fold prediction (``pooled``, with a
bootstrap interval; harsher on the students, whose calibrations differ from fold to fold).

Out folder: ``fold-<i>/`` (a normal student folder each; a re-run resumes or reuses it) and
``folds.json`` (written last, atomically). The teacher targets, when given, come from one teacher: the
students only ever read maps of their own training images.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from ..data.manifest import mos_label, read_manifest
from ..data.splits import grouped_folds
from ..errors import InputError
from ..io import write_json
from .config import DistillConfig
from .evaluate import PEERS, _summary, check_peers, peer_scores, student_scores
from .train import _say, distill


def _mean(values) -> float:
    """Mean of the finite values (a distortion a fold's scenes lack counts in no fold's mean), else NaN."""
    v = np.array([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    return float(v.mean()) if len(v) else float("nan")


def fold_splits(rows, k: int, seed: int = 0) -> list[dict[str, str]]:
    """Per fold, ``path -> split``: fold i's groups ``test``, fold i+1's ``val``, the others ``train``."""
    folds = grouped_folds([r.group for r in rows], k, seed)
    fold_of = np.empty(len(rows), dtype=int)
    for f, (_, test_idx) in enumerate(folds):
        fold_of[test_idx] = f
    return [{r.path: "test" if fold_of[j] == i else "val" if fold_of[j] == (i + 1) % k else "train"
             for j, r in enumerate(rows)} for i in range(k)]


def distill_folds(manifest: str | os.PathLike, out_dir: str | os.PathLike, cfg=None, k: int = 4,
                  targets_dir: str | os.PathLike | None = None, seed: int = 0,
                  peers: tuple[str, ...] | None = None, n_boot: int = 1000, quiet: bool = False) -> dict:
    """Train ``k`` students on grouped folds of ``manifest``'s labelled rows (all splits); returns the
    content of ``out_dir/folds.json`` (see the module docstring). ``peers``: default BRISQUE and NIQE."""
    cfg = cfg or DistillConfig()
    peers = PEERS if peers is None else tuple(peers)
    check_peers(peers)  # before K trainings, not after
    out_dir, manifest = Path(out_dir), Path(manifest)
    rows = read_manifest(manifest).labelled()
    if len(rows) < 3:
        raise InputError(f"{manifest}: fewer than 3 labelled rows for grouped folds")
    plans = fold_splits(rows, k, seed)
    tests = [np.array([j for j, r in enumerate(rows) if plan[r.path] == "test"]) for plan in plans]

    # 1. One student per fold; each predicts its own test scenes.
    pred, per_fold = np.full(len(rows), np.nan), []
    for i, (plan, test) in enumerate(zip(plans, tests)):
        scenes = sorted({rows[j].group for j in test})
        _say(f"folds: fold {i + 1}/{k}: test scenes {scenes}", quiet)
        fold_dir = distill(manifest, out_dir / f"fold-{i}", cfg, targets_dir, quiet=quiet, splits=plan)
        pred[test] = student_scores(fold_dir, [rows[j] for j in test], cfg.eval_batch_size)
        per_fold.append({"fold": i, "test_scenes": scenes, "n": len(test), "student": str(fold_dir)})

    # 2. The peers on the same images; every model judged per fold (on that fold's test images), then
    #    averaged over folds - the fair comparison, since each fold's student has its own calibration -
    #    and pooled over all out-of-fold predictions (harsher on the students: their offsets differ).
    mos = np.array([r.mos for r in rows], dtype=float)
    kinds = np.array([r.distortion for r in rows], dtype=object)
    scores = {"student": pred, **peer_scores(peers, [r.abspath for r in rows], progress=not quiet)}
    for f, idx in zip(per_fold, tests):
        f["models"] = {name: _summary(s[idx], mos[idx], list(kinds[idx]), n_boot, seed) for name, s in scores.items()}
        f["srcc"] = f["models"]["student"]["srcc"]
    fold_mean = {name: {"srcc": _mean([f["models"][name]["srcc"] for f in per_fold]),
                        "per_distortion": {kind: _mean([f["models"][name]["per_distortion"].get(kind, {}).get("srcc")
                                                        for f in per_fold])
                                           for kind in sorted({d for d in kinds if d and d != "pristine"})}}
                 for name in scores}
    pooled = {name: _summary(s, mos, list(kinds), n_boot, seed) for name, s in scores.items()}
    fold_srcc = np.array([f["srcc"] for f in per_fold])
    result = {
        "label": mos_label(manifest), "manifest": str(manifest.resolve()),
        "k": k, "seed": seed, "n": len(rows), "bootstrap": n_boot,
        "protocol": "grouped folds by scene: fold i tests, fold i+1 picks the best epoch, the rest train; "
                    "fold_mean = each model's SRCC on each fold's test images, averaged over folds; "
                    "pooled = every image predicted once, by the student of the fold that tested its scene",
        "folds": per_fold, "fold_srcc_mean": float(np.nanmean(fold_srcc)), "fold_srcc_std": float(np.nanstd(fold_srcc)),
        "fold_mean": fold_mean, "pooled": pooled, "config": dataclasses.asdict(cfg),
        "predictions": {r.path: float(v) for r, v in zip(rows, pred)},
    }
    write_json(out_dir / "folds.json", result)
    return result
