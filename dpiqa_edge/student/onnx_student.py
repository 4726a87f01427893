"""An imported ONNX graph behind the student forward contract, for ``export`` only.

When the authors' ONNX weights cannot be laid onto a torch student (``dpiqa_edge.authors.onnx_map``), the
import keeps their graph, rewired to this toolkit's interface (input ``image`` float32 N x 3 x H x W in
0..1, outputs ``score`` N on 0-100 and ``quality_map``). :class:`OnnxStudent` runs it with onnxruntime as an
``nn.Module`` so the export road (parity reference, gate threshold, INT8 gate) takes it unchanged, and
:meth:`OnnxStudent.export_proto` hands the graph itself to the ONNX and OpenVINO targets instead of a trace.
CoreML converts from torch, so it refuses this model (``export_model`` says why in one line).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .onnx_graph import prepare_proto


class OnnxStudent(nn.Module):
    """onnxruntime on ``path`` (a wrapped graph) as a student. ``reason``: why it is ONNX-only."""

    onnx_only = True

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__()
        self.path, self.reason = Path(path), reason
        self._session = None

    @property
    def session(self):
        if self._session is None:
            import onnxruntime as ort

            self._session = ort.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        return self._session

    def forward(self, x: torch.Tensor):
        x = x.detach().cpu().numpy().astype(np.float32)
        fixed = self.session.get_inputs()[0].shape[0]
        chunks = [x] if not isinstance(fixed, int) else [x[i:i + fixed] for i in range(0, len(x), fixed)]
        outs = [self.session.run(["score", "quality_map"], {"image": c}) for c in chunks]
        return (torch.from_numpy(np.concatenate([o[0].reshape(-1) for o in outs])),
                torch.from_numpy(np.concatenate([o[1] for o in outs])))

    def export_proto(self, raw_input: bool, dynamic_batch: bool):
        """The graph as the export asks for it: batch 1 or symbolic, float NCHW or uint8 NHWC input."""
        return prepare_proto(self.path, raw_input, dynamic_batch)
