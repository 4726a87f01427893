"""Headless Chromium for the browser tests and the bench: the system browser (Debian's ``chromium``),
driven by Playwright for Python. Playwright's own browser download is never used.

The flags keep Chromium quiet on a closed network (no background fetches, updates, sync or QUIC, which
otherwise flood it with refused connections) and run it without a GPU or sandbox (a root container).
Playwright's ``launch`` gives every browser a fresh temporary profile.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from pathlib import Path
from typing import Iterator

from .bundle import ORT_FILES, ORT_WEB_VERSION, cache_dir
from .serve import make_server, url_of

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--mute-audio"]
#: where Debian, Ubuntu and Google put the browser; $DPIQA_CHROMIUM overrides
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def find_chromium() -> str | None:
    if os.environ.get("DPIQA_CHROMIUM"):
        return os.environ["DPIQA_CHROMIUM"] if Path(os.environ["DPIQA_CHROMIUM"]).is_file() else None
    for path in CANDIDATES:
        if Path(path).is_file():
            return path
    return shutil.which("chromium")


def unavailable() -> str | None:
    """Why no browser can run here (for a skip reason), or None when one can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install playwright; its browser download is not needed)"
    if find_chromium() is None:
        return "Chromium is not installed (Debian: apt-get install chromium; `make test` installs it when run as root)"
    if shutil.which("npm") is None and not _ort_cached():
        return "npm is not installed and onnxruntime-web is not cached: a web export cannot be built"
    return None


def _ort_cached() -> bool:
    folder = cache_dir() / f"onnxruntime-web-{ORT_WEB_VERSION}"
    return all((folder / f).is_file() for f in ORT_FILES)


def camera_flags(video: str | Path) -> list[str]:
    """Chromium's fake camera, playing ``video`` (.y4m or .mjpeg) in a loop."""
    return ["--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}"]


#: the page's WebGPU adapter, for labelling: {vendor, architecture, software} or None without one
ADAPTER_JS = """async () => {
  if (!navigator.gpu) return null;
  const a = await navigator.gpu.requestAdapter();
  if (!a) return null;
  const i = a.info || {};
  return {vendor: i.vendor || "", architecture: i.architecture || "", software: Boolean(a.isFallbackAdapter) || i.architecture === "swiftshader"};
}"""


@contextlib.contextmanager
def launch(extra_flags: list[str] | None = None, headless: bool = True, webgpu: bool = False,
           playwright=None) -> Iterator:
    """A Playwright ``Browser`` on the system Chromium, closed on exit.

    ``webgpu=True`` keeps the GPU process and enables WebGPU where Chromium has not shipped it (Linux):
    with no GPU, its adapter is SwiftShader, Chromium's Vulkan on the CPU (checks WebGPU code paths and
    numbers, not GPU speed). ``playwright``: a started ``sync_playwright()`` to launch from (one thread
    can run only one at a time); by default one is started here and stopped on exit."""
    from playwright.sync_api import sync_playwright

    exe = find_chromium()
    if exe is None:
        raise RuntimeError(unavailable() or "Chromium not found")
    flags = [f for f in FLAGS if f != "--disable-gpu"] + ["--enable-unsafe-webgpu"] if webgpu else list(FLAGS)
    with contextlib.ExitStack() as stack:
        pw = playwright if playwright is not None else stack.enter_context(sync_playwright())
        browser = pw.chromium.launch(executable_path=exe, headless=headless, args=flags + list(extra_flags or []))
        stack.callback(browser.close)
        yield browser


@contextlib.contextmanager
def serving(folder: str | Path) -> Iterator[str]:
    """``dpiqa-edge serve``'s server for ``folder`` on 127.0.0.1 at a free port, in a thread; yields its URL."""
    server = make_server(folder, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url_of(server)
    finally:
        server.shutdown()
        server.server_close()
