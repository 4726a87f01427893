"""Camera failures at preview size: 8 capture/codec distortions on a 0-5 severity scale, the severity
score each level is trained toward, and the frames (training draws and held-out ladders) they apply to.

A *frame* is what a phone preview delivers: a whole photo, or a region of it, at a short side of 400-1000
px. Distortions act on the frame at its own pixel scale, before any model resizing, as they do in a
camera: blur, noise, JPEG blocks and resampling live at that scale.

Levels (``PARAMS``) were set by eye on frames with a short side of 450 px so that a level means about the
same visible damage for every distortion: 1 = just visible next to the original, 3 = clearly degraded,
5 = unusable. Each level has one target score on 0-100 (``LEVEL_SCORES``), the same for every
distortion: pristine 100, then the per-level means of KADID-10k's human ratings (Lin, Hosu and Saupe,
"KADID-10k: A Large-scale Artificially Distorted IQA Database", QoMEX 2019; DMOS on 1-5 mapped to 0-100
by (d - 1) / 4) over its types that match camera failures (Gaussian blur, motion blur, white noise, JPEG,
pixelate, brighten, darken). The derivation and the table are in docs/camera-model.md. These are
synthetic severity labels: every number measured against them says so.

Continuous levels (``level`` a float in (0, 5]) interpolate each parameter geometrically between the
integer levels (linearly for the contrast factor), and the target score linearly: training draws them.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..errors import ConfigError
from .manifest import SEVERITY_LABEL

#: target score (0-100) of level 0 (pristine) .. 5: KADID-10k per-level mean DMOS, see the module docstring
LEVEL_SCORES = (100.0, 83.7, 75.1, 58.7, 38.3, 18.4)
LEVELS = (1, 2, 3, 4, 5)


# -- the distortions: f(rgb uint8 HxWx3, param, rng) -> rgb uint8 ---------------------------------------
def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _gaussian(x, sigma, rng):
    from scipy.ndimage import gaussian_filter

    return _u8(gaussian_filter(x.astype(np.float32), sigma=(sigma, sigma, 0), mode="reflect", truncate=3.0))


def _motion_kernel(length: float, angle: float) -> np.ndarray:
    """A line PSF ``length`` px long at ``angle`` (radians), antialiased by 4x supersampling."""
    n = int(math.ceil(length)) | 1
    k = np.zeros((n, n), np.float64)
    c = (n - 1) / 2
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, max(2, int(4 * length))):
        y, x = c + t * math.sin(angle), c + t * math.cos(angle)
        y0, x0 = int(math.floor(y)), int(math.floor(x))
        fy, fx = y - y0, x - x0
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
            if 0 <= y0 + dy < n and 0 <= x0 + dx < n:
                k[y0 + dy, x0 + dx] += w
    return k / k.sum()


def _motion(x, length, rng):
    from scipy.signal import fftconvolve

    k = _motion_kernel(float(length), float(rng.uniform(0, math.pi)))
    p = k.shape[0] // 2
    xp = np.pad(x.astype(np.float32), ((p, p), (p, p), (0, 0)), mode="reflect")
    return _u8(fftconvolve(xp, k[:, :, None].astype(np.float32), mode="valid"))


def _linear(x):  # sRGB-like gamma 2.2 <-> linear light, where a sensor counts photons
    return (x.astype(np.float32) / np.float32(255.0)) ** np.float32(2.2)


def _gamma(lin):
    return _u8(np.clip(lin, 0.0, 1.0) ** np.float32(1 / 2.2) * 255.0)


def _noise(x, photons, rng):
    # Shot noise (variance lin / photons, ``photons`` electrons at white) + read noise of 2 electrons, per
    # channel in linear light; the normal approximation of Poisson is exact enough above ~10 electrons.
    lin = _linear(x)
    sd = np.sqrt(lin / np.float32(photons) + np.float32((2.0 / photons) ** 2))
    return _gamma(lin + sd * rng.standard_normal(lin.shape, dtype=np.float32))


def _jpeg(x, quality, rng):
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, "JPEG", quality=int(round(quality)))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


def _resample(x, factor, rng):
    h, w = x.shape[:2]
    small = Image.fromarray(x).resize((max(1, round(w / factor)), max(1, round(h / factor))), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BILINEAR))


def _exposure(x, gain, rng):
    return _gamma(_linear(x) * np.float32(gain))


def _contrast(x, factor, rng):
    m = float(x.mean())
    return _u8(m + (x.astype(np.float32) - m) * np.float32(factor))


def _defocus(x, radius, rng):
    from scipy.signal import fftconvolve

    n = int(math.ceil(radius))
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    k = (xx ** 2 + yy ** 2 <= radius ** 2 + 0.5).astype(np.float32)
    xp = np.pad(x.astype(np.float32), ((n, n), (n, n), (0, 0)), mode="reflect")
    return _u8(fftconvolve(xp, (k / k.sum())[:, :, None], mode="valid"))


@dataclass(frozen=True)
class CameraDistortion:
    fn: object
    params: tuple[float, ...]  #: levels 1..5 at a 450-px short side
    identity: float  #: the parameter value that changes nothing (level 0)
    geometric: bool = True  #: interpolate the parameter on a log scale (multiplicative parameters)


DISTORTIONS: dict[str, CameraDistortion] = {
    "gaussian_blur": CameraDistortion(_gaussian, (0.8, 1.3, 2.0, 3.0, 4.5), 0.25),  # sigma, px
    "motion_blur": CameraDistortion(_motion, (4, 7, 11, 17, 26), 1.0),  # streak length, px
    "sensor_noise": CameraDistortion(_noise, (800, 300, 130, 60, 28), 20000.0),  # electrons at white
    "jpeg": CameraDistortion(_jpeg, (50, 28, 17, 11, 7), 95.0),  # JPEG quality
    "resampling": CameraDistortion(_resample, (1.7, 2.3, 3.1, 4.3, 6.0), 1.0),  # down then up, factor
    "underexposure": CameraDistortion(_exposure, (0.5, 0.33, 0.2, 0.12, 0.06), 1.0),  # linear gain
    "overexposure": CameraDistortion(_exposure, (1.4, 1.9, 2.6, 3.6, 5.0), 1.0),  # linear gain
    "low_contrast": CameraDistortion(_contrast, (0.7, 0.54, 0.41, 0.3, 0.2), 1.0, geometric=False),  # factor
}
#: trained on, never reported: more kinds of blur keep the model from keying on one kernel shape
EXTRA_DISTORTIONS: dict[str, CameraDistortion] = {
    "defocus_blur": CameraDistortion(_defocus, (1.3, 2.1, 3.1, 4.6, 6.6), 0.5),  # disk radius, px
}
ALL_DISTORTIONS = {**DISTORTIONS, **EXTRA_DISTORTIONS}


def distortion(name: str) -> CameraDistortion:
    try:
        return ALL_DISTORTIONS[name]
    except KeyError:
        raise ConfigError(f"camera: unknown distortion {name!r}; valid: {', '.join(ALL_DISTORTIONS)}") from None


def param_at(name: str, level: float) -> float:
    """The distortion parameter at a (possibly fractional) level in (0, 5]."""
    d = distortion(name)
    if not 0.0 < level <= 5.0:
        raise ConfigError(f"camera: level must be in (0, 5], got {level}")
    pts = (d.identity,) + d.params
    i = min(int(math.floor(level)), 4)
    f = level - i
    a, b = pts[i], pts[i + 1]
    if d.geometric:
        return float(math.exp((1 - f) * math.log(a) + f * math.log(b)))
    return float((1 - f) * a + f * b)


def score_at(level: float) -> float:
    """The target score (0-100) of a level in [0, 5] (piecewise linear between ``LEVEL_SCORES``)."""
    return float(np.interp(level, np.arange(6), LEVEL_SCORES))


def apply(rgb: np.ndarray, name: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` degraded by ``name`` at ``level`` (0 = unchanged)."""
    if level <= 0:
        return rgb
    return distortion(name).fn(rgb, param_at(name, level), rng)


