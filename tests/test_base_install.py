"""The base install (issue 24): the Python API on the shipped model, the README's example, files written with
the user's umask, unreadable files named as unreadable, and every CLI command with the extras absent.

The CLI walk runs ``tests/_block_extras.py`` (a ``sys.meta_path`` finder that refuses every module an extra
brings, as after a plain ``pip install dpiqa-edge``), so it needs no second virtual environment; the wheel in
a real fresh venv is ``tests/test_wheel.py``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpiqa_edge import models
from dpiqa_edge.errors import ModelLoadError
from dpiqa_edge.runtime.scorer import QualityScorer, Verdict

ROOT = Path(__file__).resolve().parents[1]
FRAMES = models.DEFAULT_DIR / "frames"
BLOCK = Path(__file__).with_name("_block_extras.py")


@pytest.fixture(scope="module")
def scorer() -> QualityScorer:
    return QualityScorer(threads=1)


@pytest.fixture(scope="module")
def photo_path() -> Path:
    return FRAMES / "test_coffee_pristine_0.jpg"


# -- the Python API ------------------------------------------------------------------------------------
def test_no_argument_and_default_load_the_shipped_int8_model(scorer):
    named = QualityScorer("default", threads=1)
    assert scorer.metadata == named.metadata
    assert scorer.metadata["precision"] == "int8" and scorer.metadata["target"] == "onnx"
    assert scorer.threshold == pytest.approx(named.threshold) and 0 < scorer.threshold < 100


def test_check_gives_score_verdict_and_threshold_for_every_input_form(scorer, photo_path):
    rgb = np.asarray(Image.open(photo_path).convert("RGB"))
    by_path = scorer.check(photo_path)
    assert isinstance(by_path, Verdict) and by_path.input == str(photo_path)
    assert by_path.threshold == scorer.threshold
    assert by_path.verdict == ("keep" if by_path.score >= by_path.threshold else "retake") and by_path.keep is (by_path.verdict == "keep")
    # the same pixels as a PIL image, an RGB frame and a BGR frame: the same score, exactly (one decoder,
    # one preprocessing, the same deterministic ORT session)
    for other in (scorer.check(Image.open(photo_path)), scorer.check(rgb, channels="RGB"),
                  scorer.check(np.ascontiguousarray(rgb[:, :, ::-1]), channels="BGR"),
                  scorer.check(np.ascontiguousarray(rgb[:, :, ::-1]), bgr=True)):
        assert other.score == by_path.score and other.verdict == by_path.verdict
    # a BGR frame read as RGB is a different image: the channel order matters, so it must be said
    assert scorer.check(np.ascontiguousarray(rgb[:, :, ::-1]), channels="RGB").score != by_path.score


def test_a_colour_frame_without_its_channel_order_is_refused(scorer, photo_path):
    rgb = np.asarray(Image.open(photo_path).convert("RGB"))
    with pytest.raises(ValueError, match="channels='RGB' or channels='BGR'"):
        scorer.check(rgb)
    with pytest.raises(ValueError, match="channels"):
        scorer.check(rgb, channels="RGBA")
    with pytest.raises(ValueError, match="contradicts"):
        scorer.check(rgb, channels="RGB", bgr=True)
    grey = rgb.mean(axis=2).astype(np.uint8)  # a grey frame has no channel order
    assert 0 <= scorer.check(grey).score <= 100


def test_a_batch_gives_one_verdict_per_input_in_order(scorer, photo_path):
    blurred = FRAMES / "test_coffee_gaussian_blur_5.jpg"
    out = scorer.check([photo_path, blurred, Image.open(photo_path)])
    assert [r.input for r in out[:2]] == [str(photo_path), str(blurred)] and out[2].input.startswith("[2] <PIL")
    singles = [scorer.check(p).score for p in (photo_path, blurred)]
    # batch of 3 vs one at a time: the shipped INT8 graph has a fixed batch of 1, so the same calls run
    assert [r.score for r in out[:2]] == singles and out[2].score == singles[0]
    assert out[0].verdict == "keep" and out[1].verdict == "retake"  # pristine kept, level-5 blur retaken
    frames = np.stack([np.asarray(Image.open(p).convert("RGB").resize((320, 240))) for p in (photo_path, blurred)])
    stack = scorer.check(frames, channels="RGB")
    assert len(stack) == 2 and stack[0].input.startswith("[0] <array")
    assert scorer.check([photo_path], threshold=100.0)[0].verdict == "retake"  # threshold= overrides


def _readme_block(title: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split(title, 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, f"README: no python block after {title!r}"
    return match.group(1)


def test_the_readme_api_example_runs(tmp_path, photo_path):
    """The README's Python example, as written, from a folder holding a photo.jpg (what a user has)."""
    code = _readme_block("## Use it from Python")
    (tmp_path / "photo.jpg").write_bytes(photo_path.read_bytes())
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert "keep" in res.stdout and "Traceback" not in res.stderr


