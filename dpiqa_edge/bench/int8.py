"""Speed and size of the compressed variants: the ``openvino_int8`` and ``prune_int8`` benchmarks.

Both build what they time from scratch - an EfficientNet-Lite0 student (bundled ImageNet backbone,
the real recipe's 512 px input and 64x64 map), exported by ``export.export_model`` exactly as users get
it (fp32, then INT8 calibrated on package photos) - and time it through ``runtime.backends.load_backend``,
the one path from artifact to score, at 512x512, batch 1, 1 and 2 threads.

Latency does not depend on training: the students here are not trained and pruned students are not
fine-tuned; accuracy of the same variants comes from the demo (``prune.json``, each export's accuracy
gate), on the synthetic set (synthetic pseudo-MOS). Variants are timed round-robin (a few calls of
each in turn, many rounds) so a burst of load from other processes hits all of them alike.
"""

from __future__ import annotations

import functools
import tempfile
import time
from pathlib import Path

import numpy as np

from ..export import export_model
from ..export.parity import package_photos
from ..io import read_json
from ..quantize.prune import model_cost, prune_model
from ..runtime.backends import load_backend
from ..student import StudentConfig, build_student, save_student
from ..student.widths import record_widths
from ..timing import ratio, summarize_times
from . import Section

SIZE = 512  #: the issue's latency size (512x512, batch 1)
TARGETS = {"int8_vs_default": 1.3, "int8_vs_f32": 2.0, "pruned_int8_vs_int8": 1.3}


def default_openvino_precision() -> str:
    """What OpenVINO's CPU plugin runs fp32 models at when not told (bf16 on AVX-512-BF16/AMX CPUs)."""
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()


