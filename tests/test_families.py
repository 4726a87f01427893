"""The broad vocabulary (dpiqa_edge/data/families.py): every family degrades more at every level, keeps
the frame's shape, is reproducible from its seed, and carries targets that fall with the level; mixtures
compound; the synthetic portrait mode keeps its subject sharp."""

import numpy as np
import pytest

from dpiqa_edge.data import families as fam
from dpiqa_edge.errors import ConfigError


@pytest.fixture(scope="module")
def frame():
    """A 120 x 160 crop of skimage's astronaut (a real photo shipped in the wheel)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[60:180, 180:340])


@pytest.mark.parametrize("name", list(fam.FAMILIES))
def test_each_family_damages_more_at_every_level(frame, name):
    outs = [fam.apply(frame, name, lv, np.random.default_rng(3)) for lv in range(1, 6)]
    for o in outs:
        assert o.shape == frame.shape and o.dtype == np.uint8
    err = [np.abs(o.astype(float) - frame).mean() for o in outs]
    # Mean absolute change grows with the level; 2% slack covers codecs whose rate control rounds two
    # adjacent levels to almost the same bit budget (lossy encoders are not exactly monotone per image).
    assert err[0] > 0.05, err
    assert all(b >= a * 0.98 for a, b in zip(err, err[1:])), err
    assert err[-1] > err[0] * 1.2, err
    assert fam.apply(frame, name, 0, np.random.default_rng(0)) is frame
    again = fam.apply(frame, name, 3, np.random.default_rng(3))
    assert np.array_equal(again, outs[2])  # same seed, same image


def test_targets_fall_with_the_level_and_come_from_kadid_where_it_has_the_type():
    for name, f in fam.FAMILIES.items():
        scores = [fam.score_at(name, lv) for lv in range(6)]
        assert scores[0] == 100.0 and all(b < a for a, b in zip(scores, scores[1:])), (name, scores)
        assert f.group in fam.GROUPS
        assert f.source == "common" or f.source.startswith("kadid:")
    # KADID-10k JPEG, level 4: mean DMOS 1.95 on 1-5 -> (1.95 - 1) / 4 * 100
    assert fam.score_at("jpeg", 4) == pytest.approx(23.75)
    assert fam.score_at("webp", 2.5) == pytest.approx((fam.COMMON_SCORES[1] + fam.COMMON_SCORES[2]) / 2)
    assert {f.group for f in fam.FAMILIES.values()} == set(fam.GROUPS)
    assert sum(len(fam.in_group(g)) for g in fam.GROUPS) == len(fam.FAMILIES)
    with pytest.raises(ConfigError):
        fam.in_group("weather")
    with pytest.raises(ConfigError):
        fam.param_at("jpeg", 5.5)


def test_mixtures_follow_the_pipeline_and_compound(frame):
    rng = np.random.default_rng(0)
    stage = {n: i for i, (_, names) in enumerate(fam.PIPELINE) for n in names}
    for _ in range(20):
        m = fam.random_mixture(rng)
        assert 2 <= len(m.names) <= 3
        assert [stage[n] for n in m.names] == sorted({stage[n] for n in m.names})  # one per stage, in order
        assert m.score() == pytest.approx(100 * np.prod([fam.score_at(n, lv) / 100 for n, lv in zip(m.names, m.levels)]))
        assert m.scaled(2.0).score() < m.score()
    allowed = [n for n in fam.FAMILIES if fam.FAMILIES[n].group not in ("blur", "noise")]
    for _ in range(20):
        assert set(fam.random_mixture(rng, allowed).names) <= set(allowed)
    m = fam.Mixture(("gaussian_blur", "jpeg"), (2.0, 3.0))
    assert np.array_equal(m.apply(frame, 5), m.apply(frame, 5))
    assert fam.combine_scores([83.7, 83.7]) == pytest.approx(70.06, abs=0.01)


def test_portrait_mode_keeps_a_sharp_subject_and_defocuses_the_rest(frame):
    out = fam.portrait_mode(frame, np.random.default_rng(1))
    assert out.shape == frame.shape
    diff = np.abs(out.astype(float) - frame).mean(axis=2)
    h, w = diff.shape
    centre = diff[int(h * 0.45):int(h * 0.55), int(w * 0.45):int(w * 0.55)].mean()
    corners = np.concatenate([diff[:8, :8].ravel(), diff[-8:, -8:].ravel()]).mean()
    assert centre < 1.0 < corners, (centre, corners)
