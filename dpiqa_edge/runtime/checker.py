"""The work behind ``dpiqa-edge check``: sources in, one record per image or frame out.

Still images are decoded ahead in a thread pool and scored in batches; videos and cameras go frame by
frame through a :class:`~dpiqa_edge.runtime.gate.CameraGate` (reset per source). Every failure (a file
that cannot be read, a video that cannot be opened) becomes a record with verdict ``error`` and its
one-line reason, and the run goes on.

A record is a dict: ``input``, ``frame`` (None for still images), ``score``, ``smoothed``, ``verdict``
(keep | retake | wait | error), ``reason``, ``check`` (the cheap check that failed a frame, if any).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..errors import ConfigError, DpiqaError
from .gate import CameraGate, judge_image
from .scorer import QualityScorer
from .sources import Item, Source, batched, cpu_workers, decode_images, expand_inputs, video_frames

FAILING = ("retake", "error")
#: decoded images and frames held ahead of and inside one inference call, in bytes: ``--batch-size``
#: and the decode read-ahead are cut to fit, so a large batch of a large model cannot exhaust memory
READ_AHEAD_BYTES = 256 << 20


def record(item_or_source: Any, frame: int | None, score: float | None, verdict: str, reason: str, smoothed: float | None = None, check: str | None = None) -> dict:
    name = item_or_source.name if isinstance(item_or_source, Source) else str(item_or_source)
    return {"input": name, "frame": frame, "score": None if score is None else round(float(score), 4),
            "smoothed": None if smoothed is None else round(float(smoothed), 4), "verdict": verdict, "reason": reason, "check": check}


def check_sources(
    scorer,
    sources: list[Source],
    *,
    threshold: float,
    gate_options: dict | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    max_frames: int | None = None,
    advance: Callable[[int], None] | None = None,
) -> Iterator[dict]:
    """Score ``sources`` with ``scorer``; yield records in input order.

    Args:
        scorer: a ``QualityScorer``.
        sources: from ``sources.expand_inputs`` (plus ``Source("camera", ...)``).
        threshold: the gate threshold (the artifact's ``gate_threshold`` or ``--threshold``).
        gate_options: extra ``CameraGate`` keyword arguments for videos/cameras.
        batch_size: images per inference call (capped by the scorer to 1 for fixed-batch artifacts).
        workers: decode threads (default: cores - 1, at least 1).
        max_frames: stop each video/camera after this many frames (None: to the end).
        advance: progress callback, called with the number of images/frames just finished.
    """
    workers = cpu_workers() if workers is None else workers
    bs = max(1, min(batch_size or scorer.batch_size, scorer.batch_size))
    tick = advance or (lambda n: None)
    # Consecutive still images are batched together; each video/camera is a stream of its own.
    i = 0
    while i < len(sources):
        if sources[i].kind == "image":
            j = i
            while j < len(sources) and sources[j].kind == "image":
                j += 1
            yield from _check_images(scorer, sources[i:j], threshold, bs, workers, tick)
            i = j
        elif sources[i].kind == "error":
            yield record(sources[i], None, None, "error", sources[i].error or "cannot be read")
            i += 1
        else:
            yield from _check_stream(scorer, sources[i], threshold, gate_options or {}, bs, max_frames, tick)
            i += 1


def _input_bytes(scorer) -> int:
    """Bytes of one prepared input (float32 3xHxW, or uint8 HxWx3 for raw-input artifacts)."""
    h, w = scorer.preprocess.size
    return 3 * h * w * (1 if getattr(scorer, "raw_input", False) else 4)


def _check_images(scorer, sources, threshold, bs, workers, tick) -> Iterator[dict]:
    fit = max(1, READ_AHEAD_BYTES // (2 * _input_bytes(scorer)))  # the batch in hand + the one read ahead
    bs = min(bs, fit)
    items = decode_images(sources, scorer.prepare, workers=workers, ahead=max(1, min(max(2 * bs, 8), fit)))
    for batch in batched(items, bs, READ_AHEAD_BYTES // 2):
        good = [it for it in batch if it.x is not None]
        scores = iter(scorer.run_prepared(np.stack([it.x for it in good]))[0]) if good else iter(())
        for it in batch:
            if it.x is None:
                yield record(it.source, None, None, "error", it.error or "cannot be read")
            else:
                s = next(scores)
                verdict, reason = judge_image(s, threshold)
                yield record(it.source, None, s, verdict, reason)
        tick(len(batch))


def _check_stream(scorer, source, threshold, gate_options, bs, max_frames, tick) -> Iterator[dict]:
    gate = CameraGate(threshold, scorer, **gate_options)
    try:
        frames = video_frames(source, scorer.prepare, max_frames=max_frames)
        # A live camera gets a verdict per frame as it arrives; a file can be batched.
        for batch in batched(frames, 1 if source.kind == "camera" else bs, READ_AHEAD_BYTES // 2):
            yield from _gate_batch(scorer, gate, batch)
            tick(len(batch))
    except DpiqaError as exc:  # cannot be opened: a named failure, the run goes on
        yield record(source, None, None, "error", str(exc))


def _gate_batch(scorer, gate: CameraGate, batch: list[Item]) -> Iterable[dict]:
    # 1. cheap checks decide obvious failures without the model
    failed = [None if it.rgb is None else gate.cheap_check(it.rgb) for it in batch]
    todo = [k for k, it in enumerate(batch) if it.x is not None and failed[k] is None]
    # 2. one inference call for the frames that need the model
    scores = dict(zip(todo, scorer.run_prepared(np.stack([batch[k].x for k in todo]))[0])) if todo else {}
    # 3. the gate sees the frames in order
    out = []
    for k, it in enumerate(batch):
        if it.x is None:
            out.append(record(it.source, it.frame, None, "error", it.error or "cannot be read"))
            continue
        d = gate.update(None, failed=failed[k]) if failed[k] else gate.update(scores[k])
        out.append(record(it.source, it.frame, d.score, d.verdict, d.reason, d.smoothed, d.check))
    return out


def summarise(records: list[dict]) -> dict:
    """Counts per verdict (of records, i.e. images and frames, and of inputs) and the exit code DESIGN
    asks for: 1 when any input has a retake or error record. An input's verdict is its worst record's
    (error > retake > keep > wait)."""
    counts: dict[str, int] = {}
    worst: dict[str, str] = {}
    rank = {"wait": 0, "keep": 1, "retake": 2, "error": 3}
    for r in records:
        v = r["verdict"]
        counts[v] = counts.get(v, 0) + 1
        if rank.get(v, 0) >= rank.get(worst.get(r["input"], "wait"), 0):
            worst[r["input"]] = v
    inputs: dict[str, int] = {}
    for v in worst.values():
        inputs[v] = inputs.get(v, 0) + 1
    failed = sorted(name for name, v in worst.items() if v in FAILING)
    return {"counts": counts, "inputs": inputs, "failed_inputs": failed, "exit_code": 1 if failed else 0}


def segments(records: Iterable[dict]) -> Iterator[dict]:
    """Collapse a stream's per-frame records into runs of one verdict (the table view of a video)."""
    run: list[dict] = []
    for r in records:
        if run and (r["input"] != run[0]["input"] or r["verdict"] != run[0]["verdict"] or r["frame"] is None or run[0]["frame"] is None):
            yield _segment(run)
            run = []
        run.append(r)
    if run:
        yield _segment(run)


def _segment(run: list[dict]) -> dict:
    first, last = run[0], run[-1]
    if first["frame"] is None or len(run) == 1:
        return dict(last, label=first["input"] if first["frame"] is None else f"{first['input']} [frame {first['frame']}]")
    scores = [r["score"] for r in run if r["score"] is not None]
    # The first frame of a run is where its verdict was reached: its reason explains the run.
    return dict(first, label=f"{first['input']} [frames {first['frame']}-{last['frame']}]", score=float(np.mean(scores)) if scores else None)


def run_check(artifact, inputs: list[str], *, threshold: float | None = None, batch_size: int = 8, threads: int | None = None,
              recursive: bool = True, max_frames: int | None = None, gate_options: dict | None = None) -> dict:
    """``dpiqa-edge check`` as a function (for the demo and notebooks): records, summary and timing.

    Returns ``{"model", "threshold", "records", "summary", "seconds", "items_per_s"}``; raises
    ModelLoadError / ConfigError like the command (exit 2 cases), never for a bad input.
    """
    import time

    scorer = QualityScorer(artifact, threads=threads, batch_size=batch_size)
    threshold = scorer.gate_threshold if threshold is None else threshold
    if threshold is None:
        raise ConfigError(f"{artifact}: metadata has no gate_threshold; give threshold=")
    t0 = time.perf_counter()
    records = list(check_sources(scorer, expand_inputs(inputs, recursive=recursive), threshold=threshold,
                                 gate_options=gate_options, batch_size=batch_size, max_frames=max_frames))
    seconds = time.perf_counter() - t0
    return {"model": scorer.label, "threshold": threshold, "records": records, "summary": summarise(records),
            "seconds": seconds, "items_per_s": len(records) / seconds if seconds > 0 else float("nan")}
