"""Export a student to ONNX, OpenVINO or CoreML, verified against its torch source.

``export_model(model_dir, target, precision)`` is the straight line: load -> convert -> load the
artifact with the runtime's own loader -> parity on real images (fails the export out of tolerance)
-> accuracy gate (int8) -> export.json + MODEL_CARD.md -> rename into place. The folder is built under
a temporary name (``io.atomic_path``): a failed export leaves nothing that looks like a good one.
``TARGETS`` is the table of targets and the options each allows (``export/base.py``).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from .base import PRECISIONS, TARGETS, ExportSettings, check_options, default_out_dir, newest_student

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
    from ..errors import ConfigError
    from ..io import atomic_path, read_json, sha256_file, write_json, write_text
    from ..runtime.artifact import encode_metadata
    from ..runtime.preprocess import Preprocess
    from . import card, parity

    say = log or (lambda _m: None)
    t0 = time.perf_counter()
    # 1. Validate the request against the targets table; find the model.
    given = {k: v for k, v in dict(calib=calib, input_size=input_size, raw_input=raw_input, dynamic_batch=dynamic_batch,
                                   image_input=image_input, min_deployment_target=min_deployment_target, opset=opset,
                                   max_srcc_drop=max_srcc_drop, compression=compression).items() if v != _DEFAULTS[k]}
    spec = check_options(target, precision, given)
    model_dir, name = _find_model(model_dir, say)
    out = (Path(out_dir) if out_dir is not None
           else default_out_dir(model_dir, target, precision, compression=compression, name=name))

    # 2. Load the student and the settings it exports with.
    from ..student import load_student
    from ..student.checkpoint import weights_file

    model, _cfg = load_student(model_dir, allow_onnx=True)
    model.eval()
    if getattr(model, "onnx_only", False) and target == "coreml":
        raise ConfigError(f"{model_dir}: --target coreml converts from torch weights, and this import is the authors' "
                          f"ONNX graph only ({model.reason}); use --target onnx or openvino")
    config = read_json(model_dir / "config.json")
    prov = _provenance(config)
    base_pre = Preprocess.from_dict(config.get("preprocessing") or {})
    size = int(input_size or base_pre.size[0])
    if base_pre.size[0] != base_pre.size[1] and input_size is None:
        raise ConfigError(f"{model_dir}: non-square input {base_pre.size}; give --input-size")
    pre = Preprocess.from_dict({**base_pre.to_dict(), "size": [size, size]})
    settings = ExportSettings(target=target, precision=precision, input_size=size, raw_input=raw_input,
                              dynamic_batch=dynamic_batch, image_input=image_input,
                              min_deployment_target=min_deployment_target or "iOS16", opset=opset or 17,
                              compression=compression,
                              extra={"int8": dict(int8_options or {})})
    student = _student_name(config, model_dir)
    deploy, fused = _deploy_form(model)

    # 3. Real images: parity, the gate threshold (val) and, for int8, calibration and the gate (test).
    manifest = parity_data or prov.get("manifest")
    if manifest is not None and not Path(manifest).is_file():
        if parity_data is not None:
            raise ConfigError(f"{manifest}: --parity-data manifest not found")
        manifest = None
    names, x = parity.parity_images(pre, manifest, parity_images)
    from .graph import torch_outputs

    ref = torch_outputs(model, x, batch=1)  # batch 1, as the artifact runs: torch's own kernels vary with N
    source_sha256 = sha256_file(weights_file(model_dir))
    threshold = card.calibrate_threshold(model, pre, manifest, x, source_sha256,
                                         recorded=(config.get("provenance") or {}).get("gate"))
    calib_arrays, val = None, None
    lossy = precision == "int8" or compression is not None  # judged by the SRCC gate, not a tolerance
    test = None
    if lossy:
        test = _labelled(manifest, pre, "test", gate_images)
    if precision == "int8":
        from ..quantize.calib import load_calibration

        calib_arrays = load_calibration(calib, pre, n=calib_images)
        val = _labelled(manifest, pre, "val")
        if accuracy_control is None:
            accuracy_control = max_srcc_drop is not None
        if target == "openvino" and accuracy_control and val is not None:
            settings.extra["int8"].setdefault("max_srcc_drop", max_srcc_drop)
        # held-out val images (never test): NNCF's accuracy control, and OpenVINO's choice of precision
        # for the ops it leaves float (rank agreement with the float parent on them)
        settings.extra["int8"].setdefault("val", val)

    # 4. The metadata every copy carries.
    meta = card.build_metadata(student=student, target=spec.format.name, precision=precision, preprocessing=pre.to_dict(),
                               raw_input=raw_input, gate=threshold["threshold"],
                               source_sha256=source_sha256,
                               dynamic_batch=dynamic_batch and "dynamic_batch" in spec.options, image_input=image_input,
                               compression=compression)

    # 5. Build the folder under a temporary name: convert, verify, describe; rename only when all passed.
    from importlib import import_module

    from ..quiet import LOG_NAME, third_party_output
    from ..runtime.backends import load_backend

    module = import_module(f".{target}", __name__)
    rungs = _int8_rungs(target, precision, settings.extra["int8"])
    val_images = settings.extra["int8"].pop("val", None)
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        attempts = []
        for k, rung in enumerate(rungs):  # fastest first; a gate that fails moves to the next, safer rung
            settings.extra["int8"].update(rung)
            say(f"export: converting {model_dir} -> {target} {precision} ({size}x{size})" + (f" {rung}" if rung else ""))
            t1 = time.perf_counter()
            with third_party_output(tmp / LOG_NAME):  # converters' logs and progress bars, unless --verbose
                artifact, info = module.convert(deploy, settings, tmp, encode_metadata(meta), calib=calib_arrays, val=val_images)
            if "runtime_options" in info:  # options the target wrote into the artifact for the loader to apply
                meta["runtime_options"] = info["runtime_options"]
            t_convert = time.perf_counter() - t1
            t1 = time.perf_counter()
            with third_party_output(tmp / LOG_NAME):
                backend = load_backend(artifact)
            source = str(manifest) if manifest is not None else "package photos (scikit-image, scikit-learn)"
            par = parity.check_parity(backend, ref, x, names=names, source=source, log=say)
            gate = _int8_gate(model, backend, test, max_srcc_drop, out) if lossy else None
            t_parity = time.perf_counter() - t1
            if gate is None or gate.get("passed") is not False or k == len(rungs) - 1:
                break
            attempts.append({"options": rung, "accuracy_gate": gate})
            say(f"export: {rung} failed the accuracy gate ({gate['reason']}); trying {rungs[k + 1]}")
            backend = None  # release the failed rung's session before converting the next
        if gate is not None:
            from ..quantize.gate import enforce_gate

            enforce_gate(gate)
        if attempts:
            info["int8_attempts"] = attempts
        record = {
            "artifact": artifact.name, "target": target, "precision": precision, "label": backend.label,
            "metadata": meta, "settings": {k: v for k, v in settings.to_dict().items() if k != "extra"},
            "target_note": spec.note, "conversion": {**info, "reparameterized": fused},
            "source": {"model_dir": str(model_dir), "sha256": meta["source_sha256"], "student": student,
                       "training_data": prov.get("manifest"), "synthetic": prov.get("synthetic")},
            "parity": par, "accuracy_gate": gate, "gate_threshold": threshold,
            "timings_s": {"convert": round(t_convert, 2), "verify": round(t_parity, 2),
                          "total": round(time.perf_counter() - t0, 2)},
        }
        del backend
        write_text(tmp / "MODEL_CARD.md", card.model_card(record, config))
        files = {k: v for k, v in card.file_sizes(tmp).items() if k != LOG_NAME}  # a log is not the artifact
        record["files"] = files
        record["size_bytes"] = sum(v for k, v in files.items() if k.startswith(artifact.name.split(".")[0]))
        write_json(tmp / "export.json", record)
    verdict = "passed" if par["passed"] else "measured; " + str((gate or {}).get("reason") or "no gate data")
    say(f"export: wrote {out} ({record['size_bytes'] / 1e6:.1f} MB, parity {par['label']} {verdict})")
    return out


def _find_model(model_dir, say) -> tuple[Path, str | None]:
    """``--model``: a folder; ``default`` = the shipped float checkpoint; omitted = the newest student under
    ./runs/, else the shipped default. Returns (folder, name for the default export folder or None)."""
    from .. import models
    from ..errors import ModelLoadError

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
    from ..data.manifest import read_manifest, sample_rows

    rows = sample_rows(read_manifest(manifest).split(split).labelled(), cap)
    if len(rows) < 3:
        return None
    return pre.batch([r.abspath for r in rows]), [r.mos for r in rows]


def _int8_rungs(target: str, precision: str, int8_options: dict[str, Any]) -> list[dict[str, Any]]:
    """INT8 settings to try in order, fastest first (one empty rung when there is no choice to make).

    ONNX: ``float_first_convs`` 3, then 6 (``quantize.onnx_int8.FLOAT_FIRST_CONVS_LADDER``): the first
    convolutions, at full resolution, are where quality models read fine texture; kept float on x86 they
    are also faster than ORT's int8 kernels there, and a pruned Lite0 ran 1.6-1.8x its fp32 speed with
    3 kept float against 1.4-1.6x with 6. The export keeps the first rung whose accuracy gate passes (or
    the first when no labelled held-out images judge it); an explicit ``float_first_convs`` is used as is.
    """
    if precision != "int8" or target != "onnx" or "float_first_convs" in int8_options:
        return [{}]
    from ..quantize.onnx_int8 import FLOAT_FIRST_CONVS_LADDER

    return [{"float_first_convs": n} for n in FLOAT_FIRST_CONVS_LADDER]


def _int8_gate(model, backend, test, max_srcc_drop, out) -> dict[str, Any]:
    """The SRCC gate (``quantize.gate``) on the held-out test split: parent = torch fp32, variant = the artifact as run.
    Measured here; the caller enforces it (after trying its safer rungs)."""
    from ..errors import ConfigError
    from ..quantize.gate import DEFAULT_MAX_DROP, srcc_gate
    from .graph import torch_outputs

    if test is None:
        if max_srcc_drop is not None:
            raise ConfigError("export: --max-srcc-drop needs --parity-data with >= 3 labelled test images")
        return {"passed": None, "reason": "not run: no labelled held-out (test) images; give --parity-data"}
    images, mos = test
    return srcc_gate(torch_outputs(model, images)[0], backend.run(images)[0], mos,
                     DEFAULT_MAX_DROP if max_srcc_drop is None else max_srcc_drop, name=str(out))
