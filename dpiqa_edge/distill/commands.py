"""``dpiqa-edge distill``: train a CNN student from the teacher's cached scores and quality maps."""

from __future__ import annotations

import click

from ..errors import StageNotBuiltError


@click.command()
@click.option("--data", "manifest", required=True, type=click.Path(dir_okay=False))
@click.option("--targets", "targets_dir", type=click.Path(file_okay=False))
@click.option("--student", default="lite0", show_default=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--config", "config_file", type=click.Path(dir_okay=False))
def distill(**kwargs) -> None:
    """Distill the teacher into a student (paper | lite0 | timm:NAME)."""
    raise StageNotBuiltError("distill: stage not built yet")
