"""The broad camera recipe: quality over 31 failure families, measured on the families it never saw.

The first camera recipe (:mod:`.camera`) learned eight failures and ranked them almost perfectly, but
rewarded over-sharpening halos and called bokeh "retake": it learned its training list. This recipe
changes what the model sees and how that is measured:

1. **Vocabulary**: every family of :mod:`..data.families` (KADID-10k's types plus phone-pipeline
   failures) and camera-pipeline *mixtures* of two or three, each family with its own target scores
   (KADID's per-type, per-level human means where they exist).
2. **Intentional photography is clean**: the photo pool carries bokeh, macro, night, low-key, fog and
   minimal photos as pristine; a share of the groups also adds a *synthetic portrait mode* of the frame
   (a soft elliptical subject kept sharp, the rest defocused) labelled clean
   (:func:`..data.families.portrait_mode`).
3. **Frozen ImageNet prefix, trained tail**: EfficientNet-Lite0's stem and first ``freeze_stages`` stages
   keep their ImageNet weights; their output for every training and ladder image is computed once into a
   feature cache (fp16 safetensors), and only the tail (the last stages, the head conv and the quality
   heads) is trained on it. On two CPU cores this makes a run minutes instead of an hour, which is what
   makes leave-one-group-out affordable, and it keeps the pixel-level filters generic, not tuned to
   the training list.
4. **Leave-one-group-out** (:func:`logo`): for each group (blur, noise, compression, colour, tone,
   spatial, sharpness) a model is trained with every image that carries one of the group's families
   (mixtures included) removed, and scored on the held-out *test* photos' ladders of that group. Its
   mean over groups is the number that says whether the recipe learned quality; the shipped model is
   the same recipe with nothing held out.

A training *group* is one random preview frame of a training photo, its pristine copy (and maybe its
portrait-mode copy), ``families_per_group`` families at ``levels_per_family`` random levels each, and
one mixture at two strengths. Loss: pairwise hinge within the group (clean above every degraded copy;
a lower level above a higher one of the same family or mixture; margin ``rank_margin`` x the target gap)
+ MSE to the target scores. The best epoch is picked on the *val* photos' ladders (mean tau + AUC) / 2.
"""

from __future__ import annotations

import dataclasses
import json
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import families as fam
from ..data import photos as pool
from ..data.camera import LadderSet, random_frame
from ..data.manifest import SEVERITY_LABEL
from ..errors import ConfigError
from ..io import atomic_path, read_json, write_json
from ..metrics import camera_metrics
from ..student import build_student, load_student, save_student
from ..student.config import StudentConfig
from ..training import LoopConfig, fit

MAX_GROUP = 12  #: images per training group, padded to this (pristine, portrait, 3 x 2 levels, mixture x 2)


def _student() -> StudentConfig:
    return StudentConfig(name="lite0", input_size=448, map_size=16)


def _loop() -> LoopConfig:
    return LoopConfig(epochs=4, batch_size=8, lr=1e-3, milestones=(3,), gamma=0.3, best_metric="camera")


