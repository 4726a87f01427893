"""``dpiqa-edge teacher train|score``: the DP-IQA teacher (Stable Diffusion UNet prior)."""

from __future__ import annotations

import click

from ..errors import StageNotBuiltError


@click.group()
def teacher() -> None:
    """The DP-IQA teacher: train on MOS, score images into distillation targets."""


@teacher.command()
@click.option("--data", "manifest", required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--sd-path", type=click.Path(file_okay=False))
@click.option("--clip-path", type=click.Path(file_okay=False))
@click.option("--prompt-embeddings", type=click.Path(dir_okay=False))
@click.option("--tiny", is_flag=True)
@click.option("--config", "config_file", type=click.Path(dir_okay=False))
def train(**kwargs) -> None:
    """Train the teacher."""
    raise StageNotBuiltError("teacher train: stage not built yet")


@teacher.command()
@click.option("--teacher", "teacher_dir", required=True, type=click.Path(file_okay=False))
@click.option("--data", "manifest", required=True, type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def score(**kwargs) -> None:
    """Score a manifest with a trained teacher -> scores.csv + quality maps."""
    raise StageNotBuiltError("teacher score: stage not built yet")
