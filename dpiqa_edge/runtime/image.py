"""The ONE image decoder. Training, teacher scoring, parity checks, reports and the device runtime all
turn files and camera frames into pixels here, so they can never disagree about what an image is.

Rules (documented in the README, "Failure behaviour"):

* EXIF orientation is applied (``ImageOps.exif_transpose``): a phone photo is scored as it is viewed.
* Output is always an ``H x W x 3`` ``uint8`` RGB array, C-contiguous.
* Mode conversion: ``L``/``1`` (grey) are replicated to RGB; ``P`` (palette) goes through its palette;
  ``CMYK``/``YCbCr``/``LAB``/``HSV`` are converted by Pillow; 16-bit (``I;16*``, ``I``) are scaled to
  8 bits by ``value / 257`` (65535 -> 255); 32-bit float (``F``) is taken as 0..1 if its max is <= 1,
  else 0..255, and clipped.
* Alpha (``RGBA``, ``LA``, ``PA``, palette transparency) is composited over **white** (how a photo with
  transparency is shown on a page); the alpha channel itself is not scored.
* A decompression-bomb limit (``max_pixels``, default 100 MP) is checked from the header before any
  pixel is decoded.
* Arrays (camera frames): ``uint8``/``uint16``/``float`` of shape ``H x W``, ``H x W x 1|3|4``; float
  must be finite and in 0..1 (a 0..255 float frame is an error, not silently clipped to white); other
  integer types only with values in 0..255; ``bgr=True`` swaps channels as OpenCV hands them.

Anything else fails with :class:`~dpiqa_edge.errors.ImageDecodeError`, one line naming the input.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from ..errors import ImageDecodeError

ImageInput = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]

#: Decompression-bomb limit: 100 megapixels (a 108 MP phone sensor is the largest common camera).
MAX_PIXELS = 100_000_000

#: Float frames may overshoot 0..1 by rounding (half an 8-bit step); anything further is a wrong scale.
_FLOAT_SLACK = 0.5 / 255.0

ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error, never silently grey-filled


def _name(src: ImageInput) -> str:
    if isinstance(src, (str, os.PathLike)):
        return str(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return f"<{len(src)} bytes>"
    if isinstance(src, np.ndarray):
        return f"<array {src.dtype} {tuple(src.shape)}>"
    if isinstance(src, Image.Image):
        return f"<PIL {src.mode} {src.size}>"
    return f"<{type(src).__name__}>"


def decode_image(src: ImageInput, *, bgr: bool = False, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a path, bytes, PIL image or array into an ``H x W x 3`` uint8 RGB array (rules above)."""
    if isinstance(src, np.ndarray):
        return _from_array(src, bgr=bgr, name=_name(src))
    name = _name(src)
    if isinstance(src, memoryview):
        src = src.tobytes()
    if isinstance(src, Image.Image):
        opener = lambda: contextlib.nullcontext(src)  # noqa: E731 - the caller's image: never closed here
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.exists():
            raise ImageDecodeError(f"{name}: file not found")
        if path.is_dir():
            raise ImageDecodeError(f"{name}: is a folder, not an image")
        if path.stat().st_size == 0:
            raise ImageDecodeError(f"{name}: empty file (0 bytes)")
        opener = lambda: Image.open(path)  # noqa: E731
    elif isinstance(src, (bytes, bytearray)):
        if not src:
            raise ImageDecodeError(f"{name}: empty input (0 bytes)")
        opener = lambda: Image.open(io.BytesIO(src))  # noqa: E731
    else:
        raise ImageDecodeError(f"{name}: unsupported input type {type(src).__name__}")
    try:
        with warnings.catch_warnings():
            # Our own limit (max_pixels, checked from the header in _from_pil) governs, not Pillow's
            # warning at 89 MP; Pillow's hard error (2x its limit) still stops larger headers in open().
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            # Pillow warns about damaged metadata (corrupt EXIF) and still decodes the pixels: not our noise.
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            with opener() as im:
                return _from_pil(im, name, max_pixels)
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError:
        pillow_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
        limit = min(max_pixels, pillow_limit) if pillow_limit else max_pixels
        raise ImageDecodeError(f"{name}: image too large (over the decompression-bomb limit of {limit} pixels)") from None
    except UnidentifiedImageError:
        raise ImageDecodeError(f"{name}: not an image Pillow can read") from None
    except PermissionError:
        raise ImageDecodeError(f"{name}: not readable (permission denied)") from None
    except MemoryError:
        raise ImageDecodeError(f"{name}: out of memory decoding the image") from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure (OSError, SyntaxError, struct.error, ...) is one line
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ImageDecodeError(f"{name}: corrupt or truncated image ({msg})") from None


