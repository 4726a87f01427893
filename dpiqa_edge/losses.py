"""Losses shared by more than one training stage (teacher training and distillation both use the ranking
loss), kept below both so that neither imports the other."""

from __future__ import annotations

import torch


def rank_loss(pred: torch.Tensor, target: torch.Tensor, margin_scale: float = 0.25) -> torch.Tensor:
    """Pairwise hinge: mean over pairs of relu(margin - sign(t_i - t_j) (p_i - p_j)),
    margin = margin_scale x std(target) (the paper's optional ranking loss)."""
    if pred.numel() < 2:
        return pred.sum() * 0.0
    sign = torch.sign(target[:, None] - target[None, :])
    pairs = torch.triu(sign != 0, diagonal=1)
    if not bool(pairs.any()):
        return pred.sum() * 0.0
    diff = pred[:, None] - pred[None, :]
    return torch.relu(margin_scale * target.std() - sign * diff)[pairs].mean()
