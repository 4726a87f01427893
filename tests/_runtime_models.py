"""Tiny artifacts for the runtime tests: a hand-weighted "sharpness" conv net that follows
the model contract (x float32 N x 3 x H x W in 0..1 -> score N on 0-100, quality map N x 8 x m x m),
exported to ONNX (and OpenVINO IR) with the ARCHITECTURE.md metadata.

Its score falls when the image is blurred (mean |Laplacian| of the luma through 1 - exp(-k e)), so the
camera-gate tests check a real model response, not a mocked one. Loaded through the real
``runtime.backends.load_backend`` when the export loaders are present, else through ``StandInOnnx``,
which implements the same Backend interface with onnxruntime.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

SIZE = 64  #: model input (h = w); small so tests stay fast on 2 cores
THRESHOLD = 50.0  #: the gate threshold written into the metadata


def metadata(size: int = SIZE, threshold: float | None = THRESHOLD, target: str = "onnx", **extra) -> dict[str, str]:
    from dpiqa_edge import __version__
    from dpiqa_edge.runtime.preprocess import Preprocess

    meta = {
        "dpiqa_edge_version": __version__,
        "model_type": "dpiqa_student",
        "student": "test-sharpness",
        "target": target,
        "precision": "fp32",
        "preprocessing": json.dumps(Preprocess(size=(size, size)).to_dict()),
        "raw_input": "false",
        "score_range": "0,100",
        "higher_is_better": "true",
        "source_sha256": "0" * 64,
        "outputs": "score,quality_map",
        "input_name": "image",
        "dynamic_batch": "true",
    }
    if threshold is not None:
        meta["gate_threshold"] = str(threshold)
    meta.update({k: str(v) for k, v in extra.items()})
    return meta


def sharpness_net(k: float = 10.0):
    import torch
    import torch.nn.functional as F

    class Sharpness(torch.nn.Module):
        def __init__(self):
            super().__init__()
            lap = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
            self.register_buffer("lap", lap.view(1, 1, 3, 3))
            self.register_buffer("luma", torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1))

        def forward(self, x):
            grey = (x * self.luma).sum(1, keepdim=True)
            energy = F.avg_pool2d(F.conv2d(grey, self.lap, padding=1).abs(), 8)  # N x 1 x m x m
            score = 100.0 * (1.0 - torch.exp(-k * energy.mean(dim=(1, 2, 3))))
            return score, energy.repeat(1, 8, 1, 1)

    return Sharpness().eval()


def export_onnx(out: Path, size: int = SIZE, **meta) -> Path:
    """Export the sharpness net to ``out`` (an .onnx file) with metadata_props; dynamic batch."""
    import onnx
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            sharpness_net(), torch.rand(2, 3, size, size), str(out), input_names=["image"], output_names=["score", "quality_map"],
            dynamic_axes={"image": {0: "n"}, "score": {0: "n"}, "quality_map": {0: "n"}}, dynamo=False,
        )
    model = onnx.load(str(out))
    onnx.helper.set_model_props(model, metadata(size, **meta))
    onnx.save(model, str(out))
    return out


class StandInOnnx:
    """The Backend interface (ARCHITECTURE.md) over onnxruntime, used only until the real loaders land."""

    name, precision, dynamic_batch = "onnx", "fp32", True

    def __init__(self, path: Path, threads: int | None = 1):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, x: np.ndarray):
        score, qmap = self.session.run(None, {"image": x})
        return score, qmap


def have_real_backends() -> bool:
    try:
        from dpiqa_edge.runtime import backends  # noqa: F401
    except ImportError:
        return False
    return hasattr(backends, "load_backend")


def make_scorer(path: Path, **kw):
    """A QualityScorer over ``path`` through the real loaders when present, else the stand-in."""
    from dpiqa_edge.runtime.scorer import QualityScorer

    if have_real_backends():
        return QualityScorer(path, threads=kw.pop("threads", 1), **kw)
    return QualityScorer(path, backend=StandInOnnx(path), **kw)


def use_stand_in_loader(monkeypatch) -> None:
    """Route ``QualityScorer(path)`` (and so ``dpiqa-edge check``) to the stand-in when D's loaders are absent."""
    if not have_real_backends():
        from dpiqa_edge.runtime import scorer

        monkeypatch.setattr(scorer, "_load_backend", lambda artifact, **kw: StandInOnnx(Path(artifact)))
