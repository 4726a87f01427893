"""Hugging Face ids where a weights folder is taken, resolved through an offline HF cache.

The cache is built in a temporary folder in the layout huggingface_hub itself writes
(``models--org--name/blobs/<sha256>``, ``snapshots/<revision>/<file>`` symlinks into blobs,
``refs/main`` naming the revision), and ``HF_HUB_CACHE`` + ``HF_HUB_OFFLINE=1`` point there: nothing
can touch the network, so an id resolves only if the cache really holds it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("huggingface_hub")

from click.testing import CliRunner  # noqa: E402

from dpiqa_edge.cli import main  # noqa: E402

REV = "0123456789abcdef0123456789abcdef01234567"


def cache_repo(cache: Path, repo: str, src: Path) -> Path:
    """Put every file under ``src`` into ``cache`` as the Hub cache stores a snapshot of ``repo``."""
    root = cache / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(REV)
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        data = f.read_bytes()
        blob = root / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = root / "snapshots" / REV / f.relative_to(src)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return root / "snapshots" / REV


@pytest.fixture
def offline_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """8 images at 64 px: 2 references x 4 blur levels; one reference trains, one validates."""
    from PIL import Image, ImageFilter

    from dpiqa_edge.data.manifest import Row, write_manifest

    root = tmp_path_factory.mktemp("hub-set")
    rng = np.random.default_rng(0)
    rows = []
    for r in range(2):
        ref = Image.fromarray((rng.random((8, 8, 3)) * 255).astype(np.uint8)).resize((64, 64), Image.BICUBIC)
        for lvl in range(4):
            ref.filter(ImageFilter.GaussianBlur(lvl)).save(root / f"{r}_{lvl}.png")
            rows.append(Row(f"{r}_{lvl}.png", 90.0 - 20 * lvl, "train" if r == 0 else "val"))
    return write_manifest(root / "manifest.csv", rows)


def test_teacher_train_takes_sd_and_clip_ids_from_an_offline_cache(offline_cache, manifest, tmp_path):
    from safetensors.torch import load_file

    from dpiqa_edge.teacher.loading import tiny_configs, write_random_sd_folder
    from dpiqa_edge.teacher.prompts import tiny_clip

    sd = cache_repo(offline_cache, "tiny-org/tiny-sd", write_random_sd_folder(tmp_path / "sd", tiny_configs(32), seed=3))
    cache_repo(offline_cache, "tiny-org/tiny-clip", tiny_clip(tmp_path / "clip", projection_dim=32))
    out = tmp_path / "teacher"
    res = CliRunner().invoke(main, ["teacher", "train", "--data", str(manifest), "--out", str(out),
                                    "--sd-path", "tiny-org/tiny-sd", "--clip-path", "tiny-org/tiny-clip",
                                    "--image-size", "64", "--decoder-width", "16", "--map-size", "8",
                                    "--batch-size", "4", "--epochs", "1", "--quiet", "--cpu"])
    assert res.exit_code == 0, res.output
    # the frozen VAE in the trained teacher is the cached snapshot's, tensor for tensor
    cached = load_file(str(sd / "vae" / "diffusion_pytorch_model.safetensors"))
    trained = load_file(str(out / "model.safetensors"))
    assert cached and all(torch.equal(trained[f"vae.{k}"], v) for k, v in cached.items())


def test_an_id_missing_from_the_offline_cache_fails_in_one_line(offline_cache, manifest, tmp_path):
    res = CliRunner().invoke(main, ["teacher", "train", "--data", str(manifest), "--out", str(tmp_path / "o"),
                                    "--sd-path", "stable-diffusion-v1-5/stable-diffusion-v1-5",
                                    "--prompt-embeddings", str(tmp_path / "none.safetensors")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert "stable-diffusion-v1-5/stable-diffusion-v1-5" in line and "HF_HUB_OFFLINE=1" in line
    assert str(offline_cache) in line


def test_paper_student_weights_by_hub_id(offline_cache, tmp_path):
    """The paper student's ImageNet weights as an id: the repo's one safetensors file, loaded strictly."""
    from safetensors.torch import save_file
    from torchvision import models

    from dpiqa_edge.student import StudentConfig, build_student

    torch.manual_seed(5)
    src = models.efficientnet_b0(weights=None).state_dict()
    (tmp_path / "w").mkdir()
    save_file({k: v.contiguous() for k, v in src.items()}, str(tmp_path / "w" / "model.safetensors"))
    cache_repo(offline_cache, "someone/efficientnet-b0-tv", tmp_path / "w")
    model = build_student(StudentConfig(name="paper", variant="b0", input_size=64, map_size=4,
                                        weights="someone/efficientnet-b0-tv"))
    got = model.backbone.model.features.state_dict()
    assert all(torch.equal(got[k], src[f"features.{k}"]) for k in got)


def test_a_local_path_wins_and_a_non_id_is_named(tmp_path, monkeypatch):
    from dpiqa_edge.errors import ModelLoadError
    from dpiqa_edge.hub import resolve_folder

    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert resolve_folder("org/name", "--sd-path") == Path("org/name")  # exists locally: never the Hub
    with pytest.raises(ModelLoadError, match="not found"):
        resolve_folder("no such folder/../x", "--sd-path")
