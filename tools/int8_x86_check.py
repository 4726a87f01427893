"""Measure what 7-bit INT8 weights cost and fix on this CPU (docs/int8-x86.md): the shipped float ONNX
quantized with 8-bit and 7-bit weights (calibrated on the 32 shipped calib frames), each scored on the 82
labelled shipped test frames with onnxruntime's default x64 kernels and with its non-saturating ones
(``session.x64quantprecision=1``: what a VNNI CPU or the browser computes), plus 1-thread latency.

    PYTHONPATH=. python tools/int8_x86_check.py [--out /tmp/int8-x86] [--runs 60]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from scipy.stats import spearmanr

from dpiqa_edge.export.targets.onnx_int8 import quantize_onnx
from dpiqa_edge.runtime.artifact import resolve_artifact
from dpiqa_edge.runtime.preprocess import as_preprocess

D = Path(__file__).resolve().parents[1] / "dpiqa_edge" / "models" / "default"


def session(path, threads, config=None):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    for key, value in (config or {}).items():
        opts.add_session_config_entry(key, value)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def scores(sess, x):
    name = sess.get_inputs()[0].name
    return np.array([sess.run(["score"], {name: x[i:i + 1]})[0].ravel()[0] for i in range(len(x))])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="/tmp/int8-x86")
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _, meta = resolve_artifact(D / "onnx-int8")
    pre = as_preprocess(meta["preprocessing"])
    rows = list(csv.DictReader(open(D / "frames" / "manifest.csv")))
    calib = list(pre.batch([str(D / "frames" / r["path"]) for r in rows if r["split"] == "train"]))
    test = [r for r in rows if r["split"] == "test" and r["mos"]]
    x = pre.batch([str(D / "frames" / r["path"]) for r in test])
    mos = np.array([float(r["mos"]) for r in test])
    variants = {"fp32": D / "onnx-fp32" / "model.onnx", "shipped INT8 (8-bit, 3 float convs)": D / "onnx-int8" / "model.onnx"}
    for bits, rr in ((8, False), (7, True)):
        for n in (3, 6):
            path = out / f"w{bits}-f{n}.onnx"
            quantize_onnx(D / "onnx-fp32" / "model.onnx", path, calib, float_first_convs=n, reduce_range=rr, progress=False)
            variants[f"{bits}-bit, {n} float convs"] = path
    ref = scores(session(variants["fp32"], 2), x)
    base = spearmanr(ref, mos)[0]
    print(f"{len(test)} labelled test frames; fp32 SRCC vs MOS {base:.4f}")
    print("| artifact | kernels | SRCC drop | rank agreement with fp32 | max / mean abs change | default vs non-saturating max |")
    print("|---|---|---|---|---|---|")
    for name, path in list(variants.items())[1:]:
        got = {}
        for mode, cfg in (("x64 default", {}), ("non-saturating", {"session.x64quantprecision": "1"})):
            s = got[mode] = scores(session(path, 2, cfg), x)
            print(f"| {name} | {mode} | {base - spearmanr(s, mos)[0]:+.4f} | {spearmanr(s, ref)[0]:.4f} | "
                  f"{np.abs(s - ref).max():.2f} / {np.abs(s - ref).mean():.2f} | "
                  f"{np.abs(got['x64 default'] - s).max():.3f} |" if mode != "x64 default" else
                  f"| {name} | {mode} | {base - spearmanr(s, mos)[0]:+.4f} | {spearmanr(s, ref)[0]:.4f} | "
                  f"{np.abs(s - ref).max():.2f} / {np.abs(s - ref).mean():.2f} | |")
    sessions = {name: session(path, 1) for name, path in variants.items()}
    times = {name: [] for name in sessions}
    for r in range(args.runs):  # round-robin, so load changes hit every variant alike
        for name, sess in sessions.items():
            t0 = time.perf_counter()
            sess.run(["score"], {sess.get_inputs()[0].name: x[r % len(x)][None]})
            times[name].append(time.perf_counter() - t0)
    print("\n| artifact | 1-thread median ms | min ms |\n|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {1000 * np.median(t):.1f} | {1000 * np.min(t):.1f} |")


if __name__ == "__main__":
    main()
