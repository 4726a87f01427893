"""The camera photo pool, distortions, ladders and metrics (numpy only, package photos, no model)."""

import numpy as np
import pytest

from dpiqa_edge.data import camera
from dpiqa_edge.data import photos as pool
from dpiqa_edge.data.manifest import SEVERITY_LABEL, mos_label, read_manifest
from dpiqa_edge.errors import ConfigError
from dpiqa_edge.metrics import camera_metrics, ladder_taus, pristine_auc


@pytest.fixture(scope="module")
def coffee():
    """A held-out package photo (skimage coffee, 600 x 400) as a preview frame."""
    p = next(p for p in pool.CATALOGUE if p.name == "coffee")
    return camera.eval_frame(pool.package_photo(p), 450)


def test_catalogue_is_split_by_scene_and_keeps_out_reserved_packages():
    names = [p.name for p in pool.CATALOGUE]
    assert len(names) == len(set(names))
    split_of = {}
    for p in pool.CATALOGUE:
        assert p.split in pool.SPLITS
        assert split_of.setdefault(p.scene, p.split) == p.split, f"scene {p.scene} in two splits"
        assert not p.package.startswith(pool.RESERVED_PACKAGES)
        assert p.package in pool.LICENCES, f"{p.name}: no licence recorded for {p.package}"
    # the pool the camera model needs: >= 160 photos, >= 60 training photos, a validation split for the
    # epoch and the threshold, held-out scenes of every kind asked for
    assert len(pool.CATALOGUE) >= 160 and len(pool.catalogue("train")) >= 60
    assert len(pool.catalogue("val")) >= 32 and len(pool.catalogue("test")) >= 45
    test_tags = {t for p in pool.catalogue("test") for t in p.tags}
    assert {"night", "indoor", "face", "sky", "day", "low-texture", "animal"} <= test_tags
    # intentional photography (blur, darkness or flat texture chosen by the photographer) in every split
    intentional = {s: [p for p in pool.catalogue(s) if set(p.tags) & set(pool.INTENTIONAL_TAGS)] for s in pool.SPLITS}
    assert sum(map(len, intentional.values())) >= 35
    assert len(intentional["val"]) >= 8 and len(intentional["test"]) >= 10 and len(intentional["train"]) >= 8


@pytest.mark.parametrize("name", list(camera.CAMERA8_DISTORTIONS))
def test_each_distortion_damages_more_at_each_level(coffee, name):
    """Mean absolute change from the original grows strictly with the level (same rng per ladder)."""
    err = [np.abs(camera.apply(coffee, name, lv, np.random.default_rng(3)).astype(float) - coffee).mean()
           for lv in camera.LEVELS]
    assert all(b > a for a, b in zip(err, err[1:])), err
    assert err[0] > 0.2  # level 1 is visible, not a no-op (> 0.2 grey levels on average)
    assert camera.apply(coffee, name, 0, np.random.default_rng(0)) is coffee


def test_levels_interpolate_between_the_table_and_scores_fall():
    for name, d in camera.ALL_DISTORTIONS.items():
        assert [camera.param_at(name, lv) for lv in camera.LEVELS] == pytest.approx(list(d.params))
        mid = camera.param_at(name, 2.5)
        assert min(d.params[1], d.params[2]) < mid < max(d.params[1], d.params[2])
    scores = [camera.score_at(lv) for lv in range(6)]
    assert scores == list(camera.LEVEL_SCORES) and all(b < a for a, b in zip(scores, scores[1:]))
    assert camera.score_at(2.5) == pytest.approx((camera.LEVEL_SCORES[2] + camera.LEVEL_SCORES[3]) / 2)
    with pytest.raises(ConfigError, match="level must be in"):
        camera.param_at("jpeg", 6)
    with pytest.raises(ConfigError, match="unknown distortion"):
        camera.distortion("fisheye")


def test_frames_keep_the_preview_size_and_are_never_enlarged(coffee):
    rng = np.random.default_rng(0)
    big = np.zeros((1200, 1600, 3), np.uint8)
    for _ in range(20):
        f = camera.random_frame(big, rng, (400, 640))
        assert 400 - 1 <= min(f.shape[:2]) <= 640 + 1
    small = np.zeros((300, 400, 3), np.uint8)
    assert min(camera.random_frame(small, rng, (400, 640)).shape[:2]) <= 300
    assert camera.eval_frame(small, 450).shape == small.shape  # a smaller photo keeps its size
    assert min(camera.eval_frame(big, 450).shape[:2]) == 450


def test_ladders_written_as_a_manifest_labelled_synthetic_severity(tmp_path, coffee):
    p = next(p for p in pool.CATALOGUE if p.name == "coffee")
    small = camera.eval_frame(coffee, 96)
    ladders = camera.LadderSet.build([p], [small], 96)
    assert len(ladders.frames) == 1 + len(camera.CAMERA8_DISTORTIONS) * 5
    path = camera.write_ladders(tmp_path / "lad", [(ladders, "test", [p])], 96)
    rows = read_manifest(path)
    assert mos_label(path) == SEVERITY_LABEL
    assert {r.level for r in rows} == {0, 1, 2, 3, 4, 5} and {r.split for r in rows} == {"test"}
    assert sorted({r.mos for r in rows}, reverse=True) == list(camera.LEVEL_SCORES)


def test_ladder_taus_and_auc_against_hand_counts():
    refs = ["a"] * 6 + ["b"] * 6
    dists = ["pristine"] + ["blur"] * 5 + ["pristine"] + ["blur"] * 5
    levels = [0, 1, 2, 3, 4, 5] * 2
    perfect = [90, 80, 70, 60, 50, 40]
    swapped = [90, 80, 60, 70, 50, 40]  # one discordant pair of 15: tau = (14 - 1) / 15
    taus = ladder_taus(perfect + swapped, refs, dists, levels)
    assert taus[("a", "blur")] == pytest.approx(1.0) and taus[("b", "blur")] == pytest.approx(13 / 15)
    assert pristine_auc([90, 70], [60, 80, 50]) == pytest.approx(5 / 6)  # 90 beats 3, 70 beats 2 of 3
    m = camera_metrics(perfect + swapped, refs, ["s1"] * 6 + ["s2"] * 6, dists, levels, n_boot=200)
    assert m["mean_tau"] == pytest.approx((1 + 13 / 15) / 2)
    assert m["per_distortion"]["blur"]["ci"][0] <= m["mean_tau"] <= m["per_distortion"]["blur"]["ci"][1]
    assert m["auc"] == pytest.approx(1.0)  # both pristine (90) beat every level >= 4 image (50, 40)
    # a peer oriented the wrong way round scores -1: the orientation is the caller's job, and it shows
    assert camera_metrics([-s for s in perfect + swapped], refs, ["s1"] * 6 + ["s2"] * 6, dists, levels,
                          n_boot=0)["mean_tau"] < -0.9
