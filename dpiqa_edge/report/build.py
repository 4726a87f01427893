"""Building the report: held-out images -> every variant's scores (runtime loaders) -> numbers
(:mod:`.accuracy`) -> validated ``report.json``, ``report.md``, ``index.html`` and PNG plots.

Two entry points:
* :func:`make_report` takes a manifest, the teacher's ``scores.csv`` and artifacts (what the CLI and the
  demo call);
* :func:`assemble_report` + :func:`write_report` work on score arrays alone, so the numbers can be
  tested against scipy without any model.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .. import __version__
from ..data.manifest import is_synthetic, mos_label, read_manifest
from ..errors import GateError, InputError
from ..io import read_json, write_json, write_text
from . import accuracy, plots
from .camera import camera_section, is_ladder
from .html import render_html, render_markdown
from .schema import SCHEMA_ID, SCHEMA_VERSION, validate_report
from .variants import ScoredVariant, assign_parents, interleaved_latency, score_variant, timestamp, unique_names

SYNTH_LABEL = "synthetic pseudo-MOS"
TEACHER_LABEL = "the GPU teacher"


def teacher_label(device: str) -> str:
    """The report's name for the teacher: "the GPU teacher" (the brief's term) only when a GPU scored."""
    return TEACHER_LABEL if device.startswith("cuda") else f"scored on {device}, not a GPU"


def read_teacher_scores(path: str | os.PathLike) -> dict[str, float]:
    """``scores.csv`` (``path,teacher_score``) from ``teacher score`` -> {manifest path: score}."""
    path = Path(path)
    if path.is_dir():
        path = path / "scores.csv"
    if not path.is_file():
        raise InputError(f"{path}: teacher scores file not found")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "teacher_score"} <= set(reader.fieldnames):
            raise InputError(f"{path}: expected columns path,teacher_score (got {reader.fieldnames})")
        out = {}
        for i, row in enumerate(reader, start=2):
            try:
                out[row["path"]] = float(row["teacher_score"])
            except (TypeError, ValueError):
                raise InputError(f"{path}:{i}: teacher_score {row['teacher_score']!r} is not a number") from None
    return out


def teacher_device(scores_file: str | os.PathLike) -> str:
    """Where the teacher's scores were computed (cuda/cpu), from the metadata ``teacher score`` writes
    beside scores.csv; ``unknown`` when none is recorded (never guessed)."""
    folder = Path(scores_file)
    folder = folder if folder.is_dir() else folder.parent
    for name in ("targets.json", "index.json", "meta.json", "scores.json"):
        f = folder / name
        if f.is_file():
            try:
                meta = read_json(f)
            except Exception:  # a shard index we cannot read says nothing about the device
                continue
            # targets index.json: {"teacher": {... "device": "cuda:0"}}; older layouts put it on top
            for src in (meta.get("teacher") if isinstance(meta, dict) else None, meta):
                for key in ("device", "teacher_device"):
                    if isinstance(src, dict) and isinstance(src.get(key), str):
                        return src[key]
    return "unknown"


def _ladder_tags(manifest) -> dict[str, list[str]] | None:
    """Photo -> catalogue tags, from the ``camera.json`` that ``data camera`` / ``default-model`` write
    beside a ladder manifest (None when absent)."""
    info = Path(manifest).parent / "camera.json"
    if not info.is_file():
        return None
    return {p["name"]: list(p.get("tags", ())) for p in read_json(info).get("photos", [])}


def assemble_report(*, manifest: str, split: str, paths: Sequence[str], mos: Sequence[float],
                    variants: Sequence[ScoredVariant], teacher: Sequence[float] | None,
                    teacher_file: str | None = None, teacher_device_name: str = "unknown",
                    references: dict[str, Sequence[float]] | None = None, synthetic: bool = False,
                    max_srcc_drop: float | None = None, n_boot: int = 1000, seed: int = 0,
                    notes: Sequence[str] = (), label: str | None = None,
                    ladder: dict[str, Any] | None = None, logo: dict[str, Any] | None = None) -> dict[str, Any]:
    """The report dict (plots not yet drawn) from score arrays aligned with ``paths``/``mos``.

    ``label`` names the targets (default: "MOS", or "synthetic pseudo-MOS" when ``synthetic``); ``ladder``
    (refs, scenes, distortions, levels of the rows, a camera ladder set) adds the camera section, and
    ``logo`` (a leave-one-group-out summary) its held-out-group table.
    """
    mos = np.asarray(mos, dtype=np.float64)
    by_name = {v.name: v for v in variants}
    mos_label = label or (SYNTH_LABEL if synthetic else "MOS")
    rows = []
    for v in variants:
        if len(v.scores) != len(mos):
            raise InputError(f"{v.name}: {len(v.scores)} scores for {len(mos)} images")
        parent = by_name.get(v.parent) if v.parent else None
        rows.append({
            "name": v.name, "artifact": v.artifact, "student": v.student, "target": v.target,
            "backend": v.backend, "precision": v.precision, "precision_ran": v.precision_ran, "label": v.label,
            "source_sha256": v.source_sha256, "scores": [float(s) for s in v.scores],
            "vs_mos": accuracy.vs_mos(v.scores, mos, n_boot=n_boot, seed=seed),
            "vs_teacher": None if teacher is None else accuracy.vs_teacher(v.scores, teacher, v.gate_threshold),
            "vs_parent": None if parent is None else accuracy.vs_parent(v.scores, parent.scores, mos, parent.name,
                                                                           n_boot=n_boot, seed=seed),
            "cost": {k: v.cost.get(k) for k in ("size_bytes", "params", "gmacs", "latency_ms", "latency_note", "note")},
        })
    failures = accuracy.gate_failures(rows, max_srcc_drop)
    refs = [accuracy.reference_row(name, raw, mos, teacher, n_boot=n_boot, seed=seed)
            for name, raw in (references or {}).items()]
    cam = None
    if ladder is not None:
        cam = camera_section(ladder, variants, references or {}, label=mos_label, n_boot=n_boot, seed=seed, logo=logo)
    return {
        "schema": SCHEMA_ID, "schema_version": SCHEMA_VERSION, "dpiqa_edge_version": __version__,
        "created": timestamp(),
        "data": {"manifest": str(manifest), "split": split, "n_images": int(len(mos)), "mos_label": mos_label,
                 "synthetic": bool(synthetic), "paths": list(paths), "mos": [float(m) for m in mos]},
        "teacher": {"scores_file": teacher_file, "device": teacher_device_name, "label": teacher_label(teacher_device_name),
                    "scores": None if teacher is None else [float(t) for t in teacher],
                    "vs_mos": None if teacher is None else accuracy.vs_mos(teacher, mos, n_boot=n_boot, seed=seed)},
        "variants": rows, "references": refs,
        "gate": {"max_srcc_drop": max_srcc_drop, "passed": not failures, "failures": failures},
        "plots": {}, "notes": list(notes), "camera": cam,
    }


def write_report(report: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    """Draw the plots, validate, then write report.json, report.md and index.html. Returns report.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    label = report["data"]["mos_label"]
    teacher = report["teacher"]["scores"]
    names = []
    # 1. per-variant scatter plots
    for v in report["variants"]:
        rel = f"scatter_{plots.safe_name(v['name'])}.png"
        plots.plot_scatter(v["name"], v["scores"], teacher, report["data"]["mos"], label, out / rel)
        report["plots"][f"{v['name']}: predicted vs teacher and vs {label}"] = rel
        names.append(v["name"])
    # 2. SRCC drop bars and the accuracy-vs-latency Pareto chart
    drops = [v["vs_parent"]["srcc_drop"] if v["vs_parent"] else None for v in report["variants"]]
    plots.plot_srcc_drop(names, drops, report["gate"]["max_srcc_drop"], out / "srcc_drop.png")
    report["plots"]["SRCC drop vs float parent"] = "srcc_drop.png"
    pareto = [{"name": v["name"], "srcc": v["vs_mos"]["srcc"]["value"],
               "latency_ms": (v["cost"]["latency_ms"] or {}).get("p50")} for v in report["variants"]]
    plots.plot_pareto(pareto, label, out / "pareto.png")
    report["plots"]["accuracy vs latency (Pareto)"] = "pareto.png"
    if report.get("camera"):
        plots.plot_camera_taus(report["camera"]["rows"], out / "camera_tau.png")
        report["plots"]["camera ladders: within-reference Kendall tau per distortion"] = "camera_tau.png"
    # 3. validate before anything is written under the final names
    validate_report(report, where=str(out / "report.json"))
    write_text(out / "report.md", render_markdown(report))
    write_text(out / "index.html", render_html(report, out))
    return write_json(out / "report.json", report)


