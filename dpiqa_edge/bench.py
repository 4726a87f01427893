"""The benchmark harness behind ``make bench`` / ``dpiqa-edge bench``: it times, measures memory, records
the machine, and writes BENCHMARKS.md itself (never edit that file by hand).

* :func:`time_fn` — warm-up calls, then ``repeat`` timed calls -> :class:`Timing` (median, p95, mean, min).
* :func:`peak_memory` — peak Python allocations of one call (``tracemalloc``; numpy buffers are traced) and
  the process' peak resident memory (``VmHWM`` from /proc/self/status, reset first through
  /proc/self/clear_refs where the kernel allows; ``ru_maxrss`` elsewhere, then a lifetime peak, said so).
* :func:`machine_facts` — CPU model, cores, ISA flags (avx2, avx512f, amx...), library versions.
* ``BENCHMARKS`` — the explicit registry: name -> ``"module:function"``. Each function takes ``quick: bool``
  and returns a :class:`Section` (or a list), or None where it cannot measure on this machine (the GPU
  teacher without a GPU): the stored section is then kept. Later stages add their line here; imports
  happen only when a benchmark runs, so listing them costs nothing and pulls in no backend.
* :func:`run_benchmarks` — runs the selected entries, merges them into ``BENCHMARKS.json`` beside the
  output (so ``--only NAME`` refreshes one section and keeps the others) and renders BENCHMARKS.md. Each
  stored entry keeps the machine it ran on; :func:`merge_benchmarks` adds entries measured elsewhere
  (a lent GPU box) and the page names that machine under each such section.
"""

from __future__ import annotations

import datetime as _dt
import gc
import importlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError
from .io import write_json, write_text

#: name -> "module:function(quick) -> Section | list[Section]". Add one line per measurement.
BENCHMARKS: dict[str, str] = {
    "decode": "dpiqa_edge.bench:bench_decode",
    "synth": "dpiqa_edge.bench:bench_synth",
    "models": "dpiqa_edge.bench_models:bench_models",
    "coreml_emulator": "dpiqa_edge.runtime.backends.coreml_mil_bench:bench_coreml_emulator",
    "runtime": "dpiqa_edge.runtime.measure:bench_runtime",
    "openvino_int8": "dpiqa_edge.quantize.measure:bench_openvino_int8",
    "prune_int8": "dpiqa_edge.quantize.measure:bench_prune_int8",
    "teacher_gpu": "dpiqa_edge.teacher.bench:bench_teacher_gpu",
    "camera": "dpiqa_edge.bench_camera:bench_camera",
    "web": "dpiqa_edge.web.bench:bench_web",
}

LIBRARIES = ("numpy", "pillow", "scipy", "torch", "onnxruntime", "openvino", "coremltools", "timm", "diffusers")


@dataclass
class Timing:
    """Wall-clock statistics of repeated calls, in milliseconds (``cpu_median_ms``: this process' CPU
    time per call, all threads; below wall time when the machine is busy, above it when threads help)."""

    median_ms: float
    p95_ms: float
    mean_ms: float
    min_ms: float
    repeat: int
    warmup: int
    cpu_median_ms: float | None = None


def summarize_times(seconds: list[float], warmup: int = 0, cpu_seconds: list[float] | None = None) -> Timing:
    """Statistics of per-call durations (seconds in, ms out); p95 by linear interpolation."""
    if not seconds:
        raise ConfigError("bench: no timings to summarise")
    ms = sorted(s * 1e3 for s in seconds)
    pos = 0.95 * (len(ms) - 1)
    lo, frac = int(pos), pos - int(pos)
    p95 = ms[lo] + (ms[min(lo + 1, len(ms) - 1)] - ms[lo]) * frac
    cpu = statistics.median(cpu_seconds) * 1e3 if cpu_seconds else None
    return Timing(statistics.median(ms), p95, statistics.fmean(ms), ms[0], len(ms), warmup, cpu)


def time_fn(fn: Callable[[], Any], warmup: int = 3, repeat: int = 20) -> Timing:
    """Call ``fn`` ``warmup`` times untimed (caches, lazy init, JIT), then time ``repeat`` calls."""
    if repeat < 1 or warmup < 0:
        raise ConfigError(f"bench: need repeat >= 1 and warmup >= 0, got {repeat}, {warmup}")
    for _ in range(warmup):
        fn()
    gc.collect()
    times, cpu = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return summarize_times(times, warmup, cpu)


