"""Issue 23, "nothing lost, nothing trusted": every concrete finding as a regression test.

Output folders (a user's folder survives ``export --out`` / ``import --out``), untrusted model folders
(metadata, export.json, config.json, runtime options), ``import`` (bounded bytes, inert stand-ins, ONNX
custom ops and non-student graphs), ``serve`` (folder confinement, idle connections, bad requests and
arguments, binding beyond loopback) and ``check`` (damaged videos, thresholds, batch sizes, escaping).
Every CLI case asserts the documented exit code and a one-line error, never a traceback.
"""

from __future__ import annotations

import copyreg
import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from _runtime_models import export_onnx
from dpiqa_edge.cli import main
from dpiqa_edge.errors import ConfigError, ModelLoadError


def cli(*args):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in res.output, res.output
    assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


def error_line(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:") or ln.startswith("Error:")]
    assert len(lines) == 1, res.output
    return lines[0]


def set_props(path: Path, **changes) -> Path:
    """Rewrite an ONNX artifact's metadata_props (``None`` removes a key)."""
    import onnx

    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value if isinstance(value, str) else json.dumps(value)
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    return export_onnx(tmp_path_factory.mktemp("art") / "model.onnx")


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    from skimage import data

    path = tmp_path_factory.mktemp("photo") / "sharp.png"
    Image.fromarray(data.astronaut()[::4, ::4].copy()).save(path)
    return path


def copy_artifact(artifact: Path, tmp_path: Path, **changes) -> Path:
    dst = tmp_path / "m.onnx"
    shutil.copy(artifact, dst)
    return set_props(dst, **changes)


def export_folder(artifact: Path, tmp_path: Path, record: dict) -> Path:
    folder = tmp_path / "exp"
    folder.mkdir()
    shutil.copy(artifact, folder / "model.onnx")
    (folder / "export.json").write_text(json.dumps(record))
    return folder


# -- 1. output folders -----------------------------------------------------------------------------
def _user_folder(tmp_path: Path) -> tuple[Path, dict]:
    out = tmp_path / "mine"
    (out / "sub").mkdir(parents=True)
    (out / "keep.txt").write_text("my notes")
    (out / "sub" / "photo.jpg").write_bytes(b"\xff\xd8 not really")
    return out, {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}


OUT_COMMANDS = {
    "export": lambda src, out: ["export", "--target", "onnx", "--model", "default", "--out", out],
    "import": lambda src, out: ["import", src, "--out", out],
}


@pytest.mark.parametrize("command", sorted(OUT_COMMANDS))
def test_a_users_folder_survives_out(tmp_path, command):
    out, before = _user_folder(tmp_path)
    src = tmp_path / "pack.pth"
    src.write_bytes(b"whatever")
    res = cli(*OUT_COMMANDS[command](src, out))
    assert res.exit_code == 2 and "refusing to replace it" in error_line(res) and str(out) in error_line(res)
    after = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".mine")]  # no temporary left beside it


@pytest.mark.parametrize("command", sorted(OUT_COMMANDS))
@pytest.mark.parametrize("kind, words", [("symlink", "symbolic link"), ("file", "is a file|not a folder"),
                                         ("under-a-file", "not a folder")])
def test_out_that_is_a_link_or_a_file_is_one_line(tmp_path, command, kind, words):
    target = tmp_path / "real"
    target.mkdir()
    (tmp_path / "f").write_text("x")
    out = {"symlink": tmp_path / "link", "file": tmp_path / "f", "under-a-file": tmp_path / "f" / "out"}[kind]
    if kind == "symlink":
        out.symlink_to(target, target_is_directory=True)
    src = tmp_path / "pack.pth"
    src.write_bytes(b"whatever")
    res = cli(*OUT_COMMANDS[command](src, out))
    assert res.exit_code == 2 and re.search(words, error_line(res))
    assert (tmp_path / "f").read_text() == "x" and target.is_dir()


