"""CoreML weight compression (export/targets/coreml_compress.py), checked by the Linux emulator.

A tiny student-shaped network is converted once per deployment target; each compression mode must
(1) write constexpr ops into the saved program (read from the protobuf spec, not through our loader),
(2) dequantize in the emulator exactly as coremltools' own ``decompress_weights`` does,
(3) stay within a stated tolerance of the float model, (4) keep the heads float, (5) shrink the file.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ct = pytest.importorskip("coremltools")
nn = torch.nn

from dpiqa_edge.errors import ConfigError, ExportError  # noqa: E402
from dpiqa_edge.export.targets.coreml_compress import compress_coreml  # noqa: E402
from dpiqa_edge.runtime.backends.coreml_mil import MILProgram  # noqa: E402

CONSTEXPR = {  # (mode, target) -> the op coremltools writes
    ("int8", "iOS16"): "constexpr_affine_dequantize",
    ("int8", "iOS18"): "constexpr_blockwise_shift_scale",
    **{(f"palettize{b}", t): "constexpr_lut_to_dense" for b in (8, 6, 4) for t in ("iOS16", "iOS18")},
}
# Relative to the float model's output range. Int8 per-channel symmetric rounds each weight by at most
# max|w_channel| / 254 (0.4 %); palettization by half a LUT step of k-means centroids, ~4x coarser per
# 2 bits less. Errors partly cancel over a layer's sum and grow over the 3 compressed layers: allowing
# ~2.5x the per-weight bound (30x at 4 bit, where 16 k-means steps are uneven) passes every correct
# dequantization and fails a wrong scale axis or LUT order, which errs by O(100 %). Measured on this
# net: int8 1e-4, palettize8/6 1e-5, palettize4 3e-4.
REL_TOL = {"int8": 0.01, "palettize8": 0.01, "palettize6": 0.03, "palettize4": 0.12}
BITS = {"int8": 8, "palettize8": 8, "palettize6": 6, "palettize4": 4}


class Net(nn.Module):
    """Student-shaped: big-enough convs (>= 2048 weights, coremltools' threshold) and two small heads."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU6(), nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU6(),
                                  nn.Conv2d(64, 96, 1), nn.ReLU6())
        self.score = nn.Linear(96, 1)
        self.qmap = nn.Conv2d(96, 8, 1)

    def forward(self, x):
        f = self.body(x)
        return torch.sigmoid(self.score(f.mean((2, 3)))).reshape(-1) * 100, torch.sigmoid(self.qmap(f))


@pytest.fixture(scope="module")
def float_models(tmp_path_factory):
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.rand(1, 3, 32, 32)
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, x)
        for target in ("iOS16", "iOS18"):
            ml = ct.convert(traced, inputs=[ct.TensorType(name="image", shape=x.shape)],
                            outputs=[ct.TensorType(name="score"), ct.TensorType(name="quality_map")],
                            convert_to="mlprogram", compute_precision=ct.precision.FLOAT32,
                            minimum_deployment_target=getattr(ct.target, target))
            ml.user_defined_metadata["precision"] = "fp32"
            paths[target] = tmp_path_factory.mktemp(target) / "model.mlpackage"
            ml.save(str(paths[target]))
    return paths


def spec_op_types(path) -> set[str]:
    """Op types straight from the saved protobuf (independent of the emulator's loader)."""
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    return {op.type for f in spec.mlProgram.functions.values() for b in f.block_specializations.values()
            for op in b.operations}


def emulate(path, x):
    out = MILProgram(path).predict({"image": x})
    return np.concatenate([np.asarray(out["score"], np.float64).ravel() / 100, np.asarray(out["quality_map"], np.float64).ravel()])


def weight_bytes(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("weight.bin"))


CASES = [("int8", "iOS16"), ("palettize8", "iOS16"), ("palettize6", "iOS16"), ("palettize4", "iOS16"),
         ("int8", "iOS18"), ("palettize4", "iOS18")]


