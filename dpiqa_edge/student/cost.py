"""Parameters and multiply-accumulates of a student, for BENCHMARKS.md (SPEC sizes: 512 x 512).

MACs come from ``torch.utils.flop_counter.FlopCounterMode`` (counts conv, linear, matmul, ... as FLOPs =
2 x MACs); elementwise ops (BN, activations, resize) are not counted, as is the field's convention.
"""

from __future__ import annotations

from .config import StudentConfig


def complexity(model_or_cfg, size: int = 512) -> dict:
    """``{"params": int, "params_m": float, "gmacs": float, "input_size": size}`` for one image."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from .models import build_student  # lazy: student.models imports torch at top

    if isinstance(model_or_cfg, StudentConfig):
        from dataclasses import replace

        model = build_student(replace(model_or_cfg, pretrained=False, weights=None))
    else:
        model = model_or_cfg
    model = model.eval()
    params = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(1, 3, size, size))
    return {"params": int(params), "params_m": params / 1e6, "gmacs": counter.get_total_flops() / 2e9,
            "input_size": size}
