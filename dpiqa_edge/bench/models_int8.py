"""INT8 against its own fp32 model, for the ``models`` benchmark (``bench.models``): the speed-up each backend
gives, timed so that load from other processes cannot fake it, and which kernels onnxruntime really runs.

* :func:`measure_pair` (a worker kind of ``bench.models``): the fp32 and the INT8 artifact of one model
  loaded in ONE process through the shared loader, timed round-robin (a few calls of each in turn, many
  rounds), so a burst of load hits both alike. The two-process rows of the main table time the same
  artifacts minutes apart; on a shared machine their ratio can swing by tens of percent.
* :func:`int8_section`: one row per model x input size x backend x thread setting, with the issue's
  targets (onnxruntime INT8 >= 1.5x its fp32, OpenVINO INT8 >= 1.3x its fp32 at the plugin's default).
* :func:`kernel_section`: per ONNX INT8 artifact, the kernels ORT's profiler saw per run (recorded by
  the export in ``export.json``), so an INT8 graph ORT runs in float kernels shows here, not in a surprise.

Speed only: the benchmark's students are untrained (latency does not depend on weights). Whether each INT8
variant keeps its float parent's ranking is the accuracy gate's job, at export and in the demo's report.
"""

from __future__ import annotations

import time
from typing import Any

from ..runtime.formats import FORMATS, benchmarked_formats
from ..export.targets.ort_kernels import kernel_summary
from ..runtime.backends import load_backend
from ..timing import summarize_times

#: minimum INT8-over-fp32 speed-up per backend (p50 at batch 1)
TARGETS = {"onnxruntime": 1.5, "openvino": 1.3}


def measure_pair(spec: dict[str, Any]) -> dict[str, Any]:
    """Inside a worker: fp32 vs int8 of one model, round-robin. ``spec``: fp32, int8 (artifact paths),
    fp32_hint / int8_hint (precision hints; None = the loader's default), threads, rounds, per_round, warmup."""
    from skimage import data as skd

    threads = spec.get("threads")
    backends = {k: load_backend(spec[k], precision_hint=spec.get(f"{k}_hint"), threads=threads) for k in ("fp32", "int8")}
    x = backends["fp32"].preprocess(skd.astronaut())[None]
    for b in backends.values():
        for _ in range(int(spec.get("warmup", 3))):
            b.run(x)
    times: dict[str, list[float]] = {k: [] for k in backends}
    for _ in range(int(spec.get("rounds", 15))):
        for k, b in backends.items():
            for _ in range(int(spec.get("per_round", 3))):
                t0 = time.perf_counter()
                b.run(x)
                times[k].append(time.perf_counter() - t0)
    out: dict[str, Any] = {"threads": threads}
    for k, b in backends.items():
        t = summarize_times(times[k])
        ran = b.precision
        if k == "int8" and ran != "int8":
            ran = f"int8 (+{ran} rest)"  # OpenVINO: quantized ops in int8, the ops left float at this precision
        out[k] = {"p50": t.median_ms, "p95": t.p95_ms, "ran": ran, "n": t.repeat}
    out["speedup"] = out["fp32"]["p50"] / out["int8"]["p50"]
    return out