@pytest.mark.parametrize("mode,target", CASES)
def test_compressed_model_is_checked_by_the_emulator(mode, target, float_models, tmp_path):
    src = float_models[target]
    dst = tmp_path / "c.mlpackage"
    info = compress_coreml(src, dst, mode)
    # 1. really compressed, in the saved program
    assert CONSTEXPR[(mode, target)] in spec_op_types(dst)
    assert info["constexpr_ops"].get(CONSTEXPR[(mode, target)], 0) >= 2 and info["weight_ops_compressed"] >= 2
    # 2. the heads stayed float, and the program says so
    assert len(info["kept_float"]) == 2 and set(info["kept_float"]) <= set(info["weight_ops_float"])
    # 3. the emulator dequantizes as coremltools defines: same numbers as its own decompression
    #    (both evaluated by the emulator; only fp32 rounding of dequantized weights can differ: 1e-6)
    import coremltools.optimize.coreml as cto

    dec = tmp_path / "dec.mlpackage"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cto.decompress_weights(ct.models.MLModel(str(dst), skip_model_load=True)).save(str(dec))
    assert not any(t.startswith("constexpr_") for t in spec_op_types(dec))
    x = np.random.default_rng(1).random((1, 3, 32, 32), dtype=np.float32)
    got = emulate(dst, x)
    np.testing.assert_allclose(got, emulate(dec, x), atol=1e-6, rtol=1e-5)
    # 4. close to the float model, within the mode's tolerance
    ref = emulate(src, x)
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= REL_TOL[mode], f"{mode}: relative error {err:.4f}"
    assert err > 0  # the weights really changed
    # 5. smaller: the weight file holds `bits` per compressed weight plus the float ones, with at most
    #    4 KB for scales / LUTs (256 x 4 B per tensor at 8 bit) and 64-byte blob alignment
    src_w, dst_w = weight_bytes(src), weight_bytes(dst)
    assert dst_w <= info["params_compressed"] * BITS[mode] / 8 + 4 * info["params_float"] + 4096 < 0.4 * src_w
    assert info["dst_bytes"] < info["src_bytes"]
    # ... and metadata carried over
    meta = ct.models.MLModel(str(dst), skip_model_load=True).user_defined_metadata
    assert meta["precision"] == "fp32" and meta["coreml_compression"] == mode


