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

import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ..io import atomic_write, write_json
from ..metrics import camera_metrics, srcc
from . import families
from .manifest import SEVERITY_LABEL, Row, write_manifest

#: target score (0-100) of level 0 (pristine) .. 5: KADID-10k per-level mean DMOS, see the module docstring
LEVEL_SCORES = (100.0, 83.7, 75.1, 58.7, 38.3, 18.4)
LEVELS = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class CameraDistortion:
    fn: object
    params: tuple[float, ...]  #: levels 1..5 at a 450-px short side
    identity: float  #: the parameter value that changes nothing (level 0)
    geometric: bool = True  #: interpolate the parameter on a log scale (multiplicative parameters)


def _from_family(name: str) -> CameraDistortion:
    f = families.FAMILIES[name]
    return CameraDistortion(f.fn, f.params, f.identity, f.geometric)


#: the eight families the first shipped model was trained and reported on (``families.CAMERA8``); the
#: whole vocabulary, with per-family target scores and groups, is :data:`.families.FAMILIES`
CAMERA8_DISTORTIONS: dict[str, CameraDistortion] = {n: _from_family(n) for n in families.CAMERA8}
#: trained on, never reported: more kinds of blur keep the model from keying on one kernel shape
EXTRA_DISTORTIONS: dict[str, CameraDistortion] = {
    "defocus_blur": CameraDistortion(families.lens_blur, (1.3, 2.1, 3.1, 4.6, 6.6), 0.5),  # disk radius, px
}
ALL_DISTORTIONS = {**CAMERA8_DISTORTIONS, **EXTRA_DISTORTIONS}


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
    return families.interpolate(d.identity, d.params, d.geometric, level)


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
def ladder_families(name: str, names: list[str], per_photo: int | None) -> list[str]:
    """The families photo ``name`` is degraded by: all of ``names``, or ``per_photo`` consecutive ones
    (cyclically) from an offset given by the photo's name, so every family gets about as many ladders and a
    photo's ladders do not depend on which other photos share its split."""
    if not per_photo or per_photo >= len(names):
        return list(names)
    start = zlib.crc32(name.encode()) % len(names)
    return [names[(start + j) % len(names)] for j in range(per_photo)]


@dataclass
class LadderSet:
    """Every photo of a split at preview size: pristine + each reported distortion at levels 1-5.

    ``build(..., families=None)`` keeps the first model's eight distortions on the common severity scale;
    ``families=[...]`` uses the broad vocabulary (:mod:`.families`, each with its own target scores),
    ``per_photo`` spreads them over the photos in rotation, and ``mixtures`` adds that many ladders of a
    random camera-pipeline mixture (distortion ``mixture``; level L scales the mixture's base levels by L).
    """

    refs: list[str]
    scenes: list[str]
    distortions: list[str]
    levels: list[int]
    frames: list[np.ndarray]  #: uint8 H x W x 3 at the preview size
    target_scores: list[float] = field(default_factory=list)  #: per image, 0-100 (synthetic severity)
    tags: dict[str, tuple[str, ...]] = field(default_factory=dict)  #: photo name -> its catalogue tags
    mixes: dict[str, str] = field(default_factory=dict)  #: photo name -> its mixture's families

    @classmethod
    def build(cls, photos, images: list[np.ndarray], short_side: int = 450, seed: int = 0, *,
              families_: list[str] | None = None, per_photo: int | None = None, mixtures: int = 0) -> "LadderSet":
        out = cls([], [], [], [], [])
        names = list(families_) if families_ else None
        for p, img in zip(photos, images):
            frame = eval_frame(img, short_side)
            out.tags[p.name] = tuple(getattr(p, "tags", ()))
            todo = ladder_families(p.name, names, per_photo) if names else list(CAMERA8_DISTORTIONS)
            items = [("pristine", 0)] + [(d, L) for d in todo for L in LEVELS]
            for name, lv in items:
                rng = np.random.default_rng([seed, *map(ord, p.name + name)])
                if lv == 0:
                    out._add(p, name, lv, frame, 100.0)
                elif names:
                    out._add(p, name, lv, families.apply(frame, name, lv, rng), families.score_at(name, lv))
                else:
                    out._add(p, name, lv, apply(frame, name, lv, rng), score_at(lv))
            for m in range(mixtures):
                rng = np.random.default_rng([seed, 7, m, *map(ord, p.name)])
                base = families.random_mixture(rng, names, max_level=1.0)
                out.mixes[p.name] = base.label
                for L in LEVELS:
                    mix = base.scaled(L)
                    out._add(p, "mixture", L, mix.apply(frame, seed + m), mix.score())
        return out

    def _add(self, p, name, lv, frame, target):
        self.refs.append(p.name)
        self.scenes.append(p.scene)
        self.distortions.append(name)
        self.levels.append(lv)
        self.frames.append(frame)
        self.target_scores.append(float(target))

    def targets(self) -> list[float]:
        return list(self.target_scores) if self.target_scores else [score_at(lv) for lv in self.levels]

    def metrics(self, scores, n_boot: int = 1000) -> dict:
        m = camera_metrics(scores, self.refs, self.scenes, self.distortions, self.levels, n_boot=n_boot)
        m["srcc_vs_severity"] = srcc(scores, self.targets())  # secondary: against the synthetic severity labels
        return m


def write_ladders(out_dir, parts, short_side: int = 450):
    """Store ladder sets as lossless PNGs + one ``manifest.csv`` (``mos`` = the level's target score,
    ``split``/``ref``/``scene``/``distortion``/``level``) + ``camera.json`` (what the labels are, the
    distortion parameters, each photo's source). ``parts``: ``(LadderSet, split, photos)`` tuples, e.g. the
    val and the test photos in one manifest (val calibrates the gate threshold, test is held out).
    Returns the manifest path."""
    out = Path(out_dir)
    rows, photos, mixes, names = [], [], {}, set()
    for ladders, split, split_photos in parts:
        photos += [(p, split) for p in split_photos]
        for ref, scene, name, lv, frame, target in zip(ladders.refs, ladders.scenes, ladders.distortions,
                                                        ladders.levels, ladders.frames, ladders.targets()):
            rel = f"images/{ref}/{name}_{lv}.png"
            with atomic_write(out / rel, "wb") as fh:
                Image.fromarray(frame).save(fh, "PNG", compress_level=3)
            rows.append(Row(rel, round(target, 3), split, ref, scene, name, lv))
        mixes.update(ladders.mixes)
        names.update(ladders.distortions)
    path = write_manifest(out / "manifest.csv", rows)
    write_json(out / "camera.json", {
        "label": SEVERITY_LABEL, "short_side": short_side, "level_scores": list(LEVEL_SCORES),
        "distortions": {k: {"params": list(f.params), "identity": f.identity, "group": f.group,
                            "scores": list(f.scores), "score_source": f.source}
                        for k, f in families.FAMILIES.items() if k in names},
        "photos": [{"name": p.name, "scene": p.scene, "split": split, "source": p.source, "tags": list(p.tags),
                    **({"mixture": mixes[p.name]} if p.name in mixes else {})} for p, split in photos],
        "images": len(rows), "references": len({r.ref for r in rows}), "scenes": len({r.scene for r in rows})})
    return path
