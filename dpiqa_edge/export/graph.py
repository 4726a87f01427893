"""The torch module every target converts: the student plus what the artifact's input form needs.

The student normalises its own input inside ``forward`` (ARCHITECTURE.md), so the exported graph takes
the shared preprocessing's output (float32 NCHW in 0..1). With ``raw_input`` the ``/255`` and the
NHWC->NCHW transpose are baked in as well, so a camera frame (uint8 RGB, H x W x 3) goes straight in.
Outputs are always named ``score`` (N,) and ``quality_map`` (N, 8, m, m), float32.
"""

from __future__ import annotations

import torch
from torch import nn


class ExportWrapper(nn.Module):
    """Wraps a student for export.

    Args:
        model: a student in eval mode: ``forward(x float N x 3 x H x W in 0..1) -> (score N, map N x 8 x m x m)``.
        raw_input: take uint8 ``N x H x W x 3`` RGB instead, converting in-graph.
    """

    def __init__(self, model: nn.Module, raw_input: bool = False):
        super().__init__()
        self.model = model
        self.raw_input = raw_input

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.raw_input:
            # Same arithmetic as Preprocess: value * (1/255) in float32.
            x = x.permute(0, 3, 1, 2).to(torch.float32) * (1.0 / 255.0)
        score, qmap = self.model(x)
        return score.reshape(-1).to(torch.float32), qmap.to(torch.float32)


def example_input(size: int, raw_input: bool, batch: int = 1) -> torch.Tensor:
    """A deterministic example input for tracing (values do not matter, shapes and dtypes do)."""
    g = torch.Generator().manual_seed(0)
    if raw_input:
        return torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, generator=g)
    return torch.rand(batch, 3, size, size, generator=g)


@torch.no_grad()
def torch_outputs(model: nn.Module, x, batch: int = 8) -> tuple:
    """The source model's (score, quality_map) for a float NCHW numpy batch, as float32 numpy."""
    import numpy as np

    scores, maps = [], []
    for i in range(0, len(x), batch):
        s, q = model(torch.from_numpy(np.ascontiguousarray(x[i:i + batch])))
        scores.append(s.reshape(-1).float().numpy())
        maps.append(q.float().numpy())
    return np.concatenate(scores), np.concatenate(maps)
