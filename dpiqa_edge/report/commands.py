"""``dpiqa-edge report``: accuracy of every exported variant vs MOS, the teacher and its float parent."""

from __future__ import annotations

import click

from ..runtime.scorer import read_only_coreml
from .build import make_report

EPILOG = """\b
Example (after the demo):
  dpiqa-edge report --data runs/demo/data/manifest.csv --teacher-scores runs/demo/targets/scores.csv \\
      --variants exports/lite0-onnx-fp32 exports/lite0-onnx-int8 exports/lite0-openvino-int8 \\
      --out runs/demo/report --max-srcc-drop 0.01
\b
Each variant is scored through the runtime loaders (as a device runs it) on the held-out split.
The float parent of an INT8/pruned variant is the fp32 export of the same checkpoint (found from
export.json), or --parent. CoreML rows are emulated on Linux (no latency here).
Exit codes: 0 ok; 1 a variant exceeds --max-srcc-drop (the report is still written) or an input is bad;
2 an artifact cannot be loaded.
"""


@click.command(epilog=EPILOG)
@click.option("--data", "manifest", required=True, type=click.Path(dir_okay=False),
              help="Manifest CSV (path,mos,split); the --split rows with a MOS are scored.")
@click.option("--teacher-scores", type=click.Path(), default=None,
              help="scores.csv (path,teacher_score) from `teacher score`, or its folder.")
@click.option("--variants", multiple=True, required=True, metavar="ARTIFACT...",
              help="Artifacts or export folders; repeat the option or list several after it.")
@click.argument("more_variants", nargs=-1, type=click.Path())
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]),
              help="Held-out split to score.")
@click.option("--max-srcc-drop", type=float, default=None,
              help="Exit 1 when any variant's SRCC(parent vs MOS) - SRCC(variant vs MOS) exceeds D.")
@click.option("--parent", type=click.Path(), default=None, help="Float parent of every variant (else from export.json).")
@click.option("--synthetic/--no-synthetic", default=None,
              help="Label targets 'synthetic pseudo-MOS' (default: detected from synth.json beside the manifest).")
@click.option("--no-peers", is_flag=True, help="Skip the BRISQUE / NIQE reference rows.")
@click.option("--bootstrap", "n_boot", type=int, default=1000, show_default=True, help="Bootstrap resamples for 95% intervals.")
@click.option("--threads", type=int, default=None, help="Backend threads for scoring and latency.")
@click.option("--latency-repeats", type=int, default=20, show_default=True, help="Timed batch-1 runs per variant.")
@click.option("--logo", type=click.Path(dir_okay=False, exists=True), default=None,
              help="logo.json of `distill --recipe broad --logo` (camera ladders): adds the leave-one-group-out table.")
def report(manifest, teacher_scores, variants, more_variants, out_dir, split, max_srcc_drop, parent, synthetic,
           no_peers, n_boot, threads, latency_repeats, logo) -> None:
    """Accuracy report of exported variants: vs MOS, vs the teacher, vs the float parent, and cost.

    Writes report.json (versioned, validated schema), report.md, a self-contained index.html and PNG
    plots (predicted vs teacher / MOS, SRCC-drop bars, accuracy-vs-latency Pareto chart).
    """
    read_only_coreml(list(variants) + list(more_variants))  # report never converts: coremltools without torch

    out = make_report(manifest, teacher_scores, list(variants) + list(more_variants), out_dir,
                      max_srcc_drop=max_srcc_drop, split=split, parent=parent, synthetic=synthetic,
                      peers=not no_peers, n_boot=n_boot, threads=threads, latency_repeats=latency_repeats,
                      logo=logo)
    click.echo(f"report: {out}")
    click.echo(f"html:   {out.parent / 'index.html'}")
