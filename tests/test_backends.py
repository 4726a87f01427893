"""Runtime backend loaders and artifact resolution: one path from artifact to score, no torch on it,
explicit OpenVINO precision, and one-line ModelLoadErrors for anything broken.

Artifacts come from a tiny stand-in CNN (two convs, the student contract: 0..1 NCHW in, score 0-100 +
8 x 4 x 4 map out) written by the real exporters, so this file takes a few seconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dpiqa_edge.errors import InputError, ModelLoadError  # noqa: E402
from dpiqa_edge.export.base import ExportSettings  # noqa: E402
from dpiqa_edge.export.card import build_metadata, file_sizes  # noqa: E402
from dpiqa_edge.runtime.artifact import encode_metadata, resolve_artifact  # noqa: E402
from dpiqa_edge.runtime.backends import load_backend  # noqa: E402
from dpiqa_edge.runtime.preprocess import Preprocess  # noqa: E402

SIZE = 32


class StandIn(torch.nn.Module):
    """The student contract in two convs: normalise, conv, map (8 x 4 x 4), pooled linear score."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1, self.c2 = torch.nn.Conv2d(3, 16, 3, 2, 1), torch.nn.Conv2d(16, 8, 3, 2, 1)
        self.fc = torch.nn.Linear(8, 1)

    def forward(self, x):
        q = torch.relu(self.c2(torch.relu(self.c1((x - 0.5) / 0.25))))
        q = torch.nn.functional.interpolate(q, size=(4, 4), mode="bilinear", align_corners=False)
        return 100 * torch.sigmoid(self.fc(q.mean((2, 3)))).squeeze(1), q


def write_artifact(folder: Path, target: str, *, raw_input=False, dynamic_batch=False, precision="fp32",
                   calib=None) -> Path:
    """Export the stand-in with the real target module; an export.json with file sizes beside it."""
    from dpiqa_edge.export.targets import TARGETS, Int8Settings

    folder.mkdir(parents=True)
    meta = build_metadata(student="standin", target=target, precision=precision,
                          preprocessing=Preprocess(size=(SIZE, SIZE)).to_dict(), raw_input=raw_input, gate=40.0,
                          source_sha256="0" * 64, dynamic_batch=dynamic_batch, image_input=False)
    settings = ExportSettings(target=target, precision=precision, input_size=SIZE, raw_input=raw_input,
                              dynamic_batch=dynamic_batch)
    path, _ = TARGETS[target].convert(StandIn().eval(), settings, folder, encode_metadata(meta), calib=calib,
                                      int8=Int8Settings(options={"float_first_convs": 0}))
    (folder / "export.json").write_text(json.dumps({"artifact": path.name, "metadata": meta, "files": file_sizes(folder)}))
    return path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("art")
    return {t: write_artifact(root / t, t) for t in ("onnx", "openvino")}


@pytest.fixture
def x():
    from skimage import data

    return Preprocess(size=(SIZE, SIZE)).batch([data.astronaut(), data.chelsea(), data.coffee()])


def reference(x):
    with torch.no_grad():
        s, q = StandIn().eval()(torch.from_numpy(x))
    return s.numpy(), q.numpy()


@pytest.mark.parametrize("target", ["onnx", "openvino"])
def test_file_and_folder_load_the_same_model(artifacts, x, target):
    s_ref, q_ref = reference(x)
    for path in (artifacts[target], artifacts[target].parent):
        backend = load_backend(path)
        s, q = backend.run(x)  # fixed batch 1: run one image at a time, any N works
        assert backend.name == target and backend.metadata["student"] == "standin" and not backend.dynamic_batch
        # fp32 vs fp32 on a two-conv net: summation order only (1e-4 on 0-100 is generous)
        assert s.shape == (3,) and q.shape == (3, 8, 4, 4)
        assert np.max(np.abs(s - s_ref)) < 1e-4 and np.max(np.abs(q - q_ref)) < 1e-5


