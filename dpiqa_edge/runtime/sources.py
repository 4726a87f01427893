"""Where frames come from: image files, folders, video files and cameras, decoded ahead of inference.

Decoding (Pillow / OpenCV, both release the GIL) runs in a small thread pool a few batches ahead of the
model, so on a device with two or more cores the decode of batch k+1 overlaps the inference of batch k.
A file that cannot be decoded is yielded as a failure with its one-line reason, never raised: one bad
file must not stop a folder run.
"""

from __future__ import annotations

import collections
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..errors import DpiqaError, ImageDecodeError, InputError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".jp2", ".ico"}
VIDEO_EXTS = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".3gp"}


@dataclass(frozen=True)
class Source:
    """One thing named on the command line after expansion: an image, a video, or a camera."""

    kind: str  #: image | video | camera | error (an input that failed before any decoding)
    name: str  #: what reports call it (the path, or "camera:N")
    path: Path | None = None
    index: int | None = None  #: camera device index
    error: str | None = None  #: the reason, for kind "error"


@dataclass
class Item:
    """One decoded (or failed) unit of work: a prepared model input, or the reason it has none."""

    source: Source
    frame: int | None  #: frame number within a video / camera stream; None for still images
    x: np.ndarray | None = None  #: the scorer's prepared tensor
    rgb: np.ndarray | None = None  #: the decoded frame (kept only for video/camera: the gate's cheap checks)
    error: str | None = None  #: one-line failure reason when x is None


def expand_inputs(inputs: Iterable[str], *, recursive: bool = True) -> list[Source]:
    """Command-line inputs -> sources. Folders are walked (sorted, hidden entries skipped) for files with
    an image or video extension; a file named explicitly is always tried whatever its extension."""
    out: list[Source] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            try:
                walker = sorted(p.rglob("*") if recursive else p.iterdir())
            except OSError as exc:  # unreadable folder: a named failure, the other inputs still run
                out.append(Source("error", str(p), p, error=f"{p}: folder cannot be listed ({exc.strerror or exc})"))
                continue
            for f in walker:
                rel = f.relative_to(p).parts
                if any(part.startswith(".") for part in rel) or not f.is_file():
                    continue
                ext = f.suffix.lower()
                if ext in IMAGE_EXTS:
                    out.append(Source("image", str(f), f))
                elif ext in VIDEO_EXTS:
                    out.append(Source("video", str(f), f))
        elif p.suffix.lower() in VIDEO_EXTS:
            out.append(Source("video", str(p), p))
        else:
            out.append(Source("image", str(p), p))  # missing files fail later, by name, with the rest
    return out


def prefetch(items: Iterable[Any], fn: Callable[[Any], Any], *, workers: int = 2, ahead: int = 16) -> Iterator[Any]:
    """``map(fn, items)`` in order, computed by ``workers`` threads at most ``ahead`` items in advance
    (bounded, so a 100,000-file folder never holds more than ``ahead`` decoded images)."""
    if workers <= 0:
        yield from map(fn, items)
        return
    it = iter(items)
    pending: collections.deque = collections.deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dpiqa-decode") as pool:
        try:
            for item in it:
                pending.append(pool.submit(fn, item))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()


