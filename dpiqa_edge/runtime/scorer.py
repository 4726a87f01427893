"""``QualityScorer``: any exported artifact -> quality on 0-100 for paths, PIL images, camera frames.

One path from artifact to score (ARCHITECTURE.md): the artifact is opened by
``runtime.backends.load_backend`` and its own metadata says how to preprocess (``Preprocess.from_dict``),
so the device cannot disagree with the export about resizing. No torch anywhere on this path.

Thread safety: the scorer holds only immutable state (a frozen ``Preprocess``, numbers read from the
metadata) and the backend. onnxruntime's ``InferenceSession.run`` is documented thread-safe; a backend
that is not (``backend.thread_safe is False``) is serialised with a lock here, so several threads may
share one scorer and get exactly the serial scores (tests/test_runtime_scorer.py checks 8 threads).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import ModelLoadError
from ..models import default_artifact
from ..quiet import default_log, third_party_output
from .backends import load_backend
from .backends.coreml_mil import import_coremltools_for_reading
from .image import ImageInput, _name
from .preprocess import Preprocess

#: ``channels=`` values: how a colour numpy frame's last axis is ordered (OpenCV frames are BGR)
CHANNELS = ("RGB", "BGR")


@dataclass(frozen=True)
class Verdict:
    """One image's result: ``score`` on 0-100 (higher = better), ``verdict`` ``keep`` when score >= threshold
    else ``retake``, the ``threshold`` used, and which ``input`` it was (a path, or a short description)."""

    score: float
    verdict: str
    threshold: float
    input: str

    @property
    def keep(self) -> bool:
        return self.verdict == "keep"


def _is_frame_batch(src: Any) -> bool:
    return isinstance(src, (list, tuple)) or (isinstance(src, np.ndarray) and src.ndim == 4)


def channels_to_bgr(channels: str | None, bgr: bool | None, src: Any = None, *, required: bool = False) -> bool:
    """``channels="RGB"|"BGR"`` or ``bgr=`` -> the decoder's ``bgr`` flag. With ``required``, a colour numpy
    frame with neither is a ValueError: the array alone cannot say which order its channels are in."""
    if channels is not None:
        if str(channels).upper() not in CHANNELS:
            raise ValueError(f"channels={channels!r}; give 'RGB' or 'BGR'")
        flag = str(channels).upper() == "BGR"
        if bgr is not None and bool(bgr) != flag:
            raise ValueError(f"channels={channels!r} contradicts bgr={bgr!r}")
        return flag
    if bgr is not None:
        return bool(bgr)
    if required:
        frames = src if _is_frame_batch(src) and not isinstance(src, np.ndarray) else [src]
        for f in frames:
            if isinstance(f, np.ndarray) and f.ndim >= 3 and f.shape[-1] in (3, 4):
                raise ValueError("a colour numpy frame: say how its channels are ordered, channels='RGB' or "
                                 "channels='BGR' (OpenCV frames are BGR)")
    return False


def _load_backend(artifact: Any, **kwargs: Any) -> Any:
    """The one loader (``runtime.backends.load_backend``), behind a seam the tests can replace."""
    return load_backend(artifact, **kwargs)


#: artifact files whose libraries print while they load (coremltools' version warnings and pass bars,
#: OpenVINO's plugin messages); onnxruntime is told to be quiet by its session options
_NOISY = ("model.mlpackage", "model.xml")


def is_coreml(artifact: Any) -> bool:
    """An ``.mlpackage`` or an export folder holding one (by name only: nothing is imported)."""
    from pathlib import Path

    p = Path(str(artifact))
    return p.suffix == ".mlpackage" or (p.is_dir() and (p / "model.mlpackage").exists())


def read_only_coreml(artifacts) -> Any:
    """For a command that only reads models (``check``, ``report``): where one of ``artifacts`` is CoreML on
    Linux, import coremltools now without the converter libraries it probes (~2 s instead of ~15 s with
    torch installed; ``coreml_mil.import_coremltools_for_reading``), its messages sent to the library log.
    Returns that log's path when something was written to it, else None."""
    import sys

    if sys.platform == "darwin" or not any(is_coreml(a) for a in artifacts if a is not None):
        return None

    log = default_log()
    before = log.stat().st_size if log.is_file() else 0
    with third_party_output(log) as where:
        import_coremltools_for_reading()
    return log if where is not None and log.is_file() and log.stat().st_size > before else None


def _noisy(artifact: Any) -> bool:
    from pathlib import Path

    p = Path(str(artifact))
    if p.suffix in (".mlpackage", ".xml"):
        return True
    return p.is_dir() and any((p / name).exists() for name in _NOISY)


