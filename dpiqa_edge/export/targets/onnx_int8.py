"""INT8 (W8A8) for ONNX: onnxruntime static quantization in QDQ format, shaped so ORT runs it in
integer kernels end to end.

The straight line ORT documents: ``quant_pre_process`` (shape inference + graph optimisation, so
fused Conv+BN and known shapes quantize well) -> ``quantize_static`` with ``QuantFormat.QDQ``, int8
per-channel weights and 8-bit activations calibrated on representative images -> the artifact carries
QuantizeLinear/DequantizeLinear pairs around int8 initializers, which ORT's graph optimiser fuses into
integer kernels (QLinearConv, QLinearAdd, QGemm) - but only where each unit matches its rules. Measured
with ORT's profiler on Lite0 students (``ort_kernels``; onnxruntime 1.32, x86 with VNNI):

* **uint8 activations (U8S8), not int8 (S8S8).** ORT's x86 build runs QDQ units with uint8 activations in
  its integer kernels; int8-activation units it fuses only on ARM builds (``session.qdqisint8allowed``,
  off on x86). On x86 it moved part of an int8 graph to uint8 kernels itself and left the rest - 15 of
  the 44 convolutions Lite0's export quantized and its 9 residual Adds - as float kernels between a
  dequantize and a quantize, 78 DequantizeLinear nodes re-dequantizing on every call: INT8 ran no faster than
  fp32 (1.0x at 512 px, 0.7x for a 50%-pruned Lite0). Forcing int8 allowed on x86 was 4x slower still.
  uint8 asymmetric activations are the same 256-level grid as int8 asymmetric ones (only the zero point
  moves), so the choice costs no accuracy, and ORT's ARM kernels take U8S8 as well.
  ``activations="int8"`` keeps the old form.

With uint8 activations every convolution is a QLinearConv and every residual Add a QLinearAdd (ORT gives
each consumer its own DequantizeLinear itself), with a handful of Quantize/Dequantize nodes at the graph's
float edges (input normalisation, the quality-map Resize, the score head); :mod:`.ort_kernels` counts
them from ORT's profiler and the export records the count.

**7-bit weights (``reduce_range``), on every machine.** On x86 CPUs without VNNI (AVX2; AVX-512 without
VNNI) ORT's U8S8 kernels multiply uint8 activations by int8 weights with ``vpmaddubsw``, which adds each
pair of products into a *saturating* int16: 255 x 127 x 2 = 64770 does not fit, 255 x 64 x 2 = 32640 does.
VNNI (``vpdpbusd``, int32) and the browser's WASM kernels do not saturate, so an 8-bit artifact scores
differently by machine. Measured on an AVX2-only CPU with the shipped 8-bit INT8 (made on a VNNI host):
96 shipped test frames moved by up to 8.0 points between ORT's default kernels and its non-saturating ones
(``session.x64quantprecision=1``), and the web page's INT8 scores were 19 points from Python's. An
artifact is made once and runs on users' laptops of both kinds, so every export uses 7-bit weights
(ORT's documented setting for non-VNNI CPUs) and records it (``weight_range``; metadata ``int8_weights``);
the two kernel paths then agree exactly. Its cost is accuracy, judged by the export's gate like any INT8
setting (docs/int8-x86.md has the measurements).

Calibration methods: ``minmax`` (default; streams, so any number of images), ``entropy`` and
``percentile`` (histograms). ORT's histogram calibrators keep every intermediate output of every image
in memory until collection ends (130-260 MB per 512 px Lite0 image, docs/design-notes.md), so they are
collected in chunks (``chunk`` images at a time, merged into running histograms through ORT's
``CalibStridedMinMax`` ranges) and capped at ``max_images``.

The score head's last linear layer(s) stay float (``nodes_to_exclude``): they turn the quality map into
the final score, hold few weights, and their rounding would move every score directly.
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import ExportError, InputError
from ...io import atomic_path, dir_size
from ...quantize.calib import as_batches, to_raw

METHODS = ("minmax", "entropy", "percentile")
ACTIVATIONS = ("uint8", "int8")
#: ``float_first_convs`` the export tries, fastest first, keeping the first that passes the accuracy gate
#: (``export._int8_rungs`` says why these two)
FLOAT_FIRST_CONVS_LADDER = (3, 6)
#: the session options INT8 artifacts are judged and benchmarked with, recorded in their metadata and
#: applied by the shared loader: ORT's default level, named so an app that lowers it (QDQ fusion needs
#: at least ORT_ENABLE_EXTENDED, the NCHWc float layout ORT_ENABLE_ALL) can see what it gives up
RUNTIME_OPTIONS = {"graph_optimization_level": "ORT_ENABLE_ALL"}
#: what ``reduce_range=True`` means, recorded in the summary (export.json) and the artifact's metadata
WEIGHT_RANGE_NOTE = ("7-bit weights (onnxruntime reduce_range): x86 CPUs without VNNI (AVX2, AVX-512 without "
                     "VNNI) run U8S8 products through a saturating int16 sum (vpmaddubsw) that 8-bit weights overflow; "
                     "7-bit weights cannot, so the artifact scores the same there, on VNNI CPUs and in the browser")
HIST_MAX_IMAGES = 128  #: default cap for entropy / percentile (memory and time grow with every image)
LINEAR_OPS = ("Gemm", "MatMul")


class _Reader:
    """``CalibrationDataReader`` over single-image batches, with the ranges ORT's chunking needs."""

    def __init__(self, input_name: str, batches: list[np.ndarray], progress: bool):
        self.input_name, self.batches = input_name, batches
        self.start, self.end, self.pos = 0, len(batches), 0
        self._bar = None
        if progress:
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._task = self._bar.add_task("calibrating (onnxruntime)", total=len(batches))
            self._bar.start()

    def get_next(self):
        if self.start + self.pos >= self.end:
            return None
        x = self.batches[self.start + self.pos]
        self.pos += 1
        if self._bar is not None:
            self._bar.advance(self._task)
        return {self.input_name: x}

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item

    def __len__(self):
        return len(self.batches)

    def set_range(self, start_index: int, end_index: int):
        self.start, self.end, self.pos = start_index, min(end_index, len(self.batches)), 0

    def close(self):
        if self._bar is not None:
            self._bar.stop()


