"""The report's numbers, computed on plain score arrays (no models here, so they are easy to test).

Every correlation comes from :mod:`dpiqa_edge.metrics` (the project's one definition of SRCC / KRCC /
PLCC raw and logistic-fitted / RMSE, and its bootstrap); this module only decides *which* arrays are
compared and how the rows of the report are shaped:

* vs MOS: every metric with its bootstrap 95% interval;
* vs the teacher: SRCC, mean/max absolute score difference, and how often the keep/retake decision at
  the gate threshold is the same;
* vs the float parent: SRCC drop (DESIGN: SRCC(parent vs MOS) - SRCC(variant vs MOS)), the rank
  agreement with the parent and the largest score change;
* classical peers (BRISQUE, NIQE): raw scores are lower = better, so they are negated before any
  correlation (said in the row's note); their RMSE is on their own scale, not 0-100.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..metrics import bootstrap_ci, evaluate
from ..quantize.gate import srcc_gate

MOS_METRICS = ("srcc", "krcc", "plcc", "plcc_fitted", "rmse")


def _num(v: Any) -> float | None:
    """A JSON-safe float (None for NaN/inf, which correlations of constant arrays produce)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _arr(x: Sequence[float], name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if a.size < 2:
        raise ValueError(f"{name}: need at least 2 scores, got {a.size}")
    return a


def vs_mos(pred: Sequence[float], mos: Sequence[float], *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Each of ``MOS_METRICS`` as ``{"value", "ci95": [lo, hi]}`` (bootstrap over images, 95%)."""
    p, m = _arr(pred, "pred"), _arr(mos, "mos")
    values = evaluate(p, m)
    out: dict[str, Any] = {}
    for key in MOS_METRICS:
        ci = None
        if n_boot > 0:
            lo, hi = _ci_bounds(bootstrap_ci(p, m, key, n=n_boot, seed=seed))
            ci = [_num(lo), _num(hi)]
        out[key] = {"value": _num(values[key]), "ci95": ci}
    return out


def _ci_bounds(ci: Any) -> tuple[float, float]:
    """``bootstrap_ci`` returns (lo, hi) or a dict with lo/hi: accept both so the report never guesses."""
    if isinstance(ci, dict):
        lo = ci.get("lo", ci.get("low", ci.get("ci_low")))
        hi = ci.get("hi", ci.get("high", ci.get("ci_high")))
        return lo, hi
    lo, hi = ci[0], ci[1]
    return lo, hi


def srcc(a: Sequence[float], b: Sequence[float]) -> float | None:
    return _num(evaluate(_arr(a, "a"), _arr(b, "b"))["srcc"])


def vs_teacher(pred: Sequence[float], teacher: Sequence[float], threshold: float | None) -> dict[str, Any]:
    """Agreement with the teacher's scores; ``gate_agreement`` = share of images where
    (pred >= threshold) == (teacher >= threshold), i.e. the same keep/retake decision."""
    p, t = _arr(pred, "pred"), _arr(teacher, "teacher")
    diff = np.abs(p - t)
    agree = None
    if threshold is not None:
        agree = float(np.mean((p >= threshold) == (t >= threshold)))
    return {"srcc": srcc(p, t), "mean_abs_diff": _num(diff.mean()), "max_abs_diff": _num(diff.max()),
            "gate_threshold": _num(threshold), "gate_agreement": agree}


def vs_parent(pred: Sequence[float], parent: Sequence[float], mos: Sequence[float], parent_name: str,
              *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """DESIGN's SRCC drop of a compressed variant against its float parent, on the same images, with its
    paired bootstrap 95% interval: the accuracy gate's own measurement (``quantize.gate.srcc_gate``,
    measured without a budget; the report's verdict is :func:`gate_failures`)."""
    g = srcc_gate(_arr(parent, "parent"), _arr(pred, "pred"), _arr(mos, "mos"), None, n_boot=n_boot, seed=seed)
    ci = g["drop_ci95"]
    return {"parent": parent_name, "srcc_drop": _num(g["drop"]),
            "srcc_drop_ci95": None if ci is None else [_num(c) for c in ci],
            "srcc_with_parent": _num(g["rank_agreement"]), "max_abs_change": _num(g["max_abs_change"])}


def reference_row(name: str, raw: Sequence[float], mos: Sequence[float], teacher: Sequence[float] | None,
                  *, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """A classical peer as a reference row. ``raw`` is lower = better: negated for every correlation."""
    r = _arr(raw, name)
    neg = -r
    return {
        "name": name,
        "note": (f"{name} raw scores are lower = better; negated before correlation. "
                 "PLCC/RMSE are on its own scale (not 0-100): compare SRCC/KRCC."),
        "scores": [float(v) for v in r],
        "vs_mos": vs_mos(neg, mos, n_boot=n_boot, seed=seed),
        "vs_teacher_srcc": None if teacher is None else srcc(neg, teacher),
    }


def gate_failures(variants: list[dict[str, Any]], max_srcc_drop: float | None) -> list[str]:
    """One line per variant whose SRCC drop exceeds ``max_srcc_drop`` (variants without a parent pass)."""
    if max_srcc_drop is None:
        return []
    out = []
    for v in variants:
        vp = v.get("vs_parent")
        if vp and vp["srcc_drop"] is not None and vp["srcc_drop"] > max_srcc_drop:
            out.append(f"{v['name']}: SRCC drop {vp['srcc_drop']:.4f} vs {vp['parent']} exceeds "
                       f"--max-srcc-drop {max_srcc_drop:g}")
    return out
