"""Serving a web export: a static file server with the headers the page needs.

* ``Cross-Origin-Opener-Policy: same-origin`` + ``Cross-Origin-Embedder-Policy: require-corp`` make the
  page cross-origin isolated, the only way browsers hand out ``SharedArrayBuffer``, which onnxruntime-web
  needs for WASM threads (without them the page still works, on one thread, and says so);
* ``.mjs`` as JavaScript and ``.wasm`` as ``application/wasm`` (module scripts and streaming WASM
  compilation refuse other types; Python's own table lacks ``.mjs`` on some systems);
* ``no-cache``, so a re-exported folder is picked up on reload; no directory listings.

The camera needs a secure context: ``localhost`` is one, a LAN address over plain HTTP is not. Hence
``--cert/--key`` (HTTPS), or a tunnel / ``adb reverse`` (README, "On a phone").
"""

from __future__ import annotations

import functools
import os
import ssl
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import ConfigError

HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream",
         ".json": "application/json", ".html": "text/html", ".css": "text/css", ".md": "text/markdown"}


class Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}
    quiet = False

    def end_headers(self):
        for key, value in HEADERS.items():
            self.send_header(key, value)
        super().end_headers()

    def send_head(self):
        # A file that is there but unreadable by the serving user is 403, never 404: the page then says
        # "not readable" instead of "not found ... export it again" (exporting again would not help).
        path = self.translate_path(self.path)
        if os.path.isfile(path):
            try:
                with open(path, "rb"):
                    pass
            except PermissionError:
                self.send_error(403, "not readable by the server (file permissions)")
                return None
        return super().send_head()

    def list_directory(self, path):  # a folder without index.html is not part of the page
        self.send_error(404, "no directory listings")
        return None

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        if not self.quiet:
            super().log_message(format, *args)


def make_server(folder: str | Path, host: str = "127.0.0.1", port: int = 8000, cert: str | None = None,
                key: str | None = None, quiet: bool = False) -> ThreadingHTTPServer:
    """A server for ``folder`` (call ``serve_forever()``; ``server_address[1]`` is the port when 0 was asked)."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise ConfigError(f"{folder}: not a web export (no index.html); make one with dpiqa-edge export --target web --out {folder}")
    handler = functools.partial(type("_H", (Handler,), {"quiet": quiet}), directory=str(folder))
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise ConfigError(f"serve: cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port") from None
    server.daemon_threads = True
    if cert or key:
        if not (cert and key):
            raise ConfigError("serve: HTTPS needs both --cert and --key")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            server.server_close()
            raise ConfigError(f"{cert}: cannot load the certificate/key ({exc})") from None
        server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def url_of(server: ThreadingHTTPServer, https: bool = False) -> str:
    host, port = server.server_address[:2]
    return f"{'https' if https else 'http'}://{'localhost' if host in ('127.0.0.1', '::1') else host}:{port}/"
