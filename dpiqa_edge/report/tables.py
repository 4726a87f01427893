"""The report's tables as plain rows of strings, shared by ``report.md`` and ``index.html`` so both
always show the same numbers with the same rounding."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.families import FAMILIES


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def fmt_ci(m: dict[str, Any] | None, digits: int = 3) -> str:
    """``0.912 [0.880, 0.941]``: a metric with its bootstrap 95% interval."""
    if not m or m.get("value") is None:
        return "n/a"
    s = f"{m['value']:.{digits}f}"
    ci = m.get("ci95")
    if ci and ci[0] is not None and ci[1] is not None:
        s += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return s


def fmt_size(n: int | None) -> str:
    if n is None:
        return "n/a"
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def accuracy_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Rows vs MOS for every variant, the teacher and the classical peers (95% bootstrap intervals)."""
    label = report["data"]["mos_label"]
    head = ["model", "backend / precision ran", f"SRCC vs {label}", "KRCC", "PLCC (raw)", "PLCC (fitted)", "RMSE"]
    rows = []
    teacher = report["teacher"]
    if teacher.get("vs_mos"):
        t = teacher["vs_mos"]
        rows.append([f"teacher ({teacher['label']})", teacher["device"], *(fmt_ci(t[k]) for k in
                     ("srcc", "krcc", "plcc", "plcc_fitted", "rmse"))])
    for v in report["variants"]:
        m = v["vs_mos"]
        ran = f"{v['backend']} / {v['precision_ran']}" + (f" ({v['label']})" if v.get("label") else "")
        rows.append([v["name"], ran, *(fmt_ci(m[k]) for k in ("srcc", "krcc", "plcc", "plcc_fitted", "rmse"))])
    for r in report["references"]:
        m = r["vs_mos"]
        rows.append([f"{r['name']} (reference, negated)", "classical", *(fmt_ci(m[k]) for k in
                     ("srcc", "krcc", "plcc", "plcc_fitted")), "own scale"])
    return head, rows


def agreement_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Agreement with the teacher and with the float parent."""
    head = ["model", "SRCC vs teacher", "mean abs diff", "max abs diff", "keep/retake agreement (threshold)",
            "parent", "SRCC drop [paired 95% CI]", "SRCC with parent", "max score change"]
    rows = []
    for v in report["variants"]:
        t = v["vs_teacher"] or {}
        p = v["vs_parent"] or {}
        agree = "n/a"
        if t.get("gate_agreement") is not None:
            agree = f"{100 * t['gate_agreement']:.1f}% (at {t['gate_threshold']:.1f})"
        rows.append([v["name"], fmt(t.get("srcc")), fmt(t.get("mean_abs_diff"), 2), fmt(t.get("max_abs_diff"), 2),
                     agree, p.get("parent", "— (float reference)"),
                     fmt_ci({"value": p.get("srcc_drop"), "ci95": p.get("srcc_drop_ci95")}, 4) if p else "n/a",
                     fmt(p.get("srcc_with_parent")), fmt(p.get("max_abs_change"), 2)])
    for r in report["references"]:
        rows.append([f"{r['name']} (reference)", fmt(r["vs_teacher_srcc"]), "", "", "", "", "", "", ""])
    return head, rows


def cost_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = ["model", "backend", "precision (exported / ran)", "artifact size", "params", "GMACs",
            "latency p50 / p95 here (ms, batch 1, variants timed round-robin)"]
    rows = []
    for v in report["variants"]:
        c = v["cost"]
        lat = c["latency_ms"]
        lat_s = f"{lat['p50']:.2f} / {lat['p95']:.2f}" if lat else (c.get("latency_note") or "n/a")
        rows.append([v["name"], v["backend"], f"{v.get('precision') or 'n/a'} / {v['precision_ran']}",
                     fmt_size(c["size_bytes"]), fmt(c["params"]), fmt(c["gmacs"], 3), lat_s])
    return head, rows


def camera_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The camera section: mean tau, AUC, the keep/retake rates at each model's threshold, tau per
    distortion group (per distortion when there are few), and the change from the float parent."""
    cam = report["camera"]
    first = next(iter(cam["rows"]))
    by_group = len(first["per_distortion"]) > 10 and first.get("per_group")
    names = list(first["per_group"] if by_group else first["per_distortion"])
    head = ["model", "mean tau [95% CI]", f"AUC pristine vs level>={cam['severe_level']} [95% CI]",
            "kept pristine / flagged L4 / L5 (threshold)", "change vs parent (tau / AUC)"] + names
    rows = []
    for r in cam["rows"]:
        g = r["gate"]
        gate = "n/a" if not g else (f"{_pct(g['keep_pristine'])} / {_pct(g['flag_level4'])} / {_pct(g['flag_level5'])}"
                                    f" ({g['threshold']:.1f})")
        p = r["vs_parent"]
        change = f"{p['mean_tau_change']:+.4f} / {p['auc_change']:+.4f} vs {p['parent']}" if p else ""
        name = r["name"] + (" (reference, negated)" if r["kind"] == "reference" else "")
        cells = ([fmt(r["per_group"].get(d), 3) for d in names] if by_group
                 else [fmt(r["per_distortion"][d]["value"], 3) for d in names])
        rows.append([name, fmt_ci(r["mean_tau"]), fmt_ci(r["auc"]), gate, change] + cells)
    return head, rows


def camera_family_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Tau per distortion family (rows) for every model and peer (columns), with the family's group."""
    cam = report["camera"]
    head = ["family", "group"] + [r["name"] for r in cam["rows"]]
    names = list(next(iter(cam["rows"]))["per_distortion"])
    return head, [[d, FAMILIES[d].group if d in FAMILIES else d]
                  + [fmt(r["per_distortion"].get(d, {}).get("value"), 3) for r in cam["rows"]] for d in names]


def camera_tag_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Share of clean held-out photos kept at each model's threshold, per content tag."""
    cam = report["camera"]
    rows_m = [r for r in cam["rows"] if (r["gate"] or {}).get("keep_by_tag")]
    if not rows_m:
        return ["tag"], []
    tags = list(rows_m[0]["gate"]["keep_by_tag"])
    head = ["tag", "clean photos"] + [r["name"] for r in rows_m]
    return head, [[t, str(rows_m[0]["gate"]["keep_by_tag"][t]["n"])]
                  + [_pct(r["gate"]["keep_by_tag"][t]["keep"]) for r in rows_m] for t in tags]


def camera_logo_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Leave-one-group-out: the held-out group's tau beside the peers' on the same ladders."""
    logo = report["camera"]["logo"]
    peers = [k for k in next(iter(logo["groups"].values())) if k != "held_out_tau"]
    head = ["held-out group", "model trained without it"] + peers
    rows = [[g, fmt(v["held_out_tau"], 3)] + [fmt(v.get(p), 3) for p in peers] for g, v in logo["groups"].items()]
    rows.append(["mean", fmt(logo["mean_tau"], 3)]
                + [fmt(float(np.mean([v[p] for v in logo["groups"].values() if v.get(p) is not None])), 3)
                   for p in peers])
    return head, rows


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"
