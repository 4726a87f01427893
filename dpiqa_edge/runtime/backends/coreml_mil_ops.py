"""The MIL operations the Linux CoreML emulator can evaluate, in numpy, as the MIL op definitions say.

Each entry of ``OPS`` takes the op's named inputs (numpy arrays, or Python str/bool for string and
flag parameters; absent optional inputs are simply missing) and returns one array or a tuple. The
evaluator (``coreml_mil.MILProgram``) casts every result to the dtype the program declares for that
output, so an op computed here in float32 from fp16 inputs is stored back as float16: fp16 storage
between ops, float32 arithmetic inside each op (what Apple's GPU path does; the Neural Engine may also
accumulate in fp16, which is why fp16 comparisons carry an fp16-sized tolerance).

Semantics follow coremltools' op documentation (``converters/mil/mil/ops/defs``): padding rules of
conv/pool ("same" puts the odd extra pixel after, "same_lower" before), the sampling grids of
``upsample_bilinear``/``resize_bilinear``, ``sigmoid_hard = min(max(a*x+b, 0), 1)``, the LSB-first bit
packing of iOS16 ``constexpr_lut_to_dense``. Numpy only: no torch, no coremltools here.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

F32 = np.float32


def _f(x) -> np.ndarray:
    """Float inputs computed in float32 (fp16 tensors are upcast; the result is rounded back by the caller)."""
    x = np.asarray(x)
    return x.astype(F32) if x.dtype == np.float16 else x


def _ints(v) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


# -- padding shared by conv and pool ---------------------------------------------------------------
def _spatial_pads(pad_type: str, pad, in_hw, k_eff, strides) -> list[tuple[int, int]]:
    """(before, after) per spatial dim. MIL: same -> total = max(0, s*ceil(i/s) - i + k - s)."""
    pad_type = str(pad_type).lower()
    if pad_type == "valid":
        return [(0, 0)] * len(in_hw)
    if pad_type == "custom":
        p = _ints(pad)
        return [(p[2 * i], p[2 * i + 1]) for i in range(len(in_hw))]
    if pad_type in ("same", "same_lower"):
        out = []
        for i, k, s in zip(in_hw, k_eff, strides):
            total = max(0, s * math.ceil(i / s) - i + k - s)
            small, big = total // 2, total - total // 2
            out.append((small, big) if pad_type == "same" else (big, small))
        return out
    raise NotImplementedError(f"pad_type {pad_type!r}")


def _need_2d(x: np.ndarray, op: str) -> None:
    if x.ndim != 4:
        raise NotImplementedError(f"{op} on a rank-{x.ndim} input (only 2-D spatial, NCHW, is emulated)")


# -- convolution -----------------------------------------------------------------------------------
def _conv_dense(xp: np.ndarray, w: np.ndarray, strides, dil, out_hw) -> np.ndarray:
    """Dense conv of an already padded input: im2col over a strided window view, then one matmul."""
    n, c = xp.shape[:2]
    o, _, kh, kw = w.shape
    (sh, sw), (dh, dw), (ho, wo) = strides, dil, out_hw
    if kh == kw == 1:
        xs = xp[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw]
        return np.matmul(w.reshape(o, c), xs.reshape(n, c, ho * wo)).reshape(n, o, ho, wo)
    win = sliding_window_view(xp, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw, ::dh, ::dw]  # n c ho wo kh kw
    cols = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(n * ho * wo, c * kh * kw)
    out = cols @ w.reshape(o, c * kh * kw).T
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def _conv_depthwise(xp: np.ndarray, w: np.ndarray, strides, dil, out_hw) -> np.ndarray:
    """groups == C_in: one multiply-add per kernel tap over the whole tensor (no im2col copy)."""
    o, _, kh, kw = w.shape
    mult = o // xp.shape[1]
    if mult > 1:  # depth multiplier: output channel j reads input channel j // mult
        xp = np.repeat(xp, mult, axis=1)
    (sh, sw), (dh, dw), (ho, wo) = strides, dil, out_hw
    acc = np.zeros((xp.shape[0], o, ho, wo), dtype=F32)
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
            acc += tap * w[:, 0, i, j][None, :, None, None]
    return acc


def conv(inp):
    x, w = _f(inp["x"]), _f(inp["weight"])
    _need_2d(x, "conv")
    strides = _ints(inp.get("strides", [1, 1]))
    dil = _ints(inp.get("dilations", [1, 1]))
    groups = int(inp.get("groups", 1))
    kh, kw = w.shape[2:]
    k_eff = [(kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1]
    pads = _spatial_pads(inp.get("pad_type", "valid"), inp.get("pad"), x.shape[2:], k_eff, strides)
    xp = np.pad(x, [(0, 0), (0, 0), *pads])
    out_hw = [(xp.shape[2 + i] - k_eff[i]) // strides[i] + 1 for i in range(2)]
    c = x.shape[1]
    if groups == 1:
        y = _conv_dense(xp, w, strides, dil, out_hw)
    elif groups == c and w.shape[1] == 1:
        y = _conv_depthwise(xp, w, strides, dil, out_hw)
    else:
        cg, og = c // groups, w.shape[0] // groups
        y = np.concatenate(
            [_conv_dense(xp[:, g * cg : (g + 1) * cg], w[g * og : (g + 1) * og], strides, dil, out_hw) for g in range(groups)],
            axis=1,
        )
    if "bias" in inp:
        y = y + _f(inp["bias"])[None, :, None, None]
    return y


def conv_transpose(inp):
    """Scatter form: each kernel tap adds x @ w[:, :, i, j] at stride-spaced positions; pads then crop."""
    x, w = _f(inp["x"]), _f(inp["weight"])  # weight: (C_in, C_out / groups, kH, kW)
    _need_2d(x, "conv_transpose")
    strides = _ints(inp.get("strides", [1, 1]))
    dil = _ints(inp.get("dilations", [1, 1]))
    groups = int(inp.get("groups", 1))
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    full = [(h - 1) * strides[0] + (kh - 1) * dil[0] + 1, (wd - 1) * strides[1] + (kw - 1) * dil[1] + 1]
    y = np.zeros((n, og * groups, *full), dtype=F32)
    cg = c // groups
    for g in range(groups):
        xg = x[:, g * cg : (g + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum("nchw,co->nohw", xg, w[g * cg : (g + 1) * cg, :, i, j], optimize=True)
                y[:, g * og : (g + 1) * og, i * dil[0] : i * dil[0] + strides[0] * (h - 1) + 1 : strides[0],
                  j * dil[1] : j * dil[1] + strides[1] * (wd - 1) + 1 : strides[1]] += contrib
    pad_type = str(inp.get("pad_type", "valid")).lower()
    if "output_shape" in inp:
        target = _ints(inp["output_shape"])[-2:]
    elif pad_type == "same":
        target = [h * strides[0], wd * strides[1]]
    else:
        target = None
    if pad_type == "custom":
        p = _ints(inp["pad"])
        y = y[:, :, p[0] : full[0] - p[1], p[2] : full[1] - p[3]]
    elif pad_type == "same":  # MIL: Dout = Din * stride; the cropped excess is split as conv's "same"
        tot = [full[0] - target[0], full[1] - target[1]]
        y = y[:, :, tot[0] // 2 : tot[0] // 2 + target[0], tot[1] // 2 : tot[1] // 2 + target[1]]
    elif pad_type != "valid":
        raise NotImplementedError(f"conv_transpose pad_type {pad_type!r}")
    if target is not None and list(y.shape[2:]) != list(target):
        raise NotImplementedError(f"conv_transpose output_shape {target} differing from the padded size {list(y.shape[2:])}")
    if "bias" in inp:
        y = y + _f(inp["bias"])[None, :, None, None]
    return y


# -- pooling ---------------------------------------------------------------------------------------
def _pool(inp, kind: str):
    x = _f(inp["x"])
    _need_2d(x, kind)
    k = _ints(inp["kernel_sizes"])
    s = _ints(inp.get("strides", [1, 1]))
    pads = _spatial_pads(inp["pad_type"], inp.get("pad"), x.shape[2:], k, s)
    ceil_mode = bool(inp.get("ceil_mode", False))
    out_hw = []
    for i in range(2):
        span = x.shape[2 + i] + pads[i][0] + pads[i][1] - k[i]
        o = (-(-span // s[i]) if ceil_mode else span // s[i]) + 1
        if ceil_mode and (o - 1) * s[i] >= x.shape[2 + i] + pads[i][0]:  # last window starts in padding
            o -= 1
        out_hw.append(o)
    # ceil mode: extra cells past the padded input; they never count (torch and MIL agree).
    extra = [max(0, (out_hw[i] - 1) * s[i] + k[i] - (x.shape[2 + i] + pads[i][0] + pads[i][1])) for i in range(2)]
    fill = -np.inf if kind == "max_pool" else 0.0
    xp = np.pad(x, [(0, 0), (0, 0), (pads[0][0], pads[0][1] + extra[0]), (pads[1][0], pads[1][1] + extra[1])],
                constant_values=fill)
    win = sliding_window_view(xp, k, axis=(2, 3))[:, :, : s[0] * (out_hw[0] - 1) + 1 : s[0], : s[1] * (out_hw[1] - 1) + 1 : s[1]]
    if kind == "max_pool":
        return win.max(axis=(4, 5))
    # Divisor: taps on the input (exclude_padding_from_average) or on input + explicit padding.
    ones = np.zeros(xp.shape[2:], dtype=F32)
    if inp.get("exclude_padding_from_average", False):
        ones[pads[0][0] : pads[0][0] + x.shape[2], pads[1][0] : pads[1][0] + x.shape[3]] = 1
    else:
        ones[: xp.shape[2] - extra[0], : xp.shape[3] - extra[1]] = 1
    count = sliding_window_view(ones, k)[: s[0] * (out_hw[0] - 1) + 1 : s[0], : s[1] * (out_hw[1] - 1) + 1 : s[1]].sum(axis=(2, 3))
    return win.sum(axis=(4, 5)) / count


# -- resampling ------------------------------------------------------------------------------------
def _grid(n_in: int, n_out: int, mode: str) -> np.ndarray:
    """Source coordinate of each output pixel, per the grids in the upsample/resize_bilinear docs."""
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            g = np.full(1, (n_in - 1) / 2.0 if mode == "ALIGN_CORNERS" else 0.0)
        else:
            g = i * (n_in - 1) / (n_out - 1)
    elif mode == "DEFAULT":
        g = i * ((n_in - n_in / n_out) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    elif mode == "UNALIGN_CORNERS":
        g = (i + 0.5) * (n_in / n_out) - 0.5
    elif mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        g = 0.5 * delta + i * delta
    elif mode == "ASYMMETRIC":  # upsample_bilinear with align_corners=False, half_pixel_centers=False
        g = i * (n_in / n_out)
    else:
        raise NotImplementedError(f"sampling_mode {mode!r}")
    return np.clip(g, 0, n_in - 1)


def _lerp_axis(x: np.ndarray, coords: np.ndarray, axis: int) -> np.ndarray:
    i0 = np.floor(coords).astype(np.int64)
    i1 = np.minimum(i0 + 1, x.shape[axis] - 1)
    shape = [1] * x.ndim
    shape[axis] = -1
    t = (coords - i0).astype(F32).reshape(shape)
    a, b = np.take(x, i0, axis=axis), np.take(x, i1, axis=axis)
    return a * (1 - t) + b * t


def _bilinear(x, out_hw, mode_h, mode_w=None):
    x = _f(x)
    y = _lerp_axis(x, _grid(x.shape[-2], out_hw[0], mode_h), x.ndim - 2)
    return _lerp_axis(y, _grid(x.shape[-1], out_hw[1], mode_w or mode_h), x.ndim - 1)


def upsample_bilinear(inp):
    x = inp["x"]
    sh, sw = float(inp.get("scale_factor_height", 1)), float(inp.get("scale_factor_width", 1))
    out_hw = [int(math.floor(x.shape[-2] * sh)), int(math.floor(x.shape[-1] * sw))]
    ac = bool(inp.get("align_corners", True))
    half = bool(inp.get("half_pixel_centers", not ac))  # iOS16 parameter; defaults to !align_corners
    mode = "STRICT_ALIGN_CORNERS" if ac else ("UNALIGN_CORNERS" if half else "ASYMMETRIC")
    return _bilinear(x, out_hw, mode)


def resize_bilinear(inp):
    out_hw = [int(inp.get("target_size_height", 1)), int(inp.get("target_size_width", 1))]
    return _bilinear(inp["x"], out_hw, str(inp.get("sampling_mode", "DEFAULT")))


def _nearest(x, out_hw):
    """Output pixel i reads input floor(i * in / out) (torch 'nearest'; exact for integer factors)."""
    x = np.asarray(x)
    ih = np.minimum((np.arange(out_hw[0]) * x.shape[-2]) // out_hw[0], x.shape[-2] - 1)
    iw = np.minimum((np.arange(out_hw[1]) * x.shape[-1]) // out_hw[1], x.shape[-1] - 1)
    return x[..., ih, :][..., iw]


def upsample_nearest_neighbor(inp):
    x = inp["x"]
    sh, sw = float(inp.get("scale_factor_height", 1)), float(inp.get("scale_factor_width", 1))
    return _nearest(x, [int(math.floor(x.shape[-2] * sh)), int(math.floor(x.shape[-1] * sw))])


def resize_nearest_neighbor(inp):
    return _nearest(inp["x"], [int(inp["target_size_height"]), int(inp["target_size_width"])])


# -- elementwise activations -----------------------------------------------------------------------
def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz & Stegun 7.1.26 (|error| <= 1.5e-7, below float32 resolution of gelu's output)."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


def _sigmoid(x):
    x = _f(x)
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # overflow-free form of 1 / (1 + exp(-x))


def gelu(inp):
    x, mode = _f(inp["x"]), str(inp.get("mode", "EXACT"))
    if mode == "EXACT":
        return 0.5 * x * (1.0 + _erf(x / F32(math.sqrt(2.0))))
    if mode == "TANH_APPROXIMATION":
        return 0.5 * x * (1.0 + np.tanh(F32(math.sqrt(2.0 / math.pi)) * (x + F32(0.044715) * x**3)))
    if mode == "SIGMOID_APPROXIMATION":
        return x * _sigmoid(F32(1.702) * x)
    raise NotImplementedError(f"gelu mode {mode!r}")


def _softmax(inp):
    x = _f(inp["x"])
    axis = int(inp.get("axis", -1))
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# -- reductions, shapes ----------------------------------------------------------------------------
def _reduce(fn):
    def run(inp):
        x = _f(inp["x"])
        axes = tuple(_ints(inp["axes"])) if "axes" in inp else None
        return fn(x, axis=axes, keepdims=bool(inp.get("keep_dims", False)))

    return run


def reshape(inp):
    x = np.asarray(inp["x"])
    shape = _ints(inp["shape"])
    if len(shape) == x.ndim:  # MIL: 0 inherits the input's dimension when ranks match
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def slice_by_index(inp):
    x = np.asarray(inp["x"])
    r = x.ndim
    begin, end = _ints(inp["begin"]), _ints(inp["end"])
    stride = _ints(inp.get("stride", [1] * r))
    bm = np.asarray(inp.get("begin_mask", [False] * r)).reshape(-1)
    em = np.asarray(inp.get("end_mask", [False] * r)).reshape(-1)
    sq = np.asarray(inp.get("squeeze_mask", [False] * r)).reshape(-1)
    idx = []
    for i in range(r):
        if sq[i]:
            idx.append(begin[i])
        else:
            idx.append(slice(None if bm[i] else begin[i], None if em[i] else end[i], stride[i]))
    return x[tuple(idx)]


def pad(inp):
    x = _f(inp["x"])
    p = _ints(inp["pad"])
    lead = x.ndim - len(p) // 2
    widths = [(0, 0)] * lead + [(p[2 * i], p[2 * i + 1]) for i in range(len(p) // 2)]
    mode = str(inp.get("mode", "constant"))
    if mode == "constant":
        return np.pad(x, widths, constant_values=float(inp.get("constant_val", 0.0)))
    if mode in ("reflect", "replicate"):
        return np.pad(x, widths, mode="reflect" if mode == "reflect" else "edge")
    raise NotImplementedError(f"pad mode {mode!r}")


def crop(inp):
    """Remove crop_height = [top, bottom] rows and crop_width = [left, right] columns (last two axes)."""
    x = np.asarray(inp["x"])
    (t, b), (l, r) = _ints(inp["crop_height"]), _ints(inp["crop_width"])
    return x[..., t : x.shape[-2] - b, l : x.shape[-1] - r]


def concat(inp):
    vals = [np.asarray(v) for v in inp["values"]]
    axis = int(inp["axis"])
    if bool(inp.get("interleave", False)):
        ax = axis % vals[0].ndim
        st = np.stack(vals, axis=ax + 1)
        return st.reshape(*vals[0].shape[:ax], -1, *vals[0].shape[ax + 1 :])
    return np.concatenate(vals, axis=axis)


def squeeze(inp):
    x = np.asarray(inp["x"])
    return np.squeeze(x, axis=tuple(_ints(inp["axes"]))) if "axes" in inp else np.squeeze(x)


def expand_dims(inp):
    x = np.asarray(inp["x"])
    axes = _ints(inp["axes"])
    out_rank = x.ndim + len(axes)
    for a in sorted(a % out_rank for a in axes):
        x = np.expand_dims(x, a)
    return x


def matmul(inp):
    x, y = _f(inp["x"]), _f(inp["y"])
    if bool(inp.get("transpose_x", False)):
        x = np.swapaxes(x, -1, -2)
    if bool(inp.get("transpose_y", False)):
        y = np.swapaxes(y, -1, -2)
    return np.matmul(x, y)


def linear(inp):
    y = _f(inp["x"]) @ _f(inp["weight"]).T
    return y + _f(inp["bias"]) if "bias" in inp else y


def batch_norm(inp):
    x = _f(inp["x"])
    shape = [1, -1] + [1] * (x.ndim - 2)
    inv = 1.0 / np.sqrt(_f(inp["variance"]) + F32(inp.get("epsilon", 1e-5)))
    y = (x - _f(inp["mean"]).reshape(shape)) * inv.reshape(shape)
    if "gamma" in inp:
        y = y * _f(inp["gamma"]).reshape(shape)
    if "beta" in inp:
        y = y + _f(inp["beta"]).reshape(shape)
    return y


def layer_norm(inp):
    x = _f(inp["x"])
    axes = tuple(_ints(inp["axes"])) if "axes" in inp else tuple(range(x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + F32(inp.get("epsilon", 1e-5)))
    if "gamma" in inp:
        y = y * _f(inp["gamma"])
    return y + _f(inp["beta"]) if "beta" in inp else y


_NP_DTYPES = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "int16": np.int16, "int8": np.int8,
              "uint8": np.uint8, "uint16": np.uint16, "bool": np.bool_, "int64": np.int64}


def cast(inp):
    dt = str(inp["dtype"])
    if dt not in _NP_DTYPES:
        raise NotImplementedError(f"cast to {dt!r}")
    return np.asarray(inp["x"]).astype(_NP_DTYPES[dt])


# -- compressed weights (constexpr_*): evaluated once at load, as Core ML does -------------------
def _per_axis(v, rank: int, axis: int) -> np.ndarray:
    v = _f(v)
    if v.ndim == 0:
        return v
    shape = [1] * rank
    shape[axis] = -1
    return v.reshape(shape)


def constexpr_affine_dequantize(inp):
    """iOS16: scale * (quantized_data - zero_point), scale/zero_point scalar or a vector along axis."""
    q = np.asarray(inp["quantized_data"]).astype(F32)
    axis = int(inp["axis"]) % q.ndim
    return _per_axis(inp["scale"], q.ndim, axis) * (q - _per_axis(np.asarray(inp["zero_point"]).astype(F32), q.ndim, axis))


def _blockwise(v, shape) -> np.ndarray:
    """Repeat a per-block parameter to the data's shape: block_size[i] = data.shape[i] / v.shape[i]."""
    v = np.asarray(v).astype(F32)
    for ax, (n, m) in enumerate(zip(shape, v.shape)):
        if n != m:
            v = np.repeat(v, n // m, axis=ax)
    return v


def constexpr_blockwise_shift_scale(inp):
    """iOS18: output = scale * (data - offset), scale and offset broadcast block-wise."""
    data = np.asarray(inp["data"]).astype(F32)
    off = _blockwise(inp["offset"], data.shape) if "offset" in inp else F32(0)
    return _blockwise(inp["scale"], data.shape) * (data - off)


def _unpack_lsb_first(packed: np.ndarray, nbits: int, count: int) -> np.ndarray:
    """iOS16 LUT indices: bit fields packed one byte at a time starting at the least significant bit."""
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), bitorder="little")[: nbits * count]
    return (bits.reshape(count, nbits).astype(np.int64) << np.arange(nbits)).sum(axis=1)


