"""``dpiqa-edge check``: exit codes (DESIGN: 0 all kept, 1 retake/unreadable, 2 usage/model), JSON lines,
folders, videos, cameras, and the bad-file corpus."""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from _runtime_models import export_onnx, use_stand_in_loader
from dpiqa_edge.cli import main


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return export_onnx(tmp_path_factory.mktemp("art") / "model.onnx")


@pytest.fixture(autouse=True)
def _loader(monkeypatch):
    use_stand_in_loader(monkeypatch)


@pytest.fixture(scope="module")
def sharp():
    from skimage import data

    return data.astronaut()[::4, ::4].copy()  # 128x128: plenty of detail for the sharpness model


def run(*args):
    res = CliRunner().invoke(main, ["check", *map(str, args)])
    assert "Traceback" not in res.output, res.output
    return res


def json_lines(res):
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def test_all_kept_exits_0_and_table_names_inputs(artifact, sharp, tmp_path):
    Image.fromarray(sharp).save(tmp_path / "a.png")
    res = run("--model", artifact, tmp_path / "a.png")
    assert res.exit_code == 0, res.output
    assert "a.png" in res.output and "keep" in res.output


def test_json_lines_and_threshold_override(artifact, sharp, tmp_path):
    Image.fromarray(sharp).save(tmp_path / "a.png")
    ok = json_lines(run("--model", artifact, "--json", tmp_path / "a.png"))
    assert len(ok) == 1 and set(ok[0]) >= {"input", "frame", "score", "verdict", "reason"}
    s = ok[0]["score"]
    res = run("--model", artifact, "--json", "--threshold", min(100, s + 1), tmp_path / "a.png")
    assert res.exit_code == 1 and json_lines(res)[0]["verdict"] == "retake"
    assert run("--model", artifact, "--json", "--threshold", max(0, s - 1), tmp_path / "a.png").exit_code == 0


@pytest.mark.parametrize(
    "args, exit_code, message",
    [
        (["--model", "{tmp}/nope.onnx", "{img}"], 2, "nope.onnx"),
        (["--model", "{art}"], 2, "at least one"),
        (["--model", "{art}", "--threshold", "150", "{img}"], 2, "threshold"),
        (["--model", "{art}", "{tmp}/missing.jpg"], 1, "missing.jpg: file not found"),
        (["--model", "{art}", "--camera", "57", "--frames", "2"], 1, "camera:57"),
        (["--model", "{art}", "{tmp}/missing.mp4"], 1, "missing.mp4: file not found"),
    ],
)
def test_exit_codes(artifact, sharp, tmp_path, args, exit_code, message):
    Image.fromarray(sharp).save(tmp_path / "a.png")
    args = [a.format(tmp=tmp_path, art=artifact, img=tmp_path / "a.png") for a in args]
    res = run(*args)
    assert res.exit_code == exit_code, res.output
    assert message in res.output


def test_model_without_threshold_is_named(sharp, tmp_path):
    art = export_onnx(tmp_path / "nothr.onnx", threshold=None)
    Image.fromarray(sharp).save(tmp_path / "a.png")
    res = run("--model", art, tmp_path / "a.png")
    assert res.exit_code == 2 and "gate_threshold" in res.output