def load_quietly(artifact: Any, log_file: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    """``_load_backend`` with what a CoreML / OpenVINO library prints while loading sent to ``log_file``
    (default ``quiet.default_log()``); returns (backend, the log path when something was written there, else
    None). ``--verbose`` / ``DPIQA_VERBOSE=1`` lets it through."""
    if not _noisy(artifact):
        return _load_backend(artifact, **kwargs), None
    from pathlib import Path

    log = Path(log_file) if log_file is not None else default_log()
    before = log.stat().st_size if log.is_file() else 0
    with third_party_output(log) as where:
        backend = _load_backend(artifact, **kwargs)
    wrote = where is not None and log.is_file() and log.stat().st_size > before
    return backend, (log if wrote else None)


def read_metadata_value(meta: dict[str, Any], key: str, default: Any = None) -> Any:
    """A metadata value as a Python object: ONNX metadata_props and rt_info store strings, so JSON text
    is parsed (``"true"`` -> True, ``"62.5"`` -> 62.5, ``'{"size": ...}'`` -> dict); other strings stay."""
    value = meta.get(key, default)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def parse_score_range(value: Any) -> tuple[float, float]:
    """``"0,100"`` / ``[0, 100]`` -> (0.0, 100.0)."""
    try:
        parts = value.split(",") if isinstance(value, str) else list(value)
        lo, hi = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ModelLoadError(f"metadata score_range {value!r} is not 'lo,hi'") from None
    return lo, hi


class QualityScorer:
    """Scores images with one exported artifact.

    ``QualityScorer()`` loads the shipped camera-check model (INT8 ONNX; numpy + Pillow + onnxruntime).
    ``check(x)`` gives a :class:`Verdict` (score, keep/retake, the threshold used) for a path, PIL image or
    numpy frame (say ``channels="RGB"`` or ``"BGR"``), and a list of them for a batch; ``score(x)`` the bare
    number.

    Args:
        artifact: an artifact file (``.onnx``, OpenVINO ``.xml``, ``.mlpackage``) or the export folder
            holding it with ``export.json``; None or ``"default"``: the shipped default model. Ignored when
            ``backend`` is given.
        backend: an already loaded backend (``load_backend``'s result) to wrap instead of loading
            ``artifact``; lets a benchmark or test share one loaded model.
        threads: intra-op threads for the backend (None: the backend's default).
        precision_hint: passed to the loader (e.g. OpenVINO ``"f32"`` to pin f32 instead of bf16 on AMX).
        batch_size: largest batch sent to the backend at once (1 when the artifact has a fixed batch).
        log_file: where CoreML / OpenVINO library output while loading goes (default ``quiet.default_log()``);
            ``library_log`` is that path when they wrote something, else None.
    """

    def __init__(
        self,
        artifact: Any = None,
        backend: Any = None,
        threads: int | None = None,
        precision_hint: str | None = None,
        batch_size: int = 8,
        log_file: Any = None,
    ):
        if backend is None:
            if artifact is None or (isinstance(artifact, str) and artifact == "default"):
                artifact = default_artifact()
            backend, self.library_log = load_quietly(artifact, log_file, precision_hint=precision_hint, threads=threads)
        else:
            self.library_log = None
        self.backend = backend
        self.artifact = artifact
        meta = dict(getattr(backend, "metadata", None) or {})
        self.metadata = meta
        # 1. preprocessing: the artifact's own, never a default guessed here
        pre = read_metadata_value(meta, "preprocessing")
        if not isinstance(pre, dict):
            raise ModelLoadError(f"{artifact}: metadata has no 'preprocessing' (size, resize, resample)")
        self.preprocess = Preprocess.from_dict(pre)
        # 2. how to feed and read the model
        self.raw_input = bool(read_metadata_value(meta, "raw_input", False))
        self.score_range = parse_score_range(read_metadata_value(meta, "score_range", "0,100"))
        if read_metadata_value(meta, "higher_is_better", True) is not True:
            raise ModelLoadError(f"{artifact}: metadata says higher_is_better is not true; dpiqa-edge scores are higher = better")
        threshold = read_metadata_value(meta, "gate_threshold")
        self.gate_threshold = float(threshold) if isinstance(threshold, (int, float)) else None
        self.batch_size = max(1, int(batch_size)) if getattr(backend, "dynamic_batch", False) else 1
        # 3. a lock only for a backend that says it is not safe to call from several threads
        self._lock = threading.Lock() if getattr(backend, "thread_safe", True) is False else None

    # -- description ------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(getattr(self.backend, "name", "?"))

    @property
    def precision(self) -> str:
        return str(getattr(self.backend, "precision", "?"))

    @property
    def label(self) -> str:
        """What ran, for reports: e.g. ``openvino fp32 (ran fp32)``, ``coreml fp32 (emulated on Linux)``."""
        return str(getattr(self.backend, "label", f"{self.name} {self.precision}"))

    def __repr__(self) -> str:
        h, w = self.preprocess.size
        return f"QualityScorer({self.artifact!s}, backend={self.name}, precision={self.precision}, input={h}x{w})"

    # -- preprocessing ----------------------------------------------------------------------------
    def prepare(self, src: ImageInput, *, bgr: bool = False) -> np.ndarray:
        """One input -> the model's per-image tensor (float32 3xHxW, or uint8 HxWx3 for raw-input artifacts).
        Raises ImageDecodeError (one line, naming the input) for anything undecodable."""
        if self.raw_input:
            return self.preprocess.raw(src, bgr=bgr)
        return self.preprocess(src, bgr=bgr)

    # -- inference --------------------------------------------------------------------------------
    def run_prepared(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A stacked batch of ``prepare`` outputs -> (scores (N,), quality maps (N, 8, m, m)), in chunks
        of ``batch_size``. Scores are float64 so callers compare them exactly across threads."""
        if x.ndim != 4 or x.shape[0] == 0:
            raise ValueError(f"expected a non-empty 4-d batch, got shape {x.shape}")
        scores, maps = [], []
        for i in range(0, x.shape[0], self.batch_size):
            chunk = np.ascontiguousarray(x[i : i + self.batch_size])
            if self._lock is not None:
                with self._lock:
                    s, q = self.backend.run(chunk)
            else:
                s, q = self.backend.run(chunk)
            scores.append(np.asarray(s, dtype=np.float64).reshape(-1))
            maps.append(np.asarray(q))
        out = np.concatenate(scores)
        if not np.isfinite(out).all():
            # A model that emits NaN is broken (or its precision overflowed): never report NaN as a score.
            raise ModelLoadError(f"{self.artifact}: the model produced a non-finite score ({self.name} {self.precision})")
        return out, np.concatenate(maps)

    def score(self, src: ImageInput, *, bgr: bool | None = None, channels: str | None = None) -> float:
        """Quality of one image (path, bytes, PIL image, HxWx3 uint8 frame) on 0-100. Frames are taken
        as RGB unless ``channels="BGR"`` (or ``bgr=True``)."""
        flag = channels_to_bgr(channels, bgr)
        return float(self.run_prepared(self.prepare(src, bgr=flag)[None])[0][0])

    def score_batch(self, srcs: Iterable[ImageInput] | np.ndarray, *, bgr: bool | None = None,
                    channels: str | None = None) -> np.ndarray:
        """Qualities of several images; a 4-d uint8 array is taken as N frames (N x H x W x 3)."""
        flag = channels_to_bgr(channels, bgr)
        items: Sequence[Any] = list(srcs) if not isinstance(srcs, np.ndarray) else [f for f in srcs]
        if not items:
            return np.zeros(0, dtype=np.float64)
        return self.run_prepared(np.stack([self.prepare(s, bgr=flag) for s in items]))[0]

    @property
    def threshold(self) -> float | None:
        """The artifact's calibrated keep/retake threshold on 0-100 (its ``gate_threshold`` metadata)."""
        return self.gate_threshold

    def check(self, src: Any, *, channels: str | None = None, bgr: bool | None = None,
              threshold: float | None = None) -> Verdict | list[Verdict]:
        """Score and judge: a :class:`Verdict` for one input, a list for a list (or an N x H x W x 3 stack).

        Args:
            src: a path, bytes, PIL image or numpy frame; or a list of them; or a 4-d frame stack.
            channels: ``"RGB"`` or ``"BGR"``: required for colour numpy frames (OpenCV's are BGR).
            bgr: the same as a bool (``bgr=True`` = ``channels="BGR"``).
            threshold: keep when score >= threshold [default: the artifact's calibrated ``gate_threshold``].
        """
        flag = channels_to_bgr(channels, bgr, src, required=True)
        t = self.gate_threshold if threshold is None else float(threshold)
        if t is None:
            raise ModelLoadError(f"{self.artifact}: metadata has no gate_threshold; pass threshold=")
        if _is_frame_batch(src):
            items = list(src)
            scores = self.score_batch(items, bgr=flag)
            return [self._verdict(s, t, x, i) for i, (s, x) in enumerate(zip(scores, items))]
        return self._verdict(self.score(src, bgr=flag), t, src, None)

    @staticmethod
    def _verdict(score: float, threshold: float, src: Any, index: int | None) -> Verdict:
        name = _name(src)
        if index is not None and name.startswith("<"):  # not a path: say which item of the batch it was
            name = f"[{index}] {name}"
        return Verdict(float(score), "keep" if score >= threshold else "retake", float(threshold), name)

    def score_with_map(self, src: ImageInput, *, bgr: bool | None = None,
                       channels: str | None = None) -> tuple[float, np.ndarray]:
        """Quality and the 8 x m x m quality map (where in the image the model sees problems)."""
        s, q = self.run_prepared(self.prepare(src, bgr=channels_to_bgr(channels, bgr))[None])
        return float(s[0]), q[0]

    def __call__(self, src: Any, *, bgr: bool | None = None, channels: str | None = None):
        """``scorer(x)``: a float for one input, an array for a list (or a 4-d frame stack)."""
        if _is_frame_batch(src):
            return self.score_batch(src, bgr=bgr, channels=channels)
        return self.score(src, bgr=bgr, channels=channels)