def test_openvino_precision_is_explicit_and_reported(artifacts, x):
    f32 = load_backend(artifacts["openvino"])
    assert f32.precision == "fp32" and f32.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    bf16 = load_backend(artifacts["openvino"], precision_hint="bf16")
    ran = bf16.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    assert bf16.precision == {"bf16": "bf16", "f32": "fp32"}[ran] and f"(ran {bf16.precision})" in bf16.label
    # bf16 keeps 8 mantissa bits: a two-conv net stays within 1 point on 0-100, but is not bit-equal to f32
    assert np.max(np.abs(bf16.run(x)[0] - f32.run(x)[0])) < 1.0
    with pytest.raises(ModelLoadError, match="unknown precision hint"):
        load_backend(artifacts["openvino"], precision_hint="int4")


def test_openvino_int8_runs_its_recorded_float_precision_unless_hinted(tmp_path, x):
    """An INT8 IR's float ops run at the precision its export chose and recorded (runtime_options: f32
    pinned, or none = the CPU plugin's own default, bf16 on AVX-512-BF16/AMX, f32 elsewhere), as its
    accuracy gate judged it; an explicit hint still overrides."""
    ov = pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from dpiqa_edge.runtime.backends.openvino import RT_INFO_SECTION

    rng = np.random.default_rng(0)
    calib = [np.clip(img * rng.uniform(0.5, 1.0), 0, 1).astype(np.float32) for img in list(x) * 4]
    art = write_artifact(tmp_path / "q", "openvino", precision="int8", calib=calib)
    plugin_default = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()
    recorded = resolve_artifact(art)[1]["runtime_options"]
    assert recorded in ({}, {"INFERENCE_PRECISION_HINT": "f32"})  # the export's choice, always recorded
    dflt, pinned = load_backend(art), load_backend(art, precision_hint="f32")
    assert dflt.stored_precision == "int8"
    assert dflt.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == recorded.get(
        "INFERENCE_PRECISION_HINT", plugin_default)
    assert dflt.label == f"openvino int8 (ran {dflt.precision})"
    assert pinned.precision == "fp32" and pinned.label == "openvino int8 (ran fp32)"
    # The same int8 kernels either way; bf16 float ops (8 mantissa bits) move a two-conv net's 0-100 score
    # by far less than a point (1.0 leaves room while catching a broken load).
    assert np.max(np.abs(load_backend(art, precision_hint="default").run(x)[0] - pinned.run(x)[0])) < 1.0
    # Each recorded choice is honoured: rewrite the IR's runtime_options both ways.
    for options, expected in (({}, plugin_default), ({"INFERENCE_PRECISION_HINT": "f32"}, "f32")):
        model = ov.Core().read_model(str(art))
        model.set_rt_info(json.dumps(options), [RT_INFO_SECTION, "runtime_options"])
        xml = tmp_path / f"o{len(options)}" / "model.xml"
        xml.parent.mkdir()
        ov.save_model(model, str(xml), compress_to_fp16=False)
        ran = load_backend(xml).compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        assert ran == expected, options
    model.set_rt_info(json.dumps({"NUM_STREAMS": 2}), [RT_INFO_SECTION, "runtime_options"])
    ov.save_model(model, str(tmp_path / "bad.xml"), compress_to_fp16=False)
    with pytest.raises(ModelLoadError, match="unknown to the OpenVINO loader"):
        load_backend(tmp_path / "bad.xml")
    # An fp32 IR still pins f32 by default (parity needs the artifact's own numbers).
    assert load_backend(write_artifact(tmp_path / "f", "openvino")).precision == "fp32"


@pytest.mark.parametrize("target", ["onnx", "openvino"])
def test_raw_input_takes_frames_and_float_alike(tmp_path, x, target):
    path = write_artifact(tmp_path / "raw", target, raw_input=True, dynamic_batch=True)
    backend = load_backend(path)
    frames = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    s_float, _ = backend.run(x)
    s_raw, _ = backend.run(frames)
    assert backend.dynamic_batch and np.array_equal(s_float, s_raw)  # the float->uint8 mapping is exact
    assert np.max(np.abs(s_raw - reference(x)[0])) < 1e-4
    with pytest.raises(InputError, match=r"takes \(N, 32, 32, 3\) uint8"):
        backend.run(frames[:, :16])


