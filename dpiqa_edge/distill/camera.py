"""The camera recipe: a student that learns capture and codec failures, not scenes, without a teacher.

With no human scores and no Stable Diffusion teacher offline, a student trained on a handful of scenes
learns the scenes. This recipe learns quality from synthetic *ladders* instead (RankIQA, Liu, van de
Weijer and Bagdanov, ICCV 2017: a network ranks versions of one image degraded by one distortion at
increasing strength, which needs no human label), over many real photos (:mod:`..data.photos`):

1. A training item is a *group*: one random preview frame of a training photo (random region, phone
   aspect, short side 400-640 px), its pristine copy and ``distortions_per_group`` distortions at
   ``levels_per_distortion`` random (continuous) levels each (:mod:`..data.camera`), every image put
   through the model's own preprocessing, then the same random window of all of them (and the same flip).
2. Loss = ``w_rank`` x pairwise hinge within the group (pristine above every degraded copy of itself; a
   lower level above a higher one of the same distortion; margin ``rank_margin`` x the gap of their target
   scores) + ``w_reg`` x MSE to the content-independent target score of each level
   (:data:`..data.camera.LEVEL_SCORES`): ranking orders each ladder, the regression puts every scene on
   one scale so that one threshold means the same everywhere.
3. Each epoch is scored on the *val* photos' ladders at preview size (8 distortions x 5 levels +
   pristine): mean within-reference Kendall tau and pristine-vs-severe AUC (:func:`..metrics.camera_metrics`);
   their mean picks ``best/``. The held-out *test* photos are scored once at the end, never for selection.

SPEC's DP-IQA distillation (:mod:`.train`) stays the recipe for a real teacher; this one is the offline
default behind the shipped model (``dpiqa_edge/models/default``).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data import camera
from ..data import photos as pool
from ..data.camera import SEVERITY_LABEL, LadderSet
from ..errors import ConfigError
from ..io import write_json
from ..student import build_student, save_student
from ..student.config import StudentConfig
from ..training import LoopConfig, fit


def _student() -> StudentConfig:
    return StudentConfig(name="lite0", input_size=448, map_size=16)


def _loop() -> LoopConfig:
    return LoopConfig(epochs=4, batch_size=6, lr=3e-4, milestones=(3,), gamma=0.3, best_metric="camera")


@dataclass
class CameraConfig:
    """One camera-recipe run (TOML ``configs/camera*.toml``: top-level keys, ``[student]``, ``[train]``).

    ``train.batch_size`` counts groups; a step sees ``batch_size x (1 + distortions_per_group x
    levels_per_distortion)`` images.
    """

    student: StudentConfig = field(default_factory=_student)
    train: LoopConfig = field(default_factory=_loop)
    frame_short_side: tuple[int, int] = (400, 640)  #: training frames' short side range, px
    window: int = 224  #: side of the random training window cut from the model input (0 = the whole input)
    distortions_per_group: int = 2
    levels_per_distortion: int = 3
    groups_per_photo: int = 6  #: items per epoch = training photos x this
    extra_distortions: bool = True  #: also train on defocus blur (never reported)
    #: relative sampling weight of a distortion in the groups (default 1 each): the hard ones more often
    distortion_weights: dict[str, float] = field(default_factory=dict)
    w_reg: float = 1.0  #: weight of MSE(score/100, target/100)
    w_rank: float = 1.0  #: weight of the within-group hinge
    rank_margin: float = 0.5  #: hinge margin = rank_margin x (target gap / 100)
    eval_short_side: int = 450  #: val/test ladders' short side (never enlarged)
    eval_batch_size: int = 16
    photo_max_side: int = 1100  #: photos are reduced to this short side once, in memory

    def __post_init__(self):
        if self.distortions_per_group < 1 or self.levels_per_distortion < 1 or self.groups_per_photo < 1:
            raise ConfigError("camera: distortions_per_group, levels_per_distortion, groups_per_photo must be >= 1")
        lo, hi = self.frame_short_side
        if not 32 <= lo <= hi:
            raise ConfigError(f"camera: frame_short_side {self.frame_short_side} must be 32 <= lo <= hi")

        unknown = sorted(set(self.distortion_weights) - set(camera.ALL_DISTORTIONS))
        if unknown or any(w <= 0 for w in self.distortion_weights.values()):
            raise ConfigError(f"camera: distortion_weights must name distortions of {sorted(camera.ALL_DISTORTIONS)} "
                              f"with weights > 0 (got {self.distortion_weights})")
        if self.window and self.window > self.student.input_size:
            raise ConfigError(f"camera: window {self.window} exceeds the input size {self.student.input_size}")
        self.frame_short_side = (int(lo), int(hi))


class CameraGroups(torch.utils.data.Dataset):
    """Training groups drawn on the fly (module docstring, step 1); item ``i`` uses photo ``i % P``.

    Random draws come from numpy's global generator, which the training loop seeds per item: a resumed run
    sees the same groups.
    """

    def __init__(self, photos: list[np.ndarray], cfg: CameraConfig, preprocess):
        self.photos, self.cfg, self.pre = photos, cfg, preprocess
        self.names = list(camera.ALL_DISTORTIONS if cfg.extra_distortions else camera.CAMERA8_DISTORTIONS)
        w = np.array([cfg.distortion_weights.get(n, 1.0) for n in self.names])
        self.p = w / w.sum()

    def __len__(self) -> int:
        return len(self.photos) * self.cfg.groups_per_photo

    def __getitem__(self, i: int) -> dict:
        cfg = self.cfg
        rng = np.random.default_rng(np.random.randint(0, 2**31 - 1))
        frame = camera.random_frame(self.photos[i % len(self.photos)], rng, cfg.frame_short_side)
        images, dist, level = [frame], [-1], [0.0]
        for d in rng.choice(len(self.names), cfg.distortions_per_group, replace=False, p=self.p):
            seed = int(rng.integers(2**31))  # one motion direction / noise field per distortion: a ladder
            for lv in np.sort(rng.uniform(0.5, 5.0, cfg.levels_per_distortion)):
                images.append(camera.apply(frame, self.names[d], float(lv), np.random.default_rng(seed)))
                dist.append(int(d))
                level.append(float(lv))
        x = np.stack([self.pre.resize_rgb(im) for im in images])  # K x S x S x 3 uint8, the model's own resize
        if cfg.window:
            s, w = x.shape[1], cfg.window
            y0, x0 = (int(v) for v in rng.integers(0, s - w + 1, 2))
            x = x[:, y0:y0 + w, x0:x0 + w]
        if rng.random() < 0.5:
            x = x[:, :, ::-1]
        lo, hi = self.pre.input_range
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float() * ((hi - lo) / 255.0) + lo
        return {"x": t, "target": torch.tensor([camera.score_at(v) for v in level], dtype=torch.float32),
                "dist": torch.tensor(dist), "level": torch.tensor(level, dtype=torch.float32)}


def camera_loss(model, batch: dict, cfg: CameraConfig):
    """``(loss, scores, targets)`` of a batch of groups (module docstring, step 2)."""
    x = batch["x"]
    b, k = x.shape[:2]
    score, _ = model(x.flatten(0, 1).contiguous(memory_format=torch.channels_last))
    s = score.view(b, k) / 100.0
    t = batch["target"] / 100.0
    loss = cfg.w_reg * torch.nn.functional.mse_loss(s, t)
    if cfg.w_rank:
        d, lv = batch["dist"], batch["level"]
        better = (lv[:, :, None] < lv[:, None, :]) & ((d[:, :, None] == d[:, None, :]) | (d[:, :, None] < 0))
        margin = cfg.rank_margin * (t[:, :, None] - t[:, None, :])
        hinge = torch.relu(margin - (s[:, :, None] - s[:, None, :]))
        loss = loss + cfg.w_rank * hinge[better].mean()
    return loss, score.detach(), batch["target"].flatten()


def predict_frames(model, frames, preprocess, batch_size: int = 16) -> np.ndarray:
    """Scores (0-100) of uint8 frames through ``preprocess`` (the one runtime definition) and ``model``."""
    was = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            x = torch.from_numpy(np.stack([preprocess(f) for f in frames[i:i + batch_size]]))
            out.append(model(x.contiguous(memory_format=torch.channels_last))[0].float().numpy())
    model.train(was)
    return np.concatenate(out)


def _eval(model, ladders: LadderSet, pre, batch_size: int, n_boot: int = 0) -> dict:
    m = ladders.metrics(predict_frames(model, ladders.frames, pre, batch_size), n_boot=n_boot)
    out = {"mean_tau": m["mean_tau"], "auc": m["auc"], "camera": (m["mean_tau"] + m["auc"]) / 2}
    out.update({f"tau_{d}": v["tau"] for d, v in m["per_distortion"].items()})
    return out


def train_camera(out_dir, cfg: CameraConfig | None = None, cache=None, quiet: bool = False, *,
                 train=None, val=None, test=None) -> Path:
    """Train a student with the camera recipe; returns ``out_dir`` (a student folder: ``config.json`` +
    ``model.safetensors`` of the best val epoch, ``camera.json`` with the history and the val and held-out
    test metrics). Resumes from ``out_dir/last``.

    The photos default to the catalogue's splits (fetched into ``cache``); ``train`` = (photos, images)
    and ``val`` / ``test`` = :class:`LadderSet` replace them (tests use package photos at toy sizes;
    ``test=False`` skips the held-out evaluation).
    """
    t0 = time.perf_counter()
    cfg = cfg or CameraConfig()
    out_dir = Path(out_dir)
    say = (lambda m: None) if quiet else (lambda m: print(f"camera: {m}", flush=True))

    # 1. photos: train (content), val (selection); ladders built once at preview size
    train_photos, train_images = train or pool.load_split("train", cache, cfg.photo_max_side, not quiet)
    if val is None:
        val = LadderSet.build(*pool.load_split("val", cache, None, not quiet), cfg.eval_short_side)
    student_cfg = cfg.student.resolved()
    pre = student_cfg.preprocessing()
    groups = CameraGroups(train_images, cfg, pre)
    say(f"{len(train_photos)} training photos ({len({p.scene for p in train_photos})} scenes), {len(groups)} groups "
        f"per epoch; val {len(val.frames)} images of {len(set(val.refs))} photos at {cfg.eval_short_side} px; "
        f"input {pre.size[0]} px, window {cfg.window or 'whole'}")

    # 2. train on the shared loop, best/ by the val camera score. channels_last: on a CPU, oneDNN's
    #    backward of Lite0's depthwise convolutions is ~6x faster in that layout (the weights saved are the same).
    torch.manual_seed(cfg.train.seed)
    model = build_student(student_cfg).to(memory_format=torch.channels_last)
    provenance = {"recipe": "camera", "camera": dataclasses.asdict(cfg), "label": SEVERITY_LABEL,
                  "photos": {"train": [p.name for p in train_photos], "val": sorted(set(val.refs))}}
    loop = cfg.train if not quiet else dataclasses.replace(cfg.train, progress=False)
    result = fit(model, lambda m, b: camera_loss(m, b, cfg), groups, out_dir, loop,
                 eval_fn=lambda m: _eval(m, val, pre, cfg.eval_batch_size),
                 save_fn=lambda m, d: save_student(m, student_cfg, d, **provenance),
                 config={"camera": dataclasses.asdict(cfg), "provenance": provenance})

    # 3. final = best epoch; val and held-out test metrics with intervals
    from safetensors.torch import load_model

    load_model(model, str((result.best_dir or result.last_dir) / "model.safetensors"))
    model.eval()
    if test is None:
        test = LadderSet.build(*pool.load_split("test", cache, None, not quiet), cfg.eval_short_side)
    val_m = val.metrics(predict_frames(model, val.frames, pre, cfg.eval_batch_size))
    test_m = test.metrics(predict_frames(model, test.frames, pre, cfg.eval_batch_size)) if test else None
    save_student(model, student_cfg, out_dir, **provenance, best_val=result.best)
    write_json(out_dir / "camera.json", {
        "config": dataclasses.asdict(cfg), "label": provenance["label"], "history": result.history,
        "val": val_m, "test": test_m, "test_photos": sorted(set(test.refs)) if test else [],
        "seconds": round(time.perf_counter() - t0, 1)})
    if test_m:
        say(f"wrote {out_dir}; held-out test: mean tau {test_m['mean_tau']:.3f} "
            f"[{test_m['mean_tau_ci'][0]:.3f}, {test_m['mean_tau_ci'][1]:.3f}], AUC {test_m['auc']:.3f}")
    return out_dir
