"""A student's ONNX graph prepared for export, without torch: the input form the export asks for.

Shared by the ONNX-only import (``student.onnx_student.OnnxStudent``) and the torch-free export of a float
ONNX (``export.source.OnnxSource``): both hand their graph to the ONNX and OpenVINO targets instead of a trace.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError


def prepare_proto(path: str | os.PathLike, raw_input: bool, dynamic_batch: bool):
    """The graph in ``path`` as the export asks for it: batch 1 or symbolic, float NCHW or uint8 NHWC input."""
    import onnx
    from onnx import TensorProto, helper

    proto = onnx.load(str(Path(path)))
    graph = proto.graph
    inp = [i for i in graph.input if i.name == "image"][0]
    batch = inp.type.tensor_type.shape.dim[0]
    if dynamic_batch and batch.HasField("dim_value"):
        raise ConfigError(f"{path}: the imported graph has a fixed batch of {batch.dim_value}; "
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
