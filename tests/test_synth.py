"""The synthetic set: label sanity, scene-grouped splits, determinism, stored losslessly."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from dpiqa_edge.data import synth
from dpiqa_edge.data.manifest import read_manifest
from dpiqa_edge.data.splits import check_disjoint
from dpiqa_edge.errors import ConfigError


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    return read_manifest(synth.synthesize(out, synth.SynthConfig.smoke(), progress=False)), out


@pytest.fixture(scope="module")
def every_distortion(tmp_path_factory):
    """All 13 distortions x 5 levels on one reference at the real 224 px: 66 images.

    The default size on purpose: codec levels are compression ratios, whose effect depends on the size."""
    out = tmp_path_factory.mktemp("all")
    cfg = synth.SynthConfig(crops_per_photo=1, scenes=("astronaut",))
    return read_manifest(synth.synthesize(out, cfg, progress=False))


def _by(rows, *keys):
    d = defaultdict(dict)
    for r in rows:
        d[tuple(getattr(r, k) for k in keys)][r.level] = r.mos
    return d


def test_smoke_counts_and_splits(smoke):
    rows, out = smoke
    assert len(rows) == 3 * (3 * 2 + 1)  # 3 scenes x (3 distortions x 2 levels + pristine)
    per = check_disjoint(rows)  # raises if a scene sits in two splits
    assert all(len(per[s]) == 1 for s in ("train", "val", "test"))  # 3 scenes -> one per split
    info = json.loads((out / "synth.json").read_text())
    assert info["label"] == "synthetic pseudo-MOS" and "SSIM" in info["label_formula"]
    assert info["counts"]["images"] == len(rows)
    img = np.asarray(Image.open(rows[0].abspath))
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    import csv

    measures = list(csv.DictReader((out / "measures.csv").open()))
    assert [float(m["mos"]) for m in measures] == pytest.approx([r.mos for r in rows], abs=1e-3)  # 4-decimal CSVs
    assert all(float(m["ms_ssim"]) <= 1.0 for m in measures)


def test_labels_fall_with_level_and_differ_across_refs(smoke, every_distortion):
    for rows in (smoke[0], every_distortion):
        pristine = {r.ref: r.mos for r in rows if r.distortion == "pristine"}
        assert set(pristine.values()) == {100.0}  # pristine gets the top of the scale
        for (ref, dist), levels in _by([r for r in rows if r.distortion != "pristine"], "ref", "distortion").items():
            vals = [levels[lv] for lv in sorted(levels)]
            assert all(a > b for a, b in zip(vals, vals[1:])), f"{ref}/{dist}: {vals} not falling with level"
            assert vals[0] < 100.0
        # At a fixed (distortion, level) the labels come from measuring, so references differ.
        groups = defaultdict(list)
        for r in rows:
            if r.distortion != "pristine":
                groups[(r.distortion, r.level)].append(r.mos)
        multi = [v for v in groups.values() if len(v) > 1]
        assert all(len(set(v)) == len(v) for v in multi)
        assert multi or len(pristine) == 1  # the smoke has 3 references per (distortion, level)


def test_every_distortion_present_and_grey_skips_colour(every_distortion, tmp_path):
    rows = every_distortion
    assert {r.distortion for r in rows} == set(synth.SYNTH_DISTORTIONS) | {"pristine"} and len(synth.SYNTH_DISTORTIONS) >= 10
    cfg = synth.SynthConfig.smoke(scenes=("camera",), include_grey=True, distortions=("jpeg", "desaturation"))
    grey = read_manifest(synth.synthesize(tmp_path, cfg, progress=False))
    assert {r.distortion for r in grey} == {"pristine", "jpeg"}  # colour distortions skipped on grey scenes
    img = np.asarray(Image.open(grey[0].abspath))
    assert np.array_equal(img[..., 0], img[..., 2])  # stored replicated to RGB
    assert {r.level for r in rows if r.distortion == "jpeg"} == {1, 2, 3, 4, 5}
    mos = np.array([r.mos for r in rows if r.distortion != "pristine"])
    assert mos.min() < 35 and mos.max() > 80  # levels span from barely visible to severe


def test_deterministic_for_a_seed(smoke, tmp_path):
    rows, _ = smoke
    again = read_manifest(synth.synthesize(tmp_path / "a", synth.SynthConfig.smoke(), progress=False))
    assert [(r.path, r.mos, r.split) for r in again] == [(r.path, r.mos, r.split) for r in rows]
    assert np.array_equal(np.asarray(Image.open(again[3].abspath)), np.asarray(Image.open(rows[3].abspath)))
    other = read_manifest(synth.synthesize(tmp_path / "b", synth.SynthConfig.smoke(seed=1), progress=False))
    assert [r.mos for r in other] != [r.mos for r in rows]  # another seed: other crops' noise and split


def test_reuse_and_bad_config(smoke, tmp_path):
    _, out = smoke
    manifest = out / "manifest.csv"
    before = manifest.stat().st_mtime_ns
    synth.synthesize(out, synth.SynthConfig.smoke(), progress=False)  # same config: reused, not rebuilt
    assert manifest.stat().st_mtime_ns == before
    with pytest.raises(ConfigError, match="unknown distortion"):
        synth.synthesize(tmp_path, synth.SynthConfig(distortions=("jpeg", "vignette")))
    with pytest.raises(ConfigError, match="size"):
        synth.synthesize(tmp_path, synth.SynthConfig(size=32))


def test_measure_is_monotone_in_a_simple_case(photo):
    ref = np.asarray(Image.fromarray(photo).resize((96, 96)))
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, ref.shape)
    scores = [synth.measure(ref, np.clip(ref + s * noise, 0, 255).astype(np.uint8))["mos"] for s in (2, 8, 30)]
    assert scores[0] > scores[1] > scores[2]
    assert synth.measure(ref, ref)["mos"] == pytest.approx(100.0)


def test_default_plan_is_big_enough_and_split_by_scene():
    # What `make demo` builds, counted without building it (the real run is timed in the report).
    scenes, refs, split_of, jobs = synth.plan(synth.SynthConfig())
    assert len(jobs) >= 1000 and len(scenes) >= 8
    assert len([s for s, _ in scenes if s in synth.COLOUR_SCENES]) == 8
    assert len({r[0] for r in refs if r[0] == "motorcycle"}) == 1 and sum(r[0] == "motorcycle" for r in refs) == 4
    for split in ("train", "val", "test"):  # every split holds at least one colour scene
        assert any(split_of[s] == split for s in synth.COLOUR_SCENES)


def test_worker_count_does_not_change_the_set(tmp_path, smoke):
    rows, out = smoke  # built with the default worker count (2 on this machine, 1 on a 1-core one)
    one = read_manifest(synth.synthesize(tmp_path, synth.SynthConfig.smoke(workers=1), progress=False))
    assert [(r.path, r.mos, r.split) for r in one] == [(r.path, r.mos, r.split) for r in rows]
    for a, b in zip(one, rows):
        assert (tmp_path / a.path).read_bytes() == (out / b.path).read_bytes()


@pytest.fixture(scope="module")
def user_photo_dir(tmp_path_factory):
    from skimage import data as skd

    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(skd.coffee()).save(d / "My Coffee.jpg", quality=95)  # 600 x 400 colour
    Image.fromarray(skd.camera()[:300, :300]).save(d / "street.png")  # grey (mode L)
    return d


def test_user_photos_become_extra_scenes(user_photo_dir, tmp_path):
    found = synth.user_photos([user_photo_dir])
    assert sorted(found) == ["my_coffee", "street"]  # path-safe names from the file stems
    assert found["my_coffee"][1] is False and found["street"][1] is True  # grey by Pillow's mode
    cfg = synth.SynthConfig.smoke(photos=(str(user_photo_dir),), max_scenes=0,
                                  scenes=("astronaut", "chelsea", "my_coffee", "street"))
    rows = read_manifest(synth.synthesize(tmp_path / "set", cfg, progress=False))
    per_scene = defaultdict(int)
    for r in rows:
        per_scene[r.scene] += 1
    assert set(per_scene) == {"astronaut", "chelsea", "my_coffee", "street"}
    assert per_scene["my_coffee"] == per_scene["astronaut"] == 7  # 1 crop x (3 distortions x 2 levels + pristine)
    check_disjoint(rows)  # the user's scenes are split by scene like the package ones
    pristine = next(r for r in rows if r.scene == "my_coffee" and r.distortion == "pristine")
    assert pristine.mos == 100.0 and np.asarray(Image.open(pristine.abspath)).shape == (64, 64, 3)
    info = json.loads((tmp_path / "set" / "synth.json").read_text())
    assert set(info["config"]["photos_sha256"]) == {"my_coffee", "street"}
    # an edited photo rebuilds the set (the reuse check follows the photos' content, not their paths)
    before = (tmp_path / "set" / "manifest.csv").stat().st_mtime_ns
    synth.synthesize(tmp_path / "set", cfg, progress=False)
    assert (tmp_path / "set" / "manifest.csv").stat().st_mtime_ns == before
    edited = tmp_path / "edited"
    edited.mkdir()
    for f in user_photo_dir.iterdir():
        (edited / f.name).write_bytes(f.read_bytes())
    Image.fromarray(np.asarray(Image.open(edited / "street.png"))[::-1].copy()).save(edited / "street.png")
    cfg2 = synth.SynthConfig.smoke(photos=(str(edited),), max_scenes=0, scenes=cfg.scenes)
    synth.synthesize(tmp_path / "set", cfg2, progress=False)
    assert (tmp_path / "set" / "manifest.csv").stat().st_mtime_ns != before


@pytest.mark.parametrize("make, problem", [
    (lambda p: Image.new("RGB", (300, 200)).save(p), "200 px|300x200 px"),
    (lambda p: p.write_bytes(b"not a jpeg"), "not a readable image"),
])
def test_a_bad_user_photo_is_one_clear_error(tmp_path, make, problem):
    from click.testing import CliRunner

    from dpiqa_edge.cli import main

    bad = tmp_path / "bad.jpg"
    make(bad)
    with pytest.raises(ConfigError, match=problem) as err:
        synth.user_photos([bad])
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    res = CliRunner().invoke(main, ["data", "synth", "--out", str(tmp_path / "out"), "--photos", str(bad), "--smoke"])
    assert res.exit_code != 0 and str(bad) in res.output and not (tmp_path / "out" / "manifest.csv").exists()
