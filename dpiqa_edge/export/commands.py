"""``dpiqa-edge export``: convert a student to ONNX / OpenVINO / CoreML, verified against its source."""

from __future__ import annotations

import click

from .base import COMPRESSIONS, PRECISIONS, TARGETS
from . import export_model


def _epilog() -> str:
    common = {"parity_images", "parity_data", "input_size", "calib", "max_srcc_drop"}
    rows = "\n".join(f"  {t.name:<9} {', '.join(t.precisions):<16} "
                     + " ".join("--" + o.replace("_", "-") for o in t.options if o not in common)
                     for t in TARGETS.values())
    return ("\b\nTargets, precisions and the target-specific options each allows:\n" + rows + "\n\n"
            "\b\nEvery export is checked against the torch model on real images through the runtime's own loader\n"
            "(OpenVINO fp32/fp16 pinned to f32, int8 at the plugin's default as deployed; CoreML on Linux: the saved ML program evaluated, labelled 'emulated on Linux').\n"
            "Out of tolerance -> exit 2 and no export folder. int8 also runs the SRCC gate (exit 1 when exceeded).\n\n"
            "\b\nExamples:\n"
            "  dpiqa-edge export --target onnx                       # newest student under ./runs/\n"
            "  dpiqa-edge export --target coreml --model default     # the shipped camera-check model\n"
            "  dpiqa-edge export --target coreml --precision fp16 --image-input\n"
            "  dpiqa-edge export --target openvino --precision int8 --calib data/manifest.csv --parity-data data/manifest.csv\n"
            "  dpiqa-edge export --target onnx --raw-input --dynamic-batch --input-size 224 --out exports/cam\n"
            "  dpiqa-edge export --target web --precision int8 --calib data/manifest.csv --out exports/web   # then: dpiqa-edge serve exports/web")


@click.command(epilog=_epilog())
@click.option("--target", required=True, type=click.Choice(list(TARGETS)), help="Artifact format (web: the ONNX model inside a static browser page).")
@click.option("--model", "model_dir", type=click.Path(file_okay=False),
              help="Student folder (config.json + model.safetensors), or `default` for the shipped camera-check model. "
                   "Default: the newest under ./runs/, else the shipped default.")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(list(PRECISIONS)),
              help="fp32 | fp16 | int8 (W8A8, needs --calib; coreml int8 calibrates on macOS only: elsewhere use --compression int8 for weight-only).")
@click.option("--calib", type=click.Path(exists=True), help="int8 calibration images: a manifest (train, then val) or a folder of frames.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False),
              help="Export folder. Default: ./exports/<model>-<target>-<precision>/.")
@click.option("--input-size", type=int, help="Square input side in pixels. Default: the student's own.")
@click.option("--raw-input", is_flag=True, help="onnx/openvino: take uint8 RGB NHWC frames; /255 and transpose baked in.")
@click.option("--dynamic-batch", is_flag=True, help="onnx/openvino: symbolic batch dimension (default: batch 1).")
@click.option("--image-input", is_flag=True, help="coreml: RGB image input (a camera pixel buffer goes straight in).")
@click.option("--min-deployment-target", help="coreml: e.g. iOS16 (default), iOS17, macOS13.")
@click.option("--opset", type=int, help="onnx: opset version (default 17).")
@click.option("--compression", type=click.Choice(list(COMPRESSIONS)),
              help="coreml: weight-only compression of the fp32/fp16 program (activations stay float).")
@click.option("--max-srcc-drop", type=float, help="int8: SRCC budget vs the float parent on held-out images (default 0.01).")
@click.option("--parity-data", type=click.Path(exists=True, dir_okay=False),
              help="Manifest of real images for parity (test rows), the gate threshold (val) and the int8 gate. "
                   "Default: the student's training manifest, else package photos.")
@click.option("--parity-images", default=8, show_default=True, type=int, help="Images per parity check.")
def export(**kwargs) -> None:
    """Export a student to ONNX, OpenVINO, CoreML or a browser page (web), with metadata, a model card and a parity check."""
    out = export_model(kwargs.pop("model_dir"), kwargs.pop("target"), kwargs.pop("precision"),
                       kwargs.pop("out_dir"), kwargs.pop("calib"), log=lambda m: click.echo(m, err=True), **kwargs)
    click.echo(str(out))