def test_fp16_source_int8(float_models, tmp_path):
    """An fp16 program compresses too (fp16 scales); the emulator still runs it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        net = Net().eval()
        x = torch.rand(1, 3, 32, 32)
        ml = ct.convert(torch.jit.trace(net, x), inputs=[ct.TensorType(name="image", shape=x.shape)],
                        outputs=[ct.TensorType(name="score"), ct.TensorType(name="quality_map")],
                        convert_to="mlprogram", compute_precision=ct.precision.FLOAT16,
                        minimum_deployment_target=ct.target.iOS16)
    ml.save(str(tmp_path / "h.mlpackage"))
    info = compress_coreml(tmp_path / "h.mlpackage", tmp_path / "hq.mlpackage", "int8")
    assert info["constexpr_ops"]["constexpr_affine_dequantize"] >= 2
    out = MILProgram(tmp_path / "hq.mlpackage").predict({"image": x.numpy()})
    with torch.no_grad():
        ref = net(x)[0].numpy()
    # fp16 storage (2^-11) plus int8 weights (0.4 %) on a 0-100 score: within 1 point
    assert abs(float(out["score"].ravel()[0]) - float(ref[0])) < 1.0


@pytest.mark.skipif(sys.platform == "darwin", reason="W8A8 runs on macOS")
def test_w8a8_needs_macos(float_models, tmp_path):
    with pytest.raises(ExportError, match="needs macOS.*MLModel.predict"):
        compress_coreml(float_models["iOS16"], tmp_path / "a8.mlpackage", "w8a8", calib=[{"image": np.zeros((1, 3, 32, 32), np.float32)}])
    assert not (tmp_path / "a8.mlpackage").exists()


def test_bad_requests_are_config_errors(float_models, tmp_path):
    with pytest.raises(ConfigError, match="palettize4"):
        compress_coreml(float_models["iOS16"], tmp_path / "x.mlpackage", "int4")
    with pytest.raises(ConfigError, match="not in the program"):
        compress_coreml(float_models["iOS16"], tmp_path / "x.mlpackage", "int8", keep_float_ops=["no_such_op"])


# -- the constexpr ops alone, against coremltools' own reference decompression ----------------------
# Exact equality: dequantization is one multiply (and subtract) per element in both, same dtype order.
@pytest.mark.parametrize("nbits", [1, 2, 4, 6, 8])
def test_ios16_lut_unpacks_sub_byte_indices(nbits):
    """iOS16 LUT indices are bit-packed LSB first, crossing byte borders at 6 bits (the docs' layout)."""
    from coremltools.converters.mil.mil.ops.defs.iOS16.constexpr_ops import constexpr_lut_to_dense as ref_op
    from coremltools.optimize import _utils as ou

    from dpiqa_edge.runtime.backends.coreml_mil_ops import OPS

    rng = np.random.default_rng(nbits)
    shape = np.array([5, 3, 3, 3], dtype=np.uint32)  # 135 elements: not a multiple of 8 / nbits
    idx = rng.integers(0, 2**nbits, int(np.prod(shape))).astype(np.uint8)
    lut = rng.standard_normal(2**nbits).astype(np.float32)
    packed = ou.pack_elements_into_bits(idx, nbits)
    got = OPS["constexpr_lut_to_dense"]({"indices": packed, "lut": lut, "shape": shape})
    np.testing.assert_array_equal(got, ref_op.decompress(lut, packed, shape))
    np.testing.assert_array_equal(got.reshape(-1), lut[idx])


@pytest.mark.parametrize("scale_shape,with_offset", [((6, 1, 1, 1), True), ((3, 2, 1, 1), False), ((1, 4, 1, 1), True)])
def test_ios18_blockwise_shift_scale(scale_shape, with_offset):
    from coremltools.converters.mil.mil.ops.defs.iOS18.compression import constexpr_blockwise_shift_scale as ref_op

    from dpiqa_edge.runtime.backends.coreml_mil_ops import OPS

    rng = np.random.default_rng(0)
    data = rng.integers(-128, 128, (6, 8, 3, 3)).astype(np.int8)
    scale = rng.random(scale_shape).astype(np.float32)
    offset = rng.integers(-5, 5, scale_shape).astype(np.int8) if with_offset else None
    args = {"data": data, "scale": scale, **({"offset": offset} if with_offset else {})}
    np.testing.assert_allclose(OPS["constexpr_blockwise_shift_scale"](args), ref_op.decompress(data, scale, offset), rtol=1e-7)


@pytest.mark.parametrize("groups", [(1, 1), (2, 1), (3, 4)])
def test_ios18_lut_per_group(groups):
    from coremltools.converters.mil.mil.ops.defs.iOS18.compression import constexpr_lut_to_dense as ref_op

    from dpiqa_edge.runtime.backends.coreml_mil_ops import OPS

    rng = np.random.default_rng(1)
    idx = rng.integers(0, 16, (6, 8)).astype(np.uint8)
    lut = rng.standard_normal((*groups, 16, 1)).astype(np.float32)
    np.testing.assert_array_equal(OPS["constexpr_lut_to_dense"]({"indices": idx, "lut": lut}), ref_op.decompress(idx, lut, None))


def test_ios16_affine_dequantize_per_channel_and_scalar():
    from coremltools.converters.mil.mil.ops.defs.iOS16.constexpr_ops import constexpr_affine_dequantize as ref_op

    from dpiqa_edge.runtime.backends.coreml_mil_ops import OPS

    rng = np.random.default_rng(2)
    q = rng.integers(-128, 128, (4, 6, 3)).astype(np.int8)
    for axis, scale, zp in [(0, rng.random(4).astype(np.float32), rng.integers(-3, 3, 4).astype(np.int8)),
                            (1, rng.random(6).astype(np.float32), np.zeros(6, np.int8)),
                            (-1, np.float32(0.05), np.int8(2))]:
        args = {"quantized_data": q, "scale": scale, "zero_point": zp, "axis": np.int32(axis)}
        np.testing.assert_allclose(OPS["constexpr_affine_dequantize"](args), ref_op.decompress(q, zp, scale, axis), rtol=1e-7)
