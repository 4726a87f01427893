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

from ..errors import ConfigError


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
        import onnx
        from onnx import TensorProto, helper

        proto = onnx.load(str(self.path))
        graph = proto.graph
        inp = [i for i in graph.input if i.name == "image"][0]
        batch = inp.type.tensor_type.shape.dim[0]
        if dynamic_batch and batch.HasField("dim_value"):
            raise ConfigError(f"{self.path}: the imported graph has a fixed batch of {batch.dim_value}; "
                              "export it without --dynamic-batch")
        for value in list(graph.input) + list(graph.output):
            if value.name in ("image", "score", "quality_map"):
                dim = value.type.tensor_type.shape.dim[0]
                if dynamic_batch:
                    dim.dim_param = "batch"
                else:
                    dim.dim_value = 1
        del graph.value_info[:]  # shapes inside follow from the new input; stale ones would contradict it
        if raw_input:  # uint8 N x H x W x 3 -> float N x 3 x H x W in 0..1, the arithmetic of ExportWrapper
            _, _, h, w = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in inp.type.tensor_type.shape.dim]
            for node in graph.node:
                node.input[:] = ["dpiqa_image_f" if i == "image" else i for i in node.input]
            graph.initializer.append(helper.make_tensor("dpiqa_inv255", TensorProto.FLOAT, [], [1.0 / 255.0]))
            graph.node.insert(0, helper.make_node("Mul", ["dpiqa_image_c", "dpiqa_inv255"], ["dpiqa_image_f"]))
            graph.node.insert(0, helper.make_node("Cast", ["dpiqa_image_t"], ["dpiqa_image_c"], to=TensorProto.FLOAT))
            graph.node.insert(0, helper.make_node("Transpose", ["image"], ["dpiqa_image_t"], perm=[0, 3, 1, 2]))
            n = "batch" if dynamic_batch else 1
            graph.input.remove(inp)
            graph.input.insert(0, helper.make_tensor_value_info("image", TensorProto.UINT8, [n, h, w, 3]))
        return proto
