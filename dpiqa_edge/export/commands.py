"""``dpiqa-edge export``: convert a student to ONNX / OpenVINO / CoreML, verified against its source."""

from __future__ import annotations

import click

from ..errors import StageNotBuiltError


@click.command()
@click.option("--target", required=True, type=click.Choice(["onnx", "openvino", "coreml"]))
@click.option("--model", "model_dir", type=click.Path(file_okay=False))
@click.option("--precision", default="fp32", type=click.Choice(["fp32", "fp16", "int8"]))
@click.option("--calib", type=click.Path())
@click.option("--out", "out_dir", type=click.Path(file_okay=False))
def export(**kwargs) -> None:
    """Export a student."""
    raise StageNotBuiltError("export: stage not built yet")
