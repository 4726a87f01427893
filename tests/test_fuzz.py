"""Fuzz suite (issue 23): property tests over metadata fields, CLI arguments and HTTP requests to ``serve``.

The properties: a metadata file either validates to values the runtime can use safely (sizes bounded,
names inside the folder, thresholds finite in 0-100) or is one :class:`ModelLoadError` line naming the
file; every CLI invocation ends with its documented exit code (0/1/2) and, on failure, one error line,
never a traceback; ``serve`` answers every request with a status line and never a 5xx, and never hands
out a byte from outside its folder. Bounded: ``DPIQA_FUZZ_EXAMPLES`` (default 40) examples per property,
the whole file well under a minute on 2 cores; set it to 2000 for a long fuzzing run.
"""

from __future__ import annotations

import json
import os
import re
import socket
import string
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _runtime_models import export_onnx, metadata
from dpiqa_edge.cli import main
from dpiqa_edge.errors import DpiqaError, ModelLoadError

N = int(os.environ.get("DPIQA_FUZZ_EXAMPLES", "40"))
BOUNDED = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))

#: any JSON value, nested a little
JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) |
                    st.text(max_size=12), lambda inner: st.lists(inner, max_size=4) |
                    st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
#: values aimed at the fields' edges
EDGY = st.sampled_from([0, -1, 15, 16, 64, 4096, 4097, 20000, 10**9, 1.5, True, False, None, "64", "NaN", [64],
                        [64, 64], [64, 64, 3], [16, 4096], [0, 64], ["64", "64"], float("nan"), float("inf"), -5,
                        100, 100.0001, 1e6, {}, [], "", "x" * 300])


def one_line(exc: BaseException) -> None:
    assert "\n" not in str(exc) and str(exc).strip(), repr(exc)


# -- metadata fields -------------------------------------------------------------------------------
FIELDS = ["preprocessing", "preprocessing.size", "preprocessing.resample", "preprocessing.input_range",
          "gate_threshold", "raw_input", "dynamic_batch", "image_input", "runtime_options",
          "runtime_options.session_config", "runtime_options.graph_optimization_level", "target", "precision",
          "input_name", "score_range", "higher_is_better", "dpiqa_edge_version"]


def _set(raw: dict[str, str], field: str, value) -> dict[str, str]:
    raw = dict(raw)
    key, _, sub = field.partition(".")
    if sub:
        outer = json.loads(raw.get(key, "{}"))
        outer[sub] = value
        value = outer
    raw[key] = value if isinstance(value, str) and key not in ("preprocessing", "runtime_options") else json.dumps(value)
    return raw


@BOUNDED
@given(field=st.sampled_from(FIELDS), value=JSON | EDGY)
def test_artifact_metadata_validates_or_is_one_line(field, value):
    from dpiqa_edge.runtime.artifact import decode_metadata
    from dpiqa_edge.runtime.preprocess import Preprocess
    from dpiqa_edge.runtime.schema import SIZE_MAX, SIZE_MIN

    raw = _set(metadata(), field, value)
    try:
        meta = decode_metadata(raw, "fuzz.onnx")
    except ModelLoadError as exc:
        one_line(exc)
        assert str(exc).startswith("fuzz.onnx: ")
        return
    pre = Preprocess.from_dict(meta["preprocessing"])
    assert all(SIZE_MIN <= s <= SIZE_MAX for s in pre.size)
    g = meta["gate_threshold"]
    assert g is None or (not isinstance(g, bool) and 0 <= g <= 100)
    assert isinstance(meta["raw_input"], bool) and isinstance(meta.get("runtime_options", {}), dict)


NAMES = st.sampled_from(["model.onnx", "../model.onnx", "/etc/passwd", "a/../../b", "", ".", "..", "sub/x.bin",
                         "C:\\x", "~/x", "nul\x00.onnx", "link", "model.onnx/", "./model.onnx"]) | st.text(max_size=20)