def _from_pil(im: Image.Image, name: str, max_pixels: int) -> np.ndarray:
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageDecodeError(f"{name}: image has no pixels ({w}x{h})")
    if w * h > max_pixels:
        raise ImageDecodeError(f"{name}: image too large ({w}x{h} = {w * h} pixels > limit {max_pixels})")
    im.load()  # decode now, so a truncated file fails here
    im = ImageOps.exif_transpose(im)
    mode = im.mode
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba).convert("RGB")
    elif mode.startswith("I;16") or mode == "I":
        arr = np.asarray(im, dtype=np.float64)
        scale = 257.0 if arr.max(initial=0) > 255 or mode.startswith("I;16") else 1.0
        return _grey_to_rgb(np.clip(np.round(arr / scale), 0, 255).astype(np.uint8))
    elif mode == "F":
        arr = np.asarray(im, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ImageDecodeError(f"{name}: float image contains NaN or Inf")
        arr = arr * 255.0 if arr.max(initial=0) <= 1.0 else arr
        return _grey_to_rgb(np.clip(np.round(arr), 0, 255).astype(np.uint8))
    elif mode != "RGB":
        try:
            im = im.convert("RGB")
        except ValueError:  # e.g. LAB/HSV files Pillow reads but cannot convert
            raise ImageDecodeError(f"{name}: cannot convert image mode {mode} to RGB") from None
    out = np.asarray(im, dtype=np.uint8)
    if out.ndim != 3 or out.shape[2] != 3:
        raise ImageDecodeError(f"{name}: could not convert mode {mode} to RGB")
    return np.ascontiguousarray(out)


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))


def _from_array(arr: np.ndarray, *, bgr: bool, name: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageDecodeError(f"{name}: expected an H x W, H x W x 3 or H x W x 4 array")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ImageDecodeError(f"{name}: array has no pixels")
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = np.round(arr.astype(np.float32) / 257.0).astype(np.uint8)
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ImageDecodeError(f"{name}: frame contains NaN or Inf")
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -_FLOAT_SLACK or hi > 1.0 + _FLOAT_SLACK:  # a 0..255 float frame would turn all white
            raise ImageDecodeError(f"{name}: float frame values {lo:g}..{hi:g} outside 0..1; give uint8 or scale to 0..1")
        out = np.clip(np.round(arr.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
    elif arr.dtype == np.bool_ or arr.dtype.kind in "iu":
        if arr.dtype != np.bool_ and (arr.min(initial=0) < 0 or arr.max(initial=0) > 255):
            raise ImageDecodeError(f"{name}: integer values outside 0..255 for dtype {arr.dtype}")
        out = arr.astype(np.uint8) * (255 if arr.dtype == np.bool_ else 1)
    else:
        raise ImageDecodeError(f"{name}: unsupported dtype {arr.dtype}")
    if out.ndim == 2:
        return _grey_to_rgb(out)
    if out.shape[2] == 4:
        rgb, alpha = out[:, :, :3].astype(np.float32), out[:, :, 3:4].astype(np.float32) / 255.0
        out = np.round(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if bgr:
        out = out[:, :, ::-1]
    return np.ascontiguousarray(out)
