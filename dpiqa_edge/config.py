"""Config plumbing: TOML run recipes map 1:1 onto dataclasses; the config used is saved as JSON beside
the outputs, and ``config.json`` beside ``model.safetensors`` rebuilds any checkpoint by itself.

Stages define their own dataclasses (``TeacherConfig``, ``StudentConfig``, ``DistillConfig`` ...) next to
the code that uses them; this module only loads, overrides, validates and saves them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError
from .io import read_json, write_json

T = TypeVar("T")

#: the repository's run recipes (``configs/*.toml``): the defaults of ``demo`` and ``default-model``; the
#: repository root (its parent) is what cards and logs print paths relative to
CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "config") -> T:
    """Build dataclass ``cls`` from a dict, recursing into nested dataclasses; unknown keys are errors."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    kwargs = {}
    for key, value in data.items():
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, where=f"{where}.{key}")
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


def load_config(cls: type[T], path: str | os.PathLike | None = None, *, section: str | None = None,
                **overrides: Any) -> T:
    """Defaults of ``cls`` <- TOML file (optionally one ``[section]``) <- non-None CLI ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML ({exc})") from None
        if section is not None:
            data = data.get(section, {})
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    return from_dict(cls, data, where=str(path or cls.__name__))


def save_config(obj: Any, path: str | os.PathLike, **extra: Any) -> Path:
    d = to_dict(obj) if dataclasses.is_dataclass(obj) else dict(obj)
    d.update(extra)
    return write_json(path, d)


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    return read_json(path)