def ratio(a: float, b: float) -> float:
    """a / b (e.g. baseline_ms / variant_ms = speed-up); NaN when b is 0."""
    return float("nan") if b == 0 else a / b


def _proc_status(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024  # kB -> bytes
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_memory(fn: Callable[[], Any], trace_python: bool = True) -> dict[str, Any]:
    """Run ``fn`` once; return its peak traced Python allocations and the process' peak RSS (bytes).

    ``trace_python=False`` skips tracemalloc (which slows allocation-heavy code several-fold) when the
    same call is also being timed; ``python_peak_bytes`` is then None.
    """
    reset = False
    try:  # writing 5 resets VmHWM to the current RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
        reset = True
    except OSError:
        pass
    traced = None
    if trace_python:
        tracemalloc.start()
    try:
        fn()
        if trace_python:
            _, traced = tracemalloc.get_traced_memory()
    finally:
        if trace_python:
            tracemalloc.stop()
    rss = _proc_status("VmHWM")
    if rss is None:  # not Linux: ru_maxrss (KiB on Linux, bytes on macOS) is a lifetime peak
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
        reset = False
    return {"python_peak_bytes": None if traced is None else int(traced), "rss_peak_bytes": int(rss), "rss_peak_is": "this call" if reset else "process lifetime"}


def library_versions(names) -> dict[str, str]:
    """Installed version of each distribution (``not installed`` where it is missing)."""
    from importlib import metadata

    versions = {}
    for lib in names:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = "not installed"
    return versions


def machine_facts() -> dict[str, Any]:
    """CPU model, logical cores, the ISA flags that matter for inference, OS and library versions."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = val.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(val.split())
    except OSError:
        pass
    wanted = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile",
              "amx_bf16", "amx_int8", "neon", "asimd", "asimddp")
    versions = library_versions(LIBRARIES)
    gpu = None
    if shutil.which("nvidia-smi"):  # no torch import just to name the GPU
        try:
            gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=20).stdout.strip().splitlines()[0] or None
        except (OSError, subprocess.SubprocessError, IndexError):
            gpu = None
    return {"cpu": model, "gpu": gpu, "logical_cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "isa": [f for f in wanted if f in flags], "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None, "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "libraries": versions}


@dataclass
class Section:
    """One table of BENCHMARKS.md: a title, column names, rows of values and notes printed under it."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)


def run_worker(module: str, spec: dict[str, Any], env: dict[str, str] | None = None,
               timeout: float = 900) -> dict[str, Any]:
    """``python -m module 'SPEC-JSON'`` in a fresh interpreter (its own thread pools, allocator peaks and
    library state); returns the last JSON line it prints, or ``{"error": ...}`` on a timeout or failure."""
    try:
        proc = subprocess.run([sys.executable, "-m", module, json.dumps(spec)], env={**os.environ, **(env or {})},
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f}s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:300]}"}
    return json.loads(lines[-1])


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "n/a"
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}" if abs(v) < 100 else f"{v:,.1f}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v).replace("|", "\\|")


def render_markdown(sections: dict[str, dict], machine: dict, command: str, when: str) -> str:
    """BENCHMARKS.md text: how it was made, the machine and versions, then one table per benchmark."""
    lines = ["# Benchmarks", "",
             "Written by the harness (`dpiqa_edge/bench.py`); do not edit by hand. Re-run with `make bench`.", "",
             f"- last command: `{command}` ({when} UTC); each section names the run that produced it",
             f"- CPU: {machine['cpu']} ({machine['logical_cores']} logical cores, {machine['usable_cores']} usable); "
             f"GPU: {machine.get('gpu') or 'none'}",
             f"- ISA: {', '.join(machine['isa']) or 'none detected'}",
             f"- OS: {machine['os']}, Python {machine['python']}, OMP_NUM_THREADS={machine['omp_num_threads']}, "
             f"load average (1 min) when written: {machine.get('load_average_1min')}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in machine["libraries"].items()), "",
             "Times are wall-clock milliseconds per call after warm-up (median, p95 over the repeats); where a "
             "CPU column is shown it is the process' CPU time per call, the better figure on a busy machine. "
             "Accuracy numbers measured on the synthetic set are synthetic pseudo-MOS.", ""]
    for name, entry in sections.items():
        elsewhere = entry.get("machine") and _machine_line(entry["machine"]) != _machine_line(machine)
        for sec in entry["sections"]:
            lines += [f"## {sec['title']}", "", f"_benchmark `{name}`, run {entry['when']} UTC"
                      + (" (quick)" if entry.get("quick") else "")
                      + (f" by `{entry['command']}`" if entry.get("command") else "")
                      + (f" on another machine: {_machine_line(entry['machine'])}" if elsewhere else "") + "_", ""]
            lines.append("| " + " | ".join(sec["columns"]) + " |")
            lines.append("|" + "|".join("---" for _ in sec["columns"]) + "|")
            lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in sec["rows"]]
            lines += [""] + [f"- {n}" for n in sec.get("notes", [])] + ([""] if sec.get("notes") else [])
    return "\n".join(lines).rstrip() + "\n"


