"""Distillation losses (SPEC): MSE on the 0-1 score scale, MSE between quality maps, optional KD and ranking
(the pairwise ranking loss is shared with the teacher: :mod:`dpiqa_edge.losses`).

Every term is masked: a batch may mix images with and without MOS, and with and without teacher
targets; a term with no valid item contributes an exact 0 that still keeps the graph connected (so
DDP sees every parameter used).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import rank_loss


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the items where ``mask`` is true; ``0 * pred.sum()`` when none is."""
    if not bool(mask.any()):
        return pred.sum() * 0.0
    return F.mse_loss(pred[mask], target[mask])


def feature_loss(qmap: torch.Tensor, target: torch.Tensor, has_map: torch.Tensor | None = None) -> torch.Tensor:
    """MSE(F_student, F_quality); ``target`` is resized (bilinear) to the student's grid when it differs."""
    if target.shape[-2:] != qmap.shape[-2:]:
        target = F.interpolate(target, size=qmap.shape[-2:], mode="bilinear", align_corners=False)
    if has_map is None:
        return F.mse_loss(qmap, target)
    return masked_mse(qmap, target, has_map)


def score_target(batch: dict, mode: str) -> torch.Tensor:
    """The 0-100 score target per item: MOS, else the teacher's score (``mode="mos"``); NaN where none."""
    if mode == "teacher":
        return batch["teacher"]
    return torch.where(torch.isfinite(batch["mos"]), batch["mos"], batch["teacher"])


def distill_loss(model, batch: dict, cfg, start_stage: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(loss, score, score target)`` for the training loop (which shows the running SRCC of the last two).

    ``batch``: ``x`` images, ``mos`` / ``teacher`` (0-100, NaN when absent), ``qmap`` (8 x m x m teacher
    maps, zeros when absent) and ``has_map`` (bool). ``cfg``: a :class:`DistillConfig`. ``start_stage`` > 0:
    ``x`` holds cached outputs of the student's frozen first stages (``PrefixCache``).
    """
    score, qmap = model(batch["x"], start_stage=start_stage) if start_stage else model(batch["x"])
    s = score / 100.0
    target = score_target(batch, cfg.score_target)
    ok = torch.isfinite(target)
    t = torch.nan_to_num(target) / 100.0
    loss = s.sum() * 0.0
    if cfg.w_mos:
        loss = loss + cfg.w_mos * masked_mse(s, t, ok)
    if cfg.w_feat:
        loss = loss + cfg.w_feat * feature_loss(qmap, batch["qmap"], batch["has_map"])
    if cfg.w_kd:
        teacher = batch["teacher"]
        loss = loss + cfg.w_kd * masked_mse(s, torch.nan_to_num(teacher) / 100.0, torch.isfinite(teacher))
    if cfg.w_rank and bool(ok.any()):
        loss = loss + cfg.w_rank * rank_loss(s[ok], t[ok], cfg.rank_margin)
    return loss, score.detach(), target
