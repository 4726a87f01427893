"""Manifests: CSV ``path,mos,split[,ref,scene,distortion,level]`` (DESIGN.md).

* ``path`` is relative to the manifest's folder (absolute allowed);
* ``mos`` is on the 0-100 scale, higher = better, or empty for an unlabelled image (teacher-only
  distillation, calibration frames);
* ``split`` is ``train``, ``val`` or ``test``.

Reading validates every row and fails with one line naming the file, the row number and the problem.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import ManifestError
from ..io import atomic_write

SPLITS = ("train", "val", "test")
COLUMNS = ("path", "mos", "split", "ref", "scene", "distortion", "level")
REQUIRED = ("path", "mos", "split")


@dataclass
class Row:
    path: str  #: as written in the manifest (relative to its folder, or absolute)
    mos: float | None  #: 0-100, higher is better; None when unlabelled
    split: str
    ref: str = ""
    scene: str = ""
    distortion: str = ""
    level: int | None = None
    abspath: str = ""  #: resolved absolute path (not written back)

    @property
    def group(self) -> str:
        """What a split must never cut: the scene, else the reference, else the image itself."""
        return self.scene or self.ref or self.path


class Manifest(list):
    """A list of :class:`Row` that remembers where it was read from."""

    def __init__(self, rows: Iterable[Row] = (), path: str | os.PathLike | None = None):
        super().__init__(rows)
        self.path = Path(path) if path else None

    def split(self, *names: str) -> "Manifest":
        return Manifest([r for r in self if r.split in names], self.path)

    def labelled(self) -> "Manifest":
        return Manifest([r for r in self if r.mos is not None], self.path)

    @property
    def paths(self) -> list[str]:
        return [r.abspath for r in self]

    @property
    def mos(self) -> list[float | None]:
        return [r.mos for r in self]


def read_manifest(path: str | os.PathLike, *, check_files: bool = True) -> Manifest:
    """Read and validate a manifest. Raises :class:`ManifestError` naming the file and row."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: not a UTF-8 text CSV") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ManifestError(f"{path}: missing column(s) {', '.join(missing)} (header: {','.join(header) or 'empty'})")
    base = path.parent
    rows = Manifest(path=path)
    for lineno, raw in enumerate(reader, start=2):
        raw = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        where = f"{path}:{lineno}"
        p = raw.get("path", "")
        if not p:
            raise ManifestError(f"{where}: empty path")
        mos_s = raw.get("mos", "")
        mos: float | None = None
        if mos_s != "":
            try:
                mos = float(mos_s)
            except ValueError:
                raise ManifestError(f"{where}: mos {mos_s!r} is not a number") from None
            if not math.isfinite(mos) or not (0.0 <= mos <= 100.0):
                raise ManifestError(f"{where}: mos {mos_s} outside the 0-100 scale")
        split = raw.get("split", "")
        if split not in SPLITS:
            raise ManifestError(f"{where}: unknown split {split!r}; valid: {', '.join(SPLITS)}")
        level_s = raw.get("level", "")
        try:
            level = int(level_s) if level_s != "" else None
        except ValueError:
            raise ManifestError(f"{where}: level {level_s!r} is not an integer") from None
        abspath = p if os.path.isabs(p) else str((base / p).resolve())
        if check_files and not os.path.isfile(abspath):
            raise ManifestError(f"{where}: image file not found: {p}")
        rows.append(Row(p, mos, split, raw.get("ref", ""), raw.get("scene", ""), raw.get("distortion", ""),
                        level, abspath))
    if not rows:
        raise ManifestError(f"{path}: manifest has no rows")
    return rows


def write_manifest(path: str | os.PathLike, rows: Sequence[Row]) -> Path:
    """Write rows atomically; only the optional columns some row uses are written."""
    path = Path(path)
    optional = [c for c in COLUMNS[3:] if any(getattr(r, c) not in ("", None) for r in rows)]
    cols = list(REQUIRED) + optional
    with atomic_write(path, "w", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            vals = []
            for c in cols:
                v = getattr(r, c)
                if c == "mos":
                    v = "" if v is None else f"{v:.4f}"
                vals.append("" if v is None else v)
            w.writerow(vals)
    return path


PSEUDO_MOS_LABEL = "synthetic pseudo-MOS"
SEVERITY_LABEL = "synthetic severity (camera ladders)"


def is_synthetic(manifest_path: str | os.PathLike) -> bool:
    """The embedded synthetic set writes ``synth.json`` beside its manifest, a camera ladder set
    ``camera.json``: their labels are synthetic, and every number computed on them says so."""
    folder = Path(manifest_path).parent
    return (folder / "synth.json").is_file() or (folder / "camera.json").is_file()


def mos_label(manifest_path: str | os.PathLike) -> str:
    folder = Path(manifest_path).parent
    if (folder / "camera.json").is_file():
        return SEVERITY_LABEL
    return PSEUDO_MOS_LABEL if (folder / "synth.json").is_file() else "MOS"


def sample_rows(rows: Sequence[Row], n: int, seed: int = 0) -> list[Row]:
    """At most ``n`` of ``rows``, sorted by path: all of them, or a seeded sample when there are more (the
    first ``n`` paths of a set laid out by scene would all be one scene)."""
    import random

    rows = sorted(rows, key=lambda r: r.path)
    return sorted(random.Random(seed).sample(rows, n), key=lambda r: r.path) if len(rows) > n else rows


def row_fields() -> list[str]:
    return [f.name for f in fields(Row)]
