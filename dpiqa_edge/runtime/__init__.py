"""The on-device runtime: numpy + Pillow preprocessing, one backend (onnxruntime, OpenVINO or CoreML),
``QualityScorer`` and the ``CameraGate``. Never imports torch.

Importing the package loads no backend library: each backend imports its library (onnxruntime, OpenVINO,
coremltools) only when an artifact of its format is loaded.
"""

from __future__ import annotations

from .gate import CameraGate, GateDecision
from .image import decode_image
from .preprocess import Preprocess
from .scorer import QualityScorer

__all__ = ["CameraGate", "GateDecision", "Preprocess", "QualityScorer", "decode_image"]
