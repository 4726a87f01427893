"""The shared decoder (runtime/image.py), hardened: every kind of odd or bad input either
decodes correctly or fails with one ImageDecodeError line naming the input and the reason."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dpiqa_edge.errors import ImageDecodeError
from dpiqa_edge.runtime.image import decode_image
from dpiqa_edge.runtime.preprocess import Preprocess

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(w: int, h: int) -> bytes:
    """A PNG that declares w x h RGB pixels and holds none: what a decompression bomb's header looks like."""
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + png_chunk(b"IEND", b"")


def expect_error(src, words: str, name: str | None = None, **kw) -> str:
    with pytest.raises(ImageDecodeError) as info:
        decode_image(src, **kw)
    msg = str(info.value)
    assert "\n" not in msg and words in msg.lower(), msg
    if name is not None:
        assert msg.startswith(name), msg
    return msg


# -- files that cannot be decoded ---------------------------------------------------------------------
JPEG = encode(Image.fromarray(RGB), "JPEG", quality=90)
PNG = encode(Image.fromarray(RGB), "PNG")


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty file"),
        (JPEG[: len(JPEG) // 2], "truncated"),
        (PNG[: len(PNG) - 30], "truncated"),
        (b"just some text, certainly not pixels\n" * 5, "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not an image"),  # right magic, garbage after
        (JPEG[:2] + b"\xff" * 30 + JPEG[32:], "not an image"),  # JPEG header destroyed
        (png_header_only(40_000, 40_000), "too large"),  # 1.6 gigapixels declared
    ],
    ids=["zero-byte", "truncated-jpeg", "truncated-png", "text", "png-magic-garbage", "corrupt-jpeg-header", "bomb"],
)
def test_bad_files_fail_with_one_named_line(tmp_path, content, words):
    path = tmp_path / "bad.img"
    path.write_bytes(content)
    expect_error(path, words, name=str(path))
    if content:  # the same bytes in memory fail the same way
        expect_error(content, words, name=f"<{len(content)} bytes>")


def test_missing_and_folder(tmp_path):
    expect_error(tmp_path / "nope.jpg", "file not found", name=str(tmp_path / "nope.jpg"))
    expect_error(tmp_path, "folder", name=str(tmp_path))
    expect_error(b"", "empty")
    expect_error(12, "unsupported input type int")


def test_pixel_limit_is_ours_and_configurable():
    expect_error(PNG, "too large", max_pixels=20 * 30 - 1)
    assert decode_image(PNG, max_pixels=20 * 30).shape == (20, 30, 3)


# -- odd but valid images decode correctly ------------------------------------------------------------
def test_grey_is_replicated():
    grey = RGB[:, :, 0]
    out = decode_image(encode(Image.fromarray(grey), "PNG"))
    assert out.shape == (20, 30, 3) and (out == grey[:, :, None]).all()


def test_alpha_is_composited_over_white():
    rgba = np.dstack([RGB, np.full((20, 30), 255, np.uint8)])
    rgba[:10, :, 3] = 0  # top half transparent -> white; bottom opaque -> the colour itself
    rgba[10:12, :, 3] = 128  # half transparent -> halfway to white (+-1 for rounding)
    out = decode_image(encode(Image.fromarray(rgba), "PNG")).astype(int)
    assert (out[:10] == 255).all() and (out[12:] == RGB[12:]).all()
    assert np.abs(out[10:12] - (RGB[10:12].astype(float) * 128 / 255 + 255 * 127 / 255)).max() <= 1
    la = Image.fromarray(np.dstack([RGB[:, :, 0], np.zeros((20, 30), np.uint8)]), "LA")
    assert (decode_image(encode(la, "PNG")) == 255).all()
    # the same rule for a camera frame with alpha
    assert (decode_image(rgba)[:10] == 255).all() and (decode_image(rgba)[12:] == RGB[12:]).all()


def test_palette_with_and_without_transparency():
    pal = Image.fromarray(RGB).convert("P")
    expected = np.asarray(pal.convert("RGB"))
    assert (decode_image(encode(pal, "PNG")) == expected).all()
    index0 = np.asarray(pal) == 0
    out = decode_image(encode(pal, "PNG", transparency=0))
    assert (out[index0] == 255).all() and (out[~index0] == expected[~index0]).all()


