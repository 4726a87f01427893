"""``CameraGate``: keep / retake decisions over a stream of camera frames.

A single frame's score jitters (noise, hand shake, autofocus hunting), so the gate decides on the
stream, not on one frame:

1. cheap checks first (numpy only, a few ms): exposure clipping and Laplacian-variance sharpness. A
   frame that is obviously bad fails here by name and the model is not run for it;
2. the model's score is smoothed with an exponential moving average (``smoothing`` = weight of the
   newest frame);
3. hysteresis: the smoothed score must rise above ``threshold + hysteresis`` to count for keep, fall
   below ``threshold - hysteresis`` to count for retake; inside the band the current state holds, so a
   score hovering at the threshold cannot make the verdict flicker;
4. a verdict changes only after ``min_stable`` consecutive frames agree; until the first verdict the gate
   answers ``wait``.

The default threshold is the artifact's ``gate_threshold`` (calibrated on the val split at export).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError
from .image import ImageInput, decode_image

KEEP, RETAKE, WAIT = "keep", "retake", "wait"

#: Luma at or below / at or above which a pixel counts as clipped (crushed shadows / blown highlights).
_DARK, _BRIGHT = 3, 252
#: Frames are shrunk to at most this many pixels on the long side before the cheap checks (speed, and a
#: sharpness number that does not depend on the sensor's resolution).
_CHECK_SIDE = 256
#: ITU-R BT.601 luma weights of R, G, B: the grey the cheap checks look at.
_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class GateDecision:
    """What the gate says about one frame."""

    verdict: str  #: keep | retake | wait
    score: float | None  #: this frame's model score (None when a cheap check short-circuited)
    smoothed: float | None  #: the EMA of scores so far
    reason: str  #: why, in words (names the cheap check or the threshold comparison)
    check: str | None = None  #: name of the cheap check that failed this frame, if any

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "score": self.score, "smoothed": self.smoothed, "reason": self.reason, "check": self.check}


def exposure_clipping(rgb: np.ndarray) -> tuple[float, float]:
    """Fractions of pixels whose luma is crushed to black and blown to white."""
    luma = _luma(rgb)
    return float(np.mean(luma <= _DARK)), float(np.mean(luma >= _BRIGHT))


def sharpness(rgb: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian of the luma (0..255 scale), on a frame shrunk to at most
    256 px on the long side. Sharp photos give hundreds; a heavily defocused frame gives single digits."""
    y = _luma(_shrink(rgb))
    if y.shape[0] < 3 or y.shape[1] < 3:
        return 0.0
    lap = y[1:-1, :-2] + y[1:-1, 2:] + y[:-2, 1:-1] + y[2:, 1:-1] - 4.0 * y[1:-1, 1:-1]
    return float(lap.var())


