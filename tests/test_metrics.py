"""metrics.py against scipy computed directly and hand-checked cases."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from dpiqa_edge import metrics
from dpiqa_edge.errors import InputError


def test_perfect_and_reversed_rankings():
    x = np.arange(10.0)
    assert metrics.srcc(x, x**3) == pytest.approx(1.0, abs=1e-12)  # monotone, non-linear: ranks identical
    assert metrics.krcc(x, x**3) == pytest.approx(1.0, abs=1e-12)
    assert metrics.srcc(x, -x) == pytest.approx(-1.0, abs=1e-12)
    assert metrics.krcc(x, -x) == pytest.approx(-1.0, abs=1e-12)
    assert metrics.plcc(x, 2 * x + 5) == pytest.approx(1.0, abs=1e-12)


def test_known_small_vectors_by_hand():
    # pred ranks 1,2,3,4 vs mos ranks 1,3,2,4: d^2 sum = 2 -> rho = 1 - 6*2/(4*15) = 0.8;
    # pairs: 6, discordant 1 (2<->3) -> tau = (5-1)/6 = 2/3.
    pred, mos = [1.0, 2.0, 3.0, 4.0], [10.0, 30.0, 20.0, 40.0]
    assert metrics.srcc(pred, mos) == pytest.approx(0.8, abs=1e-12)
    assert metrics.krcc(pred, mos) == pytest.approx(2 / 3, abs=1e-12)
    # Pearson by hand: centred x = (-1.5,-.5,.5,1.5), y = (-15,5,-5,15): sxy = 40, sxx = 5, syy = 500 -> 0.8
    assert metrics.plcc(pred, mos) == pytest.approx(0.8, abs=1e-12)
    assert metrics.rmse([0.0, 0.0, 0.0], [3.0, 4.0, 0.0]) == pytest.approx(math.sqrt(25 / 3), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scipy_directly(seed):
    rng = np.random.default_rng(seed)
    mos = rng.uniform(0, 100, 200)
    pred = mos + rng.normal(0, 20, 200)
    out = metrics.evaluate(pred, mos)
    # Same library underneath, so agreement to float rounding (1e-12) is expected.
    assert out["srcc"] == pytest.approx(stats.spearmanr(pred, mos).statistic, abs=1e-12)
    assert out["krcc"] == pytest.approx(stats.kendalltau(pred, mos).statistic, abs=1e-12)
    assert out["plcc"] == pytest.approx(stats.pearsonr(pred, mos).statistic, abs=1e-12)
    assert out["rmse_raw"] == pytest.approx(np.sqrt(np.mean((pred - mos) ** 2)), abs=1e-9)
    assert out["n"] == 200 and out["fit"] == "logistic4"


def test_logistic_fit_recovers_a_sigmoid_relation():
    # MOS is an exact logistic of the prediction: the fit must make PLCC ~1 and RMSE ~0 while raw PLCC < 1.
    pred = np.linspace(-3, 3, 60)
    mos = metrics.logistic4(pred, 90.0, 10.0, 0.5, 0.4)
    out = metrics.evaluate(pred, mos)
    assert out["fit"] == "logistic4"
    assert out["plcc"] < 0.97  # the raw relation is visibly non-linear
    assert out["plcc_fitted"] == pytest.approx(1.0, abs=1e-6)  # exact model family: only optimiser error
    assert out["rmse"] < 1e-3 * 80  # < 0.1% of the MOS span
    # Reversed predictions: the fit follows (b4 < 0) and PLCC after it is positive.
    rev = metrics.evaluate(-pred, mos)
    assert rev["srcc"] == pytest.approx(-1.0) and rev["plcc_fitted"] == pytest.approx(1.0, abs=1e-6)


def test_fit_fallback_is_reported(monkeypatch):
    import scipy.optimize

    def boom(*a, **k):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(scipy.optimize, "curve_fit", boom)
    x = np.arange(10.0)
    out = metrics.evaluate(x, 3 * x + 1)
    assert out["fit"].startswith("linear (logistic fit failed")
    assert out["plcc_fitted"] == pytest.approx(out["plcc"], abs=1e-12)  # a line leaves Pearson unchanged


def test_constant_predictions_give_nan_not_crash():
    out = metrics.evaluate([5.0] * 5, [1.0, 2.0, 3.0, 4.0, 5.0])
    assert math.isnan(out["srcc"]) and math.isnan(out["plcc"]) and out["fit"].startswith("constant")


@pytest.mark.parametrize("pred,mos", [([1, 2], [1, 2]), ([1, 2, 3], [1, 2]), ([1, 2, float("nan")], [1, 2, 3])])
def test_bad_inputs(pred, mos):
    with pytest.raises(InputError):
        metrics.evaluate(pred, mos)


def test_bootstrap_ci_brackets_the_estimate_and_is_seeded():
    rng = np.random.default_rng(0)
    mos = rng.uniform(0, 100, 150)
    pred = mos + rng.normal(0, 25, 150)
    point = metrics.srcc(pred, mos)
    lo, hi = metrics.bootstrap_ci(pred, mos, "srcc", n=300, seed=0)
    assert lo < point < hi and hi - lo < 0.3  # n=150 at rho~0.75: the 95% CI is ~0.15 wide
    assert (lo, hi) == metrics.bootstrap_ci(pred, mos, "srcc", n=300, seed=0)
    assert (lo, hi) != metrics.bootstrap_ci(pred, mos, "srcc", n=300, seed=1)
    with pytest.raises(InputError):
        metrics.bootstrap_ci(pred, mos, "accuracy")


def test_paired_drop_ci_brackets_the_drop_and_separates_a_broken_variant():
    rng = np.random.default_rng(0)
    mos = rng.uniform(0, 100, 200)
    parent = mos + rng.normal(0, 25, 200)  # a weak model: SRCC ~0.75, like the demo's students
    same = metrics.paired_drop_ci(parent, parent, mos, n=200)
    assert same == (0.0, 0.0)  # paired: every resample scores both on the same images
    close = parent + rng.normal(0, 3, 200)  # INT8-like noise
    drop = metrics.srcc(parent, mos) - metrics.srcc(close, mos)
    lo, hi = metrics.paired_drop_ci(parent, close, mos, n=300, seed=0)
    # a few hundredths wide: far narrower than the unpaired intervals of the two SRCCs (~0.15 each)
    assert lo <= drop <= hi and 0 < hi - lo < 0.06
    broken = parent + rng.normal(0, 60, 200)
    lo_b, _ = metrics.paired_drop_ci(parent, broken, mos, n=300, seed=0)
    assert lo_b > 0.1  # a real degradation: the whole interval sits above zero
    assert (lo, hi) == metrics.paired_drop_ci(parent, close, mos, n=300, seed=0)  # seeded


def test_metrics_does_not_import_torch():
    code = "import sys, dpiqa_edge.metrics as m; m.evaluate([1,2,3,4],[1,3,2,4]); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_median_over_splits():
    res = [{"srcc": v, "plcc": 2 * v} for v in (0.5, 0.9, 0.7, float("nan"))]
    out = metrics.median_over_splits(res)
    assert out["splits"] == 4 and out["srcc"] == pytest.approx(0.7) and out["plcc"] == pytest.approx(1.4)  # NaN skipped
    assert math.isnan(out["krcc"])
    with pytest.raises(InputError):
        metrics.median_over_splits([])
