"""Export a student to ONNX, OpenVINO or CoreML, verified against its torch source.

``export_model(model_dir, target, precision)`` is a straight sequence of named steps:

1. ``_prepare``: the request checked against the targets table; the student loaded; its settings.
2. ``_reference``: real images, the torch outputs on them, the gate threshold, int8 calibration and
   held-out sets, and the metadata every copy of the artifact carries.
3. ``_convert``: the target's ``convert`` writes the artifact.
4. ``_verify``: the artifact through the runtime's own loader: parity (fails the export out of
   tolerance) and, for lossy variants, the accuracy gate. For int8, 3-4 repeat per rung of the target's
   ``int8_rungs`` (fastest first) until the gate passes.
5. ``_describe``: export.json + MODEL_CARD.md; then the folder is renamed into place.

What differs per target is declared by its class in ``export/targets/<name>.py`` (``targets.Target``):
``convert``, and hooks with defaults there - ``check_source`` (coreml), ``prepare_int8`` (openvino),
``int8_rungs`` (onnx, web) - plus the options and modules it needs. The INT8 settings travel as one
immutable ``targets.Int8Settings``. The folder is built under a temporary name (``io.atomic_path``): a
failed export leaves nothing that looks like a good one. ``TARGETS`` is the registry of targets.
"""
from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import models
from ..data.manifest import read_manifest, sample_rows
from ..errors import MODULE_EXTRA, ConfigError, MissingExtraError, ModelLoadError
from ..io import atomic_path, check_out_dir, read_json, sha256_file, write_json, write_text
from ..quantize.calib import load_calibration
from ..quantize.gate import DEFAULT_MAX_DROP, enforce_gate, srcc_gate
from ..quiet import LOG_NAME, third_party_output
from ..runtime.artifact import encode_metadata
from ..runtime.backends import load_backend
from ..runtime.preprocess import Preprocess
from ..student import load_student
from ..student.checkpoint import weights_file
from . import card, parity
from .base import PRECISIONS, TARGETS, ExportSettings, check_options, default_out_dir, newest_student
from .source import OnnxSource, reference_outputs, source_noise, torch_available
from .targets import Int8Settings, Target

__all__ = ["export_model", "TARGETS", "PRECISIONS", "ExportSettings"]

#: export_model keyword -> its default: only options changed from these are checked against the table
_DEFAULTS = {"calib": None, "input_size": None, "raw_input": False, "dynamic_batch": False, "image_input": False,
             "min_deployment_target": None, "opset": None, "max_srcc_drop": None, "compression": None}


