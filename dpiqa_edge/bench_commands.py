"""``dpiqa-edge bench``: latency / size / memory measurements, written to BENCHMARKS.md."""

from __future__ import annotations

import click

from .errors import StageNotBuiltError


@click.command()
@click.option("--quick", is_flag=True)
def bench(quick: bool) -> None:
    """Run the benchmarks."""
    raise StageNotBuiltError("bench: stage not built yet")