def test_cmyk_matches_pillows_conversion():
    cmyk = Image.fromarray(RGB).convert("CMYK")
    assert (decode_image(encode(cmyk, "TIFF")) == np.asarray(cmyk.convert("RGB"))).all()
    assert decode_image(encode(cmyk, "JPEG")).shape == (20, 30, 3)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_16_bit_grey_scaled_to_8_bit(fmt):
    a16 = RNG.integers(0, 65536, (20, 30), dtype=np.uint16)
    out = decode_image(encode(Image.fromarray(a16), fmt))
    assert np.abs(out[:, :, 0].astype(int) - np.round(a16 / 257.0)).max() == 0
    assert (out[:, :, 0] == out[:, :, 2]).all()


@pytest.mark.parametrize("ext", [".png", ".tiff"])
def test_16_bit_rgb(ext):
    import cv2

    rgb16 = RNG.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(rgb16[:, :, ::-1]))  # cv2 writes 48-bit RGB from BGR
    assert ok
    out = decode_image(buf.tobytes()).astype(int)
    # Pillow reads 48-bit RGB as 8-bit RGB (high byte); ours for 16-bit grey is /257: at most 1 apart
    assert np.abs(out - rgb16 / 257.0).max() <= 1.0


def test_exif_orientation_decodes_upright():
    """A landscape sensor image tagged 'rotate 90 CW' (orientation 6): decoded portrait, left edge on top."""
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = (255, 0, 0)  # left half red
    stored[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6
    out = decode_image(encode(Image.fromarray(stored), "JPEG", exif=exif.tobytes(), quality=95))
    assert out.shape == (40, 20, 3)
    top, bottom = out[:15].reshape(-1, 3).mean(0), out[25:].reshape(-1, 3).mean(0)
    assert top[0] > 200 > top[2] and bottom[2] > 200 > bottom[0]  # JPEG colour error is a few levels


def test_animated_gif_takes_the_first_frame():
    frames = [Image.fromarray(RGB).convert("P"), Image.fromarray(255 - RGB).convert("P")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    assert (decode_image(gif) == np.asarray(frames[0].convert("RGB"))).all()


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (2, 700)])
def test_images_smaller_than_the_model_input_are_upsampled(shape):
    x = Preprocess(size=(64, 64))(encode(Image.fromarray(RNG.integers(0, 256, (*shape, 3), dtype=np.uint8)), "PNG"))
    assert x.shape == (3, 64, 64) and x.dtype == np.float32 and 0 <= x.min() <= x.max() <= 1


def test_pil_image_inputs_are_not_modified():
    im = Image.fromarray(RGB).convert("LA")
    decode_image(im)
    assert im.mode == "LA"
    assert decode_image(Image.fromarray(RGB)).tobytes() == RGB.tobytes()
    expect_error(Image.new("RGB", (0, 0)), "no pixels", name="<PIL RGB (0, 0)>")


# -- camera arrays ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "arr, words",
    [
        (np.full((4, 4, 3), np.nan, np.float32), "nan"),
        (np.full((4, 4, 3), np.inf), "inf"),
        (np.full((4, 4, 3), 200.0, np.float32), "outside 0..1"),  # a 0..255 float frame
        (np.full((4, 4, 3), -0.5, np.float64), "outside 0..1"),
        (np.full((4, 4, 3), 300, np.int64), "outside 0..255"),
        (np.full((4, 4, 3), -1, np.int8), "outside 0..255"),
        (np.zeros((4, 4, 3), np.complex64), "dtype"),
        (np.zeros((4, 4, 3), object), "dtype"),
        (np.zeros((4, 4, 2), np.uint8), "h x w"),
        (np.zeros((1, 4, 4, 3), np.uint8), "h x w"),
        (np.zeros((0, 4, 3), np.uint8), "no pixels"),
    ],
    ids=["nan", "inf", "float-0-255", "negative-float", "int64-big", "int8-negative", "complex", "object", "2-channels", "4-d", "empty"],
)
def test_bad_frames(arr, words):
    expect_error(arr, words, name=f"<array {arr.dtype} {tuple(arr.shape)}>")


def test_good_frames():
    assert (decode_image(RGB) == RGB).all()
    assert (decode_image(np.ascontiguousarray(RGB[:, :, ::-1]), bgr=True) == RGB).all()
    assert (decode_image(RGB[:, ::2]) == RGB[:, ::2]).all() and decode_image(RGB[:, ::2]).flags.c_contiguous
    assert (decode_image(RGB[:, :, :1])[:, :, 2] == RGB[:, :, 0]).all()
    assert (decode_image(np.full((2, 2, 3), 65535, np.uint16)) == 255).all()
    assert (decode_image(np.full((2, 2, 3), 0.5, np.float16)) == 128).all()
    assert (decode_image(np.full((2, 2), 1.0 + 1e-4)) == 255).all()  # rounding overshoot is tolerated
    assert (decode_image(np.ones((2, 2), bool)) == 255).all()
