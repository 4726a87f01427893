"""OpenVINO target: the checked fp32 ONNX graph -> OpenVINO's ONNX frontend -> rt_info -> ``save_model``.

Going through the ONNX export keeps one tracing path for every target that can take it (the same
named input/outputs, the same raw-input and dynamic-batch handling). The graph is read with
``Core.read_model`` - the ONNX frontend ``openvino.convert_model`` also uses - because convert_model's
Python tooling adds 1-5 s per call here (telemetry, an empty preprocessing build) for the same model;
``save_model`` applies the same offline transformations either way, and parity checks the result. ``compress_to_fp16`` is set only for ``fp16`` (OpenVINO's own default is True,
which would silently turn an "fp32" export into fp16 weights). int8 hands the fp32 IR to
``openvino_int8.quantize_openvino`` (NNCF, beside this module).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ...errors import ExportError
from ...runtime.artifact import encode_metadata
from ...runtime.backends.openvino import RT_INFO_SECTION
from ...runtime.formats import FORMATS
from .base import ExportSettings, Int8Settings, Target, register_target
from .onnx import export_onnx_fp32
from .openvino_int8 import quantize_openvino


def set_metadata(ov_model, metadata: dict[str, str]) -> None:
    for key, value in metadata.items():
        ov_model.set_rt_info(value, [RT_INFO_SECTION, key])


def save_ir(model, settings: ExportSettings, xml: Path, metadata: dict[str, str], compress_to_fp16: bool) -> Path:
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="dpiqa-ov-") as tmp:
        onnx_path = export_onnx_fp32(model, settings, Path(tmp) / "model.onnx", metadata)
        try:
            ov_model = ov.Core().read_model(str(onnx_path))
        except Exception as exc:
            raise ExportError(f"{xml.name}: OpenVINO's ONNX frontend failed ({str(exc).strip().splitlines()[0]})") from None
    set_metadata(ov_model, metadata)
    ov.save_model(ov_model, str(xml), compress_to_fp16=compress_to_fp16)
    return xml


def convert_openvino(model, settings: ExportSettings, dest_dir: Path, metadata: dict[str, str], calib=None,
                     int8: Int8Settings | None = None) -> tuple[Path, dict[str, Any]]:
    """Write ``dest_dir/model.xml`` + ``.bin`` at ``settings.precision``; return (path, info)."""
    dest = Path(dest_dir) / FORMATS["openvino"].artifact
    info: dict[str, Any] = {"converter": "OpenVINO ONNX frontend (Core.read_model of the fp32 ONNX export) + save_model"}
    if settings.precision in ("fp32", "fp16"):
        save_ir(model, settings, dest, metadata, compress_to_fp16=settings.precision == "fp16")
        info["compress_to_fp16"] = settings.precision == "fp16"
    elif settings.precision == "int8":
        with tempfile.TemporaryDirectory(prefix="dpiqa-ov-fp32-") as tmp:
            fp32 = save_ir(model, settings, Path(tmp) / "model.xml", {**metadata, "precision": "fp32"}, False)
            int8 = int8 or Int8Settings()
            info["quantization"] = quantize_openvino(fp32, dest, calib, val=int8.val, **int8.options)
        # the precision chosen for the ops NNCF left float travels in the IR; the runtime loader applies it
        info["runtime_options"] = info["quantization"]["float_rest"]["runtime_options"]
        # and the weight range (7-bit: NNCF's overflow fix on every layer, openvino_int8.OVERFLOW_FIX)
        info["int8_weights"] = info["quantization"]["weight_range"]
        _restamp(dest, {**metadata, **encode_metadata({"runtime_options": info["runtime_options"],
                                                       "int8_weights": info["int8_weights"]})})
    else:
        raise ExportError(f"openvino: unknown precision {settings.precision!r}")
    return dest, info


def _restamp(xml: Path, metadata: dict[str, str]) -> None:
    """Make sure the int8 IR carries our metadata (precision int8), rewriting it in place."""
    import openvino as ov

    ov_model = ov.Core().read_model(str(xml))
    set_metadata(ov_model, metadata)
    with tempfile.TemporaryDirectory(prefix="dpiqa-ov-int8-", dir=xml.parent) as tmp:
        tmp_xml = Path(tmp) / xml.name
        ov.save_model(ov_model, str(tmp_xml), compress_to_fp16=False)
        del ov_model
        tmp_xml.with_suffix(".bin").replace(xml.with_suffix(".bin"))
        tmp_xml.replace(xml)


@register_target
class OpenVINOTarget(Target):
    """``--target openvino``: the fp32 ONNX export through OpenVINO's ONNX frontend; int8 = NNCF
    (``openvino_int8``), accuracy-controlled on SRCC when asked."""

    name = "openvino"
    own_options = ("raw_input", "dynamic_batch")
    requires = ("onnx", "openvino")
    requires_int8 = ("nncf",)
    extra = "openvino"
    onnx_source = True

    def convert(self, model, settings: ExportSettings, dest_dir: Path, metadata: dict[str, str], calib=None,
                int8: Int8Settings | None = None) -> tuple[Path, dict[str, Any]]:
        return convert_openvino(model, settings, dest_dir, metadata, calib=calib, int8=int8)

    def prepare_int8(self, int8: Int8Settings) -> Int8Settings:
        """With accuracy control and labelled val images, NNCF's accuracy-controlled quantization gets the
        SRCC budget as its maximum drop (``openvino_int8``)."""
        if int8.accuracy_control and int8.val is not None and "max_srcc_drop" not in int8.options:
            return int8.with_options(max_srcc_drop=int8.max_srcc_drop)
        return int8