def score_head_nodes(model, output: str = "score", n_linear: int = 1) -> list[str]:
    """Names of the nodes from the ``n_linear``-th last Gemm/MatMul before ``output`` to ``output``.

    Walks the graph backwards from the score output (the first output when none is called
    ``output``) and stops after ``n_linear`` linear nodes, so the returned nodes are exactly the tail
    of the score head (its last FC layer(s) and the scaling after them), whatever the exporter named
    them. ``n_linear=0`` returns nothing.
    """
    if n_linear <= 0:
        return []
    graph = model.graph
    outputs = [o.name for o in graph.output]
    target = output if output in outputs else outputs[0]
    producer = {o: n for n in graph.node for o in n.output}
    kept, seen, frontier, linears = [], set(), [target], 0
    while frontier and linears < n_linear:
        nxt = []
        for tensor in frontier:
            node = producer.get(tensor)
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            kept.append(node.name)
            if node.op_type in LINEAR_OPS:
                linears += 1
                if linears >= n_linear:
                    break
            nxt.extend(node.input)
        frontier = nxt
    return [k for k in kept if k]


def first_conv_nodes(model, n: int) -> list[str]:
    """Names of the first ``n`` Conv nodes in graph (topological) order: the full-resolution early layers."""
    return [node.name for node in model.graph.node if node.op_type == "Conv"][: max(0, n)]


