"""Every benchmark of the project, and the harness behind ``make bench`` / ``dpiqa-edge bench``: it runs
them, records the machine, and writes BENCHMARKS.md itself (never edit that file by hand).

* ``BENCHMARKS`` — the explicit registry: name -> ``"module:function"``. Each function takes ``quick: bool``
  and returns a :class:`Section` (or a list), or None where it cannot measure on this machine (the GPU
  teacher without a GPU): the stored section is then kept. Each benchmark is a module of this package;
  imports happen only when a benchmark runs, so listing them costs nothing and pulls in no backend.
* :func:`run_benchmarks` — runs the selected entries, merges them into ``BENCHMARKS.json`` beside the
  output (so ``--only NAME`` refreshes one section and keeps the others) and renders BENCHMARKS.md. Each
  stored entry keeps the machine it ran on; :func:`merge_benchmarks` adds entries measured elsewhere
  (a lent GPU box) and the page names that machine under each such section.
* :func:`machine_facts` — CPU model, cores, ISA flags (avx2, avx512f, amx...), library versions.
* Timing and memory (``time_fn``, ``summarize_times``, ``peak_memory``, ``ratio``) live one layer down in
  :mod:`dpiqa_edge.timing`, where the report can use them too.
"""
from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError
from ..io import write_json, write_text

#: name -> "module:function(quick) -> Section | list[Section]". Add one line per measurement.
BENCHMARKS: dict[str, str] = {
    "decode": "dpiqa_edge.bench.plumbing:bench_decode",
    "synth": "dpiqa_edge.bench.plumbing:bench_synth",
    "models": "dpiqa_edge.bench.models:bench_models",
    "coreml_emulator": "dpiqa_edge.bench.coreml_emulator:bench_coreml_emulator",
    "runtime": "dpiqa_edge.bench.runtime:bench_runtime",
    "openvino_int8": "dpiqa_edge.bench.int8:bench_openvino_int8",
    "prune_int8": "dpiqa_edge.bench.int8:bench_prune_int8",
    "teacher_gpu": "dpiqa_edge.bench.teacher_gpu:bench_teacher_gpu",
    "camera": "dpiqa_edge.bench.camera:bench_camera",
    "web": "dpiqa_edge.bench.web:bench_web",
}

LIBRARIES = ("numpy", "pillow", "scipy", "torch", "onnxruntime", "openvino", "coremltools", "timm", "diffusers")


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
             "Written by the harness (`dpiqa_edge/bench/`); do not edit by hand. Re-run with `make bench`.", "",
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
