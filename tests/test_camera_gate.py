"""CameraGate: smoothing, hysteresis, stable-frame counting, cheap checks, and a real generated video."""

from __future__ import annotations

import numpy as np
import pytest

from _runtime_models import export_onnx, make_scorer
from dpiqa_edge.errors import ConfigError, InputError
from dpiqa_edge.runtime.gate import CameraGate, exposure_clipping, judge_image, sharpness


def feed(gate: CameraGate, scores) -> list[str]:
    return [gate.update(s).verdict for s in scores]


def test_waits_for_min_stable_frames_then_keeps():
    gate = CameraGate(50, min_stable=4, smoothing=1.0, hysteresis=2)
    assert feed(gate, [80] * 6) == ["wait"] * 3 + ["keep"] * 3


def test_flip_needs_min_stable_agreeing_frames_and_back():
    gate = CameraGate(50, min_stable=3, smoothing=1.0, hysteresis=2)
    seq = [80] * 3 + [20] * 4 + [80] * 4
    assert feed(gate, seq) == ["wait", "wait", "keep"] + ["keep", "keep", "retake", "retake"] + ["retake", "retake", "keep", "keep"]


def test_one_outlier_frame_does_not_flip():
    gate = CameraGate(50, min_stable=3, smoothing=1.0, hysteresis=2)
    assert feed(gate, [80, 80, 80, 10, 80, 10, 80, 80]) == ["wait", "wait"] + ["keep"] * 6


def test_hysteresis_band_holds_the_verdict():
    """Scores hovering within the band (threshold +- hysteresis) never flip an established verdict."""
    gate = CameraGate(50, min_stable=2, smoothing=1.0, hysteresis=3)
    feed(gate, [70, 70])
    assert feed(gate, [48, 49, 47.5, 51, 48, 49]) == ["keep"] * 6  # below 50 but not below 47
    assert feed(gate, [46, 46]) == ["keep", "retake"]
    assert feed(gate, [52, 52.5, 51]) == ["retake"] * 3  # above 50 but not above 53
    no_band = CameraGate(50, min_stable=2, smoothing=1.0, hysteresis=0)
    feed(no_band, [70, 70])
    assert feed(no_band, [49, 49]) == ["keep", "retake"]


def test_ema_smooths_a_noisy_stream():
    rng = np.random.default_rng(0)
    noisy = 60 + rng.normal(0, 15, 200)  # a steady scene at 60 with heavy jitter
    raw = CameraGate(55, min_stable=3, smoothing=1.0, hysteresis=0)
    smooth = CameraGate(55, min_stable=3, smoothing=0.2, hysteresis=2.5)
    flips = lambda v: sum(a != b for a, b in zip(v, v[1:]))  # noqa: E731
    assert flips(feed(smooth, noisy)) < flips(feed(raw, noisy))
    assert smooth.verdict == "keep"


@pytest.mark.parametrize(
    "frame, check",
    [
        (np.zeros((120, 160, 3), np.uint8), "underexposed"),
        (np.full((120, 160, 3), 255, np.uint8), "overexposed"),
        (np.full((120, 160, 3), 128, np.uint8), "blurry"),
    ],
)
def test_cheap_checks_short_circuit_by_name(frame, check):
    calls = []

    class Scorer:
        gate_threshold = 50.0

        def score(self, x):
            calls.append(1)
            return 99.0

    gate = CameraGate(scorer=Scorer(), min_stable=1)
    d = gate.check_frame(frame)
    assert (d.verdict, d.check, d.score) == ("retake", check, None)
    assert d.reason.startswith(check) and not calls  # the model never ran


def test_cheap_check_numbers(photo):
    dark, bright = exposure_clipping(photo)
    assert dark < 0.2 and bright < 0.2
    assert sharpness(photo) > 50 > sharpness(np.full((64, 64, 3), 7, np.uint8))


def test_threshold_comes_from_metadata_or_fails_clearly():
    class Scorer:
        gate_threshold = 61.5

    assert CameraGate(scorer=Scorer()).threshold == 61.5
    assert CameraGate(40, scorer=Scorer()).threshold == 40
    Scorer.gate_threshold = None
    with pytest.raises(ConfigError, match="--threshold"):
        CameraGate(scorer=Scorer())
    with pytest.raises(ConfigError):
        CameraGate(50, smoothing=0)
    with pytest.raises(ConfigError, match="0-100"):
        CameraGate(150)


def test_non_finite_score_is_refused_and_state_kept():
    gate = CameraGate(50, min_stable=1, smoothing=0.5)
    gate.update(80)
    with pytest.raises(InputError, match="not finite"):
        gate.update(float("nan"))
    assert gate.smoothed == 80 and gate.verdict == "keep"


def test_judge_image():
    assert judge_image(50, 50)[0] == "keep" and judge_image(49.9, 50)[0] == "retake"


def write_video(path, segments, size=96, fps=10):
    from dpiqa_edge.bench.runtime import make_video

    return make_video(path, segments, size=size, fps=fps)


def test_video_flips_keep_retake_keep(tmp_path):
    """Sharp, blurred, sharp: the gate keeps, flips to retake no earlier than min_stable frames into the
    blur (and not much later: EMA lag of a few frames), and back with hysteresis."""
    from dpiqa_edge.runtime.checker import check_sources
    from dpiqa_edge.runtime.sources import expand_inputs

    scorer = make_scorer(export_onnx(tmp_path / "m.onnx"))
    video = write_video(tmp_path / "clip.avi", [(15, 0), (15, 3), (15, 0)])
    min_stable = 4
    recs = list(check_sources(scorer, expand_inputs([str(video)]), threshold=50.0,
                              gate_options={"min_stable": min_stable, "smoothing": 0.5, "hysteresis": 2.5}, batch_size=4))
    assert [r["frame"] for r in recs] == list(range(45))
    verdicts = [r["verdict"] for r in recs]
    # per-frame scores: the model sees the blur (sharp frames well above 50, blurred well below)
    scores = np.array([r["score"] for r in recs])
    assert scores[:15].min() > 60 and scores[15:30].max() < 45
    assert verdicts[: min_stable - 1] == ["wait"] * (min_stable - 1)
    assert set(verdicts[min_stable - 1 : 15]) == {"keep"}
    first_retake = verdicts.index("retake")
    assert 15 + min_stable - 1 <= first_retake <= 15 + min_stable + 3
    assert set(verdicts[first_retake:30]) == {"retake"}
    back = first_retake + 1 + verdicts[first_retake + 1 :].index("keep")
    assert 30 + min_stable - 1 <= back <= 30 + min_stable + 3
    assert set(verdicts[back:]) == {"keep"}