def inspect_onnx_int8(path: str | os.PathLike) -> dict:
    """What an ONNX file really holds: QDQ node counts and int8 / float initializer bytes."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    int8_names, int8_bytes, float_bytes = set(), 0, 0
    for init in model.graph.initializer:
        nbytes = numpy_helper.to_array(init).nbytes
        if init.data_type in (TensorProto.INT8, TensorProto.UINT8):
            int8_names.add(init.name)
            int8_bytes += nbytes
        elif init.data_type in (TensorProto.FLOAT, TensorProto.FLOAT16):
            float_bytes += nbytes
    dq_int8 = [n for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int8_names]
    return {
        "quantize_linear": ops.count("QuantizeLinear"),
        "dequantize_linear": ops.count("DequantizeLinear"),
        "int8_weight_dequantizers": len(dq_int8),
        "int8_initializer_bytes": int8_bytes,
        "float_initializer_bytes": float_bytes,
        "file_bytes": dir_size(path),
    }


def quantize_onnx(src_onnx: str | os.PathLike, dst_onnx: str | os.PathLike, calib: Sequence[np.ndarray],
                  method: str = "minmax", per_channel: bool = True, keep_float: Sequence[str] | None = None,
                  head_linears: int = 1, float_first_convs: int = 6, chunk: int = 16,
                  max_images: int | None = None, activations: str = "uint8", reduce_range: bool = True,
                  progress: bool = True) -> dict:
    """Quantize an fp32 ONNX model to INT8 QDQ; returns a JSON-ready summary for ``export.json``.

    Args:
        src_onnx: the fp32 model (D's ONNX export; its metadata_props are carried over, precision=int8).
        dst_onnx: where the INT8 model goes (written atomically).
        calib: calibration images, float32 ``(3,H,W)`` or ``(N,3,H,W)`` in the model's input range
            (``calib.load_calibration``); calibrated one image at a time.
        method: ``minmax`` (default, streams) | ``entropy`` | ``percentile`` (histograms; chunked, capped).
        per_channel: per-output-channel weight scales (recommended for depthwise CNNs like Lite0).
        keep_float: node-name patterns (fnmatch, e.g. ``"*head*"``) to leave in float. ``None``: the
            tail of the score head found by :func:`score_head_nodes` with ``head_linears``.
        head_linears: how many of the score head's last linear layers stay float when ``keep_float``
            is ``None`` (1: the final score projection; 0: quantize everything).
        float_first_convs: also keep the first N convolutions float (added to ``keep_float`` or the
            default; 0 = none). Quality models read fine texture (blur, noise) in their early
            full-resolution layers, where an 8-bit activation step erases it. Default 6 (Lite0: stem,
            stage 0 and the first block of stage 1, the layers at 1/2 and 1/4 resolution). Measured on
            demo students (synthetic pseudo-MOS, test split): 0 -> 3 on a pruned Lite0 (256 images) took
            the rank agreement with the float parent from 0.963 to 0.979 and the SRCC drop from 0.061 to
            -0.005; 3 -> 6 on the demo's Lite0 (320 images) from 0.990 to 0.996 and 0.016 (over the 0.01
            budget) to -0.002, for 7 kB. OpenVINO's NNCF path passed its gate with 3 and keeps that.
            ``export_model`` tries 3 first and falls back to 6 when the gate fails
            (:data:`FLOAT_FIRST_CONVS_LADDER`): on x86 those full-resolution layers also run faster as
            float than in ORT's int8 kernels, so 3 is the faster setting.
        chunk: images per histogram collection round for entropy/percentile (memory bound).
        max_images: cap on calibration images (default: all for minmax, ``HIST_MAX_IMAGES`` otherwise).
        activations: ``uint8`` (default: U8S8, what ORT fuses into integer kernels on every CPU; module doc)
            or ``int8`` (S8S8: fused on ARM builds only, float kernels on x86).
        reduce_range: 7-bit weights, [-64, 64] (default True; ORT's documented setting for x86 CPUs without
            VNNI). Those CPUs' U8S8 kernels multiply uint8 activations by int8 weights with ``vpmaddubsw``,
            which adds two products into a saturating int16: 255 * 127 * 2 = 64770 overflows 32767, 255 * 64
            * 2 = 32640 does not. One artifact runs on every laptop (VNNI or not) and in the browser (WASM,
            no saturation), so it is made 7-bit everywhere (docs/int8-x86.md measures what that costs).
            ``False`` gives full-range weights, correct only where the runtime does not saturate.
        progress: show a progress bar.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # 1. Validate the request.
    src_onnx, dst_onnx = Path(src_onnx), Path(dst_onnx)
    if method not in METHODS:
        raise InputError(f"int8 calibration method {method!r} unknown; valid: {', '.join(METHODS)}")
    if activations not in ACTIVATIONS:
        raise InputError(f"int8 activations {activations!r} unknown; valid: {', '.join(ACTIVATIONS)}")
    if not src_onnx.is_file():
        raise InputError(f"{src_onnx}: ONNX model not found")
    batches = as_batches(calib)
    if max_images is None and method != "minmax":
        max_images = HIST_MAX_IMAGES
    if max_images is not None:
        batches = batches[:max_images]
    extra: dict = {}
    if method != "minmax" and len(batches) > chunk:
        # ORT's strided collection needs the count to divide evenly: drop the remainder (< chunk images).
        batches = batches[: len(batches) // chunk * chunk]
        extra["CalibStridedMinMax"] = chunk

    with tempfile.TemporaryDirectory(prefix="dpiqa-ortq-") as tmp:
        # 2. ORT's pre-processing: symbolic/ONNX shape inference and graph optimisation.
        pre = Path(tmp) / "pre.onnx"
        try:
            quant_pre_process(str(src_onnx), str(pre))
        except Exception as exc:  # ORT raises many types; report one line naming the file
            raise ExportError(f"{src_onnx}: onnxruntime quant_pre_process failed: {exc}") from None
        model = onnx.load(str(pre))
        inits = {t.name for t in model.graph.initializer}
        graph_input = [i for i in model.graph.input if i.name not in inits][0]
        if graph_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8:  # a --raw-input artifact
            batches = [to_raw(b) for b in batches]

        # 3. What stays float: user patterns, else the score head's tail.
        names = [n.name for n in model.graph.node]
        if keep_float is None:
            excluded = score_head_nodes(model, n_linear=head_linears)
        else:
            excluded = sorted({n for n in names for pat in keep_float if fnmatch.fnmatchcase(n, pat)})
        excluded += [n for n in first_conv_nodes(model, float_first_convs) if n not in excluded]

        # 4. Calibrate and quantize (QDQ, int8 weights per channel, uint8 activations by default).
        reader = _Reader(graph_input.name, batches, progress)
        calib_method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                        "percentile": CalibrationMethod.Percentile}[method]
        try:
            with atomic_path(dst_onnx) as out:
                act_type = QuantType.QUInt8 if activations == "uint8" else QuantType.QInt8
                quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ,
                                activation_type=act_type, weight_type=QuantType.QInt8,
                                per_channel=per_channel, reduce_range=reduce_range, calibrate_method=calib_method,
                                nodes_to_exclude=excluded, extra_options=extra)
                _carry_metadata(src_onnx, out)
        except (ValueError, RuntimeError, KeyError) as exc:
            raise ExportError(f"{src_onnx}: onnxruntime quantize_static failed: {exc}") from None
        finally:
            reader.close()

    # 5. Report what was made, from the artifact itself.
    summary = inspect_onnx_int8(dst_onnx)
    if summary["int8_weight_dequantizers"] == 0:
        raise ExportError(f"{dst_onnx}: quantization produced no int8 weights (nothing quantizable?)")
    return {
        "tool": "onnxruntime.quantization.quantize_static",
        "format": "QDQ",
        "weights": ("int8 per-channel" if per_channel else "int8 per-tensor") + (", 7-bit range" if reduce_range else ""),
        "reduce_range": reduce_range,
        "weight_range": WEIGHT_RANGE_NOTE if reduce_range else "8-bit weights: can saturate on x86 CPUs without VNNI",
        "activations": f"{activations} asymmetric",
        "method": method,
        "calibration_images": len(batches),
        "kept_float": excluded,
        "kept_float_convs": len({n.name for n in model.graph.node if n.op_type == "Conv"} & set(excluded)),
        "fp32_bytes": dir_size(src_onnx),
        "int8_bytes": summary["file_bytes"],
        "size_ratio": summary["file_bytes"] / max(1, dir_size(src_onnx)),
        "artifact": summary,
    }


def _carry_metadata(src: Path, dst: Path) -> None:
    """Copy the source's metadata_props (DESIGN: every artifact carries its own metadata), precision=int8."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    if not meta:
        return
    meta["precision"] = "int8"
    model = onnx.load(str(dst))
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, str(dst))
