"""INT8 (W8A8) for OpenVINO: NNCF post-training quantization of the OpenVINO IR.

``nncf.quantize`` inserts FakeQuantize operations calibrated on representative images (symmetric
"performance" preset, fast bias correction); saving the IR folds the weight FakeQuantizes into int8
constants, so the ``.bin`` shrinks about 4x and the CPU plugin runs integer (VNNI/AMX) kernels.
Weights are 7-bit (NNCF's overflow fix on every layer, :data:`OVERFLOW_FIX`): CPUs without VNNI saturate
8-bit ones.

With ``max_srcc_drop`` (``--max-srcc-drop``), ``nncf.quantize_with_accuracy_control`` is used instead:
it quantizes, measures the model with *our* metric - SRCC against MOS on a held-out val subset - and
reverts the layers that hurt ranking most to float until the drop is within budget (or it reports
that it cannot). SRCC is a whole-set metric (one image has no rank correlation), so the validation
function hands NNCF each image's score as its "output" and NNCF ranks layers by how much those move.

The score head's last linear layer(s) stay float (NNCF ``IgnoredScope``) and are listed in the result.

The ops left float (that head, any early convolutions kept float, the quality map's Interpolate) run at
the CPU plugin's inference precision: bf16 by default on AVX-512-BF16 / AMX CPUs, whose 8-bit mantissa
(a relative step of 0.4%) can be coarser than the int8 grid of the layers around them (the demo's Lite0
INT8 agreed with its float parent at SRCC 0.986 with its float ops in bf16). Whether that costs ranking
depends on the model, so :func:`choose_float_precision` measures the saved IR both ways on held-out
images (rank agreement with the fp32 IR, and speed) and the export records the choice in the IR's
``runtime_options``, which the runtime loader applies.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ...errors import ExportError, InputError
from ...io import atomic_path, dir_size
from ...quantize.calib import as_batches, to_raw
from ...metrics import srcc

SCORE_OUTPUT = "score"
#: NNCF's overflow fix, applied to every export (``OverflowFix.ENABLE``), and what it means (export.json and
#: the IR's metadata). NNCF's default (FIRST_LAYER) halves only the first convolution's weight range; the
#: CPU plugin's u8 x i8 kernels on x86 without VNNI (AVX2, AVX-512 without VNNI) add pairs of products in a
#: saturating int16 (``vpmaddubsw``), which any layer with 8-bit weights can overflow. Measured on an
#: AVX2-only CPU (no VNNI) with test_int8's tiny student: with FIRST_LAYER its INT8 IR ranked 12 val images
#: at SRCC 0.881 against its float parent (a drop of 0.119; accuracy control reverted 5 of 8 layers and still
#: missed a 0.01 budget), with ENABLE within budget. An IR is made once and run on either kind of CPU, so
#: every layer gets 7-bit weights (depthwise convolutions excepted, by NNCF itself: one input channel per
#: output, no pairwise int16 sum to overflow).
OVERFLOW_FIX = "enable"
WEIGHT_RANGE_NOTE = ("7-bit weights (NNCF overflow_fix=enable): x86 CPUs without VNNI run u8 x i8 products through "
                     "a saturating int16 sum (vpmaddubsw) that 8-bit weights overflow; 7-bit weights cannot, so the IR "
                     "scores the same on CPUs with and without VNNI")


def _score_port(model_or_compiled):
    """The score output of an OpenVINO model: the output named ``score``, else the first output."""
    for port in model_or_compiled.outputs:
        if SCORE_OUTPUT in port.get_names():
            return port
    return model_or_compiled.outputs[0]


def score_head_ops(model, n_linear: int = 1) -> list[str]:
    """Friendly names of the ops from the ``n_linear``-th last MatMul before the score output onwards.

    Walks back from the score ``Result``; Constants, Converts and Parameters are skipped (they are not
    quantizable ops). ``n_linear=0`` returns nothing.
    """
    if n_linear <= 0:
        return []
    skip = {"Constant", "Convert", "Parameter", "Result"}
    start = _score_port(model).get_node()
    names, seen, frontier, linears = [], set(), [start], 0
    while frontier and linears < n_linear:
        nxt = []
        for node in frontier:
            if node.get_friendly_name() in seen:
                continue
            seen.add(node.get_friendly_name())
            if node.get_type_name() not in skip:
                names.append(node.get_friendly_name())
            if node.get_type_name() == "MatMul":
                linears += 1
                if linears >= n_linear:
                    break
            nxt.extend(inp.get_source_output().get_node() for inp in node.inputs())
        frontier = nxt
    return names


def first_conv_ops(model, n: int) -> list[str]:
    """Friendly names of the first ``n`` (Group)Convolutions in topological order (the early layers)."""
    convs = [op.get_friendly_name() for op in model.get_ordered_ops()
             if op.get_type_name() in ("Convolution", "GroupConvolution")]
    return convs[: max(0, n)]


def inspect_openvino_int8(xml: str | os.PathLike) -> dict:
    """What a saved IR really holds: FakeQuantize count, int8/uint8 constants and their bytes."""
    import openvino as ov

    model = ov.Core().read_model(str(xml))
    fq, int8_consts, int8_bytes, float_bytes = 0, 0, 0, 0
    for op in model.get_ops():
        kind = op.get_type_name()
        if kind == "FakeQuantize":
            fq += 1
        elif kind == "Constant":
            et = op.get_output_element_type(0).get_type_name()
            n = int(np.prod(list(op.get_output_shape(0)))) if len(op.get_output_shape(0)) else 1
            if et in ("i8", "u8"):
                int8_consts += 1
                int8_bytes += n
            elif et in ("f32", "f16", "bf16"):
                float_bytes += n * (4 if et == "f32" else 2)
    xml = Path(xml)
    return {"fake_quantize": fq, "int8_constants": int8_consts, "int8_constant_bytes": int8_bytes,
            "float_constant_bytes": float_bytes, "file_bytes": dir_size(xml) + dir_size(xml.with_suffix(".bin"))}


def _srcc_validation_fn(compiled, data) -> tuple[float, list]:
    """NNCF validation function: SRCC(score vs MOS) over ``data`` items ``(image batch, mos)``."""
    port = _score_port(compiled)
    scores, mos, outputs = [], [], []
    for x, m in data:
        s = float(np.asarray(compiled(x)[port]).ravel()[0])
        scores.append(s)
        mos.append(m)
        outputs.append([np.array([s], dtype=np.float32)])
    value = float(srcc(scores, mos)) if len(scores) >= 3 else float("nan")
    # NaN (one image: NNCF probes with a single item) is reported as 0 so NNCF treats it as a metric
    # value; the per-image outputs make NNCF rank layers by output change, not by a per-image metric.
    return (value if math.isfinite(value) else 0.0), outputs


def quantize_openvino(src_xml: str | os.PathLike, dst_xml: str | os.PathLike, calib: Sequence[np.ndarray],
                      val: tuple[Sequence[np.ndarray], Sequence[float]] | None = None,
                      max_srcc_drop: float | None = None, ignored_scope: Sequence[str] | None = None,
                      head_linears: int = 1, float_first_convs: int = 3, preset: str = "performance",
                      max_iterations: int = 5, overflow_fix: str = OVERFLOW_FIX) -> dict:
    """Quantize an fp32 OpenVINO IR to INT8 with NNCF; returns a JSON-ready summary for ``export.json``.

    Args:
        src_xml: the fp32 IR (``.xml`` with its ``.bin`` beside it).
        dst_xml: where the INT8 IR goes (``.xml`` + ``.bin``, written atomically, weights not fp16-compressed).
        calib: calibration images, float32 ``(3,H,W)`` or ``(N,3,H,W)`` (``calib.load_calibration``).
        val: ``(images, mos)`` held-out val subset (never test) - needed with ``max_srcc_drop``.
        max_srcc_drop: SRCC budget; given, NNCF's accuracy-controlled quantization keeps the drop
            within it by reverting the most harmful layers to float.
        ignored_scope: op-name regex patterns to keep float. ``None``: the score head's tail
            (:func:`score_head_ops` with ``head_linears``).
        head_linears: how many of the score head's last linear layers stay float when
            ``ignored_scope`` is ``None`` (1: the final score projection; 0: quantize everything).
        float_first_convs: also keep the first N convolutions float (default 3, where the demo students
            pass the gate; why and what it costs: ``onnx_int8.quantize_onnx``, whose ORT path needs 6).
        preset: ``performance`` (symmetric, fastest on CPU) or ``mixed`` (asymmetric activations).
        max_iterations: accuracy control's limit on layer-reverting rounds.
        overflow_fix: NNCF's ``OverflowFix``: ``enable`` (default: every conv/matmul weight but depthwise in 7 bits, so the
            IR cannot saturate on x86 CPUs without VNNI; :data:`OVERFLOW_FIX`), ``first_layer_only`` (NNCF's
            default) or ``disable``.
    """
    import nncf
    import openvino as ov

    # 1. Load the model and the data.
    src_xml, dst_xml = Path(src_xml), Path(dst_xml)
    if not src_xml.is_file():
        raise InputError(f"{src_xml}: OpenVINO IR not found")
    if max_srcc_drop is not None and (val is None or len(val[0]) < 3):
        raise InputError("quantize_openvino: --max-srcc-drop needs a labelled val subset of at least 3 images")
    model = ov.Core().read_model(str(src_xml))
    _fold_constants(model)
    batches = as_batches(calib)
    raw = model.inputs[0].get_element_type().get_type_name() == "u8"  # a --raw-input artifact
    if raw:
        batches = [to_raw(b) for b in batches]
    calibration = nncf.Dataset(batches)

    # 2. What stays float.
    early = first_conv_ops(model, float_first_convs)
    if ignored_scope is None:
        kept = score_head_ops(model, head_linears) + early
        scope = nncf.IgnoredScope(names=kept, validate=False) if kept else None
    else:
        kept = list(ignored_scope) + early
        scope = nncf.IgnoredScope(patterns=list(ignored_scope), names=early, validate=False) if kept else None
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    try:
        advanced = AdvancedQuantizationParameters(overflow_fix=OverflowFix(overflow_fix))
    except ValueError:
        raise InputError(f"overflow_fix {overflow_fix!r} unknown; valid: "
                         f"{', '.join(o.value for o in OverflowFix)}") from None
    preset_enum = {"performance": nncf.QuantizationPreset.PERFORMANCE,
                   "mixed": nncf.QuantizationPreset.MIXED}[preset]

    # 3. Quantize (plain PTQ, or accuracy-controlled on SRCC).
    reverted: list[str] = []
    try:
        if max_srcc_drop is None:
            quantized = nncf.quantize(model, calibration, preset=preset_enum, subset_size=len(batches),
                                      ignored_scope=scope, advanced_parameters=advanced)
        else:
            from nncf.quantization.advanced_parameters import AdvancedAccuracyRestorerParameters

            items = [(to_raw(x) if raw else x, float(m)) for x, m in zip(as_batches(val[0]), val[1])]
            validation = nncf.Dataset(items, lambda item: item[0])
            quantized = nncf.quantize_with_accuracy_control(
                model, calibration, validation, _srcc_validation_fn, max_drop=max_srcc_drop,
                drop_type=nncf.DropType.ABSOLUTE, preset=preset_enum, subset_size=len(batches),
                ignored_scope=scope, advanced_quantization_parameters=advanced,
                advanced_accuracy_restorer_parameters=AdvancedAccuracyRestorerParameters(
                    max_num_iterations=max_iterations, ranking_subset_size=len(items)))
            reverted = _float_ops_reverted(model, quantized, kept)
    except nncf.ValidationError as exc:
        raise ExportError(f"{src_xml}: NNCF quantization failed: {exc}") from None

    # 4. Save (int8 weight constants; float weights kept f32 so "kept float" means float32).
    _mark_precision(quantized)
    with atomic_path(dst_xml) as tmp_xml:
        ov.save_model(quantized, str(tmp_xml), compress_to_fp16=False)
        # OpenVINO reads <stem>.bin beside the .xml (no name inside it), so the weights must end up under
        # the final stem: each file is complete before its rename (the .bin first, then atomic_path's .xml).
        os.replace(tmp_xml.with_suffix(".bin"), dst_xml.with_suffix(".bin"))

    # 5. Report from the artifact itself, and choose the precision of the ops left float.
    summary = inspect_openvino_int8(dst_xml)
    if summary["fake_quantize"] == 0:
        raise ExportError(f"{dst_xml}: NNCF produced no FakeQuantize ops (nothing quantizable?)")
    held_out = list(val[0]) if val is not None and len(val[0]) >= 3 else list(as_batches(calib))[:64]
    float_rest = choose_float_precision(src_xml, dst_xml, held_out)
    float_rest["images"] = "val" if val is not None and len(val[0]) >= 3 else "calibration (no val given)"
    fp32_bytes = dir_size(src_xml) + dir_size(src_xml.with_suffix(".bin"))
    return {
        "tool": "nncf.quantize_with_accuracy_control" if max_srcc_drop is not None else "nncf.quantize",
        "format": "OpenVINO IR with FakeQuantize",
        "weights": "int8 per-channel" + (", 7-bit range" if overflow_fix == "enable" else ""),
        "activations": "int8", "preset": preset, "overflow_fix": overflow_fix,
        "weight_range": WEIGHT_RANGE_NOTE if overflow_fix == "enable" else
        f"NNCF overflow_fix={overflow_fix}: 8-bit weights can saturate on x86 CPUs without VNNI",
        "calibration_images": len(batches),
        "kept_float": kept, "reverted_to_float": reverted,
        "max_srcc_drop": max_srcc_drop,
        "fp32_bytes": fp32_bytes, "int8_bytes": summary["file_bytes"],
        "size_ratio": summary["file_bytes"] / max(1, fp32_bytes),
        "artifact": summary,
        "float_rest": float_rest,
    }


#: agreement (SRCC vs the float parent) the plugin's default may lose against pinned f32 and still be
#: chosen for its speed: well below the differences bf16 makes to a score head (0.01 on the demo students)
AGREEMENT_TOLERANCE = 0.002


def choose_float_precision(fp32_xml: str | os.PathLike, int8_xml: str | os.PathLike, images: Sequence[np.ndarray],
                           threads: int | None = None, rounds: int = 5) -> dict:
    """Run the INT8 IR with its float ops at f32 and at the plugin's default; pick one for this model.

    Both are compared with the fp32 IR pinned to f32 (the float parent, within 2e-3 of torch) on
    ``images`` (held-out val images; never test): rank agreement (Spearman) and the largest score change,
    and timed round-robin at batch 1. The plugin's default is chosen when it is f32 anyway, or when its
    agreement is within :data:`AGREEMENT_TOLERANCE` of pinned f32's; otherwise f32 is pinned.
    Returns a JSON-ready dict; ``runtime_options`` is what the artifact should record (``{}``: default).
    """
    import time

    import openvino as ov


    core = ov.Core()
    default = core.get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
    cfg = {"INFERENCE_NUM_THREADS": int(threads)} if threads else {}
    parent = core.compile_model(str(fp32_xml), "CPU", {**cfg, "INFERENCE_PRECISION_HINT": "f32"})
    int8 = core.read_model(str(int8_xml))
    variants = {"f32": core.compile_model(int8, "CPU", {**cfg, "INFERENCE_PRECISION_HINT": "f32"}),
                "default": core.compile_model(int8, "CPU", dict(cfg))}
    batches = as_batches(images)
    if int8.inputs[0].get_element_type().get_type_name() == "u8":
        batches = [to_raw(b) for b in batches]

    def scores(compiled):
        port = _score_port(compiled)
        return np.array([float(np.asarray(compiled(x)[port]).ravel()[0]) for x in batches])

    ref = scores(parent)
    result = {"default_is": default, "n_images": len(batches), "rank_agreement": {}, "max_abs_change": {}, "ms": {}}
    for name, compiled in variants.items():
        s = scores(compiled)
        value = float(srcc(s, ref)) if len(s) >= 3 else float("nan")
        result["rank_agreement"][name] = round(value, 5) if math.isfinite(value) else None
        result["max_abs_change"][name] = round(float(np.max(np.abs(s - ref))), 4)
    times = {name: [] for name in variants}
    x = batches[0]
    for _ in range(rounds):
        for name, compiled in variants.items():
            for _ in range(3):
                t0 = time.perf_counter()
                compiled(x)
                times[name].append(time.perf_counter() - t0)
    result["ms"] = {name: round(1000 * float(np.median(t)), 3) for name, t in times.items()}
    chosen, why = decide_float_precision(default, result["rank_agreement"], result["max_abs_change"], len(batches))
    result.update(chosen=chosen, why=why,
                  chosen_label="f32 (pinned)" if chosen == "f32" else f"the plugin's default ({default} on the export machine)",
                  runtime_options={"INFERENCE_PRECISION_HINT": "f32"} if chosen == "f32" else {})
    return result


def decide_float_precision(default: str, agreement: dict, change: dict, n: int) -> tuple[str, str]:
    """The rule of :func:`choose_float_precision`: ``("default" | "f32", why)`` from the plugin's default
    precision and, per candidate (``f32``, ``default``), the rank agreement with the float parent (None
    when undefined) and the largest score change."""
    a_f32, a_def = agreement["f32"], agreement["default"]
    if default == "f32":
        return "default", "the plugin's default is f32 on this CPU"
    if not all(a is not None and math.isfinite(a) for a in (a_f32, a_def)):
        # constant scores (an untrained head) or too few images: no ranking to compare, compare the scores
        return ("default" if change["default"] <= change["f32"] else "f32",
                f"no rank agreement to compare on {n} images (constant scores or fewer than 3); largest score "
                f"change from the float parent {change['default']:.3f} at the plugin's default ({default}), "
                f"{change['f32']:.3f} pinned f32")
    if a_def >= a_f32 - AGREEMENT_TOLERANCE:
        return "default", (f"at the plugin's default ({default}) it ranks {n} held-out images like the float parent "
                           f"as well as pinned f32 does (SRCC {a_def:.4f} vs {a_f32:.4f})")
    return "f32", (f"pinned f32 ranks {n} held-out images closer to the float parent than the plugin's default "
                   f"({default}): SRCC {a_f32:.4f} vs {a_def:.4f}, largest score change {change['f32']:.3f} vs "
                   f"{change['default']:.3f}")


def _fold_constants(model) -> None:
    """Fold constant subgraphs (e.g. ``Constant -> Reshape`` on depthwise weights, as an IR read back from
    ONNX holds them) so every weight FakeQuantize sits on a Constant and is stored as int8 on save;
    unfolded, those weights stay float32 behind a FakeQuantize (measured: +1.2 MB on a Lite0 student)."""
    from openvino.passes import ConstantFolding, Manager

    manager = Manager()
    manager.register_pass(ConstantFolding())
    manager.run_passes(model)


def _float_ops_reverted(original, quantized, kept: list[str]) -> list[str]:
    """Conv/MatMul ops that have no FakeQuantize on their inputs after accuracy control (minus ``kept``)."""
    quantizable = {"Convolution", "GroupConvolution", "MatMul"}
    names = []
    for op in quantized.get_ops():
        if op.get_type_name() not in quantizable or op.get_friendly_name() in kept:
            continue
        srcs = [inp.get_source_output().get_node().get_type_name() for inp in op.inputs()]
        if "FakeQuantize" not in srcs and not any(_has_fq_upstream(inp) for inp in op.inputs()):
            names.append(op.get_friendly_name())
    return names


def _has_fq_upstream(inp, depth: int = 3) -> bool:
    # Weight paths after compression read Constant(i8) -> Convert -> Subtract/Multiply; a few hops suffice.
    node = inp.get_source_output().get_node()
    for _ in range(depth):
        kind = node.get_type_name()
        if kind == "FakeQuantize":
            return True
        if kind == "Constant":
            return node.get_output_element_type(0).get_type_name() in ("i8", "u8")
        if not node.inputs():
            return False
        node = node.inputs()[0].get_source_output().get_node()
    return False


def _mark_precision(model) -> None:
    """Where the export stored ``precision`` in rt_info, set it to int8 (the artifact describes itself).
    ``framework`` is where OpenVINO's ONNX frontend copies the source ONNX's metadata (the fp32 graph's)."""
    for path in (["precision"], ["dpiqa_edge", "precision"], ["model_info", "precision"], ["framework", "precision"]):
        if model.has_rt_info(path):
            model.set_rt_info("int8", path)

