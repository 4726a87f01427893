"""distill stage: train a student from MOS and the teacher's cached targets (never the teacher itself).

``distill(manifest, out_dir, cfg, targets_dir=None, model=None) -> Path`` (``distill.train``),
``DistillConfig`` (``distill.config``), the losses (``distill.losses``), the items (``distill.data``).
"""

from __future__ import annotations

from .config import DistillConfig
from .train import distill

__all__ = ["DistillConfig", "distill"]
