"""The runtime over REAL exports (export_model of a tiny student): the scorer's scores agree
with the torch student within the export's own declared parity tolerance, on ONNX and OpenVINO; and every
kind of broken model file is a one-line ModelLoadError (exit 2), never a backend traceback."""

from __future__ import annotations

import json
import shutil
import sys
import threading

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from dpiqa_edge.cli import main
from dpiqa_edge.errors import ModelLoadError
from dpiqa_edge.runtime.scorer import QualityScorer

torch = pytest.importorskip("torch")
SIZE = 64


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """timm's tiny test_efficientnet as a student at 64 px; its zero-initialised score layer is randomised
    so scores differ between images (a constant 50 would make parity trivially true)."""
    from dpiqa_edge.student import build_student, save_student
    from dpiqa_edge.student.config import StudentConfig

    from skimage import data

    torch.manual_seed(0)
    cfg = StudentConfig(name="timm:test_efficientnet", input_size=SIZE, map_size=4, pretrained=False)
    model = build_student(cfg).eval()
    # Spread the package photos' scores to ~10 points around 50: random last-layer weights, rescaled.
    seen = []
    hook = model.head.fc2.register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    x = torch.from_numpy(cfg.preprocessing().batch([data.astronaut(), data.chelsea(), data.coffee(), data.rocket(), data.camera()]))
    with torch.no_grad():
        model(x)
        hook.remove()
        w = torch.randn_like(model.head.fc2.weight)
        raw = seen[0] @ w.T
        model.head.fc2.weight.copy_(w * 0.1 / raw.std())
        model.head.fc2.bias.fill_(0.5 - float((seen[0] @ model.head.fc2.weight.T).mean()))
    return save_student(model, cfg, tmp_path_factory.mktemp("student") / "tiny")


@pytest.fixture(scope="module", params=["onnx", "openvino"])
def export_dir(request, student, tmp_path_factory):
    from dpiqa_edge.export import export_model

    return export_model(student, request.param, out_dir=tmp_path_factory.mktemp("exp") / request.param,
                        dynamic_batch=True, parity_images=4, log=None)


@pytest.fixture(scope="module")
def photos():
    from skimage import data

    return [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]


def torch_scores(student, photos) -> np.ndarray:
    from dpiqa_edge.student import load_student

    model, cfg = load_student(student)
    x = torch.from_numpy(cfg.preprocessing().batch(photos))
    with torch.no_grad():
        return model(x)[0].double().numpy()


def test_scorer_matches_the_torch_student_within_the_export_tolerance(export_dir, student, photos):
    record = json.loads((export_dir / "export.json").read_text())
    tol = record["parity"]["tolerance"]["score"]  # the export's declared fp32 tolerance (1e-3 on 0-100)
    scorer = QualityScorer(export_dir, threads=1)
    assert scorer.preprocess.size == (SIZE, SIZE) and scorer.precision == "fp32"  # OpenVINO pinned to f32
    ref = torch_scores(student, photos)
    assert ref.std() > 1.0  # the images really score differently
    single = np.array([scorer.score(p) for p in photos])
    np.testing.assert_allclose(single, ref, atol=tol, rtol=0)
    np.testing.assert_allclose(scorer.score_batch(photos), ref, atol=tol, rtol=0)
    assert scorer.gate_threshold == pytest.approx(record["gate_threshold"]["threshold"])
    # the bare artifact file (copied alone onto a device) behaves exactly like the folder
    bare = QualityScorer(export_dir / record["artifact"], threads=1)
    assert [bare.score(p) for p in photos] == list(single)


def test_raw_input_export(student, photos, tmp_path):
    """A --raw-input ONNX export (uint8 NHWC in, /255 in-graph): the scorer feeds it uint8 frames and
    gets the torch student's scores within the export's tolerance."""
    from dpiqa_edge.export import export_model

    out = export_model(student, "onnx", out_dir=tmp_path / "raw", raw_input=True, dynamic_batch=True, parity_images=2, log=None)
    scorer = QualityScorer(out, threads=1)
    assert scorer.raw_input and scorer.prepare(photos[0]).dtype == np.uint8
    tol = json.loads((out / "export.json").read_text())["parity"]["tolerance"]["score"]
    np.testing.assert_allclose(scorer.score_batch(photos), torch_scores(student, photos), atol=tol, rtol=0)


def test_threads_share_one_real_scorer(export_dir, photos):
    """8 threads on one scorer (OpenVINO: its lock; ONNX: ORT's thread-safe run) == serial, exactly."""
    scorer = QualityScorer(export_dir, threads=1)
    serial = [scorer.score(p) for p in photos * 2]
    out: dict[int, list[float]] = {}

    def work(t):
        out[t] = [scorer.score(p) for p in photos * 2]

    ts = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(out[t] == serial for t in range(8))


