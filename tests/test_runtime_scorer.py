"""QualityScorer: inputs of every kind, batching, thread safety, no torch on import, metadata errors."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from _runtime_models import SIZE, StandInOnnx, export_onnx, make_scorer
from dpiqa_edge.errors import ModelLoadError
from dpiqa_edge.runtime.scorer import QualityScorer

# Batched vs single inference may take different kernels in onnxruntime: float32 rounding only, far below
# the 0.1-point resolution anyone reads a 0-100 score at.
BATCH_TOL = 1e-3


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return export_onnx(tmp_path_factory.mktemp("art") / "model.onnx")


@pytest.fixture(scope="module")
def scorer(artifact):
    return make_scorer(artifact)


@pytest.fixture(scope="module")
def frames():
    from skimage import data

    return [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]


def test_import_runtime_does_not_import_torch():
    code = "import dpiqa_edge.runtime, sys; from dpiqa_edge.runtime import scorer, gate, commands, checker, sources, " \
           "backends, artifact; from dpiqa_edge.runtime.backends import onnx, openvino; " \
           "assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_metadata_drives_preprocessing(scorer):
    assert scorer.preprocess.size == (SIZE, SIZE)
    assert scorer.gate_threshold == 50.0
    assert scorer.score_range == (0.0, 100.0)


def test_every_input_kind_gives_the_same_score(scorer, frames, tmp_path):
    rgb = frames[0]
    path = tmp_path / "a.png"  # PNG: lossless, so the file decodes to exactly ``rgb``
    Image.fromarray(rgb).save(path)
    expected = scorer.score(rgb)
    assert 0.0 <= expected <= 100.0
    # Same pixels through every entry point: the same preprocessing, so exactly the same number.
    assert scorer.score(path) == expected
    assert scorer.score(str(path)) == expected
    assert scorer.score(path.read_bytes()) == expected
    assert scorer.score(Image.fromarray(rgb)) == expected
    assert scorer.score(np.ascontiguousarray(rgb[:, :, ::-1]), bgr=True) == expected
    assert scorer(rgb) == expected


def test_batch_matches_single(scorer, frames):
    single = np.array([scorer.score(f) for f in frames])
    batch = scorer.score_batch(frames)
    assert batch.shape == (len(frames),)
    np.testing.assert_allclose(batch, single, atol=BATCH_TOL)
    small = [np.ascontiguousarray(f[:SIZE, :SIZE]) for f in frames]
    np.testing.assert_allclose(scorer(np.stack(small)), scorer.score_batch(small), atol=0)
    assert scorer.score_batch([]).shape == (0,)


def test_score_follows_the_model(scorer, frames):
    """The stand-in model measures sharpness: a blurred frame must score clearly lower (> 10 points)."""
    import cv2

    sharp = frames[0]
    blurred = cv2.GaussianBlur(sharp, (0, 0), 12)
    assert scorer.score(sharp) > scorer.score(blurred) + 10.0
    s, qmap = scorer.score_with_map(sharp)
    assert qmap.shape == (8, SIZE // 8, SIZE // 8) and np.isfinite(qmap).all()


def test_threads_share_one_scorer_exactly(scorer, frames):
    """8 threads, one scorer, interleaved calls: every result identical to the serial one (exact)."""
    inputs = [frames[i % len(frames)] for i in range(16)]
    serial = [scorer.score(f) for f in inputs]
    results: dict[int, list[float]] = {}
    barrier = threading.Barrier(8)

    def work(t: int) -> None:
        barrier.wait()
        results[t] = [scorer.score(f) for f in inputs]

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[t] == serial for t in range(8))


def test_unsafe_backend_is_serialised(artifact, frames):
    """A backend declaring thread_safe=False is never entered by two threads at once."""
    inner = StandInOnnx(artifact)
    active, worst = [0], [0]
    lock = threading.Lock()

    class Unsafe:
        name, precision, dynamic_batch, thread_safe, metadata = "fake", "fp32", True, False, inner.metadata

        def run(self, x):
            with lock:
                active[0] += 1
                worst[0] = max(worst[0], active[0])
            try:
                return inner.run(x)
            finally:
                with lock:
                    active[0] -= 1

    sc = QualityScorer(backend=Unsafe())
    ts = [threading.Thread(target=lambda: [sc.score(frames[0]) for _ in range(5)]) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert worst[0] == 1


@pytest.mark.parametrize(
    "meta, match",
    [
        ({"preprocessing": None}, "preprocessing"),
        ({"preprocessing": '{"size": [64, 64], "resample": "lanczos9"}'}, "resample"),
        ({"score_range": "zero to a hundred"}, "score_range"),
        ({"higher_is_better": "false"}, "higher_is_better"),
    ],
)
def test_bad_metadata_is_a_model_load_error(artifact, meta, match):
    inner = StandInOnnx(artifact)

    class Backend:
        name, precision, dynamic_batch = "onnx", "fp32", True
        metadata = {k: v for k, v in {**inner.metadata, **meta}.items() if v is not None}
        run = inner.run

    with pytest.raises(ModelLoadError, match=match):
        QualityScorer("model.onnx", backend=Backend())


def test_non_finite_model_output_is_refused(artifact, frames):
    inner = StandInOnnx(artifact)

    class NaNBackend:
        name, precision, dynamic_batch, metadata = "onnx", "fp16", True, inner.metadata

        def run(self, x):
            s, q = inner.run(x)
            return s * np.nan, q

    with pytest.raises(ModelLoadError, match="non-finite"):
        QualityScorer(backend=NaNBackend()).score(frames[0])
