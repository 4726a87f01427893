"""Index real IQA datasets, laid out as they ship, into the one manifest form (``path,mos,split,...``).

MOS is mapped onto 0-100 (higher = better) from each set's *nominal* range, and a sidecar
``<out>.json`` records the original range, the mapping and where the split came from:

| name      | score file(s) (searched under ``--root``)                        | nominal | split                  |
|-----------|-------------------------------------------------------------------|---------|------------------------|
| koniq10k  | koniq10k_distributions_sets.csv (+ koniq10k_scores_and_distributions.csv) | MOS 1-5 | official ``set`` column; seeded 80/20 when only the scores CSV exists |
| spaq      | ``MOS and Image attribute scores.xlsx`` (images in TestImage/)    | 0-100   | seeded 80/20           |
| livec     | Data/AllImages_release.mat + Data/AllMOS_release.mat (images in Images/; the first 7, the training images, dropped) | 0-100 | seeded 80/20 |
| kadid10k  | dmos.csv (dist_img, ref_img, dmos, var; images in images/)        | DMOS 1-5, higher = better | seeded 80/20 grouped by reference |
| csv       | any ``path,mos[,split,ref,scene]`` CSV (paths relative to it)      | 0-100 or ``mos_range`` | its own, else seeded 80/20 |

Seeded splits are grouped (by reference for KADID, by scene/ref columns for a CSV that has them).
``val_fraction`` carves a val split out of a seeded split (not out of an official one).
A malformed score file fails with one line naming the file (and row) and the problem.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Iterable

from ..errors import InputError
from ..io import write_json
from .manifest import SPLITS, Row, read_manifest, write_manifest
from .splits import split_rows

DATASETS = ("koniq10k", "spaq", "livec", "kadid10k", "csv")
NOMINAL = {"koniq10k": (1.0, 5.0), "spaq": (0.0, 100.0), "livec": (0.0, 100.0), "kadid10k": (1.0, 5.0)}
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}
LIVEC_TRAINING = 7  # the first 7 entries of the .mat files are LIVE Challenge's training images


def _find(root: Path, name: str, required: bool = True) -> Path | None:
    """``root/name``, else the first match anywhere under root (datasets unzip with an extra level)."""
    direct = root / name
    if direct.is_file():
        return direct
    hits = sorted(root.rglob(Path(name).name))
    if hits:
        return hits[0]
    if required:
        raise InputError(f"{root}: {name} not found (expected as the dataset ships it)")
    return None


def _image_dir(root: Path, candidates: Iterable[str], first: str, where: Path) -> Path:
    """The folder holding the images: the first candidate that has ``first`` (searched then)."""
    for c in candidates:
        if (root / c / first).is_file():
            return root / c
    hits = sorted(root.rglob(first))
    if hits:
        return hits[0].parent
    raise InputError(f"{where}: image {first!r} listed there not found under {root}")


def _to_100(value: str | float, lo: float, hi: float, where: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: score {value!r} is not a number") from None
    eps = 1e-6 * (hi - lo)
    if not math.isfinite(v) or v < lo - eps or v > hi + eps:
        raise InputError(f"{where}: score {value} outside the nominal range {lo:g}-{hi:g}")
    return min(100.0, max(0.0, (v - lo) / (hi - lo) * 100.0))


def _read_csv(path: Path, required: Iterable[str]) -> list[tuple[int, dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc.__class__.__name__})") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)} (header: {','.join(header) or 'empty'})")
    rows = [(i, {(k or "").strip(): (v or "").strip() for k, v in r.items()}) for i, r in enumerate(reader, start=2)]
    if not rows:
        raise InputError(f"{path}: no rows")
    return rows


# --- one reader per dataset: root -> (rows with absolute paths, info) -----------------------------------
def _koniq(root: Path) -> tuple[list[Row], dict]:
    sets = _find(root, "koniq10k_distributions_sets.csv", required=False)
    scores = _find(root, "koniq10k_scores_and_distributions.csv", required=sets is None)
    lo, hi = NOMINAL["koniq10k"]
    mos: dict[str, float] = {}
    split: dict[str, str] = {}
    src = scores or sets
    for line, r in _read_csv(src, ("image_name", "MOS")):
        mos[r["image_name"]] = _to_100(r["MOS"], lo, hi, f"{src}:{line}")
    if sets is not None:
        for line, r in _read_csv(sets, ("image_name", "set")):
            s = SPLIT_NAMES.get(r["set"].lower())
            if s is None:
                raise InputError(f"{sets}:{line}: unknown set {r['set']!r}; expected training/validation/test")
            split[r["image_name"]] = s
            if scores is None:
                continue
            if r["image_name"] not in mos:
                raise InputError(f"{sets}:{line}: image {r['image_name']} not in {scores.name}")
    names = list(mos)
    if split and (absent := [n for n in names if n not in split]):
        raise InputError(f"{sets}: {len(absent)} images of {src.name} have no set, e.g. {absent[0]}")
    folder = _image_dir(root, ("1024x768", "512x384", "images", "."), names[0], src)
    rows = [Row("", mos[n], split.get(n, ""), abspath=str(folder / n)) for n in names]
    return rows, {"score_files": [str(p) for p in (scores, sets) if p], "official_split": bool(split)}


def _spaq(root: Path) -> tuple[list[Row], dict]:
    import openpyxl

    xlsx = _find(root, "MOS and Image attribute scores.xlsx")
    try:
        wb = openpyxl.load_workbook(xlsx, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile/KeyError/InvalidFileException for bad files
        raise InputError(f"{xlsx}: not a readable .xlsx ({exc.__class__.__name__})") from None
    table = list(wb.worksheets[0].iter_rows(values_only=True))
    wb.close()
    header = [str(h).strip().lower() if h is not None else "" for h in (table[0] if table else [])]
    if "image name" not in header or "mos" not in header:
        raise InputError(f"{xlsx}: missing column(s) 'Image name' and/or 'MOS' (header: {header})")
    i_name, i_mos = header.index("image name"), header.index("mos")
    body = [(n, r) for n, r in enumerate(table[1:], start=2) if any(v is not None for v in r)]
    if not body:
        raise InputError(f"{xlsx}: no rows")
    folder = _image_dir(root, ("TestImage", "images", "."), str(body[0][1][i_name]), xlsx)
    lo, hi = NOMINAL["spaq"]
    rows = [Row("", _to_100(r[i_mos], lo, hi, f"{xlsx}:{n}"), "", abspath=str(folder / str(r[i_name]).strip()))
            for n, r in body]
    return rows, {"score_files": [str(xlsx)], "official_split": False}


def _livec(root: Path) -> tuple[list[Row], dict]:
    import numpy as np
    from scipy.io import loadmat

    def load(name: str, key: str) -> tuple[Path, np.ndarray]:
        path = _find(root, f"Data/{name}")
        try:
            return path, np.asarray(loadmat(path)[key], dtype=object).reshape(-1)
        except KeyError:
            raise InputError(f"{path}: variable {key!r} not found") from None
        except Exception as exc:  # scipy raises ValueError/MatReadError/OSError for bad files
            raise InputError(f"{path}: not a readable .mat file ({exc.__class__.__name__})") from None

    names_path, names = load("AllImages_release.mat", "AllImages_release")
    mos_path, mos = load("AllMOS_release.mat", "AllMOS_release")
    if names.size != mos.size:
        raise InputError(f"{mos_path}: {mos.size} scores but {names_path.name} lists {names.size} images")
    names = [str(np.asarray(n).reshape(-1)[0]) for n in names][LIVEC_TRAINING:]
    mos = mos[LIVEC_TRAINING:]
    folder = _image_dir(root, ("Images", "."), names[0], names_path)
    lo, hi = NOMINAL["livec"]
    rows = [Row("", _to_100(m, lo, hi, f"{mos_path}:entry {i + LIVEC_TRAINING + 1}"), "", abspath=str(folder / n))
            for i, (n, m) in enumerate(zip(names, mos))]
    return rows, {"score_files": [str(names_path), str(mos_path)], "official_split": False,
                  "dropped": f"the first {LIVEC_TRAINING} entries (training images)"}


def _kadid(root: Path) -> tuple[list[Row], dict]:
    path = _find(root, "dmos.csv")
    table = _read_csv(path, ("dist_img", "ref_img", "dmos"))
    folder = _image_dir(root, ("images", "."), table[0][1]["dist_img"], path)
    lo, hi = NOMINAL["kadid10k"]
    rows = []
    for line, r in table:
        stem = Path(r["dist_img"]).stem.split("_")  # I01_03_02 -> reference I01, distortion 03, level 2
        dist, level = (stem[1], int(stem[2])) if len(stem) == 3 and stem[2].isdigit() else ("", None)
        ref = Path(r["ref_img"]).stem
        rows.append(Row("", _to_100(r["dmos"], lo, hi, f"{path}:{line}"), "", ref, ref, dist, level,
                        abspath=str(folder / r["dist_img"])))
    return rows, {"score_files": [str(path)], "official_split": False, "grouped_by": "reference"}


def _csv(root: Path, csv_file: str | os.PathLike | None, mos_range: tuple[float, float],
         out: Path) -> tuple[list[Row], dict]:
    if csv_file is None:  # the one CSV in root, not counting the manifest this run (re)writes
        found = sorted(p for p in root.glob("*.csv") if p.resolve() != out.resolve())
        if len(found) != 1:
            raise InputError(f"{root}: expected exactly one .csv here (found {len(found)}); name it with --csv")
        csv_file = found[0]
    path = Path(csv_file)
    lo, hi = mos_range
    rows, any_split = [], False
    for line, r in _read_csv(path, ("path", "mos")):
        where = f"{path}:{line}"
        split = r.get("split", "")
        if split:
            if split.lower() not in SPLIT_NAMES:
                raise InputError(f"{where}: unknown split {split!r}; valid: {', '.join(SPLITS)}")
            split, any_split = SPLIT_NAMES[split.lower()], True
        mos = None if r["mos"] == "" else _to_100(r["mos"], lo, hi, where)
        p = r["path"]
        if not p:
            raise InputError(f"{where}: empty path")
        abspath = p if os.path.isabs(p) else str(path.parent / p)
        rows.append(Row("", mos, split, r.get("ref", ""), r.get("scene", ""), abspath=abspath))
    if any_split and any(not r.split for r in rows):
        raise InputError(f"{path}: some rows have a split and some do not")
    return rows, {"score_files": [str(path)], "official_split": any_split}


def index_dataset(name: str, root, out, *, seed: int = 0, mos_range: tuple[float, float] | None = None,
                  csv_file=None, val_fraction: float = 0.0) -> Path:
    """Index dataset ``name`` found under ``root`` into manifest ``out`` (+ ``out`` with ``.json``)."""
    # 1. Read the dataset's own score files.
    if name not in DATASETS:
        raise InputError(f"data index: unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise InputError(f"{root}: dataset folder not found")
    if name == "csv":
        rng = tuple(float(v) for v in (mos_range or (0.0, 100.0)))
        if len(rng) != 2 or not rng[1] > rng[0]:
            raise InputError(f"data index: --mos-range must be lo,hi with hi > lo, got {mos_range}")
        rows, info = _csv(root, csv_file, rng, out)
    else:
        rng = NOMINAL[name]
        rows, info = {"koniq10k": _koniq, "spaq": _spaq, "livec": _livec, "kadid10k": _kadid}[name](root)

    # 2. Every image must exist: name the first missing one and how many are missing.
    missing = [r.abspath for r in rows if not os.path.isfile(r.abspath)]
    if missing:
        raise InputError(f"{root}: {len(missing)} of {len(rows)} listed images not found, e.g. {missing[0]}")

    # 3. Splits: official where the set has one, else seeded 80/20 (grouped where groups exist).
    for r in rows:
        r.path = r.abspath  # the group of an image without scene/ref is its own path
    if not info["official_split"]:
        fractions = {"train": 0.8 - val_fraction, "val": val_fraction, "test": 0.2}
        rows = split_rows(rows, fractions, seed)
        info["split"] = f"seeded (seed {seed}) {fractions}, grouped by {'scene/ref' if any(r.group != r.path for r in rows) else 'image'}"
    else:
        info["split"] = "official"

    # 4. Paths relative to the manifest's folder; write, then read back through the validator.
    base = out.parent.resolve()
    for r in rows:
        r.path = os.path.relpath(Path(r.abspath).resolve(), base)
    write_manifest(out, rows)
    write_json(out.with_suffix(".json"), {
        "dataset": name, "root": str(root.resolve()), "images": len(rows), "mos_range_original": list(rng),
        "mos_mapping": f"mos_0_100 = (mos - {rng[0]:g}) / ({rng[1]:g} - {rng[0]:g}) * 100",
        "score_range": [0, 100], "higher_is_better": True, **info,
        "per_split": {s: sum(r.split == s for r in rows) for s in SPLITS},
    })
    read_manifest(out)
    return out