@BOUNDED
@given(artifact=NAMES | JSON, files=st.dictionaries(NAMES, JSON | st.integers(0, 10**6), max_size=4) | JSON,
       gate=JSON | EDGY)
def test_export_json_validates_or_is_one_line(tmp_path_factory, artifact, files, gate):
    from dpiqa_edge.runtime.schema import check_export_record

    folder = tmp_path_factory.getbasetemp() / "fuzz-export"
    if not folder.exists():
        (folder / "sub").mkdir(parents=True)
        (folder / "link").symlink_to("/etc")
    record = {"artifact": artifact, "files": files, "gate_threshold": gate}
    try:
        check_export_record(record, folder / "export.json")
    except ModelLoadError as exc:
        one_line(exc)
        assert "export.json" in str(exc)
        return
    root = os.path.realpath(folder)
    files = files or {}  # absent (None) is allowed: a hand-made folder records no sizes
    for name in [artifact, *files]:
        assert os.path.realpath(folder / name).startswith(root + os.sep)
    assert all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in files.values())


@BOUNDED
@given(field=st.sampled_from(["student", "student.input_size", "student.map_size", "preprocessing",
                              "preprocessing.size", "weights_format", "model_type", "gate_threshold"]),
       value=JSON | EDGY)
def test_config_json_validates_or_is_one_line(field, value):
    from dpiqa_edge.runtime.schema import SIZE_MAX, check_config

    config = {"model_type": "dpiqa_student", "producer_version": "0.1.0",
              "student": {"name": "lite0", "input_size": 64, "map_size": 8},
              "preprocessing": {"size": [64, 64], "resample": "bilinear"}}
    key, _, sub = field.partition(".")
    if sub and isinstance(config.get(key), dict):
        config[key] = {**config[key], sub: value}
    else:
        config[key] = value
    try:
        check_config(config, Path("config.json"))
    except ModelLoadError as exc:
        one_line(exc)
        return
    size = config["student"].get("input_size", 64) if isinstance(config.get("student"), dict) else 64
    assert isinstance(size, int) and size <= SIZE_MAX


# -- CLI arguments ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    return export_onnx(tmp_path_factory.mktemp("fuzz-art") / "model.onnx")


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    import numpy as np
    from PIL import Image

    path = tmp_path_factory.mktemp("fuzz-photo") / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(path)
    return path


NUMBERS = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1", "50", "100", "100.5", "1e309", "1e6", "0x10",
                           "", " ", "true", "99999999999999999999", "2.5", "-0"]) | \
    st.integers(-10**6, 10**6).map(str) | st.floats(allow_nan=True).map(str) | st.text(max_size=6)
CHECK_OPTIONS = ["--threshold", "--batch-size", "--frames", "--hysteresis", "--min-stable", "--threads",
                 "--camera", "--precision-hint"]


def assert_clean_exit(res, allowed=(0, 1, 2)) -> None:
    assert res.exit_code in allowed, (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit)), \
        repr(res.exception)
    if res.exit_code == 2:
        errors = [ln for ln in res.output.splitlines() if re.match(r"(error|Error):", ln)]
        assert len(errors) == 1, res.output
    assert "\x1b" not in res.output


@BOUNDED
@given(options=st.lists(st.tuples(st.sampled_from(CHECK_OPTIONS), NUMBERS), max_size=3),
       extra=st.lists(st.sampled_from(["--json", "--no-recursive", "missing.png", "--frames"]), max_size=2))
def test_check_arguments_end_in_a_documented_exit(artifact, photo, options, extra):
    args = ["check", "--model", str(artifact)]
    for opt, value in options:
        if opt == "--camera":
            continue  # a real device index would open this machine's camera
        args += [opt, value]
    res = CliRunner().invoke(main, args + extra + [str(photo)])
    assert_clean_exit(res)


@BOUNDED
@given(port=NUMBERS, host=st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "localhost", "", "256.1.1.1", "a\x00b",
                                           "[::1]", "example.invalid", "::", "1.2.3.4"]),
       remote=st.booleans())