@pytest.mark.parametrize("name, record", [
    ("export.json", {"artifact": "model.onnx", "metadata": {"dpiqa_edge_version": "0.1.0"}}),
    ("config.json", {"model_type": "dpiqa_student", "producer_version": "0.1.0"}),
    ("config.json", {"model_type": "dpiqa_teacher", "producer_version": "0.1.0"}),
])
def test_a_folder_of_ours_may_be_replaced(tmp_path, name, record):
    from dpiqa_edge.io import check_out_dir, is_own_folder

    (tmp_path / "ours").mkdir()
    (tmp_path / "ours" / name).write_text(json.dumps(record))
    assert is_own_folder(tmp_path / "ours") and check_out_dir(tmp_path / "ours") == tmp_path / "ours"
    (tmp_path / "empty").mkdir()
    assert check_out_dir(tmp_path / "empty") and check_out_dir(tmp_path / "new" / "deeper")


@pytest.mark.parametrize("name, text", [("export.json", '{"artifact": "x"}'), ("config.json", '{"model_type": "bert"}'),
                                        ("config.json", "[1, 2]"), ("export.json", "not json")])
def test_a_lookalike_folder_is_not_ours(tmp_path, name, text):
    from dpiqa_edge.io import check_out_dir

    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match="did not write"):
        check_out_dir(tmp_path)


# -- 2. untrusted model folders --------------------------------------------------------------------
PRE = {"resize": "stretch", "resample": "bilinear", "input_range": [0.0, 1.0], "layout": "NCHW"}
BAD_METADATA = {
    "size-20000": ({"preprocessing": {**PRE, "size": [20000, 20000]}}, "preprocessing.size"),
    "size-100000": ({"preprocessing": {**PRE, "size": [100000, 100000]}}, "preprocessing.size"),
    "size-string": ({"preprocessing": {**PRE, "size": "64"}}, "preprocessing.size"),
    "size-vs-graph": ({"preprocessing": {**PRE, "size": [32, 32]}}, "disagrees with the graph"),
    "size-bool": ({"preprocessing": {**PRE, "size": [True, 64]}}, "preprocessing.size"),
    "resample": ({"preprocessing": {**PRE, "size": [64, 64], "resample": "lanczos9"}}, "preprocessing.resample"),
    "threshold-negative": ({"gate_threshold": -5}, "gate_threshold"),
    "threshold-huge": ({"gate_threshold": 1e6}, "gate_threshold"),
    "threshold-true": ({"gate_threshold": True}, "gate_threshold"),
    "threshold-nan": ({"gate_threshold": "NaN"}, "gate_threshold"),
    "session-config-banner": ({"runtime_options": {"session_config": {"session.save_model_format": "ORT"}}},
                              "session_config"),
    "session-config-unknown": ({"runtime_options": {"session_config": {"log_severity_level": "0"}}}, "session_config"),
    "runtime-options-list": ({"runtime_options": [1]}, "runtime_options"),
    "raw-input-string": ({"raw_input": '"yes"'}, "raw_input"),
    "precision": ({"precision": "fp64"}, "precision"),
    "deep-json": ({"preprocessing": "[" * 100000}, "preprocessing"),
}


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_bad_artifact_metadata_is_one_line_naming_the_field(artifact, photo, tmp_path, case):
    changes, field = BAD_METADATA[case]
    model = copy_artifact(artifact, tmp_path, **changes)
    t0 = time.perf_counter()
    res = cli("check", "--model", model, photo)
    assert res.exit_code == 2, res.output
    line = error_line(res)
    assert field in line and str(model) in line, line
    assert time.perf_counter() - t0 < 20  # refused from the metadata, not after allocating gigabytes


def test_allowed_session_options_still_run_and_json_stays_clean(artifact, photo, tmp_path):
    model = copy_artifact(artifact, tmp_path, runtime_options={
        "graph_optimization_level": "ORT_ENABLE_BASIC", "session_config": {"session.intra_op.allow_spinning": "0"}})
    res = cli("check", "--model", model, "--json", photo)
    assert res.exit_code == 0 and all(json.loads(ln) for ln in res.stdout.splitlines())