@dataclass
class BroadConfig:
    """One broad-recipe run (TOML ``configs/camera-broad.toml``: top-level keys, ``[student]``, ``[train]``)."""

    student: StudentConfig = field(default_factory=_student)
    train: LoopConfig = field(default_factory=_loop)
    freeze_stages: int = 5  #: stem + this many backbone stages keep ImageNet weights (cached once)
    frame_short_side: tuple[int, int] = (400, 640)
    groups_per_photo: int = 6
    families_per_group: int = 3
    levels_per_family: int = 2
    mixtures_per_group: int = 1
    portrait_share: float = 0.35  #: share of groups that add a synthetic portrait-mode clean frame
    #: side of the random window cut from the cached prefix map in training (0 = whole map). At 448 px and
    #: 5 frozen stages the map is 28 x 28 (stride 16), so 14 = a 224-px window: a quarter of the cost; every
    #: family acts on the whole frame, so a window keeps its label (portrait groups take the centre window,
    #: where the sharp subject is). Evaluation always sees the whole map.
    feature_window: int = 14
    w_reg: float = 1.0
    w_rank: float = 1.0
    rank_margin: float = 0.5
    eval_short_side: int = 450
    eval_families_per_photo: int = 8  #: ladders per val/test photo (families in rotation) + 1 mixture
    photo_max_side: int = 1100
    seed: int = 0
    #: leave-one-group-out's cheaper settings (one run per group): epochs, and the first N cached groups
    #: of each training photo (0 = all); the final model always trains on everything for ``train.epochs``
    logo_epochs: int = 2
    logo_groups_per_photo: int = 3

    def __post_init__(self):
        if not 1 <= self.freeze_stages <= 6:
            raise ConfigError(f"broad: freeze_stages must be 1..6, got {self.freeze_stages}")
        n = 2 + self.families_per_group * self.levels_per_family + 2 * self.mixtures_per_group
        if n > MAX_GROUP:
            raise ConfigError(f"broad: a group of {n} images exceeds {MAX_GROUP}")
        if not 0.0 <= self.portrait_share <= 1.0:
            raise ConfigError(f"broad: portrait_share must be in [0, 1], got {self.portrait_share}")
        self.frame_short_side = tuple(int(v) for v in self.frame_short_side)


# -- 1. images -> cached prefix features, one file per photo -------------------------------------------
def training_groups(name: str, image: np.ndarray, cfg: BroadConfig):
    """Yield ``(frames, meta)`` for each training group of one photo; ``meta`` rows: family names (``[]`` =
    clean, ``["portrait"]`` = synthetic portrait mode, clean), level used for ranking, target score, ladder
    id (-1 = clean). Seeded by the photo's name, so a photo's groups never depend on the rest of the pool."""
    names = list(fam.FAMILIES)
    for gi in range(cfg.groups_per_photo):
        rng = np.random.default_rng([cfg.seed, zlib.crc32(name.encode()), gi])
        frame = random_frame(image, rng, cfg.frame_short_side)
        frames, meta = [frame], [([], 0.0, 100.0, -1)]
        if rng.random() < cfg.portrait_share:
            frames.append(fam.portrait_mode(frame, rng))
            meta.append((["portrait"], 0.0, 100.0, -1))
        for j, d in enumerate(rng.choice(len(names), cfg.families_per_group, replace=False)):
            s = int(rng.integers(2**31))
            for lv in np.sort(rng.uniform(0.5, 5.0, cfg.levels_per_family)):
                frames.append(fam.apply(frame, names[d], float(lv), np.random.default_rng(s)))
                meta.append(([names[d]], float(lv), fam.score_at(names[d], float(lv)), j))
        for m in range(cfg.mixtures_per_group):
            mix = fam.random_mixture(rng, max_level=4.0)
            s = int(rng.integers(2**31))
            for k in (0.55, 1.0):
                mk = mix.scaled(k)
                frames.append(mk.apply(frame, s))
                meta.append((list(mk.names), (100.0 - mk.score()) / 20.0, mk.score(), 100 + m))
        yield frames, meta


class Prefix:
    """The frozen stem + first ``k`` stages, run by onnxruntime (about 3x torch's eager speed on this CPU for
    Lite0's depthwise convolutions) from an ONNX export of the torch prefix, checked against torch once
    (max abs difference recorded in every cache file; fp16 storage rounds far more than that)."""

    def __init__(self, model, k: int, size: int, path: Path):
        import onnxruntime as ort
        import torch

        self.k = k

        class _P(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m.prefix(x, k)

        path.parent.mkdir(parents=True, exist_ok=True)
        x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
        wrapper = _P(model).eval()
        if not path.is_file():
            with atomic_path(path) as tmp:
                torch.onnx.export(wrapper, x[:1], str(tmp), input_names=["x"], output_names=["h"],
                                  dynamic_axes={"x": {0: "n"}, "h": {0: "n"}}, opset_version=17, dynamo=False)
        model.eval()  # the exporter restores the wrapper's (train) mode on the model: back to eval
        so = ort.SessionOptions()
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        with torch.no_grad():
            ref = model.prefix(x, k).numpy()
        self.parity = float(np.abs(self.session.run(None, {"x": x.numpy()})[0] - ref).max())
        if self.parity > 1e-3:
            raise ConfigError(f"{path}: the ONNX prefix differs from torch by {self.parity:.2e} (> 1e-3)")

    def __call__(self, pre, frames, batch: int = 16):
        import torch

        out = []
        for i in range(0, len(frames), batch):
            x = np.stack([pre(f) for f in frames[i:i + batch]])
            out.append(torch.from_numpy(self.session.run(None, {"x": x})[0]).to(torch.float16))
        return torch.cat(out)


def _save(path: Path, features, meta: dict) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path.with_suffix(".safetensors")) as tmp:
        save_file({"features": features.contiguous()}, str(tmp))
    write_json(path.with_suffix(".json"), meta)  # written last: its presence marks the photo done


