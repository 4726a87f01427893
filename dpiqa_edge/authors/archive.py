"""Bounding what reading a released file costs, before torch (600 MB of RSS by itself) is even imported.

A torch checkpoint is a zip whose records ``torch.save`` stores uncompressed; a crafted one can hold a
deflated record that inflates to gigabytes from a file of a few MB. :func:`check_zip_budget` reads only
the zip's central directory and refuses any file whose records declare more than its own size plus
:data:`INFLATE_SLACK`, so nothing is inflated (miniz, torch's reader, allocates by the declared size).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import ModelLoadError

#: bytes a checkpoint may inflate to beyond its own size on disk: ``torch.save`` stores records
#: uncompressed, so a real checkpoint (or a re-zipped one) never expands by more than this
INFLATE_SLACK = 64 << 20


def check_zip_budget(path: Path, slack: int = INFLATE_SLACK) -> None:
    """Read at most a bounded number of bytes: a torch zip checkpoint's records are checked, by the sizes
    their headers declare, against a budget of the file's own size + ``slack`` before any is inflated (a
    2 MB file must not decompress to gigabytes). Legacy (non-zip) checkpoints are read as they are, so
    they are bounded by their size on disk. The inflater (miniz) allocates and stops at the declared size."""
    if not zipfile.is_zipfile(path):
        return
    budget = path.stat().st_size + slack
    try:
        with zipfile.ZipFile(path) as zf:
            records = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not a readable torch checkpoint (zip: {exc})") from None
    total = 0
    for info in records:
        total += info.file_size
        if info.file_size > budget or total > budget:
            raise ModelLoadError(f"{path}: refused: record {info.filename[:80]!r} declares {info.file_size / 1e6:.0f} MB "
                                 f"uncompressed ({total / 1e6:.0f} MB so far) from a {path.stat().st_size / 1e6:.1f} MB "
                                 "file; a torch checkpoint stores its tensors uncompressed; nothing was inflated")