def export_model(model_dir: str | os.PathLike | None, target: str, precision: str = "fp32",
                 out_dir: str | os.PathLike | None = None, calib: str | os.PathLike | None = None, *,
                 input_size: int | None = None, raw_input: bool = False, dynamic_batch: bool = False,
                 image_input: bool = False, min_deployment_target: str | None = None, opset: int | None = None,
                 max_srcc_drop: float | None = None, compression: str | None = None, parity_data: str | os.PathLike | None = None,
                 parity_images: int = 8, calib_images: int = 128, gate_images: int = 512,
                 int8_options: dict | None = None,
                 accuracy_control: bool | None = None, log: Callable[[str], None] | None = print) -> Path:
    """Export one student; returns the export folder (artifact + export.json + MODEL_CARD.md).

    Args:
        model_dir: student checkpoint folder (config.json + model.safetensors); None = newest under ./runs/.
        target: ``onnx`` | ``openvino`` | ``coreml`` | ``web`` (the ONNX model inside a browser page).
        precision: ``fp32`` | ``fp16`` | ``int8`` (int8 needs ``calib``).
        out_dir: export folder; default ``./exports/<model>-<target>-<precision>/``.
        calib: int8 calibration images: a manifest (train, then val) or a folder of frames.
        input_size: square input side; default the student's preprocessing size.
        raw_input: uint8 NHWC input with normalisation in-graph (onnx, openvino).
        dynamic_batch: symbolic batch dimension (onnx, openvino).
        image_input: CoreML RGB image input (camera pixel buffer).
        min_deployment_target: CoreML, e.g. ``iOS16`` (default) or ``iOS17``.
        opset: ONNX opset (default 17).
        compression: coreml weight-only compression on top of fp32/fp16: int8 | palettize8 | palettize6 |
            palettize4 (judged by the accuracy gate like int8).
        max_srcc_drop: int8 accuracy budget (default 0.01); measured on the parity manifest's test split.
        accuracy_control: openvino int8: NNCF's accuracy-controlled quantization with SRCC on val as its
            metric (slow: it re-quantizes until the budget holds). Default: on when ``max_srcc_drop`` is
            given, as ``--max-srcc-drop`` means on the CLI; False = plain PTQ, still judged by the gate.
        parity_data: manifest of real images for parity, the gate threshold (val) and the int8 gate
            (test); default the student's training manifest when its config names one, else package photos.
        parity_images: images per parity check.
        calib_images: int8 calibration images at most.
        gate_images: held-out (test) images the accuracy gate compares parent and variant on, at most (a
            seeded sample when the split holds more). The drop is a paired SRCC difference: at 128 images
            it swung by +-0.02 between runs on the weak demo students, more than the 0.01 budget.
        int8_options: extra keywords for the quantizer (e.g. ``{"method": "entropy"}``).
        log: one line per step (None = silent).
    """
    say = log or (lambda _m: None)
    t0 = time.perf_counter()

    if model_dir == models.NAME:
        # the shipped model brings its own frames (calibration: train rows; parity and the gate: test rows)
        reuse = (target == "onnx" and precision == "int8" and calib is None and int8_options is None
                 and not any(v for v in (input_size, raw_input, dynamic_batch, opset, max_srcc_drop, parity_data)))
        if reuse and models.has_default():
            return _reuse_shipped_int8(out_dir, say)
        parity_data = parity_data if parity_data is not None else models.default_frames()
        if precision == "int8" and calib is None:
            calib = models.default_frames()
    given = {k: v for k, v in dict(calib=calib, input_size=input_size, raw_input=raw_input, dynamic_batch=dynamic_batch,
                                   image_input=image_input, min_deployment_target=min_deployment_target, opset=opset,
                                   max_srcc_drop=max_srcc_drop, compression=compression).items() if v != _DEFAULTS[k]}
    job = _prepare(model_dir, target, precision, out_dir, given, say, int8_options)
    _reference(job, parity_data, parity_images, gate_images, calib, calib_images, max_srcc_drop, accuracy_control)

    with atomic_path(job.out) as tmp:  # built under a temporary name; renamed only when every step passed
        tmp.mkdir(parents=True)
        attempts = []
        for k, rung in enumerate(job.rungs):  # fastest first; a gate that fails moves to the next, safer rung
            artifact, info, t_convert = _convert(job, tmp, rung)
            backend, par, gate, t_parity = _verify(job, tmp, artifact, max_srcc_drop)
            if gate is None or gate.get("passed") is not False or k == len(job.rungs) - 1:
                break
            attempts.append({"options": rung, "accuracy_gate": gate})
            say(f"export: {rung} failed the accuracy gate ({gate['reason']}); trying {job.rungs[k + 1]}")
            backend = None  # release the failed rung's session before converting the next
        if gate is not None:
            enforce_gate(gate)
        if attempts:
            info["int8_attempts"] = attempts
        label = backend.label
        del backend
        record = _describe(job, tmp, artifact, info, label, par, gate,
                           {"convert": round(t_convert, 2), "verify": round(t_parity, 2),
                            "total": round(time.perf_counter() - t0, 2)}, LOG_NAME)
        check_out_dir(job.out)  # again just before the rename: the folder may have been made meanwhile
    verdict = "passed" if par["passed"] else "measured; " + str((gate or {}).get("reason") or "no gate data")
    say(f"export: wrote {job.out} ({record['size_bytes'] / 1e6:.1f} MB, parity {par['label']} {verdict})")
    return job.out


@dataclass
class _Job:
    """What the steps hand on: the request and model (prepare), then images and references (reference)."""

    target: str
    precision: str
    spec: Target
    model_dir: Path
    out: Path
    model: Any
    deploy: Any
    fused: bool
    config: dict[str, Any]
    prov: dict[str, Any]
    pre: Any
    size: int
    settings: ExportSettings
    int8: Int8Settings
    student: str
    say: Callable[[str], None]
    rungs: list[dict[str, Any]] = field(default_factory=lambda: [{}])
    meta: dict[str, Any] = field(default_factory=dict)
    manifest: Any = None
    names: list[str] = field(default_factory=list)
    x: Any = None
    ref: Any = None
    threshold: dict[str, Any] = field(default_factory=dict)
    calib_arrays: Any = None
    test: Any = None
    lossy: bool = False
    noise: Any = None


