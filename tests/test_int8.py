"""INT8 through each target's own tool: the artifacts are opened and checked for real int8 weights.

A tiny stand-in student (the model contract: 0..1 NCHW in -> (score 0-100, 8-channel quality map))
is exported with torch.onnx / converted with OpenVINO, quantized, then inspected: QDQ nodes over int8
initializers (ONNX), FakeQuantize + int8 constants (OpenVINO), the score head's last layer left float,
and outputs close to the float model's.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from dpiqa_edge.quantize.calib import as_batches, calibration_paths, load_calibration  # noqa: E402

SIZE = 32


class TinyStudent(torch.nn.Module):
    """Stand-in with a student's structure: conv stem, depthwise block, 8-channel map, MLP score head."""

    def __init__(self, width: int = 16, map_size: int = 4):
        super().__init__()
        nn = torch.nn
        self.map_size = map_size
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(width, width, 3, 1, 1, groups=width, bias=False), nn.BatchNorm2d(width),
                                nn.ReLU6(), nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width))
        self.down = nn.Sequential(nn.Conv2d(width, 2 * width, 3, 2, 1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU6())
        self.to_map = nn.Conv2d(2 * width, 8, 1)
        self.head = nn.Sequential(nn.Linear(8 * map_size ** 2, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        h = self.stem(x)
        h = self.down(h + self.dw(h))
        q = torch.nn.functional.adaptive_avg_pool2d(torch.relu(self.to_map(h)), self.map_size)
        return torch.sigmoid(self.head(q.flatten(1)).squeeze(1)) * 100, q


@pytest.fixture(scope="module")
def images():
    # Smooth random images with varied brightness/contrast, so activations span realistic ranges.
    rng = np.random.default_rng(0)
    out = []
    for _ in range(24):
        base = rng.random((3, 8, 8)).astype(np.float32)
        img = np.kron(base, np.ones((1, SIZE // 8, SIZE // 8), np.float32))
        out.append(np.clip(img * rng.uniform(0.3, 1.0) + rng.uniform(0, 0.3), 0, 1).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory):
    torch.manual_seed(0)
    model = TinyStudent().eval()
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, SIZE, SIZE),), str(path), input_names=["image"],
                      output_names=["score", "quality_map"], dynamic_axes={"image": {0: "n"}}, dynamo=False)
    m = onnx.load(str(path))
    m.metadata_props.add(key="precision", value="fp32")
    m.metadata_props.add(key="score_range", value="0,100")
    onnx.save(m, str(path))
    return path


@pytest.fixture(scope="module")
def fp32_ir(fp32_onnx):
    ov = pytest.importorskip("openvino")
    xml = fp32_onnx.with_suffix(".xml")
    # As the exporter does: the ONNX frontend via read_model (it leaves depthwise weights behind a Reshape).
    ov.save_model(ov.Core().read_model(str(fp32_onnx)), str(xml), compress_to_fp16=False)
    return xml


def _ort_scores(path, images):
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(["score"], {"image": np.stack(images)})[0]


def _ov_scores(xml, images):
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})  # parity pins f32
    return np.asarray(compiled(np.stack(images))[compiled.outputs[0]])


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_onnx_int8_has_qdq_int8_weights_and_float_head_tail(fp32_onnx, images, tmp_path, method):
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto

    from dpiqa_edge.export.targets.onnx_int8 import quantize_onnx

    dst = tmp_path / "model-int8.onnx"
    # chunk=4 over 12 images: the histogram methods collect in 3 rounds (the chunked path, not one pass).
    info = quantize_onnx(fp32_onnx, dst, images[:12], method=method, chunk=4, float_first_convs=0, progress=False)
    m = onnx.load(str(dst))
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > 0
    int8 = {t.name for t in m.graph.initializer if t.data_type == TensorProto.INT8}
    producers = {o: n for n in m.graph.node for o in n.output}
    # Every conv's weight arrives through a DequantizeLinear of an int8 initializer.
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    assert len(convs) == 5  # stem, depthwise, pointwise, down, to_map (BN folded by pre-processing)
    for conv in convs:
        dq = producers[conv.input[1]]
        assert dq.op_type == "DequantizeLinear" and dq.input[0] in int8, conv.name
    # The final score Gemm stays float: its weight is a float initializer, not a dequantized one.
    last = [n for n in m.graph.node if n.op_type in ("Gemm", "MatMul")][-1]
    assert last.name in info["kept_float"]
    assert last.input[1] not in producers
    assert info["calibration_images"] == 12 and info["method"] == method
    # Metadata travels with the artifact, precision rewritten.
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta == {"precision": "int8", "score_range": "0,100"}
    # Scores stay close: on this tiny model INT8 moves the 0-100 score by well under one point
    # (measured ~0.05; 1.0 leaves room across ORT versions while still catching a broken scale).
    ref, q = _ort_scores(fp32_onnx, images[12:]), _ort_scores(dst, images[12:])
    assert np.max(np.abs(ref - q)) < 1.0


def test_onnx_keep_float_patterns_and_full_quantization(fp32_onnx, images, tmp_path):
    from dpiqa_edge.export.targets.onnx_int8 import inspect_onnx_int8, quantize_onnx

    kept = quantize_onnx(fp32_onnx, tmp_path / "a.onnx", images[:8], keep_float=["*head*"], float_first_convs=0,
                         progress=False)
    assert kept["kept_float"] and all("head" in n for n in kept["kept_float"])
    full = quantize_onnx(fp32_onnx, tmp_path / "b.onnx", images[:8], head_linears=0, float_first_convs=0,
                         progress=False)
    assert full["kept_float"] == []
    # Quantizing the head too gives two more int8 weight tensors (both Gemms) than keeping it float.
    assert (inspect_onnx_int8(tmp_path / "b.onnx")["int8_weight_dequantizers"]
            == inspect_onnx_int8(tmp_path / "a.onnx")["int8_weight_dequantizers"] + 2)


def test_onnx_rejects_unknown_method(fp32_onnx, images, tmp_path):
    from dpiqa_edge.errors import InputError
    from dpiqa_edge.export.targets.onnx_int8 import quantize_onnx

    with pytest.raises(InputError, match="unknown"):
        quantize_onnx(fp32_onnx, tmp_path / "x.onnx", images[:4], method="kl")
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.parametrize("accuracy_control", [False, True])
def test_openvino_int8_has_fake_quantize_and_int8_constants(fp32_ir, images, tmp_path, accuracy_control):
    ov = pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from dpiqa_edge.export.targets.openvino_int8 import quantize_openvino

    dst = tmp_path / "model-int8.xml"
    kwargs = {}
    if accuracy_control:
        val = images[12:]
        kwargs = {"val": (val, list(_ov_scores(fp32_ir, val))), "max_srcc_drop": 0.01}
    info = quantize_openvino(fp32_ir, dst, images[:12], float_first_convs=0, **kwargs)
    assert dst.is_file() and dst.with_suffix(".bin").is_file()
    model = ov.Core().read_model(str(dst))
    kinds = [op.get_type_name() for op in model.get_ops()]
    assert kinds.count("FakeQuantize") > 0
    # Every conv weight (depthwise included) is stored as an int8 constant, a few hops up its weight input.
    convs = [op for op in model.get_ops() if op.get_type_name() in ("Convolution", "GroupConvolution")]
    assert len(convs) == 5
    for conv in convs:
        node = conv.inputs()[1].get_source_output().get_node()
        while node.inputs() and node.get_type_name() != "Constant":
            node = node.inputs()[0].get_source_output().get_node()
        assert node.get_output_element_type(0).get_type_name() == "i8", conv.get_friendly_name()
    # The last MatMul (score projection) is kept float and named in the summary.
    assert any("MatMul" == op.get_type_name() and op.get_friendly_name() in info["kept_float"] for op in model.get_ops())
    assert info["tool"].endswith("accuracy_control" if accuracy_control else "quantize")
    # The IR describes itself as int8 everywhere it says a precision, the frontend's copy of the fp32
    # ONNX's metadata ("framework") included.
    import xml.etree.ElementTree as ET

    precisions = [el.get("value") for el in ET.parse(dst).getroot().find("rt_info").iter("precision")]
    assert precisions and set(precisions) == {"int8"}, precisions
    # The int8 weights make the .bin much smaller than the fp32 one (the head MatMul stays float).
    assert dst.with_suffix(".bin").stat().st_size < 0.5 * fp32_ir.with_suffix(".bin").stat().st_size
    ref, q = _ov_scores(fp32_ir, images[12:]), _ov_scores(dst, images[12:])
    assert np.max(np.abs(ref - q)) < 1.0  # same tolerance and reason as the ONNX test


def test_calibration_from_folder_and_manifest_never_uses_test(tmp_path):
    from PIL import Image

    from dpiqa_edge.data.manifest import Row, write_manifest
    from dpiqa_edge.errors import InputError

    rows = []
    for i, split in enumerate(["train"] * 3 + ["val"] * 2 + ["test"] * 4):
        (tmp_path / "imgs" / split).mkdir(parents=True, exist_ok=True)
        name = f"imgs/{split}/{i}.png"
        Image.fromarray(np.full((20, 30, 3), i * 20, np.uint8)).save(tmp_path / name)
        rows.append(Row(name, 50.0, split))
    manifest = write_manifest(tmp_path / "m.csv", rows)
    picked = calibration_paths(manifest, n=4)
    assert len(picked) == 4 and not any("/test/" in p for p in picked)
    assert sum("/train/" in p for p in picked) == 3  # train first, topped up from val
    assert calibration_paths(manifest, n=4) == picked  # seeded: same pick every run
    arrays = load_calibration(manifest, (16, 16), n=100, progress=False)
    assert len(arrays) == 5 and arrays[0].shape == (3, 16, 16) and arrays[0].dtype == np.float32
    # A folder of unlabelled frames is searched recursively (test/ here is just a folder name).
    assert len(load_calibration(tmp_path / "imgs", 16, n=100, progress=False)) == 9
    write_manifest(tmp_path / "t.csv", [r for r in rows if r.split == "test"])
    with pytest.raises(InputError, match="test split"):
        calibration_paths(tmp_path / "t.csv")
    assert [b.shape for b in as_batches([np.zeros((2, 3, 4, 4), np.float32)])] == [(1, 3, 4, 4)] * 2


def test_gate_fails_an_int8_artifact_forced_off_budget(images, tmp_path):
    """Through the real quantizer: calibrating on black frames clips every activation (a forced, real
    failure); the gate must reject it at the 0.01 budget while the properly calibrated one stays close."""
    import onnxruntime as ort

    from dpiqa_edge.errors import GateError
    from dpiqa_edge.quantize.gate import enforce_gate, srcc_gate
    from dpiqa_edge.export.targets.onnx_int8 import quantize_onnx

    torch.manual_seed(0)
    model = TinyStudent().eval()
    with torch.no_grad():
        model.head[2].weight.mul_(20)  # spread the untrained scores (~2 points) so ranks mean something
    src = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, SIZE, SIZE),), str(src), input_names=["image"],
                      output_names=["score", "quality_map"], dynamic_axes={"image": {0: "n"}}, dynamo=False)
    held_out = np.stack(images[12:])
    with torch.no_grad():
        parent = model(torch.from_numpy(held_out))[0].numpy()
    mos = parent + np.random.default_rng(1).normal(0, parent.std() * 0.3, len(parent))  # SRCC(parent) ~0.9

    def variant(name, calib):
        quantize_onnx(src, tmp_path / f"{name}.onnx", calib, progress=False)
        sess = ort.InferenceSession(str(tmp_path / f"{name}.onnx"), providers=["CPUExecutionProvider"])
        return sess.run(["score"], {"image": held_out})[0]

    good = srcc_gate(parent, variant("good", images[:12]), mos, max_drop=0.01)
    forced = srcc_gate(parent, variant("black", [np.zeros_like(images[0])] * 4), mos, max_drop=0.01, name="black-calib")
    assert forced["passed"] is False and forced["drop"] > 0.3  # measured ~0.9: ranking destroyed
    with pytest.raises(GateError, match="black-calib"):
        enforce_gate(forced)
    # The honest INT8 keeps the parent's ranking (measured agreement ~0.98 on 12 images; 0.9 leaves room).
    assert good["rank_agreement"] > 0.9 and good["drop"] < forced["drop"] / 5