def cache_photo_groups(root: Path, photo, image, cfg: BroadConfig, prefix: Prefix, pre) -> Path:
    """One training photo's groups -> ``root/train/<name>.safetensors`` (G x MAX_GROUP x C x h x w fp16,
    zero-padded) + ``.json`` (the groups' rows)."""
    import torch

    path = root / "train" / photo.name
    if path.with_suffix(".json").is_file():
        return path
    feats, metas = [], []
    for frames, meta in training_groups(photo.name, image, cfg):
        h = prefix(pre, frames)
        pad = torch.zeros((MAX_GROUP - h.shape[0],) + tuple(h.shape[1:]), dtype=h.dtype)
        feats.append(torch.cat([h, pad]))
        metas.append(meta)
    _save(path, torch.stack(feats), {"groups": metas, "scene": photo.scene, "freeze_stages": prefix.k,
                                     "prefix_parity": prefix.parity})
    return path


def cache_photo_ladder(root: Path, photo, image, cfg: BroadConfig, prefix: Prefix, pre) -> Path:
    """One val/test photo's ladders (:class:`LadderSet`, families in rotation + one mixture) ->
    ``root/ladders/<name>.safetensors`` + ``.json`` (its rows)."""
    path = root / "ladders" / photo.name
    if path.with_suffix(".json").is_file():
        return path
    lad = LadderSet.build([photo], [image], cfg.eval_short_side, families_=list(fam.FAMILIES),
                          per_photo=cfg.eval_families_per_photo, mixtures=1)
    _save(path, prefix(pre, lad.frames), {
        "refs": lad.refs, "scenes": lad.scenes, "distortions": lad.distortions, "levels": lad.levels,
        "targets": lad.targets(), "tags": lad.tags, "mixes": lad.mixes, "freeze_stages": prefix.k,
        "prefix_parity": prefix.parity})
    return path


def _load(path: Path):
    from safetensors.torch import load_file

    return load_file(str(path.with_suffix(".safetensors")))["features"], read_json(path.with_suffix(".json"))


def load_training(paths: list[Path], per_photo: int = 0):
    """Every training photo's groups (the first ``per_photo`` of each; 0 = all) as one tensor +
    ``{"groups": [...]}``."""
    import torch

    parts = [_load(p) for p in paths]
    n = per_photo or None
    return (torch.cat([f[:n] for f, _ in parts]),
            {"groups": [g for _, m in parts for g in m["groups"][:n]]})


def load_ladders(paths: list[Path]):
    """Every ladder photo's features as one tensor + the rows merged (refs, scenes, ..., tags)."""
    import torch

    parts = [_load(p) for p in paths]
    meta: dict = {k: [] for k in ("refs", "scenes", "distortions", "levels", "targets")}
    meta.update(tags={}, mixes={})
    for _, m in parts:
        for k in ("refs", "scenes", "distortions", "levels", "targets"):
            meta[k] += m[k]
        meta["tags"].update(m["tags"])
        meta["mixes"].update(m["mixes"])
    return torch.cat([f for f, _ in parts]), meta