def _machine_line(m: dict) -> str:
    """The facts that say which machine ran a section (GPU first where there was one)."""
    gpu = f"{m['gpu']}, " if m.get("gpu") else ""
    return f"{gpu}{m.get('cpu')} ({m.get('logical_cores')} logical cores), {m.get('os')}"


def _resolve(name: str) -> Callable[[bool], Any]:
    if name not in BENCHMARKS:
        raise ConfigError(f"bench: unknown benchmark {name!r}; available: {', '.join(BENCHMARKS)}")
    module, _, func = BENCHMARKS[name].partition(":")
    return getattr(importlib.import_module(module), func)


def run_benchmarks(out: str | os.PathLike = "BENCHMARKS.md", only: list[str] | None = None, quick: bool = False,
                   command: str = "dpiqa-edge bench", log: Callable[[str], None] = print) -> Path:
    """Run the selected benchmarks, merge into ``<out>.json``, write ``out`` (markdown). Returns ``out``."""
    names = list(only) if only else list(BENCHMARKS)
    fns = {n: _resolve(n) for n in names}  # fail on a bad name before any timing starts
    out = Path(out)
    fresh: dict[str, Any] = {}
    for n, fn in fns.items():
        log(f"bench {n} ...")
        result = fn(quick)
        if result is None:
            log(f"bench {n}: nothing measured on this machine; its stored section (if any) is kept")
            continue
        result = result if isinstance(result, list) else [result]
        fresh[n] = {"when": _now(), "quick": quick, "command": command, "sections": [asdict(s) for s in result]}
    return _store_and_render(out, fresh, command)


def merge_benchmarks(out: str | os.PathLike, other: str | os.PathLike, command: str,
                     names: list[str] | None = None) -> Path:
    """Copy the sections of another run's ``BENCHMARKS.json`` (``names``, or all of them) into ``out``'s
    store, each with the machine it was measured on, and re-render ``out``. Nothing is timed here."""
    other = Path(other)
    store = _read_store(other)
    if not store.get("sections"):
        raise ConfigError(f"{other}: not a BENCHMARKS.json written by the harness (no sections)")
    fresh = {}
    for n, entry in store["sections"].items():
        if n in BENCHMARKS and (not names or n in names):
            fresh[n] = {**entry, "machine": entry.get("machine") or store.get("machine")}
    if not fresh:
        raise ConfigError(f"{other}: none of {names or 'its sections'} is a registered benchmark")
    return _store_and_render(Path(out), fresh, command)


def _store_and_render(out: Path, fresh: dict[str, Any], command: str) -> Path:
    """Merge ``fresh`` entries (those without a machine ran here) into the store; write it and the page."""
    machine = machine_facts()  # after the runs: the load average is the one when written
    fresh = {k: {**v, "machine": v.get("machine") or machine} for k, v in fresh.items()}
    store_path = out.with_suffix(".json")
    # Merge with what is stored *now* (read after the runs, which can take minutes, so a concurrent
    # `--only other` run is not overwritten), keeping registry order. Entries from before per-entry machine
    # facts were recorded ran on the machine the store names.
    stored = _read_store(store_path)
    sections = {k: {**v, "machine": v.get("machine") or stored.get("machine")}
                for k, v in stored.get("sections", {}).items() if k in BENCHMARKS}
    sections.update(fresh)
    ordered = {k: sections[k] for k in BENCHMARKS if k in sections}
    write_json(store_path, {"machine": machine, "command": command, "sections": ordered})
    write_text(out, render_markdown(ordered, machine, command, _now()))
    return out