def test_float_first_convs_keeps_the_early_layers_float(fp32_onnx, fp32_ir, images, tmp_path):
    from dpiqa_edge.export.targets.onnx_int8 import quantize_onnx
    from dpiqa_edge.export.targets.openvino_int8 import quantize_openvino

    info = quantize_onnx(fp32_onnx, tmp_path / "f2.onnx", images[:8], float_first_convs=2, progress=False)
    m = onnx.load(str(tmp_path / "f2.onnx"))
    producers = {o: n for n in m.graph.node for o in n.output}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    float_weight = [c.input[1] not in producers for c in convs]  # a float initializer feeds the conv directly
    assert float_weight == [True, True, False, False, False]
    assert {convs[0].name, convs[1].name} <= set(info["kept_float"])

    ov_info = quantize_openvino(fp32_ir, tmp_path / "f2.xml", images[:8], float_first_convs=2)
    ov = pytest.importorskip("openvino")
    model = ov.Core().read_model(str(tmp_path / "f2.xml"))
    early = [op for op in model.get_ordered_ops() if op.get_type_name() in ("Convolution", "GroupConvolution")][:2]
    for conv in early:
        assert conv.get_friendly_name() in ov_info["kept_float"]
        assert conv.inputs()[0].get_source_output().get_node().get_type_name() != "FakeQuantize"


