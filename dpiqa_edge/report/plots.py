"""The report's PNG plots (matplotlib, Agg backend: no display needed).

* ``scatter_<variant>.png``: predicted vs the teacher and predicted vs MOS, one figure per variant;
* ``srcc_drop.png``: SRCC drop of each variant against its float parent (the accuracy budget line
  drawn when one is given);
* ``camera_tau.png`` (camera ladder sets): within-reference Kendall tau per distortion per model;
* ``pareto.png``: accuracy (SRCC vs MOS) against latency p50 here, with the Pareto front
  (no other variant both faster and more accurate). Variants without a latency (CoreML, emulated on
  Linux) cannot be placed and are listed under the chart.
Each function writes one file through :mod:`dpiqa_edge.io` and returns its path.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..io import atomic_write


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # headless; the report never opens a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    with atomic_write(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def safe_name(name: str) -> str:
    """A file-name-safe version of a variant name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "variant"


def plot_scatter(name: str, pred: Sequence[float], teacher: Sequence[float] | None, mos: Sequence[float],
                 mos_label: str, path: Path) -> Path:
    """Predicted vs teacher (left) and vs MOS (right), identity line dashed, on the 0-100 scale."""
    plt = _pyplot()
    panels = [("teacher score", teacher), (mos_label, mos)]
    panels = [(lbl, ys) for lbl, ys in panels if ys is not None]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.4), squeeze=False)
    p = np.asarray(pred, dtype=float)
    for ax, (label, ys) in zip(axes[0], panels):
        ys = np.asarray(ys, dtype=float)
        ax.scatter(ys, p, s=14, alpha=0.75, color="#1f77b4", edgecolors="none")
        lo = float(min(p.min(), ys.min(), 0.0))
        hi = float(max(p.max(), ys.max(), 100.0))
        ax.plot([lo, hi], [lo, hi], ls="--", lw=1, color="grey", label="y = x")
        ax.set_xlabel(label)
        ax.set_ylabel(f"{name} score")
        ax.set_title(f"{name} vs {label}")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_srcc_drop(names: Sequence[str], drops: Sequence[float | None], max_drop: float | None,
                   path: Path) -> Path:
    """Bars of SRCC drop vs the float parent; variants without a parent are shown as 'n/a'."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 4.2))
    vals = [0.0 if d is None else float(d) for d in drops]
    colors = ["#bbbbbb" if d is None else ("#d62728" if max_drop is not None and d > max_drop else "#2ca02c")
              for d in drops]
    x = np.arange(len(names))
    ax.bar(x, vals, color=colors)
    for xi, d in zip(x, drops):
        ax.annotate("n/a" if d is None else f"{d:+.4f}", (xi, 0 if d is None else d), ha="center",
                    va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    if max_drop is not None:
        ax.axhline(max_drop, color="#d62728", ls="--", lw=1, label=f"--max-srcc-drop {max_drop:g}")
        ax.legend(fontsize=8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, list(names), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("SRCC(parent vs MOS) - SRCC(variant vs MOS)")
    ax.set_title("SRCC drop vs float parent (n/a: no parent / is the parent)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated by another (lower latency x AND higher accuracy y), by x."""
    idx = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in idx:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot_pareto(rows: Sequence[dict[str, Any]], mos_label: str, path: Path) -> Path:
    """``rows``: dicts with name, srcc (vs MOS) and latency_ms (p50, or None when not measurable here)."""
    plt = _pyplot()
    placed = [r for r in rows if r.get("latency_ms") is not None and r.get("srcc") is not None]
    no_latency = [r["name"] for r in rows if r.get("latency_ms") is None]
    no_srcc = [r["name"] for r in rows if r.get("latency_ms") is not None and r.get("srcc") is None]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    if placed:
        xs = [float(r["latency_ms"]) for r in placed]
        ys = [float(r["srcc"]) for r in placed]
        ax.scatter(xs, ys, s=36, color="#1f77b4", zorder=3)
        for r, x, y in zip(placed, xs, ys):
            ax.annotate(r["name"], (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
        front = pareto_front(list(zip(xs, ys)))
        ax.plot([xs[i] for i in front], [ys[i] for i in front], color="#ff7f0e", lw=1.5, zorder=2, marker="o", mfc="none", ms=11,
                label="Pareto front")
        ax.legend(fontsize=8, loc="lower right")
        if max(xs) / max(min(xs), 1e-9) > 20:
            ax.set_xscale("log")
    else:
        ax.text(0.5, 0.5, "no variant has both a latency here and a defined SRCC", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlabel("latency p50 here, batch 1 (ms)")
    ax.set_ylabel(f"SRCC vs {mos_label}")
    title = "accuracy vs latency"
    if no_latency:
        title += "\n" + textwrap.fill("not placed, no latency here: " + ", ".join(no_latency), 90)
    if no_srcc:
        title += "\n" + textwrap.fill("not placed, SRCC undefined (constant scores): " + ", ".join(no_srcc), 90)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_camera_taus(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Within-reference Kendall tau per distortion, one bar group per distortion and one bar per model
    (its 95% interval over scenes as the error bar); peers hatched."""
    plt = _pyplot()
    names = list(rows[0]["per_distortion"])
    fig, ax = plt.subplots(figsize=(max(8.0, 1.2 * len(names)), 4.4))
    width = 0.8 / len(rows)
    x = np.arange(len(names))
    for i, r in enumerate(rows):
        vals = np.array([r["per_distortion"][d]["value"] or 0.0 for d in names])
        cis = [r["per_distortion"][d]["ci95"] or [v, v] for d, v in zip(names, vals)]
        err = np.array([[max(0.0, v - (c[0] if c[0] is not None else v)) for v, c in zip(vals, cis)],
                        [max(0.0, (c[1] if c[1] is not None else v) - v) for v, c in zip(vals, cis)]])
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, vals, width, yerr=err, capsize=2, label=r["name"],
               hatch="//" if r["kind"] == "reference" else None, alpha=0.85)
    ax.set_xticks(x, [n.replace("_", "\n") for n in names], fontsize=8)
    ax.set_ylim(-1.0, 1.05)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("Kendall tau (score vs severity, +1 = perfect)")
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    ax.set_title("camera ladders: within-reference ranking per distortion")
    return _save(fig, path)
