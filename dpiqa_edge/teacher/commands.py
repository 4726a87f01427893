"""``dpiqa-edge teacher train|score``: the DP-IQA teacher (Stable Diffusion UNet prior)."""

from __future__ import annotations

import click

from ..config import load_config
from .score import score_teacher
from .train import TeacherRunConfig, config_summary, train_teacher

TRAIN_EPILOG = """\b
Sources (pick one):
  --sd-path SD_DIR --clip-path CLIP_DIR   real SD-1.5 (diffusers layout) + CLIP ViT-L/14 text model;
                                          each a local folder or a Hugging Face id, e.g.
                                          --sd-path stable-diffusion-v1-5/stable-diffusion-v1-5
                                          --clip-path openai/clip-vit-large-patch14
                                          (HF cache; HF_HUB_OFFLINE=1 reads the cache only)
  --sd-path SD_DIR --prompt-embeddings F  the 1485x768 prompt matrix precomputed (safetensors)
  --tiny                                  tiny random-init configs (tests, demo; no weights needed)
\b
Recipe: configs/teacher.toml (SPEC: 512 px, Adam 1e-5, batch 16, 30 epochs, MultiStepLR [5] x0.2, fp16 on GPU).
Several GPUs or machines:  accelerate launch --num_processes 4 -m dpiqa_edge.cli teacher train ...
Interrupted? Run the same command again: it resumes from OUT/last (--no-resume starts over).
\b
Example (demo size):
  dpiqa-edge teacher train --data synth/manifest.csv --out runs/teacher --tiny --config configs/teacher-demo.toml
"""


@click.group()
def teacher() -> None:
    """The DP-IQA teacher: train on MOS, score images into distillation targets."""


@teacher.command(epilog=TRAIN_EPILOG)
@click.option("--data", "manifest", required=True, type=click.Path(dir_okay=False), help="Manifest CSV (path,mos,split).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Run folder: config.json + model.safetensors (best val SRCC), last/, best/, history.json.")
@click.option("--sd-path", help="Stable Diffusion folder (diffusers layout) or Hugging Face id.")
@click.option("--clip-path", help="CLIP text model with projection (ViT-L/14): folder or Hugging Face id.")
@click.option("--prompt-embeddings", type=click.Path(dir_okay=False), help="Precomputed 1485xD prompt matrix (safetensors).")
@click.option("--tiny", is_flag=True, help="Tiny random-init teacher (tests and the demo).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="Run recipe TOML (default: SPEC's).")
@click.option("--epochs", type=int, help="Override train.epochs.")
@click.option("--batch-size", type=int, help="Override train.batch_size (global, split over processes).")
@click.option("--lr", type=float, help="Override train.lr.")
@click.option("--seed", type=int, help="Override train.seed.")
@click.option("--image-size", type=int, help="Override image_size (multiple of 64).")
@click.option("--decoder-width", type=int, help="Override decoder_width.")
@click.option("--map-size", type=int, help="Override map_size.")
@click.option("--vae-input-range", type=click.Choice(["-1,1", "0,1"]), help="VAE input range; 0,1 = reference code.")
@click.option("--rank-weight", type=float, help="Pairwise ranking loss weight (0 = off).")
@click.option("--save-every-steps", type=int, help="Also checkpoint last/ every N steps mid-epoch.")
@click.option("--cpu", is_flag=True, default=None, help="Force CPU even when a GPU is present.")
@click.option("--resume/--no-resume", default=None, help="Continue from OUT/last when it exists (default: yes).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(manifest, out_dir, sd_path, clip_path, prompt_embeddings, tiny, config_file, epochs, batch_size, lr, seed,
          image_size, decoder_width, map_size, vae_input_range, rank_weight, save_every_steps, cpu, resume,
          quiet) -> None:
    """Train the teacher on MOS; the best epoch lands in OUT as config.json + model.safetensors."""
    import dataclasses
    import shutil
    from pathlib import Path

    cfg = load_config(TeacherRunConfig, config_file, image_size=image_size, decoder_width=decoder_width,
                      map_size=map_size, vae_input_range=vae_input_range, rank_weight=rank_weight)
    loop_over = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, save_every_steps=save_every_steps,
                     cpu=cpu, resume=resume, progress=False if quiet else None)
    cfg.train = dataclasses.replace(cfg.train, **{k: v for k, v in loop_over.items() if v is not None})
    if cfg.train.resume is False:
        shutil.rmtree(Path(out_dir) / "last", ignore_errors=True)
    click.echo(f"teacher: {config_summary(cfg)}", err=True)
    out = train_teacher(manifest, out_dir, cfg, sd_path=sd_path, clip_path=clip_path,
                        prompt_embeddings=prompt_embeddings, tiny=tiny)
    click.echo(str(out))


@teacher.command()
@click.option("--teacher", "teacher_dir", required=True, type=click.Path(file_okay=False), help="Trained teacher folder.")
@click.option("--data", "manifest", required=True, type=click.Path(dir_okay=False), help="Manifest CSV (mos may be empty).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Targets folder.")
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--shard-size", type=int, default=256, show_default=True, help="Images per maps shard (resume unit).")
@click.option("--cpu", is_flag=True, help="Force CPU even when a GPU is present.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def score(teacher_dir, manifest, out_dir, batch_size, shard_size, cpu, quiet) -> None:
    """Score a manifest with a trained teacher -> scores.csv + F_quality shards (float16) + index.json.

    Runs on the GPU when present, sharded over processes under `accelerate launch`; an interrupted run
    resumes shard by shard."""
    click.echo(str(score_teacher(teacher_dir, manifest, out_dir, batch_size=batch_size, shard_size=shard_size,
                                 cpu=cpu, progress=not quiet)))