def _as_artifact(path, precision="int8", **extra):
    """Give a bare ONNX file the metadata every artifact carries (the runtime loaders need it)."""
    from dpiqa_edge.export.card import build_metadata
    from dpiqa_edge.runtime.artifact import encode_metadata
    from dpiqa_edge.runtime.preprocess import Preprocess

    meta = build_metadata(student="tiny", target="onnx", precision=precision, raw_input=False, gate=50.0,
                          preprocessing=Preprocess(size=(SIZE, SIZE)).to_dict(), source_sha256="0" * 64,
                          dynamic_batch=True, image_input=False)
    m = onnx.load(str(path))
    del m.metadata_props[:]
    for k, v in encode_metadata({**meta, **extra}).items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(path))
    return path


@pytest.fixture(scope="module")
def quantized(fp32_onnx, images, tmp_path_factory):
    """The tiny student quantized three ways: the export's form (uint8 activations, one DQ per consumer)
    with no conv kept float and with the first two kept float, and the old int8-activation form."""
    from dpiqa_edge.export.targets.onnx_int8 import quantize_onnx

    root = tmp_path_factory.mktemp("q")
    out = {}
    for name, opts in {"u8": {}, "u8_first2": {"float_first_convs": 2}, "s8": {"activations": "int8"}}.items():
        opts = {"float_first_convs": 0, **opts}
        out[name] = (quantize_onnx(fp32_onnx, root / f"{name}.onnx", images[:12], progress=False, **opts),
                     _as_artifact(root / f"{name}.onnx"))
    return out


