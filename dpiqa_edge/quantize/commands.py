"""``dpiqa-edge prune``: structured channel pruning of a student + recovery fine-tune."""

from __future__ import annotations

import click

from .prune import prune_student

EPILOG = """\b
Examples:
  dpiqa-edge prune --student runs/lite0 --ratio 0.3 --data synth/manifest.csv \\
      --targets runs/targets --out runs/lite0-p30
  dpiqa-edge prune ... --importance taylor --epochs 3
\b
The output is a normal student folder (config.json with a per-layer width map + model.safetensors):
export it like any other (`dpiqa-edge export --model runs/lite0-p30 --target openvino --precision int8`).
prune.json holds params, GMACs and val/test SRCC before pruning, right after it, and after the fine-tune.
"""


@click.command(epilog=EPILOG)
@click.option("--student", "student_dir", required=True, type=click.Path(file_okay=False),
              help="Trained student folder (from `dpiqa-edge distill`).")
@click.option("--ratio", required=True, type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              help="Fraction of channels removed from every unprotected layer group, e.g. 0.3.")
@click.option("--data", "manifest", required=True, type=click.Path(dir_okay=False),
              help="Manifest: train rows fine-tune, val picks the best epoch, val/test SRCC are reported.")
@click.option("--targets", "targets_dir", type=click.Path(file_okay=False),
              help="Teacher targets folder (`teacher score` output); without it the fine-tune uses MOS only.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Pruned student folder.")
@click.option("--importance", type=click.Choice(["magnitude", "taylor"]), default="magnitude", show_default=True,
              help="Channel ranking: weight L2 norm, or |weight x gradient| of the distillation loss.")
@click.option("--epochs", "finetune_epochs", type=click.IntRange(0), default=2, show_default=True,
              help="Recovery fine-tune epochs (0 = prune only).")
@click.option("--lr", type=float, default=None, help="Fine-tune learning rate [default: half the student's recipe].")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Fine-tune batch [default: the recipe's].")
@click.option("--round-to", type=click.IntRange(1), default=16, show_default=True,
              help="Kept channel counts are multiples of this (16: onnxruntime's x86 int8 depthwise kernel "
                   "needs it; 8 suffices on ARM).")
def prune(**kwargs) -> None:
    """Prune a student's channels (torch-pruning), then fine-tune to recover.

    The quality-map branch and the score head keep their outputs; every backbone layer group loses
    RATIO of its channels (DepGraph removes coupled layers together). Reports params, GMACs and SRCC
    before/after (labelled synthetic pseudo-MOS on the synthetic set).
    """
    prune_student(**kwargs)
