"""Seeded splits grouped by scene/reference, so no scene (and no crop or distortion of one reference)
ever sits on both sides of an evaluation.

* :func:`assign_groups` — groups -> split names by fractions (e.g. 60/20/20 or the field's 80/20);
  every split with a non-zero fraction gets at least one group whenever there are enough groups.
* :func:`split_rows` — the same applied to manifest rows (``Row.group`` = scene, else ref, else path).
* :func:`random_splits` — k seeded 80/20 splits: the field reports the *median* over 10 of them.
* :func:`grouped_folds` — k grouped folds for small sets (every group tested exactly once).

The unit of splitting is the group, not the image: fractions are of groups. Deterministic for a seed
(group order is sorted before shuffling, so input order does not matter).
"""

from __future__ import annotations

import dataclasses
from typing import Hashable, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .manifest import SPLITS, Row

TRAIN_TEST = {"train": 0.8, "test": 0.2}  #: the field's one random 80/20 split
TRAIN_VAL_TEST = {"train": 0.6, "val": 0.2, "test": 0.2}  #: the synthetic set's default


def _counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder rounding of ``n`` groups over the fractions, then no non-zero split left empty."""
    names = [k for k, v in fractions.items() if v > 0]
    total = sum(fractions[k] for k in names)
    raw = {k: n * fractions[k] / total for k in names}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    for k in sorted(names, key=lambda k: raw[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    if n >= len(names):
        for k in names:
            while counts[k] == 0:  # borrow from the largest split (e.g. 3 scenes at 60/20/20 -> 1/1/1)
                donor = max(names, key=lambda d: counts[d])
                counts[donor] -= 1
                counts[k] += 1
    return counts


def assign_groups(groups: Sequence[Hashable], fractions: Mapping[str, float] = TRAIN_TEST,
                  seed: int = 0) -> dict[Hashable, str]:
    """Map each distinct group to a split name. ``fractions`` keys must be train/val/test."""
    bad = [k for k in fractions if k not in SPLITS]
    if bad or not fractions or any(v < 0 for v in fractions.values()) or sum(fractions.values()) <= 0:
        raise ConfigError(f"splits: fractions must be non-negative over {', '.join(SPLITS)}, got {dict(fractions)}")
    uniq = sorted(set(groups), key=str)
    order = np.random.default_rng(seed).permutation(len(uniq))
    counts = _counts(len(uniq), fractions)
    out: dict[Hashable, str] = {}
    pos = 0
    for name in SPLITS:  # fixed order, so a seed always means the same assignment
        for i in order[pos: pos + counts.get(name, 0)]:
            out[uniq[i]] = name
        pos += counts.get(name, 0)
    return out


def split_rows(rows: Sequence[Row], fractions: Mapping[str, float] = TRAIN_TEST, seed: int = 0) -> list[Row]:
    """Copies of ``rows`` with ``split`` set by their group (scene, else ref, else the image)."""
    mapping = assign_groups([r.group for r in rows], fractions, seed)
    return [dataclasses.replace(r, split=mapping[r.group]) for r in rows]


def random_splits(rows: Sequence[Row], k: int = 10, seed: int = 0,
                  fractions: Mapping[str, float] = TRAIN_TEST) -> list[list[Row]]:
    """``k`` independent seeded grouped splits (seeds ``seed .. seed+k-1``); report the median metric."""
    if k < 1:
        raise ConfigError(f"splits: k must be >= 1, got {k}")
    return [split_rows(rows, fractions, seed + i) for i in range(k)]


def grouped_folds(groups: Sequence[Hashable], k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` folds of indices into ``groups``: (train_idx, test_idx), each group tested exactly once."""
    uniq = sorted(set(groups), key=str)
    if not 2 <= k <= len(uniq):
        raise ConfigError(f"splits: need 2 <= k <= number of groups ({len(uniq)}), got k={k}")
    order = np.random.default_rng(seed).permutation(len(uniq))
    fold_of = {uniq[g]: i % k for i, g in enumerate(order)}
    labels = np.array([fold_of[g] for g in groups])
    return [(np.flatnonzero(labels != f), np.flatnonzero(labels == f)) for f in range(k)]


def check_disjoint(rows: Sequence[Row]) -> dict[str, set[str]]:
    """Groups per split; raises ConfigError when a group sits in two splits."""
    seen: dict[str, str] = {}
    per: dict[str, set[str]] = {s: set() for s in SPLITS}
    for r in rows:
        prev = seen.setdefault(r.group, r.split)
        if prev != r.split:
            raise ConfigError(f"splits: group {r.group!r} is in both {prev} and {r.split}")
        per[r.split].add(r.group)
    return per