def write_calibration_folder(folder: Path, size: int = SIZE, n: int = 16) -> Path:
    """Crops of the package photos as PNGs: an unlabelled calibration folder (no dataset needed)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    photos = [img for _, img in package_photos()]
    for i in range(n):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        side = min(h, w) * (1.0 if i < len(photos) else 0.7)
        k = i // len(photos)
        y0, x0 = int((h - side) * ((k * 0.37) % 1)), int((w - side) * ((k * 0.61) % 1))
        crop = img[y0:y0 + int(side), x0:x0 + int(side)]
        Image.fromarray(crop).resize((size, size), Image.BILINEAR).save(folder / f"calib-{i:03d}.png")
    return folder


@functools.lru_cache(maxsize=4)
def build_variants(ratios: tuple[float, ...] = (0.3,), calib_n: int = 16, work: str | None = None) -> dict:
    """Students and their OpenVINO fp32/int8 (+ ONNX for sizes) exports; cached per process.

    Returns ``{"work": dir, "students": {name: dir}, "exports": {(name, target, precision): dir},
    "cost": {name: params/GMACs}}`` with names ``lite0`` and ``lite0-p30`` (ratio 0.3) etc.
    """
    # 1. Students: Lite0 (real recipe: 512 px, 64x64 map) and magnitude-pruned copies (not fine-tuned).
    root = Path(work or tempfile.mkdtemp(prefix="dpiqa-bench-quant-"))
    calib = write_calibration_folder(root / "calib", SIZE, calib_n)
    cfg = StudentConfig(name="lite0", input_size=SIZE)
    students, cost = {}, {}
    import torch

    torch.manual_seed(0)
    base = build_student(cfg).eval()
    students["lite0"] = save_student(base, cfg, root / "lite0")
    cost["lite0"] = model_cost(base, SIZE)
    for r in ratios:
        name = f"lite0-p{round(r * 100)}"
        model = build_student(cfg).eval()
        model.load_state_dict(base.state_dict())
        prune_model(model, r, 224)  # tracing size only; widths do not depend on it
        from dataclasses import replace

        students[name] = save_student(model, replace(cfg, widths=record_widths(model)), root / name)
        cost[name] = model_cost(model, SIZE)

    # 2. Exports, exactly as `dpiqa-edge export` makes them (parity checked; int8 calibrated on photos).
    exports = {}
    for name, sdir in students.items():
        combos = [("openvino", "fp32"), ("openvino", "int8")] + ([("onnx", "fp32"), ("onnx", "int8")] if name == "lite0" else [])
        for target, precision in combos:
            exports[(name, target, precision)] = export_model(
                sdir, target, precision, root / "exports" / f"{name}-{target}-{precision}",
                calib=str(calib) if precision == "int8" else None, calib_images=calib_n, parity_images=2, log=None)
    return {"work": root, "students": students, "exports": exports, "cost": cost}


def interleaved_latency(artifacts: dict[str, tuple[Path, str | None]], threads: int, rounds: int = 10,
                        per_round: int = 3, warmup: int = 3) -> dict:
    """Median/p95/min ms per variant, timed round-robin. ``artifacts``: name -> (export dir, precision hint)."""
    x = np.random.default_rng(0).random((1, 3, SIZE, SIZE), dtype=np.float32)
    backends = {n: load_backend(a, precision_hint=h, threads=threads) for n, (a, h) in artifacts.items()}
    for b in backends.values():
        for _ in range(warmup):
            b.run(x)
    times: dict[str, list[float]] = {n: [] for n in backends}
    for _ in range(rounds):
        for n, b in backends.items():
            for _ in range(per_round):
                t0 = time.perf_counter()
                b.run(x)
                times[n].append(time.perf_counter() - t0)
    return {n: {"timing": summarize_times(t), "ran": backends[n].precision, "label": backends[n].label}
            for n, t in times.items()}


def bench_openvino_int8(quick: bool = False):
    """OpenVINO INT8 vs the default precision (bf16 here) vs the f32 hint; INT8 artifact sizes."""
    v = build_variants()
    default = default_openvino_precision()
    ex = v["exports"]
    fp32, int8 = ex[("lite0", "openvino", "fp32")], ex[("lite0", "openvino", "int8")]
    rows = []
    for threads in (1, 2):
        # both at the plugin's own default (`default` names what it is here); the loader runs int8 IRs so anyway
        res = interleaved_latency({"fp32 @ f32 hint": (fp32, "f32"), f"fp32 @ default ({default})": (fp32, "default"),
                                   f"int8 @ default ({default})": (int8, "default")}, threads,
                                  rounds=4 if quick else 12)
        names = list(res)
        t_f32, t_def, t_int8 = (res[n]["timing"].median_ms for n in names)
        for n in names:
            t = res[n]["timing"]
            rows.append([threads, n, res[n]["label"], t.median_ms, t.p95_ms, t.min_ms,
                         ratio(t.median_ms, t_int8) if n != names[2] else 1.0])
        rows.append([threads, "speed-up of int8 (median)", "", "", "", "",
                     f"{ratio(t_def, t_int8):.2f}x vs default (target >= {TARGETS['int8_vs_default']}x), "
                     f"{ratio(t_f32, t_int8):.2f}x vs f32 (target >= {TARGETS['int8_vs_f32']}x)"])
    speed = Section("OpenVINO INT8 vs default precision vs f32 hint (Lite0 student, 512x512, batch 1)",
                    ["threads", "variant", "ran as", "median ms", "p95 ms", "min ms", "int8 speed-up"], rows,
                    [f"OpenVINO's CPU default for fp32 models here is {default}; the f32 hint is what parity checks pin.",
                     "INT8 = NNCF PTQ (performance preset, fast bias correction) calibrated on package photos; "
                     "the score head's last linear stays float.",
                     "Timed round-robin on a shared 2-core machine: compare rows of one thread count only."])
    size_rows = []
    for (name, target, precision), folder in ex.items():
        if precision != "int8":
            continue
        f = read_json(ex[(name, target, "fp32")] / "export.json")["size_bytes"]
        q = read_json(folder / "export.json")["size_bytes"]
        size_rows.append([name, target, f / 1e6, q / 1e6, q / f, "yes" if q / f <= 0.30 else "NO"])
    sizes = Section("INT8 artifact size vs fp32 (Lite0 students, 512 px recipe)",
                    ["student", "target", "fp32 MB", "int8 MB", "ratio", "<= 30%"], size_rows,
                    ["Sizes are the artifact files only (export.json and the model card excluded).",
                     "OpenVINO: the .xml graph (~0.4 MB, about the same at fp32 and int8) is a larger share of a "
                     "pruned model's artifact, and NNCF keeps per-channel activation ranges, weight scales and "
                     "biases in f32 (OpenVINO does not fp16-compress quantized IRs)."])
    return [speed, sizes]


def bench_prune_int8(quick: bool = False):
    """Pruned + INT8 Lite0 vs unpruned INT8 Lite0 (OpenVINO, default precision for float parts)."""
    ratios = (0.3,) if quick else (0.3, 0.4, 0.5)
    v = build_variants(ratios) if not quick else build_variants()
    rows = []
    for threads in (1, 2):
        arts = {n: (v["exports"][(n, "openvino", "int8")], None) for n in v["students"]}  # as the runtime loads them
        res = interleaved_latency(arts, threads, rounds=4 if quick else 12)
        base = res["lite0"]["timing"].median_ms
        for n, r in res.items():
            c = v["cost"][n]
            rows.append([threads, n, c["params"] / 1e6, c["gmacs"], r["timing"].median_ms, r["timing"].min_ms,
                         ratio(base, r["timing"].median_ms)])
    return Section("Pruned + INT8 vs unpruned INT8 (OpenVINO, Lite0 student, 512x512, batch 1)",
                   ["threads", "variant", "params M", "GMACs", "median ms", "min ms", "speed-up vs lite0 int8"], rows,
                   [f"Target: pruned(30%)+INT8 >= {TARGETS['pruned_int8_vs_int8']}x faster than unpruned INT8.",
                    "Pruned = torch-pruning magnitude importance, channels rounded to multiples of 8, not fine-tuned "
                    "(latency does not depend on the weights). Accuracy cost per ratio: the demo's prune.json "
                    "(synthetic pseudo-MOS).", "Timed round-robin on a shared 2-core machine."])