# -- frames ------------------------------------------------------------------------------------------
def eval_frame(photo: np.ndarray, short_side: int = 450) -> np.ndarray:
    """The whole photo as a preview frame: short side ``short_side`` (never enlarged: a smaller photo keeps
    its own size, since enlarging would blur it), aspect kept, Lanczos like a camera's downscaler."""
    h, w = photo.shape[:2]
    s = min(short_side, h, w) / min(h, w)
    if s >= 1.0:
        return photo
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(photo).resize(size, Image.LANCZOS))


ASPECTS = (4 / 3, 3 / 4, 16 / 9, 9 / 16, 3 / 2, 1.0)


def random_frame(photo: np.ndarray, rng: np.random.Generator, short_side: tuple[int, int] = (400, 640),
                 min_area: float = 0.35) -> np.ndarray:
    """A random preview frame from ``photo``: a region of random aspect (phone formats, portrait or
    landscape) covering at least ``min_area`` of the photo's largest such region, scaled to a random short
    side in ``short_side`` (never enlarged)."""
    h, w = photo.shape[:2]
    a = float(ASPECTS[rng.integers(len(ASPECTS))])
    # largest region of aspect a (width / height) inside the photo, then a random fraction of it
    rh = min(h, w / a)
    rw = rh * a
    f = math.sqrt(rng.uniform(min_area, 1.0))
    ch, cw = max(16, int(rh * f)), max(16, int(rw * f))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    region = photo[y0:y0 + ch, x0:x0 + cw]
    target = float(rng.uniform(*short_side))
    s = min(1.0, target / min(ch, cw))
    if s < 1.0:
        region = np.asarray(Image.fromarray(region).resize((max(1, round(cw * s)), max(1, round(ch * s))), Image.LANCZOS))
    return np.ascontiguousarray(region)


