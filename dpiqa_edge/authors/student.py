"""The authors' student -> a ``paper`` student folder (config.json + model.safetensors).

Three released forms, one result:

* a state dict (``torch.save(model.state_dict())``, or safetensors): keys ``base_model.*``,
  ``conv_transpose.*``, ``fc1/2/3.*``; renamed by four prefixes (:data:`RENAME`) and loaded *strictly*
  into :func:`~dpiqa_edge.student.build_student` ``paper`` - whose module tree is theirs;
* their whole-module pickle (``koniq_student_model_pack.pth``), read through the allowlist
  (``authors.pickles``): only its tensors are used, none of its code;
* their ONNX file: weights read back by order and shape (``authors.onnx_map``), then *verified* - the
  rebuilt student and onnxruntime on the ONNX must agree on real photos - or, when that is impossible,
  the ONNX itself becomes an ONNX-only student that exports to ONNX/OpenVINO (not CoreML).

Which EfficientNet size (b0-b7; theirs is b7) comes from the weights' shapes; the map grid and head width
from ``fc1``; the input size is 8 x the map side (theirs: 512 -> 16 x 16 features -> 32 -> 64) unless the
ONNX graph states it or ``input_size`` is given.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from ..student import StudentConfig, build_student
from .onnx_map import MappingError, assign_units, input_dims, io_names, read_units

RENAME = (("base_model.", "backbone.model."), ("conv_transpose.", "map_branch."),
          ("fc1.", "head.fc1."), ("fc2.", "head.fc2."), ("fc3.", "head.fc3."))
#: verification of a rebuilt ONNX student: score on 0-100, map relative to max(1, its peak) (as export parity)
VERIFY_SCORE, VERIFY_MAP_REL = 1e-2, 1e-3


def is_student_state(state: dict) -> bool:
    return any(k.startswith("base_model.features.") for k in state) and "fc1.weight" in state


@functools.lru_cache(maxsize=None)
def _variant_shapes(variant: str) -> dict[str, tuple]:
    """Shapes of a torchvision EfficientNet's ``features`` state, built on the meta device (no memory)."""
    import torch
    from torchvision import models

    with torch.device("meta"):
        net = getattr(models, f"efficientnet_{variant}")(weights=None)
    return {k: tuple(v.shape) for k, v in net.features.state_dict().items()}


def detect_variant(shapes: dict[str, tuple], source) -> str:
    """The torchvision EfficientNet size whose ``features`` have exactly these shapes."""
    for variant in (f"b{i}" for i in (7, 0, 1, 2, 3, 4, 5, 6)):
        if _variant_shapes(variant) == shapes:
            return variant
    raise ModelLoadError(f"{source}: its base_model is not a torchvision EfficientNet b0-b7 "
                         f"({len(shapes)} feature tensors; the authors' student is efficientnet_b7)")


def score_mapping(label_range: tuple[float, float]) -> tuple[float, float]:
    """(scale, offset) from the authors' raw output r = label / 100, label in ``label_range``, to 0-100."""
    lo, hi = label_range
    if not hi > lo:
        raise ModelLoadError(f"label range {lo},{hi}: the high end must exceed the low end")
    return 100.0 * 100.0 / (hi - lo), 0.0 - 100.0 * lo / (hi - lo)


