"""Benchmarks of the shared plumbing: the one image decoder + preprocessing, and building the synthetic set."""

from __future__ import annotations

import time
from pathlib import Path

from ..data.synth import SYNTH_DISTORTIONS, SynthConfig, measure, synthesize
from ..runtime.image import decode_image
from ..runtime.preprocess import Preprocess
from ..timing import peak_memory, ratio, time_fn
from . import Section


def bench_decode(quick: bool = False) -> Section:
    """The ONE decoder and ONE preprocessing on package photos encoded as JPEG (quality 90) in memory."""
    import io

    import numpy as np
    from PIL import Image
    from skimage import data as skd

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
    jpeg = SYNTH_DISTORTIONS["jpeg"]
    dist = jpeg.fn(ref, jpeg.params[2], np.random.default_rng(0))
    t = time_fn(lambda: measure(ref, dist), 1, 3 if quick else 10)
    rows.append(["one label", f"measure() at {cfg.size} px", t.median_ms, t.cpu_median_ms, 1e3 / t.median_ms, ""])
    return Section("Synthetic set (synthetic pseudo-MOS labels)", ["build", "what", "wall ms", "CPU ms", "images/s", "peak RSS MiB"],
                   rows, ["One build, single process; wall time includes PNG writes (atomic, fsynced). "
                          "CPU ms is this process' CPU time: on a loaded machine wall >> CPU.",
                          f"one label = 3-scale SSIM + PSNR + CIEDE2000 of a {cfg.size} px image against its reference (median of repeats)."])