def test_onnx_int8_runs_in_integer_kernels_end_to_end(quantized, fp32_onnx, images):
    """The guard against an INT8 artifact that is only smaller: ORT's own profiler must see every conv as
    a QLinearConv and the residual Add as a QLinearAdd, no float Conv left between a dequantize and a
    quantize (the tiny student has 5 convs and one residual Add, like a Lite0 block)."""
    from dpiqa_edge.export.targets.ort_kernels import profile_kernels

    info, art = quantized["u8"]
    prof = profile_kernels(art, runs=3)
    ops = {k: v["count"] for k, v in prof["ops"].items()}
    assert ops.get("QLinearConv") == 5 and ops.get("QLinearAdd") == 1, ops
    assert prof["float_convs"] == 0 and info["kept_float_convs"] == 0
    assert info["activations"] == "uint8 asymmetric"
    # Q/DQ only at the float edges (input, the map's pooling, the float score head), not around each conv
    assert prof["groups"]["convert"]["count"] <= 6, ops
    # Kept float on purpose is kept float, and counted as such.
    info2, art2 = quantized["u8_first2"]
    assert profile_kernels(art2, runs=2)["float_convs"] == 2 == info2["kept_float_convs"]
    # Still the float model's scores (same tolerance and reason as the QDQ test above).
    ref, q = _ort_scores(fp32_onnx, images[12:]), _ort_scores(art, images[12:])
    assert np.max(np.abs(ref - q)) < 1.0