# -- files a user can share ------------------------------------------------------------------------------
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, mask, mode):
    from dpiqa_edge.io import current_umask, write_bytes, write_json, write_text

    old = os.umask(mask)
    try:
        assert current_umask() == mask
        files = [write_json(tmp_path / "export.json", {"a": 1}), write_text(tmp_path / "MODEL_CARD.md", "x"),
                 write_bytes(tmp_path / "model.bin", b"\0")]
    finally:
        os.umask(old)
    assert [stat.S_IMODE(f.stat().st_mode) for f in files] == [mode] * 3


def test_unreadable_files_are_named_unreadable_not_missing(tmp_path, monkeypatch):
    """Root reads any file, so the permission error is raised by a stand-in ``open`` for that one path."""
    import builtins
    import shutil

    from dpiqa_edge.io import read_json
    from dpiqa_edge.runtime import artifact as artifact_mod
    from dpiqa_edge.runtime.image import decode_image

    folder = tmp_path / "int8"
    shutil.copytree(models.default_artifact(), folder)
    locked = {folder / "model.onnx", folder / "export.json", tmp_path / "photo.jpg"}
    (tmp_path / "photo.jpg").write_bytes((FRAMES / "calib_00.jpg").read_bytes())
    real_open = builtins.open

    def guarded(file, *a, **kw):
        if isinstance(file, (str, os.PathLike)) and Path(file) in locked:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **kw: guarded(self).read() if self in locked else
                        real_open(self, *a, **kw).read())
    with pytest.raises(ModelLoadError, match=r"export\.json: not readable \(permission denied\)"):
        read_json(folder / "export.json")
    with pytest.raises(ModelLoadError, match=r"model\.onnx: not readable \(permission denied\)"):
        artifact_mod.check_readable(folder / "model.onnx")
    from dpiqa_edge.errors import ImageDecodeError

    with pytest.raises(ImageDecodeError, match=r"photo\.jpg: not readable \(permission denied\)"):
        decode_image(tmp_path / "photo.jpg")


def test_serve_answers_403_for_an_unreadable_file(tmp_path, monkeypatch):
    """The page then says "not readable by the server", not "not found ... export it again"."""
    import threading
    import urllib.error
    import urllib.request

    from dpiqa_edge.web import serve

    (tmp_path / "index.html").write_text("<html></html>")
    (tmp_path / "config.json").write_text("{}")
    real_open = open

    def guarded(file, *a, **kw):
        if str(file).endswith("config.json"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *a, **kw)

    monkeypatch.setattr(serve, "open", guarded, raising=False)
    server = serve.make_server(tmp_path, port=0, quiet=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = serve.url_of(server)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + "config.json", timeout=10)
        assert err.value.code == 403
        assert urllib.request.urlopen(base + "index.html", timeout=10).status == 200
    finally:
        server.shutdown()
        server.server_close()
    page = (ROOT / "dpiqa_edge/web/assets/app.mjs").read_text()
    assert "res.status === 403" in page and "not readable by the server" in page


