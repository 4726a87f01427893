"""Atomic writes and hashing. Every artifact, checkpoint, manifest and report goes through here.

A file is written to a temporary name in the same folder and renamed over the target when complete,
so a crash mid-write leaves the previous version intact and never a half-written file under the real
name. Folders (an export folder, an ``.mlpackage``) are built under a temporary name and renamed too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import ConfigError, ModelLoadError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[Any]:
    """Open a temporary file beside ``path`` for writing; on success fsync and rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600 whatever the umask; give the file the mode open() would have (0666 & ~umask),
        # so an export served or copied by another user is readable as any other file the user writes
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process umask, read without changing it (``/proc/self/status`` on Linux; elsewhere set and
    restored at once, as Python offers no getter)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a library that writes by file name; rename on success.

    Works for files and folders (e.g. ``safetensors.torch.save_file``, ``onnx.save``, an ``.mlpackage``).
    An existing folder at ``path`` is replaced only once the new one is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{next(tempfile._get_candidate_names())}.tmp{path.suffix}"
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


#: files by which an output folder is recognised as this toolkit's own (an export, import or run folder)
OWN_MARKERS = ("export.json", "config.json")


def is_own_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` is a folder this toolkit wrote: its ``export.json`` carries our artifact metadata
    (``metadata.dpiqa_edge_version``) or its ``config.json`` our ``model_type`` and ``producer_version``."""
    path = Path(path)
    for name in OWN_MARKERS:
        marker = path / name
        if marker.is_symlink() or not marker.is_file() or marker.stat().st_size > 16 << 20:
            continue
        try:
            record = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            continue
        if not isinstance(record, dict):
            continue
        meta = record.get("metadata")
        if name == "export.json" and isinstance(meta, dict) and isinstance(meta.get("dpiqa_edge_version"), str):
            return True
        if (name == "config.json" and str(record.get("model_type", "")).startswith("dpiqa_")
                and isinstance(record.get("producer_version"), str)):
            return True
    return False


def check_out_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Refuse an output folder that cannot be replaced without losing someone's files.

    Fine: a path that does not exist yet, an empty folder, or a folder this toolkit wrote
    (:func:`is_own_folder`; replaced whole only once the new one is complete, ``atomic_path``).
    Refused with a one-line :class:`~dpiqa_edge.errors.ConfigError` (exit 2): a symbolic link, a file, a
    folder holding anything else, or a parent that is not a folder.
    """
    path = Path(path)
    if path.is_symlink():
        raise ConfigError(f"{path}: {option} is a symbolic link; give the real folder (or a new name)")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"{path}: {option} is inside {parent}, which is not a folder")
    if not path.exists():
        return path
    if not path.is_dir():
        raise ConfigError(f"{path}: {option} exists and is not a folder; give a new folder name")
    try:
        empty = next(path.iterdir(), None) is None
    except OSError as exc:
        raise ConfigError(f"{path}: {option} cannot be listed ({exc.strerror or exc})") from None
    if not empty and not is_own_folder(path):
        raise ConfigError(f"{path}: {option} holds files dpiqa-edge did not write (no export.json / config.json of "
                          "ours); refusing to replace it: give a new or empty folder")
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_write(path, "wb") as fh:
        fh.write(data)
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: file not found") from None
    except PermissionError:
        raise ModelLoadError(f"{path}: not readable (permission denied)") from None
    except IsADirectoryError:
        raise ModelLoadError(f"{path}: is a folder, not a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelLoadError(f"{path}: not valid JSON (nested too deeply)") from None
    except IsADirectoryError:
        raise ModelLoadError(f"{path}: a folder, expected a JSON file") from None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """sha256 of a file, or of every file in a folder (sorted relative paths + contents)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                h.update(block)
    return h.hexdigest()


def dir_size(path: str | os.PathLike) -> int:
    """Bytes on disk of a file or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