def _prepare(model_dir, target, precision, out_dir, given, say, int8_options) -> _Job:
    """Step 1: validate the request against the targets table, find and load the student, and fix the
    settings it exports with."""
    spec = check_options(target, precision, given)
    _need_modules(target, precision)
    model_dir, name = _find_model(model_dir, say)
    out = (Path(out_dir) if out_dir is not None
           else default_out_dir(model_dir, target, precision, compression=given.get("compression"), name=name))
    check_out_dir(out)  # only ever replace a folder of ours: a user's folder is refused before any work
    model = _onnx_source(name, target, say)
    if model is None:
        _need_torch(model_dir, target)
        model, _cfg = load_student(model_dir, allow_onnx=True)
    model.eval()
    spec.check_source(model, model_dir)  # a target that cannot convert from every kind of checkpoint refuses here
    config = read_json(model_dir / "config.json")
    base_pre = Preprocess.from_dict(config.get("preprocessing") or {})
    input_size = given.get("input_size")
    size = int(input_size or base_pre.size[0])
    if base_pre.size[0] != base_pre.size[1] and input_size is None:
        raise ConfigError(f"{model_dir}: non-square input {base_pre.size}; give --input-size")
    pre = Preprocess.from_dict({**base_pre.to_dict(), "size": [size, size]})
    settings = ExportSettings(target=target, precision=precision, input_size=size,
                              raw_input=given.get("raw_input", False), dynamic_batch=given.get("dynamic_batch", False),
                              image_input=given.get("image_input", False),
                              min_deployment_target=given.get("min_deployment_target") or "iOS16",
                              opset=given.get("opset") or 17, compression=given.get("compression"))
    int8 = Int8Settings(options=dict(int8_options or {}))
    deploy, fused = _deploy_form(model)
    rungs = spec.int8_rungs(int8) if precision == "int8" else [{}]
    return _Job(target, precision, spec, model_dir, out, model, deploy, fused, config, _provenance(config),
                pre, size, settings, int8, _student_name(config, model_dir), say, rungs)


def _reference(job: _Job, parity_data, parity_images, gate_images, calib, calib_images, max_srcc_drop,
               accuracy_control) -> None:
    """Step 2: real images and what the torch model says on them: parity images and outputs, the gate
    threshold (val), int8 calibration and held-out sets, and the metadata every copy carries."""
    manifest = parity_data or job.prov.get("manifest")
    if manifest is not None and not Path(manifest).is_file():
        if parity_data is not None:
            raise ConfigError(f"{manifest}: --parity-data manifest not found")
        manifest = None
    job.manifest = manifest
    job.names, job.x = parity.parity_images(job.pre, manifest, parity_images)
    job.ref = reference_outputs(job.model, job.x, batch=1)  # batch 1, as the artifact runs: kernels vary with N
    if job.spec.format.tolerances[job.precision].score is not None and job.settings.compression is None:
        # how much the source model moves on its own (batch size, threads): the parity tolerance's scale
        job.noise = source_noise(job.model, job.x, job.ref)
    source_sha256 = sha256_file(weights_file(job.model_dir))
    job.threshold = card.calibrate_threshold(job.model, job.pre, manifest, job.x, source_sha256,
                                             recorded=(job.config.get("provenance") or {}).get("gate"))
    settings = job.settings
    job.lossy = job.precision == "int8" or settings.compression is not None  # judged by the SRCC gate
    if job.lossy:
        job.test = _labelled(manifest, job.pre, "test", gate_images)
    if job.precision == "int8":
        job.calib_arrays = load_calibration(calib, job.pre, n=calib_images)
        val = _labelled(manifest, job.pre, "val")
        if accuracy_control is None:
            accuracy_control = max_srcc_drop is not None
        # held-out val images (never test): NNCF's accuracy control, and OpenVINO's choice of precision
        # for the ops it leaves float (rank agreement with the float parent on them); then the target's
        # own use of them
        job.int8 = job.spec.prepare_int8(dataclasses.replace(job.int8, val=val, accuracy_control=accuracy_control,
                                                             max_srcc_drop=max_srcc_drop))
    job.meta = card.build_metadata(student=job.student, target=job.spec.format.name, precision=job.precision,
                                   preprocessing=job.pre.to_dict(), raw_input=settings.raw_input,
                                   gate=job.threshold["threshold"], source_sha256=source_sha256,
                                   dynamic_batch=settings.dynamic_batch and "dynamic_batch" in job.spec.options,
                                   image_input=settings.image_input, compression=settings.compression)


