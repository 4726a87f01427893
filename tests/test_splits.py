"""Grouped, seeded splits: no group on both sides, fractions honoured, every split non-empty when possible."""

from __future__ import annotations

import numpy as np
import pytest

from dpiqa_edge.data import splits
from dpiqa_edge.data.manifest import Row
from dpiqa_edge.errors import ConfigError


def _rows(n_scenes: int, per: int = 4) -> list[Row]:
    return [Row(f"{s}/{i}.png", float(i), "train", ref=f"{s}_r{i % 2}", scene=f"s{s}") for s in range(n_scenes) for i in range(per)]


@pytest.mark.parametrize("n", [3, 4, 7, 10, 50])
def test_three_way_split_covers_every_split(n):
    got = splits.assign_groups([f"g{i}" for i in range(n)], splits.TRAIN_VAL_TEST, seed=0)
    assert set(got.values()) == {"train", "val", "test"}  # even 3 groups at 60/20/20 -> 1/1/1
    counts = {s: sum(v == s for v in got.values()) for s in ("train", "val", "test")}
    assert abs(counts["train"] - 0.6 * n) <= 1  # largest-remainder rounding is within one group


def test_80_20_counts_and_determinism():
    groups = [f"g{i}" for i in range(100)]
    a = splits.assign_groups(groups, splits.TRAIN_TEST, seed=3)
    assert sum(v == "test" for v in a.values()) == 20
    assert a == splits.assign_groups(list(reversed(groups)), splits.TRAIN_TEST, seed=3)  # input order irrelevant
    assert a != splits.assign_groups(groups, splits.TRAIN_TEST, seed=4)


def test_split_rows_never_cuts_a_scene():
    rows = splits.split_rows(_rows(10), splits.TRAIN_VAL_TEST, seed=1)
    per = splits.check_disjoint(rows)
    assert all(per[s] for s in ("train", "val", "test"))
    bad = rows[:1] + [Row(rows[0].path, 1.0, "test" if rows[0].split != "test" else "train", scene=rows[0].scene)]
    with pytest.raises(ConfigError, match="both"):
        splits.check_disjoint(bad)


def test_k_random_splits_differ_and_are_grouped():
    rows = _rows(20)
    runs = splits.random_splits(rows, k=10, seed=0)
    assert len(runs) == 10
    tests = {frozenset(r.scene for r in run if r.split == "test") for run in runs}
    assert len(tests) > 5  # 10 seeds over C(20,4)=4845 test sets: repeats would mean the seed is ignored
    for run in runs:
        splits.check_disjoint(run)
        assert sum(r.split == "test" for r in run) == 4 * 4  # 4 of 20 scenes x 4 images


def test_grouped_folds_test_each_group_once():
    groups = np.repeat([f"g{i}" for i in range(7)], 3)
    folds = splits.grouped_folds(list(groups), k=3, seed=0)
    tested = np.concatenate([te for _, te in folds])
    assert sorted(tested) == list(range(len(groups)))
    for tr, te in folds:
        assert not set(groups[tr]) & set(groups[te])
    with pytest.raises(ConfigError):
        splits.grouped_folds(list(groups), k=8)


def test_bad_fractions():
    with pytest.raises(ConfigError):
        splits.assign_groups(["a"], {"training": 1.0})
