"""Students: the paper's EfficientNet-B7, EfficientNet-Lite0 with bundled ImageNet weights, any timm CNN.

``build_student(cfg)``, ``save_student(model, cfg, dir, **provenance)``, ``load_student(dir) -> (model, cfg)``,
``complexity(cfg_or_model, size=512)``. Torch and timm are imported only when these are called.
"""

from __future__ import annotations

from .config import STUDENT_NAMES, StudentConfig

# models, checkpoint and cost import torch at their top; these fronts keep ``dpiqa_edge.student`` (and the
# torch-free StudentConfig that recipes, configs and the CLI read) importable without it.


def build_student(cfg: StudentConfig):
    from .models import build_student as _build

    return _build(cfg)


def save_student(model, cfg: StudentConfig, directory, **provenance):
    from .checkpoint import save_student as _save

    return _save(model, cfg, directory, **provenance)


def load_student(directory, allow_onnx: bool = False):
    from .checkpoint import load_student as _load

    return _load(directory, allow_onnx=allow_onnx)


def complexity(model_or_cfg, size: int = 512) -> dict:
    from .cost import complexity as _complexity

    return _complexity(model_or_cfg, size)


__all__ = ["STUDENT_NAMES", "StudentConfig", "build_student", "save_student", "load_student", "complexity"]
