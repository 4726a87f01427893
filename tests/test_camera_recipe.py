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
        assert set(m["per_distortion"]) == set(camera.CAMERA8_DISTORTIONS)
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


def test_report_camera_section_keeps_per_tag_groups_and_the_held_out_group_table(tmp_path):
    """Clean photos kept per content tag (two bokeh photos, one scored under the threshold), tau per family
    group, and the leave-one-group-out table beside the peers' tau on the same groups."""
    from dpiqa_edge.report.build import assemble_report, write_report
    from dpiqa_edge.report.variants import ScoredVariant

    refs, scenes, dists, levels = [], [], [], []
    for r in range(4):
        for d, lv in [("pristine", 0)] + [(d, lv) for d in ("jpeg", "oversharpen") for lv in range(1, 6)]:
            refs.append(f"r{r}"); scenes.append(f"s{r}"); dists.append(d); levels.append(lv)  # noqa: E702
    scores = np.array([100.0 - 15 * lv for lv in levels])
    scores[refs.index("r3")] = 40.0  # r3's clean photo falls under the threshold 50
    # BRISQUE (raw: lower = better) ranks jpeg right and oversharpening upside down
    brisque = np.array([(-1 if d == "oversharpen" else 1) * lv for d, lv in zip(dists, levels)], float)
    fields = dict(artifact="a", student="lite0", target="onnx", backend="onnx", precision_ran="int8",
                  label=None, source_sha256=None, cost={}, gate_threshold=50.0)
    v = ScoredVariant(name="int8", precision="int8", scores=scores, **fields)
    tags = {"r0": ["bokeh", "animal"], "r1": ["day"], "r2": ["bokeh"], "r3": ["bokeh", "night"]}
    ladder = {"refs": refs, "scenes": scenes, "distortions": dists, "levels": levels, "tags": tags}
    logo = {"label": "synthetic severity", "mean_tau": 0.7,
            "groups": {"compression": {"mean_tau": 0.9}, "sharpness": {"mean_tau": 0.5}}}
    rep = assemble_report(manifest="m.csv", split="test", paths=[f"{i}.png" for i in range(len(scores))],
                          mos=list(100.0 - 15 * np.array(levels)), variants=[v], teacher=None,
                          references={"BRISQUE": brisque}, label="synthetic severity", n_boot=20, ladder=ladder,
                          logo=logo)
    cam = rep["camera"]
    row = {r["name"]: r for r in cam["rows"]}
    kept = row["int8"]["gate"]["keep_by_tag"]
    assert kept["bokeh"] == {"keep": pytest.approx(2 / 3), "n": 3} and kept["night"] == {"keep": 0.0, "n": 1}
    assert kept["day"]["keep"] == 1.0
    # three perfect ladders per family and r3's, whose clean photo (40) sits under levels 1-3 and ties level
    # 4: Kendall tau-b (11 - 3) / sqrt(14 x 15) = 0.552; the group mean is (3 + 0.552) / 4 for both groups
    tau_r3 = 8 / np.sqrt(14 * 15)
    assert row["int8"]["per_group"] == {"compression": pytest.approx((3 + tau_r3) / 4),
                                        "sharpness": pytest.approx((3 + tau_r3) / 4)}
    assert row["BRISQUE"]["per_group"]["sharpness"] == pytest.approx(-1.0)
    assert cam["logo"]["groups"]["sharpness"] == {"held_out_tau": 0.5, "BRISQUE": pytest.approx(-1.0)}
    write_report(rep, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "per content tag" in md and "Leave-one-group-out" in md and "| sharpness | 0.500 | -1.000 |" in md