def pair_plan(models: dict[str, dict[str, Any]], threads: int, phone_env: dict[str, str],
              quick: bool) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, str] | None]]:
    """(row facts, worker spec, extra env) for every INT8-vs-fp32 pair. ``models``: label -> {"size",
    "exports": {(target, precision): folder}}."""
    reps = dict(rounds=6 if quick else 15, per_round=3, warmup=2 if quick else 3)
    plan = []
    for label, m in models.items():
        ex = m["exports"]
        for target, backend in ((f, FORMATS[f].library) for f in benchmarked_formats()):
            if (target, "int8") not in ex or (target, "fp32") not in ex:
                continue
            spec = {"kind": "pair", "fp32": str(ex[(target, "fp32")]), "int8": str(ex[(target, "int8")]), **reps}
            if target == "openvino":  # both at the plugin's default: the fp32 IR as it runs unless pinned,
                spec["fp32_hint"] = "default"  # the INT8 IR as the runtime loads it (its recorded float precision)
            settings = [(threads, None, "all cores" if threads > 1 else "1 thread", {})]
            if target == "openvino":
                # under the AVX2 cap the plugin still reports bf16 as its default (read from cpuid) and
                # oneDNN crashes on it; an AVX2-only CPU's default is f32, so both run f32 there
                settings.append((1, phone_env, "phone-like: 1 thread, ONEDNN_MAX_CPU_ISA=AVX2, f32",
                                 {"fp32_hint": "f32", "int8_hint": "f32"}))
            elif threads > 1:  # ORT at 1 thread is the main setting already
                settings.append((1, None, "phone-like: 1 thread (ORT ignores oneDNN's ISA cap)", {}))
            for n, env, how, hints in settings:
                facts = {"model": label, "size": m["size"], "backend": backend, "threads": n, "how": how}
                plan.append((facts, {**spec, **hints, "threads": n}, env))
    return plan


def int8_section(results: list[tuple[dict[str, Any], dict[str, Any]]], Section) -> Any:
    """The speed-up table from :func:`pair_plan`'s facts and :func:`measure_pair`'s results."""
    rows = []
    for facts, res in results:
        target = TARGETS.get(facts["backend"], "")  # a format without a declared speed-up target: measured only
        lead = [facts["model"], f"{facts['size']}x{facts['size']}", facts["backend"], facts["how"]]
        if "error" in res:
            rows.append(lead + ["", "", "", "", target, f"FAILED: {res['error']}"])
            continue
        f, q = res["fp32"], res["int8"]
        rows.append(lead + [f"{f['p50']:.2f} ({f['ran']})", f"{q['p50']:.2f} ({q['ran']})", res["speedup"],
                            f"{f['n']}+{q['n']}", target,
                            "" if target == "" else "yes" if res["speedup"] >= target else "NO"])
    notes = [
        "fp32 and INT8 of one model in ONE process through the runtime's loader, timed round-robin (3 calls of "
        "each in turn per round), batch 1 on a package photo: load from other processes hits both alike.",
        "OpenVINO: the fp32 IR at the plugin's default precision (bf16 on AVX-512-BF16/AMX CPUs), the INT8 IR as "
        "the runtime loads it: int8 kernels, the ops NNCF left float at the precision recorded in the IR "
        "(runtime_options; the plugin's default when none). Phone-like: both f32, an AVX2-only CPU's default.",
        "onnxruntime: the session options recorded in the artifact (runtime_options); its kernels per artifact: "
        "the next table.",
        "Students untrained (latency does not depend on weights); the accuracy gate judges trained INT8 "
        "variants at export and in the demo's report.",
    ]
    return Section("INT8 vs its fp32 model, timed round-robin in one process",
                   ["model", "input", "backend", "threads", "fp32 p50 ms (ran)", "int8 p50 ms (ran)", "speed-up",
                    "calls timed", "target", "met"], rows, notes)


def kernel_section(records: dict[str, dict[str, Any]], Section) -> Any:
    """One row per ONNX INT8 export: its ``export.json`` ``conversion.ort_kernels`` (ORT's profiler)."""
    rows = []
    for label, rec in records.items():
        prof = (rec.get("conversion") or {}).get("ort_kernels")
        if not prof:
            rows.append([label, "", "", "", "", "not profiled by this export"])
            continue
        g = prof["groups"]
        rows.append([label, g["integer"]["count"], prof["float_convs"], g["convert"]["count"], g["layout"]["count"],
                     kernel_summary(prof)])
    return Section("onnxruntime kernels per INT8 artifact (ORT profiler, per run)",
                   ["artifact", "integer kernels", "float Conv kernels", "Q/DQ + Cast", "layout changes", "kernels"],
                   rows, ["Counted by the export from onnxruntime's profiler (SessionOptions.enable_profiling, "
                          "1 thread, the artifact's own session options); a float Conv on a quantized path means ORT "
                          "could not fuse that DequantizeLinear -> Conv -> QuantizeLinear unit."])