# -- 2. the tail, trained on cached features ---------------------------------------------------------
class CachedGroups:
    """Cached training groups as fixed-size items, with ``exclude`` families masked out; each item is cut
    to a random ``window`` x ``window`` region of the map (drawn from numpy's global generator, which the
    training loop seeds per item) and flipped at random."""

    def __init__(self, features, meta: dict, exclude: set[str], window: int = 0):
        self.features, self.window = features, window
        self.items = []
        for g, rows in enumerate(meta["groups"]):
            keep = [i for i, (names, *_) in enumerate(rows) if not (set(names) & exclude)]
            if len(keep) >= 2:  # the clean frame and at least one degraded copy
                self.items.append((g, keep, rows))

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        import torch

        g, keep, rows = self.items[i]
        h = self.features[g, keep]
        side = h.shape[-1]
        if self.window and self.window < side:
            if any(rows[r][0] == ["portrait"] for r in keep):
                y0 = x0 = (side - self.window) // 2
            else:
                y0, x0 = (int(v) for v in np.random.randint(0, side - self.window + 1, 2))
            h = h[:, :, y0:y0 + self.window, x0:x0 + self.window]
        if np.random.random() < 0.5:
            h = h.flip(-1)
        x = torch.zeros((MAX_GROUP,) + tuple(h.shape[1:]), dtype=torch.float32)
        x[:len(keep)] = h.float()
        valid = torch.zeros(MAX_GROUP, dtype=torch.bool)
        valid[:len(keep)] = True
        level = torch.zeros(MAX_GROUP)
        target = torch.full((MAX_GROUP,), float("nan"))
        ladder = torch.full((MAX_GROUP,), -2, dtype=torch.long)
        for j, r in enumerate(keep):
            names, lv, t, lad = rows[r]
            if len(names) == 1 and names[0] in fam.FAMILIES:  # today's target table, not the one cached
                t = fam.score_at(names[0], lv)
            level[j], target[j], ladder[j] = lv, t, lad
        return {"x": x, "valid": valid, "level": level, "target": target, "ladder": ladder}


def broad_loss(model, batch: dict, cfg: BroadConfig):
    """``(loss, scores, targets)``: MSE on valid images + hinge within each group (module docstring)."""
    import torch

    x, valid = batch["x"], batch["valid"]
    b, k = valid.shape
    flat = x.flatten(0, 1)[valid.flatten()]
    score, _ = model(flat.contiguous(memory_format=torch.channels_last), start_stage=cfg.freeze_stages)
    s = torch.zeros(b, k, dtype=score.dtype)
    s[valid] = score / 100.0
    t = torch.nan_to_num(batch["target"] / 100.0)
    loss = cfg.w_reg * ((s - t)[valid] ** 2).mean()
    if cfg.w_rank:
        lv, lad = batch["level"], batch["ladder"]
        pair = valid[:, :, None] & valid[:, None, :]
        clean_i = lad[:, :, None] == -1
        same = (lad[:, :, None] == lad[:, None, :]) & (lad[:, :, None] >= 0)
        better = pair & (lv[:, :, None] < lv[:, None, :]) & (same | clean_i)
        hinge = torch.relu(cfg.rank_margin * (t[:, :, None] - t[:, None, :]) - (s[:, :, None] - s[:, None, :]))
        if better.any():
            loss = loss + cfg.w_rank * hinge[better].mean()
    return loss, score.detach(), batch["target"][valid]


def tail_scores(model, features, k: int, batch: int = 64) -> np.ndarray:
    import torch

    was = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(features), batch):
            h = features[i:i + batch].float().contiguous(memory_format=torch.channels_last)
            out.append(model(h, start_stage=k)[0].float().numpy())
    model.train(was)
    return np.concatenate(out)


def ladder_metrics(scores, meta: dict, families=None, n_boot: int = 0) -> dict:
    """Camera metrics of ``scores`` on a cached ladder set, optionally restricted to ``families``
    (their ladders + every pristine image)."""
    idx = [i for i, d in enumerate(meta["distortions"]) if families is None or d == "pristine" or d in families]
    pick = lambda key: [meta[key][i] for i in idx]  # noqa: E731
    return camera_metrics(np.asarray(scores)[idx], pick("refs"), pick("scenes"), pick("distortions"), pick("levels"),
                          n_boot=n_boot)


