"""``dpiqa-edge distill``: train a CNN student from the teacher's cached scores and quality maps."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import from_dict, load_config, to_dict
from ..student.config import STUDENT_NAMES
from .broad import BroadConfig, train_broad
from .broad import logo as run_logo
from .config import DistillConfig
from .folds import distill_folds
from .train import distill as run


@click.command(epilog="""\b
Examples:
  dpiqa-edge distill --data synth/manifest.csv --targets targets/ --student lite0 --out runs/lite0 \\
      --config configs/distill-demo.toml
  dpiqa-edge distill --data koniq.csv --targets t/ --student paper --out runs/paper     (SPEC recipe)
  dpiqa-edge distill --data koniq.csv --student timm:mobilenetv3_large_100 --out runs/mnv3   (MOS only)
  dpiqa-edge distill --data runs/demo/data/manifest.csv --targets runs/demo/targets --out runs/folds \\
      --config configs/distill-demo.toml --folds 4     (k grouped folds by scene: out-of-fold SRCC)
  dpiqa-edge distill --recipe camera --config configs/camera.toml --out runs/camera
      (no teacher, no MOS: ranks camera ladders of real photos; held-out camera metrics in OUT/camera.json)
  dpiqa-edge distill --recipe broad --config configs/camera-broad.toml --out runs/broad [--logo]
      (31 failure families + mixtures + intentional photography, frozen ImageNet prefix cached once;
       --logo also trains one model per held-out family group: OUT/logo.json)
