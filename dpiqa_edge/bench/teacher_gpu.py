"""The teacher at full SD-1.5 size (random weights, ``teacher.model.build_full_teacher``) for the bench harness: forward time on the CPU
(``bench models``) and, on a CUDA GPU, forward and training-step time and memory (``bench teacher_gpu``).

The full teacher (~1.07B parameters with the VAE, ~4.3 GB fp32) is built on the meta device and then
materialised with random normal weights: initialisation cost is not what is measured, and the values
do not change the work a dense forward does (no NaN/denormals: every value is N(0, 0.02)).

``teacher_gpu`` runs each configuration in its own process (``python -m dpiqa_edge.bench.teacher_gpu SPEC``):
accelerate's state is one per process (fp16 and bf16 training cannot share one), and each process' peak
GPU memory is then that configuration's alone. On a machine without CUDA it measures nothing and the
harness keeps the section stored by the last GPU run (with the machine it ran on).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from ..teacher.loading import count_parameters, tiny_configs
from . import Section, library_versions, run_worker

SIZE = 512
BATCH = 16  # SPEC's training batch; also the scoring throughput batch below
KONIQ_TRAIN = 8058  # SPEC: KonIQ-10k's 10,073 images, 80% train
LABELS = {"forward": "forward (score)", "train": "training step"}
PRECISION_LABELS = {("forward", "fp32"): "fp32", ("forward", "bf16"): "bf16 autocast",
                    ("forward", "fp16"): "fp16 autocast", ("train", "fp32"): "fp32 (no mixed precision)",
                    ("train", "bf16"): "bf16 mixed", ("train", "fp16"): "fp16 mixed (SPEC)"}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str, warmup: int, repeat: int) -> list[float]:
    """Wall seconds of ``repeat`` calls after ``warmup`` (the device synchronised around each)."""
    times = []
    for i in range(warmup + repeat):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def measure(spec: dict[str, Any]) -> dict[str, Any]:
    """One configuration, in this process. ``spec``: mode (``forward`` | ``train``), precision (``fp32`` |
    ``bf16`` | ``fp16``: autocast for forward, accelerate's mixed precision for train), batch, size, repeat,
    warmup, device; ``tiny`` (CPU test: tiny configs, small decoder)."""
    import numpy as np
    import torch

    from ..teacher.model import build_full_teacher

    device, batch, size = spec.get("device", "cuda"), int(spec.get("batch", 1)), int(spec.get("size", SIZE))
    precision, repeat, warmup = spec.get("precision", "fp32"), int(spec.get("repeat", 5)), int(spec.get("warmup", 2))
    if spec.get("tiny"):
        model = build_full_teacher(device, tiny_configs(32), prompt_dim=32, decoder_width=16, map_size=8)
    else:
        model = build_full_teacher(device)
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    out: dict[str, Any] = {"mode": spec["mode"], "precision": precision, "batch": batch, "size": size,
                           "params_trainable": count_parameters(model)}
    if spec["mode"] == "forward":  # what `teacher score` does per batch (it runs fp32), and autocast variants
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)

        def step():
            with torch.inference_mode(), torch.autocast(device.split(":")[0], dtype=dtype, enabled=dtype is not None):
                score, fq = model(x)
            return score, fq

        score, fq = step()
        finite = bool(torch.isfinite(score).all())
        times = _timed(step, device, warmup, repeat)
    else:  # one optimisation step as the trainer takes it: accelerate, autocast, Adam, cached-latent input
        from accelerate import Accelerator

        acc = Accelerator(mixed_precision={"fp32": "no"}.get(precision, precision), cpu=device == "cpu")
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=1e-5)
        model, optimizer = acc.prepare(model, optimizer)
        with torch.no_grad():  # the trainer caches VAE moments once per image and samples latents from them
            latents = acc.unwrap_model(model).latents_from_moments(acc.unwrap_model(model).encode_moments(x), sample=True)
        target = torch.rand(batch, generator=torch.Generator().manual_seed(1)).to(acc.device)
        losses = []

        def step():
            with acc.autocast():
                score, _ = model(x, latents=latents)
                loss = torch.nn.functional.mse_loss(score.float() / 100.0, target)
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            optimizer.step()
            losses.append(float(loss.detach()))

        times = _timed(step, device, warmup, repeat)
        finite = bool(np.isfinite(losses).all())
    out.update(seconds=times, finite=finite)
    if device.startswith("cuda"):
        out["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
    return out


def gpu_facts() -> dict[str, Any]:
    """The GPU, its driver-side CUDA and the libraries that ran it (section notes of ``teacher_gpu``)."""
    import platform

    import torch

    p = torch.cuda.get_device_properties(0)
    facts = {"gpu": p.name, "gpu_memory_gib": round(p.total_memory / 2**30, 1), "sm_count": p.multi_processor_count,
             "torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
             "cpu": platform.processor() or platform.machine(), **library_versions(("diffusers", "accelerate"))}
    return facts


def _worker(spec: dict[str, Any], timeout: float = 150) -> dict[str, Any]:
    return run_worker("dpiqa_edge.bench.teacher_gpu", spec, timeout=timeout)


def bench_teacher_gpu(quick: bool = False):
    """Full-size teacher on the CUDA GPU: forward (fp32 as `teacher score` runs it; bf16/fp16 autocast) at
    batch 1 and 16, and SPEC's training step (batch 16, 512 px, Adam) in fp16 (SPEC), bf16 and fp32.
    Returns None (nothing measured; the stored GPU section stays) where there is no CUDA GPU."""
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("  teacher_gpu: no CUDA GPU on this machine; the stored section (if any) is kept")
        return None
    rep = dict(repeat=3, warmup=1) if quick else dict(repeat=10, warmup=3)
    plan = [dict(mode="forward", precision=p, batch=b, **rep) for p in ("fp32", "bf16", "fp16") for b in (1, BATCH)]
    plan += [dict(mode="train", precision=p, batch=BATCH, **rep) for p in ("fp16", "bf16", "fp32")]
    rows, notes, params = [], [], None
    for spec in plan:
        print(f"  teacher_gpu: {spec['mode']} {spec['precision']} batch {spec['batch']} ...", flush=True)
        r = _worker(spec)
        label, prec = LABELS[spec["mode"]], PRECISION_LABELS[spec["mode"], spec["precision"]]
        if "error" in r:
            rows.append([label, prec, spec["batch"], np.nan, np.nan, np.nan, np.nan, np.nan, f"FAILED: {r['error']}"])
            continue
        med = float(np.median(r["seconds"]))
        note = (f"KonIQ-10k epoch ({KONIQ_TRAIN:,} train images) ~{KONIQ_TRAIN / r['batch'] * med / 60.0:.1f} min"
                if spec["mode"] == "train" else "")
        if not r["finite"]:
            note = "; ".join(filter(None, [note, "NON-FINITE output"]))
        rows.append([label, prec, r["batch"], 1000.0 * med, 1000.0 * max(r["seconds"]), 1000.0 * med / r["batch"],
                     r["batch"] / med, r.get("peak_gpu_bytes", 0) / 2**30, note])
        params = r["params_trainable"]
    f = gpu_facts()
    notes += [f"Measured on {f['gpu']} ({f['gpu_memory_gib']} GiB, {f['sm_count']} SMs), torch {f['torch']}, CUDA "
              f"{f['cuda']}, cuDNN {f['cudnn']}, diffusers {f['diffusers']}, accelerate {f['accelerate']}; "
              f"host CPU {f['cpu']}. Not this file's CPU machine.",
              f"Full SD-1.5-size teacher, random init (no SD weights offline), {SIZE}x{SIZE} input, "
              f"{(params or 0) / 1e6:,.1f}M trainable parameters (UNet + T2I adapter + text adapter + QFD); VAE frozen.",
              "forward = VAE encode (latent mean) + UNet at t=1 with adapter residuals and 1,485 prompt tokens + QFD "
              "+ head, as `teacher score` runs it (fp32; autocast rows are what a scoring run could gain).",
              f"fp32 = PyTorch's defaults: cuDNN convolutions may use TF32 (allow_tf32 "
              f"{torch.backends.cudnn.allow_tf32}), matmuls do not (matmul precision "
              f"{torch.get_float32_matmul_precision()!r}).",
              "training step = accelerate mixed precision, Adam, latents sampled from cached VAE moments (the VAE "
              "is not in the step), as `teacher train`; the epoch column extrapolates the step time.",
              "ms = wall time per call, median and max of the repeats after warm-up, GPU synchronised; peak GiB = "
              "torch.cuda.max_memory_allocated in that configuration's own process."]
    return Section(f"Teacher on a GPU (full SD-1.5 size, {SIZE} px)",
                   ["step", "precision", "batch", "p50 ms", "max ms", "ms per image", "img/s", "peak GPU GiB", "note"],
                   rows, notes)


if __name__ == "__main__":  # the worker entry point used by _worker
    print(json.dumps(measure(json.loads(sys.argv[1]))))
