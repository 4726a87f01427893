"""The ONE preprocessing definition (numpy + Pillow). Torch code wraps it (``torch.from_numpy``) and
never re-implements it; every artifact stores it in its metadata, and the runtime rebuilds it from there.

A model's input is always: decoded RGB uint8 -> resized to ``size`` (aspect not kept, as DP-IQA
trains: SPEC "RGB resized to 512x512") with Pillow's ``resample`` filter -> float32 in 0..1 -> NCHW.
Model-specific normalisation (Lite0's ``(x*255-127)/128``, ImageNet mean/std, the teacher's VAE range)
happens *inside* the model, so it is baked into every exported graph and cannot be forgotten on device.
``--raw-input`` exports also bake the ``/255`` and NHWC->NCHW, taking uint8 NHWC frames directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from PIL import Image

from ..errors import ModelLoadError
from .image import ImageInput, decode_image

_RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST, "area": Image.BOX}


@dataclass(frozen=True)
class Preprocess:
    """How pixels become a model input. Stored as ``preprocessing`` in every config and artifact."""

    size: tuple[int, int] = (512, 512)  #: (height, width) of the model input
    resize: str = "stretch"  #: aspect not kept (the only mode DP-IQA uses)
    resample: str = "bilinear"  #: Pillow filter: bilinear | bicubic | nearest | area
    input_range: tuple[float, float] = (0.0, 1.0)  #: pixel scale fed to the model
    layout: str = "NCHW"

    def __post_init__(self):
        if self.resample not in _RESAMPLE:
            raise ModelLoadError(f"preprocessing: unknown resample {self.resample!r}; valid: {sorted(_RESAMPLE)}")
        if self.resize != "stretch":
            raise ModelLoadError(f"preprocessing: unknown resize mode {self.resize!r}; valid: ['stretch']")
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "input_range", tuple(float(v) for v in self.input_range))

    # -- (de)serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["size"] = list(self.size)
        d["input_range"] = list(self.input_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preprocess":
        try:
            return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
        except TypeError as exc:
            raise ModelLoadError(f"preprocessing metadata invalid: {exc}") from None

    # -- the transform ----------------------------------------------------------------------------
    def resize_rgb(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 HxWx3 -> uint8 ``size`` x3 (identity when already that size)."""
        h, w = self.size
        if rgb.shape[0] == h and rgb.shape[1] == w:
            return rgb
        return np.asarray(Image.fromarray(rgb).resize((w, h), _RESAMPLE[self.resample]), dtype=np.uint8)

    def __call__(self, src: ImageInput, *, bgr: bool = False) -> np.ndarray:
        """Any image input -> float32 (3, H, W) in ``input_range``."""
        rgb = self.resize_rgb(decode_image(src, bgr=bgr))
        lo, hi = self.input_range
        x = rgb.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def raw(self, src: ImageInput, *, bgr: bool = False) -> np.ndarray:
        """Any image input -> uint8 (H, W, 3), for ``--raw-input`` artifacts (normalisation in-graph)."""
        return self.resize_rgb(decode_image(src, bgr=bgr))

    def batch(self, srcs: Iterable[ImageInput], *, bgr: bool = False) -> np.ndarray:
        """Several inputs -> float32 (N, 3, H, W)."""
        return np.stack([self(s, bgr=bgr) for s in srcs])


def as_preprocess(obj: Preprocess | dict | Sequence[int] | int) -> Preprocess:
    """Accept a Preprocess, its dict form, an (h, w) pair or a square size."""
    if isinstance(obj, Preprocess):
        return obj
    if isinstance(obj, dict):
        return Preprocess.from_dict(obj)
    if isinstance(obj, int):
        return Preprocess(size=(obj, obj))
    return Preprocess(size=tuple(obj))