# -- ladder sets: every photo of a split at preview size, each reported distortion at levels 1-5 ---------
@dataclass
class LadderSet:
    """Every photo of a split at preview size: pristine + each reported distortion at levels 1-5."""

    refs: list[str]
    scenes: list[str]
    distortions: list[str]
    levels: list[int]
    frames: list[np.ndarray]  #: uint8 H x W x 3 at the preview size

    @classmethod
    def build(cls, photos, images: list[np.ndarray], short_side: int = 450, seed: int = 0) -> "LadderSet":
        out = cls([], [], [], [], [])
        for p, img in zip(photos, images):
            frame = eval_frame(img, short_side)
            for name, lv in [("pristine", 0)] + [(d, L) for d in DISTORTIONS for L in LEVELS]:
                rng = np.random.default_rng([seed, *map(ord, p.name + name)])
                out.refs.append(p.name)
                out.scenes.append(p.scene)
                out.distortions.append(name)
                out.levels.append(lv)
                out.frames.append(frame if lv == 0 else apply(frame, name, lv, rng))
        return out

    def targets(self) -> list[float]:
        return [score_at(lv) for lv in self.levels]

    def metrics(self, scores, n_boot: int = 1000) -> dict:
        from ..metrics import camera_metrics, srcc

        m = camera_metrics(scores, self.refs, self.scenes, self.distortions, self.levels, n_boot=n_boot)
        m["srcc_vs_severity"] = srcc(scores, self.targets())  # secondary: against the synthetic severity labels
        return m


def write_ladders(out_dir, parts, short_side: int = 450):
    """Store ladder sets as lossless PNGs + one ``manifest.csv`` (``mos`` = the level's target score,
    ``split``/``ref``/``scene``/``distortion``/``level``) + ``camera.json`` (what the labels are, the
    distortion parameters, each photo's source). ``parts``: ``(LadderSet, split, photos)`` tuples, e.g. the
    val and the test photos in one manifest (val calibrates the gate threshold, test is held out).
    Returns the manifest path."""
    from pathlib import Path

    from ..io import atomic_write, write_json
    from .manifest import Row, write_manifest

    out = Path(out_dir)
    rows, photos = [], []
    for ladders, split, split_photos in parts:
        photos += [(p, split) for p in split_photos]
        for ref, scene, name, lv, frame in zip(ladders.refs, ladders.scenes, ladders.distortions, ladders.levels,
                                                ladders.frames):
            rel = f"images/{ref}/{name}_{lv}.png"
            with atomic_write(out / rel, "wb") as fh:
                Image.fromarray(frame).save(fh, "PNG", compress_level=3)
            rows.append(Row(rel, score_at(lv), split, ref, scene, name, lv))
    path = write_manifest(out / "manifest.csv", rows)
    write_json(out / "camera.json", {
        "label": SEVERITY_LABEL, "short_side": short_side, "level_scores": list(LEVEL_SCORES),
        "distortions": {k: {"params": list(d.params), "identity": d.identity} for k, d in DISTORTIONS.items()},
        "photos": [{"name": p.name, "scene": p.scene, "split": split, "source": p.source, "tags": list(p.tags)}
                   for p, split in photos],
        "images": len(rows), "references": len({r.ref for r in rows}), "scenes": len({r.scene for r in rows})})
    return path