def make_report(manifest: str | os.PathLike, teacher_scores: str | os.PathLike | None,
                variants: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                max_srcc_drop: float | None = None, *, split: str = "test", parent: str | os.PathLike | None = None,
                synthetic: bool | None = None, peers: bool = True, n_boot: int = 1000, threads: int | None = None,
                latency_repeats: int = 20, batch_size: int = 8, max_images: int | None = None,
                raise_on_gate: bool = True, progress: bool = True, logo: str | os.PathLike | None = None) -> Path:
    """Score every variant on the held-out images and write the report; returns ``out_dir/report.json``.

    Args:
        manifest: CSV manifest; the ``split`` rows with a MOS are the held-out images.
        teacher_scores: ``scores.csv`` (or its folder) from ``teacher score``; None skips teacher columns.
        variants: artifacts (files or export folders), each scored through the runtime loaders.
        out_dir: where report.json / report.md / index.html / *.png go.
        max_srcc_drop: the accuracy budget; exceeded by any variant -> :class:`GateError` (exit 1) after
            the report is written (so the failing numbers can be read), unless ``raise_on_gate`` is False.
        split: which split is held out (``test``; the demo may use ``val`` on tiny sets).
        parent: an artifact to use as every variant's float parent (else found from export.json).
        synthetic: label targets "synthetic pseudo-MOS"; None: detect ``synth.json`` beside the manifest.
        peers: add BRISQUE and NIQE reference rows (slow-ish: ~0.1 s per image).
        n_boot: bootstrap resamples for the 95% intervals (0: none).
        threads / batch_size: passed to :func:`score_variant`.
        latency_repeats: batch-1 calls of each variant, timed round-robin across all of them
            (:func:`~.variants.interleaved_latency`; 0: no latency).
        max_images: use only the first N held-out images (smoke runs).
        logo: a ``logo.json`` from ``distill --recipe broad --logo`` (camera ladders only): the held-out-group
            table of the camera section, beside BRISQUE's and NIQE's tau on the same groups.
    """
    # 1. held-out images with a MOS, and the teacher's scores for exactly those
    man = read_manifest(manifest)
    rows = man.split(split).labelled()
    if max_images:
        rows = rows[:max_images]
    if len(rows) < 3:
        raise InputError(f"{manifest}: {len(rows)} labelled '{split}' images; a report needs at least 3")
    paths = [r.abspath for r in rows]
    mos = [r.mos for r in rows]
    teacher = None
    if teacher_scores is not None:
        table = read_teacher_scores(teacher_scores)
        missing = [r.path for r in rows if r.path not in table]
        if missing:
            raise InputError(f"{teacher_scores}: no teacher score for {len(missing)} held-out image(s), e.g. {missing[0]}")
        teacher = [table[r.path] for r in rows]
    # 2. every variant through the runtime (plus an explicit parent when it is not one of them)
    arts = [Path(v) for v in variants]
    if not arts:
        raise InputError("report: give at least one variant artifact (--variants)")
    extra = [Path(parent)] if parent and all(Path(parent).resolve() != a.resolve() for a in arts) else []
    scored = _score_all(extra + arts, paths, threads=threads, latency_repeats=0, batch_size=batch_size,
                        progress=progress)
    unique_names(scored)
    if latency_repeats > 0:  # all variants side by side, so load on a shared machine hits them alike
        interleaved_latency(scored, paths[0], latency_repeats, threads)
    explicit = scored[[a.resolve() for a in extra + arts].index(Path(parent).resolve())] if parent else None
    assign_parents(scored, explicit)
    # 3. classical peers on the same images
    refs, notes = {}, []
    if peers:
        refs, notes = _peer_scores(paths)
    # 4. numbers -> files (a camera ladder set adds the camera section)

    synth = is_synthetic(manifest) if synthetic is None else synthetic
    levels, ref_names = [r.level for r in rows], [r.ref for r in rows]
    ladder = ({"refs": ref_names, "scenes": [r.scene or r.ref for r in rows], "distortions": [r.distortion for r in rows],
               "levels": levels, "tags": _ladder_tags(manifest)} if is_ladder(levels, ref_names) else None)
    report = assemble_report(
        manifest=str(manifest), split=split, paths=[r.path for r in rows], mos=mos, variants=scored,
        teacher=teacher, teacher_file=None if teacher_scores is None else str(teacher_scores),
        teacher_device_name=teacher_device(teacher_scores) if teacher_scores else "unknown", references=refs,
        synthetic=synth, max_srcc_drop=max_srcc_drop, n_boot=n_boot, notes=notes,
        label=mos_label(manifest) if synthetic is None else None, ladder=ladder,
        logo=read_json(logo) if logo and ladder is not None else None)
    out = write_report(report, out_dir)
    if raise_on_gate and not report["gate"]["passed"]:
        raise GateError(f"{out}: " + "; ".join(report["gate"]["failures"]))
    return out


def _score_all(arts: list[Path], paths: list[str], *, progress: bool, **kw) -> list[ScoredVariant]:
    if not progress:
        return [score_variant(a, paths, **kw) for a in arts]
    from rich.progress import Progress

    out = []
    with Progress(transient=True) as bar:
        for a in arts:
            task = bar.add_task(f"scoring {a.name}", total=len(paths))
            out.append(score_variant(a, paths, progress=lambda n, t=task: bar.update(t, completed=n), **kw))
    return out


def _peer_scores(paths: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
    """BRISQUE and NIQE raw scores (lower = better) from dpiqa_edge.peers; a peer that cannot run here
    is named in the notes instead of silently missing."""
    refs, notes = {}, []
    try:
        from .. import peers
    except ImportError as exc:
        return {}, [f"classical peers not available: {exc}"]
    for name, fn in (("BRISQUE", "brisque_scores"), ("NIQE", "niqe_scores")):
        try:
            refs[name] = np.asarray(getattr(peers, fn)(paths), dtype=np.float64)
        except Exception as exc:  # a peer library failing must not lose the whole report
            notes.append(f"{name} could not run: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}")
    return refs, notes
