"""CoreML on Linux: evaluate a saved ML program (``.mlpackage``) op by op with numpy.

``MLModel.predict`` exists only on macOS. Elsewhere the most faithful check that can run is to read the
saved program back (coremltools' milproto loader: the ops, their parameters and the stored weights
exactly as written, including fp16 weights and compressed ``constexpr_*`` weights) and evaluate it with
numpy, as each op's definition says. Results of this path are labelled ``EMULATED`` ("emulated on
Linux") wherever they appear. What this does *not* reproduce: the Neural Engine's or GPU's own
arithmetic (fp16 accumulation order, fused kernels). Tensors are stored at the precision the program
declares (a ``cast`` to fp16 rounds to float16, every fp16 op output is rounded to float16) while
arithmetic inside an op runs in float32, so fp16 results differ from a device by accumulation-order
effects only.

coremltools is used only to parse the package (``MLModel(path, skip_model_load=True)``, its spec and
weights folder, the milproto loader and blob reader); evaluation is numpy (``coreml_mil_ops``). An op
outside ``coreml_mil_ops.OPS`` is refused when the program is loaded, naming the op: never skipped.

Image inputs (``ct.ImageType``): Core ML turns the pixel buffer into a float tensor (1, C, H, W) of
0..255 values in the declared colour order and the program itself applies the stored scale and bias
(coremltools writes them as ``mul``/``add`` ops). ``predict`` therefore takes an image input as uint8
RGB (H, W, 3) (or (1, H, W, 3), or a PIL image), reorders it to BGR when the model declares BGR, and
feeds the float 0..255 tensor; grayscale inputs take (H, W) or (H, W, 1). An array already shaped as
the program's tensor (1, C, H, W) is taken as that tensor (0..255, in the declared colour order).
"""

from __future__ import annotations

import functools
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InputError, ModelLoadError
from .coreml_mil_ops import _NP_DTYPES, OPS

EMULATED = "emulated on Linux"  #: label of every number this evaluator produces


class UnsupportedOpError(ModelLoadError):
    """The program holds an op (or an op parameter) the emulator does not implement: refused, exit 2."""


@dataclass
class _Step:
    op_type: str
    name: str
    inputs: dict[str, Any]  # param -> var name (str) | tuple of var names | ("=", literal)
    outputs: list[tuple[str, Any]]  # (var name, numpy dtype or None)


@dataclass(frozen=True)
class InputSpec:
    """One model input: ``kind`` is "image" or "tensor"; ``shape`` has None for flexible dims."""

    name: str
    kind: str
    shape: tuple
    dtype: Any
    color: str | None = None  # "RGB" | "BGR" | "GRAYSCALE" | "GRAYSCALE_FLOAT16" for images


#: what coremltools probes at import for its converters (torch alone: ~10 s on 2 cores); a reader needs none
_CONVERTER_LIBRARIES = ("torch", "sklearn", "tensorflow")


def import_coremltools_for_reading() -> str | None:
    """Import coremltools without the converter libraries it probes at import (torch, scikit-learn,
    TensorFlow), for a process that only reads and evaluates ML programs: ``dpiqa-edge check`` and ``report``.
    A CoreML artifact then loads in ~2 s on Linux instead of ~15 s. Never call it in a process that will
    convert to CoreML afterwards (``ct.convert`` needs torch). Libraries already imported are left alone.
    Returns why loading is slower where it cannot help (coremltools already imported), else None."""
    import importlib.abc

    if "coremltools" in sys.modules:
        return None
    hide = {m for m in _CONVERTER_LIBRARIES if m not in sys.modules}

    class _Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path=None, target=None):
            if fullname.split(".")[0] in hide:
                raise ModuleNotFoundError(f"hidden while coremltools imports: {fullname}", name=fullname)
            return None

    finder = _Hide()
    sys.meta_path.insert(0, finder)
    try:
        import coremltools  # noqa: F401
    except ImportError:
        return None  # not installed: the loader says so in its own words
    finally:
        sys.meta_path.remove(finder)
    if any(m not in sys.modules for m in hide):
        return None
    return "coremltools imported torch anyway"


def real_predict_available() -> bool:
    """True only where Apple's ``MLModel.predict`` can run: macOS with coremltools' native proxy."""
    if sys.platform != "darwin":
        return False
    try:
        import coremltools.libcoremlpython  # noqa: F401  (present only in macOS wheels)
    except ImportError:
        return False
    return True


