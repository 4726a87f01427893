"""Per-frame latency of the web page in a browser, beside the Python runtime on the same model
(registered in ``dpiqa_edge.bench.BENCHMARKS`` as ``web``; ``dpiqa-edge bench --only web``).

1. The shipped default model (Lite0 at 448 px), its float and its INT8 ONNX, each in the page that
   ``--target web`` writes.
2. Each page is served by ``dpiqa-edge serve``'s server (cross-origin isolated) and opened in headless
   Chromium with ``?threads=1`` and ``?threads=2`` (onnxruntime-web fixes its thread pool when it starts,
   so one page per thread count). In the page, ``dpiqa.bench`` times what one camera frame costs: the
   canvas capture of a 640x480 frame, the Pillow-exact resize to the model input, and ``session.run``.
3. The Python runtime on the same ``model.onnx``: ``QualityScorer(threads=N)`` on a 640x480 frame
   (Pillow resize + onnxruntime), the cost of one frame in ``CameraGate.check_frame`` minus the cheap checks.
4. Every configuration is timed in chunks, round-robin over several rounds, so a burst of load from other
   jobs on the machine lands on all of them alike; medians and p95 over all chunks.
5. WebGPU: rows only where Chromium finds a hardware adapter. Without a GPU its adapter is SwiftShader
   (WebGPU on the CPU), which says nothing about GPU speed; the section states the skip.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from .. import models
from ..runtime.scorer import QualityScorer
from ..timing import ratio, summarize_times
from ..web import browser
from ..web.bundle import write_bundle
from . import Section

FRAME = (480, 640)  #: the camera frame every row scores (height, width)


def _export_pages(work: Path, log) -> dict[str, Path]:
    """The shipped default model's float and INT8 ONNX, each bundled into the page (``web.bundle.write_bundle``,
    what ``export --target web`` writes around its model.onnx): the numbers are those of the model that ships."""
    import shutil

    out = {}
    for precision, src in (("fp32", models.default_float_onnx()), ("int8", models.default_artifact() / "model.onnx")):
        log(f"  the web page around the shipped {precision} model")
        folder = work / f"web-{precision}"
        folder.mkdir(parents=True)
        shutil.copyfile(src, folder / "model.onnx")
        write_bundle(folder, "model.onnx")
        out[precision] = folder
    return out


def _browser_timer(page) -> Callable[[int], list[dict[str, float]]]:
    h, w = FRAME
    return lambda n: page.evaluate("o => dpiqa.bench(o)", {"width": w, "height": h, "warmup": 0, "repeat": n})["rows"]


def _python_timer(folder: Path, threads: int) -> Callable[[int], list[dict[str, float]]]:
    import numpy as np

    scorer = QualityScorer(folder, threads=threads)
    frame = np.random.default_rng(0).integers(0, 256, (*FRAME, 3), dtype=np.uint8)

    def run(n: int) -> list[dict[str, float]]:
        rows = []
        for _ in range(n):
            t0 = time.perf_counter()
            x = scorer.prepare(frame)
            t1 = time.perf_counter()
            scorer.run_prepared(x[None])
            t2 = time.perf_counter()
            rows.append({"total_ms": (t2 - t0) * 1e3, "capture_ms": 0.0, "preprocess_ms": (t1 - t0) * 1e3, "infer_ms": (t2 - t1) * 1e3})
        return rows

    run(5)  # warm-up: lazy initialisation, caches
    return run


def bench_web(quick: bool = False, log=None, software_webgpu: bool = False) -> list | None:
    """The registered benchmark: one section (see the module doc); None where no browser can run.
    ``software_webgpu``: time WebGPU on a software adapter too (SwiftShader; a check of this code, not a figure)."""
    import statistics

    log = log or (lambda m: print(m, flush=True))
    why = browser.unavailable()
    if why is not None:
        log(f"  web: not measured ({why})")
        return None
    rounds, chunk = (2, 5) if quick else (5, 10)
    with tempfile.TemporaryDirectory(prefix="dpiqa-bench-web-") as tmp:
        pages = _export_pages(Path(tmp), log)
        adapter = _webgpu_adapter(pages["fp32"])
        gpu = adapter is not None and (not adapter["software"] or software_webgpu)
        timers: dict[tuple[str, str, int], Callable] = {}
        notes: list[str] = []
        with contextlib.ExitStack() as stack:
            b = stack.enter_context(browser.launch(webgpu=gpu))
            version = b.version
            for precision, folder in pages.items():
                url = stack.enter_context(browser.serving(folder))
                runs = [("browser WASM", threads, f"?threads={threads}") for threads in (1, 2)]
                runs += [("browser WebGPU", 1, "?ep=webgpu&threads=1")] if gpu else []
                for runtime, threads, query in runs:
                    page = b.new_context().new_page()
                    page.goto(url + query)
                    page.wait_for_function("document.documentElement.dataset.state !== 'loading'", timeout=120_000)
                    info = page.evaluate("dpiqa.info")
                    if info["threads"] != threads or info["backend"] is None:
                        raise RuntimeError(f"web bench: {url + query}: {page.inner_text('#status')} (threads {info['threads']}, "
                                           f"isolated: {info['isolated']})")
                    page.evaluate("o => dpiqa.bench(o)", {"width": FRAME[1], "height": FRAME[0], "warmup": 5, "repeat": 1})
                    timers[(runtime, precision, threads)] = _browser_timer(page)
                for threads in (1, 2):
                    timers[("Python onnxruntime", precision, threads)] = _python_timer(folder, threads)
            # 4. round-robin chunks
            samples: dict[tuple, list[dict[str, float]]] = {k: [] for k in timers}
            for r in range(rounds):
                log(f"  round {r + 1}/{rounds}")
                for key, timer in timers.items():
                    samples[key] += timer(chunk)
    if adapter is not None and gpu:
        notes.append(f"WebGPU rows: adapter {adapter['vendor']} {adapter['architecture']}"
                     + (" (software: WebGPU on the CPU, not a GPU figure)" if adapter["software"] else "") + ".")
    else:
        what = "no adapter" if adapter is None else f"only {adapter['vendor']} {adapter['architecture']} (software: WebGPU on the CPU)"
        notes.append(f"WebGPU: not measured: headless Chromium here has {what}; this machine has no GPU. On a phone "
                     "the page offers WebGPU with ?ep=webgpu (its numbers are checked on SwiftShader by tests/test_web.py).")
    rows = []
    order = sorted(samples, key=lambda k: (k[1], k[2], k[0].startswith("Python"), k[0]))  # browser rows, then Python
    for (runtime, precision, threads), s in ((k, samples[k]) for k in order):
        t = summarize_times([x["total_ms"] / 1e3 for x in s])
        py = summarize_times([x["total_ms"] / 1e3 for x in samples[("Python onnxruntime", precision, threads)]])
        rows.append([runtime, precision, threads, round(1000.0 / t.median_ms, 1), t.median_ms, t.p95_ms, statistics.median(x["capture_ms"] for x in s) if runtime.startswith("browser") else "",
                     statistics.median(x["preprocess_ms"] for x in s), statistics.median(x["infer_ms"] for x in s), ratio(t.median_ms, py.median_ms)])
    notes += [f"Headless Chromium {version} (Debian), onnxruntime-web's WASM build (SIMD + threads); the page served "
              "cross-origin isolated by `dpiqa-edge serve`'s server (the page's default there: every core up to 4, "
              "so 2 threads on this machine). Model: the shipped default (Lite0, 448 px), its float and INT8 ONNX in the page "
              "`--target web` writes; Python rows run the same model.onnx with onnxruntime.",
              f"Per frame: a {FRAME[1]}x{FRAME[0]} frame -> (browser: canvas capture +) resize to 448x448 (Pillow's bilinear; "
              "in the browser its JS re-implementation) + one inference. 'x Python' = browser p50 / Python p50, same precision and threads.",
              f"{rounds} rounds x {chunk} frames per row, round-robin, after 5 warm-up frames; other jobs share this 2-core "
              "machine, so ratios are steadier than absolute times (a quiet machine gives the final numbers)."]
    return [Section("Browser: frames per second of the web page (the shipped model, 448 px) vs the Python runtime",
                    ["runtime", "precision", "threads", "fps (p50)", "per-frame p50 ms", "p95 ms", "capture ms (p50)", "resize ms (p50)",
                     "inference ms (p50)", "x Python"], rows, notes)]


def _webgpu_adapter(folder: Path) -> dict[str, Any] | None:
    """The WebGPU adapter Chromium offers a served page (None: none at all)."""
    with browser.launch(webgpu=True) as b, browser.serving(folder) as url:
        page = b.new_page()
        page.goto(url)
        return page.evaluate(browser.ADAPTER_JS)
