"""Serving a web export: a static file server with the headers the page needs.

* ``Cross-Origin-Opener-Policy: same-origin`` + ``Cross-Origin-Embedder-Policy: require-corp`` make the
  page cross-origin isolated, the only way browsers hand out ``SharedArrayBuffer``, which onnxruntime-web
  needs for WASM threads (without them the page still works, on one thread, and says so);
* ``.mjs`` as JavaScript and ``.wasm`` as ``application/wasm`` (module scripts and streaming WASM
  compilation refuse other types; Python's own table lacks ``.mjs`` on some systems);
* ``no-cache``, so a re-exported folder is picked up on reload; no directory listings.

The camera needs a secure context: ``localhost`` is one, a LAN address over plain HTTP is not. Hence
``--cert/--key`` (HTTPS), or a tunnel / ``adb reverse`` (README, "On a phone").

Hardening (a page served to a LAN must not be a way into the machine or a way to stall it):

* every path is resolved, symlinks included, and must stay inside the served folder (else 404); a
  request with a NUL or an undecodable path is a 400, never a traceback;
* a connection waits in one selector thread until its first bytes arrive, so idle connections hold no
  worker; a bounded pool of :data:`WORKERS` threads answers requests; the listen backlog is
  :data:`BACKLOG`; an idle connection is closed after :data:`IDLE_TIMEOUT` s and a request whose headers
  are not complete within :data:`HEADER_TIMEOUT` s is dropped; at most :data:`MAX_WAITING` connections wait;
* binding beyond loopback needs ``allow_remote`` (``--allow-remote``); to a client that is not on this
  machine, ``*.log`` files are not served and ``export.json`` is sent with local absolute paths replaced
  by ``"<local path>"``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import selectors
import socket
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from http.server import HTTPServer, SimpleHTTPRequestHandler
from pathlib import Path
from urllib.parse import unquote, urlsplit

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
#: threads answering requests (a page loads ~10 files; a phone or two at a time)
WORKERS = 16
#: connections the kernel queues before ``accept`` (the standard library's default is 5)
BACKLOG = 256
#: seconds a connection may stay silent before it is closed (before its request and between reads)
IDLE_TIMEOUT = 10.0
#: seconds from a request's first byte to the end of its headers
HEADER_TIMEOUT = 10.0
#: connections that may wait for their first bytes at once (more are closed as they arrive)
MAX_WAITING = 2048
#: files not served to a client on another machine (they hold local paths and library logs)
PRIVATE_SUFFIXES = (".log",)
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")


def is_loopback(host: str) -> bool:
    """True for an address (or the name ``localhost``) that only this machine can reach."""
    host = str(host).strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class _HeaderDeadline:
    """The request's read side with a deadline for the request line and headers (slow-drip clients)."""

    def __init__(self, raw, sock):
        self._raw, self._sock, self.deadline = raw, sock, None

    def readline(self, *args):
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("headers not complete in time")
            self._sock.settimeout(min(left, IDLE_TIMEOUT))
        return self._raw.readline(*args)

    def __getattr__(self, name):
        return getattr(self._raw, name)


class Handler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}
    quiet = False
    timeout = IDLE_TIMEOUT  # socket timeout for every read and write of this connection

    def setup(self):
        super().setup()
        self.rfile = _HeaderDeadline(self.rfile, self.connection)

    def handle_one_request(self):
        self.rfile.deadline = time.monotonic() + HEADER_TIMEOUT
        try:
            super().handle_one_request()
        except (TimeoutError, ConnectionError, ssl.SSLError):
            self.close_connection = True

    def parse_request(self):
        ok = super().parse_request()
        self.rfile.deadline = None  # headers read: the body (none for GET) is bounded by the idle timeout
        self.connection.settimeout(self.timeout)
        return ok

    def end_headers(self):
        for key, value in HEADERS.items():
            self.send_header(key, value)
        super().end_headers()

    def list_directory(self, path):  # a folder without index.html is not part of the page
        self.send_error(404, "no directory listings")
        return None

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        if not self.quiet:
            super().log_message(format, *args)

    # -- what may be served ----------------------------------------------------------------------
    def _local_client(self) -> bool:
        return is_loopback(self.client_address[0]) if self.client_address else False

    def send_head(self):
        """The file the URL names, only when it resolves (symlinks followed) inside the served folder."""
        raw = urlsplit(self.path).path
        try:
            decoded = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            self.send_error(HTTPStatus.BAD_REQUEST, "undecodable path")
            return None
        if "\x00" in decoded or "\x00" in raw or len(raw) > 4096:
            self.send_error(HTTPStatus.BAD_REQUEST, "bad path")
            return None
        try:
            root = os.path.realpath(self.directory)
            target = os.path.realpath(self.translate_path(self.path))
        except (ValueError, OSError):
            self.send_error(HTTPStatus.BAD_REQUEST, "bad path")
            return None
        inside = lambda p: p == root or p.startswith(root + os.sep)  # noqa: E731
        if not inside(target) or (os.path.isdir(target) and not inside(os.path.realpath(os.path.join(target, "index.html")))):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        if not self._local_client():
            name = os.path.basename(target)
            if name.endswith(PRIVATE_SUFFIXES):
                self.send_error(HTTPStatus.NOT_FOUND, "File not found")
                return None
            if name == "export.json" and os.path.isfile(target):
                return self._send_redacted(target)
        # A file that is there but unreadable by the serving user is 403, never 404: the page then says
        # "not readable" instead of "not found ... export it again" (exporting again would not help).
        if os.path.isfile(target):
            try:
                with open(target, "rb"):
                    pass
            except PermissionError:
                self.send_error(HTTPStatus.FORBIDDEN, "not readable by the server (file permissions)")
                return None
        try:
            return super().send_head()
        except (ValueError, OSError):
            self.send_error(HTTPStatus.BAD_REQUEST, "bad path")
            return None

    def _send_redacted(self, target: str):
        import io

        try:
            record = json.loads(Path(target).read_text(encoding="utf-8"))
            body = (json.dumps(redact_paths(record), indent=2) + "\n").encode()
        except (OSError, ValueError, RecursionError):
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