def test_serve_arguments_end_in_a_documented_exit(tmp_path_factory, serve_returns, port, host, remote):
    folder = tmp_path_factory.getbasetemp() / "fuzz-web"
    folder.mkdir(exist_ok=True)
    (folder / "index.html").write_text("<!doctype html>")
    res = CliRunner().invoke(main, ["serve", str(folder), "--port", port, "--host", host, "--quiet"]
                             + (["--allow-remote"] if remote else []))
    assert_clean_exit(res)


@pytest.fixture()
def serve_returns():
    """serve_forever returns at once (a bound server would otherwise run forever inside the test); undone
    after the test, so the HTTP fuzzer below gets a real server."""
    from dpiqa_edge.web import serve

    mp = pytest.MonkeyPatch()

    def once(self, poll_interval=0.5):
        raise KeyboardInterrupt

    mp.setattr(serve.Server, "serve_forever", once)
    # never actually listen beyond loopback from a test: such binds stop at the socket layer
    real_bind = serve.Server.server_bind

    def loopback_only(self):
        if not self.server_address[0] in ("127.0.0.1", "::1", "localhost"):
            raise OSError(99, "test: binding beyond loopback is not tried")
        real_bind(self)

    mp.setattr(serve.Server, "server_bind", loopback_only)
    yield mp
    mp.undo()


# -- HTTP requests to serve ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from dpiqa_edge.web.serve import make_server

    root = tmp_path_factory.mktemp("fuzz-serve")
    web = root / "web"
    (web / "sub").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html>")
    (web / "sub" / "a.json").write_text("{}")
    (root / "secret.txt").write_text("TOPSECRET")
    (web / "s").symlink_to(root / "secret.txt")
    (web / "up").symlink_to(root, target_is_directory=True)
    srv = make_server(web, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


PATH_PARTS = st.sampled_from(["", "/", "..", "%2e%2e", "%2f", "%00", "\x00", "index.html", "sub", "a.json", "s", "up",
                              "secret.txt", "%", "%zz", "%ff", "?", "#", ";", "//", "\\", "..\\", "~", " ", "\t",
                              "é", "%c3%a9", "\u202e", "a" * 300]) | st.text(max_size=8)
METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "BREW", "get", "", "GET GET"])
VERSIONS = st.sampled_from(["HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/0.9", "HTTP/1", "", "HTTP/1.1 extra"])
HEADERS = st.lists(st.sampled_from(["Host: x", "Connection: keep-alive", "Range: bytes=0-1", "X: " + "y" * 70000,
                                    "Bad header", ": empty", "Content-Length: -1", "Content-Length: 99999999999",
                                    "If-Modified-Since: not a date", "Transfer-Encoding: chunked"]) |
                   st.text(alphabet=string.printable, max_size=30), max_size=4)


@BOUNDED
@given(method=METHODS, parts=st.lists(PATH_PARTS, min_size=1, max_size=4), version=VERSIONS, headers=HEADERS)
def test_serve_answers_every_request_without_5xx_or_leaks(server, method, parts, version, headers):
    target = "/" + "/".join(parts)
    raw = f"{method} {target} {version}\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n"
    data = raw.encode("utf-8", "surrogateescape")
    with socket.create_connection(("127.0.0.1", server), timeout=15) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may close first on an oversized request
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    reply = b"".join(chunks)
    assert b"TOPSECRET" not in reply
    status = re.match(rb"HTTP/1\.[01] (\d{3}) ", reply)
    if status:  # HTTP/0.9-style requests get a bare body; every status must be < 500 except 501 (unknown method)
        assert int(status.group(1)) < 500 or int(status.group(1)) in (501, 505), reply[:200]


def test_fuzz_errors_are_typed():
    """The fuzzers above accept only ModelLoadError from the schema: check it is a DpiqaError (exit 2)."""
    assert issubclass(ModelLoadError, DpiqaError) and ModelLoadError("x").exit_code == 2
