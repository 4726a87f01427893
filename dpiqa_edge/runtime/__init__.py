"""The on-device runtime: numpy + Pillow preprocessing, one backend (onnxruntime, OpenVINO or CoreML),
``QualityScorer`` and the ``CameraGate``. Never imports torch.

Names are resolved lazily (PEP 562) so ``import dpiqa_edge.runtime`` does no work and loads no backend
library; ``from dpiqa_edge.runtime import QualityScorer`` imports only what that needs.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "QualityScorer": ".scorer",
    "CameraGate": ".gate",
    "GateDecision": ".gate",
    "decode_image": ".image",
    "Preprocess": ".preprocess",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