def _convert(job: _Job, tmp: Path, rung: dict[str, Any]) -> tuple[Path, dict[str, Any], float]:
    """Step 3: the target module writes its artifact (metadata embedded) into ``tmp``."""
    source = job.model.path if isinstance(job.model, OnnxSource) else job.model_dir
    job.say(f"export: converting {source} -> {job.target} {job.precision} ({job.size}x{job.size})"
            + (f" {rung}" if rung else ""))
    t1 = time.perf_counter()
    with third_party_output(tmp / LOG_NAME):  # converters' logs and progress bars, unless --verbose
        artifact, info = job.spec.convert(job.deploy, job.settings, tmp, encode_metadata(job.meta),
                                          calib=job.calib_arrays, int8=job.int8.with_options(**rung))
    if "runtime_options" in info:  # options the target wrote into the artifact for the loader to apply
        job.meta["runtime_options"] = info["runtime_options"]
    if "int8_weights" in info:  # the INT8 weight range the target stored in the artifact (7-bit: no x86 saturation)
        job.meta["int8_weights"] = info["int8_weights"]
    return artifact, info, time.perf_counter() - t1


def _verify(job: _Job, tmp: Path, artifact: Path, max_srcc_drop):
    """Step 4: the artifact through the runtime's own loader: parity with torch, and the accuracy gate
    for lossy variants (measured here, enforced by the caller after its safer rungs)."""
    t1 = time.perf_counter()
    with third_party_output(tmp / LOG_NAME):
        backend = load_backend(artifact)
    source = str(job.manifest) if job.manifest is not None else "package photos (scikit-image, scikit-learn)"
    tolerance = parity.model_tolerance(job.spec.format.tolerances[job.precision], job.noise) if job.noise else None
    par = parity.check_parity(backend, job.ref, job.x, names=job.names, source=source, log=job.say,
                              tolerance=tolerance)
    if job.noise:
        par["source_noise"] = job.noise
    if isinstance(job.model, OnnxSource):
        par["reference"] = f"{job.model.path.name} (float ONNX, onnxruntime): {job.model.reason}"
    gate = _int8_gate(job.model, backend, job.test, max_srcc_drop, job.out) if job.lossy else None
    return backend, par, gate, time.perf_counter() - t1


def _describe(job: _Job, tmp: Path, artifact: Path, info, label: str, par, gate, timings, log_name: str):
    """Step 5: export.json and MODEL_CARD.md beside the artifact."""
    meta = job.meta
    record = {
        "artifact": artifact.name, "target": job.target, "precision": job.precision, "label": label,
        "metadata": meta, "settings": job.settings.to_dict(),
        "target_note": job.spec.note, "conversion": {**info, "reparameterized": job.fused},
        "source": {"model_dir": str(job.model_dir), "sha256": meta["source_sha256"], "student": job.student,
                   "training_data": job.prov.get("manifest"), "synthetic": job.prov.get("synthetic")},
        "parity": par, "accuracy_gate": gate, "gate_threshold": job.threshold,
        "timings_s": timings,
    }
    write_text(tmp / "MODEL_CARD.md", card.model_card(record, job.config))
    files = {k: v for k, v in card.file_sizes(tmp).items() if k != log_name}  # a log is not the artifact
    record["files"] = files
    record["size_bytes"] = sum(v for k, v in files.items() if k.startswith(artifact.name.split(".")[0]))
    write_json(tmp / "export.json", record)
    return record


def _find_model(model_dir, say) -> tuple[Path, str | None]:
    """``--model``: a folder; ``default`` = the shipped float checkpoint; omitted = the newest student under
    ./runs/, else the shipped default. Returns (folder, name for the default export folder or None)."""
    if model_dir == models.NAME:
        return Path(models.default_student()), models.NAME
    if model_dir is not None:
        return Path(model_dir), None
    try:
        found = newest_student()
    except ModelLoadError:
        if not models.has_default():
            raise
        say(f"export: --model not given and no student under ./runs/; using the shipped default model "
            f"({models.default_student()})")
        return Path(models.default_student()), models.NAME
    say(f"export: --model not given; using the newest student under ./runs/: {found}")
    return found, None


def _deploy_form(model):
    """The inference form of the student: train-time parallel branches (MobileOne, RepVit, ...) fused
    with timm's ``reparameterize_model`` (a copy; parity still compares with the unfused source)."""
    if not any(hasattr(m, "reparameterize") or hasattr(m, "fuse") for m in model.modules()):
        return model, False
    from timm.utils.model import reparameterize_model

    return reparameterize_model(model, inplace=False).eval(), True