# -- every command with the extras absent ----------------------------------------------------------------
def _walk_cases(tmp: Path) -> list[tuple[list[str], str | None]]:
    """(argv, the extra the one-line error must name; None = the command works on the base install)."""
    manifest = str(FRAMES / "manifest.csv")
    student = str(models.default_student())
    return [
        (["check", str(FRAMES / "calib_00.jpg")], None),
        (["check", "--json", str(tmp / "clip.mp4")], "video"),
        (["data", "synth", "--out", str(tmp / "synth")], "data"),
        (["teacher", "train", "--data", manifest, "--out", str(tmp / "t"), "--tiny"], "train"),
        (["teacher", "score", "--teacher", str(tmp / "t"), "--data", manifest, "--out", str(tmp / "ts")], "train"),
        (["distill", "--data", manifest, "--targets", str(tmp), "--student", "lite0", "--out", str(tmp / "d")], "train"),
        (["prune", "--student", student, "--ratio", "0.3", "--data", manifest, "--targets", str(tmp), "--out",
          str(tmp / "p")], "train"),
        (["export", "--model", "default", "--target", "onnx"], "onnx"),
        (["export", "--model", "default", "--target", "web", "--precision", "int8"], "onnx"),
        (["export", "--model", "default", "--target", "openvino", "--precision", "int8"], "openvino"),
        (["export", "--model", "default", "--target", "coreml"], "train,coreml"),
        (["export", "--model", student, "--target", "onnx"], "onnx"),
        (["report", "--data", manifest, "--variants", str(models.default_artifact()), "--out", str(tmp / "r")], "report"),
        (["import", str(FRAMES / "calib_00.jpg"), "--out", str(tmp / "imp")], "train"),
        (["bench", "--only", "models", "--quick", "--out", str(tmp / "b.md")], "openvino"),
        (["demo", "--smoke", "--out", str(tmp / "demo")], "all"),
        (["default-model", "--out", str(tmp / "dm")], "all"),
    ]


def test_every_command_names_the_missing_extra_in_one_line(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 64)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("DPIQA_TRACEBACK", None)
    failures = []
    for argv, extra in _walk_cases(tmp_path):
        res = subprocess.run([sys.executable, str(BLOCK), *argv], capture_output=True, text=True, timeout=300,
                             env=env, cwd=tmp_path)
        errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
        if "Traceback" in res.stderr + res.stdout:
            failures.append(f"{argv}: traceback\n{res.stderr[-2000:]}")
        elif extra is None:
            if res.returncode != 0:
                failures.append(f"{argv}: exit {res.returncode} on the base install: {res.stderr[-500:]}")
        elif extra == "video":  # a video is one input among others: exit 1, named in its row (README table)
            rec = json.loads(res.stdout.strip().splitlines()[-1])
            if res.returncode != 1 or "dpiqa-edge[video]" not in rec["reason"]:
                failures.append(f"{argv}: exit {res.returncode}, {rec}")
        elif res.returncode != 2 or len(errors) != 1 or f"pip install 'dpiqa-edge[{extra}]'" not in errors[0]:
            failures.append(f"{argv}: exit {res.returncode}, errors {errors}, expected [{extra}]\n{res.stderr[-800:]}")
    assert not failures, "\n".join(failures)


def test_help_lists_the_extras(tmp_path):
    from click.testing import CliRunner

    from dpiqa_edge.cli import main
    from dpiqa_edge.errors import EXTRAS

    out = CliRunner().invoke(main, ["--help"]).output
    for name in EXTRAS:
        assert f"[{name}]" in out
    readme = (ROOT / "README.md").read_text()
    for name in EXTRAS:
        assert f"`[{name}]`" in readme, name