def train_tail(out_dir: Path, cfg: BroadConfig, train, val, exclude=(), quiet: bool = False,
               select: bool = True) -> Path:
    """Train the tail with the families of ``exclude`` removed, on ``train`` = :func:`load_training` and
    picking the epoch on ``val`` = :func:`load_ladders` (``select=False``: no per-epoch evaluation, the
    last epoch is the result); ``out_dir`` gets the student."""
    import torch

    feats, meta = train
    vfeats, vmeta = val
    excluded = set(exclude)
    data = CachedGroups(feats, meta, excluded, cfg.feature_window)
    allowed = [n for n in fam.FAMILIES if n not in excluded]
    torch.manual_seed(cfg.train.seed)
    student_cfg = cfg.student.resolved()
    model = build_student(student_cfg).to(memory_format=torch.channels_last)
    model.freeze(cfg.freeze_stages)
    k = cfg.freeze_stages

    def evaluate(m):
        met = ladder_metrics(tail_scores(m, vfeats, k), vmeta, families=allowed)
        return {"mean_tau": met["mean_tau"], "auc": met["auc"], "camera": (met["mean_tau"] + met["auc"]) / 2}

    provenance = {"recipe": "broad", "broad": dataclasses.asdict(cfg), "label": SEVERITY_LABEL,
                  "excluded_families": sorted(excluded), "training_groups": len(data)}
    loop = cfg.train if not quiet else dataclasses.replace(cfg.train, progress=False)
    result = fit(model, lambda m, b: broad_loss(m, b, cfg), data, out_dir, loop, eval_fn=evaluate if select else None,
                 save_fn=lambda m, d: save_student(m, student_cfg, d, **provenance),
                 config={"broad": dataclasses.asdict(cfg), "provenance": provenance})
    from safetensors.torch import load_model

    load_model(model, str((result.best_dir or result.last_dir) / "model.safetensors"))
    save_student(model, student_cfg, out_dir, **provenance, best_val=result.best)
    return out_dir


# -- 3. the whole run: caches, leave-one-group-out, the final model ---------------------------------------
def prepare(out_dir: Path, cfg: BroadConfig, cache=None, progress: bool = True, photos=None) -> dict[str, list[Path]]:
    """Photos -> per-photo feature caches under ``out_dir/cache`` (train groups; val and test ladders).
    Resumable photo by photo; a photo moved between splits only needs its new kind of cache.
    ``photos``: ``{split: [(Photo, uint8 image), ...]}`` instead of the catalogue (tests)."""
    import torch
    from tqdm import tqdm

    torch.manual_seed(cfg.train.seed)
    student_cfg = cfg.student.resolved()
    model = build_student(student_cfg).eval()  # the ImageNet prefix
    pre = student_cfg.preprocessing()
    root = out_dir / "cache"
    prefix = Prefix(model, cfg.freeze_stages, student_cfg.input_size, root / f"prefix-{cfg.freeze_stages}.onnx")
    paths: dict[str, list[Path]] = {}
    for split in ("train", "val", "test"):
        if photos is None:
            todo = pool.catalogue(split)
            pool.fetch(todo, cache, progress=progress)
            todo = [(p, None) for p in todo]
        else:
            todo = photos[split]
        paths[split] = []
        for p, img in tqdm(todo, desc=f"broad: {split} cache", disable=not progress):
            done = root / ("train" if split == "train" else "ladders") / f"{p.name}.json"
            if done.is_file():  # cached already: no need to decode the photo
                paths[split].append(done.with_suffix(""))
                continue
            img = pool.load(p, cache) if img is None else img
            if split == "train":
                if cfg.photo_max_side and min(img.shape[:2]) > cfg.photo_max_side:
                    from PIL import Image

                    s = cfg.photo_max_side / min(img.shape[:2])
                    img = np.asarray(Image.fromarray(img).resize((round(img.shape[1] * s), round(img.shape[0] * s)),
                                                                 Image.LANCZOS))
                paths[split].append(cache_photo_groups(root, p, img, cfg, prefix, pre))
            else:
                paths[split].append(cache_photo_ladder(root, p, img, cfg, prefix, pre))
    return paths


