"""Students: the paper's EfficientNet-B7, EfficientNet-Lite0 with bundled ImageNet weights, any timm CNN.

``build_student(cfg)``, ``save_student(model, cfg, dir, **provenance)``, ``load_student(dir) -> (model, cfg)``,
``complexity(cfg_or_model, size=512)``. Torch and timm are imported only when these are called.
"""

from __future__ import annotations

from .checkpoint import load_student, save_student
from .config import STUDENT_NAMES, StudentConfig
from .cost import complexity


def build_student(cfg: StudentConfig):
    """``student.models.build_student``. That module defines torch modules at its top; this front keeps
    ``dpiqa_edge.student`` (and the torch-free StudentConfig that recipes, configs and the CLI read)
    importable without torch. checkpoint and cost import it only inside their functions."""
    from .models import build_student as _build  # lazy: student.models imports torch at top

    return _build(cfg)


__all__ = ["STUDENT_NAMES", "StudentConfig", "build_student", "save_student", "load_student", "complexity"]
