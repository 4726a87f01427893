"""Model benchmarks for BENCHMARKS.md (registered in ``bench.BENCHMARKS`` as ``models``): the paper's
B7 student vs Lite0 vs a channel-pruned Lite0 vs INT8, per backend, side by side in one run, plus the
teacher's forward at full SD-1.5 size and the ratios that matter for deployment.

What is measured, and how (every number is measured in this run; nothing is copied in):
1. The models are one data-driven list, :data:`MODELS` (one line each: what to build or which checkpoint
   to load, the input size): ``lite0`` (the bundled ImageNet weights) and ``lite0-pruned50`` (lite0 with
   50% of the channels of every prunable layer removed by torch-pruning, magnitude importance, no recovery
   fine-tune) at SPEC's 512 px and at the demo's 224 px, ``paper`` (EfficientNet-B7, random init: no B7
   weights exist offline) at 512, and the shipped default model when the package holds one. Latency does
   not depend on the weights' values; INT8 calibration uses a handful of package photos, enough for
   ranges, not for accuracy (accuracy is the report's job).
2. Each is exported through ``export.export_model`` (dynamic batch) to ONNX and OpenVINO fp32, and
   the Lite0-family models to INT8 (ORT QDQ, NNCF), exactly as a user would.
3. Every row runs in its own subprocess (``python -m dpiqa_edge.bench.models``), so its peak RSS is
   that model's process alone (runtime library included) and the phone-like rows can cap the ISA:
   batch-1 latency p50/p95 via ``timing.time_fn``, best-batch throughput over a few batch sizes.
4. Backends: torch eager (fp32), onnxruntime (what the graph holds), OpenVINO with f32 pinned,
   OpenVINO at its own default on this CPU (read from the plugin: bf16 on AVX-512 BF16 / AMX CPUs),
   OpenVINO int8.
5. Phone-like: 1 thread, and for OpenVINO ``ONEDNN_MAX_CPU_ISA=AVX2`` (no AVX-512/AMX, DATA.md's
   proxy); onnxruntime's own kernels do not read that variable, so its phone-like row is 1 thread only.
6. INT8 vs its own fp32 model, per backend and thread setting, timed round-robin in one process
   (``bench.models_int8``), with the kernels ORT's profiler saw in each ONNX INT8 artifact.
7. The teacher: one forward of the full SD-1.5-size DP-IQA teacher (random init, 512 px) on the CPU
   (no GPU here), few repeats; each student's speed ratio to it.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..export import export_model
from ..io import read_json
from ..quantize.prune import prune_model
from ..runtime.backends import load_backend
from ..runtime.formats import FORMATS, benchmarked_formats
from ..runtime.preprocess import Preprocess
from ..student import StudentConfig, build_student, complexity, load_student, save_student
from ..student.widths import record_widths
from ..teacher.loading import count_parameters
from ..timing import ratio, time_fn
from . import Section, run_worker
from .models_int8 import int8_section, kernel_section, measure_pair, pair_plan

SIZE = 512  #: SPEC's input size (the teacher's row, the default for a model line without its own)
PHONE_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2"}  #: OpenVINO's CPU plugin honours oneDNN's ISA cap


@dataclass(frozen=True)
class BenchModel:
    """One model of the benchmark: a line of :data:`MODELS`.

    Args:
        label: how its rows are named (``lite0``, ``lite0@224``, ...).
        student: what to build - ``lite0`` | ``lite0-pruned50`` | ``paper`` - or a student checkpoint folder
            (config.json + model.safetensors); a relative folder is looked up inside the installed package.
        size: input side in pixels (None: the checkpoint's own preprocessing size).
        map_size: quality-map side for built students (the demo's 224 px recipe uses 16, SPEC's 64).
        int8: also export and time INT8 (ORT, NNCF) and its phone-like rows.
        quick: part of ``bench --quick``.
    """

    label: str
    student: str
    size: int | None = SIZE
    map_size: int = 64
    int8: bool = True
    quick: bool = True


#: The benchmark's models. Adding one is one line: a label, a student (or a checkpoint folder) and a size.
MODELS = (
    BenchModel("lite0", "lite0", 512),
    BenchModel("paper", "paper", 512, int8=False, quick=False),
    BenchModel("lite0-pruned50", "lite0-pruned50", 512),
    BenchModel("lite0@224", "lite0", 224, map_size=16),  # the demo's input size and map
    BenchModel("lite0-pruned50@224", "lite0-pruned50", 224, map_size=16),
    BenchModel("default", "models/default/student", None),  # the shipped default model (its own input size)
)


@dataclass
class Row:
    """One measured configuration (one line of the main table)."""

    model: str
    backend: str  #: torch | onnxruntime | openvino
    precision: str  #: stored precision of the model/artifact
    ran: str = "?"  #: precision that actually executed (read back from the backend)
    threads: int | None = None
    size: int | None = None  #: input side in pixels
    params: int | None = None
    gmacs: float | None = None
    size_bytes: int | None = None
    p50: float = float("nan")
    p95: float = float("nan")
    cpu_ms: float = float("nan")  #: CPU time per call, all threads (wall >> cpu/threads: the machine was busy)
    rss_bytes: int | None = None
    throughput: dict[str, float] = field(default_factory=dict)  #: batch -> images/s
    note: str = ""


# ---------------------------------------------------------------------------------------------------
# 1-2. students and exports
# ---------------------------------------------------------------------------------------------------
def _calib_folder(root: Path, n: int) -> Path:
    """Package photos (scikit-image) as PNG files: the INT8 calibration frames."""
    from PIL import Image
    from skimage import data as skd

    folder = root / "calib"
    folder.mkdir(parents=True, exist_ok=True)
    names = ["astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field"]
    for i in range(n):
        img = getattr(skd, names[i % len(names)])()
        if i >= len(names):  # more frames than photos: mirrored copies differ in layout
            img = img[:, ::-1]
        Image.fromarray(img).save(folder / f"{i:02d}.png")
    return folder


def resolve_checkpoint(student: str) -> Path | None:
    """A checkpoint folder named by a :class:`BenchModel` (absolute, or relative to the package), or None."""
    path = Path(student)
    if not path.is_absolute():
        path = Path(__file__).resolve().parents[1] / path  # the dpiqa_edge package folder
    return path if (path / "config.json").is_file() and (path / "model.safetensors").is_file() else None


def build_students(root: Path, quick: bool, log, models=None) -> dict[str, tuple[Path, int, BenchModel]]:
    """Student checkpoints under ``root`` for every model line: label -> (folder, input size, line).
    A checkpoint line whose folder does not exist is skipped with a printed reason."""
    out: dict[str, tuple[Path, int, BenchModel]] = {}
    for m in MODELS if models is None else models:
        if quick and not m.quick:
            continue
        if m.student not in ("lite0", "lite0-pruned50", "paper"):
            folder = resolve_checkpoint(m.student)
            if folder is None:
                log(f"  skipping {m.label}: no student checkpoint at {m.student} (config.json + model.safetensors) in this install")
                continue
            size = m.size or Preprocess.from_dict(read_json(folder / "config.json").get("preprocessing") or {}).size[0]
            out[m.label] = (folder, int(size), m)
            continue
        size = int(m.size or SIZE)
        name = "paper" if m.student == "paper" else "lite0"
        cfg = StudentConfig(name=name, input_size=size, map_size=m.map_size, pretrained=None if name == "lite0" else False)
        log(f"  building {m.label} at {size}px")
        model = build_student(cfg)
        weights = "bundled ImageNet weights" if name == "lite0" else "random init"
        if m.student == "lite0-pruned50":
            log(f"  pruning {m.label} by 50% (torch-pruning, magnitude, no recovery)")
            prune_model(model, 0.5, size=224)  # trace size: any size the model accepts
            cfg = replace(cfg, widths=record_widths(model))
        out[m.label] = (save_student(model, cfg, root / "students" / m.label, weights=weights, purpose="bench"), size, m)
    return out


def export_all(students: dict[str, tuple[Path, int, BenchModel]], root: Path, quick: bool,
               log) -> dict[tuple[str, str, str], Path]:
    """(label, target, precision) -> export folder, at each model's input size. INT8 only for the lines
    that ask for it (B7 INT8 would cost minutes of calibration here and is not a deployment candidate)."""
    calib = _calib_folder(root, 8)
    jobs = []
    for label, (_folder, _size, m) in students.items():
        jobs += [(label, target, "fp32") for target in benchmarked_formats()]
        if m.int8:
            jobs += [(label, target, "int8") for target in benchmarked_formats()]
    out = {}
    for label, target, precision in jobs:
        t0 = time.perf_counter()
        folder, size, _m = students[label]
        dest = root / "exports" / f"{label.replace('@', '-')}-{target}-{precision}"
        extra = {"calib": str(calib), "calib_images": 8} if precision == "int8" else {}
        out[(label, target, precision)] = export_model(folder, target, precision, dest, input_size=size,
                                                       dynamic_batch=True, parity_images=2, log=None, **extra)
        log(f"  exported {dest.name} in {time.perf_counter() - t0:.0f}s")
    return out


# ---------------------------------------------------------------------------------------------------
# 3. one measurement in a subprocess
# ---------------------------------------------------------------------------------------------------
def _worker(spec: dict[str, Any], env: dict[str, str] | None = None, timeout: float = 900) -> dict[str, Any]:
    """Run :func:`measure` in a fresh interpreter; returns its JSON result (``error`` on failure)."""
    env = dict(env or {})
    if spec.get("threads"):  # BLAS/OpenMP pools sized before any library starts
        env["OMP_NUM_THREADS"] = str(spec["threads"])
    return run_worker("dpiqa_edge.bench.models", spec, env, timeout)


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """Inside the worker: load one model, time batch 1 (and larger batches), report peak RSS.

    ``spec``: kind (``artifact`` | ``torch`` | ``teacher`` | ``pair``), path, size, threads, precision_hint,
    repeat, warmup, batches (list; empty = batch 1 only). ``pair``: ``models_int8.measure_pair``.
    """
    import numpy as np

    if spec["kind"] == "pair":
        return measure_pair(spec)

    threads, repeat, warmup = spec.get("threads"), int(spec.get("repeat", 10)), int(spec.get("warmup", 2))
    # 1. load
    if spec["kind"] == "artifact":
        backend = load_backend(spec["path"], precision_hint=spec.get("precision_hint"), threads=threads)
        run, ran = (lambda x: backend.run(x)), backend.precision
        if str(backend.metadata.get("precision")) == "int8" and ran != "int8":
            ran = f"int8 (+{ran} rest)"  # OpenVINO: quantized ops in int8, the others at the hint
    elif spec["kind"] == "torch":
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        model = load_student(spec["path"])[0].eval()

        def run(x):
            with torch.inference_mode():
                return model(torch.from_numpy(x))

        ran = "fp32"
    else:  # the teacher at full SD-1.5 size
        run, params = _full_size_teacher(threads)
        ran = "fp32"
    # 2. batch-1 latency on a real photo
    from skimage import data as skd

    size = int(spec.get("size") or SIZE)
    x1 = Preprocess(size=(size, size))(skd.astronaut())[None]
    t = time_fn(lambda: run(x1), warmup=warmup, repeat=repeat)
    result = {"p50": t.median_ms, "p95": t.p95_ms, "cpu_ms": getattr(t, "cpu_median_ms", None), "repeat": t.repeat,
              "ran": ran, "throughput": {}, "threads": threads}
    if spec["kind"] == "teacher":
        result["params"] = params
    # 3. throughput at larger batches (fewer repeats: each call is longer)
    for b in spec.get("batches", []):
        xb = np.repeat(x1, int(b), axis=0)
        tb = time_fn(lambda: run(xb), warmup=1, repeat=max(2, repeat // 3))
        result["throughput"][str(b)] = 1000.0 * int(b) / tb.median_ms
    if "1" not in result["throughput"]:
        result["throughput"]["1"] = 1000.0 / t.median_ms
    # 4. the process' peak resident memory (model + runtime library + activations)
    result["rss_bytes"] = _vm_hwm()
    return result


# ---------------------------------------------------------------------------------------------------
# 4-6. the plan, the run, the tables
# ---------------------------------------------------------------------------------------------------
def _plan(students: dict[str, tuple[Path, int, BenchModel]], exports: dict[tuple[str, str, str], Path], quick: bool,
          threads: int, ov_default: str) -> list[tuple[Row, dict[str, Any], dict[str, str] | None]]:
    """(row, worker spec, extra env) for every configuration, in table order."""
    plan = []
    for name, (folder, size, _m) in students.items():
        slow = name == "paper"  # B7 at 512: ~1 s a call here; few repeats
        rep = dict(repeat=3, warmup=1, batches=[]) if slow else dict(repeat=5 if quick else 15, warmup=2,
                                                                         batches=[4] if quick else [2, 4, 8])
        rep["size"] = size
        plan.append((Row(name, "torch", "fp32", threads=threads), {"kind": "torch", "path": str(folder), **rep}, None))
        for (sname, target, precision), art in exports.items():
            if sname != name:
                continue
            if target != "openvino":  # the artifact as its loader runs it
                plan.append((Row(name, FORMATS[target].library, precision, threads=threads),
                             {"kind": "artifact", "path": str(art), **rep}, None))
            else:
                plan.append((Row(name, "openvino", precision, threads=threads, note="f32 pinned"),
                             {"kind": "artifact", "path": str(art), "precision_hint": "f32", **rep}, None))
                if precision in ("fp32", "int8") and ov_default != "f32":
                    # the plugin's own choice: fp32 IRs run at ov_default; an int8 IR's int8 ops stay int8 and
                    # its float ops run at ov_default
                    plan.append((Row(name, "openvino", precision, threads=threads, note=f"OpenVINO default here ({ov_default})"),
                                 {"kind": "artifact", "path": str(art), "precision_hint": "default", **rep}, None))
    # 5. phone-like: 1 thread; OpenVINO additionally capped to AVX2 (the models with INT8 variants)
    for (name, target, precision), art in exports.items():
        if not students[name][2].int8:
            continue
        phone = dict(repeat=5 if quick else 15, warmup=2, batches=[], threads=1, size=students[name][1])
        if target == "openvino":
            plan.append((Row(name, "openvino", precision, threads=1, note="phone-like: 1 thread, ONEDNN_MAX_CPU_ISA=AVX2, f32 pinned"),
                         {"kind": "artifact", "path": str(art), "precision_hint": "f32", **phone}, PHONE_ENV))
        elif threads > 1:  # at 1 thread the main table's ORT rows already are this configuration
            plan.append((Row(name, FORMATS[target].library, precision, threads=1,
                             note="phone-like: 1 thread (ISA not capped: ORT ignores oneDNN's cap)"),
                         {"kind": "artifact", "path": str(art), **phone}, None))
    return plan


def choose_threads() -> tuple[int, str]:
    """Intra-op threads for the main table, and why. All usable cores, unless the machine is already
    oversubscribed (1-minute load average above the core count): then 2-thread runs spend their time in
    thread synchronisation (measured here: torch Lite0 at 512 took 1.7 s with 2 threads vs 0.3 s with 1
    under load 12 on 2 cores), so 1 thread gives the truer per-model cost. ``DPIQA_BENCH_THREADS`` overrides."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if os.environ.get("DPIQA_BENCH_THREADS"):
        return int(os.environ["DPIQA_BENCH_THREADS"]), "DPIQA_BENCH_THREADS"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > cores:
        return 1, f"machine oversubscribed: load average {load:.1f} on {cores} cores"
    return cores, f"all {cores} usable cores; load average {load:.1f}"


def _openvino_default_precision() -> str:
    """What OpenVINO's CPU plugin runs fp32 models in by default on this machine (bf16 / f32 / f16)."""
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()


def bench_models(quick: bool = False, log=None) -> list:
    """The registered benchmark: returns the sections of BENCHMARKS.md (see the module doc).
    ``log`` gets one line per step (default: stderr, so stdout stays the harness's)."""
    log = log or (lambda m: print(m, file=sys.stderr, flush=True))

    t_start = time.perf_counter()
    threads, why_threads = choose_threads()
    log(f"  threads per model: {threads} ({why_threads})")
    ov_default = _openvino_default_precision()
    ov_default = {"bf16": "bf16", "f16": "f16"}.get(ov_default, "f32")
    with tempfile.TemporaryDirectory(prefix="dpiqa-bench-") as tmp:
        root = Path(tmp)
        # 1-2. students and their exports
        students = build_students(root, quick, log)
        skipped = [m.label for m in MODELS if (m.quick or not quick) and m.label not in students]
        exports = export_all(students, root, quick, log)
        cost = {n: complexity(load_student(d)[0], size) for n, (d, size, _m) in students.items()}
        # 3-5. every configuration in its own process
        rows = []
        for row, spec, env in _plan(students, exports, quick, threads, ov_default):
            spec.setdefault("threads", threads)
            log(f"  {row.model:16s} {row.backend:11s} {row.precision:5s} {row.note}")
            res = _worker(spec, env)
            c = cost[row.model]
            row.params, row.gmacs, row.size = c["params"], c["gmacs"], spec.get("size")
            if spec["kind"] == "artifact":
                row.size_bytes = read_json(Path(spec["path"]) / "export.json").get("size_bytes")
            else:
                row.size_bytes = (Path(spec["path"]) / "model.safetensors").stat().st_size
            if "error" in res:
                row.note = (row.note + "; " if row.note else "") + "FAILED: " + res["error"]
            else:
                row.ran, row.p50, row.p95, row.rss_bytes, row.throughput = (res["ran"], res["p50"], res["p95"],
                                                                           res["rss_bytes"], res["throughput"])
                row.cpu_ms = float("nan") if res.get("cpu_ms") is None else res["cpu_ms"]
            rows.append(row)
        # 6. INT8 vs its fp32 model, round-robin in one process per pair; the kernels ORT ran
        models = {n: {"size": size, "exports": {(t, p): e for (m, t, p), e in exports.items() if m == n}}
                  for n, (_d, size, m) in students.items() if m.int8}
        pairs = []
        for facts, spec, env in pair_plan(models, threads, PHONE_ENV, quick):
            log(f"  int8 vs fp32: {facts['model']:18s} {facts['backend']:11s} {facts['how']}")
            pairs.append((facts, _worker(spec, env)))
        kernels = {f"{n} ({size}x{size})": read_json(exports[(n, "onnx", "int8")] / "export.json")
                   for n, (_d, size, m) in students.items() if m.int8}
        # 7. the teacher at full SD-1.5 size (random init), CPU
        teacher = None
        if not quick:
            # one forward takes minutes on 2 CPU cores: 1 timed call, no warm-up (first-call overheads are
            # seconds against minutes); the build (1.06 B parameters, random init) is not timed
            log("  teacher forward at full SD-1.5 size (random init, CPU, one call: minutes) ...")
            teacher = _worker({"kind": "teacher", "threads": threads, "repeat": 1, "warmup": 0, "batches": []}, timeout=1500)
    secs = _sections(rows, teacher, quick, ov_default, time.perf_counter() - t_start, Section, ratio)
    secs[0].notes.insert(1, f"Threads per model: {threads} ({why_threads}).")
    if skipped:
        secs[0].notes.append("Not measured: " + ", ".join(f"{m} (no checkpoint in this install)" for m in skipped) + ".")
    secs += [int8_section(pairs, Section), kernel_section(kernels, Section)]
    return secs


def _find(rows: list[Row], model: str, backend: str, precision: str, phone: bool = False, default: bool = False):
    for r in rows:
        if (r.model, r.backend, r.precision) == (model, backend, precision) and r.note.startswith("phone") == phone \
                and r.note.startswith("OpenVINO default") == default:
            return r
    return None


def _mb(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 1e6:.1f}"


def _best(r: Row) -> str:
    if not r.throughput:
        return "n/a"
    b, v = max(r.throughput.items(), key=lambda kv: kv[1])
    return f"{v:.1f} (batch {b})"


def _sections(rows: list[Row], teacher: dict[str, Any] | None, quick: bool, ov_default: str, seconds: float,
              Section, ratio) -> list:
    """The three tables: every configuration, the phone-like rows, the ratios."""
    nan = float("nan")
    t_ms = teacher["p50"] if teacher and "error" not in teacher else nan
    main = [r for r in rows if not r.note.startswith("phone")]
    phone = [r for r in rows if r.note.startswith("phone")]
    cols = ["model", "input", "backend", "precision (stored -> ran)", "threads", "params (M)", "GMACs", "size (MB)",
            "p50 ms", "p95 ms", "CPU ms/call", "best throughput img/s", "peak RSS (MiB)", "x faster than teacher", "note"]
    table = [[r.model, r.size or "", r.backend, f"{r.precision} -> {r.ran}", r.threads, (r.params or 0) / 1e6, r.gmacs, _mb(r.size_bytes),
              r.p50, r.p95, r.cpu_ms, _best(r), "n/a" if r.rss_bytes is None else f"{r.rss_bytes / 2**20:.0f}", ratio(t_ms, r.p50), r.note]
             for r in main]
    notes = [
        f"Measured in one run ({seconds / 60:.1f} min{', --quick' if quick else ''}) on this machine (see above); "
        "input = the model's square input side (GMACs at that size); batch 1 unless stated; every row in its own "
        "subprocess (peak RSS includes the runtime library).",
        "Weights: paper (EfficientNet-B7) random init (no B7 weights offline); lite0 the bundled ImageNet weights; "
        "lite0-pruned50 = lite0 with 50% of channels removed (torch-pruning, magnitude, no recovery); @224 = the "
        "demo's input size and 16x16 map (512 rows: SPEC's size and 64x64 map). "
        "Latency does not depend on weight values; INT8 calibrated on 8 package photos (ranges only).",
        f"OpenVINO: 'f32 pinned' sets INFERENCE_PRECISION_HINT=f32; its own default on this CPU is {ov_default} "
        "(read from the plugin), shown as a separate row. INT8 rows: int8 kernels, the ops left float at the hint "
        "(the runtime runs an INT8 IR's float ops at the precision its export measured and recorded, as its "
        "accuracy gate judged it: one of these two rows).",
        "Other engineers share these 2 cores during this run: expect noise of tens of percent between rows; "
        "'CPU ms/call' (this process, all threads) is the steadier cost where wall time is inflated by waiting.",
        "paper (B7) rows: 3 timed calls after 1 warm-up and no batch sweep (each call takes seconds here); "
        "the others: batch 1 repeated, then batches 2/4/8 for the best throughput.",
    ]
    if teacher is None:
        notes.append("Teacher forward not measured (--quick).")
    elif "error" in teacher:
        notes.append(f"Teacher forward FAILED: {teacher['error']}")
    else:
        table.append(["teacher (full SD-1.5 size, random init)", SIZE, "torch", f"fp32 -> {teacher.get('ran', 'fp32')}",
                      teacher.get("threads", ""), (teacher.get("params") or nan) / 1e6, nan, "n/a", teacher["p50"],
                      teacher["p95"], teacher.get("cpu_ms") or nan, "n/a", f"{teacher['rss_bytes'] / 2**20:.0f}", 1.0,
                      f"CPU (no GPU lent to this run); {teacher.get('repeat')} timed calls"])
    out = [Section("Students vs backends", cols, table, notes)]
    # phone-like rows, each next to its 2-thread counterpart
    prow = []
    for r in phone:
        full = _find(rows, r.model, r.backend, r.precision)
        prow.append([r.model, r.backend, f"{r.precision} -> {r.ran}", r.p50, r.p95,
                     ratio(r.p50, full.p50) if full else nan, r.note.replace("phone-like: ", "")])
    out.append(Section("Phone-like rows (1 thread; OpenVINO capped to AVX2)",
                       ["model", "backend", "precision (stored -> ran)", "p50 ms", "p95 ms", "x main-table p50 (same model/backend/precision)", "what was capped"],
                       prow, ["A proxy for a phone-class CPU (no AVX-512/AMX, one core), not a phone measurement."]))
    # ratios
    rat = []
    quantized = list(dict.fromkeys(r.model for r in rows if r.precision == "int8"))
    for backend in (FORMATS[f].library for f in benchmarked_formats()):
        int8 = _find(rows, "lite0", backend, "int8")
        paper = _find(rows, "paper", backend, "fp32")
        if int8 and paper:
            rat.append(["Lite0 INT8 vs paper fp32 (speed-up)", backend, ratio(paper.p50, int8.p50),
                        ratio(paper.size_bytes or nan, int8.size_bytes or nan)])
        if int8:
            rat.append(["Lite0 INT8 vs teacher (speed-up)", backend, ratio(t_ms, int8.p50), nan])
        for model in quantized:
            fp32, q = _find(rows, model, backend, "fp32"), _find(rows, model, backend, "int8")
            if fp32 and q:
                rat.append([f"{model} INT8 vs fp32 (speed-up)", backend, ratio(fp32.p50, q.p50),
                            ratio(fp32.size_bytes or nan, q.size_bytes or nan)])
            dflt, q_dflt = _find(rows, model, backend, "fp32", default=True), _find(rows, model, backend, "int8", default=True)
            if dflt and q_dflt:
                rat.append([f"{model} INT8 vs fp32, both at OpenVINO's default ({ov_default})", backend,
                            ratio(dflt.p50, q_dflt.p50), nan])
            if dflt and q:
                rat.append([f"{model} INT8 (float ops pinned f32) vs fp32 at OpenVINO's default ({ov_default})", backend,
                            ratio(dflt.p50, q.p50), nan])
        # the pruning target: pruned + INT8 against unpruned INT8, each pair run the same way
        for default in (False, True):
            for base, pruned in (("lite0", "lite0-pruned50"), ("lite0@224", "lite0-pruned50@224")):
                q, pq = (_find(rows, m, backend, "int8", default=default) for m in (base, pruned))
                if q and pq:
                    how = f" (both at OpenVINO's default, {ov_default})" if default else (" (float ops pinned f32)" if backend == "openvino" else "")
                    rat.append([f"{pruned} INT8 vs {base} INT8{how}", backend, ratio(q.p50, pq.p50),
                                ratio(q.size_bytes or nan, pq.size_bytes or nan)])
    for model in ("lite0", "lite0-pruned50"):
        torch_p, torch_m = _find(rows, "paper", "torch", "fp32"), _find(rows, model, "torch", "fp32")
        if torch_p and torch_m:
            rat.append([f"{model} vs paper, torch eager fp32 (speed-up)", "torch", ratio(torch_p.p50, torch_m.p50),
                        ratio(torch_p.size_bytes or nan, torch_m.size_bytes or nan)])
    out.append(Section("Ratios (p50 latency at batch 1; size = artifact bytes)", ["comparison", "backend", "speed ratio", "size ratio"],
                       rat, ["speed ratio = slower p50 / faster p50 (> 1: the first-named model is faster); n/a: not measured.",
                             "Rows from the tables above: each configuration in its own process, minutes apart. INT8 vs "
                             "its fp32 model timed side by side (the steadier ratio): 'INT8 vs its fp32 model' below."]))
    return out


def _full_size_teacher(threads: int | None):
    """The DP-IQA teacher at SPEC's size (SD-1.5 UNet + VAE + full T2I adapter, QFD width 512, 64x64
    map, 1,485 prompt tokens, 512 px), random weights, built as the GPU bench builds it
    (``teacher.model.build_full_teacher``). Returns (run(x) -> outputs, parameter count)."""
    import torch

    from ..teacher.model import build_full_teacher

    if threads:
        torch.set_num_threads(int(threads))
    model = build_full_teacher("cpu")

    def run(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x))

    return run, int(count_parameters(model, trainable_only=False))


def _vm_hwm() -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":  # the worker entry point used by _worker
    print(json.dumps(measure(json.loads(sys.argv[1]))))
