"""``dpiqa-edge check``: score images, folders, videos or a camera with an exported model; keep / retake."""

from __future__ import annotations

import click

from ..errors import StageNotBuiltError


@click.command()
@click.option("--model", "artifact", required=True, type=click.Path())
@click.argument("inputs", nargs=-1)
@click.option("--camera", type=int)
@click.option("--threshold", type=float)
@click.option("--json", "as_json", is_flag=True)
def check(**kwargs) -> None:
    """Check image quality with an exported model."""
    raise StageNotBuiltError("check: stage not built yet")