def test_int8_activations_are_not_fused_on_x86(quantized):
    """What the uint8 default avoids, so the guard above can fail: on x86 builds ORT fuses only uint8-
    activation QDQ units, and int8 activations leave convolutions in float kernels (on ARM builds, where
    ORT allows int8, they fuse: nothing to show there)."""
    import platform

    from dpiqa_edge.export.targets.ort_kernels import profile_kernels

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("ORT fuses int8-activation QDQ on ARM builds; the contrast exists on x86 only")
    prof = profile_kernels(quantized["s8"][1], runs=2)
    assert prof["float_convs"] > 0 and prof["groups"]["convert"]["count"] > 6


def test_loader_applies_recorded_session_options(quantized, tmp_path):
    """runtime_options in the metadata reach the session: with graph optimisation off, ORT fuses nothing
    and all 5 convs run as float kernels; an unknown option or level fails loading with one line."""
    import shutil

    from dpiqa_edge.errors import ModelLoadError
    from dpiqa_edge.export.targets.ort_kernels import profile_kernels
    from dpiqa_edge.runtime.backends import load_backend

    off = _as_artifact(shutil.copy(quantized["u8"][1], tmp_path / "off.onnx"),
                       runtime_options={"graph_optimization_level": "ORT_DISABLE_ALL"})
    assert profile_kernels(off, runs=2)["float_convs"] == 5
    assert load_backend(off).session.get_session_options().graph_optimization_level.name == "ORT_DISABLE_ALL"
    for bad, match in (({"threads": 4}, "unknown to the onnxruntime loader"),
                       ({"graph_optimization_level": "FAST"}, "graph_optimization_level 'FAST'")):
        path = _as_artifact(shutil.copy(quantized["u8"][1], tmp_path / "bad.onnx"), runtime_options=bad)
        with pytest.raises(ModelLoadError, match=match):
            load_backend(path)


def test_kernel_summary_counts_per_run():
    """The profiler's events -> per-run counts and groups (numbers checked on a hand-made event list)."""
    from dpiqa_edge.export.targets.ort_kernels import kernel_summary, summarize_events

    def ev(node, op, dur):
        return {"cat": "Node", "name": f"{node}_kernel_time", "dur": dur, "args": {"op_name": op}}

    runs = 2
    events = [ev("c1", "QLinearConv", 100), ev("c1", "QLinearConv", 300), ev("c2", "Conv", 50), ev("c2", "Conv", 50),
              ev("dq", "DequantizeLinear", 10), ev("dq", "DequantizeLinear", 30), {"cat": "Session", "name": "x"}]
    prof = summarize_events(events, runs)
    assert prof["ops"]["QLinearConv"] == {"count": 1, "ms": 0.2, "group": "integer"}  # median of 100, 300 us
    assert prof["float_convs"] == 1 and prof["groups"]["convert"] == {"count": 1, "ms": 0.02}
    assert prof["integer_share"] == pytest.approx(0.2 / (0.2 + 0.05 + 0.02), abs=1e-4)
    line = kernel_summary(prof)
    assert line.startswith("integer: QLinearConv 1 | float: Conv 1 | convert: 1 | layout: 0") and "74%" in line


