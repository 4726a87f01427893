"""The Linux CoreML emulator (runtime/backends/coreml_mil.py) against torch, op by op and whole models.

Each case is a tiny torch module converted by coremltools to an ML program, saved, read back from disk
and evaluated by ``MILProgram``; torch's own output is the reference. ``MLModel.predict`` cannot run
here (macOS only), so these tests are what stands behind every "emulated on Linux" number.

Tolerances (fp32 programs, ``compute_precision=FLOAT32``): one op is one fp32 computation in both
torch and numpy, differing only in summation order; float32 unit roundoff is 6e-8 and the largest sum
here has 4*5*5 = 100 products of O(1) terms, so the worst case is ~100 roundings of O(1): 1e-5
absolute plus 1e-5 relative leaves room for that and nothing more (a wrong pad or grid point errs
by O(0.1)).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ct = pytest.importorskip("coremltools")
nn = torch.nn
F = torch.nn.functional

from dpiqa_edge.runtime.backends.coreml_mil import EMULATED, MILProgram, UnsupportedOpError, coreml_predict  # noqa: E402

ATOL, RTOL = 1e-5, 1e-5  # fp32: see module docstring


class Fn(nn.Module):
    """Wrap a function (and optional parameters) as a module for tracing."""

    def __init__(self, fn, **mods):
        super().__init__()
        self.fn = fn
        self.mods = nn.ModuleDict(mods)

    def forward(self, *xs):
        return self.fn(self.mods, *xs)


def convert(module, shapes, path, precision="fp32", target=None, image=None):
    """Trace + convert + save; returns the saved package path. ``image``: dict(scale, color) for ImageType."""
    module = module.eval()
    xs = [torch.rand(s) * 2 - 1 for s in shapes]
    if image is not None:
        inputs = [ct.ImageType(name="x0", shape=shapes[0], scale=image["scale"], bias=[0, 0, 0],
                               color_layout=image["color"])]
    else:
        inputs = [ct.TensorType(name=f"x{i}", shape=s) for i, s in enumerate(shapes)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, tuple(xs))
        ml = ct.convert(traced, inputs=inputs, convert_to="mlprogram",
                        compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
                        minimum_deployment_target=target or ct.target.iOS16)
    ml.save(str(path))
    return path


def bn(c):
    m = nn.BatchNorm2d(c)
    with torch.no_grad():  # non-trivial statistics so the op is really exercised
        m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
        m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.5, 0.5)
    return m


S = (1, 4, 9, 11)  # odd, non-square: catches H/W swaps and off-by-one padding


def C(fn, shapes, op, **mods):
    return fn, mods, shapes, op


# name -> (function of (modules, *inputs), its modules, input shapes, the MIL op the case must produce)
OP_CASES = {
    "conv3x3_pad1": C(lambda m, x: m.c(x), [S], "conv", c=nn.Conv2d(4, 8, 3, padding=1)),
    "conv_stride2_dil2": C(lambda m, x: m.c(x), [S], "conv", c=nn.Conv2d(4, 8, 3, stride=2, padding=2, dilation=2)),
    "conv_asym_kernel": C(lambda m, x: m.c(x), [S], "conv", c=nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=(0, 2))),
    "conv_same": C(lambda m, x: m.c(x), [S], "conv", c=nn.Conv2d(4, 6, 4, padding="same")),
    "conv_1x1_stride2": C(lambda m, x: m.c(x), [S], "conv", c=nn.Conv2d(4, 8, 1, stride=2, bias=False)),
    "conv_depthwise5_s2": C(lambda m, x: m.c(x), [S], "conv", c=nn.Conv2d(4, 4, 5, stride=2, padding=2, groups=4)),
    "conv_depth_multiplier": C(lambda m, x: m.c(x), [S], "conv", c=nn.Conv2d(4, 8, 3, padding=1, groups=4)),
    "conv_groups2": C(lambda m, x: m.c(x), [S], "conv", c=nn.Conv2d(4, 6, 3, groups=2)),
    "conv_transpose_s2": C(lambda m, x: m.c(x), [S], "conv_transpose", c=nn.ConvTranspose2d(4, 6, 4, stride=2, padding=1)),
    "conv_transpose_groups": C(lambda m, x: m.c(x), [S], "conv_transpose", c=nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)),
    # the paper student's map branch: torch's output_padding becomes conv_transpose + crop in MIL
    "conv_transpose_outpad": C(lambda m, x: m.c(x), [S], "crop", c=nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)),
    "batch_norm": C(lambda m, x: m.b(x), [S], "batch_norm", b=bn(4)),
    "relu": C(lambda m, x: F.relu(x), [S], "relu"),
    "relu6": C(lambda m, x: F.relu6(x * 4), [S], "relu6"),
    "clip": C(lambda m, x: torch.clamp(x, -0.5, 0.7), [S], "clip"),
    "leaky_relu": C(lambda m, x: F.leaky_relu(x, 0.1), [S], "leaky_relu"),
    "sigmoid": C(lambda m, x: torch.sigmoid(x * 3), [S], "sigmoid"),
    "silu": C(lambda m, x: F.silu(x * 3), [S], "silu"),
    "hardswish": C(lambda m, x: F.hardswish(x * 3), [S], "thresholded_relu"),
    "hardsigmoid": C(lambda m, x: F.hardsigmoid(x * 3), [S], "sigmoid_hard"),
    "gelu": C(lambda m, x: F.gelu(x * 2), [S], "gelu"),
    "gelu_tanh": C(lambda m, x: F.gelu(x * 2, approximate="tanh"), [S], "gelu"),
    "tanh": C(lambda m, x: torch.tanh(x), [S], "tanh"),
    "softmax": C(lambda m, x: torch.softmax(x * 3, dim=1), [S], "softmax"),
    "add_broadcast": C(lambda m, x, y: x + y, [S, (1, 4, 1, 1)], "add"),
    "sub": C(lambda m, x, y: x - y, [S, S], "sub"),
    "mul": C(lambda m, x, y: x * y, [S, (1, 1, 9, 11)], "mul"),
    "real_div": C(lambda m, x, y: x / (y.abs() + 0.5), [S, S], "real_div"),
    "reduce_mean": C(lambda m, x: x.mean((2, 3)), [S], "reduce_mean"),
    "reduce_mean_keepdim": C(lambda m, x: x.mean(1, keepdim=True), [S], "reduce_mean"),
    "reduce_sum": C(lambda m, x: x.sum(-1), [S], "reduce_sum"),
    "reduce_max": C(lambda m, x: x.amax((1, 3)), [S], "reduce_max"),
    "reshape": C(lambda m, x: x.reshape(1, 2, -1) * 2, [S], "reshape"),
    "transpose": C(lambda m, x: x.permute(0, 2, 3, 1) * 2, [S], "transpose"),
    "squeeze": C(lambda m, x: x.mean((2, 3)).squeeze(0), [S], "squeeze"),
    "expand_dims": C(lambda m, x: x.unsqueeze(2) * 2, [S], "expand_dims"),
    "concat": C(lambda m, x, y: torch.cat([x, y], 1), [S, (1, 2, 9, 11)], "concat"),
    "linear": C(lambda m, x: m.l(x), [(2, 11)], "linear", l=nn.Linear(11, 5)),
    "matmul": C(lambda m, x, y: x @ y.transpose(-1, -2), [(2, 3, 5), (2, 4, 5)], "matmul"),
    "slice_by_index": C(lambda m, x: x[:, 1:3, ::2, 2:], [S], "slice_by_index"),
    "pad_constant": C(lambda m, x: F.pad(x, (1, 2, 0, 1), value=0.5), [S], "pad"),
    "pad_reflect": C(lambda m, x: F.pad(x, (2, 1, 1, 2), mode="reflect"), [S], "pad"),
    "pad_replicate": C(lambda m, x: F.pad(x, (2, 1, 1, 2), mode="replicate"), [S], "pad"),
    "avg_pool": C(lambda m, x: F.avg_pool2d(x, 3, 2, 1), [S], "avg_pool"),
    "avg_pool_ceil_excl": C(lambda m, x: F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False), [S], "avg_pool"),
    "max_pool": C(lambda m, x: F.max_pool2d(x, 3, 2, 1), [S], "max_pool"),
    "max_pool_ceil": C(lambda m, x: F.max_pool2d(x, 2, 2, ceil_mode=True), [S], "max_pool"),
    "adaptive_avg_pool": C(lambda m, x: F.adaptive_avg_pool2d(x, (3, 1)), [S], "avg_pool"),
    "bilinear_x2": C(lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False), [S], "upsample_bilinear"),
    "bilinear_x2_align": C(lambda m, x: F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True), [S], "upsample_bilinear"),
    "bilinear_to_size": C(lambda m, x: F.interpolate(x, size=(5, 16), mode="bilinear", align_corners=False), [S], "upsample_bilinear"),
    "bilinear_to_size_align": C(lambda m, x: F.interpolate(x, size=(5, 16), mode="bilinear", align_corners=True), [S], "upsample_bilinear"),
    "nearest_x2": C(lambda m, x: F.interpolate(x, scale_factor=2, mode="nearest"), [S], "upsample_nearest_neighbor"),
    "layer_norm": C(lambda m, x: m.n(x), [S], "layer_norm", n=nn.LayerNorm(11)),
}


class Group(nn.Module):
    """Every case sharing one input signature, side by side: one output per case, each its own op.

    Converting one program per signature instead of one per case keeps this file fast (a conversion
    costs ~1 s of coremltools passes); each output still depends on its case's op alone.
    """

    def __init__(self, names):
        super().__init__()
        self.names = names
        self.cases = nn.ModuleDict({n: nn.ModuleDict(OP_CASES[n][1]) for n in names})

    def forward(self, *xs):
        return tuple(OP_CASES[n][0](self.cases[n], *xs) for n in self.names)


@pytest.fixture(scope="module")
def op_results(tmp_path_factory):
    """case name -> (emulator output, torch output, op counts of its program), one program per signature."""
    groups: dict[tuple, list[str]] = {}
    for name, (_, _, shapes, _) in OP_CASES.items():
        groups.setdefault(tuple(map(tuple, shapes)), []).append(name)
    results = {}
    for i, (shapes, names) in enumerate(groups.items()):
        torch.manual_seed(i)
        module = Group(names)
        path = convert(module, shapes, tmp_path_factory.mktemp("ops") / f"g{i}.mlpackage")
        prog = MILProgram(path)
        xs = [torch.rand(s) * 4 - 2 for s in shapes]  # [-2, 2): both signs, past activation knees
        with torch.no_grad():
            refs = module(*xs)
        out = prog.predict({f"x{j}": x.numpy() for j, x in enumerate(xs)})
        for name, out_name, ref in zip(names, prog.output_names, refs):
            results[name] = (np.asarray(out[out_name]), ref.numpy(), prog.op_types)
    return results


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_op_matches_torch(case, op_results):
    got, ref, op_types = op_results[case]
    op = OP_CASES[case][3]
    assert op_types[op] >= 1, f"{case}: no {op} in the converted program ({dict(op_types)})"
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=ATOL, rtol=RTOL)


def test_fp16_cast_rounds_like_float16(tmp_path):
    """FLOAT16 program: input cast to fp16, fp16 weights, fp16 output rounded.

    Reference: torch in float64 on the fp16-rounded input and weights, rounded to float16 at the end.
    The emulator does fp32 arithmetic then rounds the conv's output to fp16, so the two may differ by
    the fp32 accumulation error (1e-6 here) turning into one fp16 rounding step: <= 1 ulp of fp16
    (2^-10 relative). A missing cast would differ by the fp16 rounding of the inputs (~1e-3 relative).
    """
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
    # iOS15 has no fp16 inputs, so the program itself casts its fp32 input: the cast op is exercised
    path = convert(Fn(lambda m, x: m.c(x), c=conv), [S], tmp_path / "h.mlpackage", precision="fp16",
                   target=ct.target.iOS15)
    prog = MILProgram(path)
    assert prog.op_types["cast"] >= 1
    x = torch.rand(S) * 4 - 2
    out = next(iter(prog.predict({"x0": x.numpy()}).values()))
    x16, w16 = x.half().double(), conv.weight.detach().half().double()
    ref = F.conv2d(x16, w16, padding=1).half().float().numpy()
    ulp = np.spacing(np.abs(ref).astype(np.float16)).astype(np.float32)
    assert np.all(np.abs(out.astype(np.float32) - ref) <= ulp)
    # and it is really fp16: the fp32 conv of the unrounded input is further away somewhere
    exact = F.conv2d(x, conv.weight.detach(), padding=1).numpy()
    assert np.abs(out.astype(np.float32) - exact).max() > 1e-4


# -- whole models ---------------------------------------------------------------------------------
class MBConv(nn.Module):
    """Lite0-style inverted residual (ReLU6, no SE) or MobileNetV3-style (hardswish, SE + hardsigmoid)."""

    def __init__(self, cin, cout, k, stride, expand, v3=False):
        super().__init__()
        mid = cin * expand
        act = nn.Hardswish if v3 else nn.ReLU6
        self.pw = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), bn(mid), act())
        self.dw = nn.Sequential(nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False), bn(mid), act())
        self.se = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(mid, 8, 1), nn.ReLU(), nn.Conv2d(8, mid, 1), nn.Hardsigmoid()) if v3 else None
        self.pj = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), bn(cout))
        self.res = stride == 1 and cin == cout

    def forward(self, x):
        y = self.dw(self.pw(x))
        if self.se is not None:
            y = y * self.se(y)
        y = self.pj(y)
        return x + y if self.res else y


class TinyStudent(nn.Module):
    """Student-shaped: normalisation inside, backbone, score head (0-100) and an 8-channel quality map."""

    def __init__(self, v3=False):
        super().__init__()
        act = nn.Hardswish if v3 else nn.ReLU6
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), bn(16), act())
        self.blocks = nn.Sequential(MBConv(16, 16, 3, 1, 1, v3), MBConv(16, 24, 3, 2, 4, v3),
                                    MBConv(24, 24, 5, 1, 3, v3), MBConv(24, 32, 5, 2, 4, v3))
        self.head = nn.Linear(32, 1)
        self.qmap = nn.Conv2d(32, 8, 1)

    def forward(self, x):
        f = self.blocks(self.stem((x * 255 - 127) / 128))
        score = torch.sigmoid(self.head(f.mean((2, 3)))).reshape(-1) * 100
        qmap = F.interpolate(torch.sigmoid(self.qmap(f)), size=(16, 16), mode="bilinear", align_corners=False)
        return score, qmap


@pytest.mark.parametrize("v3", [False, True], ids=["lite0_like", "mobilenetv3_like"])
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_whole_student_matches_torch(v3, precision, tmp_path):
    """fp32: ~1e-4 relative (a dozen layers of fp32 summation-order differences).

    fp16: every tensor between ops is rounded to float16 (2^-11 relative) and the error compounds
    through ~20 stored tensors, ending amplified by the sigmoid's slope on the 0-100 score: 0.1 points
    on 0-100 and 2e-3 on the 0-1 quality map (5x the measured 0.019 and 4e-4; a wrong op errs by
    whole points).
    """
    torch.manual_seed(3)
    model = TinyStudent(v3).eval()
    path = convert(model, [(1, 3, 64, 64)], tmp_path / "s.mlpackage", precision=precision)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        ref_s, ref_q = (t.numpy() for t in model(x))
    out, how = coreml_predict(path, {"x0": x.numpy()})
    assert how == EMULATED
    s, q = (np.asarray(out[n], dtype=np.float32) for n in MILProgram(path).output_names)
    assert q.shape == ref_q.shape == (1, 8, 16, 16)
    tol_s, tol_q = (1e-4 * 100, 1e-4) if precision == "fp32" else (0.1, 2e-3)
    np.testing.assert_allclose(s.reshape(-1), ref_s, atol=tol_s, rtol=0)
    np.testing.assert_allclose(q, ref_q, atol=tol_q, rtol=0)


def test_image_input_scale_and_bgr(tmp_path):
    """ImageType: uint8 RGB in, BGR channel order and the 1/255 scale applied as the model declares."""
    torch.manual_seed(4)
    model = Fn(lambda m, x: m.c(x).mean((2, 3)), c=nn.Conv2d(3, 5, 3, padding=1))
    path = convert(model, [(1, 3, 12, 10)], tmp_path / "i.mlpackage", image={"scale": 1 / 255, "color": ct.colorlayout.BGR})
    prog = MILProgram(path)
    assert prog.inputs[0].kind == "image" and prog.inputs[0].color == "BGR"
    rgb = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    got = next(iter(prog.predict({"x0": rgb}).values()))
    bgr = torch.from_numpy(rgb[..., ::-1].transpose(2, 0, 1).copy()).float()[None] / 255
    with torch.no_grad():
        ref = model(bgr).numpy()
    np.testing.assert_allclose(got, ref, atol=ATOL, rtol=RTOL)
    with pytest.raises(Exception, match="expects RGB"):
        prog.predict({"x0": rgb[..., :2]})


def test_unknown_op_is_refused_by_name(tmp_path):
    path = convert(Fn(lambda m, x: torch.cumsum(x, 1)), [S], tmp_path / "u.mlpackage")
    with pytest.raises(UnsupportedOpError, match="cumsum"):
        MILProgram(path)


def test_wrong_input_shape_is_an_input_error(tmp_path):
    from dpiqa_edge.errors import InputError

    path = convert(Fn(lambda m, x: F.relu(x)), [S], tmp_path / "r.mlpackage")
    with pytest.raises(InputError, match="shape"):
        MILProgram(path).predict({"x0": np.zeros((1, 4, 9, 10), np.float32)})
