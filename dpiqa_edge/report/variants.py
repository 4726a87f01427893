"""Turning artifacts into scored report variants: every score comes through the runtime's one path
(``runtime.scorer.QualityScorer`` over ``runtime.backends.load_backend``), exactly as a device would run
it, and the cost facts come from the artifact and its ``export.json``.

A variant's *float parent* (for the SRCC drop) is found, in order:
1. ``--parent ARTIFACT`` given by the user: the parent of every other variant;
2. among the variants themselves: an fp32 export of the same source checkpoint (``source_sha256``),
   preferring the same target, then ONNX (the fp32 ONNX export stands for the float student);
3. for a pruned student, the fp32 export of the checkpoint it was pruned from, found through the
   pruned checkpoint's ``config.json`` provenance (``pruned_from`` / ``parent``) when it names one.
A float variant with no other float export of its checkpoint *is* a float reference: no parent.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ModelLoadError
from ..io import dir_size, read_json, sha256_file
from ..runtime.formats import format_of
from ..runtime.scorer import QualityScorer, read_metadata_value
from ..student import complexity, load_student
from ..timing import summarize_times, time_fn

EMULATED_LABEL = "emulated on Linux"
NO_LATENCY_ON_LINUX = "n/a on Linux"


@dataclass
class ScoredVariant:
    """One artifact's scores on the report's images plus what is known about it.

    Args:
        name: how the report calls it (the export folder's name, else the artifact's stem).
        artifact: the path the user gave.
        scores: 0-100 scores in the report's image order.
        backend: ``onnx|openvino|coreml`` (what loaded it).
        precision: what it was exported as (``fp32|fp16|int8``), from its metadata.
        precision_ran: what the backend actually executed (e.g. OpenVINO's bf16 on AMX).
        label: a caveat shown beside the row (``emulated on Linux`` for CoreML here).
        gate_threshold: the artifact's calibrated keep/retake threshold, if it carries one.
        cost: size_bytes, params, gmacs, latency_ms ({p50, p95} or None), latency_note, note.
    """

    name: str
    artifact: str
    scores: np.ndarray
    backend: str = "?"
    precision: str | None = None
    precision_ran: str = "?"
    label: str | None = None
    student: str | None = None
    target: str | None = None
    source_sha256: str | None = None
    parent_source_sha256: str | None = None
    gate_threshold: float | None = None
    cost: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None  #: name of the parent variant, filled by :func:`assign_parents`


def _export_json(artifact: Path) -> tuple[Path | None, dict[str, Any]]:
    """The export folder's export.json (the artifact may be the folder or a file inside it)."""
    for folder in (artifact, artifact.parent):
        if folder.is_dir() and (folder / "export.json").is_file():
            return folder, read_json(folder / "export.json")
    return None, {}


def _variant_name(artifact: Path, folder: Path | None) -> str:
    if folder is not None:
        return folder.name
    return artifact.name.split(".")[0] if artifact.suffix else artifact.name


def _artifact_size(file: Path | None, artifact: Path) -> int | None:
    """Bytes of the deployed model file(s) alone (with the format's companions, OpenVINO: .xml + .bin;
    .mlpackage: the folder), measured on disk; not export.json or the model card."""
    f = file or artifact
    if not f.exists():
        return None
    fmt = format_of(f)
    beside = [f.with_suffix(s) for s in (fmt.companions if fmt else ())]  # the format row's companion files
    return dir_size(f) + sum(dir_size(b) for b in beside if b.is_file())


def _model_dir(export: dict[str, Any]) -> Path | None:
    """The student checkpoint an export came from (export.json ``source.model_dir``)."""
    src = export.get("source")
    d = src.get("model_dir") if isinstance(src, dict) else export.get("model_dir")
    return Path(d) if d and Path(d, "config.json").is_file() else None


_COMPLEXITY: dict[tuple[str, int], tuple[int, float]] = {}


def params_gmacs(export: dict[str, Any], size: int) -> tuple[int | None, float | None, str | None]:
    """Parameters and GMACs of the exported student at its input ``size``: counted on the source
    checkpoint (``student.complexity``, torch FLOP counter), since a compiled artifact does not say.
    Returns (params, gmacs, note) with a note when the checkpoint is not reachable from here."""
    model_dir = _model_dir(export)
    if model_dir is None:
        return None, None, "params/GMACs n/a: source checkpoint not found (export.json source.model_dir)"
    key = (str(model_dir.resolve()), int(size))
    if key not in _COMPLEXITY:
        try:
            c = complexity(load_student(model_dir)[0], size=size)
        except ModelLoadError as exc:  # e.g. an ONNX-only import: no torch model to count
            return None, None, f"params/GMACs n/a: {exc}"
        _COMPLEXITY[key] = (int(c["params"]), float(c["gmacs"]))
    params, gmacs = _COMPLEXITY[key]
    return params, gmacs, None


def _pruned_from_sha(export: dict[str, Any]) -> str | None:
    """sha256 of the checkpoint a pruned student came from, via its config.json provenance."""
    model_dir = _model_dir(export)
    if model_dir is None:
        return None
    cfg = read_json(model_dir / "config.json")
    prov = cfg.get("provenance") if isinstance(cfg.get("provenance"), dict) else {}
    for key in ("parent_sha256", "pruned_from_sha256"):
        if isinstance(prov.get(key), str):
            return prov[key]
    parent_dir = prov.get("pruned_from") or prov.get("parent") or prov.get("parent_dir")
    if isinstance(parent_dir, str) and Path(parent_dir, "model.safetensors").is_file():
        return sha256_file(Path(parent_dir, "model.safetensors"))
    return None


def measure_latency(run: Callable[[], Any], repeats: int, warmup: int = 2) -> dict[str, Any]:
    """p50 (median) / p95 wall time in ms of ``run()``, timed by ``timing.time_fn``, as the benchmarks are."""
    t = time_fn(run, warmup=warmup, repeat=repeats)
    return {"p50": float(t.median_ms), "p95": float(t.p95_ms), "repeats": int(t.repeat)}


def score_variant(artifact: str | os.PathLike, paths: Sequence[str], *, threads: int | None = None,
                  batch_size: int = 8, latency_repeats: int = 20,
                  progress: Callable[[int], None] | None = None) -> ScoredVariant:
    """Score ``paths`` with one artifact through the runtime and measure its batch-1 latency here.

    Args:
        artifact: an artifact file or its export folder.
        paths: image files, in the report's order.
        threads: backend intra-op threads (None: the backend's default).
        batch_size: images per backend call when the artifact has a dynamic batch.
        latency_repeats: timed batch-1 runs (0 skips latency); CoreML has none on Linux regardless.
        progress: called with the number of images scored after each chunk.
    """
    # 1. load through the runtime's one path
    artifact = Path(artifact)
    folder, export = _export_json(artifact)
    scorer = QualityScorer(artifact, threads=threads, batch_size=batch_size)
    meta = scorer.metadata
    backend = scorer.name
    # 2. score in chunks (decoding is the slow part for small models; chunks keep memory flat)
    scores = []
    step = max(1, batch_size)
    for i in range(0, len(paths), step):
        scores.append(scorer.score_batch(paths[i : i + step]))
        if progress:
            progress(min(i + step, len(paths)))
    scores = np.concatenate(scores) if scores else np.zeros(0)
    # 3. latency at batch 1 on a real image, with the precision that actually ran
    emulated = bool(getattr(scorer.backend, "emulated", False)) or backend == "coreml"
    latency, note = None, None
    if emulated:
        note = NO_LATENCY_ON_LINUX
    elif latency_repeats > 0 and paths:
        x = scorer.prepare(paths[0])[None]
        latency = measure_latency(lambda: scorer.run_prepared(x), latency_repeats)
        latency["threads"] = threads
    elif latency_repeats <= 0:
        note = "not measured (latency_repeats=0)"
    stored = read_metadata_value(meta, "precision", export.get("precision"))
    ran = scorer.precision
    if stored == "int8" and ran != "int8":  # OpenVINO: quantized ops in int8, the rest at the precision hint
        ran = f"int8 (+{ran} rest)"
    params, gmacs, cnote = params_gmacs(export, scorer.preprocess.size[0]) if export else (None, None, None)
    file = getattr(scorer.backend, "file", None)
    return ScoredVariant(
        name=_variant_name(artifact, folder), artifact=str(artifact), scores=scores, backend=backend,
        precision=stored, precision_ran=ran, label=EMULATED_LABEL if emulated else None,
        student=read_metadata_value(meta, "student", export.get("student")),
        target=read_metadata_value(meta, "target", export.get("target", backend)),
        source_sha256=read_metadata_value(meta, "source_sha256", export.get("source_sha256")),
        parent_source_sha256=_pruned_from_sha(export), gate_threshold=scorer.gate_threshold,
        cost={"size_bytes": _artifact_size(Path(file) if file else None, artifact), "params": params,
              "gmacs": gmacs, "latency_ms": latency, "latency_note": note, "note": cnote},
    )


def interleaved_latency(variants: list[ScoredVariant], image: str, repeats: int, threads: int | None = None,
                        warmup: int = 2) -> None:
    """Time every variant that has a latency here at batch 1 on ``image``, round-robin (one call of each
    in turn, ``repeats`` rounds), and fill ``cost["latency_ms"]``. On a shared machine a burst of load then
    hits every variant alike; timed one after another, minutes apart, an INT8 model and its float parent
    can swap places by chance. CoreML (emulated on Linux) keeps its note."""
    timed = [v for v in variants if v.label != EMULATED_LABEL and v.backend != "coreml"]
    runs = {}
    for v in timed:
        scorer = QualityScorer(v.artifact, threads=threads)
        x = scorer.prepare(image)[None]
        runs[v.name] = (lambda s=scorer, x=x: s.run_prepared(x))
    for run in runs.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {n: [] for n in runs}
    for _ in range(max(1, repeats)):
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - t0)
    for v in timed:
        t = summarize_times(times[v.name])
        v.cost["latency_ms"] = {"p50": float(t.median_ms), "p95": float(t.p95_ms), "repeats": int(t.repeat),
                                "threads": threads}
        v.cost["latency_note"] = None


