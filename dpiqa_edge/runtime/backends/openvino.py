"""OpenVINO loader (CPU plugin) with an EXPLICIT inference precision.

On a CPU with AVX-512 BF16 / AMX, OpenVINO executes fp32 models in bf16 unless told otherwise (about
3e-3 error on a 0-100 score, DATA.md), so this loader chooses ``INFERENCE_PRECISION_HINT`` itself:

- fp32 / fp16 artifacts: ``f32`` by default (parity checks and reports need the artifact's own numbers);
  ``bf16`` or ``f16`` only when asked.
- int8 artifacts: the precision their export chose for the ops NNCF left float and recorded in the IR
  (``runtime_options`` ``{"INFERENCE_PRECISION_HINT": "f32"}``: measured per model, ``export.targets.openvino_int8``),
  else the plugin's own default (``default``) - int8 kernels for the quantized ops, the ops left float at
  the CPU's preferred float precision (bf16 where the CPU has it, f32 elsewhere). Either way it is what
  the export's accuracy gate judged (the gate runs the artifact through this loader). An explicit
  ``precision_hint`` overrides both.

What the plugin actually chose is read back from the compiled model and reported in ``precision`` (a
CPU without FP16 support silently takes bf16 for an ``f16`` hint: this says so). An fp16 artifact stores
fp16 weights; the plugin decompresses them and computes at the hint's precision.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ...errors import ModelLoadError
from ..formats import FORMATS
from . import Backend
from ..schema import check_input_shape

#: where the OpenVINO rt_info keys live (``model.set_rt_info(value, [RT_INFO_SECTION, key])``)
RT_INFO_SECTION = "dpiqa_edge"

#: our precision names <-> OpenVINO element type names
_HINTS = {"fp32": "f32", "f32": "f32", "bf16": "bf16", "fp16": "f16", "f16": "f16", "default": None}
_OURS = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


class OpenVINOBackend(Backend):
    """An OpenVINO IR (``model.xml`` + ``model.bin``) compiled for the CPU.

    ``precision`` is the execution precision the plugin reports (``fp32``, ``bf16``, ``fp16``);
    ``stored_precision`` is the artifact's (``fp32``, ``fp16``, ``int8``).
    """

    name = "openvino"

    @staticmethod
    def read_metadata(file: Path) -> dict[str, str]:
        # The IR is XML ending in <rt_info>...<dpiqa_edge><key value=".."/></dpiqa_edge></rt_info></net>.
        # Only that block is parsed (the whole graph takes ~1 s for a small CNN), with the standard
        # library, so metadata stays readable without the OpenVINO runtime.
        for suffix in FORMATS["openvino"].companions:
            if not file.with_suffix(suffix).is_file():
                raise ModelLoadError(f"{file}: weights file {file.with_suffix(suffix).name} is missing")
        text = file.read_text(encoding="utf-8")
        if not text.rstrip().endswith("</net>"):
            raise ModelLoadError(f"{file}: truncated OpenVINO IR (no closing </net>)")
        start, end = text.rfind("<rt_info>"), text.rfind("</rt_info>")
        if start < 0 or end < start:
            return {}
        section = ET.fromstring(text[start:end + len("</rt_info>")]).find(RT_INFO_SECTION)
        if section is None:
            return {}
        return {child.tag: child.get("value", "") for child in section}

    def _load(self, precision_hint: str | None) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise ModelLoadError(f"{self.file}: openvino is not installed (pip install dpiqa-edge[openvino])") from None
        recorded = dict(self.metadata.get("runtime_options") or {})
        unknown = sorted(set(recorded) - {"INFERENCE_PRECISION_HINT"})
        if unknown:
            raise ModelLoadError(f"{self.file}: runtime_options {unknown} unknown to the OpenVINO loader; valid: INFERENCE_PRECISION_HINT")
        if self.precision == "int8":
            asked = precision_hint or recorded.get("INFERENCE_PRECISION_HINT") or "default"
        else:
            asked = precision_hint or "f32"
        if asked not in _HINTS:
            raise ModelLoadError(f"{self.file}: unknown precision hint {precision_hint!r}; valid: f32, bf16, f16, default")
        hint = _HINTS[asked]
        config = {} if hint is None else {"INFERENCE_PRECISION_HINT": hint}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = int(self.threads)
        self.stored_precision = self.precision
        try:
            core = ov.Core()
            model = core.read_model(str(self.file))
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # truncated .bin, malformed xml: OpenVINO raises RuntimeError
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{self.file}: OpenVINO cannot load it ({msg})") from None
        ran = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self.precision = _OURS.get(ran, ran)
        # A tensor may carry several names (the ONNX frontend keeps the producer's too): match by set.
        by_name = {n: o for o in self.compiled.outputs for n in o.get_names()}
        if "score" not in by_name or "quality_map" not in by_name:
            found = [sorted(o.get_names()) for o in self.compiled.outputs]
            raise ModelLoadError(f"{self.file}: expected outputs score, quality_map; found {found}")
        self._outputs = (by_name["score"], by_name["quality_map"])
        shape = self.compiled.inputs[0].get_partial_shape()
        check_input_shape([d.get_length() if d.is_static else "?" for d in shape], self.metadata, self.file)
        # An InferRequest is not safe to share across threads; compiled-model calls create their own.
        self.thread_safe = False

    @property
    def label(self) -> str:
        return f"openvino {self.stored_precision} (ran {self.precision})"

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = self.compiled(x)
        return result[self._outputs[0]], result[self._outputs[1]]
