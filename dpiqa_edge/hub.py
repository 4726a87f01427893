"""Hugging Face ids wherever a weights folder or file is taken, resolved through the standard HF cache.

``--sd-path``, ``--clip-path`` and the paper student's backbone ``weights`` accept either a local path or
a Hub id (``org/name``, optionally ``@revision``; a file inside it as ``org/name:file``). A local path that
exists always wins. An id goes through ``huggingface_hub.snapshot_download`` with only the files the
caller needs (an SD repository also holds multi-GB ``.ckpt`` and fp16 copies that are never read), so:

* online, a first use downloads into the cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
  ``~/.cache/huggingface/hub``) and later uses read it from there;
* with ``HF_HUB_OFFLINE=1`` nothing touches the network: an id already in the cache resolves, a missing
  one fails with one line naming the id and the cache folder.

The environment is read at call time (not when huggingface_hub was imported), so a process that sets
``HF_HUB_CACHE``/``HF_HUB_OFFLINE`` before a command gets exactly that.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ModelLoadError

#: org/name[@revision][:path/in/repo]; names as the Hub allows them (letters, digits, - _ .)
_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<rev>[\w./-]+?))?(?::(?P<file>[\w./-]+))?$")

#: what each kind of folder needs from its repository
SD_FILES = ["model_index.json", "vae/config.json", "unet/config.json", "vae/diffusion_pytorch_model.safetensors",
            "unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors.index.json",
            "unet/diffusion_pytorch_model.safetensors.index.json", "vae/diffusion_pytorch_model-*.safetensors",
            "unet/diffusion_pytorch_model-*.safetensors"]
CLIP_FILES = ["config.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "vocab.json",
              "merges.txt", "model.safetensors", "model.safetensors.index.json", "model-*.safetensors"]


def parse_id(value: str) -> tuple[str, str | None, str | None] | None:
    """``(repo, revision, file)`` when ``value`` reads as a Hub id, else None."""
    m = _ID.match(str(value))
    return (m["repo"], m["rev"], m["file"]) if m else None


def offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub spells it (1/ON/YES/TRUE), read now."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def cache_dir() -> Path:
    """The Hub cache this process would use now: HF_HUB_CACHE, else HF_HOME/hub, else the default."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "huggingface" / "hub"


def resolve_folder(value: str | os.PathLike, what: str, files: list[str] | None = None) -> Path:
    """A local folder, or the cached snapshot of a Hub id holding ``files`` (glob patterns).

    ``what`` names the option in errors (e.g. ``--sd-path``)."""
    path = Path(value).expanduser()
    if path.exists():
        return path
    parsed = parse_id(str(value))
    if parsed is None or parsed[2] is not None:
        raise ModelLoadError(f"{value}: {what} not found (a local folder, or a Hugging Face id like org/name)")
    repo, rev, _ = parsed
    return _snapshot(repo, rev, files, what)


def resolve_file(value: str | os.PathLike, what: str, default_patterns: tuple[str, ...] = ("*.safetensors",)) -> Path:
    """A local file, or a file of a Hub id: ``org/name:file`` names it, plain ``org/name`` must hold
    exactly one file matching ``default_patterns``."""
    path = Path(value).expanduser()
    if path.exists():
        return path
    parsed = parse_id(str(value))
    if parsed is None:
        raise ModelLoadError(f"{value}: {what} not found (a local file, or a Hugging Face id org/name[:file])")
    repo, rev, name = parsed
    folder = _snapshot(repo, rev, [name] if name else list(default_patterns), what)
    if name:
        found = [folder / name] if (folder / name).is_file() else []
    else:
        found = sorted(p for pat in default_patterns for p in folder.glob(pat) if p.is_file())
    if len(found) != 1:
        listing = ", ".join(p.name for p in found) or "none"
        raise ModelLoadError(f"{value}: {what} needs exactly one weights file in the snapshot {folder}, found "
                             f"{listing}; name it as {repo}:FILE")
    return found[0]


def _snapshot(repo: str, revision: str | None, files: list[str] | None, what: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelLoadError(f"{repo}: {what} is a Hugging Face id but huggingface_hub is not installed "
                             "(pip install huggingface_hub) - or give a local folder") from None
    cache, off = cache_dir(), offline()
    try:
        folder = snapshot_download(repo, revision=revision, cache_dir=str(cache), allow_patterns=files,
                                   local_files_only=off)
    except Exception as exc:  # noqa: BLE001 - hub errors (offline miss, 404, gated, network) all become one line
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        if off:
            raise ModelLoadError(f"{repo}: {what}: no local path of that name, and as a Hugging Face id not in the "
                                 f"cache {cache} (HF_HUB_OFFLINE=1; download it once online, or give a local path)") from None
        raise ModelLoadError(f"{repo}: {what}: no local path of that name, and as a Hugging Face id it cannot be "
                             f"fetched into {cache} ({type(exc).__name__}: {reason})") from None
    return Path(folder)