BAD_EXPORT_JSON = {
    "artifact-parent": ({"artifact": "../outside.onnx"}, "artifact"),
    "artifact-absolute": ({"artifact": "{outside}"}, "artifact"),
    "artifact-number": ({"artifact": 3}, "artifact"),
    "files-escape": ({"artifact": "model.onnx", "files": {"../../../../etc/shadow": 1}}, "files key"),
    "files-absolute": ({"artifact": "model.onnx", "files": {"/etc/shadow": 1}}, "files key"),
    "files-string": ({"artifact": "model.onnx", "files": "model.onnx"}, "files"),
    "files-list": ({"artifact": "model.onnx", "files": ["model.onnx"]}, "files"),
    "files-size-string": ({"artifact": "model.onnx", "files": {"model.onnx": "big"}}, "files["),
    "gate-bool": ({"artifact": "model.onnx", "gate_threshold": {"threshold": True}}, "gate_threshold"),
}


@pytest.mark.parametrize("case", sorted(BAD_EXPORT_JSON))
def test_bad_export_json_is_one_line_naming_the_field(artifact, photo, tmp_path, case):
    record, field = BAD_EXPORT_JSON[case]
    outside = tmp_path / "outside.onnx"
    shutil.copy(artifact, outside)  # a model outside the folder that must never be used
    record = json.loads(json.dumps(record).replace("{outside}", str(outside)))
    folder = export_folder(artifact, tmp_path, record)
    res = cli("check", "--model", folder, photo)
    assert res.exit_code == 2, res.output
    line = error_line(res)
    assert field in line and "export.json" in line and "shadow: " not in line, line


def test_a_symlink_inside_the_folder_cannot_lead_out(artifact, photo, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    shutil.copy(artifact, outside / "model.onnx")
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "model.onnx").symlink_to(outside / "model.onnx")
    (folder / "export.json").write_text(json.dumps({"artifact": "model.onnx"}))
    res = cli("check", "--model", folder, photo)
    assert res.exit_code == 2 and "leads outside" in error_line(res)


@pytest.mark.parametrize("config, field", [
    ({"student": {"name": "lite0", "input_size": 20000}}, "student.input_size"),
    ({"student": {"name": "lite0", "input_size": "448"}}, "student.input_size"),
    ({"preprocessing": {"size": [100000, 100000]}}, "preprocessing.size"),
    ({"student": ["lite0"]}, "student"),
])
def test_bad_config_json_is_one_line_naming_the_field(tmp_path, config, field):
    from dpiqa_edge.student.checkpoint import read_student_config

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "dpiqa_student", "producer_version": "0.1.0",
                                                      **config}))
    with pytest.raises(ModelLoadError, match=re.escape(field)) as info:
        read_student_config(tmp_path)
    assert "config.json" in str(info.value) and "\n" not in str(info.value)


# -- 3. import -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory) -> Path:
    """A small .pth whose one record inflates to 200 MB of zeros (~200 kB on disk)."""
    bomb = tmp_path_factory.mktemp("bomb") / "bomb.pth"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        with zf.open("archive/data/0", "w", force_zip64=True) as fh:
            block = bytes(1 << 20)
            for _ in range(200):
                fh.write(block)
    assert bomb.stat().st_size < 2 << 20
    return bomb


def test_import_refuses_a_zip_bomb_before_inflating(zip_bomb, tmp_path):
    t0 = time.perf_counter()
    res = cli("import", zip_bomb, "--out", tmp_path / "out")
    assert res.exit_code == 2 and "declares" in error_line(res) and "nothing was inflated" in error_line(res)
    assert time.perf_counter() - t0 < 30 and not (tmp_path / "out").exists()


def test_import_peak_memory_on_a_zip_bomb_is_small(zip_bomb, tmp_path):
    """The refusal comes before torch is imported (~600 MB of RSS by itself here): the whole command,
    in its own process, peaks well under the issue's 300 MB."""
    import subprocess
    import sys

    probe = ("import resource, subprocess, sys; "
             "rc = subprocess.run([sys.executable, '-m', 'dpiqa_edge.cli', 'import', sys.argv[1], '--out', sys.argv[2]],"
             " capture_output=True).returncode; "
             "print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", probe, str(zip_bomb), str(tmp_path / "out")], capture_output=True,
                         text=True, env=env, timeout=120)
    rc, peak_kb = map(int, out.stdout.split())
    assert rc == 2 and peak_kb < 300 * 1024, (rc, peak_kb, out.stderr)


