"""Property-based tests: random byte strings, mutated image files, random arrays of any
dtype/shape/channel count, random sizes. The decoder and preprocessing either give a valid result or an
ImageDecodeError - never another exception, never a hang (hypothesis deadline) - and the scorer gives a
score on 0-100. max_examples and deadlines are bounded so the file stays a few seconds on 2 cores."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from _runtime_models import export_onnx, make_scorer
from dpiqa_edge.errors import ImageDecodeError
from dpiqa_edge.runtime.image import decode_image
from dpiqa_edge.runtime.preprocess import Preprocess

# The deadline is generous (decoding a mutated header can allocate a few MB) but turns a hang into a failure.
# DPIQA_HYPOTHESIS_EXAMPLES=2000 for a long fuzzing run.
N = int(os.environ.get("DPIQA_HYPOTHESIS_EXAMPLES", "60"))
FAST = settings(max_examples=N, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def _seed_files() -> list[bytes]:
    rgb = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    out = []
    for fmt, mode in (("PNG", "RGB"), ("PNG", "RGBA"), ("JPEG", "RGB"), ("GIF", "P"), ("TIFF", "CMYK"), ("BMP", "RGB"), ("WEBP", "RGB")):
        buf = io.BytesIO()
        Image.fromarray(rgb).convert(mode).save(buf, fmt)
        out.append(buf.getvalue())
    return out


SEEDS = _seed_files()


def check_decoded(out: np.ndarray) -> None:
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.flags.c_contiguous
    assert out.shape[0] >= 1 and out.shape[1] >= 1


def decode_or_error(src, **kw):
    try:
        out = decode_image(src, **kw)
    except ImageDecodeError as exc:
        assert "\n" not in str(exc) and str(exc)
        return None
    check_decoded(out)
    return out


@FAST
@given(st.binary(max_size=2048))
def test_random_bytes(data):
    decode_or_error(data)


@FAST
@given(st.sampled_from(range(len(SEEDS))), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
       st.one_of(st.none(), st.integers(0, 10**6)))
def test_mutated_image_files(seed, flips, cut):
    """Real files of several formats with bytes overwritten and/or truncated: corrupt headers and data."""
    data = bytearray(SEEDS[seed])
    for pos, value in flips:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    decode_or_error(bytes(data), max_pixels=4_000_000)


DTYPES = st.sampled_from([np.uint8, np.uint16, np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_, np.complex64])


@FAST
@given(hnp.arrays(DTYPES, st.tuples(st.integers(0, 24), st.integers(0, 24), st.sampled_from([0, 1, 2, 3, 4, 5]))
                  .map(lambda s: s[:2] if s[2] == 0 else s)), st.booleans())
def test_random_arrays(arr, bgr):
    out = decode_or_error(arr, bgr=bgr)
    if out is not None:
        assert out.shape[:2] == arr.shape[:2]
    if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3 and arr.size:
        assert out is not None and (out == (arr[:, :, ::-1] if bgr else arr)).all()  # plain RGB is passed through


@FAST
@given(st.integers(1, 300), st.integers(1, 300), st.integers(1, 96), st.integers(1, 96), st.sampled_from(["bilinear", "bicubic", "nearest", "area"]))
def test_preprocess_any_size(h, w, oh, ow, resample):
    rgb = np.random.default_rng(h * 1000 + w).integers(0, 256, (h, w, 3), dtype=np.uint8)
    p = Preprocess(size=(oh, ow), resample=resample)
    x = p(rgb)
    assert x.shape == (3, oh, ow) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert Preprocess.from_dict(p.to_dict()) == p


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    return make_scorer(export_onnx(tmp_path_factory.mktemp("prop") / "m.onnx"))


@settings(max_examples=max(10, N * 2 // 3), deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 80), st.integers(1, 80), st.sampled_from([1, 3, 4]))))
def test_scorer_scores_any_frame_in_range(scorer, frame):
    s = scorer.score(frame)
    assert 0.0 <= s <= 100.0
