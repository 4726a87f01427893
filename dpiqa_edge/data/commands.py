"""``dpiqa-edge data ...``: build the embedded default set and index real datasets into manifests."""

from __future__ import annotations

import click

from ..errors import StageNotBuiltError


@click.group()
def data() -> None:
    """Datasets: the synthetic default set and manifests for KonIQ-10k, SPAQ, LIVE Challenge, KADID-10k."""


@data.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write images + manifest.csv into.")
def synth(out_dir: str) -> None:
    """Build the embedded default set (package photos x synthetic distortions, synthetic pseudo-MOS)."""
    raise StageNotBuiltError("data synth: stage not built yet")


@data.command()
@click.option("--dataset", required=True, type=click.Choice(["koniq10k", "spaq", "livec", "kadid10k", "csv"]))
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="The dataset's folder as it ships.")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False), help="Manifest CSV to write.")
def index(dataset: str, root: str, out_file: str) -> None:
    """Index a real dataset's own files into a manifest (MOS mapped to 0-100)."""
    raise StageNotBuiltError("data index: stage not built yet")