def _provenance(config: dict[str, Any]) -> dict[str, Any]:
    """Training manifest and synthetic flag from a student config (keys vary across stages: be lenient)."""
    prov = dict(config.get("provenance") or {})
    for key in ("manifest", "data", "train_manifest"):
        for src in (prov, config):
            if isinstance(src.get(key), str):
                return {"manifest": src[key], "synthetic": bool(prov.get("synthetic", config.get("synthetic")))}
    return {"manifest": None, "synthetic": bool(prov.get("synthetic", config.get("synthetic")))}


def _student_name(config: dict[str, Any], model_dir: Path) -> str:
    for src in (config, config.get("student") if isinstance(config.get("student"), dict) else {}):
        for key in ("student", "name", "arch", "backbone"):
            if isinstance(src.get(key), str):
                return src[key]
    return model_dir.name


def _labelled(manifest, pre, split: str, cap: int = 128):
    """(images, mos) of a manifest split's labelled rows (a seeded sample of ``cap`` when there are
    more), or None."""
    if manifest is None:
        return None
    rows = sample_rows(read_manifest(manifest).split(split).labelled(), cap)
    if len(rows) < 3:
        return None
    return pre.batch([r.abspath for r in rows]), [r.mos for r in rows]


def _int8_gate(model, backend, test, max_srcc_drop, out) -> dict[str, Any]:
    """The SRCC gate (``quantize.gate``) on the held-out test split: parent = torch fp32, variant = the artifact as run.
    Measured here; the caller enforces it (after trying its safer rungs)."""
    if test is None:
        if max_srcc_drop is not None:
            raise ConfigError("export: --max-srcc-drop needs --parity-data with >= 3 labelled test images")
        return {"passed": None, "reason": "not run: no labelled held-out (test) images; give --parity-data"}
    images, mos = test
    return srcc_gate(reference_outputs(model, images)[0], backend.run(images)[0], mos,
                     DEFAULT_MAX_DROP if max_srcc_drop is None else max_srcc_drop, name=str(out))


def _onnx_source(name: str | None, target: str, say):
    """The shipped float ONNX as the source of an onnx / openvino / web export of the default model (no torch
    needed, and every such export is checked against the same float graph), else None (a torch student)."""
    if name != models.NAME or not TARGETS[target].onnx_source or not models.has_float_onnx():
        return None
    path = models.default_float_onnx()
    say(f"export: converting the shipped float ONNX ({path}); no torch needed")
    return OnnxSource(path, "the shipped default model's float ONNX, exported from its float checkpoint and "
                            "checked against it (models/default/onnx-fp32/export.json)")


def _need_torch(model_dir: Path, target: str) -> None:
    """A torch student needs torch (the [train] extra); say so in one line, naming what works without it."""
    if torch_available():
        return
    extra = "train,coreml" if target == "coreml" else "train"
    hint = ("" if not TARGETS[target].onnx_source else
            f"; without torch, --model default exports to {', '.join(n for n, t in TARGETS.items() if t.onnx_source)}")
    raise MissingExtraError(f"export: converting {model_dir} (a torch checkpoint) needs torch{hint}", extra)


def _reuse_shipped_int8(out_dir, say) -> Path:
    """``--model default --target onnx --precision int8`` with the shipped frames asks for exactly the shipped
    INT8 ONNX: copy it (its export.json holds the parity and accuracy gate it passed when it was built)."""
    import shutil

    src = models.default_artifact()
    out = Path(out_dir) if out_dir is not None else default_out_dir(src, "onnx", "int8", name=models.NAME)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for f in sorted(src.iterdir()):
            if f.is_file():
                shutil.copyfile(f, tmp / f.name)  # copyfile: the user's umask, not the package's modes
        record = read_json(tmp / "export.json")
        record["reused"] = {"from": str(src), "why": "the request matches the shipped INT8 ONNX (same checkpoint, "
                            "target, precision and settings); give --calib to quantize anew"}
        write_json(tmp / "export.json", record)
    say(f"export: the shipped INT8 ONNX matches this request; copied it from {src} (its parity and accuracy "
        f"gate are in export.json; give --calib to quantize anew)")
    say(f"export: wrote {out}")
    return out


def _need_modules(target: str, precision: str) -> None:
    """A missing converter (the target's declared ``requires``, int8: and ``requires_int8``) is one line naming
    the extra, before minutes of work (not a traceback after)."""
    import importlib.util

    spec = TARGETS[target]
    needed = tuple(spec.requires) + (tuple(spec.requires_int8) if precision == "int8" else ())
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        extra = spec.extra or MODULE_EXTRA[missing[0]]
        raise MissingExtraError(f"export --target {target} --precision {precision} needs {', '.join(missing)}", extra)