def test_runtime_path_never_imports_torch(artifacts):
    code = ("import sys, numpy as np\n"
            "from dpiqa_edge.runtime.backends import load_backend\n"
            f"b = load_backend({str(artifacts['onnx'])!r})\n"
            f"s, q = b.run(np.zeros((1, 3, {SIZE}, {SIZE}), np.float32))\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "print(s.shape, q.shape)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.strip() == "(1,) (1, 8, 4, 4)"


# -- broken artifacts: one line naming the file ------------------------------------------------------
def _onnx_props(path: Path, **changes):
    import onnx

    proto = onnx.load(str(path))
    props = {p.key: p.value for p in proto.metadata_props}
    props.update({k: v for k, v in changes.items() if v is not None})
    for k, v in changes.items():
        if v is None:
            props.pop(k)
    del proto.metadata_props[:]
    for k, v in props.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.save(proto, str(path))


def _break(kind: str, artifacts, tmp: Path) -> Path:
    onnx_dir, ov_dir = tmp / "onnx", tmp / "ov"
    shutil.copytree(artifacts["onnx"].parent, onnx_dir)
    shutil.copytree(artifacts["openvino"].parent, ov_dir)
    f = onnx_dir / "model.onnx"
    if kind not in ("truncated per export.json", "not an artifact"):
        # a bare artifact copied alone: the format's own reader must catch it (export.json would first)
        (onnx_dir / "export.json").unlink()
        (ov_dir / "export.json").unlink()
    if kind == "truncated onnx":
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
        return f
    if kind == "truncated per export.json":
        f.write_bytes(f.read_bytes()[:-10])
        return onnx_dir
    if kind == "missing metadata":
        _onnx_props(f, preprocessing=None)
        return f
    if kind == "wrong direction":
        _onnx_props(f, higher_is_better="false")
        return f
    if kind == "target mismatch":
        _onnx_props(f, target="openvino")
        return f
    if kind == "bad json":
        _onnx_props(f, preprocessing="{size: 32")
        return f
    if kind == "missing bin":
        (ov_dir / "model.bin").unlink()
        return ov_dir / "model.xml"
    if kind == "truncated xml":
        x = ov_dir / "model.xml"
        x.write_text(x.read_text()[:-200])
        return x
    if kind == "truncated bin":
        b = ov_dir / "model.bin"
        b.write_bytes(b.read_bytes()[:100])
        return ov_dir / "model.xml"
    if kind == "not an artifact":
        return onnx_dir / "export.json"
    if kind == "two artifacts":
        shutil.copy(f, onnx_dir / "other.onnx")
        return onnx_dir
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, message", [
    ("truncated onnx", "corrupt or truncated onnx artifact"),
    ("truncated per export.json", "truncated or replaced"),
    ("missing metadata", "missing preprocessing"),
    ("wrong direction", "higher_is_better"),
    ("target mismatch", "does not match the file type"),
    ("bad json", "preprocessing=.* is not valid JSON"),
    ("missing bin", "model.bin is missing"),
    ("truncated xml", "truncated OpenVINO IR"),
    ("truncated bin", "OpenVINO cannot load it"),
    ("not an artifact", "not an artifact"),
    ("two artifacts", "expected one artifact"),
])
def test_broken_artifacts_fail_with_one_line(artifacts, tmp_path, kind, message):
    path = _break(kind, artifacts, tmp_path)
    with pytest.raises(ModelLoadError, match=message) as info:
        load_backend(path)
    text = str(info.value)
    assert "\n" not in text and str(tmp_path) in text  # one line, naming the file


def test_gate_threshold_is_optional_but_typed(artifacts, tmp_path):
    f = tmp_path / "m.onnx"
    shutil.copy(artifacts["onnx"], f)
    _onnx_props(f, gate_threshold=None)
    assert load_backend(f).metadata["gate_threshold"] is None  # `check` then needs --threshold
    _onnx_props(f, gate_threshold='"high"')
    with pytest.raises(ModelLoadError, match="gate_threshold 'high' is not a finite number in 0-100"):
        load_backend(f)


def test_metadata_round_trips_through_every_reader(artifacts):
    for target, path in artifacts.items():
        file, meta = resolve_artifact(path.parent)
        recorded = json.loads((path.parent / "export.json").read_text())["metadata"]
        assert file == path and meta == recorded, target
        assert isinstance(meta["preprocessing"], dict) and meta["raw_input"] is False and meta["gate_threshold"] == 40.0