class MILProgram:
    """A saved ML program, ready to evaluate with numpy.

    Args:
        mlpackage_path: the ``.mlpackage`` folder written by ``coremltools`` (an ML program).
        function: the program function to run (``main`` unless the package is multi-function).
    """

    def __init__(self, mlpackage_path: str | os.PathLike, function: str = "main"):
        self.path = Path(mlpackage_path)
        prog, spec = load_ml_program(self.path)
        # 1. the function and its I/O
        if function not in prog.functions:
            raise ModelLoadError(f"{self.path}: no function {function!r} in the ML program; has {sorted(prog.functions)}")
        func = prog.functions[function]
        self.spec_version = int(spec.specificationVersion)
        self.inputs = _input_specs(spec, func)
        self.input_names = [i.name for i in self.inputs]
        self.output_names = [v.name for v in func.outputs]
        # 2. refuse the whole program at once if any op is unknown (listing every one)
        ops = list(func.operations)
        self.op_types = Counter(op.op_type for op in ops)
        unknown = sorted(t for t in self.op_types if t != "const" and t not in OPS)
        nested = sorted({op.op_type for op in ops if op.blocks})
        if unknown or nested:
            raise UnsupportedOpError(
                f"{self.path}: MIL op(s) {unknown + nested} not supported by the Linux CoreML emulator "
                f"(refused, not skipped); it evaluates: {sorted(OPS)}"
            )
        # 3. constants now; compressed weights (constexpr_*) decompressed now, as Core ML does at load
        self._consts: dict[str, Any] = {}
        self._steps: list[_Step] = []
        for op in ops:
            step = _to_step(op)
            if op.op_type == "const":
                self._consts[step.outputs[0][0]] = _as_dtype(op.outputs[0].val, step.outputs[0][1])
            elif op.op_type.startswith("constexpr_"):
                self._consts.update(self._run_step(step, self._consts))
            else:
                self._steps.append(step)
        self._last_use = _last_uses(self._steps, self.output_names)

    # -- evaluation --------------------------------------------------------------------------------
    def predict(self, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
        """Evaluate the program on ``inputs`` (name -> array; image inputs as uint8 RGB HxWx3)."""
        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise InputError(f"{self.path}: missing input(s) {missing}; the model takes {self.input_names}")
        env: dict[str, Any] = dict(self._consts)
        for spec in self.inputs:
            env[spec.name] = _feed(self.path, spec, inputs[spec.name])
        for i, step in enumerate(self._steps):
            env.update(self._run_step(step, env))
            for name in self._last_use.get(i, ()):  # free intermediates as soon as unused
                env.pop(name, None)
        return {name: env[name] for name in self.output_names}

    def _run_step(self, step: _Step, env: dict[str, Any]) -> dict[str, Any]:
        args = {}
        for param, ref in step.inputs.items():
            if isinstance(ref, tuple) and ref and ref[0] == "=":
                args[param] = ref[1]
            elif isinstance(ref, tuple):
                args[param] = tuple(env[r] for r in ref)
            else:
                args[param] = env[ref]
        try:
            result = OPS[step.op_type](args)
        except NotImplementedError as exc:
            raise UnsupportedOpError(f"{self.path}: op {step.op_type} ({step.name}): {exc} is not emulated") from None
        results = result if isinstance(result, tuple) else (result,)
        return {name: _as_dtype(val, dtype) for (name, dtype), val in zip(step.outputs, results)}

    def describe(self) -> dict[str, Any]:
        """What the program holds: op counts, I/O, spec version (for reports and export.json)."""
        return {
            "op_types": dict(sorted(self.op_types.items())),
            "inputs": [{"name": i.name, "kind": i.kind, "shape": list(i.shape), "color": i.color} for i in self.inputs],
            "outputs": self.output_names,
            "specification_version": self.spec_version,
            "evaluator": EMULATED,
        }


# -- loading -----------------------------------------------------------------------------------------
def load_ml_program(path: Path):
    """A saved ML program (.mlpackage) read back as ``(pymil program, spec)`` through coremltools' own readers
    (protobuf spec, milproto, blob storage). The emulator runs it; compression inspects and rewrites it."""
    if not path.exists():
        raise ModelLoadError(f"{path}: no such CoreML model")
    try:
        import coremltools as ct
        from coremltools.converters.mil.frontend.milproto.load import load as milproto_load
    except ImportError as exc:
        raise ModelLoadError(f"{path}: reading a CoreML model needs coremltools (pip install dpiqa-edge[coreml]): {exc}") from None
    try:
        model = ct.models.MLModel(str(path), skip_model_load=True)
        spec = model.get_spec()
    except Exception as exc:  # coremltools raises bare Exceptions for unreadable packages
        raise ModelLoadError(f"{path}: not a readable CoreML model ({type(exc).__name__}: {exc})") from None
    if spec.WhichOneof("Type") != "mlProgram":
        raise ModelLoadError(f"{path}: a {spec.WhichOneof('Type')} model; the emulator reads ML programs (.mlpackage) only")
    try:
        prog = milproto_load(spec, spec.specificationVersion, model.weights_dir)
    except Exception as exc:
        raise ModelLoadError(f"{path}: the ML program could not be read back ({type(exc).__name__}: {exc})") from None
    return prog, spec


def _np_dtype(var) -> Any:
    from coremltools.converters.mil.mil import types

    dt = var.dtype
    if types.is_tensor(dt):
        dt = dt.get_primitive()
    name = types.builtin_to_string(dt) if dt is not None else None
    return _NP_DTYPES.get(name)  # None (str, sub-byte) -> keep as the loader gives it


def _to_step(op) -> _Step:
    inputs: dict[str, Any] = {}
    for param, var in op.inputs.items():
        if isinstance(var, (list, tuple)):
            inputs[param] = tuple(v.name for v in var)
        elif var.op is None and var.val is not None:  # a literal bound inline (no producing op)
            inputs[param] = ("=", var.val)
        else:
            inputs[param] = var.name
    outputs = [(v.name, _np_dtype(v)) for v in op.outputs]
    return _Step(op.op_type, op.name, inputs, outputs)


def _as_dtype(val, dtype):
    if dtype is None or isinstance(val, str):
        return val
    arr = np.asarray(val)
    return arr if arr.dtype == dtype else arr.astype(dtype)


def _last_uses(steps: list[_Step], keep: list[str]) -> dict[int, list[str]]:
    last: dict[str, int] = {}
    for i, step in enumerate(steps):
        for ref in step.inputs.values():
            names = ref if isinstance(ref, tuple) and (not ref or ref[0] != "=") else (ref,) if isinstance(ref, str) else ()
            for n in names:
                last[n] = i
    out: dict[int, list[str]] = {}
    produced = {name for s in steps for name, _ in s.outputs}
    for name, i in last.items():
        if name in produced and name not in keep:
            out.setdefault(i, []).append(name)
    return out


def _input_specs(spec, func) -> list[InputSpec]:
    described = {d.name: d for d in spec.description.input}
    out = []
    for name, var in func.inputs.items():
        shape = tuple(int(s) if isinstance(s, (int, np.integer)) else None for s in var.shape)
        d = described.get(name)
        if d is not None and d.type.WhichOneof("Type") == "imageType":
            color = d.type.imageType.ColorSpace.Name(d.type.imageType.colorSpace)
            out.append(InputSpec(name, "image", shape, _np_dtype(var), color))
        else:
            out.append(InputSpec(name, "tensor", shape, _np_dtype(var)))
    return out


def _feed(path: Path, spec: InputSpec, value: Any) -> np.ndarray:
    """One input as the program receives it (image: 0..255 float NCHW in the declared colour order)."""
    arr = np.asarray(value)
    want = spec.shape
    already_tensor = arr.ndim == len(want) and all(w is None or w == a for w, a in zip(want, arr.shape))
    if spec.kind == "image" and not already_tensor:
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if spec.color.startswith("GRAYSCALE"):
            arr = arr[..., 0] if arr.ndim == 3 and arr.shape[-1] == 1 else arr
            if arr.ndim != 2:
                raise InputError(f"{path}: image input {spec.name!r} is grayscale: expected (H, W), got {arr.shape}")
            arr = arr[None]
        else:
            if arr.ndim != 3 or arr.shape[-1] != 3:
                raise InputError(f"{path}: image input {spec.name!r} expects RGB (H, W, 3) uint8, got {arr.shape}")
            arr = arr.transpose(2, 0, 1)
            if spec.color == "BGR":
                arr = arr[::-1]
        arr = arr[None]
    if len(want) != arr.ndim or any(w is not None and w != a for w, a in zip(want, arr.shape)):
        raise InputError(f"{path}: input {spec.name!r} has shape {tuple(arr.shape)}; the model takes {want}")
    return np.ascontiguousarray(arr, dtype=spec.dtype or np.float32)


@functools.lru_cache(maxsize=4)
def _cached_program(path: str, mtime: float) -> MILProgram:
    return MILProgram(path)


def load_program(path: str | os.PathLike) -> MILProgram:
    """A parsed program, cached by path and modification time (parsing costs seconds)."""
    p = Path(path)
    mtime = max((f.stat().st_mtime for f in p.rglob("*") if f.is_file()), default=0.0) if p.is_dir() else (p.stat().st_mtime if p.exists() else 0.0)
    return _cached_program(str(p.resolve()), mtime)


def coreml_predict(path: str | os.PathLike, inputs: dict[str, Any], *, use_real: bool | None = None) -> tuple[dict[str, np.ndarray], str]:
    """Run a CoreML model: Apple's ``MLModel.predict`` on macOS, this emulator elsewhere.

    Returns ``(outputs, how)``, ``how`` being "coreml" (Apple's runtime) or ``EMULATED``.
    ``use_real=False`` forces the emulator (e.g. to compare both on a Mac); True demands Apple's.
    """
    real = real_predict_available() if use_real is None else use_real
    if real:
        if not real_predict_available():
            raise ModelLoadError(f"{path}: MLModel.predict needs macOS with coremltools' native runtime")
        import coremltools as ct

        out = ct.models.MLModel(str(path)).predict(inputs)
        return {k: np.asarray(v) for k, v in out.items()}, "coreml"
    return load_program(path).predict(inputs), EMULATED