def _read_store(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except (json.JSONDecodeError, OSError):
        return {}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


# --- registered benchmarks of the shared plumbing ------------------------------------------------------
def bench_decode(quick: bool = False) -> Section:
    """The ONE decoder and ONE preprocessing on package photos encoded as JPEG (quality 90) in memory."""
    import io

    import numpy as np
    from PIL import Image
    from skimage import data as skd

    from .runtime.image import decode_image
    from .runtime.preprocess import Preprocess

    warmup, repeat = (2, 10) if quick else (5, 50)
    photo = skd.astronaut()
    inputs = {"512x512": photo, "1024x768": np.asarray(Image.fromarray(skd.coffee()).resize((1024, 768), Image.BICUBIC))}
    rows = []
    for label, rgb in inputs.items():
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=90)
        jpeg = buf.getvalue()
        base = time_fn(lambda: decode_image(jpeg), warmup, repeat)
        cases = [("decode_image", base)]
        for size in (512, 224):
            pre = Preprocess(size=(size, size))
            cases.append((f"decode + Preprocess({size})", time_fn(lambda p=pre: p(jpeg), warmup, repeat)))
        mem = peak_memory(lambda: Preprocess(size=(512, 512))(jpeg))
        for what, t in cases:
            at512 = what.endswith("(512)")
            rows.append([f"JPEG {label} ({len(jpeg) // 1024} KiB)", what, t.median_ms, t.p95_ms, t.cpu_median_ms, ratio(t.cpu_median_ms, base.cpu_median_ms),
                         f"{mem['python_peak_bytes'] / 2**20:.1f}" if at512 else "",
                         f"{mem['rss_peak_bytes'] / 2**20:.0f} ({mem['rss_peak_is']})" if at512 else ""])
    return Section("Image decoding and preprocessing (numpy + Pillow, 1 thread)",
                   ["input", "step", "median ms", "p95 ms", "CPU median ms", "x decode (CPU)", "peak Python MiB", "peak RSS MiB"], rows,
                   [f"{repeat} timed calls after {warmup} warm-up calls each; photos: skimage astronaut, coffee (resized).",
                    "peak Python MiB: tracemalloc peak of one decode + Preprocess(512) call (numpy buffers included); "
                    "peak RSS: the whole process (interpreter and libraries included) during that call."])


def bench_synth(quick: bool = False) -> Section:
    """Building the embedded default set (one build, timed end to end) and the cost of one label."""
    import tempfile

    import numpy as np
    from PIL import Image
    from skimage import data as skd

    from .data.synth import DISTORTIONS, SynthConfig, measure, synthesize

    cfg = SynthConfig.smoke() if quick else SynthConfig()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        mem = peak_memory(lambda: synthesize(Path(tmp) / "synth", cfg, progress=False, reuse=False), trace_python=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        n = sum(1 for _ in (Path(tmp) / "synth" / "images").rglob("*.png"))
    rows.append(["smoke" if quick else "default", f"{n} images at {cfg.size} px", wall * 1e3, cpu * 1e3, n / wall,
                 f"{mem['rss_peak_bytes'] / 2**20:.0f}"])
    ref = np.asarray(Image.fromarray(skd.chelsea()).resize((cfg.size, cfg.size), Image.LANCZOS))
    jpeg = DISTORTIONS["jpeg"]
    dist = jpeg.fn(ref, jpeg.params[2], np.random.default_rng(0))
    t = time_fn(lambda: measure(ref, dist), 1, 3 if quick else 10)
    rows.append(["one label", f"measure() at {cfg.size} px", t.median_ms, t.cpu_median_ms, 1e3 / t.median_ms, ""])
    return Section("Synthetic set (synthetic pseudo-MOS labels)", ["build", "what", "wall ms", "CPU ms", "images/s", "peak RSS MiB"],
                   rows, ["One build, single process; wall time includes PNG writes (atomic, fsynced). "
                          "CPU ms is this process' CPU time: on a loaded machine wall >> CPU.",
                          f"one label = 3-scale SSIM + PSNR + CIEDE2000 of a {cfg.size} px image against its reference (median of repeats)."])
