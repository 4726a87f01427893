"""The accuracy gate: a compressed variant (pruned, INT8, palettized ...) may replace its float parent
only if it still ranks held-out images like the parent does.

``drop = SRCC(parent vs MOS) - SRCC(variant vs MOS)`` on held-out images (DESIGN.md ``--max-srcc-drop``,
default 0.01). Beside it: the rank agreement SRCC(variant vs parent) - which catches a variant that
drifts from its parent even where MOS cannot tell - the largest per-image score change (0-100
scale), and a paired bootstrap interval of the drop (``metrics.paired_drop_ci``: how much the verdict
depends on which images were held out; the verdict itself uses the point estimate, as DESIGN says).
A drop that cannot be computed (a variant that outputs a constant or NaN) fails the gate.

Export (``--precision int8``) calls :func:`srcc_gate` then :func:`enforce_gate`, so an exceeded budget
becomes a :class:`GateError` (exit 1) naming the variant; the demo calls :func:`srcc_gate` alone and
records a rejected variant with its reason instead of stopping.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..errors import GateError, InputError
from ..metrics import paired_drop_ci, srcc

DEFAULT_MAX_DROP = 0.01


def _srcc(a: np.ndarray, b: np.ndarray) -> float:
    value = float(srcc(a, b))
    return value if math.isfinite(value) else float("nan")


def srcc_gate(parent_scores: Sequence[float], variant_scores: Sequence[float], mos: Sequence[float],
              max_drop: float | None = DEFAULT_MAX_DROP, *, name: str = "variant", n_boot: int = 1000,
              seed: int = 0) -> dict:
    """Compare a variant's scores with its parent's on the same held-out images.

    Args:
        parent_scores: the float parent's scores (0-100), one per image.
        variant_scores: the compressed variant's scores on the same images, same order.
        mos: the images' MOS (0-100, higher = better); a synthetic set's pseudo-MOS is fine, but say so
            wherever the numbers are shown.
        max_drop: the SRCC budget; ``None`` measures without judging (``passed`` is then ``None``).
        name: what the variant is called in ``reason`` (e.g. the artifact's folder).
        n_boot: resamples of the drop's paired bootstrap interval (0: none).
        seed: the resampling seed (the interval is reproducible).

    Returns a JSON-ready dict: ``n, srcc_parent, srcc_variant, drop, drop_ci95, max_drop, rank_agreement,
    max_abs_change, mean_abs_change, passed, reason``.
    """
    p = np.asarray(parent_scores, dtype=np.float64).ravel()
    v = np.asarray(variant_scores, dtype=np.float64).ravel()
    m = np.asarray(mos, dtype=np.float64).ravel()
    if not (len(p) == len(v) == len(m)):
        raise InputError(f"gate {name}: {len(p)} parent scores, {len(v)} variant scores and {len(m)} MOS values; "
                         "they must be the same images")
    if len(p) < 3:
        raise InputError(f"gate {name}: {len(p)} held-out images; SRCC needs at least 3")
    s_parent, s_variant = _srcc(p, m), _srcc(v, m)
    drop = s_parent - s_variant
    ci = None
    if n_boot and math.isfinite(drop) and np.isfinite(v).all():
        ci = [float(c) for c in paired_drop_ci(p, v, m, n=n_boot, seed=seed)]
    diff = np.abs(v - p)
    result = {
        "n": int(len(p)),
        "srcc_parent": s_parent,
        "srcc_variant": s_variant,
        "drop": drop,
        "drop_ci95": ci,
        "max_drop": max_drop,
        "rank_agreement": _srcc(v, p),
        "max_abs_change": float(np.nanmax(diff)) if np.isfinite(diff).any() else float("nan"),
        "mean_abs_change": float(np.nanmean(diff)) if np.isfinite(diff).any() else float("nan"),
        "passed": None,
        "reason": "",
    }
    if max_drop is None:
        result["reason"] = "measured only (no budget given)"
    elif not math.isfinite(drop):
        result["passed"] = False
        result["reason"] = (f"{name}: SRCC cannot be computed (parent {s_parent:.4f}, variant {s_variant:.4f}); "
                            "a constant or non-finite output fails the gate")
    elif drop > max_drop:
        result["passed"] = False
        result["reason"] = (f"{name}: SRCC drop {drop:.4f} exceeds --max-srcc-drop {max_drop:g} "
                            f"(parent {s_parent:.4f}, variant {s_variant:.4f}, n={len(p)}"
                            + (f"; {_ci_text(ci)})" if ci else ")"))
    else:
        result["passed"] = True
        result["reason"] = f"{name}: SRCC drop {drop:.4f} within {max_drop:g}" + (f" ({_ci_text(ci)})" if ci else "")
    return result


def _ci_text(ci: list[float]) -> str:
    return f"95% CI of the drop over resampled images [{ci[0]:.4f}, {ci[1]:.4f}]"


def enforce_gate(result: dict) -> dict:
    """Raise :class:`GateError` (exit 1) when a :func:`srcc_gate` result failed; return it otherwise."""
    if result.get("passed") is False:
        raise GateError(f"accuracy gate failed: {result['reason']}")
    return result