def constexpr_lut_to_dense(inp):
    if "shape" in inp:  # iOS16 form: packed uint8 indices, one LUT vector, explicit shape
        lut = np.asarray(inp["lut"])
        shape = _ints(inp["shape"])
        idx = _unpack_lsb_first(inp["indices"], int(round(math.log2(lut.size))), int(np.prod(shape)))
        return lut[idx].reshape(shape)
    # iOS18 form: indices hold one index per element (the loader unpacks sub-byte types);
    # lut rank = rank(indices) + 2 = per-group tables x (palette size, vector size).
    idx = np.asarray(inp["indices"]).astype(np.int64)
    lut = np.asarray(inp["lut"])
    if lut.shape[-1] != 1:
        raise NotImplementedError("constexpr_lut_to_dense with vector palettization (VECTOR_SIZE > 1)")
    tables = lut[..., 0]  # group dims x palette
    group = [n // g for n, g in zip(idx.shape, tables.shape[:-1])]
    gidx = np.meshgrid(*[np.arange(n) // b for n, b in zip(idx.shape, group)], indexing="ij")
    return tables[(*gidx, idx)]


def constexpr_cast(inp):
    return np.asarray(inp["source_val"]).astype(_NP_DTYPES[str(inp["output_dtype"])])


def _binary(fn):
    return lambda inp: fn(_f(inp["x"]), _f(inp["y"]))


def _unary(fn):
    return lambda inp: fn(_f(inp["x"]))


OPS = {
    "conv": conv,
    "conv_transpose": conv_transpose,
    "avg_pool": lambda inp: _pool(inp, "avg_pool"),
    "max_pool": lambda inp: _pool(inp, "max_pool"),
    "batch_norm": batch_norm,
    "layer_norm": layer_norm,
    "linear": linear,
    "matmul": matmul,
    # activations
    "relu": _unary(lambda x: np.maximum(x, 0)),
    "relu6": _unary(lambda x: np.clip(x, 0, 6)),
    "clip": lambda inp: np.minimum(np.maximum(_f(inp["x"]), F32(inp["alpha"])), F32(inp["beta"])),
    "leaky_relu": lambda inp: np.where(_f(inp["x"]) >= 0, _f(inp["x"]), F32(inp["alpha"]) * _f(inp["x"])),
    "thresholded_relu": lambda inp: np.where(_f(inp["x"]) > F32(inp.get("alpha", 1.0)), _f(inp["x"]), F32(0)),
    "sigmoid": _unary(_sigmoid),
    "sigmoid_hard": lambda inp: np.clip(F32(inp["alpha"]) * _f(inp["x"]) + F32(inp["beta"]), 0, 1),
    "silu": _unary(lambda x: x * _sigmoid(x)),
    "gelu": gelu,
    "tanh": _unary(np.tanh),
    "softmax": _softmax,
    # elementwise math
    "add": _binary(np.add),
    "sub": _binary(np.subtract),
    "mul": _binary(np.multiply),
    "real_div": _binary(np.divide),
    "maximum": _binary(np.maximum),
    "minimum": _binary(np.minimum),
    "pow": _binary(np.power),
    "sqrt": _unary(np.sqrt),
    "rsqrt": lambda inp: 1.0 / np.sqrt(_f(inp["x"]) + F32(inp.get("epsilon", 1e-12))),
    "exp": _unary(np.exp),
    "abs": _unary(np.abs),
    # reductions
    "reduce_mean": _reduce(np.mean),
    "reduce_sum": _reduce(np.sum),
    "reduce_max": _reduce(np.max),
    "reduce_min": _reduce(np.min),
    # shapes and resampling
    "reshape": reshape,
    "transpose": lambda inp: np.transpose(np.asarray(inp["x"]), _ints(inp["perm"])),
    "squeeze": squeeze,
    "expand_dims": expand_dims,
    "concat": concat,
    "slice_by_index": slice_by_index,
    "crop": crop,
    "pad": pad,
    "shape": lambda inp: np.asarray(np.shape(inp["x"]), dtype=np.int32),
    "cast": cast,
    "identity": lambda inp: np.asarray(inp["x"]),
    "upsample_bilinear": upsample_bilinear,
    "resize_bilinear": resize_bilinear,
    "upsample_nearest_neighbor": upsample_nearest_neighbor,
    "resize_nearest_neighbor": resize_nearest_neighbor,
    # compressed constants
    "constexpr_affine_dequantize": constexpr_affine_dequantize,
    "constexpr_blockwise_shift_scale": constexpr_blockwise_shift_scale,
    "constexpr_lut_to_dense": constexpr_lut_to_dense,
    "constexpr_cast": constexpr_cast,
}
