"""Student networks: a timm or torchvision backbone + an 8-channel quality-map branch + a score head.

Forward contract (docs/ARCHITECTURE.md): ``x`` float32 N x 3 x H x W in 0..1 ->
``(score N on 0-100, quality_map N x 8 x m x m)``. Normalisation is inside ``forward`` so every exported
graph carries it. Shapes never depend on data: the map is resized with ``F.interpolate`` to a fixed
``(m, m)``, so ONNX / OpenVINO / CoreML see static ops at any input size.

The factory is an explicit dict, ``BUILDERS``: one builder per family of ``student.config.STUDENT_FAMILIES``
(``paper``, ``lite0``, ``timm``), the part of the student name before any ``:``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ModelLoadError
from .config import StudentConfig, student_family
from .lite0 import LITE0_MEAN, LITE0_STD, build_lite0_classifier
from .torchvision_backbone import efficientnet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone(nn.Module):
    """A timm or torchvision model seen as ``normalised image -> last feature map`` (N x C x h x w).

    Args:
        model: the timm / torchvision model.
        mode: ``forward_features`` (a timm classifier built with ``num_classes=0``: its final feature map),
            ``features_only`` (timm's feature wrapper: last level) or ``torchvision`` (a torchvision
            EfficientNet: ``model.features``, stem ``features.0``, stages ``features.1..n-2``, head conv last).
        channels: C of the returned map.
    """

    def __init__(self, model: nn.Module, mode: str, channels: int):
        super().__init__()
        self.model, self.mode, self.channels = model, mode, channels

    def forward(self, x):
        if self.mode == "forward_features":
            return self.model.forward_features(x)
        if self.mode == "torchvision":
            return self.model.features(x)
        return self.model(x)[-1]

    def can_split(self) -> bool:
        """True for EfficientNet-style nets: timm (conv_stem, bn1, blocks, conv_head, bn2) or torchvision."""
        if self.mode == "torchvision":
            return True
        return self.mode == "forward_features" and all(
            hasattr(self.model, n) for n in ("conv_stem", "bn1", "blocks", "conv_head", "bn2"))

    def stage_names(self) -> tuple[list[str], list[str]] | None:
        """(stem module names, stage module names) relative to ``model``; None when it has no stages."""
        if self.mode == "torchvision":
            return ["features.0"], [f"features.{i}" for i in range(1, len(self.model.features) - 1)]
        blocks = getattr(self.model, "blocks", None)
        if blocks is None:
            return None
        return [n for n in ("conv_stem", "bn1") if hasattr(self.model, n)], [f"blocks.{i}" for i in range(len(blocks))]

    def prefix(self, x, stages: int):
        """The stem and the first ``stages`` stages (what :meth:`Student.freeze` freezes)."""
        if self.mode == "torchvision":
            return self.model.features[:1 + stages](x)
        return self.model.blocks[:stages](self.model.bn1(self.model.conv_stem(x)))

    def tail(self, h, stages: int):
        """The rest of the feature extractor from the output of :meth:`prefix`."""
        if self.mode == "torchvision":
            return self.model.features[1 + stages:](h)
        return self.model.bn2(self.model.conv_head(self.model.blocks[stages:](h)))


class MLPHead(nn.Module):
    """SPEC's head: flatten the 8 x m x m map -> FC hidden -> ReLU -> FC hidden -> ReLU -> FC 1.

    Args:
        in_features: 8 * m * m (follows the configured map size instead of a hard-coded view).
        hidden: width of both hidden layers (SPEC: 512).
    """

    def __init__(self, in_features: int, hidden: int = 512):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(in_features, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 1)

    def forward(self, feats, qmap):
        h = F.relu(self.fc1(qmap.flatten(1)))
        return self.fc3(F.relu(self.fc2(h))).squeeze(1)


class PoolHead(nn.Module):
    """Edge head: global-average-pool the backbone map and the quality map, concat -> FC -> ReLU -> FC 1.

    No 32,768-wide linear; a few hundred kB at most, and pooled inputs make it size-agnostic.

    Args:
        channels: C of the backbone map (the 8 map channels are added).
        hidden: hidden width.
    """

    def __init__(self, channels: int, hidden: int = 128):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(channels + 8, hidden), nn.Linear(hidden, 1)

    def forward(self, feats, qmap):
        pooled = torch.cat([feats.mean(dim=(2, 3)), qmap.mean(dim=(2, 3))], dim=1)
        return self.fc2(F.relu(self.fc1(pooled))).squeeze(1)


class Student(nn.Module):
    """Backbone -> quality-map branch (8 ch, ReLU, resized to m x m) -> score head;
    score = score_scale * head + score_offset (100 * head unless an imported model says otherwise).

    Args:
        backbone: a :class:`Backbone`.
        map_size: side m of the quality map (the teacher's F_quality grid).
        head: ``mlp`` (SPEC) or ``pool`` (edge).
        head_hidden: hidden width of the head.
        map_branch: ``deconv`` (SPEC: ConvTranspose2d(C, 8, 3, stride 2, pad 1, output_padding 1)) or
            ``conv`` (a 3x3 conv C -> 8).
        mean, std: per-channel input normalisation applied to the 0..1 input inside ``forward`` (None: the
            input goes in as it is, no op in the graph).
        map_resize: ``bilinear`` or ``nearest`` (the authors' student) resize of the map to m x m.
        score_scale, score_offset: the affine map from the head's output to 0-100.
    In eval mode (inference, export) the score is clamped to 0..100; in training it is left linear so
    the MSE gradient never vanishes at the ends of the scale.
    """

    def __init__(self, backbone: Backbone, map_size: int, head: str, head_hidden: int, map_branch: str,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD, map_resize: str = "bilinear", score_scale: float = 100.0,
                 score_offset: float = 0.0):
        super().__init__()
        c = backbone.channels
        self.backbone, self.map_size, self.map_resize = backbone, int(map_size), map_resize
        self.score_scale, self.score_offset = float(score_scale), float(score_offset)
        self.normalise = mean is not None
        if self.normalise:
            self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
            self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        if map_branch == "deconv":
            self.map_branch = nn.ConvTranspose2d(c, 8, kernel_size=3, stride=2, padding=1, output_padding=1)
        else:
            self.map_branch = nn.Conv2d(c, 8, kernel_size=3, padding=1)
        self.head = MLPHead(8 * self.map_size ** 2, head_hidden) if head == "mlp" else PoolHead(c, head_hidden)
        # Start the score mid-scale (50) so early MSE gradients are small and balanced.
        last = self.head.fc3 if head == "mlp" else self.head.fc2
        nn.init.zeros_(last.weight)
        nn.init.constant_(last.bias, 0.5)

    def freeze(self, stages: int) -> list[str]:
        """Freeze the stem and the first ``stages`` backbone stages: no gradients, BN statistics kept
        (those modules stay in eval mode through ``train()``). Returns the frozen module names."""
        net = self.backbone.model
        found = self.backbone.stage_names()
        if found is None:
            raise ConfigError(f"freeze: backbone {type(net).__name__} has no .blocks stages")
        stem, all_stages = found
        if stages > len(all_stages):
            raise ConfigError(f"freeze: {stages} stages asked, the backbone has {len(all_stages)}")
        names = stem + all_stages[:stages]
        for name in names:
            net.get_submodule(name).requires_grad_(False)
        self._frozen = ["backbone.model." + n for n in names]
        self.train(self.training)
        return self._frozen

    def train(self, mode: bool = True):
        super().train(mode)
        for name in getattr(self, "_frozen", ()):
            self.get_submodule(name).eval()
        return self

    def prefix(self, x, stages: int):
        """Normalised input -> the output of the stem and the first ``stages`` backbone stages (feeds
        ``forward(h, start_stage=stages)``; distillation caches it when those stages are frozen)."""
        if not self.backbone.can_split():
            raise ConfigError(f"prefix: backbone {type(self.backbone.model).__name__} cannot be split by stage")
        return self.backbone.prefix(self._normalised(x), stages)

    def _normalised(self, x):
        return (x - self.mean) / self.std if self.normalise else x

    def forward(self, x, start_stage: int = 0):
        """``x`` N x 3 x H x W in 0..1 -> (score N, quality map N x 8 x m x m). With ``start_stage`` > 0,
        ``x`` is instead the output of :meth:`prefix` for that many stages (training from a cache)."""
        if start_stage:
            feats = self.backbone.tail(x, start_stage)
        else:
            feats = self.backbone(self._normalised(x))
        qmap = F.relu(self.map_branch(feats))
        size = (self.map_size, self.map_size)
        if self.map_resize == "nearest":
            qmap = F.interpolate(qmap, size=size, mode="nearest")
        else:
            qmap = F.interpolate(qmap, size=size, mode="bilinear", align_corners=False)
        score = self.score_scale * self.head(feats, qmap)
        if self.score_offset:
            score = score + self.score_offset
        if not self.training:
            score = score.clamp(0.0, 100.0)
        return score, qmap


# -- builders (one per name) ----------------------------------------------------------------------
def _timm_kwargs(cfg: StudentConfig) -> dict:
    """Local weights go through timm's own loader (safetensors, or torch.load with weights_only=True)."""
    if cfg.weights:
        return {"pretrained": True, "pretrained_cfg_overlay": {"file": str(cfg.weights)}}
    return {"pretrained": bool(cfg.pretrained)}


def _norm(model) -> tuple[tuple, tuple]:
    pc = getattr(model, "pretrained_cfg", None) or {}
    return tuple(pc.get("mean", IMAGENET_MEAN)), tuple(pc.get("std", IMAGENET_STD))


def _build_paper(cfg: StudentConfig) -> Student:
    """The authors' layout: a torchvision EfficientNet whose pooling and classifier are Identity (no
    parameters), its ``features`` map -> ConvTranspose2d -> ReLU -> nearest resize -> flatten MLP."""
    model, channels = efficientnet(cfg.variant, pretrained=bool(cfg.pretrained), weights=cfg.weights)
    mean, std = (IMAGENET_MEAN, IMAGENET_STD) if cfg.normalize == "imagenet" else (None, None)
    return Student(Backbone(model, "torchvision", channels), cfg.map_size, cfg.head, cfg.head_hidden,
                   cfg.map_branch, mean, std, cfg.map_resize, cfg.score_scale, cfg.score_offset)


def _build_lite0(cfg: StudentConfig) -> Student:
    if cfg.weights:
        raise ConfigError("student lite0: uses the bundled ImageNet weights; give weights via timm:NAME instead")
    model = build_lite0_classifier(pretrained=bool(cfg.pretrained), num_classes=0, global_pool="")
    return Student(Backbone(model, "forward_features", model.num_features), cfg.map_size, cfg.head,
                   cfg.head_hidden, cfg.map_branch, LITE0_MEAN, LITE0_STD, cfg.map_resize, cfg.score_scale,
                   cfg.score_offset)


def _build_timm(cfg: StudentConfig) -> Student:
    import timm

    name = cfg.name.split(":", 1)[1]
    if name not in timm.list_models():
        raise ConfigError(f"student {cfg.name}: timm has no model {name!r} (see timm.list_models())")
    try:
        model = timm.create_model(name, features_only=True, **_timm_kwargs(cfg))
    except (RuntimeError, FileNotFoundError, OSError) as exc:
        raise ModelLoadError(f"student {cfg.name}: cannot build ({exc})") from None
    return Student(Backbone(model, "features_only", model.feature_info.channels()[-1]), cfg.map_size,
                   cfg.head, cfg.head_hidden, cfg.map_branch, *_norm(model), cfg.map_resize, cfg.score_scale,
                   cfg.score_offset)


BUILDERS = {"paper": _build_paper, "lite0": _build_lite0, "timm": _build_timm}


def build_student(cfg: StudentConfig) -> Student:
    """Build the student ``cfg`` names (fresh heads; backbone weights per ``cfg.pretrained``/``weights``)."""
    cfg = cfg.resolved()
    return BUILDERS[student_family(cfg.name).name](cfg)
