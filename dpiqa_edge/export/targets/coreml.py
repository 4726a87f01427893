"""CoreML target: traced student -> ``coremltools.convert`` -> ML program ``.mlpackage``.

* ``compute_precision`` FLOAT32 for fp32 and FLOAT16 for fp16 (coremltools' own default is FLOAT16:
  an "fp32" export must ask for FLOAT32). On a device CoreML runs ML programs on the GPU / Neural
  Engine in fp16 by default whatever is stored; export.json says so.
* ``image_input``: the input is an RGB ``ImageType`` with scale 1/255, so an iOS app hands a camera
  pixel buffer straight in; otherwise a float32 tensor ``1 x 3 x H x W`` in 0..1. Batch is 1.
* ``min_deployment_target``: any ``coremltools.target`` name at or above iOS15 / macOS12 (ML programs).
* ``compression`` (int8 | palettize8 | palettize6 | palettize4): weight-only compression of the fp32 /
  fp16 package by ``coreml_compress`` (coremltools.optimize); activations stay float.
* ``int8`` precision: W8A8 via ``coreml_compress`` mode ``w8a8``, whose activation calibration
  runs ``MLModel.predict`` and so needs macOS (elsewhere it fails with a message saying so).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

from ...errors import ConfigError, ExportError
from ...runtime.formats import FORMATS
from .base import ExportSettings, Int8Settings, Target, register_target
from .coreml_compress import compress_coreml

#: oldest targets that support ML programs
_MIN_TARGETS = {"iOS": 15, "macOS": 12, "watchOS": 8, "tvOS": 15}


def deployment_target(name: str):
    """``"iOS16"`` -> ``coremltools.target.iOS16``; unknown or pre-ML-program names are a ConfigError."""
    import coremltools as ct

    valid = [t.name for t in ct.target if any(t.name.startswith(p) and int(t.name[len(p):]) >= v
                                               for p, v in _MIN_TARGETS.items() if t.name[len(p):].isdigit())]
    if name not in valid:
        raise ConfigError(f"coreml: --min-deployment-target {name!r} unknown or too old for ML programs; valid: {', '.join(valid)}")
    return getattr(ct.target, name)


def save_mlpackage(model, settings: ExportSettings, path: Path, metadata: dict[str, str], precision: str) -> Path:
    """Trace, convert and save one ML program at ``precision`` (fp32 | fp16) with ``metadata``."""
    import coremltools as ct
    import torch

    from ..graph import ExportWrapper, example_input

    # 1. Trace the wrapped model at batch 1.
    size = settings.input_size
    wrapper = ExportWrapper(model, raw_input=False).eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        # check_trace off: it re-runs the model to compare traces (seconds); parity checks the result.
        traced = torch.jit.trace(wrapper, example_input(size, raw_input=False), check_trace=False)
    # 2. Convert to an ML program.
    if settings.image_input:
        inputs = [ct.ImageType(name="image", shape=(1, 3, size, size), scale=1.0 / 255.0,
                               color_layout=ct.colorlayout.RGB)]
    else:
        inputs = [ct.TensorType(name="image", shape=(1, 3, size, size))]
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ml = ct.convert(traced, inputs=inputs,
                            outputs=[ct.TensorType(name="score"), ct.TensorType(name="quality_map")],
                            convert_to="mlprogram", compute_precision=compute,
                            minimum_deployment_target=deployment_target(settings.min_deployment_target))
    except ConfigError:
        raise
    except Exception as exc:
        raise ExportError(f"{path.name}: coremltools.convert failed ({str(exc).strip().splitlines()[0]})") from None
    # 3. Metadata and descriptions, then save.
    set_metadata(ml, metadata)
    ml.save(str(path))
    return path


def set_metadata(ml, metadata: dict[str, str]) -> None:
    ml.user_defined_metadata.update(metadata)
    ml.short_description = "DP-IQA student: blind image quality, score 0-100 (higher = better) + 8-channel quality map"
    ml.author = "dpiqa-edge"
    ml.input_description["image"] = ("RGB image (camera pixel buffer)" if metadata.get("image_input") == "true"
                                     else "float32 1x3xHxW RGB in 0..1 (resized, aspect not kept)")
    ml.output_description["score"] = "quality on 0-100, higher = better"
    ml.output_description["quality_map"] = "8 x m x m quality feature map (where the model sees problems)"


def convert_coreml(model, settings: ExportSettings, dest_dir: Path, metadata: dict[str, str], calib=None,
                   int8: Int8Settings | None = None) -> tuple[Path, dict[str, Any]]:
    """Write ``dest_dir/model.mlpackage`` at ``settings.precision``; return (path, info)."""
    dest = Path(dest_dir) / FORMATS["coreml"].artifact
    info: dict[str, Any] = {
        "converter": "coremltools.convert (traced TorchScript) -> mlprogram",
        "minimum_deployment_target": settings.min_deployment_target,
        "input": "ImageType RGB, scale 1/255" if settings.image_input else "TensorType float32 1x3xHxW in 0..1",
        "on_device_precision": "CoreML runs ML programs in fp16 on the GPU / Neural Engine by default "
                               "(compute units ALL), whatever precision is stored; CPU_ONLY keeps fp32",
    }
    if settings.precision in ("fp32", "fp16") and not settings.compression:
        save_mlpackage(model, settings, dest, metadata, settings.precision)
        info["compute_precision"] = "FLOAT32" if settings.precision == "fp32" else "FLOAT16"
    elif settings.precision in ("fp32", "fp16", "int8"):
        float_precision = "fp32" if settings.precision == "int8" else settings.precision
        opts = dict((int8 or Int8Settings()).options)
        if settings.precision == "int8":  # W8A8: calibration samples as the program's input dict
            opts.update(mode="w8a8", calib=[{"image": c[None] if c.ndim == 3 else c} for c in (calib or [])])
        else:
            opts.update(mode=settings.compression)
        with tempfile.TemporaryDirectory(prefix="dpiqa-coreml-float-") as tmp:
            src = save_mlpackage(model, settings, Path(tmp) / "model.mlpackage", metadata, float_precision)
            info["compute_precision"] = "FLOAT32" if float_precision == "fp32" else "FLOAT16"
            info["compression"] = compress_coreml(src, dest, **opts)
        _restamp(dest, metadata)
    else:
        raise ExportError(f"coreml: unknown precision {settings.precision!r}")
    return dest, info


def _restamp(path: Path, metadata: dict[str, str]) -> None:
    """Make sure a compressed package carries our metadata (precision int8)."""
    import coremltools as ct

    ml = ct.models.MLModel(str(path), skip_model_load=True)
    if all(ml.user_defined_metadata.get(k) == v for k, v in metadata.items()):
        return
    with tempfile.TemporaryDirectory(prefix="dpiqa-coreml-int8-", dir=path.parent) as tmp:
        set_metadata(ml, metadata)
        out = Path(tmp) / path.name
        ml.save(str(out))
        import shutil

        shutil.rmtree(path)
        out.replace(path)


@register_target
class CoreMLTarget(Target):
    """``--target coreml``: coremltools' ML program from the traced torch student; W8A8 and weight-only
    compression by ``coreml_compress``."""

    name = "coreml"
    own_options = ("image_input", "min_deployment_target", "compression")
    requires = ("torch", "coremltools")
    extra = "train,coreml"

    def convert(self, model, settings: ExportSettings, dest_dir: Path, metadata: dict[str, str], calib=None,
                int8: Int8Settings | None = None) -> tuple[Path, dict[str, Any]]:
        return convert_coreml(model, settings, dest_dir, metadata, calib=calib, int8=int8)

    def check_source(self, model, model_dir: Path) -> None:
        """CoreML converts from torch weights: an ONNX-only import (the authors' graph) cannot be converted."""
        if getattr(model, "onnx_only", False):
            raise ConfigError(f"{model_dir}: --target coreml converts from torch weights, and this import is the "
                              f"authors' ONNX graph only ({model.reason}); use --target onnx or openvino")
