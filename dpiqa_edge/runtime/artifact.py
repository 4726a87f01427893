"""Finding an exported artifact and reading the metadata it carries (no torch, no backend needed).

An artifact is a file (``model.onnx``, OpenVINO ``model.xml`` + ``model.bin``, a ``model.mlpackage``
folder) or the export folder holding it beside ``export.json`` (DESIGN.md): every command that takes an
artifact accepts both. The metadata lives *inside* the artifact (ONNX ``metadata_props``, OpenVINO
``rt_info``, CoreML ``user_defined_metadata``; each backend class reads its own) so a bare file copied onto a
phone is usable alone;
``export.json`` repeats it with the parity results and the file sizes, which are checked here so a
truncated copy fails at load with one line instead of producing wrong scores.

Metadata keys (docs/ARCHITECTURE.md) are stored as strings in every format; :func:`encode_metadata`
and :func:`decode_metadata` are the one place that turns them into Python values and back.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ModelLoadError
from .formats import BY_SUFFIX, FORMATS, file_types
from .schema import check_export_record, check_metadata, check_name
from ..io import read_json

#: artifact file suffix -> backend name (the format table's, ``runtime/formats.py``)
SUFFIX_TO_BACKEND = BY_SUFFIX

#: keys every artifact must carry (ARCHITECTURE.md "Artifact metadata"); ``gate_threshold`` is written
#: by every export but may be absent from a hand-made artifact (then None: ``check`` needs --threshold)
REQUIRED_KEYS = (
    "dpiqa_edge_version", "model_type", "student", "target", "precision", "preprocessing", "raw_input",
    "score_range", "higher_is_better", "source_sha256", "outputs", "input_name",
)
#: keys whose string form is JSON (bools, numbers, the preprocessing dict); the others stay text
_JSON_KEYS = {"preprocessing", "raw_input", "higher_is_better", "gate_threshold", "dynamic_batch", "image_input",
              "runtime_options"}


def encode_metadata(meta: dict[str, Any]) -> dict[str, str]:
    """Python values -> the all-strings form stored in artifacts (JSON for dicts, bools and numbers)."""
    out = {}
    for key, value in meta.items():
        out[key] = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return out


def decode_metadata(raw: dict[str, str], where: str) -> dict[str, Any]:
    """The stored strings -> Python values; missing or malformed keys are a :class:`ModelLoadError`."""
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise ModelLoadError(f"{where}: not a dpiqa-edge artifact or metadata incomplete (missing {', '.join(missing)})")
    check_producer_version(raw["dpiqa_edge_version"], where)
    meta: dict[str, Any] = {}
    for key, value in raw.items():
        if key in _JSON_KEYS and isinstance(value, str):
            try:
                value = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                raise ModelLoadError(f"{where}: metadata {key}={value[:60]!r} is not valid JSON") from None
        meta[key] = value
    meta.setdefault("gate_threshold", None)
    if meta["higher_is_better"] is not True or meta["score_range"] != "0,100":
        raise ModelLoadError(f"{where}: metadata says score_range={meta['score_range']!r}, "
                             f"higher_is_better={meta['higher_is_better']!r}; dpiqa-edge artifacts are 0,100 / true")
    check_metadata(meta, where)  # types, ranges and allowlists of every field the runtime uses (runtime/schema.py)
    return meta


def check_producer_version(version: str, where: str) -> None:
    """Refuse an artifact written by a newer dpiqa-edge (its metadata may mean what this one cannot read)
    or by another major version; older releases of the same major version are read."""

    def parse(v: str) -> tuple[int, ...]:
        return tuple(int(p) for p in str(v).split("+")[0].split(".")[:3])

    try:
        theirs = parse(version)
    except ValueError:
        raise ModelLoadError(f"{where}: producer version {version!r} is not a dpiqa-edge version (X.Y.Z)") from None
    ours = parse(__version__)
    if theirs[:1] != ours[:1] or theirs[:2] > ours[:2]:
        raise ModelLoadError(f"{where}: written by dpiqa-edge {version}, this is {__version__}: unsupported producer "
                             f"version; upgrade dpiqa-edge or re-export with this one")


def resolve_artifact(path: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """An artifact file, ``.mlpackage`` or export folder -> (artifact path, decoded metadata).

    Raises :class:`ModelLoadError` (one line) when nothing loadable is there, the metadata is missing or
    wrong, or a file is shorter/longer than ``export.json`` recorded (a truncated copy).
    """
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: artifact not found")
    export_json = None
    # 1. an export folder: export.json names the artifact; otherwise the one artifact inside
    if path.is_dir() and path.suffix != ".mlpackage":
        export_json = path / "export.json"
        if export_json.is_file():
            record = _read_export_json(export_json)
            file = check_name(record["artifact"], path, export_json, "artifact")
            if not file.exists():
                raise ModelLoadError(f"{export_json}: names artifact {record.get('artifact')!r}, which is not in {path}")
        else:
            found = sorted(p for p in path.iterdir() if p.suffix in SUFFIX_TO_BACKEND and not p.name.startswith("."))
            if len(found) != 1:
                raise ModelLoadError(f"{path}: expected one artifact ({', '.join(SUFFIX_TO_BACKEND)}) or an export.json, "
                                     f"found {len(found)}")
            file = found[0]
            export_json = None
    else:
        file = path
        sibling = path.parent / "export.json"
        export_json = sibling if sibling.is_file() else None
    if file.suffix not in SUFFIX_TO_BACKEND:
        raise ModelLoadError(f"{file}: not an artifact (expected {file_types()})")
    check_readable(file)
    # 2. the recorded sizes catch a truncated or swapped copy before any backend parses it
    if export_json is not None:
        _check_sizes(export_json, _read_export_json(export_json))
    # 3. the metadata the artifact itself carries
    raw = read_raw_metadata(file)
    meta = decode_metadata(raw, str(file))
    expected = SUFFIX_TO_BACKEND[file.suffix]
    if meta["target"] != expected:
        raise ModelLoadError(f"{file}: metadata target {meta['target']!r} does not match the file type ({expected})")
    return file, meta


def check_readable(file: Path) -> None:
    """An artifact (and its companion files) that exists but cannot be opened is named as unreadable,
    never as missing or corrupt (a folder exported by another user with a tight umask, say)."""
    fmt = FORMATS[SUFFIX_TO_BACKEND[file.suffix]]
    for f in [file, *(file.with_suffix(s) for s in fmt.companions)]:
        if f.is_dir():
            continue
        try:
            with open(f, "rb"):
                pass
        except FileNotFoundError:
            continue  # reported by the reader with the artifact's own wording
        except PermissionError:
            raise ModelLoadError(f"{f}: not readable (permission denied); ask its owner to make it readable "
                                 "(chmod a+r) or copy it") from None


def backend_name(file: str | os.PathLike) -> str:
    suffix = Path(file).suffix
    if suffix not in SUFFIX_TO_BACKEND:
        raise ModelLoadError(f"{file}: not an artifact (expected {file_types()})")
    return SUFFIX_TO_BACKEND[suffix]


def read_raw_metadata(file: str | os.PathLike) -> dict[str, str]:
    """The string metadata stored in one artifact, read with the lightest tool for its format (its backend
    class's ``read_metadata``, beside the loader in ``runtime/backends/<format>.py``)."""
    file = Path(file)
    name = backend_name(file)
    try:
        return FORMATS[name].read_metadata(file)
    except ModelLoadError:
        raise
    except PermissionError as exc:
        raise ModelLoadError(f"{exc.filename or file}: not readable (permission denied)") from None
    except ImportError as exc:
        raise ModelLoadError(f"{file}: cannot read {name} metadata ({exc}); install dpiqa-edge[{name}]") from None
    except Exception as exc:  # a parser's own error type: truncated/corrupt file
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"{file}: corrupt or truncated {name} artifact ({msg})") from None


def _read_export_json(path: Path) -> dict[str, Any]:
    return check_export_record(read_json(path), path)


def _check_sizes(export_json: Path, record: dict[str, Any]) -> None:
    folder = export_json.parent
    for rel, size in (record.get("files") or {}).items():
        f = check_name(rel, folder, export_json, "files key")
        if not f.is_file():
            raise ModelLoadError(f"{f}: missing (listed in {export_json.name})")
        actual = f.stat().st_size
        if actual != int(size):
            raise ModelLoadError(f"{f}: {actual} bytes but {export_json.name} recorded {size}: truncated or replaced")