\b
Loss: w_mos*MSE(score, MOS or teacher score) + w_feat*MSE(F_student, F_quality) [+ w_kd, w_rank];
the teacher is never loaded, only its targets folder. Re-running with the same --out resumes from
its last checkpoint; the best epoch by val SRCC is the result.""")
@click.option("--recipe", type=click.Choice(["teacher", "camera", "broad"]), default="teacher", show_default=True,
              help="teacher: SPEC's distillation from MOS and the teacher's targets (needs --data); camera: learn capture "
                   "and codec failures from synthetic ladders of the photo pool (dpiqa_edge/distill/camera.py); broad: "
                   "the shipped model's recipe, 31 families + mixtures on a frozen cached prefix (distill/broad.py).")
@click.option("--logo", is_flag=True, help="--recipe broad: also run leave-one-group-out (one model per held-out "
                                           "family group, scored on that group's held-out ladders) -> OUT/logo.json.")
@click.option("--data", "manifest", type=click.Path(dir_okay=False),
              help="Manifest CSV (path,mos,split,...); train rows train, val rows pick the best epoch.")
@click.option("--targets", "targets_dir", type=click.Path(file_okay=False),
              help="Teacher targets folder from `teacher score`; omit to train from MOS alone.")
@click.option("--student", default=None, help=f"{' | '.join(STUDENT_NAMES)}  [config's, else paper]")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output student folder.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="TOML recipe (configs/distill*.toml); options below override it.")
@click.option("--epochs", type=int, help="Training epochs.")
@click.option("--batch-size", type=int, help="Global batch size.")
@click.option("--lr", type=float, help="Adam learning rate.")
@click.option("--input-size", type=int, help="Student input side in pixels.")
@click.option("--map-size", type=int, help="Side of the student's 8-channel quality map.")
@click.option("--score-target", type=click.Choice(["mos", "teacher"]),
              help="mos: MOS, teacher score where MOS is empty; teacher: teacher scores only.")
@click.option("--w-feat", type=float, help="Weight of the quality-map (feature) loss.")
@click.option("--w-kd", type=float, help="Weight of MSE to the teacher's score.")
@click.option("--freeze-stages", type=int, help="Freeze the stem and the first N backbone stages.")
@click.option("--seed", type=int, help="Seed of every random draw (batch order, augmentation).")
@click.option("--mixed-precision", type=click.Choice(["no", "fp16", "bf16"]),
              help="accelerate's mixed precision (fp16 needs a GPU; SPEC's recipe uses it).")
@click.option("--cpu", is_flag=True, help="Train on the CPU even when a GPU is present.")
@click.option("--folds", type=int, default=None, metavar="K",
              help="Instead of one student: K students on grouped folds by scene (every split's labelled rows), "
                   "each scene tested once; writes OUT/fold-<i>/ and OUT/folds.json with the pooled out-of-fold "
                   "SRCC next to BRISQUE and NIQE. For small sets, where one test split is a few scenes.")
@click.option("--quiet", is_flag=True, help="No progress bar or messages.")
def distill(recipe, logo, manifest, targets_dir, student, out_dir, config_file, epochs, batch_size, lr, input_size,
            map_size, score_target, w_feat, w_kd, freeze_stages, seed, mixed_precision, cpu, folds, quiet) -> None:
    """Distill the teacher into a student (paper | lite0 | timm:NAME), or train one with the camera recipe."""
    if recipe == "broad":
        _broad(out_dir, config_file, logo, epochs, lr, seed, freeze_stages, quiet,
               ignored={"--data": manifest, "--targets": targets_dir, "--folds": folds, "--map-size": map_size,
                        "--score-target": score_target, "--w-feat": w_feat, "--w-kd": w_kd, "--student": student,
                        "--input-size": input_size, "--batch-size": batch_size, "--mixed-precision": mixed_precision})
        return
    if logo:
        raise click.UsageError("--logo needs --recipe broad")
    if recipe == "camera":
        _camera(out_dir, config_file, student, input_size, epochs, batch_size, lr, seed, quiet,
                ignored={"--data": manifest, "--targets": targets_dir, "--folds": folds, "--map-size": map_size,
                         "--score-target": score_target, "--w-feat": w_feat, "--w-kd": w_kd,
                         "--freeze-stages": freeze_stages, "--mixed-precision": mixed_precision})
        return
    if manifest is None:
        raise click.UsageError("--data MANIFEST is required for --recipe teacher")

    cfg = load_config(DistillConfig, config_file, score_target=score_target, w_feat=w_feat, w_kd=w_kd,
                      freeze_stages=freeze_stages)
    d = to_dict(cfg)
    for key, value in (("name", student), ("input_size", input_size), ("map_size", map_size)):
        if value is not None:
            d["student"][key] = value
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("seed", seed),
                       ("mixed_precision", mixed_precision)):
        if value is not None:
            d["train"][key] = value
    if cpu:
        d["train"]["cpu"] = True
    cfg = from_dict(DistillConfig, d, where=config_file or "distill")
    if folds is not None:
        result = distill_folds(manifest, out_dir, cfg, k=folds, targets_dir=targets_dir,
                               seed=cfg.train.seed, quiet=quiet)
        _print_folds(result, out_dir)
        return
    out = run(manifest, out_dir, cfg, targets_dir, quiet=quiet)
    click.echo(str(out))


def _camera(out_dir, config_file, student, input_size, epochs, batch_size, lr, seed, quiet, ignored) -> None:
    from .camera import CameraConfig, train_camera  # lazy: distill.camera imports torch at top

    given = [k for k, v in ignored.items() if v is not None]
    if given:
        raise click.UsageError(f"--recipe camera does not take {', '.join(given)}")
    d = to_dict(load_config(CameraConfig, config_file))
    for key, value in (("name", student), ("input_size", input_size)):
        if value is not None:
            d["student"][key] = value
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("lr", lr), ("seed", seed)):
        if value is not None:
            d["train"][key] = value
    out = train_camera(out_dir, from_dict(CameraConfig, d, where=config_file or "camera"), quiet=quiet)
    click.echo(str(out))


def _broad(out_dir, config_file, logo, epochs, lr, seed, freeze_stages, quiet, ignored) -> None:
    given = [k for k, v in ignored.items() if v is not None]
    if given:
        raise click.UsageError(f"--recipe broad does not take {', '.join(given)}")
    d = to_dict(load_config(BroadConfig, config_file))
    for key, value in (("epochs", epochs), ("lr", lr), ("seed", seed)):
        if value is not None:
            d["train"][key] = value
    if freeze_stages is not None:
        d["freeze_stages"] = freeze_stages
    cfg = from_dict(BroadConfig, d, where=config_file or "broad")
    final = train_broad(Path(out_dir), cfg, progress=not quiet)
    click.echo(str(final))
    if logo:
        summary = run_logo(Path(out_dir), cfg, progress=not quiet)
        for g, r in summary["groups"].items():
            click.echo(f"held out {g:12s} mean tau {r['mean_tau']:.3f}  AUC {r['auc']:.3f}")
        click.echo(f"leave-one-group-out mean tau {summary['mean_tau']:.3f} ({summary['label']}): "
                   f"{Path(out_dir) / 'logo.json'}")


def _print_folds(result: dict, out_dir: str) -> None:
    from rich.console import Console
    from rich.table import Table

    mean, pooled = result["fold_mean"], result["pooled"]
    table = Table(title=f"{result['k']} grouped folds by scene, {result['n']} images ({result['label']})")
    for col in ("model", "SRCC (mean of folds)", "SRCC (pooled)", "pooled 95% CI"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name in mean:
        lo, hi = pooled[name]["srcc_ci95"]
        table.add_row(name, f"{mean[name]['srcc']:.3f}", f"{pooled[name]['srcc']:.3f}", f"[{lo:.3f}, {hi:.3f}]")
    console = Console()
    console.print(table)
    console.print("student per fold: " + ", ".join(f"{f['srcc']:.3f} ({'+'.join(f['test_scenes'])})"
                                                   for f in result["folds"]))
    per = {name: m["per_distortion"] for name, m in mean.items()}
    kinds = [k for k, v in per["student"].items() if v == v]  # NaN: no fold held that distortion
    beats = [k for k in kinds if all(per["student"][k] > per[p].get(k, float("-inf")) for p in per if p != "student")]
    console.print(f"student above every peer (mean of folds) on {len(beats)}/{len(kinds)} distortion types"
                  + (f": {', '.join(beats)}" if beats else "") + f"; details: {Path(out_dir) / 'folds.json'}")