def decode_images(sources: Iterable[Source], prepare: Callable[[Any], np.ndarray], *, workers: int = 2, ahead: int = 16) -> Iterator[Item]:
    """Still images -> Items, decoded ahead in threads; failures carry their one-line reason."""

    def work(src: Source) -> Item:
        try:
            return Item(src, None, x=prepare(src.path))
        except DpiqaError as exc:
            return Item(src, None, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a decoder bug must name the file, not kill the run
            return Item(src, None, error=f"{src.name}: cannot be read ({type(exc).__name__}: {exc})")

    return prefetch(sources, work, workers=workers, ahead=ahead)


def open_capture(source: Source):
    """An OpenCV VideoCapture for a video file or camera; InputError (exit 1) when it cannot be opened."""
    # FFmpeg's own log lines about a damaged container would interleave with our one-line report.
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import cv2
    except ImportError:
        raise InputError(f"{source.name}: videos and cameras need OpenCV (pip install 'dpiqa-edge[video]')") from None
    if source.kind == "camera":
        cap = cv2.VideoCapture(int(source.index))
    else:
        if not source.path or not source.path.is_file():
            raise InputError(f"{source.name}: file not found")
        cap = cv2.VideoCapture(str(source.path))
    if not cap.isOpened():
        cap.release()
        what = "camera cannot be opened (no such device or in use)" if source.kind == "camera" else "not a video OpenCV can read"
        raise InputError(f"{source.name}: {what}")
    return cap


def video_frames(
    source: Source, prepare: Callable[[np.ndarray], np.ndarray], *, max_frames: int | None = None, ahead: int = 8, stop: threading.Event | None = None
) -> Iterator[Item]:
    """Frames of a video or camera -> Items (prepared tensor + RGB frame), read and preprocessed by one
    background thread up to ``ahead`` frames in advance. Raises InputError if it cannot be opened; a
    video that opens but yields no frame gives one failed Item."""
    import queue

    cap = open_capture(source)
    q: queue.Queue = queue.Queue(maxsize=ahead)
    stop = stop or threading.Event()
    done = object()

    declared = _frame_count(cap) if source.kind != "camera" else 0

    def reader() -> None:
        n = failed = 0
        try:
            while not stop.is_set() and (max_frames is None or n + failed < max_frames):
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    # A damaged frame: the container says more follow, so count it and try the next; a
                    # run of failures (or the end the container declares) ends the stream.
                    if n + failed < declared and failed < MAX_FRAME_FAILURES:
                        failed += 1
                        continue
                    break
                try:
                    rgb = np.ascontiguousarray(bgr[:, :, ::-1]) if bgr.ndim == 3 and bgr.shape[2] == 3 else bgr
                    item = Item(source, n + failed, x=prepare(rgb), rgb=rgb)
                except DpiqaError as exc:
                    item = Item(source, n + failed, error=str(exc))
                _put(q, item, stop)
                n += 1
            if n == 0 and not failed:
                _put(q, Item(source, None, error=f"{source.name}: no frame could be decoded"), stop)
            # frames the container declares that never became a verdict: skipped ones and any after the end
            limit = declared if max_frames is None else min(declared, max_frames)
            short = max(0, limit - n - failed)  # a container's count may be an estimate (mkv, webm): allow 2%
            unread = failed + (short if short > max(1, limit // 50) else 0)
            if unread > 0 and not stop.is_set():
                total = max(limit, n + failed)
                _put(q, Item(source, None, error=f"{source.name}: {unread} of {total} frames could not be decoded "
                                                 "(damaged or truncated video)"), stop)
        except Exception as exc:  # noqa: BLE001 - reported as this source's failure, not a crash
            _put(q, Item(source, None, error=f"{source.name}: read failed ({type(exc).__name__}: {exc})"), stop)
        finally:
            cap.release()
            _put(q, done, stop)

    t = threading.Thread(target=reader, name="dpiqa-video", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is done:
                break
            yield item
    finally:
        stop.set()
        t.join(timeout=5)


#: consecutive-or-not undecodable frames skipped before a video is given up
MAX_FRAME_FAILURES = 1000


def _frame_count(cap) -> int:
    """Frames the container declares (0 when it does not say, e.g. a stream)."""
    import cv2

    try:
        count = float(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    except Exception:  # noqa: BLE001 - a backend without the property
        return 0
    return int(count) if count == count and 0 < count < 1e9 else 0


def _put(q, item, stop: threading.Event) -> None:
    import queue

    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def batched(items: Iterable[Item], size: int, max_bytes: int | None = None) -> Iterator[list[Item]]:
    """Group items into lists of at most ``size`` items and (when given) about ``max_bytes`` of arrays."""
    batch: list[Item] = []
    held = 0
    for it in items:
        batch.append(it)
        held += item_bytes(it)
        if len(batch) >= size or (max_bytes is not None and held >= max_bytes):
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def item_bytes(it: Any) -> int:
    """Bytes of the arrays an Item holds (its prepared tensor and, for frames, the decoded frame)."""
    return sum(a.nbytes for a in (getattr(it, "x", None), getattr(it, "rgb", None)) if isinstance(a, np.ndarray))


def cpu_workers() -> int:
    """Decode threads: the cores beside the one running inference, at least 1."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


__all__ = ["Source", "Item", "expand_inputs", "prefetch", "decode_images", "video_frames", "batched", "ImageDecodeError"]
