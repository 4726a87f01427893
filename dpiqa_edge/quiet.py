"""Quiet by default: what the field's libraries print while they work (NNCF's per-node INFO lines and
progress bars, coremltools' pass-by-pass bars and version warnings, torch.onnx's tracer warnings,
OpenVINO / onnxruntime native messages) goes to a log file in the output folder, not to the terminal;
the project's own one-line progress and results stay on the terminal.

``third_party_output(log_file)`` wraps the calls that run those libraries (a conversion, a quantization,
loading a backend); it never wraps code that prints the project's own lines. Inside it, file descriptors
1 and 2 point at ``log_file`` (appended to): native libraries write there directly, and Python's
``sys.stdout``/``sys.stderr`` (tqdm, rich, ``warnings``, every logging handler, NNCF's own stdout
handler included) end there too. Redirecting the descriptors rather than swapping ``sys.stderr`` matters:
libraries that set up logging inside the block (transformers binds ``sys.stderr.flush``) keep the real
stream, which reaches the terminal again once the block ends.

``dpiqa-edge --verbose`` (or ``DPIQA_VERBOSE=1``, which worker subprocesses inherit) turns it off: the
libraries print to the terminal as they always did, and no log file is written.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

VERBOSE_ENV = "DPIQA_VERBOSE"
LOG_NAME = "third-party.log"


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def set_verbose() -> None:
    """``--verbose``: an environment variable, so benchmark and export workers started later inherit it."""
    os.environ[VERBOSE_ENV] = "1"


def _flush() -> None:
    for stream in {id(s): s for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s is not None}.values():
        with contextlib.suppress(Exception):
            stream.flush()


@contextlib.contextmanager
def third_party_output(log_file: str | os.PathLike) -> Iterator[Path | None]:
    """Send everything written to file descriptors 1 and 2 inside the block to ``log_file`` (appended; its
    folder is created). Yields the log path, or None in verbose mode (nothing redirected)."""
    if is_verbose():
        yield None
        return
    path = Path(log_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab", buffering=0) as sink:
        saved = []
        _flush()
        try:
            for fd in (1, 2):
                try:
                    saved.append((fd, os.dup(fd)))
                except OSError:  # no such descriptor (an embedded interpreter)
                    continue
                os.dup2(sink.fileno(), fd)
            yield path
        finally:
            _flush()  # what Python buffered inside the block belongs to the log
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)


def default_log() -> Path:
    """Where library output goes when no output folder is at hand (``check``, ``QualityScorer``):
    ``$DPIQA_CACHE_DIR/third-party.log``, else ``~/.cache/dpiqa-edge/third-party.log``."""
    root = os.environ.get("DPIQA_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "dpiqa-edge")
    return Path(root) / LOG_NAME