def redact_paths(obj):
    """``obj`` with every string that is an absolute local path replaced by ``"<local path>"``."""
    if isinstance(obj, dict):
        return {k: redact_paths(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [redact_paths(v) for v in obj]
    if isinstance(obj, str) and (obj.startswith(("/", "~", "\\\\")) or (len(obj) > 2 and obj[1] == ":" and obj[2] in "/\\")):
        return "<local path>"
    return obj


class Server(HTTPServer):
    """An HTTP server whose idle connections cost no thread (see the module docstring)."""

    request_queue_size = BACKLOG
    allow_reuse_address = True

    def __init__(self, address, handler, workers: int = WORKERS, idle_timeout: float = IDLE_TIMEOUT):
        if ":" in str(address[0]):
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)
        self.idle_timeout = idle_timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dpiqa-serve")
        self._selector = selectors.DefaultSelector()
        self._waiting: dict = {}  # socket -> deadline
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._closed = False
        self._watcher = threading.Thread(target=self._watch, name="dpiqa-serve-idle", daemon=True)
        self._watcher.start()

    def process_request(self, request, client_address):
        """Called by ``serve_forever`` on accept: park the connection until it has bytes to read."""
        with self._lock:
            if self._closed or len(self._waiting) >= MAX_WAITING:
                self.shutdown_request(request)
                return
            try:
                self._selector.register(request, selectors.EVENT_READ, client_address)
            except (ValueError, OSError):
                self.shutdown_request(request)
                return
            self._waiting[request] = time.monotonic() + self.idle_timeout
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _watch(self) -> None:
        while not self._closed:
            try:
                events = self._selector.select(timeout=0.5)
            except (OSError, ValueError):
                if self._closed:
                    return
                continue
            ready = []
            with self._lock:
                for key, _ in events:
                    if key.fileobj is self._wake_r:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                        continue
                    if self._waiting.pop(key.fileobj, None) is not None:
                        self._selector.unregister(key.fileobj)
                        ready.append((key.fileobj, key.data))
                now = time.monotonic()
                expired = [s for s, deadline in self._waiting.items() if deadline < now]
                for sock in expired:
                    del self._waiting[sock]
                    self._selector.unregister(sock)
            for sock in expired:
                self.shutdown_request(sock)
            for sock, addr in ready:
                try:
                    self._pool.submit(self._handle, sock, addr)
                except RuntimeError:  # pool shut down
                    self.shutdown_request(sock)

    def _handle(self, request, client_address) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:  # noqa: BLE001 - one connection's failure must not reach the pool
            pass
        finally:
            self.shutdown_request(request)

    def server_close(self):
        super().server_close()
        if not hasattr(self, "_watcher"):  # the bind failed inside HTTPServer.__init__: nothing else started
            return
        with self._lock:
            self._closed = True
            waiting, self._waiting = list(self._waiting), {}
            for sock in waiting:
                self._selector.unregister(sock)
        self._wake()
        for sock in waiting:
            self.shutdown_request(sock)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._watcher.join(timeout=2)
        for s in (self._wake_r, self._wake_w):
            s.close()
        self._selector.close()


def make_server(folder: str | Path, host: str = "127.0.0.1", port: int = 8000, cert: str | None = None,
                key: str | None = None, quiet: bool = False, allow_remote: bool = False) -> Server:
    """A server for ``folder`` (call ``serve_forever()``; ``server_address[1]`` is the port when 0 was asked).

    ``allow_remote`` must be True to listen on anything but loopback (``--allow-remote``)."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise ConfigError(f"{folder}: not a web export (no index.html); make one with dpiqa-edge export --target web --out {folder}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"serve: --port {port!r} is not a port number (0-65535)")
    if not host or "\x00" in str(host):
        raise ConfigError(f"serve: --host {host!r} is not an address")
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(f"serve: --host {host} lets other machines in; say so with --allow-remote "
                          "(or use 127.0.0.1 with a tunnel / adb reverse)")
    handler = functools.partial(type("_H", (Handler,), {"quiet": quiet}), directory=str(folder.resolve()))
    try:
        server = Server((host, port), handler)
    except (OSError, OverflowError, ValueError, UnicodeError) as exc:
        raise ConfigError(f"serve: cannot listen on {host}:{port} ({getattr(exc, 'strerror', None) or exc}); "
                          "pick another --host/--port") from None
    if cert or key:
        if not (cert and key):
            server.server_close()
            raise ConfigError("serve: HTTPS needs both --cert and --key")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            server.server_close()
            raise ConfigError(f"{cert}: cannot load the certificate/key ({exc})") from None
        # no handshake in the accepting thread: it happens on the connection's first read, in a worker
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return server


def url_of(server: HTTPServer, https: bool = False) -> str:
    host, port = server.server_address[:2]
    if is_loopback(host):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"{'https' if https else 'http'}://{host}:{port}/"