def _luma(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (np.float32(c) for c in _LUMA)
    return rgb[..., 0] * r + rgb[..., 1] * g + rgb[..., 2] * b


def _shrink(rgb: np.ndarray) -> np.ndarray:
    step = max(1, int(np.ceil(max(rgb.shape[:2]) / _CHECK_SIDE)))
    if step == 1:
        return rgb.astype(np.float32)
    # Box-average step x step blocks: cheap, and it averages noise rather than aliasing it.
    h, w = (rgb.shape[0] // step) * step, (rgb.shape[1] // step) * step
    blocks = rgb[:h, :w].astype(np.float32).reshape(h // step, step, w // step, step, 3)
    return blocks.mean(axis=(1, 3))


class CameraGate:
    """Keep / retake over a frame stream.

    Args:
        threshold: score (0-100) a steady frame must reach to be kept; None takes the scorer's artifact
            metadata ``gate_threshold``.
        scorer: a ``QualityScorer`` used by :meth:`check_frame` (optional when you call :meth:`update`
            with your own scores).
        hysteresis: half-width of the dead band around the threshold, in score points.
        smoothing: EMA weight of the newest score (1.0 = no smoothing).
        min_stable: consecutive frames that must agree before the verdict changes.
        max_clipped: fraction of clipped (black or white) pixels above which a frame is under/overexposed;
            None disables the check.
        min_sharpness: Laplacian variance below which a frame is "blurry" without asking the model;
            None disables the check. The default is deliberately low: it catches a lens cap or total
            defocus, and leaves the judgement of ordinary softness to the model.
    """

    def __init__(
        self,
        threshold: float | None = None,
        scorer: Any = None,
        *,
        hysteresis: float = 2.5,
        smoothing: float = 0.4,
        min_stable: int = 5,
        max_clipped: float | None = 0.6,
        min_sharpness: float | None = 2.0,
    ):
        if threshold is None and scorer is not None:
            threshold = scorer.gate_threshold
        if threshold is None:
            raise ConfigError("camera gate: no threshold given and the artifact metadata has no gate_threshold; pass --threshold")
        if not 0.0 <= float(threshold) <= 100.0:
            raise ConfigError(f"camera gate: threshold {threshold} is outside the 0-100 score scale")
        if not (0.0 < smoothing <= 1.0) or min_stable < 1 or hysteresis < 0:
            raise ConfigError(f"camera gate: need 0 < smoothing <= 1, min_stable >= 1, hysteresis >= 0 (got {smoothing}, {min_stable}, {hysteresis})")
        self.threshold = float(threshold)
        self.scorer = scorer
        self.hysteresis = float(hysteresis)
        self.smoothing = float(smoothing)
        self.min_stable = int(min_stable)
        self.max_clipped = max_clipped
        self.min_sharpness = min_sharpness
        self.reset()

    def reset(self) -> None:
        """Forget the stream (a new scene / a new video)."""
        self.smoothed: float | None = None
        self.verdict = WAIT
        self._candidate: str | None = None
        self._run = 0

    # -- per-frame --------------------------------------------------------------------------------
    def cheap_check(self, rgb: np.ndarray) -> tuple[str, str] | None:
        """(check name, reason) when a frame is obviously unusable, else None."""
        if self.max_clipped is not None:
            dark, bright = exposure_clipping(rgb)
            if dark > self.max_clipped:
                return "underexposed", f"underexposed: {dark:.0%} of pixels crushed to black"
            if bright > self.max_clipped:
                return "overexposed", f"overexposed: {bright:.0%} of pixels blown to white"
        if self.min_sharpness is not None:
            s = sharpness(rgb)
            if s < self.min_sharpness:
                return "blurry", f"blurry: sharpness {s:.1f} < {self.min_sharpness:g}"
        return None

    def check_frame(self, frame: ImageInput, *, bgr: bool = False) -> GateDecision:
        """Decode a frame, run the cheap checks, score it with ``scorer`` if needed, and update."""
        rgb = decode_image(frame, bgr=bgr)
        failed = self.cheap_check(rgb)
        if failed is not None:
            return self.update(None, failed=failed)
        if self.scorer is None:
            raise ConfigError("camera gate: check_frame needs a scorer (or call update(score))")
        return self.update(self.scorer.score(rgb))

    def update(self, score: float | None, *, failed: tuple[str, str] | None = None) -> GateDecision:
        """Feed one frame's score (or a failed cheap check) and get the gate's verdict."""
        # 1. what this frame votes for
        if failed is not None:
            vote, check, why = RETAKE, failed[0], failed[1]
        else:
            score = float(score)
            if not math.isfinite(score):  # one NaN would poison the moving average for good
                raise InputError(f"camera gate: frame score {score} is not finite")
            a = self.smoothing
            self.smoothed = score if self.smoothed is None else a * score + (1.0 - a) * self.smoothed
            check = None
            if self.smoothed >= self.threshold + self.hysteresis:
                vote = KEEP
            elif self.smoothed < self.threshold - self.hysteresis:
                vote = RETAKE
            else:  # inside the dead band: keep the current state (or the threshold side before any verdict)
                vote = self.verdict if self.verdict != WAIT else (KEEP if self.smoothed >= self.threshold else RETAKE)
            cmp = ">=" if self.smoothed >= self.threshold else "<"
            why = f"smoothed score {self.smoothed:.1f} {cmp} threshold {self.threshold:g}"
        # 2. count consecutive agreeing votes; switch only after min_stable of them
        if vote == self._candidate:
            self._run += 1
        else:
            self._candidate, self._run = vote, 1
        if vote != self.verdict and self._run >= self.min_stable:
            self.verdict = vote
        # 3. explain
        if self.verdict == WAIT:
            reason = f"settling: {self._run}/{self.min_stable} stable frames ({why})"
        elif vote != self.verdict:
            reason = f"{self.verdict} held: {self._run}/{self.min_stable} frames voting {vote} ({why})"
        else:
            reason = why
        return GateDecision(self.verdict, None if failed else score, self.smoothed, reason, check)


def judge_image(score: float, threshold: float) -> tuple[str, str]:
    """The gate for a single still image (no stream to smooth): keep when the score reaches the threshold."""
    if score >= threshold:
        return KEEP, f"score {score:.1f} >= threshold {threshold:g}"
    return RETAKE, f"score {score:.1f} < threshold {threshold:g}"