def config_for(variant: str, fc1_shape, input_size: int | None, label_range):
    """The paper StudentConfig that holds the authors' student with these shapes."""
    hidden, flat = int(fc1_shape[0]), int(fc1_shape[1])
    side = math.isqrt(flat // 8)
    if 8 * side * side != flat:
        raise ModelLoadError(f"fc1 takes {flat} inputs, not 8 x m x m: not the authors' quality-map head")
    scale, offset = score_mapping(label_range)
    return StudentConfig(name="paper", variant=variant, input_size=int(input_size or 8 * side), map_size=side,
                         head="mlp", head_hidden=hidden, map_branch="deconv", map_resize="nearest", normalize="none",
                         pretrained=False, score_scale=scale, score_offset=offset)


def from_state(state: dict, source, input_size: int | None, label_range):
    """(paper student in eval mode, its config) from the authors' state dict; strict load."""
    if not is_student_state(state):
        raise ModelLoadError(f"{source}: not the authors' student (no base_model.features.* / fc1 keys)")
    prefix = "base_model.features."
    variant = detect_variant({k[len(prefix):]: tuple(v.shape) for k, v in state.items() if k.startswith(prefix)}, source)
    cfg = config_for(variant, state["fc1.weight"].shape, input_size, label_range)
    model = build_student(cfg)
    renamed = {}
    for key, value in state.items():
        new = next((to + key[len(frm):] for frm, to in RENAME if key.startswith(frm)), None)
        if new is None:
            raise ModelLoadError(f"{source}: unexpected key {key!r} (the authors' student has base_model, "
                                 "conv_transpose, fc1, fc2, fc3 only)")
        renamed[new] = value
    try:
        model.load_state_dict(renamed, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{source}: weights do not fit the paper student ({' '.join(str(exc).split())[:200]})") from None
    return model.eval(), cfg


def from_onnx(path: Path, input_size: int | None, label_range, photos_at):
    """(model, cfg, notes) rebuilt from the ONNX weights and verified with onnxruntime on ``photos_at(size)``
    (real photos, float NCHW at the model's size); raises ``onnx_map.MappingError`` when that is impossible."""
    import onnx

    proto = onnx.load(str(path))
    inp, _, _ = io_names(proto)
    dims = input_dims(proto, inp)
    units = read_units(proto)
    linears = [u for u in units if u.kind == "linear"]
    if len(linears) != 3 or not any(u.kind == "conv_transpose" for u in units):
        raise MappingError(f"{len(linears)} linear layers and no/one ConvTranspose: not the authors' head")
    graph_size = dims[-1] if len(dims) == 4 and isinstance(dims[-1], int) and dims[-1] > 0 else None
    fc1 = linears[0].weight.shape
    cfg, model = None, None
    for variant in (f"b{i}" for i in (7, 0, 1, 2, 3, 4, 5, 6)):
        trial = config_for(variant, fc1, input_size or graph_size, label_range)
        conv_shapes = [tuple(u.weight.shape) for u in units if u.kind == "conv"]
        expected = [s for k, s in _variant_shapes(variant).items() if len(s) == 4]
        if conv_shapes == expected:
            cfg, model = trial, build_student(trial).eval()
            break
    if model is None:
        raise MappingError(f"its {sum(u.kind == 'conv' for u in units)} convolutions match no torchvision "
                           "EfficientNet b0-b7")
    counts = assign_units(model, units)
    check = verify(model, path, photos_at(cfg.input_size))
    if not check["passed"]:
        raise MappingError(f"rebuilt weights disagree with onnxruntime on real photos (score max diff "
                           f"{check['score_max_abs_diff']:.3g}, map {check['map_max_rel_diff']:.3g})")
    return model, cfg, {"onnx_mapping": counts, "onnx_verification": check}


def run_onnx(path: Path, x: np.ndarray, wrapped: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(raw score N, map) of an ONNX graph (the authors' own, or our wrapped one), image by image."""
    import onnx
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp, score, fmap = ("image", "score", "quality_map") if wrapped else io_names(onnx.load(str(path), load_external_data=False))
    outs = [sess.run([score, fmap], {inp: x[i:i + 1].astype(np.float32)}) for i in range(len(x))]
    return np.concatenate([o[0].reshape(-1) for o in outs]), np.concatenate([o[1] for o in outs])


def verify(model, path: Path, photos: np.ndarray) -> dict:
    """Rebuilt student vs onnxruntime on the authors' graph, both on the 0-100 scale (clamped as ours)."""
    import torch

    raw, fmap = run_onnx(path, photos)
    ref = np.clip(model.score_scale * raw + model.score_offset, 0.0, 100.0)
    with torch.no_grad():
        got = [model(torch.from_numpy(photos[i:i + 1])) for i in range(len(photos))]
    score = np.concatenate([s.numpy().reshape(-1) for s, _ in got])
    qmap = np.concatenate([q.numpy() for _, q in got])
    s_diff = float(np.max(np.abs(score - ref)))
    m_diff = float(np.max(np.abs(qmap - fmap)) / max(1.0, float(np.max(np.abs(fmap)))))
    return {"n_images": int(len(photos)), "score_max_abs_diff": s_diff, "map_max_rel_diff": m_diff,
            "tolerance": {"score": VERIFY_SCORE, "map_rel": VERIFY_MAP_REL},
            "passed": s_diff <= VERIFY_SCORE and m_diff <= VERIFY_MAP_REL,
            "scores": [round(float(s), 4) for s in score]}
