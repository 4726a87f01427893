"""Structured channel pruning of a student with torch-pruning, then a short recovery fine-tune.

Unstructured masks (NNCF's only pruning) leave a CNN's dense kernels as slow as before; removing
whole channels makes every convolution smaller. torch-pruning's DepGraph finds the layers coupled by
each channel (a conv, its BN, the depthwise conv after it, residual adds, the concat into the head)
and removes them together, so the pruned model is an ordinary, smaller ``nn.Module``.

* Importance: ``magnitude`` (L2 norm of each channel group's weights; no data) or ``taylor``
  (|weight x gradient| of the distillation loss summed over a few batches - what the loss would lose).
* Protected: the quality-map branch and the score head (``PROTECTED``) keep their outputs: the map
  must stay 8 channels on the teacher's grid and the head's widths are part of the model's contract.
  Their *inputs* shrink with the backbone channels feeding them.
* Channel counts are rounded to the nearest multiple of ``round_to``, never below ``round_to``.
  (torch-pruning's own rounding floors, which turns 30% into 50% on a 16-channel layer; see
  :class:`_NearestRoundPruner`.) Default 16: onnxruntime's x86 int8 depthwise kernel (MLAS's symmetric
  depthwise conv) takes only channel counts that are multiples of 16 and falls back to a generic path
  otherwise; a 50%-pruned Lite0 rounded to 8 had depthwise layers of 72 and 120 channels that ran 2.7x
  slower in int8 than in fp32, and its INT8 model 1.2-1.3x faster than fp32 overall, against 1.4x with
  every width a multiple of 16 (1 thread, 224 px; fp32 itself got 7% faster too, AVX-512's float
  blocks being 16 wide). ARM builds align to 8: ``round_to=8`` keeps the finer widths for them.
* The pruned folder is a normal student folder: ``config.json`` with ``widths`` (every resized layer's
  shape, ``student.widths``) + ``model.safetensors``; ``load_student`` rebuilds it exactly, no pickle.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import from_dict
from ..data.manifest import mos_label, read_manifest
from ..distill.config import DistillConfig
from ..distill.train import distill
from ..errors import ConfigError, InputError
from ..io import read_json, write_json
from ..metrics import srcc
from ..student import load_student, save_student
from ..student.cost import complexity
from ..student.widths import record_widths
from ..teacher.targets import Targets

PROTECTED = ("map_branch", "head")  #: Student attributes whose outputs are never pruned
IMPORTANCES = ("magnitude", "taylor")


def protected_modules(model) -> list:
    """The modules whose output channels pruning must keep (the map branch and the score head)."""
    found = [getattr(model, name) for name in PROTECTED if hasattr(model, name)]
    if len(found) != len(PROTECTED):
        raise ConfigError(f"prune: the model has no {' / '.join(PROTECTED)} modules; is it a dpiqa student?")
    return found


def model_cost(model, size: int) -> dict:
    """Parameters and GMACs of one ``size`` x ``size`` image (the student stage's own counter)."""
    was_training = model.training
    cost = complexity(model, size)
    model.train(was_training)
    return {"params": cost["params"], "gmacs": round(cost["gmacs"], 4), "at_size": int(size)}


def _pruner_class():
    import torch_pruning as tp

    class _NearestRoundPruner(tp.pruner.BasePruner):
        """BasePruner whose ``round_to`` keeps the *nearest* multiple (torch-pruning floors it)."""

        def _round_to(self, n_pruned, current_channels, round_to):
            kept = current_channels - n_pruned
            kept = max(round_to, int(round(kept / round_to)) * round_to)
            return max(0, current_channels - min(kept, current_channels))

    return _NearestRoundPruner


def prune_model(model, ratio: float, size: int, importance: str = "magnitude", round_to: int = 16,
                grad_batches: Sequence | None = None, loss_fn=None) -> dict[str, int]:
    """Prune ``model`` in place: ``ratio`` of the channels of every unprotected layer group.

    Args:
        model: a student (``backbone``, ``map_branch``, ``head``).
        ratio: fraction of channels removed per group, 0 < ratio < 1 (MACs drop faster: ~(1-ratio)^2).
        size: input side used to trace the graph (any size the model accepts).
        importance: ``magnitude`` or ``taylor`` (needs ``grad_batches`` and ``loss_fn``).
        round_to: kept channel counts are multiples of this.
        grad_batches: batches for ``taylor``; each is passed to ``loss_fn(model, batch) -> loss``.
    Returns the number of output channels per pruned layer before -> after (``{name: [before, after]}``).
    """
    import torch
    import torch_pruning as tp

    # 1. Check the request.
    if not 0.0 < ratio < 1.0:
        raise ConfigError(f"prune: ratio must be between 0 and 1 (fraction of channels removed), got {ratio}")
    if importance not in IMPORTANCES:
        raise ConfigError(f"prune: importance {importance!r} unknown; valid: {', '.join(IMPORTANCES)}")
    if importance == "taylor" and (not grad_batches or loss_fn is None):
        raise ConfigError("prune: taylor importance needs batches and the distillation loss")
    before = {n: int(m.weight.shape[0]) for n, m in model.named_modules()
              if isinstance(m, (torch.nn.modules.conv._ConvNd, torch.nn.Linear))}

    # 2. Build the dependency graph and the pruner (map branch and head protected).
    model.eval()
    example = torch.rand(1, 3, size, size)
    imp = tp.importance.MagnitudeImportance(p=2) if importance == "magnitude" else tp.importance.TaylorImportance()
    pruner = _pruner_class()(model, example, imp, pruning_ratio=ratio, ignored_layers=protected_modules(model),
                             round_to=round_to)

    # 3. Taylor: accumulate the loss gradient over the batches (BN in eval: statistics untouched).
    if importance == "taylor":
        model.zero_grad()
        for batch in grad_batches:
            loss_fn(model, batch).backward()

    # 4. Remove the channels.
    pruner.step()
    model.zero_grad(set_to_none=True)
    after = {n: int(m.weight.shape[0]) for n, m in model.named_modules()
             if isinstance(m, (torch.nn.modules.conv._ConvNd, torch.nn.Linear))}
    return {n: [before[n], after[n]] for n in before if n in after and before[n] != after[n]}


def split_srcc(model, manifest, preprocess, splits=("val", "test")) -> dict:
    """SRCC vs MOS per held-out split (labelled rows only; a split with < 3 images is skipped)."""
    from ..distill.data import DistillItems, predict

    model.eval()  # and left so: pruning traces the model in eval mode (no BN statistics updated)
    result = {}
    for split in splits:
        rows = manifest.split(split).labelled()
        if len(rows) < 3:
            continue
        pred = predict(model, DistillItems(rows, preprocess, cache=False), batch_size=16)
        result[split] = {"srcc": float(srcc(pred, [r.mos for r in rows])), "n": len(rows)}
    return result


def _taylor_batches(manifest, targets_dir, dcfg, n_batches: int, batch_size: int, seed: int) -> list[dict]:
    """A few un-augmented train batches in the distillation loop's own form (``distill.data``)."""
    import torch

    from ..distill.data import DistillItems

    targets = None
    if targets_dir is not None:
        targets = Targets(targets_dir)
    rows = [r for r in manifest.split("train") if r.mos is not None or (targets is not None and r.path in targets)]
    if not rows:
        raise InputError(f"{manifest.path}: no train rows with a MOS or a teacher target for Taylor importance")
    order = np.random.default_rng(seed).permutation(len(rows))[: n_batches * batch_size]
    scfg = dcfg.student.resolved()
    items = DistillItems([rows[i] for i in order], scfg.preprocessing(), targets, scfg.map_size)
    collate = torch.utils.data.default_collate
    return [collate([items[j] for j in range(k, min(k + batch_size, len(items)))])
            for k in range(0, len(items), batch_size)]


def _recovery_config(student_dir: Path, scfg, epochs: int, lr: float | None, batch_size: int | None,
                     freeze_stages: int = 0):
    """The student's own distillation recipe (from its config.json provenance), shortened for recovery."""
    import dataclasses

    recipe = (read_json(student_dir / "config.json").get("provenance") or {}).get("distill")
    dcfg = from_dict(DistillConfig, recipe, where=f"{student_dir}/config.json:provenance.distill") if recipe else DistillConfig()
    loop = dataclasses.replace(dcfg.train, epochs=max(1, epochs), milestones=(), resume=False,
                               lr=lr if lr is not None else dcfg.train.lr * 0.5,
                               batch_size=batch_size or dcfg.train.batch_size)
    return dataclasses.replace(dcfg, student=scfg, train=loop, freeze_stages=freeze_stages)


def prune_student(student_dir, ratio: float, manifest, targets_dir, out_dir, importance: str = "magnitude",
                  round_to: int = 16, finetune_epochs: int = 2, lr: float | None = None, batch_size: int | None = None,
                  taylor_batches: int = 4, seed: int = 0, freeze_stages: int = 0, quiet: bool = False) -> Path:
    """Prune a trained student, fine-tune it briefly with the distillation loss, save a normal student folder.

    Args:
        student_dir: a student folder (``config.json`` + ``model.safetensors``) from ``distill``.
        ratio: fraction of channels removed per unprotected layer group (0.3 = 30%).
        manifest: the distillation manifest (train fine-tunes, val picks the best epoch, val/test report).
        targets_dir: the teacher's targets folder (quality maps); None = MOS-only recovery.
        out_dir: the pruned student folder (``config.json`` with ``widths`` + ``model.safetensors``),
            with ``prune.json`` (params, GMACs, SRCC before/after) and the fine-tune's ``distill.json``.
        importance: ``magnitude`` | ``taylor`` (gradient of the distillation loss over ``taylor_batches``).
        round_to: kept channel counts are multiples of this.
        finetune_epochs: recovery epochs (0 = prune only).
        lr: recovery learning rate (default: half the student's own recipe).
        batch_size: recovery batch size (default: the student's recipe).
        seed: batch order and Taylor batch choice.
        freeze_stages: recovery trains only the stages after the stem + this many (their outputs are then
            computed once and cached: several times faster on a CPU); 0 = fine-tune everything.
    Returns ``out_dir``.
    """
    import dataclasses

    say = (lambda _m: None) if quiet else print
    t0 = time.perf_counter()
    student_dir, out_dir = Path(student_dir), Path(out_dir)

    # 1. The trained student, its data, and its numbers before pruning.
    model, scfg = load_student(student_dir)
    rows = read_manifest(manifest)
    size, pre = scfg.input_size, scfg.preprocessing()
    before = {**model_cost(model, size), "srcc": split_srcc(model, rows, pre)}
    say(f"prune: {student_dir} before: {before['params'] / 1e6:.2f} M params, {before['gmacs']:.3f} GMACs at {size} px")

    # 2. Prune (Taylor: gradient of the distillation loss on a few train batches).
    dcfg = _recovery_config(student_dir, scfg, finetune_epochs, lr, batch_size, freeze_stages)
    grad_batches, loss_fn = None, None
    if importance == "taylor":
        from ..distill.losses import distill_loss

        grad_batches = _taylor_batches(rows, targets_dir, dcfg, taylor_batches, dcfg.train.batch_size, seed)
        loss_fn = lambda m, b: distill_loss(m, b, dcfg)[0]  # noqa: E731
    changed = prune_model(model, ratio, size, importance, round_to, grad_batches, loss_fn)
    pruned_cfg = dataclasses.replace(scfg, widths=record_widths(model))
    pruned = {**model_cost(model, size), "srcc": split_srcc(model, rows, pre)}
    say(f"prune: removed {ratio:.0%} of channels in {len(changed)} layers -> {pruned['params'] / 1e6:.2f} M params, "
        f"{pruned['gmacs']:.3f} GMACs")

    # 3. Recovery fine-tune with the distillation loss (the loop keeps the best val epoch).
    provenance = {"pruned_from": str(student_dir.resolve()), "manifest": str(Path(manifest).resolve())}
    if finetune_epochs > 0:
        dcfg = dataclasses.replace(dcfg, student=pruned_cfg)

        distill(manifest, out_dir, dcfg, targets_dir=targets_dir, model=model, quiet=quiet)
        model, _ = load_student(out_dir)  # exactly what was saved: proves the width map rebuilds it
    else:
        save_student(model, pruned_cfg, out_dir, **provenance)
    after = {**model_cost(model, size), "srcc": split_srcc(model, rows, pre)}

    # 4. Record: prune.json, and the pruning facts in the student's own provenance.
    summary = {
        "source": str(student_dir.resolve()), "ratio": ratio, "importance": importance, "round_to": round_to,
        "protected": list(PROTECTED), "finetune_epochs": finetune_epochs,
        "label": mos_label(manifest),
        "before": before, "pruned_no_finetune": pruned, "after": after,
        "params_ratio": after["params"] / before["params"], "gmacs_ratio": after["gmacs"] / before["gmacs"],
        "layers_changed": changed, "seconds": round(time.perf_counter() - t0, 1),
    }
    config = read_json(out_dir / "config.json")
    config["provenance"] = {**(config.get("provenance") or {}), **provenance,
                            "prune": {k: summary[k] for k in ("ratio", "importance", "round_to", "finetune_epochs")}}
    write_json(out_dir / "config.json", config)
    write_json(out_dir / "prune.json", summary)
    say(_table(summary))
    return out_dir


def _table(summary: dict) -> str:
    """A short before/after table for the terminal."""
    lines = [f"prune ({summary['label']}): ratio {summary['ratio']}, importance {summary['importance']}",
             f"{'':22}{'params (M)':>12}{'GMACs':>10}{'val SRCC':>10}{'test SRCC':>10}"]
    for key, name in (("before", "before"), ("pruned_no_finetune", "pruned"), ("after", "after fine-tune")):
        d = summary[key]
        cells = [d["srcc"].get(s, {}).get("srcc", float("nan")) for s in ("val", "test")]
        lines.append(f"{name:22}{d['params'] / 1e6:12.3f}{d['gmacs']:10.3f}{cells[0]:10.4f}{cells[1]:10.4f}")
    return "\n".join(lines)
