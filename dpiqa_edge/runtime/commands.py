"""``dpiqa-edge check``: score images, folders, videos or a camera with an exported model; keep / retake."""

from __future__ import annotations

import json
import sys

import click

from ..errors import ConfigError, printable
from ..models import resolve_artifact
from .checker import check_sources, segments, summarise
from .scorer import QualityScorer, read_only_coreml
from .sources import Source, expand_inputs

EPILOG = """\b
Examples:
  dpiqa-edge check photo.jpg                                   (the shipped default model)
  dpiqa-edge check --model exports/lite0-onnx-fp32 photo.jpg holiday/
  dpiqa-edge check --model model.onnx --json clip.mp4 > scores.jsonl
  dpiqa-edge check --model exports/lite0-openvino-int8 --camera 0 --frames 300
\b
Still images: keep when score >= threshold. Videos and cameras: the camera gate (smoothed score,
hysteresis band, --min-stable agreeing frames; obvious exposure/blur failures named without the model).
Exit codes: 0 every input kept; 1 some input is retake or cannot be read (each named, the run goes on);
2 usage error or the model cannot be loaded.
"""


#: largest --batch-size (the byte budget in runtime.checker cuts it further for large inputs)
MAX_BATCH = 1024


def _finite(param, value):
    """click's FloatRange lets NaN through (every comparison with NaN is false): refuse it here."""
    import math

    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a finite number", param=param)
    return value


@click.command(epilog=EPILOG)
@click.option("--model", "artifact", default=None, type=click.Path(),
              help="Artifact file (.onnx, .xml, .mlpackage) or its export folder [default: the shipped default model, "
                   "an INT8 ONNX camera-check student; `default` names it too].")
@click.argument("inputs", nargs=-1, type=click.Path())
@click.option("--camera", type=int, help="Also read frames from camera device N (OpenCV index).")
@click.option("--frames", "max_frames", type=click.IntRange(min=1), help="Stop each video/camera after N frames (camera default: until Ctrl-C).")
@click.option("--threshold", type=click.FloatRange(0, 100), callback=lambda c, p, v: _finite(p, v),
              help="Gate threshold on 0-100 [default: the artifact's calibrated gate_threshold].")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per image/frame on stdout: input, frame, score, verdict, reason.")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=8, show_default=True,
              help="Images per inference call (1 for fixed-batch artifacts; cut further so decoded images held stay under 256 MB).")
@click.option("--threads", type=click.IntRange(1, 256), help="Inference threads [default: the backend's].")
@click.option("--precision-hint", help="Execution precision to ask the backend for (OpenVINO: f32 | bf16 | f16 | default = the plugin's "
              "own choice; when omitted: f32 for fp32/fp16 IRs, the plugin's choice for int8 IRs; CoreML on macOS: cpu | all). Reported in the table title.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Walk sub-folders of folder inputs.")
@click.option("--min-stable", type=click.IntRange(min=1), default=5, show_default=True, help="Frames that must agree before the gate's verdict changes.")
@click.option("--hysteresis", type=click.FloatRange(0, 50), default=2.5, show_default=True, callback=lambda c, p, v: _finite(p, v),
              help="Half-width of the dead band around the threshold (score points).")
def check(artifact, inputs, camera, max_frames, threshold, as_json, batch_size, threads, precision_hint, recursive, min_stable,
          hysteresis) -> None:
    """Check image quality with an exported model: 0-100 per image or frame, keep or retake."""
    # 1. inputs and model (usage and load errors exit 2 before any work)
    if not inputs and camera is None:
        raise click.UsageError("give at least one image, folder or video, or --camera N")
    sources = expand_inputs(inputs, recursive=recursive)
    if camera is not None:
        sources.append(Source("camera", f"camera:{camera}", index=camera))
    artifact = resolve_artifact(artifact)
    early_log = read_only_coreml([artifact])  # check never converts: coremltools without torch, ~2 s not ~15 s
    scorer = QualityScorer(artifact, threads=threads, precision_hint=precision_hint, batch_size=batch_size)
    if threshold is None:
        threshold = scorer.gate_threshold
    if threshold is None:
        raise ConfigError(f"{artifact}: metadata has no gate_threshold; pass --threshold")
    if (scorer.library_log or early_log) is not None:
        click.echo(f"({scorer.name}'s own messages while loading went to {scorer.library_log or early_log})", err=True)
    gate_options = {"min_stable": min_stable, "hysteresis": hysteresis}

    # 2. score, with a progress bar on stderr when it is a terminal
    progress = _progress(sources, max_frames, enabled=sys.stderr.isatty())
    records = []
    with progress as bar:
        task = bar.add_task("checking", total=_total(sources, max_frames))
        stream = check_sources(scorer, sources, threshold=threshold, gate_options=gate_options, batch_size=batch_size,
                               max_frames=max_frames, advance=lambda n: bar.advance(task, n))
        try:
            for rec in stream:
                records.append(rec)
                if as_json:
                    click.echo(json.dumps(rec))
        except KeyboardInterrupt:  # a camera runs until Ctrl-C: report what was seen
            stream.close()
            click.echo("interrupted: summarising the frames seen so far", err=True)

    # 3. report and exit code
    summary = summarise(records)
    if not as_json:
        _print_table(list(segments(records)), scorer, threshold, summary)
    click.get_current_context().exit(summary["exit_code"])


def _total(sources, max_frames) -> int | None:
    if any(s.kind != "image" for s in sources):
        return None if max_frames is None else sum(1 if s.kind == "image" else max_frames for s in sources)
    return len(sources)


def _progress(sources, max_frames, *, enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    busy = len(sources) > 1 or any(s.kind != "image" for s in sources)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), disable=not (enabled and busy), transient=True)


def _print_table(rows, scorer, threshold, summary) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    style = {"keep": "green", "retake": "yellow", "error": "red", "wait": "dim"}
    table = Table(title=escape(printable(f"{scorer.label} - threshold {threshold:g} (0-100, higher = better)")))
    for col, kw in (("input", {}), ("score", {"justify": "right"}), ("verdict", {}), ("reason", {"overflow": "fold"})):
        table.add_column(col, **kw)
    for r in rows:
        score = "" if r["score"] is None else f"{r['score']:.1f}"
        table.add_row(escape(printable(r["label"])), score, f"[{style.get(r['verdict'], 'default')}]{r['verdict']}[/]",
                      escape(printable(r["reason"])))
    console = Console()
    if not console.is_terminal:  # piped to a file: keep full paths on one line rather than fold at 80 columns
        console = Console(width=240)
    console.print(table)
    inputs = ", ".join(f"{n} {v}" for v, n in sorted(summary["inputs"].items()))
    frames = ", ".join(f"{n} {v}" for v, n in sorted(summary["counts"].items()))
    console.print(f"inputs: {inputs or 'none'} (images and frames: {frames or 'none'}); exit {summary['exit_code']}")
