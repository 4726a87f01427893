"""distill stage: train a student from MOS and the teacher's cached targets (never the teacher itself).

``distill(manifest, out_dir, cfg, targets_dir=None, model=None) -> Path`` (``distill.train``),
``DistillConfig`` (``distill.config``), the losses (``distill.losses``), the items (``distill.data``).
"""

from __future__ import annotations

from .config import DistillConfig


def distill(manifest, out_dir, cfg=None, targets_dir=None, model=None, quiet: bool = False):
    from .train import distill as _distill

    return _distill(manifest, out_dir, cfg, targets_dir=targets_dir, model=model, quiet=quiet)


__all__ = ["DistillConfig", "distill"]
