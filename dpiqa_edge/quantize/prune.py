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
* Channel counts are rounded to the nearest multiple of ``round_to`` (8: SIMD/NPU friendly), never
  below ``round_to``. (torch-pruning's own rounding floors, which turns 30% into 50% on a 16-channel
  layer; see :class:`_NearestRoundPruner`.)
* The pruned folder is a normal student folder: ``config.json`` with ``widths`` (every resized layer's
  shape, ``student.widths``) + ``model.safetensors``; ``load_student`` rebuilds it exactly, no pickle.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError, InputError

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
    from ..student.complexity import complexity

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


def prune_model(model, ratio: float, size: int, importance: str = "magnitude", round_to: int = 8,
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


def predict_scores(model, paths: Sequence[str], preprocess, batch_size: int = 16) -> np.ndarray:
    """Scores (0-100) of images through the shared preprocessing and the torch model in eval mode."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(paths), batch_size):
            x = torch.from_numpy(preprocess.batch(paths[i:i + batch_size]))
            out.append(model(x)[0].float().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def split_srcc(model, manifest, preprocess, splits=("val", "test")) -> dict:
    """SRCC vs MOS per held-out split (labelled rows only; a split with < 3 images is skipped)."""
    from ..metrics import srcc

    result = {}
    for split in splits:
        rows = manifest.split(split).labelled()
        if len(rows) < 3:
            continue
        pred = predict_scores(model, [r.abspath for r in rows], preprocess)
        result[split] = {"srcc": float(srcc(pred, [r.mos for r in rows])), "n": len(rows)}
    return result


def _taylor_batches(manifest, targets_dir, preprocess, n_batches: int, batch_size: int, seed: int):
    """A few train batches (images, teacher scores, teacher maps) for Taylor importance."""
    import torch

    from ..teacher.targets import Targets

    targets = Targets(targets_dir)
    rows = [r for r in manifest.split("train") if r.path in targets]
    if not rows:
        raise InputError(f"{targets_dir}: no teacher targets for the manifest's train images")
    rng = np.random.default_rng(seed)
    rows = [rows[i] for i in rng.permutation(len(rows))[: n_batches * batch_size]]
    batches = []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        x = torch.from_numpy(preprocess.batch([r.abspath for r in chunk]))
        s = torch.tensor([targets.scores[r.path] for r in chunk], dtype=torch.float32)
        m = torch.from_numpy(np.stack([targets.map(r.path) for r in chunk]))
        batches.append((x, s, m))
    return batches


def _distill_loss(model, batch):
    """The distillation objective on one batch: score MSE on the 0-1 scale + quality-map MSE (SPEC, 1:1)."""
    import torch.nn.functional as F

    x, s, m = batch
    score, qmap = model(x)
    if qmap.shape[-1] != m.shape[-1]:
        raise InputError(f"prune: student map {tuple(qmap.shape[-2:])} vs teacher map {tuple(m.shape[-2:])}")
    return F.mse_loss(score / 100.0, s / 100.0) + F.mse_loss(qmap, m)
