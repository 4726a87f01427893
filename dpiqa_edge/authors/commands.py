"""``dpiqa-edge import``: the DP-IQA authors' released models into this toolkit's folders."""

from __future__ import annotations

import click

from .importer import import_authors

EPILOG = """\b
What it reads (the authors' KonIQ release, RomGai/DP-IQA):
  student_model.onnx               their first student release (ONNX)
  koniq_student_model_pack.pth     their student, a whole-module pickle
  koniq_teacher_model_pack.pth     their teacher, a whole-module pickle
  *_plcc_best.pth / .safetensors   a state dict of either
Pickles are read through an allowlist of the exact classes those models are made of, with torch's
weights_only loader: nothing in the file runs; any other global is refused (exit 2) and named.
\b
Scores: the authors' models output label / 100; --label-range says the labels' range (default 0,100:
score = 100 * output). The notes in OUT/config.json record the mapping and the checks.
\b
Then, as for any student / teacher:
  dpiqa-edge import koniq_student_model_pack.pth --out runs/dpiqa-student
  dpiqa-edge export --model runs/dpiqa-student --target openvino --precision int8 --calib photos/
  dpiqa-edge import koniq_teacher_model_pack.pth --out runs/dpiqa-teacher
  dpiqa-edge teacher score --teacher runs/dpiqa-teacher --data koniq.csv --out runs/dpiqa-targets
"""


def _label_range(ctx, param, value):
    try:
        lo, hi = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: expected LO,HI, e.g. 0,100 or 1,5") from None
    return lo, hi


@click.command("import", epilog=EPILOG)
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder to write: a student (config.json + model.safetensors) or teacher folder.")
@click.option("--kind", type=click.Choice(["auto", "student", "teacher"]), default="auto", show_default=True,
              help="What the file should hold; auto tells from its contents.")
@click.option("--label-range", default="0,100", show_default=True, callback=_label_range,
              help="Range of the labels the authors trained on (their output is label/100).")
@click.option("--input-size", type=int, help="Student input side (default: the ONNX graph's, else 8 x map side = 512).")
@click.option("--sd-path", help="Teacher state dict only: SD folder or Hugging Face id for the UNet/VAE configs "
                                "(default SD-1.5's; a whole pack carries its own).")
@click.option("--prompt-embeddings", type=click.Path(dir_okay=False),
              help="Teacher state dict only: the 1485xD prompt matrix (a pack carries its own).")
@click.option("--clip-path", help="Teacher state dict only: CLIP folder or Hugging Face id to recompute the prompts.")
def import_(path, out_dir, kind, label_range, input_size, sd_path, prompt_embeddings, clip_path) -> None:
    """Import the DP-IQA authors' student (.onnx, state dict, whole-module pickle) or teacher pack."""
    out = import_authors(path, out_dir, kind=kind, label_range=label_range, input_size=input_size, sd_path=sd_path,
                         prompt_embeddings=prompt_embeddings, clip_path=clip_path,
                         log=lambda m: click.echo(m, err=True))
    click.echo(str(out))
