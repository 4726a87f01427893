"""The report's camera section: on a camera ladder set (``dpiqa-edge data camera``), what a camera gate
needs from each model, next to BRISQUE and NIQE on the same images.

* within-reference Kendall tau per distortion and its mean, pristine-vs-severe AUC across scenes, each
  with a bootstrap 95% interval over scenes (:func:`dpiqa_edge.metrics.camera_metrics`);
* the keep/retake decision at the model's own threshold: the share of pristine images kept and of
  level-4 and level-5 images flagged;
* for a compressed variant, how far each metric moved from its float parent.

Numbers only (score arrays in, a JSON-ready dict out), like :mod:`.accuracy`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..data.families import FAMILIES
from ..metrics import camera_metrics
from .accuracy import _num


def is_ladder(levels: Sequence[int | None], refs: Sequence[str]) -> bool:
    """True when the held-out rows form ladders: every row has a reference and a level, some level 0."""
    return bool(levels) and all(lv is not None for lv in levels) and all(refs) and any(lv == 0 for lv in levels)


def _metric(value, ci) -> dict[str, Any]:
    return {"value": _num(value), "ci95": [_num(ci[0]), _num(ci[1])] if ci else None}


def gate_rates(scores: Sequence[float], levels: Sequence[int], threshold: float | None,
               refs: Sequence[str] | None = None, tags: dict[str, Sequence[str]] | None = None) -> dict[str, Any] | None:
    """Keep rate of pristine images and flag rate of levels 4, 5 and both, at ``threshold`` (score >=
    threshold keeps, as ``dpiqa-edge check`` decides a still image); with ``tags`` (photo -> its catalogue
    tags), also the keep rate of the pristine photos of each tag (``keep_by_tag``: rate and count)."""
    if threshold is None:
        return None
    s, lv = np.asarray(scores, np.float64), np.asarray(levels)

    def rate(mask, keep):
        return _num(np.mean((s[mask] >= threshold) == keep)) if mask.any() else None

    out = {"threshold": _num(threshold), "keep_pristine": rate(lv == 0, True), "flag_level4": rate(lv == 4, False),
           "flag_level5": rate(lv == 5, False), "flag_severe": rate(lv >= 4, False)}
    if tags and refs is not None:
        r = np.asarray(refs)
        by_tag: dict[str, Any] = {}
        for tag in sorted({t for ts in tags.values() for t in ts}):
            mask = (lv == 0) & np.isin(r, [ref for ref, ts in tags.items() if tag in ts])
            if mask.any():
                by_tag[tag] = {"keep": rate(mask, True), "n": int(mask.sum())}
        out["keep_by_tag"] = by_tag
    return out


def per_group(per_distortion: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean tau of each family group (:data:`dpiqa_edge.data.families.GROUPS`) over its families present."""
    groups: dict[str, list[float]] = {}
    for d, m in per_distortion.items():
        g = FAMILIES[d].group if d in FAMILIES else ("mixture" if d == "mixture" else None)
        if g and m["value"] is not None:
            groups.setdefault(g, []).append(m["value"])
    return {g: _num(float(np.mean(v))) for g, v in groups.items()}


def camera_row(name: str, kind: str, scores: Sequence[float], ladder: dict[str, Any], *, threshold=None,
               n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """One model's camera metrics; ``scores`` oriented higher = better (negate a raw peer first)."""
    m = camera_metrics(scores, ladder["refs"], ladder["scenes"], ladder["distortions"], ladder["levels"],
                       n_boot=n_boot, seed=seed)
    per = {d: _metric(v["tau"], v["ci"]) for d, v in m["per_distortion"].items()}
    return {"name": name, "kind": kind, "mean_tau": _metric(m["mean_tau"], m["mean_tau_ci"]),
            "auc": _metric(m["auc"], m["auc_ci"]), "per_distortion": per, "per_group": per_group(per),
            "gate": gate_rates(scores, ladder["levels"], threshold, ladder["refs"], ladder.get("tags")),
            "vs_parent": None}


def camera_section(ladder: dict[str, Any], variants, references: dict[str, Sequence[float]], *,
                   label: str, n_boot: int = 1000, seed: int = 0, logo: dict[str, Any] | None = None) -> dict[str, Any]:
    """``ladder``: refs, scenes, distortions, levels of the held-out rows (aligned with the scores), and
    optionally ``tags`` (photo -> catalogue tags: keep rates per tag); ``variants``:
    :class:`.variants.ScoredVariant` (with ``parent`` names set); ``references``: raw peer scores, lower =
    better (negated here); ``logo``: a leave-one-group-out summary (``distill --recipe broad --logo``),
    shown beside the peers' tau on the same groups."""
    rows = [camera_row(v.name, "variant", v.scores, ladder, threshold=v.gate_threshold, n_boot=n_boot, seed=seed)
            for v in variants]
    by_name = {r["name"]: r for r in rows}
    for v, r in zip(variants, rows):
        p = by_name.get(v.parent) if v.parent else None
        if p is not None:
            r["vs_parent"] = {"parent": p["name"],
                              "mean_tau_change": _num(r["mean_tau"]["value"] - p["mean_tau"]["value"]),
                              "auc_change": _num(r["auc"]["value"] - p["auc"]["value"])}
    rows += [camera_row(name, "reference", -np.asarray(raw, np.float64), ladder, n_boot=n_boot, seed=seed)
             for name, raw in references.items()]
    lv = np.asarray(ladder["levels"])
    if logo:
        peers = {r["name"]: r["per_group"] for r in rows if r["kind"] == "reference"}
        logo = {"label": logo.get("label", label), "mean_tau": logo["mean_tau"],
                "groups": {g: {"held_out_tau": v["mean_tau"], **{p: peers[p].get(g) for p in peers}}
                           for g, v in logo["groups"].items()},
                "note": "tau of a model trained with the group's families removed, on those families' held-out "
                        "ladders; peers on the same ladders (no training)."}
    return {"label": label, "logo": logo, "severe_level": 4, "scenes": len(set(ladder["scenes"])), "references": len(set(ladder["refs"])),
            "images": int(lv.size), "pristine": int((lv == 0).sum()), "severe": int((lv >= 4).sum()), "rows": rows,
            "note": ("Kendall tau per ladder (one photo, one distortion, pristine + levels 1-5; +1 = the score falls "
                     "at every step); AUC = P(pristine scores above a level >= 4 image of any scene). 95% intervals: "
                     "bootstrap over scenes. Peers' raw scores are negated (lower = better).")}


_SCHEMA_METRIC = {"type": "object", "required": ["value", "ci95"],
                  "properties": {"value": {"type": ["number", "null"]}, "ci95": {"type": ["array", "null"]}}}
SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "required": ["label", "rows", "scenes", "references", "severe_level"],
    "properties": {
        "label": {"type": "string"},
        "rows": {"type": "array", "items": {
            "type": "object", "required": ["name", "kind", "mean_tau", "auc", "per_distortion", "gate", "vs_parent"],
            "properties": {"name": {"type": "string"}, "kind": {"enum": ["variant", "reference"]},
                           "mean_tau": _SCHEMA_METRIC, "auc": _SCHEMA_METRIC,
                           "per_distortion": {"type": "object", "additionalProperties": _SCHEMA_METRIC},
                           "gate": {"type": ["object", "null"]}, "vs_parent": {"type": ["object", "null"]}}}},
    },
}
