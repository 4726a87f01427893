"""``dpiqa-edge prune``: structured channel pruning of a student + recovery fine-tune."""

from __future__ import annotations

import click

from ..errors import StageNotBuiltError


@click.command()
@click.option("--student", "student_dir", required=True, type=click.Path(file_okay=False))
@click.option("--ratio", required=True, type=float)
@click.option("--data", "manifest", required=True, type=click.Path(dir_okay=False))
@click.option("--targets", "targets_dir", type=click.Path(file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def prune(**kwargs) -> None:
    """Prune a student's channels (torch-pruning), then fine-tune to recover."""
    raise StageNotBuiltError("prune: stage not built yet")