class _Reduce:
    """Pickles as ``torch.nn.Linear(4, 4)`` (a REDUCE with arguments on an allowlisted name)."""

    def __reduce__(self):
        import torch

        return (torch.nn.Linear, (4, 4))


class _Build:
    """Pickles as a ``torch.nn.Linear`` rebuilt the way torch.save does it, with the given state (BUILD)."""

    def __init__(self, state):
        self.state = state

    @property
    def __class__(self):  # pickle checks that __newobj__'s class is the object's own
        import torch

        return torch.nn.Linear

    def __reduce_ex__(self, protocol):
        import torch

        return (copyreg.__newobj__, (torch.nn.Linear,), self.state)


def _module_state(**over):
    import torch

    state = {"training": False, "_parameters": OrderedDict(weight=torch.nn.Parameter(torch.zeros(2, 2))),
             "_buffers": OrderedDict(), "_non_persistent_buffers_set": set(), "_modules": OrderedDict(),
             "_state_dict_hooks": OrderedDict(), "_forward_hooks": OrderedDict(), "in_features": 2}
    state.update(over)
    return state


@pytest.mark.parametrize("payload, words", [
    (lambda: _Reduce(), "built with arguments"),
    (lambda: _Build(_module_state(_state_dict_hooks=OrderedDict({0: re._compile}))), "_state_dict_hooks"),
    (lambda: _Build(_module_state(_forward_pre_hooks=OrderedDict({0: re._compile}))), "_forward_pre_hooks"),
    (lambda: _Build(_module_state(_parameters="weights")), "_parameters"),
    (lambda: _Build(_module_state(_parameters=OrderedDict(w=re._compile))), "_parameters"),
    (lambda: _Build(_module_state(extra=re._compile)), "extra"),
    (lambda: _Build(["not", "a", "dict"]), "not a dict"),
], ids=["reduce-args", "state-dict-hook", "forward-pre-hook", "parameters-str", "parameters-callable",
        "callable-attribute", "state-list"])
def test_allowlisted_stand_ins_accept_only_real_shapes(tmp_path, payload, words, monkeypatch):
    import torch

    from dpiqa_edge.authors import pickles

    called = []
    monkeypatch.setitem(pickles.ALLOWLIST, "re._compile", lambda *a, **k: called.append(a))
    path = tmp_path / "koniq_student_model_pack.pth"
    torch.save(payload(), path)
    res = cli("import", path, "--out", tmp_path / "out")
    line = error_line(res)
    assert res.exit_code == 2 and "refused" in line and words in line and "nothing in it was run" in line, line
    assert not called and not (tmp_path / "out").exists()


def _onnx_file(path: Path, *, domain: str = "", op: str = "Identity") -> Path:
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node(op, ["input"], ["score"], domain=domain),
             helper.make_node("Identity", ["input"], ["feature_map"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("score", TensorProto.FLOAT, [1, 1]),
                               helper.make_tensor_value_info("feature_map", TensorProto.FLOAT, [1, 3, 8, 8])])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets), str(path))
    return path


@pytest.mark.parametrize("domain, op, words", [("com.evil", "Backdoor", "custom operators"),
                                               ("", "Identity", "not the authors' student")],
                         ids=["custom-domain", "trivial-graph"])
def test_import_refuses_foreign_onnx(tmp_path, domain, op, words):
    src = _onnx_file(tmp_path / "student_model.onnx", domain=domain, op=op)
    res = cli("import", src, "--out", tmp_path / "out")
    assert res.exit_code == 2 and words in error_line(res) and not (tmp_path / "out").exists()


# -- 4. serve --------------------------------------------------------------------------------------
@pytest.fixture()
def page(tmp_path) -> Path:
    web = tmp_path / "web"
    (web / "sub").mkdir(parents=True)
    (web / "index.html").write_text("<!doctype html>")
    (web / "export.json").write_text(json.dumps({"source": {"model_dir": "/home/me/runs/x"}, "rel": "model.onnx"}))
    (web / "third-party.log").write_text("/home/me/.cache/lib.so: loaded")
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "passwd").write_text("root:SECRET")
    (web / "leak.txt").symlink_to(secret / "passwd")
    (web / "leakdir").symlink_to(secret, target_is_directory=True)
    return web


