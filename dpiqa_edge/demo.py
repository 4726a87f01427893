"""``dpiqa-edge demo``: the whole road on the embedded default set (filled in stage by stage)."""

from __future__ import annotations

import click

from .errors import StageNotBuiltError


@click.command()
@click.option("--out", "out_dir", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--smoke", is_flag=True, help="Same road, a handful of images at toy sizes (~1 min).")
def demo(out_dir: str, smoke: bool) -> None:
    """Run the whole road on the embedded default set and print where everything is."""
    raise StageNotBuiltError("demo: stages not built yet")