def logo(out_dir: Path, cfg: BroadConfig, cache=None, groups=None, progress: bool = True, photos=None) -> dict:
    """Leave-one-group-out: one tail per group with that group's families removed from training (mixtures
    that contain one included), scored on the held-out test ladders of that group (peers on the same
    ladders come from ``report``). Resumable per group (``out_dir/logo/<group>/``); writes ``logo.json``."""
    paths = prepare(out_dir, cfg, cache, progress, photos)
    train, val = load_training(paths["train"], cfg.logo_groups_per_photo), load_ladders(paths["val"])
    tfeats, tmeta = load_ladders(paths["test"])
    e = cfg.logo_epochs
    cheap = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=e, milestones=(max(1, e - 1),)))
    results = {}
    for g in groups or fam.GROUPS:
        run = out_dir / "logo" / g
        done = run / "result.json"
        if not done.is_file():
            t0 = time.perf_counter()
            train_tail(run, cheap, train, val, exclude=fam.in_group(g), quiet=not progress, select=False)

            model, _ = load_student(run)
            if not set(fam.in_group(g)) & set(tmeta["distortions"]):
                raise ConfigError(f"leave-one-group-out: the test ladders hold no family of group {g!r}")
            # score only what the group's metrics read: its ladders and every clean image
            idx = [i for i, d in enumerate(tmeta["distortions"]) if d == "pristine" or d in fam.in_group(g)]
            sub = {k: [tmeta[k][i] for i in idx] for k in ("refs", "scenes", "distortions", "levels")}
            scores = tail_scores(model, tfeats[idx], cfg.freeze_stages)
            held = ladder_metrics(scores, sub, families=fam.in_group(g), n_boot=200)
            write_json(done, {"group": g, "families": fam.in_group(g), "test": held,
                              "seconds": round(time.perf_counter() - t0, 1)})
        results[g] = json.loads(done.read_text())
    summary = {"label": SEVERITY_LABEL, "recipe": dataclasses.asdict(cheap),
               "settings": f"{e} epochs, the first {cfg.logo_groups_per_photo or 'all'} of each training photo's "
                           f"{cfg.groups_per_photo} groups, the last epoch kept (the final model: {cfg.train.epochs} "
                           "epochs, all groups, best epoch on val)",
               "groups": {g: {"mean_tau": r["test"]["mean_tau"], "auc": r["test"]["auc"],
                              "per_family": {d: v["tau"] for d, v in r["test"]["per_distortion"].items()}}
                          for g, r in results.items()}}
    summary["mean_tau"] = float(np.mean([v["mean_tau"] for v in summary["groups"].values()]))
    write_json(out_dir / "logo.json", summary)
    return summary


def train_broad(out_dir: Path, cfg: BroadConfig | None = None, cache=None, progress: bool = True,
                photos=None) -> Path:
    """The shipped recipe: every family, nothing held out -> ``out_dir/final`` (a student folder) and
    ``out_dir/final/camera.json`` (val and held-out test metrics, per family, clean kept per tag)."""
    cfg = cfg or BroadConfig()
    paths = prepare(out_dir, cfg, cache, progress, photos)
    final = out_dir / "final"
    if not (final / "camera.json").is_file():
        val = load_ladders(paths["val"])
        train_tail(final, cfg, load_training(paths["train"]), val, quiet=not progress)

        model, _ = load_student(final)
        out = {"config": dataclasses.asdict(cfg), "label": SEVERITY_LABEL,
               "photos": {k: [p.stem for p in v] for k, v in paths.items()}}
        for split, (feats, meta) in (("val", val), ("test", load_ladders(paths["test"]))):
            scores = tail_scores(model, feats, cfg.freeze_stages)
            out[split] = ladder_metrics(scores, meta, n_boot=200 if split == "test" else 0)
            out[split + "_scores"] = [round(float(v), 3) for v in scores]
        write_json(final / "camera.json", out)
    return final