class _Serving:
    def __init__(self, folder: Path):
        from dpiqa_edge.web.serve import make_server

        self.server = make_server(folder, "127.0.0.1", 0, quiet=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{path}", timeout=timeout) as res:
                return res.status, res.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def raw(self, data: bytes, timeout: float = 5.0) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def served(page):
    s = _Serving(page)
    yield s
    s.close()


@pytest.mark.parametrize("path, status", [("", 200), ("leak.txt", 404), ("leakdir/passwd", 404), ("%00", 400),
                                          ("index.html%00.png", 400), ("..%2f..%2fsecret/passwd", 404),
                                          ("%ff%fe", 400), ("sub/", 404)])
def test_serve_stays_in_the_folder_and_answers_bad_paths_cleanly(served, path, status):
    code, body = served.get(path)
    assert code == status and b"SECRET" not in body


def test_serve_bad_raw_requests_are_4xx(served):
    for data in (b"GET /%00 HTTP/1.0\r\n\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.0\r\n\r\n",
                 b"BREW / HTTP/1.0\r\n\r\n", b"GET / HTTP/1.0\r\n" + b"X: y\r\n" * 200 + b"\r\n"):
        status = served.raw(data).split(b"\r\n", 1)[0]
        assert re.match(rb"HTTP/1\.[01] 4\d\d ", status) or status.startswith(b"HTTP/1.0 501"), status


def test_serve_answers_under_500_idle_connections(served):
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        if hard != resource.RLIM_INFINITY and hard < 1200:
            pytest.skip(f"open-file limit {hard} is below the 1200 this test needs")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    idle = []
    try:
        for _ in range(500):
            idle.append(socket.create_connection(("127.0.0.1", served.port), timeout=5))
        idle[0].sendall(b"GET / HTTP/1.0\r\n")  # and one that started its headers and stalls
        t0 = time.perf_counter()
        code, _ = served.get("", timeout=2.0)
        elapsed = time.perf_counter() - t0
    finally:
        for s in idle:
            s.close()
    assert code == 200 and elapsed < 2.0, elapsed


def test_serve_drops_idle_connections(page, monkeypatch):
    from dpiqa_edge.web import serve

    monkeypatch.setattr(serve, "IDLE_TIMEOUT", 0.3)
    monkeypatch.setattr(serve, "HEADER_TIMEOUT", 0.3)
    monkeypatch.setattr(serve.Handler, "timeout", 0.3)
    s = _Serving(page)
    s.server.idle_timeout = 0.3
    try:
        silent = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        dripping = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        dripping.sendall(b"GET / HTTP/1.0\r\n")
        t0 = time.perf_counter()
        assert silent.recv(10) == b""  # closed by the server, not by our timeout
        dripping.recv(100)
        assert time.perf_counter() - t0 < 3
        silent.close(), dripping.close()
    finally:
        s.close()


def test_serve_hides_logs_and_local_paths_from_other_machines(served, monkeypatch):
    from dpiqa_edge.web import serve

    assert served.get("third-party.log")[0] == 200  # this machine sees everything
    monkeypatch.setattr(serve.Handler, "_local_client", lambda self: False)
    assert served.get("third-party.log")[0] == 404
    code, body = served.get("export.json")
    assert code == 200 and json.loads(body) == {"source": {"model_dir": "<local path>"}, "rel": "model.onnx"}


@pytest.mark.parametrize("args, words", [
    (["--port", "99999"], "99999"), (["--port", "-1"], "-1"), (["--port", "http"], "http"),
    (["--host", "0.0.0.0"], "--allow-remote"), (["--host", "192.0.2.1"], "--allow-remote"),
    (["--host", "no.such.host.invalid", "--allow-remote"], "cannot listen"),
])
def test_serve_bad_arguments_are_one_line(page, args, words):
    res = cli("serve", page, *args)
    assert res.exit_code == 2 and words in error_line(res)


def test_serve_beyond_loopback_needs_the_flag_and_warns(page, monkeypatch):
    from dpiqa_edge.web import serve

    class Stub:
        server_address = ("0.0.0.0", 8000)

        def serve_forever(self):
            raise KeyboardInterrupt

        def server_close(self):
            pass

    seen = {}
    monkeypatch.setattr(serve, "make_server", lambda *a, **k: seen.update(k) or Stub())
    res = cli("serve", page, "--host", "0.0.0.0", "--allow-remote")
    assert res.exit_code == 0 and seen["allow_remote"] is True
    assert "warning: listening on 0.0.0.0" in res.output and "plain HTTP" in res.output


# -- 5. check --------------------------------------------------------------------------------------
def test_a_damaged_video_reports_its_unread_frames_and_fails(artifact, tmp_path):
    from test_camera_gate import write_video

    video = write_video(tmp_path / "v.avi", [(30, 0)])
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 4] + bytes(len(data) // 2) + data[3 * len(data) // 4:])
    res = cli("check", "--model", artifact, "--json", video)
    recs = [json.loads(ln) for ln in res.stdout.splitlines()]
    errors = [r for r in recs if r["verdict"] == "error"]
    assert res.exit_code == 1 and len(errors) == 1
    unread = int(re.search(r"(\d+) of 30 frames could not be decoded", errors[0]["reason"]).group(1))
    assert unread == 30 - sum(r["frame"] is not None for r in recs) and unread > 0
    table = cli("check", "--model", artifact, video)
    assert table.exit_code == 1 and "could not be decoded" in table.output


def test_an_intact_video_still_passes(artifact, tmp_path):
    from test_camera_gate import write_video

    video = write_video(tmp_path / "v.avi", [(12, 0)])
    res = cli("check", "--model", artifact, "--json", "--min-stable", "2", video)
    assert res.exit_code == 0 and len(res.stdout.splitlines()) == 12


@pytest.mark.parametrize("args, words", [
    (["--threshold", "nan"], "--threshold"), (["--threshold", "inf"], "--threshold"),
    (["--threshold", "-5"], "--threshold"), (["--hysteresis", "nan"], "--hysteresis"),
    (["--batch-size", "100000"], "--batch-size"), (["--batch-size", "0"], "--batch-size"),
    (["--threads", "100000"], "--threads"),
])
def test_check_bad_numbers_are_usage_errors(artifact, photo, args, words):
    res = cli("check", "--model", artifact, *args, photo)
    assert res.exit_code == 2 and words in error_line(res)


def test_read_ahead_is_bounded_in_bytes(artifact, photo, tmp_path, monkeypatch):
    from dpiqa_edge.runtime import checker
    from dpiqa_edge.runtime.scorer import QualityScorer
    from dpiqa_edge.runtime.sources import expand_inputs

    scorer = QualityScorer(artifact, batch_size=100000)
    per_image = 3 * 64 * 64 * 4
    monkeypatch.setattr(checker, "READ_AHEAD_BYTES", 2 * 3 * per_image)  # room for 3 images per batch
    sizes = []
    run = scorer.run_prepared
    monkeypatch.setattr(scorer, "run_prepared", lambda x: sizes.append(len(x)) or run(x))
    for i in range(10):
        shutil.copy(photo, tmp_path / f"{i}.png")
    recs = list(checker.check_sources(scorer, expand_inputs([str(tmp_path)]), threshold=50.0, batch_size=100000))
    assert len(recs) == 10 and max(sizes) <= 3 and sum(sizes) == 10


@pytest.mark.parametrize("name", ["new\nline.png", "esc\x1b[31mred.png", "bell\x07.png"])
def test_table_escapes_control_characters_in_names(artifact, photo, tmp_path, name):
    shutil.copy(photo, tmp_path / name)
    res = cli("check", "--model", artifact, tmp_path / name)
    assert res.exit_code == 0 and "\x1b" not in res.output and "\x07" not in res.output
    rows = [ln for ln in res.output.splitlines() if ".png" in ln]
    assert len(rows) == 1 and (repr(name.split(".")[0])[1:-1] in rows[0]), res.output


def test_error_lines_escape_control_characters(tmp_path):
    res = cli("check", "--model", tmp_path / "no\x1b[2Jmodel.onnx", tmp_path / "x.png")
    assert res.exit_code == 2 and "\x1b" not in res.output and "\\x1b" in error_line(res)
