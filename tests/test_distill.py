"""Distillation: feature loss, training from cached targets without the teacher, MOS/teacher-only modes,
the CLI, and exact resume after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from dpiqa_edge.data.manifest import Row, read_manifest, write_manifest  # noqa: E402
from dpiqa_edge.distill.config import DistillConfig  # noqa: E402
from dpiqa_edge.distill.losses import feature_loss  # noqa: E402
from dpiqa_edge.losses import rank_loss  # noqa: E402
from dpiqa_edge.student import StudentConfig, build_student, load_student  # noqa: E402
from dpiqa_edge.teacher.targets import write_targets  # noqa: E402
from dpiqa_edge.training import LoopConfig  # noqa: E402

HERE = Path(__file__).resolve().parent
TINY = StudentConfig(name="timm:mobilenetv3_small_050", input_size=48, map_size=4)


def make_set(root: Path, unlabelled_train: int = 0) -> Path:
    """4 scenes x 6 blur levels of 48-px crops; MOS falls with blur. Targets: teacher score = MOS - 5,
    map = a fixed pattern scaled by quality (a stand-in teacher; the real Targets reader and writer)."""
    from PIL import Image, ImageFilter
    from skimage import data

    rows, maps, scores = [], [], []
    for s, name in enumerate(["astronaut", "coffee", "chelsea", "rocket"]):
        img = Image.fromarray(getattr(data, name)()).resize((48, 48))
        split = ["train", "train", "val", "test"][s]
        for level in range(6):
            rel = f"img/{name}_{level}.png"
            (root / "img").mkdir(parents=True, exist_ok=True)
            img.filter(ImageFilter.GaussianBlur(level * 0.8)).save(root / rel)
            mos = 90.0 - 14.0 * level
            unl = split == "train" and level < unlabelled_train
            rows.append(Row(rel, None if unl else mos, split, scene=name, distortion="blur", level=level))
            scores.append(mos - 5.0)
            maps.append(np.outer(np.arange(8), np.ones(16 * 16)).reshape(8, 16, 16) * mos / 800.0)
    write_manifest(root / "manifest.csv", rows)
    write_targets(root / "targets", [r.path for r in rows], np.array(scores), np.array(maps, np.float32),
                  shard_size=10, teacher={"what": "stand-in"})
    return root / "manifest.csv"


def tiny_cfg(**kw) -> DistillConfig:
    loop = dict(epochs=2, batch_size=4, lr=1e-3, milestones=(1,), progress=False, seed=1)
    loop.update(kw.pop("train", {}))
    return DistillConfig(student=TINY, train=LoopConfig(**loop), **kw)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory):
    return make_set(tmp_path_factory.mktemp("distill"))


def test_feature_loss_falls_when_student_imitates_fixed_map():
    torch.manual_seed(0)
    model = build_student(TINY).train()
    x = torch.rand(4, 3, 48, 48)
    target = torch.rand(4, 8, 16, 16) * 2.0  # F_quality on a finer grid: resized to the student's 4x4
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        _, qmap = model(x)
        loss = feature_loss(qmap, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    # Measured: ~1.4 -> < 0.1 in 40 Adam steps on a fixed batch; a broken resize/mask/gradient path
    # leaves it flat. Require a 3x drop.
    assert losses[-1] < losses[0] / 3, losses[::10]


def test_rank_loss_orders_pairs():
    t = torch.tensor([0.1, 0.5, 0.9])
    assert float(rank_loss(t.clone(), t)) < float(rank_loss(t.flip(0), t))
    assert float(rank_loss(t * 10, t)) == 0.0  # correct order with big gaps: every hinge inactive


def test_distill_from_cached_targets_never_builds_the_teacher(tiny_set, tmp_path, monkeypatch):
    # Any import of the teacher model (or diffusers, which it needs) raises ImportError from here on.
    for mod in ("dpiqa_edge.teacher.model", "dpiqa_edge.teacher.train", "dpiqa_edge.teacher.loading", "diffusers"):
        monkeypatch.setitem(sys.modules, mod, None)
    from dpiqa_edge.distill import distill

    out = distill(tiny_set, tmp_path / "s", tiny_cfg(), targets_dir=tiny_set.parent / "targets", quiet=True)
    info = json.loads((out / "distill.json").read_text())
    assert info["counts"] == {"train": 12, "val": 6, "test": 6, "dropped": 0}
    assert len(info["history"]) == 2 and np.isfinite(info["history"][-1]["loss"])
    model, cfg = load_student(out)
    assert cfg.name == TINY.name
    meta = json.loads((out / "config.json").read_text())
    assert meta["provenance"]["teacher"] == {"what": "stand-in"} and meta["provenance"]["manifest"].endswith("manifest.csv")
    with torch.no_grad():
        score, qmap = model(torch.rand(2, 3, 48, 48))
    assert qmap.shape == (2, 8, 4, 4)


@pytest.mark.parametrize("mode", ["mos_only", "teacher_only", "unlabelled_rows"])
def test_distill_modes(mode, tmp_path):
    manifest = make_set(tmp_path / "d", unlabelled_train=3 if mode == "unlabelled_rows" else 0)
    targets = None if mode == "mos_only" else manifest.parent / "targets"
    cfg = tiny_cfg(score_target="teacher" if mode == "teacher_only" else "mos", train={"epochs": 1})
    out = tiny_distill(manifest, tmp_path / "s", cfg, targets)
    info = json.loads((out / "distill.json").read_text())
    if mode == "mos_only":  # no targets: the terms that need them are off, and recorded as such
        assert info["config"]["w_feat"] == 0 and info["config"]["w_kd"] == 0
    if mode == "unlabelled_rows":  # rows without MOS train on the teacher's score, none dropped
        assert sum(r.mos is None for r in read_manifest(manifest).split("train")) == 6
        assert info["counts"]["train"] == 12 and info["counts"]["dropped"] == 0
    assert (out / "model.safetensors").is_file()


def tiny_distill(manifest, out, cfg, targets):
    from dpiqa_edge.distill import distill

    return distill(manifest, out, cfg, targets_dir=targets, quiet=True)


def test_cli_distill_with_config_file(tiny_set, tmp_path):
    from click.testing import CliRunner

    from dpiqa_edge.cli import main

    cfg = tmp_path / "d.toml"
    cfg.write_text('w_feat = 0.5\n[student]\nname = "timm:mobilenetv3_small_050"\ninput_size = 48\nmap_size = 4\n'
                   '[train]\nepochs = 1\nbatch_size = 4\nprogress = false\n')
    res = CliRunner().invoke(main, ["distill", "--data", str(tiny_set), "--targets", str(tiny_set.parent / "targets"),
                                    "--out", str(tmp_path / "s"), "--config", str(cfg), "--lr", "5e-4", "--quiet"])
    assert res.exit_code == 0, res.output
    info = json.loads((tmp_path / "s" / "distill.json").read_text())
    assert info["config"]["w_feat"] == 0.5 and info["config"]["train"]["lr"] == 5e-4
    res = CliRunner().invoke(main, ["distill", "--data", str(tiny_set), "--student", "vgg", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "unknown name" in res.output


# -- SIGKILL mid-epoch, resume, compare with an uninterrupted run --------------------------------
def _run(manifest: str, out: str, slow: float) -> None:
    """Child entry point: a 3-epoch distillation checkpointing every step, each step slowed by ``slow``."""
    torch.set_num_threads(1)
    import dpiqa_edge.distill.losses as losses

    real = losses.distill_loss

    def slowed(*args, **kwargs):
        time.sleep(slow)
        return real(*args, **kwargs)

    losses.distill_loss = slowed
    try:
        cfg = tiny_cfg(train={"epochs": 3, "save_every_steps": 1}, w_rank=0.5)
        tiny_distill(manifest, out, cfg, str(Path(manifest).parent / "targets"))
    finally:  # the reference run happens inside pytest: leave the module as found
        losses.distill_loss = real


def _child(manifest, out, slow):
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); import test_distill as t; "
            f"t._run({str(manifest)!r}, {str(out)!r}, {slow})")
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_mid_epoch_resume_matches_uninterrupted(tiny_set, tmp_path):
    from safetensors.torch import load_file

    ref, killed = tmp_path / "ref", tmp_path / "killed"
    _run(str(tiny_set), str(ref), 0.0)

    # 1. Kill a real child with SIGKILL once it has checkpointed inside epoch 2.
    proc = _child(tiny_set, killed, 0.3)
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        try:
            t = json.loads((killed / "last" / "trainer.json").read_text())
            if t["epoch"] == 1 and t["step"] >= 1:
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, f"child ended before the kill: {proc.stderr.read().decode()[-800:]}"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert json.loads((killed / "last" / "trainer.json").read_text())["epoch"] < 3

    # 2. Resume to the end in a fresh process.
    proc = _child(tiny_set, killed, 0.0)
    assert proc.wait(timeout=180) == 0, proc.stderr.read().decode()[-800:]

    # 3. The final students agree to 1e-6 (one CPU thread, same seeded batches and flips: the same float
    #    ops in the same order, so in practice they are bit-identical).
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst <= 1e-6, worst
    ha = json.loads((ref / "distill.json").read_text())
    hb = json.loads((killed / "distill.json").read_text())
    assert ha["test"]["srcc"] == pytest.approx(hb["test"]["srcc"], abs=1e-6)


def test_cached_frozen_prefix_trains_like_recomputing_it(tiny_set, tmp_path):
    """freeze_stages + cache_features is an optimisation only: the same student as recomputing the
    frozen stages every step."""
    from safetensors.torch import load_file

    lite = StudentConfig(name="lite0", input_size=48, map_size=4, pretrained=False)
    outs = {}
    for cache in (True, False):
        cfg = DistillConfig(student=lite, train=LoopConfig(epochs=1, batch_size=4, lr=1e-3, progress=False, seed=2),
                            freeze_stages=3, cache_features=cache)
        outs[cache] = tiny_distill(tiny_set, tmp_path / str(cache), cfg, tiny_set.parent / "targets")
    a, b = (load_file(str(outs[c] / "model.safetensors")) for c in (True, False))
    # Frozen tensors are untouched either way (exactly); trained ones agree to float32 round-off
    # (the prefix ran at another batch size, so conv kernels may sum in another order: 1e-4 abs).
    frozen = [k for k in a if k.startswith("backbone.model.blocks.0.")]
    assert frozen and all(torch.equal(a[k], b[k]) for k in frozen)
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-4
    ja, jb = (json.loads((outs[c] / "distill.json").read_text()) for c in (True, False))
    assert ja["history"][0]["srcc"] == pytest.approx(jb["history"][0]["srcc"], abs=1e-3)


def test_evaluate_student_against_a_peer(tiny_set, tmp_path):
    from dpiqa_edge.distill.evaluate import evaluate_student

    out = tiny_distill(tiny_set, tmp_path / "s", tiny_cfg(train={"epochs": 1}), tiny_set.parent / "targets")
    res = evaluate_student(out, tiny_set, split="test", peers=("brisque",), n_boot=50)
    assert res["n"] == 6 and set(res["models"]) == {"student", "brisque"}
    lo, hi = res["models"]["student"]["srcc_ci95"]
    assert lo <= res["models"]["student"]["srcc"] <= hi or np.isnan(lo)
    assert res["models"]["brisque"]["per_distortion"]["blur"]["n"] == 6  # every tiny-set row is "blur"
    assert isinstance(res["beats"]["brisque"]["everywhere"], bool)


def test_grouped_folds_predict_every_image_once_by_a_student_that_never_saw_its_scene(tiny_set, tmp_path):
    from dpiqa_edge.distill.folds import distill_folds, fold_splits

    rows = read_manifest(tiny_set).labelled()
    plans = fold_splits(rows, 4)
    for i, plan in enumerate(plans):
        per_scene = {}
        for r in rows:
            per_scene.setdefault(r.scene, set()).add(plan[r.path])
        assert all(len(s) == 1 for s in per_scene.values())  # a scene never straddles two splits
        assert {r.scene for r in rows if plan[r.path] == "val"} == \
            {r.scene for r in rows if plans[(i + 1) % 4][r.path] == "test"}  # val = the next fold's test
    assert sorted(r.path for p in plans for r in rows if p[r.path] == "test") == sorted(r.path for r in rows)

    from dpiqa_edge.errors import InputError

    with pytest.raises(InputError, match="unknown peer"):  # refused before any of the K trainings
        distill_folds(tiny_set, tmp_path / "bad", tiny_cfg(), k=4, peers=("vif",), quiet=True)
    assert not (tmp_path / "bad").exists()
    res = distill_folds(tiny_set, tmp_path / "f", tiny_cfg(train={"epochs": 1}), k=4,
                        targets_dir=tiny_set.parent / "targets", peers=("brisque",), n_boot=20, quiet=True)
    assert [f["n"] for f in res["folds"]] == [6, 6, 6, 6]
    assert sorted(res["predictions"]) == sorted(r.path for r in rows)
    assert all(np.isfinite(v) for v in res["predictions"].values())
    assert set(res["pooled"]) == set(res["fold_mean"]) == {"student", "brisque"} and res["label"] == "MOS"
    for name in ("student", "brisque"):  # the fold mean is the mean of the per-fold figures
        assert res["fold_mean"][name]["srcc"] == pytest.approx(
            np.mean([f["models"][name]["srcc"] for f in res["folds"]]), nan_ok=True)
    assert res["folds"][0]["models"]["student"]["srcc"] == pytest.approx(res["folds"][0]["srcc"], nan_ok=True)
    counts = json.loads((tmp_path / "f" / "fold-0" / "distill.json").read_text())["counts"]
    assert (counts["train"], counts["val"], counts["test"]) == (12, 6, 6)
    # The pooled prediction of a fold's test image is what that fold's saved student says.
    fold = res["folds"][1]
    model, cfg = load_student(fold["student"])
    row = next(r for r in rows if r.scene == fold["test_scenes"][0])
    from dpiqa_edge.runtime.preprocess import Preprocess

    x = torch.from_numpy(Preprocess(size=(48, 48))(row.abspath))[None]
    with torch.no_grad():
        assert float(model.eval()(x)[0]) == pytest.approx(res["predictions"][row.path], abs=1e-3)
    assert json.loads((tmp_path / "f" / "folds.json").read_text())["k"] == 4


@pytest.mark.parametrize("name", ["distill.toml", "distill-demo.toml"])
def test_shipped_recipes_load(name):
    from dpiqa_edge.config import from_dict, load_config, to_dict
    from dpiqa_edge.demo import load_demo_config

    cfg = load_config(DistillConfig, HERE.parent / "configs" / name)
    if name == "distill-demo.toml":  # the demo's [distill] table is this recipe: one recipe, two places
        demo = from_dict(DistillConfig, dict(load_demo_config(HERE.parent / "configs" / "demo.toml").distill))
        mine, theirs = to_dict(cfg), to_dict(demo)
        for key in ("w_mos", "w_feat", "w_kd", "w_rank", "crop", "freeze_stages", "cache_features", "student"):
            assert mine[key] == theirs[key], key
        for key in ("epochs", "batch_size", "lr", "milestones", "gamma"):
            assert mine["train"][key] == theirs["train"][key], key
    else:
        assert cfg.student.name == "paper" and cfg.w_mos == cfg.w_feat == 1.0  # SPEC's recipe