def test_openvino_float_rest_precision_is_measured_and_recorded(images, tmp_path):
    """Through the real quantizer: both precisions for the ops NNCF left float are measured on the val
    images against the fp32 IR, and the choice follows the rule (tested with numbers below)."""
    ov = pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from dpiqa_edge.export.targets.openvino_int8 import decide_float_precision, quantize_openvino

    torch.manual_seed(0)
    model = TinyStudent().eval()
    with torch.no_grad():
        model.head[2].weight.mul_(20)  # spread the untrained scores so ranks mean something
    src = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, SIZE, SIZE),), str(src), input_names=["image"],
                      output_names=["score", "quality_map"], dynamic_axes={"image": {0: "n"}}, dynamo=False)
    xml = tmp_path / "m.xml"
    ov.save_model(ov.Core().read_model(str(src)), str(xml), compress_to_fp16=False)
    info = quantize_openvino(xml, tmp_path / "q.xml", images[:12], val=(images[12:], [50.0] * 12), float_first_convs=0)
    rest = info["float_rest"]
    assert rest["n_images"] == 12 and rest["images"] == "val" and rest["ms"]["f32"] > 0 and rest["ms"]["default"] > 0
    assert rest["default_is"] == ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
    # an honest INT8 of this net ranks like its parent (measured ~0.98 either way on 12 images)
    assert min(rest["rank_agreement"].values()) > 0.9, rest
    expected = decide_float_precision(rest["default_is"], rest["rank_agreement"], rest["max_abs_change"], 12)[0]
    assert rest["chosen"] == expected
    assert rest["runtime_options"] == ({"INFERENCE_PRECISION_HINT": "f32"} if expected == "f32" else {})


@pytest.mark.parametrize("default, agreement, change, chosen", [
    ("f32", {"f32": 0.99, "default": 0.90}, {"f32": 1, "default": 1}, "default"),  # same thing on this CPU
    ("bf16", {"f32": 0.995, "default": 0.986}, {"f32": 2, "default": 14}, "f32"),  # bf16 costs ranking: pin f32
    ("bf16", {"f32": 0.995, "default": 0.9935}, {"f32": 2, "default": 3}, "default"),  # within 0.002: speed wins
    ("bf16", {"f32": None, "default": None}, {"f32": 0.0, "default": 0.0}, "default"),  # constant scores
    ("bf16", {"f32": None, "default": None}, {"f32": 0.1, "default": 0.4}, "f32"),
])
def test_float_precision_rule(default, agreement, change, chosen):
    from dpiqa_edge.export.targets.openvino_int8 import decide_float_precision

    got, why = decide_float_precision(default, agreement, change, 80)
    assert got == chosen and why


# -- 7-bit weights: no int16 saturation on x86 CPUs without VNNI ---------------------------------------
def _ort_scores_with(path, images, **config):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    for key, value in config.items():
        opts.add_session_config_entry(key, value)
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(["score"], {"image": np.stack(images)})[0]


