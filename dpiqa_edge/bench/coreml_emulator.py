"""Benchmark of the Linux CoreML emulator (``coreml_mil``) and of CoreML weight compression.

Registered in ``dpiqa_edge.bench.BENCHMARKS`` as ``coreml_emulator``. It measures what this machine can
measure about CoreML: how long the numpy evaluation of a saved ML program takes (a parity-check cost,
NOT a device latency: Apple's runtime on a phone is far faster), how long compression takes, package
sizes, and how far each variant's emulated output is from torch. torch/coremltools are imported inside
the function, so listing the benchmark costs nothing.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ..export.base import ExportSettings
from ..export.targets.coreml import save_mlpackage
from ..export.targets.coreml_compress import compress_coreml
from ..io import dir_size
from ..runtime.backends.coreml_mil import EMULATED, MILProgram
from ..runtime.preprocess import Preprocess
from ..student import build_student
from ..student.config import StudentConfig
from ..timing import time_fn
from . import Section


def bench_coreml_emulator(quick: bool = False):
    """Lite0 student (bundled ImageNet backbone) at 224 px: fp32 / fp16 programs and compressed variants."""
    import numpy as np
    import torch
    from skimage import data as skd

    # 1. the student and its torch reference on one package photo
    size = 224
    warmup, repeat = (1, 3) if quick else (2, 10)
    torch.manual_seed(0)
    model = build_student(StudentConfig(name="lite0", input_size=size, map_size=16)).eval()
    x = Preprocess(size=(size, size))(skd.astronaut())[None]
    with torch.no_grad():
        ref_s, ref_q = (t.numpy() for t in model(torch.from_numpy(x)))
    variants = ["fp32", "fp16", "int8"] + ([] if quick else ["palettize6", "palettize4"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="dpiqa-coreml-bench-") as tmp:
        # 2. convert / compress each variant, timing the step that makes it
        for variant in variants:
            path = Path(tmp) / f"{variant}.mlpackage"
            t0 = time.perf_counter()
            if variant in ("fp32", "fp16"):  # the export's own trace + convert + save
                save_mlpackage(model, ExportSettings(target="coreml", precision=variant, input_size=size), path, {},
                               variant)
            else:
                compress_coreml(Path(tmp) / "fp32.mlpackage", path, variant)
            made_s = time.perf_counter() - t0
            # 3. parse once, then time the evaluation
            t0 = time.perf_counter()
            prog = MILProgram(path)
            load_s = time.perf_counter() - t0
            timing = time_fn(lambda p=prog: p.predict({"image": x}), warmup, repeat)
            out = prog.predict({"image": x})
            rows.append([f"lite0 {size}px {variant}", round(made_s, 1), round(load_s, 2), timing.median_ms, timing.p95_ms,
                         float(np.abs(np.asarray(out["score"], np.float64).ravel() - ref_s).max()),
                         float(np.abs(np.asarray(out["quality_map"], np.float64) - ref_q).max()),
                         round(dir_size(path) / 2**20, 2)])
    return Section(
        f"CoreML emulator ({EMULATED}): numpy evaluation of saved ML programs",
        ["model", "convert/compress s", "parse s", "predict median ms", "p95 ms", "max |score diff| vs torch (0-100)",
         "max |qmap diff| vs torch", "package MiB"],
        rows,
        ["The evaluator runs the saved .mlpackage op by op with numpy (MLModel.predict exists only on macOS): "
         "its time is the cost of a Linux parity check, not a device latency.",
         "Student: lite0 with the bundled ImageNet backbone, untrained head (score diffs are those of an untrained "
         "head; the accuracy gate on a distilled student is in the export records).",
         "fp16 programs store every tensor in float16 (arithmetic per op in float32); int8 = weight-only per-channel "
         "symmetric; palettizeN = k-means N-bit LUT; heads kept float.",
         f"{repeat} timed calls after {warmup} warm-up calls; one package photo (skimage astronaut)."],
    )

