"""Calibration images for post-training INT8: a manifest or a folder of unlabelled frames.

Activation ranges only need representative *inputs*, so labels are never read and a folder of frames
from the target camera is the best calibration set there is. A manifest's test split is never used
(the accuracy gate measures on it); train is preferred, then val when train has too few images.
Images go through the ONE decoder and preprocessing (``runtime.preprocess.Preprocess``), exactly as
the runtime feeds the exported model.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..data.manifest import read_manifest
from ..runtime.preprocess import as_preprocess

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
DEFAULT_N = 300  #: real use; the demo passes ~128 and the smoke run a handful


def calibration_paths(source: str | os.PathLike, n: int = DEFAULT_N, seed: int = 0) -> list[str]:
    """Pick up to ``n`` image paths from a manifest (train first, then val; never test) or a folder.

    The pick is a seeded random sample, returned in a stable (sorted) order so two runs with the same
    seed calibrate on the same images.
    """
    source = Path(source)
    if source.is_dir():
        paths = sorted(str(p) for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not paths:
            raise InputError(f"{source}: no images ({', '.join(IMAGE_EXTENSIONS)}) found for calibration")
        return _sample(paths, n, seed)
    if not source.is_file():
        raise InputError(f"{source}: calibration source not found (give a manifest CSV or a folder of images)")
    manifest = read_manifest(source)
    train = [r.abspath for r in manifest.split("train")]
    val = [r.abspath for r in manifest.split("val")]
    if not train and not val:
        raise InputError(f"{source}: manifest has only test images; calibration never uses the test split")
    picked = _sample(train, n, seed)
    if len(picked) < n:  # top up from val only when train is short
        picked += _sample(val, n - len(picked), seed)
    return sorted(picked)


def _sample(paths: Sequence[str], n: int, seed: int) -> list[str]:
    if n <= 0:
        return []
    if len(paths) <= n:
        return sorted(paths)
    return sorted(random.Random(seed).sample(list(paths), n))


def load_calibration(source: str | os.PathLike, preprocess, n: int = DEFAULT_N, seed: int = 0,
                     progress: bool = True) -> list[np.ndarray]:
    """Decode and preprocess up to ``n`` calibration images.

    Args:
        source: a manifest CSV (train, then val; never test) or a folder searched recursively for images.
        preprocess: a ``Preprocess``, its dict form (an artifact's ``preprocessing`` metadata), or a size.
        n: how many images at most (~300 in real use; fewer is faster and usually as good for MinMax).
        seed: which random subset.
        progress: show a progress bar.

    Returns a list of float32 ``(3, H, W)`` arrays in the model's input range - what ``quantize_onnx``
    and ``quantize_openvino`` take as ``calib``.
    """
    pre = as_preprocess(preprocess)
    paths = calibration_paths(source, n, seed)
    if progress:
        from rich.progress import track

        paths_iter = track(paths, description=f"calibration images ({len(paths)})", transient=True)
    else:
        paths_iter = paths
    return [pre(p) for p in paths_iter]


def as_batches(calib: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Normalise calibration data to single-image float32 ``(1, 3, H, W)`` batches.

    Accepts ``(3, H, W)`` images, ``(1, 3, H, W)`` or larger ``(N, 3, H, W)`` batches (split into
    single images: INT8 artifacts are calibrated at batch 1, the shape they run at on device).
    """
    out: list[np.ndarray] = []
    for i, x in enumerate(calib):
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 3:
            out.append(x[None])
        elif x.ndim == 4:
            out.extend(x[j:j + 1] for j in range(x.shape[0]))
        else:
            raise InputError(f"calibration item {i}: shape {x.shape}; expected (3,H,W) or (N,3,H,W)")
    if not out:
        raise InputError("calibration set is empty")
    return [np.ascontiguousarray(x) for x in out]


def to_raw(batch: np.ndarray) -> np.ndarray:
    """float32 ``(1,3,H,W)`` in 0..1 -> uint8 ``(1,H,W,3)``: the input of ``--raw-input`` artifacts.

    Exact for the shared preprocessing's output (multiples of 1/255), so a raw-input model is
    calibrated on the very pixels it will see.
    """
    return np.ascontiguousarray(np.clip(np.rint(batch * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1))
