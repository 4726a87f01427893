"""``dpiqa-edge report``: accuracy of every exported variant vs MOS, the teacher and its float parent."""

from __future__ import annotations

import click

from ..errors import StageNotBuiltError


@click.command()
@click.option("--data", "manifest", required=True, type=click.Path(dir_okay=False))
@click.option("--teacher-scores", type=click.Path(dir_okay=False))
@click.option("--variants", multiple=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def report(**kwargs) -> None:
    """Write report.json / report.md / index.html with plots."""
    raise StageNotBuiltError("report: stage not built yet")
