"""Distillation targets on disk: the teacher's scores and F_quality maps (numpy + safetensors only).

Layout of a targets folder (written by ``teacher score``, read by distillation without the teacher):

* ``shard-00000.safetensors`` ... : ``maps`` float16 (n, 8, m, m), ``scores`` float32 (n,); the metadata
  entry ``paths`` is the JSON list of the n manifest ``path`` values, in order. One file per shard, each
  written atomically, so an interrupted scoring run resumes shard by shard.
* ``index.json``: ``{"format": "dpiqa_targets", "version": 1, "map_size": m, "channels": 8, "count": N,
  "shards": [{"file": ..., "count": n}], "teacher": {...provenance}}``, written last.
* ``scores.csv``: ``path,teacher_score`` (0-100), keyed by the manifest's ``path`` column.

This module must not import torch (distillation and reports read targets without building the teacher).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ModelLoadError
from ..io import atomic_path, atomic_write, read_json, write_json

FORMAT = "dpiqa_targets"
VERSION = 1


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.safetensors"


def write_shard(out_dir: str | os.PathLike, k: int, paths: Sequence[str], scores, maps) -> Path:
    """Write shard ``k``: ``maps`` (n, 8, m, m) stored float16, ``scores`` (n,) float32, ``paths`` in metadata."""
    from safetensors.numpy import save_file

    maps = np.ascontiguousarray(np.asarray(maps, dtype=np.float16))
    scores = np.ascontiguousarray(np.asarray(scores, dtype=np.float32).reshape(-1))
    if maps.ndim != 4 or maps.shape[0] != len(paths) or scores.shape[0] != len(paths):
        raise ValueError(f"shard {k}: {len(paths)} paths, maps {maps.shape}, scores {scores.shape}")
    path = Path(out_dir) / shard_name(k)
    with atomic_path(path) as tmp:
        save_file({"maps": maps, "scores": scores}, str(tmp), metadata={"paths": json.dumps(list(paths))})
    return path


def read_shard_paths(path: str | os.PathLike) -> list[str] | None:
    """The ``paths`` of a complete shard file, or None when it is missing or unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            return json.loads((fh.metadata() or {})["paths"])
    except Exception:  # noqa: BLE001 - any unreadable shard is simply redone
        return None


def finalize_targets(out_dir: str | os.PathLike, shard_counts: Sequence[int], map_size: int,
                     teacher: dict[str, Any] | None = None) -> Path:
    """Write ``scores.csv`` (from the shards, in shard order) and then ``index.json``."""
    out_dir = Path(out_dir)
    shards = [{"file": shard_name(k), "count": int(n)} for k, n in enumerate(shard_counts)]
    with atomic_write(out_dir / "scores.csv", "w", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["path", "teacher_score"])
        for s in shards:
            for p, v in _shard_scores(out_dir / s["file"]):
                w.writerow([p, f"{v:.6f}"])
    write_json(out_dir / "index.json", {"format": FORMAT, "version": VERSION, "map_size": int(map_size),
                                        "channels": 8, "count": int(sum(shard_counts)), "shards": shards,
                                        "teacher": teacher or {}})
    return out_dir


def write_targets(out_dir: str | os.PathLike, paths: Sequence[str], scores, maps, shard_size: int = 256,
                  teacher: dict[str, Any] | None = None) -> Path:
    """All targets in one call (tests, stand-ins): shards of ``shard_size`` + scores.csv + index.json."""
    maps = np.asarray(maps)
    counts = []
    for k, start in enumerate(range(0, len(paths), shard_size)):
        stop = start + shard_size
        write_shard(out_dir, k, paths[start:stop], np.asarray(scores)[start:stop], maps[start:stop])
        counts.append(len(paths[start:stop]))
    return finalize_targets(out_dir, counts, int(maps.shape[-1]), teacher)


def _shard_scores(path: Path):
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        paths = json.loads(fh.metadata()["paths"])
        scores = fh.get_tensor("scores")
    return zip(paths, scores.tolist())


class Targets:
    """Read a targets folder: ``.scores`` {path: teacher score 0-100}, ``.map(path)`` float32 (8, m, m),
    ``.map_size``, ``.paths``. Maps are read lazily, one shard at a time (the last shard is kept)."""

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        index = read_json(self.dir / "index.json")
        if not isinstance(index, dict) or index.get("format") != FORMAT:
            raise ModelLoadError(f"{self.dir / 'index.json'}: not a dpiqa targets index")
        self.index = index
        self.map_size = int(index["map_size"])
        self.scores: dict[str, float] = {}
        self._where: dict[str, tuple[str, int]] = {}
        for s in index["shards"]:
            shard = self.dir / s["file"]
            paths = read_shard_paths(shard)
            if paths is None or len(paths) != s["count"]:
                raise ModelLoadError(f"{shard}: missing or unreadable targets shard (re-run teacher score)")
            for i, (p, v) in enumerate(_shard_scores(shard)):
                self.scores[p] = float(v)
                self._where[p] = (s["file"], i)
        self._cache: tuple[str, np.ndarray] | None = None

    @property
    def paths(self) -> list[str]:
        return list(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    def __contains__(self, path: str) -> bool:
        return path in self._where

    def map(self, path: str) -> np.ndarray:
        try:
            file, i = self._where[path]
        except KeyError:
            raise ModelLoadError(f"{self.dir}: no teacher target for {path!r}") from None
        if self._cache is None or self._cache[0] != file:
            from safetensors.numpy import load_file

            self._cache = (file, load_file(str(self.dir / file))["maps"])
        return self._cache[1][i].astype(np.float32)
