"""The camera recipe (loss, a toy training run on package photos), its report section and the ladder
threshold rule."""

import json

import numpy as np
import pytest
import torch

from dpiqa_edge.data import camera
from dpiqa_edge.data import photos as pool
from dpiqa_edge.distill.camera import CameraConfig, LadderSet, camera_loss, train_camera
from dpiqa_edge.export.card import ladder_threshold
from dpiqa_edge.student.config import StudentConfig
from dpiqa_edge.training import LoopConfig


class _Fixed(torch.nn.Module):
    """Returns the scores it was given (flattened batch order), like a student's (score, map) output."""

    def __init__(self, scores):
        super().__init__()
        self.scores = torch.nn.Parameter(torch.tensor(scores, dtype=torch.float32))

    def forward(self, x):
        return self.scores, torch.zeros(len(self.scores), 8, 2, 2)


def _batch(levels, dists):
    k = len(levels)
    return {"x": torch.zeros(1, k, 3, 4, 4), "target": torch.tensor([[camera.score_at(v) for v in levels]]),
            "dist": torch.tensor([dists]), "level": torch.tensor([levels], dtype=torch.float32)}


def test_loss_is_the_regression_alone_when_every_pair_is_ordered_with_margin():
    cfg = CameraConfig(w_reg=1.0, w_rank=1.0, rank_margin=0.5)
    levels, dists = [0.0, 1.0, 3.0, 2.0, 5.0], [-1, 0, 0, 1, 1]
    batch = _batch(levels, dists)
    target = batch["target"][0]
    loss, _, _ = camera_loss(_Fixed(target.tolist()), batch, cfg)  # scores = targets: all margins met
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-7)
    # swap the two levels of distortion 0: the hinge pays for that pair, and for pristine vs the level-3
    # copy, now scored 83.7, within its margin of 0.5 x (100 - 58.7) / 100 below pristine
    swapped = target.clone()
    swapped[1], swapped[2] = target[2], target[1]
    model = _Fixed(swapped.tolist())
    loss, _, _ = camera_loss(model, batch, cfg)
    mse = float(((swapped - target) / 100).pow(2).mean())
    gap = float(target[1] - target[2]) / 100  # 0.25: this pair's margin is 0.5 x gap and its difference is -gap
    pristine = 0.5 * float(target[0] - target[2]) / 100 - float(target[0] - swapped[2]) / 100
    pairs = 4 + 1 + 1  # pristine above 4 degraded copies, one ordered pair per distortion
    assert float(loss.detach()) == pytest.approx(mse + (0.5 * gap + gap + pristine) / pairs, rel=1e-5)
    loss.backward()
    assert model.scores.grad[1] < 0 < model.scores.grad[2]  # descent lifts level 1, lowers level 3


def test_a_toy_camera_run_writes_a_student_and_held_out_camera_metrics(tmp_path):
    by = {p.name: p for p in pool.CATALOGUE}
    train = [by[n] for n in ("astronaut", "chelsea", "motorcycle")]
    val, test = [by["china"]], [by["coffee"]]
    load = lambda ps: [pool.package_photo(p) for p in ps]  # noqa: E731
    cfg = CameraConfig(student=StudentConfig(name="lite0", input_size=64, map_size=4),
                       train=LoopConfig(epochs=1, batch_size=2, lr=1e-3, best_metric="camera", progress=False),
                       frame_short_side=(64, 96), window=48, groups_per_photo=2, eval_short_side=80)
    out = train_camera(tmp_path / "cam", cfg, quiet=True, train=(train, load(train)),
                       val=LadderSet.build(val, load(val), 80), test=LadderSet.build(test, load(test), 80))
    info = json.loads((out / "camera.json").read_text())
    assert info["label"] == "synthetic severity (camera ladders)"
    for split in ("val", "test"):
        m = info[split]
        assert set(m["per_distortion"]) == set(camera.DISTORTIONS)
        assert -1.0 <= m["mean_tau"] <= 1.0 and 0.0 <= m["auc"] <= 1.0
    assert info["history"][0]["camera"] == pytest.approx((info["history"][0]["mean_tau"] + info["history"][0]["auc"]) / 2)
    assert (out / "model.safetensors").is_file() and json.loads((out / "config.json").read_text())["provenance"]["recipe"] == "camera"


def test_report_camera_section_counts_keep_and_flag_rates(tmp_path):
    from dpiqa_edge.report.build import assemble_report, write_report
    from dpiqa_edge.report.variants import ScoredVariant

    refs, scenes, dists, levels = [], [], [], []
    for r in range(4):
        for d, lv in [("pristine", 0)] + [(d, lv) for d in ("jpeg", "gaussian_blur") for lv in range(1, 6)]:
            refs.append(f"r{r}"); scenes.append(f"s{r // 2}"); dists.append(d); levels.append(lv)  # noqa: E702
    mos = [camera.score_at(lv) for lv in levels]
    good = np.array(mos) - 3.0
    fields = dict(artifact="a", student="lite0", target="onnx", backend="onnx", precision_ran="fp32",
                  label=None, source_sha256=None, cost={}, gate_threshold=50.0)
    v = ScoredVariant(name="float", precision="fp32", scores=good, **fields)
    q = ScoredVariant(name="int8", precision="int8", scores=good + 0.5, parent="float", **fields)
    ladder = {"refs": refs, "scenes": scenes, "distortions": dists, "levels": levels}
    rep = assemble_report(manifest="m.csv", split="test", paths=[f"{i}.png" for i in range(len(mos))], mos=mos,
                          variants=[v, q], teacher=None, references={"BRISQUE": -good}, label="synthetic severity",
                          n_boot=50, ladder=ladder)
    rows = {r["name"]: r for r in rep["camera"]["rows"]}
    g = rows["float"]["gate"]  # pristine 97 >= 50 kept; level 4 (35.3) and 5 (15.4) < 50 flagged
    assert (g["keep_pristine"], g["flag_level4"], g["flag_level5"]) == (1.0, 1.0, 1.0)
    assert rows["float"]["mean_tau"]["value"] == pytest.approx(1.0)
    assert rows["int8"]["vs_parent"]["mean_tau_change"] == pytest.approx(0.0)
    assert rows["BRISQUE"]["kind"] == "reference" and rows["BRISQUE"]["mean_tau"]["value"] == pytest.approx(1.0)
    write_report(rep, tmp_path)
    assert (tmp_path / "camera_tau.png").is_file() and "Camera ladders" in (tmp_path / "report.md").read_text()


def test_ladder_threshold_sits_in_the_middle_of_the_separating_gap():
    scores = np.array([90.0, 85, 80, 40, 30, 20, 35])
    levels = np.array([0, 0, 0, 4, 5, 4, 5])
    t, rule = ladder_threshold(scores, levels)
    assert t == pytest.approx(60.0) and "Youden J 1.000" in rule
    # overlap: one pristine photo (45) below one level-4 image (50): the best threshold keeps 2 of 3 pristine
    t, _ = ladder_threshold(np.array([90.0, 85, 45, 50, 30]), np.array([0, 0, 0, 4, 5]))
    assert 50 < t < 85
