"""The field's accuracy metrics for image-quality models (numpy + scipy; srcc numpy only; never imports torch).

* SRCC (Spearman) and KRCC (Kendall tau-b): rank agreement, unaffected by any monotone mapping.
* PLCC (Pearson) **raw**, as DP-IQA's paper reports it, and **after the 4-parameter logistic fit** the
  VQEG recommends (and most IQA papers report):

      f(x) = (b1 - b2) / (1 + exp(-(x - b3) / b4)) + b2

  fitted with ``scipy.optimize.curve_fit`` from four data-driven starts (b1, b2 = the MOS extremes; b3 = the
  median prediction or the one nearest the MOS midpoint; b4 = +-std or std/4 of predictions, signed by
  the raw correlation), keeping the least-squares best. When the fit does not
  converge the mapping falls back to a least-squares line and ``evaluate`` says so in ``fit``.
* RMSE between the (fitted) predictions and MOS, on the MOS scale; ``rmse_raw`` without the fit.
* ``bootstrap_ci``: percentile bootstrap confidence interval of any of these over resampled images.
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np

from .errors import InputError

METRICS = ("srcc", "krcc", "plcc", "plcc_fitted", "rmse", "rmse_raw")


def _arrays(pred: Sequence[float], mos: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    m = np.asarray(mos, dtype=np.float64).reshape(-1)
    if p.shape != m.shape:
        raise InputError(f"metrics: {p.size} predictions but {m.size} MOS values")
    if p.size < 3:
        raise InputError(f"metrics: need at least 3 images, got {p.size}")
    if not (np.isfinite(p).all() and np.isfinite(m).all()):
        raise InputError("metrics: predictions or MOS contain NaN/Inf")
    return p, m


def _constant(x: np.ndarray) -> bool:
    return bool(np.ptp(x) == 0)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank (scipy.stats.rankdata's default), in numpy."""
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.arange(1, x.size + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def srcc(pred: Sequence[float], mos: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson of average ranks, as scipy.stats.spearmanr); NaN when either side is
    constant (rank order undefined). numpy only: the accuracy gate of a torch-free export needs no scipy."""
    p, m = _arrays(pred, mos)
    if _constant(p) or _constant(m):
        return math.nan
    rp, rm = rankdata(p), rankdata(m)
    rp -= rp.mean()
    rm -= rm.mean()
    return float(np.dot(rp, rm) / math.sqrt(float(np.dot(rp, rp)) * float(np.dot(rm, rm))))


def krcc(pred: Sequence[float], mos: Sequence[float]) -> float:
    """Kendall tau-b; NaN when either side is constant."""
    from scipy import stats

    p, m = _arrays(pred, mos)
    if _constant(p) or _constant(m):
        return math.nan
    return float(stats.kendalltau(p, m).statistic)


def plcc(pred: Sequence[float], mos: Sequence[float]) -> float:
    """Pearson correlation on raw predictions (no fit), as DP-IQA reports it."""
    from scipy import stats

    p, m = _arrays(pred, mos)
    if _constant(p) or _constant(m):
        return math.nan
    return float(stats.pearsonr(p, m).statistic)


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG's 4-parameter logistic, monotone in x; b1/b2 the upper/lower asymptotes when b4 > 0."""
    z = np.clip(-(x - b3) / b4, -60.0, 60.0)  # keep exp finite; the curve is flat out there anyway
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def fit_logistic(pred: Sequence[float], mos: Sequence[float]) -> tuple[Callable[[np.ndarray], np.ndarray], str]:
    """Fit the logistic mapping pred -> MOS. Returns (mapping, how) where ``how`` names what was used."""
    from scipy.optimize import curve_fit

    p, m = _arrays(pred, mos)
    if _constant(p):
        mean = float(m.mean())
        return (lambda x: np.full(np.shape(x), mean)), "constant (predictions do not vary)"
    # 1. Robust starts: asymptotes at the MOS extremes; centre at the median prediction or at the prediction
    #    whose MOS is nearest the MOS midpoint; slope from the spread of predictions (wide and narrow). The
    #    sign of b4 follows the raw correlation so a reversed model still fits. The least-squares best of
    #    the converged starts wins (one start alone can stall in a flat region of the curve).
    sign = 1.0 if np.corrcoef(p, m)[0, 1] >= 0 else -1.0
    mid = float(p[np.argmin(np.abs(m - (m.max() + m.min()) / 2))])
    spread = max(float(p.std()), 1e-6)
    best, err, last_exc = None, np.inf, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for b3 in (float(np.median(p)), mid):
            for b4 in (spread, spread / 4):
                try:
                    params, _ = curve_fit(logistic4, p, m, p0=[float(m.max()), float(m.min()), b3, sign * b4], maxfev=20000)
                except (RuntimeError, ValueError, TypeError, np.linalg.LinAlgError) as exc:
                    last_exc = exc
                    continue
                sse = float(np.sum((logistic4(p, *params) - m) ** 2))
                if np.isfinite(params).all() and sse < err:
                    best, err = params, sse
    try:
        if best is None:
            raise last_exc or RuntimeError("non-finite parameters")
        return (lambda x, b=tuple(best): logistic4(np.asarray(x, dtype=np.float64), *b)), "logistic4"
    except (RuntimeError, ValueError, TypeError, np.linalg.LinAlgError) as exc:
        # 2. Fallback: the least-squares line (PLCC after it equals raw PLCC); reported, never silent.
        slope, icpt = np.polyfit(p, m, 1)
        return (lambda x: slope * np.asarray(x, dtype=np.float64) + icpt), f"linear (logistic fit failed: {str(exc).splitlines()[0][:80]})"


def rmse(pred: Sequence[float], mos: Sequence[float]) -> float:
    p, m = _arrays(pred, mos)
    return float(np.sqrt(np.mean((p - m) ** 2)))


def evaluate(pred: Sequence[float], mos: Sequence[float]) -> dict:
    """All metrics for one prediction set: srcc, krcc, plcc (raw), plcc_fitted, rmse (fitted), rmse_raw,
    n and ``fit`` (``logistic4`` or the fallback used)."""
    from scipy import stats

    p, m = _arrays(pred, mos)
    mapping, how = fit_logistic(p, m)
    fitted = mapping(p)
    out = {"n": int(p.size), "srcc": srcc(p, m), "krcc": krcc(p, m), "plcc": plcc(p, m)}
    out["plcc_fitted"] = math.nan if _constant(fitted) or _constant(m) else float(stats.pearsonr(fitted, m).statistic)
    out["rmse"] = rmse(fitted, m)
    out["rmse_raw"] = rmse(p, m)
    out["fit"] = how
    return out


def _metric_fn(metric: str) -> Callable[[np.ndarray, np.ndarray], float]:
    if metric not in METRICS:
        raise InputError(f"metrics: unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    if metric in ("plcc_fitted", "rmse"):
        return lambda p, m: evaluate(p, m)[metric]
    return {"srcc": srcc, "krcc": krcc, "plcc": plcc, "rmse_raw": rmse}[metric]


def _percentile_bootstrap(stat: Callable[[np.ndarray], float], size: int, n: int, seed: int,
                          level: float) -> tuple[float, float]:
    """Percentile interval of ``stat(idx)`` over ``n`` resamples ``idx`` of ``size`` images drawn with
    replacement; resamples where the statistic is undefined (non-finite) are skipped."""
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(int(n)):
        v = stat(rng.integers(0, size, size))
        if math.isfinite(v):
            vals.append(v)
    if not vals:
        return (math.nan, math.nan)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(vals, [alpha, 1.0 - alpha])
    return (float(lo), float(hi))


def bootstrap_ci(pred: Sequence[float], mos: Sequence[float], metric: str = "srcc", n: int = 1000,
                 seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric`` over images resampled with replacement.

    Resamples where the metric is undefined (all-equal values) are skipped; the interval uses the rest.
    """
    p, m = _arrays(pred, mos)
    fn = _metric_fn(metric)
    return _percentile_bootstrap(lambda idx: fn(p[idx], m[idx]), p.size, n, seed, level)


def paired_drop_ci(parent: Sequence[float], variant: Sequence[float], mos: Sequence[float], n: int = 1000,
                   seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the SRCC drop ``SRCC(parent, mos) - SRCC(variant, mos)``.

    Paired: each resample draws one set of images and scores both models on it, so the interval reflects
    how much the *difference* depends on which images were held out. A weak model's drop can swing by more
    than a 0.01 budget from one set of images to another; this interval shows by how much.
    """
    q, m = _arrays(parent, mos)
    v, _ = _arrays(variant, mos)
    # srcc is NaN on a resample where either side is constant: skipped, as in bootstrap_ci
    return _percentile_bootstrap(lambda idx: srcc(q[idx], m[idx]) - srcc(v[idx], m[idx]), m.size, n, seed, level)


def median_over_splits(results: Sequence[dict]) -> dict:
    """The field's summary of k random splits: the median of each metric over the ``evaluate`` dicts
    (NaNs ignored), with ``splits`` = k. Report it beside the one-split figures, and say which is which."""
    if not results:
        raise InputError("metrics: no split results to summarise")
    out: dict = {"splits": len(results)}
    for key in METRICS:
        vals = [r[key] for r in results if key in r and math.isfinite(r[key])]
        out[key] = float(np.median(vals)) if vals else math.nan
    return out


# -- camera ladders: within-reference ranking per distortion, pristine vs severe across scenes ------------
def ladder_taus(scores: Sequence[float], refs: Sequence[str], distortions: Sequence[str],
                levels: Sequence[int]) -> dict[tuple[str, str], float]:
    """Kendall tau-b per ladder (one reference, one distortion, its pristine image included) between the
    score and the *negated* level: +1 when the score falls at every step of severity, higher = better.

    Rows with level 0 (distortion ``pristine``) are each reference's original; a ladder needs it and at
    least two distorted levels. Scores must be oriented higher = better (negate a lower-is-better peer).
    """
    from scipy import stats

    s = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(s).all():
        raise InputError("metrics: scores contain NaN/Inf")
    pristine: dict[str, int] = {}
    ladders: dict[tuple[str, str], list[int]] = {}
    for i, (r, d, lv) in enumerate(zip(refs, distortions, levels)):
        if not lv:
            pristine[r] = i
        else:
            ladders.setdefault((r, d), []).append(i)
    out = {}
    for (r, d), idx in sorted(ladders.items()):
        if r not in pristine or len(idx) < 2:
            continue
        idx = [pristine[r]] + idx
        lv = -np.array([levels[i] or 0 for i in idx], dtype=np.float64)
        out[(r, d)] = float(stats.kendalltau(s[idx], lv).statistic) if np.ptp(s[idx]) > 0 else 0.0
    return out


def pristine_auc(pristine: Sequence[float], degraded: Sequence[float]) -> float:
    """P(a pristine image scores above a degraded one), ties counting one half (the Mann-Whitney AUC)."""
    from scipy import stats

    p, d = np.asarray(pristine, np.float64), np.asarray(degraded, np.float64)
    if p.size == 0 or d.size == 0:
        return math.nan
    return float(stats.mannwhitneyu(p, d, alternative="two-sided").statistic / (p.size * d.size))


def camera_metrics(scores: Sequence[float], refs: Sequence[str], scenes: Sequence[str], distortions: Sequence[str],
                   levels: Sequence[int], *, severe: int = 4, n_boot: int = 1000, seed: int = 0,
                   level: float = 0.95) -> dict:
    """What a camera gate needs, on a ladder set (every reference at levels 0..5 of each distortion):

    * ``per_distortion``: mean within-reference Kendall tau (:func:`ladder_taus`) per distortion;
    * ``mean_tau``: the mean over distortions (each distortion weighs the same);
    * ``auc``: pristine images vs images at level >= ``severe`` of any distortion, across all scenes
      (:func:`pristine_auc`).

    Each comes with a percentile bootstrap interval over *scenes* (resampled with replacement, every
    reference of a drawn scene kept): the scene is the unit that varies from one held-out set to another.
    """
    taus = ladder_taus(scores, refs, distortions, levels)
    if not taus:
        raise InputError("metrics: no ladder (a reference with its pristine image and >= 2 levels) in the set")
    s = np.asarray(scores, dtype=np.float64)
    scene_of = dict(zip(refs, scenes))
    names = sorted({d for _, d in taus})
    scene_list = sorted({scene_of[r] for r, _ in taus})
    lv = np.array([x or 0 for x in levels])
    sc = np.array(list(scenes))

    def summary(drawn: list[str]) -> tuple[dict, float, float]:
        weight = {}
        for z in drawn:
            weight[z] = weight.get(z, 0) + 1
        per = {}
        for d in names:
            vals = [(t, weight[scene_of[r]]) for (r, dd), t in taus.items() if dd == d and scene_of[r] in weight]
            per[d] = float(np.average([v for v, _ in vals], weights=[w for _, w in vals])) if vals else math.nan
        w = np.array([weight.get(z, 0) for z in sc])
        pr, dg = (lv == 0) & (w > 0), (lv >= severe) & (w > 0)
        auc = pristine_auc(np.repeat(s[pr], w[pr]), np.repeat(s[dg], w[dg]))
        return per, float(np.nanmean(list(per.values()))), auc

    per, mean_tau, auc = summary(scene_list)
    rng = np.random.default_rng(seed)
    boot = [summary(list(rng.choice(scene_list, len(scene_list)))) for _ in range(int(n_boot))]
    alpha = (1.0 - level) / 2.0

    def ci(vals):
        vals = [v for v in vals if math.isfinite(v)]
        return [float(v) for v in np.quantile(vals, [alpha, 1 - alpha])] if vals else [math.nan, math.nan]

    return {
        "per_distortion": {d: {"tau": per[d], "ci": ci([b[0][d] for b in boot]),
                               "ladders": sum(1 for _, dd in taus if dd == d)} for d in names},
        "mean_tau": mean_tau, "mean_tau_ci": ci([b[1] for b in boot]),
        "auc": auc, "auc_ci": ci([b[2] for b in boot]), "severe_level": severe,
        "n_pristine": int((lv == 0).sum()), "n_severe": int((lv >= severe).sum()),
        "scenes": len(scene_list), "references": len({r for r, _ in taus}),
    }