def test_check_cli_over_the_export(export_dir, photos, tmp_path):
    for i, p in enumerate(photos):
        Image.fromarray(p).save(tmp_path / f"{i}.png")
    res = CliRunner().invoke(main, ["check", "--model", str(export_dir), "--json", "--threshold", "0", str(tmp_path)])
    recs = [json.loads(line) for line in res.stdout.splitlines()]
    assert res.exit_code == 0 and len(recs) == 4 and {r["verdict"] for r in recs} == {"keep"}


def test_coreml_scoring_needs_macos():
    if sys.platform != "darwin":
        pytest.skip("CoreML MLModel.predict exists only on macOS; off macOS the export stage checks the saved "
                    "ML program with its numpy MIL evaluator (labelled emulated), not this runtime test")


# -- broken model files: one line, exit 2 -------------------------------------------------------------
def _copy(export_dir, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(export_dir, dst)
    record = json.loads((dst / "export.json").read_text())
    return dst, dst / record["artifact"], record


def _rewrite_metadata(file, change):
    """Change the metadata stored inside an artifact (ONNX metadata_props / OpenVINO rt_info)."""
    if file.suffix == ".onnx":
        import onnx

        model = onnx.load(str(file))
        meta = {p.key: p.value for p in model.metadata_props}
        change(meta)
        del model.metadata_props[:]
        onnx.helper.set_model_props(model, meta)
        onnx.save(model, str(file))
    else:
        import xml.etree.ElementTree as ET

        tree = ET.parse(file)
        section = tree.getroot().find("rt_info/dpiqa_edge")
        meta = {c.tag: c.get("value") for c in section}
        change(meta)
        for c in list(section):
            section.remove(c)
        for k, v in meta.items():
            ET.SubElement(section, k, value=v)
        tree.write(file)


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


BREAKAGES = {
    "missing": (lambda d, f, r: shutil.rmtree(d), "not found"),
    "truncated-in-folder": (lambda d, f, r: _truncate(f.with_suffix(".bin") if f.suffix == ".xml" else f), "truncated"),
    "no-metadata": (lambda d, f, r: _rewrite_metadata(f, lambda m: m.clear()), "metadata"),
    "metadata-missing-preprocessing": (lambda d, f, r: _rewrite_metadata(f, lambda m: m.pop("preprocessing")), "preprocessing"),
    "metadata-bad-json": (lambda d, f, r: _rewrite_metadata(f, lambda m: m.update(preprocessing="{size: 64")), "preprocessing"),
    "wrong-target": (lambda d, f, r: _rewrite_metadata(f, lambda m: m.update(target="coreml")), "target"),
    "newer-producer": (lambda d, f, r: _rewrite_metadata(f, lambda m: m.update(dpiqa_edge_version="9.0.0")), "producer version"),
    "export-json-names-nothing": (lambda d, f, r: f.rename(f.with_name("other" + f.suffix)), "names artifact"),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_broken_artifacts_are_model_load_errors(export_dir, tmp_path, breakage):
    dst, file, record = _copy(export_dir, tmp_path)
    # Size-changing edits (metadata rewrites) would trip export.json's recorded sizes first; drop the
    # record of sizes for those so the metadata check itself is what's tested.
    damage, words = BREAKAGES[breakage]
    if breakage not in ("truncated-in-folder", "missing"):
        record.pop("files", None)
        (dst / "export.json").write_text(json.dumps(record))
    damage(dst, file, record)
    with pytest.raises(ModelLoadError) as info:
        QualityScorer(dst)
    assert "\n" not in str(info.value) and words in str(info.value), str(info.value)
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    res = CliRunner().invoke(main, ["check", "--model", str(dst), str(img)])
    assert res.exit_code == 2 and "Traceback" not in res.output and words in res.output


def test_bare_truncated_artifact(export_dir, tmp_path):
    """A truncated file copied alone (no export.json to compare sizes with): the backend's parser fails,
    reported as a ModelLoadError naming the file."""
    _, file, _ = _copy(export_dir, tmp_path)
    alone = tmp_path / "alone"
    alone.mkdir()
    for f in file.parent.glob(file.stem + ".*"):
        shutil.copy(f, alone / f.name)
    target = alone / (file.stem + (".bin" if file.suffix == ".xml" else file.suffix))
    _truncate(target, 0.3)
    with pytest.raises(ModelLoadError, match="model"):
        QualityScorer(alone / file.name)


def test_a_checkpoint_is_not_an_artifact(student, tmp_path):
    res = CliRunner().invoke(main, ["check", "--model", str(student), str(tmp_path)])
    assert res.exit_code == 2 and "expected one artifact" in res.output
    with pytest.raises(ModelLoadError, match="not an artifact"):
        QualityScorer(student / "model.safetensors")
    # a checkpoint of another model type: a student folder handed to the teacher loader
    from dpiqa_edge.teacher.model import load_teacher

    with pytest.raises(ModelLoadError, match="not a DP-IQA teacher"):
        load_teacher(student)
