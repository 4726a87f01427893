"""``distill``: train a student from MOS and the teacher's cached targets, on the shared training loop.

The teacher is never built or imported here: its scores and F_quality maps come from a targets folder
(``teacher.targets.Targets``, numpy + safetensors). Without a targets folder the student trains from MOS
alone (the feature and KD terms are then switched off, and the run says so).

Output folder ``out_dir``: the best student by val SRCC (``config.json`` + ``model.safetensors``, loadable
with ``student.load_student``), ``distill.json`` (effective config, data counts, history, val/test
metrics), and the loop's ``last/`` (resume) and ``best/`` checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

from ..data.manifest import Manifest, is_synthetic, read_manifest
from ..errors import ConfigError, InputError
from ..io import write_json
from ..metrics import plcc, srcc
from ..student import build_student, save_student
from ..teacher.targets import Targets
from ..training import fit
from .config import DistillConfig


def _say(msg: str, quiet: bool = False) -> None:
    if not quiet:
        from rich.console import Console

        Console(stderr=True, highlight=False).print(msg, markup=False)


def split_metrics(model, items, batch_size: int = 32) -> dict:
    """SRCC/PLCC of the model's scores vs each item's MOS (teacher score where MOS is empty)."""
    from .data import predict  # lazy: distill.data imports torch at top

    target = np.array([r.mos if r.mos is not None else np.nan for r in items.rows], dtype=float)
    if items.targets is not None:
        for i, r in enumerate(items.rows):
            if not np.isfinite(target[i]) and r.path in items.targets:
                target[i] = items.targets.scores[r.path]
    keep = np.isfinite(target)
    if keep.sum() < 3:
        return {"srcc": float("nan"), "plcc": float("nan"), "n": int(keep.sum())}
    pred = predict(model, items, batch_size)
    return {"srcc": float(srcc(pred[keep], target[keep])), "plcc": float(plcc(pred[keep], target[keep])),
            "n": int(keep.sum())}


def distill(manifest: str | os.PathLike, out_dir: str | os.PathLike, cfg: DistillConfig | None = None,
            targets_dir: str | os.PathLike | None = None, model=None, quiet: bool = False,
            splits: dict[str, str] | None = None) -> Path:
    """Distill into a student; returns ``out_dir`` (a student folder). Resumes from ``out_dir/last``.

    Args:
        manifest: CSV manifest; ``train`` rows train, ``val`` rows pick the best epoch, ``test`` rows are
            scored once at the end (reported in ``distill.json``, never used for selection).
        out_dir: output folder (see the module docstring).
        cfg: the run; default SPEC's paper recipe.
        targets_dir: the teacher's cached targets (``teacher score`` output); None = MOS only.
        model: fine-tune this module instead of building ``cfg.student`` (pruning's recovery); then
            ``cfg.student`` must describe it, ``widths`` included, so the saved folder reloads.
        splits: the manifest's ``path`` -> split to use instead of its own column (grouped folds,
            :mod:`.folds`); rows it does not name are left out.
    """
    import torch

    from .data import DistillItems, PrefixCache  # lazy: distill.data imports torch at top
    from .losses import distill_loss  # lazy: distill.losses imports torch at top

    t0 = time.perf_counter()
    cfg = cfg or DistillConfig()
    out_dir, manifest = Path(out_dir), Path(manifest)

    # 1. Data and targets. Rows with no usable score target are dropped (counted, reported).
    rows = read_manifest(manifest)
    if splits is not None:
        rows = Manifest([dataclasses.replace(r, split=splits[r.path]) for r in rows if r.path in splits], rows.path)
    targets = None
    if targets_dir is not None:
        targets = Targets(targets_dir)
    elif cfg.needs_targets:
        if cfg.score_target == "teacher":
            raise ConfigError("distill: score_target 'teacher' needs --targets (the teacher's scores)")
        _say("distill: no targets given: training from MOS alone (w_feat and w_kd set to 0)", quiet)
        cfg = dataclasses.replace(cfg, w_feat=0.0, w_kd=0.0)
    student_cfg = cfg.student.resolved()
    pre = student_cfg.preprocessing()

    def usable(r):
        has_t = targets is not None and r.path in targets
        return has_t if cfg.score_target == "teacher" else (r.mos is not None or has_t)

    train_rows = [r for r in rows.split("train") if usable(r)]
    dropped = len(rows.split("train")) - len(train_rows)
    if len(train_rows) < cfg.train.batch_size:
        raise InputError(f"{manifest}: {len(train_rows)} usable train rows, fewer than one batch "
                         f"({cfg.train.batch_size}); rows need a MOS or a teacher target")
    if targets is not None and cfg.w_feat > 0 and not any(r.path in targets for r in train_rows):
        raise InputError(f"{targets_dir}: no teacher targets for the manifest's train rows (paths differ?)")
    val_rows = [r for r in rows.split("val") if usable(r)]
    test_rows = [r for r in rows.split("test") if usable(r)]
    make = lambda rs, aug: DistillItems(rs, pre, targets, student_cfg.map_size, augment=aug,  # noqa: E731
                                        hflip=cfg.hflip, crop=cfg.crop, cache=cfg.cache_images)
    train_set, val_set, test_set = make(train_rows, True), make(val_rows, False), make(test_rows, False)
    _say(f"distill: {student_cfg.name} at {student_cfg.input_size} px, map {student_cfg.map_size}; "
         f"{len(train_rows)} train / {len(val_rows)} val / {len(test_rows)} test images"
         + (f" ({dropped} train rows without any target dropped)" if dropped else "")
         + (f"; teacher maps {targets.map_size} -> {student_cfg.map_size}" if targets is not None and
            targets.map_size != student_cfg.map_size else ""), quiet)

    # 2. The student (fresh, or the given module), early stages frozen when asked.
    torch.manual_seed(cfg.train.seed)
    if model is None:
        model = build_student(student_cfg)
    start_stage = 0
    if cfg.freeze_stages:
        model.freeze(cfg.freeze_stages)
        if cfg.cache_features and cfg.crop == 0 and model.backbone.can_split():
            start_stage = cfg.freeze_stages
            t1 = time.perf_counter()
            progress = cfg.train.progress and not quiet
            train_set, val_set, test_set = (PrefixCache(s, model, start_stage, cfg.eval_batch_size, progress)
                                            for s in (train_set, val_set, test_set))
            _say(f"distill: cached the frozen stem + {start_stage} stages for {len(train_set)} train"
                 f"{' (x2 mirrored)' if train_set.flips else ''} / {len(val_set)} val / {len(test_set)} test images "
                 f"in {time.perf_counter() - t1:.0f} s", quiet)

    # 3. Train on the shared loop: best/ by val SRCC, last/ for resume.
    provenance = {"manifest": str(manifest.resolve()), "synthetic": is_synthetic(manifest),
                  "splits": "overridden (grouped folds)" if splits is not None else "manifest",
                  "targets": str(Path(targets_dir).resolve()) if targets_dir else None,
                  "teacher": targets.index.get("teacher", {}) if targets is not None else None,
                  "distill": dataclasses.asdict(cfg)}
    eval_fn = (lambda m: split_metrics(m, val_set, cfg.eval_batch_size)) if len(val_set) >= 3 else None
    if eval_fn is None:
        _say("distill: fewer than 3 val images: no best-epoch selection, the last epoch is kept", quiet)
    loop = cfg.train if not quiet else dataclasses.replace(cfg.train, progress=False)
    result = fit(model, lambda m, b: distill_loss(m, b, cfg, start_stage), train_set, out_dir, loop, eval_fn=eval_fn,
                 save_fn=lambda m, d: save_student(m, student_cfg, d, **provenance),
                 config={"distill": dataclasses.asdict(cfg), "provenance": provenance})

    # 4. Final student = best (else last) weights, saved at the top of out_dir; test metrics recorded.
    from safetensors.torch import load_model

    source = result.best_dir if result.best_dir is not None else result.last_dir
    load_model(model, str(source / "model.safetensors"))
    model.eval()
    test = split_metrics(model, test_set, cfg.eval_batch_size) if len(test_set) >= 3 else None
    seconds = time.perf_counter() - t0
    save_student(model, student_cfg, out_dir, **provenance, best_val=result.best, test=test)
    write_json(out_dir / "distill.json", {
        "config": dataclasses.asdict(cfg), "provenance": provenance,
        "label": "synthetic pseudo-MOS" if provenance["synthetic"] else "MOS",
        "counts": {"train": len(train_rows), "val": len(val_rows), "test": len(test_rows), "dropped": dropped},
        "best_val": result.best, "selected": source.name, "test": test, "history": result.history,
        "seconds": round(seconds, 1),
    })
    _say(f"distill: wrote {out_dir} in {seconds:.0f} s; best val SRCC {result.best if result.best is not None else float('nan'):.3f}"
         + (f", test SRCC {test['srcc']:.3f} (n={test['n']})" if test else ""), quiet)
    return out_dir
