"""Runtime measurements for ``make bench`` (registered by the bench harness as ``runtime``):

1. folder scoring throughput (images/s) per backend, through the same path ``dpiqa-edge check`` takes
   (decode in a thread pool overlapped with batched inference), at batch 1 and the best of a few batch
   sizes, plus a phone-like row: 1 thread and, for OpenVINO, ``ONEDNN_MAX_CPU_ISA=AVX2`` (no AVX-512 /
   AMX; onnxruntime's own kernels ignore that variable, so its phone-like row is 1 thread only). Each
   row runs in its own subprocess (``python -m dpiqa_edge.bench.runtime throughput ...``) so the ISA
   cap takes effect before the backend library loads;
2. the camera gate's memory over a long stream: 10,000 camera-sized frames through
   ``CameraGate.check_frame`` in one process, resident memory after warm-up vs at the end (growth
   must stay under 50 MB).

Numbers come from the artifacts built here (a Lite0 student at the demo's 224 px with its bundled
ImageNet weights, exported with dynamic batch); the weights' values do not change speed or memory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from ..errors import InputError
from ..export import export_model
from ..io import atomic_path
from ..runtime.checker import check_sources
from ..runtime.formats import benchmarked_formats
from ..runtime.gate import CameraGate
from ..runtime.scorer import QualityScorer
from ..runtime.sources import expand_inputs
from ..student import build_student, save_student
from ..student.config import StudentConfig
from . import Section

PHONE_ENV = {"ONEDNN_MAX_CPU_ISA": "AVX2"}
GROWTH_LIMIT_MB = 50.0


def rss_bytes() -> int:
    """Current resident set size of this process (Linux /proc; ru_maxrss peak elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def folder_throughput(artifact: str | os.PathLike, folder: str | os.PathLike, batch_sizes: Sequence[int] = (1, 4, 8, 16),
                      threads: int | None = None, precision_hint: str | None = None, workers: int | None = None,
                      repeat: int = 2) -> list[dict[str, Any]]:
    """Images/s of scoring every image in ``folder`` as ``check`` does, per batch size (best of ``repeat``
    passes after one warm-up pass)."""
    sources = expand_inputs([str(folder)])
    rows = []
    for bs in batch_sizes:
        scorer = QualityScorer(artifact, threads=threads, precision_hint=precision_hint, batch_size=bs)
        best = float("inf")
        for i in range(repeat + 1):
            t0 = time.perf_counter()
            recs = list(check_sources(scorer, sources, threshold=0.0, batch_size=bs, workers=workers))
            dt = time.perf_counter() - t0
            if i:  # pass 0 warms caches and lazy initialisation
                best = min(best, dt)
        errors = sum(r["verdict"] == "error" for r in recs)
        rows.append({"backend": scorer.name, "precision": scorer.precision, "batch_size": scorer.batch_size, "threads": threads,
                     "images": len(recs), "errors": errors, "seconds": best, "images_per_s": len(recs) / best})
        del scorer
    return rows


def gate_memory(artifact: str | os.PathLike, frames: int = 10_000, warmup: int = 500, frame_shape=(480, 640),
                threads: int | None = 1, sample_every: int = 500) -> dict[str, Any]:
    """Run ``frames`` camera-sized frames through one CameraGate; RSS after warm-up, at the end, and the
    largest seen. Every frame is a fresh array (as a camera hands them), cycling the scene so the gate
    sees keeps, retakes and cheap-check failures."""
    import numpy as np
    from PIL import Image
    from skimage import data

    h, w = frame_shape
    base = np.asarray(Image.fromarray(data.astronaut()).resize((w, h), Image.BILINEAR))
    scenes = [base, np.asarray(Image.fromarray(base).resize((w // 8, h // 8)).resize((w, h), Image.BILINEAR)), np.zeros_like(base)]
    scorer = QualityScorer(artifact, threads=threads)
    gate = CameraGate(scorer.gate_threshold if scorer.gate_threshold is not None else 50.0, scorer)
    verdicts: dict[str, int] = {}
    after_warmup = peak = None
    t0 = time.perf_counter()
    for i in range(frames):
        frame = np.roll(scenes[(i // 200) % len(scenes)], i % 17, axis=1)  # a new buffer every frame
        d = gate.check_frame(frame)
        verdicts[d.verdict] = verdicts.get(d.verdict, 0) + 1
        if i + 1 == warmup:
            after_warmup = peak = rss_bytes()
            t0 = time.perf_counter()
        elif after_warmup is not None and (i + 1) % sample_every == 0:
            peak = max(peak, rss_bytes())
    seconds = time.perf_counter() - t0
    end = rss_bytes()
    growth = (max(end, peak) - after_warmup) / 2**20
    return {"backend": scorer.name, "precision": scorer.precision, "frames": frames, "warmup": warmup, "frame_shape": list(frame_shape),
            "rss_after_warmup_mb": after_warmup / 2**20, "rss_end_mb": end / 2**20, "rss_peak_mb": peak / 2**20,
            "growth_mb": growth, "limit_mb": GROWTH_LIMIT_MB, "passed": growth < GROWTH_LIMIT_MB,
            "frames_per_s": (frames - warmup) / seconds, "verdicts": verdicts}


# -- the bench harness entry ------------------------------------------------------------------------
def make_artifacts(work: Path, size: int = 224, targets: Sequence[str] | None = None) -> dict[str, Path]:
    """A Lite0 student (bundled ImageNet weights) at ``size`` px, exported fp32 with dynamic batch to each
    of ``targets`` (default: the format table's benchmarked formats)."""
    cfg = StudentConfig(name="lite0", input_size=size, map_size=max(1, size // 32))
    student = save_student(build_student(cfg).eval(), cfg, work / "student")
    targets = benchmarked_formats() if targets is None else targets
    return {t: export_model(student, t, out_dir=work / f"export-{t}", dynamic_batch=True, parity_images=2, log=None) for t in targets}


def make_folder(folder: Path, n: int, shape=(480, 640)) -> Path:
    """``n`` camera-sized JPEGs cut from the package photos (varied crops, so no two decode alike)."""
    import numpy as np
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    photos = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    rng = np.random.default_rng(0)
    for i in range(n):
        p = photos[i % len(photos)]
        y, x = rng.integers(0, p.shape[0] // 4), rng.integers(0, p.shape[1] // 4)
        Image.fromarray(p[y:, x:]).resize((shape[1], shape[0]), Image.BICUBIC).save(folder / f"{i:04d}.jpg", quality=90)
    return folder


def make_video(path: str | os.PathLike, segments: Sequence[tuple[int, float]] = ((15, 0), (15, 3), (15, 0)), size: int = 96,
               fps: int = 10) -> Path:
    """A clip of a real photo (skimage's astronaut): ``(frames, Gaussian blur sigma)`` per segment,
    written with OpenCV's MJPG writer. Sharp -> blurred -> sharp shows the camera gate flipping."""
    import cv2
    import numpy as np
    from skimage import data

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = cv2.resize(data.astronaut(), (size, size), interpolation=cv2.INTER_AREA)
    # Written under a temporary name (cv2 needs a real file name with the right extension) and renamed.
    with atomic_path(path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), fps, (size, size))
        if not writer.isOpened():
            raise InputError(f"{path}: OpenCV cannot write an MJPG video here")
        for n, sigma in segments:
            frame = base if sigma == 0 else cv2.GaussianBlur(base, (0, 0), sigma)
            for _ in range(n):
                writer.write(np.ascontiguousarray(frame[:, :, ::-1]))  # OpenCV writes BGR
        writer.release()
    return path


def _subprocess(args: list[str], env_extra: dict[str, str] | None = None) -> Any:
    env = {**os.environ, **(env_extra or {})}
    out = subprocess.run([sys.executable, "-m", "dpiqa_edge.bench.runtime", *args], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_runtime(quick: bool = False):
    """Sections for BENCHMARKS.md: folder throughput per backend and the gate's memory over a long stream."""
    import tempfile

    n_images, frames, batches = (32, 2_000, (1, 8)) if quick else (96, 10_000, (1, 4, 8, 16))
    with tempfile.TemporaryDirectory(prefix="dpiqa-bench-runtime-") as tmp:
        work = Path(tmp)
        arts = make_artifacts(work)
        folder = make_folder(work / "images", n_images)
        rows = []
        for target, art in arts.items():
            for label, threads, env in (("default threads", None, None), ("phone-like", 1, PHONE_ENV if target == "openvino" else None)):
                res = _subprocess(["throughput", "--model", str(art), "--folder", str(folder), "--batch-sizes",
                                   ",".join(map(str, batches)), *(["--threads", str(threads)] if threads else [])], env)
                one = next(r for r in res if r["batch_size"] == 1)
                best = max(res, key=lambda r: r["images_per_s"])
                cap = "1 thread, ONEDNN_MAX_CPU_ISA=AVX2" if env else ("1 thread (ISA not capped: ORT ignores oneDNN's cap)" if threads else "backend default")
                rows.append([target, label, best["precision"], cap, one["images_per_s"], best["images_per_s"], best["batch_size"], best["errors"]])
        mem = _subprocess(["gate-memory", "--model", str(arts["onnx"]), "--frames", str(frames)])
    throughput = Section(
        "On-device runtime: folder scoring throughput (Lite0 student, 224 px, fp32)",
        ["backend", "row", "ran", "threads / ISA", "images/s batch 1", "images/s best batch", "best batch", "errors"], rows,
        [f"{n_images} JPEGs 640x480 scored as `dpiqa-edge check DIR` does: decode in a thread pool overlapped with "
         "batched inference; best of 2 passes after 1 warm-up; each row in its own process.",
         "phone-like: 1 inference thread; OpenVINO also capped to AVX2 (no AVX-512/AMX) with ONEDNN_MAX_CPU_ISA. "
         "Still a desktop core: a proxy, not a phone measurement."])
    memory = Section(
        "Camera gate: resident memory over a long stream (onnx fp32)",
        ["frames", "frame", "RSS after warm-up MB", "RSS end MB", "RSS peak MB", "growth MB", "limit MB", "passed", "frames/s"],
        [[mem["frames"], "x".join(map(str, mem["frame_shape"])), mem["rss_after_warmup_mb"], mem["rss_end_mb"], mem["rss_peak_mb"],
          mem["growth_mb"], mem["limit_mb"], mem["passed"], mem["frames_per_s"]]],
        [f"CameraGate.check_frame on fresh camera-sized arrays (decode, cheap checks, model) in one process, warm-up "
         f"{mem['warmup']} frames; verdicts seen: {mem['verdicts']}."])
    return [throughput, memory]


def main(argv: list[str] | None = None) -> None:
    """``python -m dpiqa_edge.bench.runtime throughput|gate-memory ...``: one measurement, JSON on stdout."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m dpiqa_edge.bench.runtime")
    sub = ap.add_subparsers(dest="what", required=True)
    t = sub.add_parser("throughput")
    t.add_argument("--model", required=True)
    t.add_argument("--folder", required=True)
    t.add_argument("--batch-sizes", default="1,4,8,16")
    t.add_argument("--threads", type=int)
    t.add_argument("--precision-hint")
    g = sub.add_parser("gate-memory")
    g.add_argument("--model", required=True)
    g.add_argument("--frames", type=int, default=10_000)
    g.add_argument("--warmup", type=int, default=500)
    g.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    if a.what == "throughput":
        out = folder_throughput(a.model, a.folder, [int(b) for b in a.batch_sizes.split(",")], threads=a.threads, precision_hint=a.precision_hint)
    else:
        out = gate_memory(a.model, frames=a.frames, warmup=min(a.warmup, a.frames // 2), threads=a.threads)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