def test_onnx_int8_weights_are_7_bit_and_do_not_saturate(quantized, fp32_onnx, images, tmp_path):
    """ORT's U8S8 kernels on x86 without VNNI (AVX2) add pairs of uint8 x int8 products in a saturating
    int16 (vpmaddubsw): 255 * 127 * 2 overflows it, 255 * 64 * 2 does not. Every export stores its conv
    weights in [-64, 64] (reduce_range) and says so; ``session.x64quantprecision=1`` (ORT's non-saturating
    x64 kernels) must then change nothing - on a VNNI CPU the two are the same kernels anyway, on AVX2 an
    8-bit artifact moved by up to 8 points on the shipped model's photos (BENCHMARKS.md)."""
    from onnx import TensorProto, numpy_helper

    info, art = quantized["u8"]
    assert info["reduce_range"] is True and "7-bit" in info["weights"] and "VNNI" in info["weight_range"]
    m = onnx.load(str(art))
    producers = {o: n for n in m.graph.node for o in n.output}
    inits = {t.name: t for t in m.graph.initializer}
    weights = [numpy_helper.to_array(inits[producers[n.input[1]].input[0]]) for n in m.graph.node
               if n.op_type == "Conv" and n.input[1] in producers]
    assert len(weights) == 5 and all(inits[producers[n.input[1]].input[0]].data_type == TensorProto.INT8
                                     for n in m.graph.node if n.op_type == "Conv")
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64
    x = images[12:]
    default, exact = _ort_scores(art, x), _ort_scores_with(art, x, **{"session.x64quantprecision": "1"})
    # 1e-4: the two kernels sum the same integers; only their float requantization may round differently
    assert np.max(np.abs(default - exact)) <= 1e-4, np.abs(default - exact)
    # asked for full-range weights, the export has them: the range check above can fail
    from dpiqa_edge.export.targets.onnx_int8 import quantize_onnx

    full = quantize_onnx(fp32_onnx, tmp_path / "full.onnx", images[:12], float_first_convs=0, reduce_range=False,
                         progress=False)
    assert full["reduce_range"] is False and full["artifact"]["int8_weight_dequantizers"] == info["artifact"]["int8_weight_dequantizers"]
    f = onnx.load(str(tmp_path / "full.onnx"))
    assert max(int(np.abs(numpy_helper.to_array(t).astype(np.int32)).max()) for t in f.graph.initializer
               if t.data_type == TensorProto.INT8) > 64


def test_openvino_int8_weights_are_7_bit(fp32_ir, images, tmp_path):
    """NNCF's overflow fix on every layer (not only the first, NNCF's default): every int8 weight constant in
    the saved IR holds 7-bit values, so the CPU plugin's u8 x i8 kernels cannot saturate without VNNI; the
    choice is in the summary (export.json)."""
    ov = pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from dpiqa_edge.export.targets.openvino_int8 import quantize_openvino

    def widest(xml):
        """Largest |value| of the int8 weight constants that feed a pairwise kernel. Depthwise weights
        (G, 1, 1, kh, kw) are left out: NNCF's overflow fix skips depthwise convolutions by design (no
        pairwise int16 sum over input channels there: one input channel per output)."""
        consts = [op.get_data() for op in ov.Core().read_model(str(xml)).get_ops()
                  if op.get_type_name() == "Constant" and op.get_output_element_type(0).get_type_name() == "i8"]
        dense = [c for c in consts if not (c.ndim == 5 and c.shape[1:3] == (1, 1))]
        assert len(dense) == 5, [c.shape for c in consts]  # stem, pointwise, down, to_map, the head's first linear
        return max(int(np.abs(c.astype(np.int32)).max()) for c in dense)

    info = quantize_openvino(fp32_ir, tmp_path / "q.xml", images[:12], float_first_convs=0)
    assert info["overflow_fix"] == "enable" and "7-bit" in info["weights"] and "VNNI" in info["weight_range"]
    assert widest(tmp_path / "q.xml") <= 64
    # NNCF's default (FIRST_LAYER) keeps the later layers 8-bit: the check above can fail
    full = quantize_openvino(fp32_ir, tmp_path / "f.xml", images[:12], float_first_convs=0, overflow_fix="first_layer_only")
    assert full["overflow_fix"] == "first_layer_only" and widest(tmp_path / "f.xml") > 64