def _is_float(v: ScoredVariant) -> bool:
    return (v.precision or "fp32") == "fp32"


def assign_parents(variants: list[ScoredVariant], explicit: ScoredVariant | None = None) -> None:
    """Fill each variant's ``parent`` (a name among ``variants`` or ``explicit``), per the module doc."""
    for v in variants:
        if explicit is not None:
            v.parent = None if v.name == explicit.name else explicit.name
            continue
        floats = [c for c in variants if c is not v and _is_float(c) and c.source_sha256
                  and c.source_sha256 == v.source_sha256]
        if _is_float(v):
            # a float export on another target compares with the fp32 ONNX (conversion drift only)
            floats = [c for c in floats if c.target == "onnx" and v.target != "onnx"]
        if not floats and v.parent_source_sha256:
            floats = [c for c in variants if _is_float(c) and c.source_sha256 == v.parent_source_sha256]
        floats.sort(key=lambda c: (c.target != v.target, c.target != "onnx", c.name))
        v.parent = floats[0].name if floats else None


def unique_names(variants: list[ScoredVariant]) -> None:
    """Two artifacts with one folder name (e.g. exports/a/x and exports/b/x) get a numeric suffix."""
    seen: dict[str, int] = {}
    for v in variants:
        if v.name in seen:
            seen[v.name] += 1
            v.name = f"{v.name}-{seen[v.name]}"
        else:
            seen[v.name] = 1


def timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
