"""CoreML loader: Apple's ``MLModel.predict`` on macOS; on Linux the saved ML program itself, evaluated.

``MLModel.predict`` exists only on macOS (coremltools has no Linux runtime). Elsewhere this loader runs
the *saved* ``.mlpackage`` - its MIL ops and stored weights, fp16 casts and constexpr dequantization as
the ops define them - with the small numpy evaluator in ``coreml_mil.MILProgram``, which refuses an op
it does not know. That is the most faithful check that can run here, and every result from it is
labelled "emulated on Linux" (``emulated = True``, ``label``).

Precision: an fp16 artifact computes in fp16 (stored in the program). On a device CoreML also runs an
fp32 program in fp16 on the GPU / Neural Engine unless restricted to the CPU: on macOS this loader
uses ``CPU_ONLY`` by default (the stored precision, as parity needs); ``precision_hint="all"`` lets
CoreML pick the compute units as an app would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ModelLoadError
from . import Backend
from .coreml_mil import MILProgram, real_predict_available


class CoreMLBackend(Backend):
    """An ``.mlpackage`` ML program; ``image_input`` artifacts take an RGB image (scale 1/255 in-model)."""

    name = "coreml"

    @staticmethod
    def read_metadata(file: Path) -> dict[str, str]:
        from coremltools.models.utils import load_spec

        if not (file / "Manifest.json").is_file():
            raise ModelLoadError(f"{file}: not an .mlpackage (no Manifest.json)")
        spec = load_spec(str(file))
        return dict(spec.description.metadata.userDefined)

    def _load(self, precision_hint: str | None) -> None:
        self.on_macos = real_predict_available()  # macOS *and* coremltools' native predict present
        self.emulated = not self.on_macos
        if self.raw_input:
            raise ModelLoadError(f"{self.file}: raw-input CoreML artifacts are not produced; use image_input")
        if precision_hint not in (None, "all", "cpu", self.precision):
            raise ModelLoadError(f"{self.file}: CoreML precision hint {precision_hint!r}; valid: cpu (default), all")
        try:
            if self.on_macos:
                import coremltools as ct

                units = ct.ComputeUnit.ALL if precision_hint == "all" else ct.ComputeUnit.CPU_ONLY
                self.model = ct.models.MLModel(str(self.file), compute_units=units)
                if precision_hint == "all":
                    self.precision = f"{self.precision} (CoreML compute units ALL: fp16 on GPU/ANE)"
            else:
                self.model = MILProgram(self.file)
        except ModelLoadError:
            raise
        except ImportError as exc:
            raise ModelLoadError(f"{self.file}: cannot load CoreML ({exc}); pip install dpiqa-edge[coreml]") from None
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{self.file}: CoreML cannot load it ({msg})") from None

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.dynamic_batch is False and x.shape[0] != 1:  # pragma: no cover - Backend.run splits batches
            raise ModelLoadError(f"{self.file}: CoreML artifacts take one image at a time")
        if self.image_input:
            # The program's input is an RGB image; CoreML applies the stored scale (1/255) itself.
            rgb = np.clip(np.rint(x[0].transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
            if self.on_macos:
                from PIL import Image

                feed = {self.input_name: Image.fromarray(rgb)}
            else:
                feed = {self.input_name: rgb}  # the evaluator feeds it as CoreML does: float 0..255 NCHW
        else:
            feed = {self.input_name: x}
        out = self.model.predict(feed)
        return np.asarray(out["score"]).reshape(1), np.asarray(out["quality_map"])
