"""One loader class per backend, one function to pick it: ``load_backend(artifact) -> Backend``.

Parity checks (export), reports, benchmarks, ``QualityScorer`` and ``dpiqa-edge check`` all run models
through here, so there is one path from artifact to score. Each backend library is imported only when
its loader is used (``onnxruntime``, ``openvino``, ``coremltools``), and nothing here imports torch.

A backend's ``run(x)`` takes the model's own input - float32 NCHW in 0..1, or for ``--raw-input``
artifacts uint8 NHWC frames (a float NCHW batch is converted for them, exactly: the shared
preprocessing yields multiples of 1/255) - and returns ``(score (N,), quality_map (N, 8, m, m))`` as
float32 numpy arrays. Fixed-batch artifacts are run one image at a time, so any N works everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError
from ..artifact import resolve_artifact
from ..formats import FORMATS
from ..preprocess import Preprocess


class Backend:
    """What every loader provides (subclasses set ``name`` and implement ``_load`` and ``_run``).

    Args:
        file: the artifact file (``.onnx``, ``.xml``, ``.mlpackage``), already resolved.
        metadata: its decoded metadata (``runtime.artifact.resolve_artifact``).
        precision_hint: execution precision to ask the runtime for (OpenVINO: ``f32`` | ``bf16`` | ``f16``);
            ``None`` = the backend's documented default (f32 wherever the choice exists).
        threads: intra-op threads (``None``: the runtime's default).
    """

    name = "?"
    #: False where one loaded model must not be called from several threads at once (QualityScorer locks)
    thread_safe = True
    #: True where the numbers come from an emulation, not the device runtime (CoreML on Linux)
    emulated = False

    def __init__(self, file: Path, metadata: dict[str, Any], precision_hint: str | None = None,
                 threads: int | None = None):
        self.file = Path(file)
        self.metadata = metadata
        self.preprocess = Preprocess.from_dict(metadata["preprocessing"])
        self.raw_input = bool(metadata.get("raw_input", False))
        self.image_input = bool(metadata.get("image_input", False))
        self.dynamic_batch = bool(metadata.get("dynamic_batch", False))
        self.input_name = str(metadata.get("input_name", "image"))
        self.precision = str(metadata["precision"])  # loaders overwrite with what actually runs
        self.threads = threads
        self._load(precision_hint)

    # -- subclass hooks ---------------------------------------------------------------------------
    @staticmethod
    def read_metadata(file: Path) -> dict[str, str]:
        """The string metadata stored in an artifact of this format, read with the lightest tool (no
        model load where the format allows it); a parser's own error means a corrupt file."""
        raise NotImplementedError

    def _load(self, precision_hint: str | None) -> None:
        raise NotImplementedError

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One batch in the artifact's own input form -> (score, quality_map)."""
        raise NotImplementedError

    # -- the shared part --------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """How results are labelled: e.g. ``onnx fp32`` or ``coreml fp16 (emulated on Linux)``."""
        return f"{self.name} {self.precision}" + (" (emulated on Linux)" if self.emulated else "")

    def to_model_input(self, x: np.ndarray) -> np.ndarray:
        """Check a batch against the artifact's input and convert float NCHW for raw-input artifacts."""
        x = np.asarray(x)
        h, w = self.preprocess.size
        if self.raw_input and x.dtype != np.uint8:
            x = self._float_to_raw(x)
        expected = (h, w, 3) if self.raw_input else (3, h, w)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected or x.shape[0] == 0:
            raise InputError(f"{self.file}: input batch of shape {tuple(x.shape)}; this artifact takes (N, {', '.join(map(str, expected))})"
                             + (" uint8" if self.raw_input else " float32 in 0..1"))
        return np.ascontiguousarray(x if self.raw_input else x.astype(np.float32, copy=False))

    def _float_to_raw(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"{self.file}: raw-input artifact given a float batch of shape {tuple(x.shape)}; "
                             "give uint8 (N, H, W, 3) frames or float (N, 3, H, W) in 0..1")
        return np.clip(np.rint(x.astype(np.float32) * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)

    def run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A batch -> (score (N,) float32 on 0-100, quality_map (N, 8, m, m) float32)."""
        x = self.to_model_input(x)
        if self.dynamic_batch or x.shape[0] == 1:
            score, qmap = self._run(x)
        else:  # fixed batch-1 artifact: one image at a time
            outs = [self._run(x[i:i + 1]) for i in range(x.shape[0])]
            score, qmap = np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
        return (np.asarray(score, dtype=np.float32).reshape(x.shape[0]),
                np.asarray(qmap, dtype=np.float32).reshape(x.shape[0], *np.shape(qmap)[1:]))

    def score_images(self, srcs) -> np.ndarray:
        """Paths / PIL images / frames -> scores, through the artifact's own preprocessing."""
        return self.run(self.preprocess.batch(srcs))[0]

    def __repr__(self) -> str:
        h, w = self.preprocess.size
        return f"<{type(self).__name__} {self.file} {self.label} input={h}x{w} dynamic_batch={self.dynamic_batch}>"


def backend_class(name: str) -> type[Backend]:
    return FORMATS[name].load_class()


def load_backend(artifact: str | os.PathLike, precision_hint: str | None = None,
                 threads: int | None = None) -> Backend:
    """Open an artifact file or export folder with the loader its format row names (``runtime/formats.py``).

    Raises :class:`~dpiqa_edge.errors.ModelLoadError` (one line) for a missing/corrupt artifact or
    metadata, or when the backend library is not installed.
    """
    file, meta = resolve_artifact(artifact)
    return backend_class(meta["target"])(file, meta, precision_hint=precision_hint, threads=threads)


__all__ = ["Backend", "load_backend", "backend_class"]
