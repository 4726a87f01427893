"""A malicious pickle checkpoint is refused without running its payload.

The payload's ``__reduce__`` makes unpickling call ``exec``, which writes a marker file. We first show
the payload is live (plain ``pickle.load`` does create the marker), then hand the same file to every
place our code reads weights: ``torch.load(weights_only=True)``, the training loop's resume
(``state.pt``), ``load_student`` (a folder with a ``.pt`` beside / instead of its safetensors), a timm
student's local ``weights`` file, and the runtime's artifact loader. Each must raise and leave no marker.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")


class Payload:
    """Unpickling this runs ``exec(code)``: arbitrary code, here writing a marker file."""

    def __init__(self, marker: Path):
        self.code = f"open({str(marker)!r}, 'w').write('payload ran')"

    def __reduce__(self):
        return (exec, (self.code,))


def write_malicious(path: Path, marker: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A plausible checkpoint: real tensors next to the payload.
    torch.save({"optimizer": {"state": {}, "param_groups": []}, "weight": torch.zeros(2), "extra": Payload(marker)}, path)
    return path


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / "PWNED"
    return write_malicious(tmp_path / "evil.pt", marker), marker


def test_payload_is_live_with_plain_pickle(evil, tmp_path):
    """Control: without weights_only the payload runs, so the refusals below are meaningful."""
    path, _ = evil
    live_marker = tmp_path / "LIVE"
    write_malicious(path, live_marker)
    torch.load(path, weights_only=False)
    assert live_marker.read_text() == "payload ran"


def test_torch_load_weights_only_refuses(evil):
    path, marker = evil
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, map_location="cpu", weights_only=True)
    assert not marker.exists()


def test_training_resume_refuses_a_malicious_state_pt(evil, tmp_path):
    from safetensors.torch import save_model

    from dpiqa_edge.errors import ModelLoadError
    from dpiqa_edge.training import LoopConfig, fit

    path, marker = evil
    model = torch.nn.Linear(2, 1)
    out = tmp_path / "run"
    last = out / "last"
    last.mkdir(parents=True)
    save_model(model, str(last / "model.safetensors"))
    (last / "state.pt").write_bytes(path.read_bytes())
    cfg = LoopConfig(epochs=1, batch_size=2, cpu=True, progress=False)
    (last / "trainer.json").write_text(json.dumps({"epoch": 0, "step": 0, "best": None, "history": [],
                                                   "loop": {"seed": cfg.seed, "batch_size": 2, "drop_last": cfg.drop_last}}))
    data = [(torch.zeros(2), torch.zeros(1))] * 4
    with pytest.raises(ModelLoadError, match="state.pt|resume"):
        fit(model, lambda m, b: ((m(b[0]) - b[1]) ** 2).mean(), data, out, cfg)
    assert not marker.exists()


@pytest.fixture
def student_dir(tmp_path):
    """A real student config.json (tiny lite0, no weights file yet)."""
    from dpiqa_edge.student.config import StudentConfig

    cfg = StudentConfig(name="lite0", input_size=64, map_size=4, pretrained=False).resolved()
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "dpiqa_student", "producer_version": "0.1.0",
                                                    "student": cfg.to_dict(), "preprocessing": cfg.preprocessing().to_dict()}))
    return folder


@pytest.mark.parametrize("filename", ["model.pt", "model.safetensors"], ids=["pt-beside", "pickle-named-safetensors"])
def test_load_student_never_unpickles(student_dir, evil, filename):
    from dpiqa_edge.errors import ModelLoadError
    from dpiqa_edge.student import load_student

    path, marker = evil
    (student_dir / filename).write_bytes(path.read_bytes())
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        load_student(student_dir)
    assert not marker.exists()


def test_timm_student_local_weights_refuse_pickle(evil):
    """``StudentConfig(weights=...)`` goes through timm's loader (weights_only=True)."""
    from dpiqa_edge.errors import ModelLoadError
    from dpiqa_edge.student import build_student
    from dpiqa_edge.student.config import StudentConfig

    path, marker = evil
    with pytest.raises(ModelLoadError, match="weights_only"):
        build_student(StudentConfig(name="timm:resnet10t", input_size=64, map_size=4, weights=str(path)))
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".onnx", ".xml"])
def test_runtime_loader_refuses_a_pickle_artifact(evil, tmp_path, suffix):
    from dpiqa_edge.errors import ModelLoadError
    from dpiqa_edge.runtime.scorer import QualityScorer

    path, marker = evil
    fake = tmp_path / f"model{suffix}"
    fake.write_bytes(path.read_bytes())
    fake.with_suffix(".bin").write_bytes(b"\x00" * 16)
    with pytest.raises(ModelLoadError):
        QualityScorer(fake)
    assert not marker.exists()


# -- the DP-IQA authors' whole-module packs (``dpiqa-edge import``) ------------------------------------
class SystemPayload:
    """Unpickling this runs ``os.system(command)``: here touching a marker file."""

    def __init__(self, marker: Path):
        self.command = f"touch {marker}"

    def __reduce__(self):
        import os

        return (os.system, (self.command,))


@pytest.mark.parametrize("payload, named", [(SystemPayload, "posix.system"), (Payload, "builtins.exec")],
                         ids=["os.system", "exec"])
def test_import_refuses_an_authors_pack_carrying_a_foreign_global(tmp_path, payload, named):
    """A real authors'-layout student pack (their class path, torchvision modules, tensors) with one
    payload attribute: live under plain unpickling, refused by ``dpiqa-edge import`` - exit 2, one line
    naming the global, no output folder, the payload never ran and the authors' module never imported."""
    import sys

    from click.testing import CliRunner

    import _authors_replica as replica
    from dpiqa_edge.cli import main

    replica.install(tmp_path / "pkg")
    try:
        from iqa_models.student import StudentEfficientNet

        model = StudentEfficientNet("efficientnet_b0", map_size=2, hidden=8)
        live, marker = tmp_path / "LIVE", tmp_path / "PWNED"
        model.extra = payload(live)
        torch.save(model, tmp_path / "live.pth")
        model.extra = payload(marker)
        torch.save(model, tmp_path / "koniq_student_model_pack.pth")
        torch.load(tmp_path / "live.pth", weights_only=False)  # control: the payload is live
        assert live.exists()
    finally:
        replica.uninstall(tmp_path / "pkg")
    res = CliRunner().invoke(main, ["import", str(tmp_path / "koniq_student_model_pack.pth"),
                                    "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "Traceback" not in res.output
    (line,) = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert named in line and "nothing in it was run" in line
    assert not marker.exists() and not (tmp_path / "out").exists() and "iqa_models" not in sys.modules


def test_the_allowlist_maps_names_to_inert_stand_ins_only():
    """No entry of the allowlist is the class or function it names: every one is ours and inert."""
    from collections import OrderedDict

    from dpiqa_edge.authors import pickles

    ours = {pickles.PickledModule, pickles.AuthorsStudent, pickles.AuthorsTeacher, pickles.PickledObject,
            pickles._inert, OrderedDict}
    assert set(pickles.ALLOWLIST.values()) <= ours
    assert "posix.system" not in pickles.ALLOWLIST and "builtins.exec" not in pickles.ALLOWLIST