def test_recursive_folder_and_batching(artifact, sharp, tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for i in range(5):
        Image.fromarray(np.roll(sharp, 7 * i, axis=1)).save(tmp_path / "d" / f"{i}.png")
    Image.fromarray(sharp).save(tmp_path / "d" / "sub" / "deep.jpg")
    (tmp_path / "d" / ".hidden.png").write_bytes(b"not even an image")
    (tmp_path / "d" / "notes.txt").write_text("not an image extension: skipped in folders")
    one = json_lines(run("--model", artifact, "--json", "--batch-size", "1", tmp_path / "d"))
    four = json_lines(run("--model", artifact, "--json", "--batch-size", "4", tmp_path / "d"))
    assert [r["input"].split("/")[-1] for r in one] == ["0.png", "1.png", "2.png", "3.png", "4.png", "deep.jpg"]
    # batch 1 vs batch 4: float32 rounding of different kernels only (scores printed to 4 decimals)
    np.testing.assert_allclose([r["score"] for r in one], [r["score"] for r in four], atol=1e-3)
    flat = json_lines(run("--model", artifact, "--json", "--no-recursive", tmp_path / "d"))
    assert len(flat) == 5


def test_video_json_per_frame(artifact, tmp_path):
    from test_camera_gate import write_video

    video = write_video(tmp_path / "v.avi", [(8, 0)])
    res = run("--model", artifact, "--json", "--min-stable", "3", video)
    recs = json_lines(res)
    assert [r["frame"] for r in recs] == list(range(8))
    assert [r["verdict"] for r in recs] == ["wait"] * 2 + ["keep"] * 6 and res.exit_code == 0
    table = run("--model", artifact, "--min-stable", "3", "--frames", "5", video)
    assert "frames 2-4" in table.output and table.exit_code == 0


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bad_corpus(folder, sharp) -> dict[str, str]:
    """Write bad files beside good ones; return {bad file name: words its reason must contain}."""
    import io

    jpeg = io.BytesIO()
    Image.fromarray(sharp).save(jpeg, "JPEG", quality=90)
    jpeg = jpeg.getvalue()
    png = io.BytesIO()
    Image.fromarray(sharp).save(png, "PNG")
    png = png.getvalue()
    bomb = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0)) + _png_chunk(b"IEND", b"")
    bad = {
        "zero.jpg": (b"", "empty file"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "truncated.png": (png[: len(png) * 2 // 3], "truncated"),
        "text.png": (b"hello, I am a text file with a .png name\n" * 10, "not an image"),
        "garbage.jpg": (bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)), "not an image"),
        "corrupt_header.jpg": (jpeg[:2] + b"\x00" * 40 + jpeg[42:], "corrupt"),
        "bomb.png": (bomb, "too large"),
        "broken.avi": (b"RIFF\x00\x00\x00\x00AVI garbage" * 20, "video"),
    }
    for name, (data, _) in bad.items():
        (folder / name).write_bytes(data)
    (folder / "sub").mkdir()
    Image.fromarray(sharp).save(folder / "good1.png")
    (folder / "good2.jpg").write_bytes(jpeg)
    Image.fromarray(sharp).convert("L").save(folder / "sub" / "good_grey.png")
    Image.fromarray(sharp).convert("P").save(folder / "sub" / "good_palette.gif")
    return {name: words for name, (_, words) in bad.items()}


def test_bad_file_corpus(artifact, sharp, tmp_path):
    """Issue 9 'done when': every bad file named with its reason, every good file scored, exit 1, no traceback."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    bad = bad_corpus(folder, sharp)
    res = run("--model", artifact, "--json", "--threshold", "1", folder)
    assert res.exit_code == 1
    recs = {r["input"].split("/")[-1]: r for r in json_lines(res)}
    for name, words in bad.items():
        assert recs[name]["verdict"] == "error", (name, recs[name])
        assert name in recs[name]["reason"] and words in recs[name]["reason"].lower(), (name, recs[name]["reason"])
    good = {"good1.png", "good2.jpg", "good_grey.png", "good_palette.gif"}
    assert set(recs) == set(bad) | good
    for name in good:
        assert recs[name]["verdict"] == "keep" and 0 <= recs[name]["score"] <= 100
    # the table view names them too, one line each, still without a traceback
    table = run("--model", artifact, "--threshold", "1", folder)
    assert table.exit_code == 1 and "zero.jpg" in table.output and "Traceback" not in table.output


def test_run_check_function_matches_the_command(artifact, sharp, tmp_path):
    from dpiqa_edge.runtime.checker import run_check

    folder = tmp_path / "corpus"
    folder.mkdir()
    bad_corpus(folder, sharp)
    out = run_check(artifact, [str(folder)], threshold=1.0)
    cli = json_lines(run("--model", artifact, "--json", "--threshold", "1", folder))
    assert [(r["input"], r["verdict"]) for r in out["records"]] == [(r["input"], r["verdict"]) for r in cli]
    assert out["summary"]["exit_code"] == 1 and len(out["summary"]["failed_inputs"]) == 8


def test_camera_path_with_a_stand_in_device(artifact, tmp_path, monkeypatch):
    """No camera here: device 0 is OpenCV reading a generated clip, so --camera runs its real code path
    (one frame per inference call, --frames limit, the gate)."""
    import cv2

    from test_camera_gate import write_video

    clip = write_video(tmp_path / "cam.avi", [(12, 0)])
    real = cv2.VideoCapture
    monkeypatch.setattr(cv2, "VideoCapture", lambda src, *a: real(str(clip)) if src == 0 else real(src, *a))
    res = run("--model", artifact, "--json", "--camera", "0", "--frames", "7", "--min-stable", "3")
    recs = json_lines(res)
    assert [r["input"] for r in recs] == ["camera:0"] * 7 and [r["frame"] for r in recs] == list(range(7))
    assert [r["verdict"] for r in recs] == ["wait", "wait"] + ["keep"] * 5 and res.exit_code == 0
