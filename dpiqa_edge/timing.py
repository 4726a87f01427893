"""Timing and memory helpers at the bottom layer (stdlib only), so every stage can measure itself the same
way: the bench package's benchmarks, the report's latency columns and any tool.

* :func:`time_fn` — warm-up calls, then ``repeat`` timed calls -> :class:`Timing` (median, p95, mean, min).
* :func:`summarize_times` — the same statistics from durations measured elsewhere (a worker, a browser).
* :func:`peak_memory` — peak Python allocations of one call (``tracemalloc``; numpy buffers are traced) and
  the process' peak resident memory (``VmHWM`` from /proc/self/status, reset first through
  /proc/self/clear_refs where the kernel allows; ``ru_maxrss`` elsewhere, then a lifetime peak, said so).
"""

from __future__ import annotations

import gc
import resource
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError


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
