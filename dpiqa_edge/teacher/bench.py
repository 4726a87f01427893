"""Teacher forward time at full SD-1.5 size (random weights), for the bench harness (BENCHMARKS.md).

The full teacher (~1.07B parameters with the VAE, ~4.3 GB fp32) is built on the meta device and then
materialised with random normal weights: initialisation cost is not what is measured, and the values
do not change the work a dense forward does (no NaN/denormals: every value is N(0, 0.02)).
"""

from __future__ import annotations

import time


def build_full_teacher(device: str = "cpu"):
    """SD-1.5-sized teacher (UNet, VAE, T2I full adapter, 1485x768 prompts, QFD 512, map 64), random weights."""
    import torch

    from .loading import sd15_configs
    from .model import TeacherConfig, build_teacher

    with torch.device("meta"):
        model = build_teacher(TeacherConfig(**sd15_configs()), torch.zeros(1485, 768))
    model = model.to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            t.normal_(0.0, 0.02, generator=g)
    return model.eval()


def time_teacher_forward(size: int = 512, batch: int = 1, repeats: int = 1, warmup: int = 1,
                         device: str | None = None, threads: int | None = None) -> dict:
    """Seconds per image of one teacher forward (VAE encode + UNet + QFD + head) at ``size`` x ``size``.

    Returns {"seconds_per_image", "times" (per repeat, whole batch), "cpu_seconds_per_image", "size", "batch",
    "device", "threads", "params_trainable"}. ``device`` defaults to CUDA when present, else CPU.
    """
    import torch

    from .loading import count_parameters

    if threads:
        torch.set_num_threads(threads)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = build_full_teacher(device)
    x = torch.rand(batch, 3, size, size, device=device, generator=torch.Generator(device=device).manual_seed(0))
    times, cpu_times = [], []
    with torch.inference_mode():
        for i in range(warmup + repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            score, fq = model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i >= warmup:
                times.append(time.perf_counter() - t0)
                cpu_times.append(time.process_time() - c0)
    assert fq.shape == (batch, 8, 64, 64) and torch.isfinite(score).all()
    # cpu_seconds: this process's CPU time (all its threads), a steadier figure than wall time on a shared host.
    return {"seconds_per_image": min(times) / batch, "times": times, "cpu_seconds_per_image": min(cpu_times) / batch,
            "size": size, "batch": batch, "device": device, "threads": torch.get_num_threads(),
            "params_trainable": count_parameters(model)}
