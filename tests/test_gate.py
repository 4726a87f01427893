"""The SRCC accuracy gate: passes a faithful variant, fails one whose drop is forced above the budget."""

from __future__ import annotations

import numpy as np
import pytest

from dpiqa_edge.errors import GateError, InputError
from dpiqa_edge.quantize.gate import enforce_gate, srcc_gate


@pytest.fixture
def scores(rng):
    mos = rng.uniform(0, 100, 200)
    parent = mos + rng.normal(0, 10, 200)  # a good model: SRCC ~0.94 vs MOS
    return parent, mos


def test_identical_variant_passes_with_zero_drop(scores):
    parent, mos = scores
    r = srcc_gate(parent, parent.copy(), mos, max_drop=0.01)
    assert r["passed"] is True
    assert r["drop"] == pytest.approx(0.0, abs=1e-12)  # same ranks -> bit-identical SRCC
    assert r["rank_agreement"] == pytest.approx(1.0, abs=1e-12)
    assert r["max_abs_change"] == 0.0
    assert r["drop_ci95"] == [0.0, 0.0]  # paired resamples of identical scores
    enforce_gate(r)  # does not raise


def test_small_rank_preserving_change_passes(scores):
    # INT8-like noise that keeps order (a monotone remap + a constant shift) leaves SRCC unchanged.
    parent, mos = scores
    variant = 0.9 * parent + 3.0
    r = srcc_gate(parent, variant, mos)
    assert r["passed"] is True and abs(r["drop"]) < 1e-12
    assert r["max_abs_change"] > 0  # scores moved, ranks did not


@pytest.mark.parametrize("noise,budget", [(40.0, 0.01), (25.0, 0.05), (80.0, 0.2)])
def test_drop_forced_above_budget_fails(scores, rng, noise, budget):
    parent, mos = scores
    variant = parent + rng.normal(0, noise, len(parent))  # degrade ranking well past the budget
    r = srcc_gate(parent, variant, mos, max_drop=budget, name="model-int8")
    assert r["drop"] > budget
    assert r["passed"] is False
    assert "model-int8" in r["reason"] and "exceeds" in r["reason"] and "95% CI of the drop" in r["reason"]
    assert r["drop_ci95"][0] <= r["drop"] <= r["drop_ci95"][1]
    with pytest.raises(GateError) as info:
        enforce_gate(r)
    assert info.value.exit_code == 1  # DESIGN: a failed gate exits 1


def test_constant_variant_fails(scores):
    parent, mos = scores
    r = srcc_gate(parent, np.full_like(parent, 50.0), mos)
    assert r["passed"] is False and "cannot be computed" in r["reason"] and r["drop_ci95"] is None


def test_measure_only_without_budget(scores):
    parent, mos = scores
    r = srcc_gate(parent, parent[::-1], mos, max_drop=None)
    assert r["passed"] is None and r["drop"] > 0.5  # reversed order: a large drop, but no verdict


@pytest.mark.parametrize("lens", [(5, 4, 5), (2, 2, 2)])
def test_bad_inputs_are_input_errors(lens):
    p, v, m = (np.arange(n, dtype=float) for n in lens)
    with pytest.raises(InputError):
        srcc_gate(p, v, m)
