"""The embedded default set: photos that ship inside pip packages x camera/codec distortions, labelled
with a documented **synthetic pseudo-MOS** computed by full-reference measures (the KADIS-700k idea:
FR metrics as weak labels). Every number computed on this set is "synthetic pseudo-MOS", never human MOS.

References (../shared/DATA.md): 8 colour camera scenes (skimage astronaut, chelsea, coffee, rocket, the
motorcycle stereo pair = ONE scene, sklearn china and flower, matplotlib grace_hopper) and optional grey
scenes (camera, coins, moon; replicated to RGB, colour distortions skipped). Each photo gives
``crops_per_photo`` square crops (crop 0 the centred full square, the others seeded), resized to ``size``
with Pillow's LANCZOS; crops of one photo are references of ONE scene and splits are grouped by scene.

Distortions are applied at the stored size and every image is stored as lossless PNG, so the file adds
no distortion of its own (JPEG/JPEG 2000 are encoded, decoded, then stored losslessly).

Label (``LABEL_FORMULA``), per distorted image D against its reference R, all measures from scikit-image:
  ms   = prod_j max(SSIM_j, 0)^w_j over 3 dyadic scales (skimage ``structural_similarity`` on RGB, Gaussian
         window sigma 1.5; scales by ``pyramid_reduce``), w = (0.3, 0.35, 0.35): an MS-SSIM-like structure term
  p    = clip((PSNR - 10) / 35, 0, 1) with ``peak_signal_noise_ratio`` (10 dB -> 0, 45 dB -> 1)
  c    = exp(-mean CIEDE2000 / 10) with ``deltaE_ciede2000`` on ``rgb2lab`` (colour fidelity; 0 dE -> 1)
  mos  = 100 * (0.6 ms + 0.2 p + 0.2 c) ** 1.5
Each term is monotone in its measure and the combination is monotone in each term; pristine images get
100 (ms = p = c = 1). The exponent 1.5 spreads the upper range, where most mild distortions fall.
Labels come from measuring the images, so at a fixed (distortion, level) they differ across references.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageEnhance

from ..errors import ConfigError
from ..io import atomic_write, sha256_file, write_json
from .manifest import Row, write_manifest
from .splits import assign_groups

LABEL_FORMULA = ("mos = 100 * (0.6*ms + 0.2*p + 0.2*c)**1.5; ms = prod_j max(SSIM_j,0)^w_j, 3 scales, "
                 "w=(0.3,0.35,0.35); p = clip((PSNR_dB-10)/35,0,1); c = exp(-mean_CIEDE2000/10)")
SSIM_WEIGHTS = (0.3, 0.35, 0.35)
VERSION = 2  # bump when images or labels change, so a reused folder is rebuilt

# scene -> photos (several photos of one scene stay one group); loaders below.
COLOUR_SCENES = {"astronaut": ("astronaut",), "chelsea": ("chelsea",), "coffee": ("coffee",), "rocket": ("rocket",),
                 "motorcycle": ("motorcycle_left", "motorcycle_right"), "china": ("china",), "flower": ("flower",),
                 "grace_hopper": ("grace_hopper",)}
GREY_SCENES = {"camera": ("camera",), "coins": ("coins",), "moon": ("moon",)}


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp")


def user_photos(paths) -> dict[str, tuple[Path, bool]]:
    """``--photos`` files and folders -> {scene name: (file, is_grey)}, one scene per photo file.

    A folder contributes every image file under it (sorted). Names come from the file stem (made unique
    and path-safe); a photo is grey when Pillow opens it in a one-channel mode. A file that does not open,
    or is smaller than 256 px on its short side, is a one-line ConfigError naming it.
    """
    import re

    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ConfigError(f"{p}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise ConfigError(f"{p}: photo file or folder not found")
    out: dict[str, tuple[Path, bool]] = {}
    reserved = set(COLOUR_SCENES) | set(GREY_SCENES)
    for f in files:
        try:
            with Image.open(f) as im:
                w, h, mode = im.width, im.height, im.mode
        except Exception as exc:  # noqa: BLE001 - any decoder failure is one clear line
            raise ConfigError(f"{f}: not a readable image ({type(exc).__name__}: {exc})") from None
        if min(w, h) < 256:
            raise ConfigError(f"{f}: {w}x{h} px; a reference photo needs >= 256 px on its short side")
        base = re.sub(r"[^A-Za-z0-9_-]+", "_", f.stem).strip("_").lower() or "photo"
        name, k = base, 2
        while name in out or name in reserved:
            name, k = f"{base}_{k}", k + 1
        out[name] = (f.resolve(), mode in ("1", "L", "LA", "I", "I;16", "F"))
    return out


def _load_photo(name: str, path: Path | None = None) -> np.ndarray:
    """A package photo (or the user's file at ``path``) as HxWx3 uint8 (grey replicated to RGB)."""
    from skimage import data as skd

    if path is not None:
        from PIL import ImageOps

        with Image.open(path) as im:
            img = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    elif name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        img = load_sample_image(f"{name}.jpg")
    elif name == "grace_hopper":
        import matplotlib.cbook

        img = np.asarray(Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    elif name.startswith("motorcycle_"):
        left, right, _ = skd.stereo_motorcycle()
        img = left if name.endswith("left") else right
    else:
        img = getattr(skd, name)()
    img = np.asarray(img, dtype=np.uint8)
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else np.ascontiguousarray(img[:, :, :3])


# --- distortions: f(rgb uint8, param, rng) -> rgb uint8; five params from barely visible to severe -------
def _pil(x: np.ndarray) -> Image.Image:
    return Image.fromarray(x)


def _codec(fmt: str, **kw) -> Callable:
    def run(x, q, rng):
        buf = io.BytesIO()
        opts = {"quality": int(q)} if fmt == "JPEG" else {"quality_mode": "rates", "quality_layers": [float(q)]}
        _pil(x).save(buf, fmt, **opts, **kw)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return run


def _convolve(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    from scipy.signal import fftconvolve

    k = k / k.sum()
    ph, pw = k.shape[0] // 2, k.shape[1] // 2
    xp = np.pad(x.astype(np.float64), ((ph, ph), (pw, pw), (0, 0)), mode="reflect")
    out = np.stack([fftconvolve(xp[:, :, c], k, mode="valid") for c in range(3)], axis=2)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def _gaussian(x, sigma, rng):
    from skimage.filters import gaussian

    return np.clip(np.round(gaussian(x.astype(np.float64), sigma=sigma, channel_axis=-1, preserve_range=True)), 0, 255).astype(np.uint8)


def _motion(x, length, rng):
    from skimage.draw import line_aa

    n = int(length) | 1
    angle = rng.uniform(0, np.pi)  # one direction per reference: the rng is keyed by (ref, distortion) only
    # The streak spans n pixels along its major axis at any angle (a plain radius would round a diagonal
    # streak of 5 down to the one of 3).
    c = n // 2
    dy, dx = np.sin(angle), np.cos(angle)
    r = (n - 1) / 2 / max(abs(dy), abs(dx))
    k = np.zeros((n, n))
    rr, cc, val = line_aa(int(round(c - r * dy)), int(round(c - r * dx)), int(round(c + r * dy)), int(round(c + r * dx)))
    k[rr, cc] = np.maximum(k[rr, cc], val)
    return _convolve(x, k)


def _defocus(x, radius, rng):
    n = int(np.ceil(radius))
    yy, xx = np.mgrid[-n:n + 1, -n:n + 1]
    return _convolve(x, (xx ** 2 + yy ** 2 <= radius ** 2 + 0.5).astype(np.float64))  # a lens' flat disk PSF


def _linear(x):  # sRGB-ish gamma 2.2 <-> linear light, where sensors count photons
    return (x.astype(np.float64) / 255.0) ** 2.2


def _gamma(lin):
    return np.clip(np.round(np.clip(lin, 0, 1) ** (1 / 2.2) * 255.0), 0, 255).astype(np.uint8)


def _noise(x, photons, rng):
    # Poisson shot noise (``photons`` electrons at white) + Gaussian read noise of 2 electrons, per channel,
    # in linear light: noise grows with signal, and shadows look noisiest after the gamma, as on a sensor.
    lin = _linear(x)
    shot = rng.poisson(lin * photons) / photons
    return _gamma(shot + rng.normal(0.0, 2.0 / photons, lin.shape))


def _exposure(x, gain, rng):
    return _gamma(_linear(x) * gain)


def _contrast(x, factor, rng):
    m = x.astype(np.float64).mean()
    return np.clip(np.round(m + (x - m) * factor), 0, 255).astype(np.uint8)


def _saturation(x, factor, rng):
    return np.asarray(ImageEnhance.Color(_pil(x)).enhance(factor))


def _resample(x, factor, rng):
    h, w = x.shape[:2]
    small = _pil(x).resize((max(1, round(w / factor)), max(1, round(h / factor))), Image.BICUBIC)
    return np.asarray(small.resize((w, h), Image.BILINEAR))


def _pixelate(x, block, rng):
    h, w = x.shape[:2]
    small = _pil(x).resize((max(1, round(w / block)), max(1, round(h / block))), Image.BOX)
    return np.asarray(small.resize((w, h), Image.NEAREST))


@dataclass(frozen=True)
class Distortion:
    fn: Callable
    params: tuple  #: levels 1..5, barely visible -> severe (at the stored size)
    colour: bool = False  #: needs colour (skipped on grey scenes)


#: the synthetic default set's distortions (``SynthConfig.distortions``), levels 1..5 at the stored size
SYNTH_DISTORTIONS: dict[str, Distortion] = {
    "jpeg": Distortion(_codec("JPEG"), (70, 40, 20, 10, 4)),
    "jpeg2000": Distortion(_codec("JPEG2000"), (16, 40, 80, 160, 320)),  # compression ratio
    "gaussian_blur": Distortion(_gaussian, (0.6, 1.0, 1.6, 2.6, 4.2)),  # sigma, px
    "motion_blur": Distortion(_motion, (3, 5, 9, 15, 23)),  # streak length, px
    "defocus_blur": Distortion(_defocus, (1.0, 1.7, 2.6, 4.0, 6.0)),  # disk radius, px
    "sensor_noise": Distortion(_noise, (3000, 800, 250, 80, 25)),  # photons at white (fewer = noisier)
    "underexposure": Distortion(_exposure, (0.85, 0.62, 0.42, 0.25, 0.12)),  # linear gain
    "overexposure": Distortion(_exposure, (1.2, 1.55, 2.1, 3.1, 5.0)),
    "low_contrast": Distortion(_contrast, (0.85, 0.68, 0.5, 0.34, 0.2)),  # factor about the mean
    "desaturation": Distortion(_saturation, (0.75, 0.5, 0.3, 0.15, 0.0), colour=True),  # PIL Color factor
    "oversaturation": Distortion(_saturation, (1.3, 1.7, 2.3, 3.2, 4.5), colour=True),
    "downscale_upscale": Distortion(_resample, (1.5, 2.0, 3.0, 4.0, 6.0)),  # factor
    "pixelation": Distortion(_pixelate, (2, 3, 4, 6, 8)),  # block, px
}


@dataclass
class SynthConfig:
    """Settings of the synthetic set. ``SynthConfig()`` is the demo's default (>= 1,000 images, 11 scenes)."""

    size: int = 224  #: stored image side (pre-resized to the demo's student input); >= 48 for 3 SSIM scales
    seed: int = 0  #: crops, noise, motion direction and splits all follow it
    levels: int = 5  #: how many of the 5 levels, evenly spread (2 -> levels 1 and 5)
    crops_per_photo: int = 2  #: references per colour photo (one scene)
    grey_crops: int = 1  #: references per grey photo
    workers: int = 0  #: processes that distort and measure (0 = up to 2, one per core); the set is identical for any count
    include_grey: bool = True  #: add camera/coins/moon as extra scenes
    distortions: tuple[str, ...] = tuple(SYNTH_DISTORTIONS)
    max_scenes: int = 0  #: 0 = all; otherwise the first N package scenes (colour, then grey)
    scenes: tuple[str, ...] = ()  #: only these scenes, by name (empty = all); applied before max_scenes
    #: extra reference photos (files or folders; one scene per file), after the package photos; split with
    #: them (colour with colour, grey with grey). Not in the demo's default: they are the user's own.
    photos: tuple[str, ...] = ()
    #: train/val/test, of scenes: 50/25/25 so 8 colour scenes give 4/2/2 (60/20/20 would test on one scene)
    fractions: tuple[float, float, float] = (0.5, 0.25, 0.25)

    @classmethod
    def smoke(cls, **kw) -> "SynthConfig":
        """3 scenes x 1 crop x (3 distortions x 2 levels + pristine) = 21 images at 64 px, a few seconds."""
        base = dict(size=64, levels=2, crops_per_photo=1, grey_crops=1, include_grey=False,
                    distortions=("jpeg", "gaussian_blur", "sensor_noise"), max_scenes=3)
        base.update(kw)
        return cls(**base)

    def validate(self) -> None:
        unknown = [d for d in self.distortions if d not in SYNTH_DISTORTIONS]
        if unknown:
            raise ConfigError(f"synth: unknown distortion(s) {', '.join(unknown)}; valid: {', '.join(SYNTH_DISTORTIONS)}")
        if not self.photos:  # with the user's photos, plan() checks the names once it has read them
            _check_scene_names(self.scenes, set(COLOUR_SCENES) | set(GREY_SCENES))
        if self.size < 48:
            raise ConfigError(f"synth: size must be >= 48 (3 SSIM scales of an 11-px window), got {self.size}")
        if (not 1 <= self.levels <= 5 or self.crops_per_photo < 1 or self.grey_crops < 1 or self.max_scenes < 0
                or self.workers < 0):
            raise ConfigError(f"synth: need 1 <= levels <= 5, crops >= 1, max_scenes >= 0 ({self})")

    def level_ids(self) -> list[int]:
        return sorted({int(round(v)) for v in np.linspace(1, 5, self.levels)}) if self.levels > 1 else [3]


def _rng(seed: int, *keys) -> np.random.Generator:
    """A generator keyed by names (crc32, stable across runs and Python versions)."""
    return np.random.default_rng([seed] + [zlib.crc32(str(k).encode()) for k in keys])


def _crops(photo: np.ndarray, n: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = photo.shape[:2]
    short = min(h, w)
    out = []
    for i in range(n):
        side = short if i == 0 else int(short * rng.uniform(0.55, 0.85))
        y = (h - side) // 2 if i == 0 else int(rng.integers(0, h - side + 1))
        x = (w - side) // 2 if i == 0 else int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(photo[y:y + side, x:x + side]).resize((size, size), Image.LANCZOS)
        out.append(np.asarray(crop))
    return out


def measure(ref: np.ndarray, dist: np.ndarray) -> dict[str, float]:
    """The full-reference measures and the pseudo-MOS of ``dist`` against ``ref`` (module docstring)."""
    from skimage.color import deltaE_ciede2000, rgb2lab
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    from skimage.transform import pyramid_reduce

    r, d = ref.astype(np.float64) / 255.0, dist.astype(np.float64) / 255.0
    ssims = []
    for j in range(len(SSIM_WEIGHTS)):
        if j:
            r, d = pyramid_reduce(r, 2, channel_axis=-1), pyramid_reduce(d, 2, channel_axis=-1)
        ssims.append(structural_similarity(r, d, channel_axis=-1, data_range=1.0, gaussian_weights=True,
                                           sigma=1.5, use_sample_covariance=False))
    ms = float(np.prod([max(s, 0.0) ** w for s, w in zip(ssims, SSIM_WEIGHTS)]))
    psnr = float("inf") if np.array_equal(ref, dist) else float(peak_signal_noise_ratio(ref, dist, data_range=255))
    de = float(deltaE_ciede2000(rgb2lab(ref), rgb2lab(dist)).mean())
    p = float(np.clip((psnr - 10.0) / 35.0, 0.0, 1.0))
    c = float(np.exp(-de / 10.0))
    mos = 100.0 * (0.6 * ms + 0.2 * p + 0.2 * c) ** 1.5
    return {"ms_ssim": ms, "psnr": psnr, "ciede2000": de, "mos": float(np.clip(mos, 0.0, 100.0))}


def _save_png(path: Path, rgb: np.ndarray) -> None:
    with atomic_write(path, "wb") as fh:
        Image.fromarray(rgb).save(fh, "PNG", compress_level=3)


def _make_reference(task) -> tuple[list, list]:
    """Distort, measure and store one reference's jobs -> (manifest rows, measures), in job order."""
    seed, out, scene, ref_name, ref_rgb, todo, split = task
    rows, labels = [], []
    for name, lvl in todo:
        if name == "pristine":
            img, meas = ref_rgb, {"ms_ssim": 1.0, "psnr": float("inf"), "ciede2000": 0.0, "mos": 100.0}
        else:
            dist = SYNTH_DISTORTIONS[name]
            # The rng is keyed by (reference, distortion), not level: the same noise draw / blur direction
            # at every level, so a level differs from the next only in strength.
            img = dist.fn(ref_rgb, dist.params[lvl - 1], _rng(seed, ref_name, name))
            meas = measure(ref_rgb, img)
        rel = f"images/{scene}/{ref_name}/{name}_{lvl}.png"
        _save_png(Path(out) / rel, img)
        rows.append(Row(rel, round(meas["mos"], 4), split, ref_name, scene, name, lvl))
        labels.append(meas)
    return rows, labels


@contextlib.contextmanager
def _pool(workers: int):
    """A process pool (spawned: safe after torch/OpenMP started threads in the parent), or None for 1."""
    if workers <= 1:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def _check_scene_names(wanted, known: set[str]) -> None:
    if any(s not in known for s in wanted):
        raise ConfigError(f"synth: unknown scene(s) in {tuple(wanted)}; valid: {', '.join(sorted(known))}")


def plan(cfg: SynthConfig) -> tuple[list, list, dict[str, str], list]:
    """What a build will make, without making it: (scenes, references, scene -> split, jobs), where a job
    is (reference, distortion, level) and a reference is (scene, name, rgb, is_grey)."""
    cfg.validate()
    # 1. References: scenes -> photos -> crops. The user's photos (one scene each) follow the package ones.
    extra = user_photos(cfg.photos) if cfg.photos else {}
    colour = set(COLOUR_SCENES) | {n for n, (_, g) in extra.items() if not g}
    grey_names = set(GREY_SCENES) | {n for n, (_, g) in extra.items() if g}
    _check_scene_names(cfg.scenes, colour | grey_names)
    scenes = list(COLOUR_SCENES.items()) + (list(GREY_SCENES.items()) if cfg.include_grey else [])
    keep = (lambda name: name in cfg.scenes) if cfg.scenes else (lambda name: True)
    scenes = [(s, p) for s, p in scenes if keep(s)]
    if cfg.max_scenes:  # caps the package scenes; the user's photos are always added
        scenes = scenes[: cfg.max_scenes]
    scenes += [(n, (n,)) for n in extra if keep(n)]
    if not scenes:
        raise ConfigError(f"synth: no scenes selected (scenes={cfg.scenes}, include_grey={cfg.include_grey})")
    refs = []  # (scene, ref name, rgb, is_grey)
    for scene, photos in scenes:
        grey = scene in grey_names
        for photo in photos:
            rgb = _load_photo(photo, extra[photo][0] if photo in extra else None)
            crops = _crops(rgb, cfg.grey_crops if grey else cfg.crops_per_photo, cfg.size,
                           _rng(cfg.seed, "crop", photo))
            refs += [(scene, f"{photo}_c{i}", c, grey) for i, c in enumerate(crops)]

    # 2. Splits by scene, stratified: colour and grey scenes are assigned separately, so val and test
    #    each get colour scenes (a test set of only grey scenes would measure little).
    fractions = dict(zip(("train", "val", "test"), cfg.fractions))
    split_of = {}
    for kind in (colour, grey_names):
        split_of.update(assign_groups([s for s, _ in scenes if s in kind], fractions, cfg.seed) if any(s in kind for s, _ in scenes) else {})

    # 3. Jobs: pristine + every distortion at every level; colour distortions skipped on grey scenes.
    levels = cfg.level_ids()
    jobs = [(ref, name, lvl) for ref in refs for name in ("pristine",) + tuple(cfg.distortions)
            for lvl in ((0,) if name == "pristine" else levels) if not (ref[3] and name != "pristine" and SYNTH_DISTORTIONS[name].colour)]
    return scenes, refs, split_of, jobs


def synthesize(out_dir, cfg: SynthConfig | None = None, progress: bool = True, reuse: bool = True) -> Path:
    """Build the set under ``out_dir`` -> ``out_dir/manifest.csv`` (+ ``synth.json``, ``images/``).

    With ``reuse`` a folder already built with the same config and version is returned as is.
    """
    cfg = cfg or SynthConfig()
    cfg.validate()
    out = Path(out_dir)
    manifest_path, info_path = out / "manifest.csv", out / "synth.json"
    cfg_dict = {k: v for k, v in asdict(cfg).items() if k != "workers"}  # what the set depends on
    if cfg.photos:  # the user's photos by content, so an edited file rebuilds the set
        cfg_dict["photos_sha256"] = {n: sha256_file(f) for n, (f, _) in user_photos(cfg.photos).items()}
    if reuse and manifest_path.is_file() and info_path.is_file():
        try:
            prev = json.loads(info_path.read_text())
            if prev.get("config") == json.loads(json.dumps(cfg_dict)) and prev.get("version") == VERSION:
                return manifest_path
        except (json.JSONDecodeError, OSError):
            pass
    if info_path.is_file():  # our own earlier build with another config: drop its images, no orphans left
        shutil.rmtree(out / "images", ignore_errors=True)
    t0 = time.perf_counter()

    # 1-2. References (crops of the photos), the scene split and the job list.
    scenes, refs, split_of, jobs = plan(cfg)

    # 3. Distort, measure, store: one task per reference (its jobs in order), over ``workers`` processes.
    #    Every random draw is keyed by (seed, reference, distortion), so the set is the same for any count.
    by_ref: dict[str, list] = {}
    for (scene, ref_name, ref_rgb, _), name, lvl in jobs:
        by_ref.setdefault(ref_name, [scene, ref_rgb, []])[2].append((name, lvl))
    tasks = [(cfg.seed, str(out), scene, ref_name, ref_rgb, todo, split_of[scene])
             for ref_name, (scene, ref_rgb, todo) in by_ref.items()]
    workers = cfg.workers or min(2, os.cpu_count() or 1, len(tasks))
    rows, labels = [], []
    from rich.progress import Progress

    with Progress(disable=not progress, transient=False) as bar, _pool(workers) as pool:
        task = bar.add_task(f"synth {len(jobs)} images", total=len(jobs))
        for ref_rows, ref_labels in (pool.map(_make_reference, tasks) if pool else map(_make_reference, tasks)):
            rows += ref_rows
            labels += ref_labels
            bar.advance(task, len(ref_rows))

    # 4. Manifest, the raw measures behind each label, synth.json (config, formula, counts, summary, time).
    write_manifest(manifest_path, rows)
    with atomic_write(out / "measures.csv", "w", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["path", "ms_ssim", "psnr_db", "ciede2000", "mos"])
        w.writerows([r.path, f"{m['ms_ssim']:.6f}", f"{m['psnr']:.4f}", f"{m['ciede2000']:.4f}", f"{m['mos']:.4f}"]
                    for r, m in zip(rows, labels))
    seconds = time.perf_counter() - t0
    write_json(info_path, {
        "version": VERSION, "label": "synthetic pseudo-MOS", "score_range": [0, 100], "higher_is_better": True,
        "label_formula": LABEL_FORMULA, "config": cfg_dict,
        "distortion_params": {k: list(SYNTH_DISTORTIONS[k].params) for k in cfg.distortions},
        "counts": summarize(rows), "label_summary": label_summary(rows), "seconds": round(seconds, 1),
    })
    return manifest_path


def summarize(rows) -> dict:
    """Image / scene / reference counts, overall and per split."""
    out = {"images": len(rows), "scenes": len({r.scene or r.group for r in rows}), "refs": len({r.ref for r in rows if r.ref})}
    for s in ("train", "val", "test"):
        sub = [r for r in rows if r.split == s]
        out[s] = {"images": len(sub), "scenes": sorted({r.scene or r.group for r in sub})}
    return out


def label_summary(rows) -> dict:
    """Per distortion: mean pseudo-MOS per level and the min/max over references."""
    out: dict = {}
    for r in rows:
        if r.mos is not None:
            out.setdefault(r.distortion, {}).setdefault(str(r.level), []).append(r.mos)
    return {d: {lvl: {"mean": round(float(np.mean(v)), 1), "min": round(float(np.min(v)), 1),
                      "max": round(float(np.max(v)), 1)} for lvl, v in sorted(levels.items())}
            for d, levels in out.items()}
