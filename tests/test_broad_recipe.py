"""The broad recipe (dpiqa_edge/distill/broad.py) at toy size on package photos: its loss, the masking
that leave-one-group-out relies on, per-photo caches, and a whole run (final model + two held-out groups)."""

import json

import numpy as np
import pytest
import torch

from dpiqa_edge.data import families as fam
from dpiqa_edge.data import photos as pool
from dpiqa_edge.distill import broad
from dpiqa_edge.student.config import StudentConfig
from dpiqa_edge.training import LoopConfig


class _Fixed(torch.nn.Module):
    """Returns the scores it was given, like a student's (score, map) output from cached features."""

    def __init__(self, scores):
        super().__init__()
        self.scores = torch.nn.Parameter(torch.tensor(scores, dtype=torch.float32))

    def forward(self, x, start_stage=0):
        assert x.shape[0] == len(self.scores)  # only the valid (unpadded) images reach the model
        return self.scores, torch.zeros(len(self.scores), 8, 2, 2)


def _batch(levels, targets, ladders, k=6):
    n = len(levels)
    valid = torch.zeros(1, k, dtype=torch.bool)
    valid[0, :n] = True
    pad = k - n
    return {"x": torch.zeros(1, k, 4, 2, 2), "valid": valid,
            "level": torch.tensor([levels + [0.0] * pad]), "target": torch.tensor([targets + [float("nan")] * pad]),
            "ladder": torch.tensor([ladders + [-2] * pad])}


def test_loss_ranks_within_ladders_and_ignores_padding():
    cfg = broad.BroadConfig(w_reg=1.0, w_rank=1.0, rank_margin=0.5, freeze_stages=5)
    levels, targets, ladders = [0.0, 0.0, 1.0, 3.0, 2.0], [100.0, 100.0, 83.7, 58.7, 75.1], [-1, -1, 0, 0, 1]
    batch = _batch(levels, targets, ladders)
    loss, _, t = broad.broad_loss(_Fixed(targets), batch, cfg)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-7)  # scores = targets: every margin met
    assert len(t) == 5  # padding is not scored
    swapped = list(targets)
    swapped[2], swapped[3] = targets[3], targets[2]  # ladder 0 upside down
    model = _Fixed(swapped)
    loss, _, _ = broad.broad_loss(model, batch, cfg)
    loss.backward()
    assert float(loss.detach()) > 0.0
    assert model.scores.grad[2] < 0 < model.scores.grad[3]  # descent lifts level 1, lowers level 3


def test_cached_groups_drop_every_image_of_an_excluded_family():
    rows = [([], 0.0, 100.0, -1), (["jpeg"], 1.0, 83.5, 0), (["jpeg"], 3.0, 71.75, 0),
            (["gaussian_blur"], 2.0, 84.5, 1), (["sensor_noise", "jpeg"], 2.0, 60.0, 100)]
    feats = torch.arange(1 * broad.MAX_GROUP * 2 * 4 * 4, dtype=torch.float16).reshape(1, broad.MAX_GROUP, 2, 4, 4)
    kept = broad.CachedGroups(feats, {"groups": [rows]}, exclude=set(fam.in_group("compression")))
    item = kept[0]
    assert int(item["valid"].sum()) == 2  # clean + blur; both jpeg rungs and the jpeg mixture are gone
    assert item["ladder"][:2].tolist() == [-1, 1]
    assert torch.equal(item["x"][1], feats[0, 3].float()) or torch.equal(item["x"][1], feats[0, 3].flip(-1).float())
    none = broad.CachedGroups(feats, {"groups": [rows]}, exclude=set())
    assert int(none[0]["valid"].sum()) == 5


@pytest.fixture(scope="module")
def toy_photos():
    by = {p.name: p for p in pool.CATALOGUE}

    def get(n):
        img = pool.package_photo(by[n])
        return by[n], np.ascontiguousarray(img[: min(img.shape[0], 200), : min(img.shape[1], 260)])

    return {"train": [get("astronaut"), get("chelsea")], "val": [get("china")], "test": [get("coffee")]}


def test_a_toy_run_trains_the_final_model_and_holds_out_groups(tmp_path, toy_photos):
    cfg = broad.BroadConfig(student=StudentConfig(name="lite0", input_size=64, map_size=2), freeze_stages=5,
                            frame_short_side=(80, 120), groups_per_photo=2, eval_short_side=96,
                            eval_families_per_photo=0, feature_window=0,
                            train=LoopConfig(epochs=1, batch_size=2, lr=1e-3, milestones=(5,), best_metric="camera",
                                             progress=False))
    final = broad.train_broad(tmp_path, cfg, progress=False, photos=toy_photos)
    record = json.loads((final / "camera.json").read_text())
    assert (final / "model.safetensors").is_file() and (final / "config.json").is_file()
    assert -1.0 <= record["test"]["mean_tau"] <= 1.0 and 0.0 <= record["test"]["auc"] <= 1.0
    assert set(record["photos"]) == {"train", "val", "test"}
    # per-photo caches: one file pair per photo, reused by the next call (nothing recomputed)
    cached = sorted(p.name for p in (tmp_path / "cache" / "train").iterdir())
    assert cached == ["astronaut.json", "astronaut.safetensors", "chelsea.json", "chelsea.safetensors"]
    meta = json.loads((tmp_path / "cache" / "train" / "astronaut.json").read_text())
    assert meta["prefix_parity"] < 1e-3 and len(meta["groups"]) == 2
    before = (tmp_path / "cache" / "train" / "astronaut.safetensors").stat().st_mtime_ns
    summary = broad.logo(tmp_path, cfg, groups=["blur", "sharpness"], progress=False, photos=toy_photos)
    assert (tmp_path / "cache" / "train" / "astronaut.safetensors").stat().st_mtime_ns == before
    assert set(summary["groups"]) == {"blur", "sharpness"}
    ladders = json.loads((tmp_path / "cache" / "ladders" / "coffee.json").read_text())
    for g in summary["groups"]:
        run = json.loads((tmp_path / "logo" / g / "config.json").read_text())
        assert run["provenance"]["excluded_families"] == sorted(fam.in_group(g))
        held = set(summary["groups"][g]["per_family"])
        assert held == set(fam.in_group(g)) & set(ladders["distortions"])  # only that group's ladders scored
    assert json.loads((tmp_path / "logo.json").read_text())["mean_tau"] == pytest.approx(summary["mean_tau"])
