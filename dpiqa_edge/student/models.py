"""Student networks: a timm backbone + an 8-channel quality-map branch + a score head.

Forward contract (docs/ARCHITECTURE.md): ``x`` float32 N x 3 x H x W in 0..1 ->
``(score N on 0-100, quality_map N x 8 x m x m)``. Normalisation is inside ``forward`` so every exported
graph carries it. Shapes never depend on data: the map is resized with ``F.interpolate`` to a fixed
``(m, m)``, so ONNX / OpenVINO / CoreML see static ops at any input size.

The factory is an explicit dict, ``BUILDERS`` (``paper``, ``lite0``, ``timm``), keyed by the part of the
student name before any ``:``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ModelLoadError
from .config import StudentConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Backbone(nn.Module):
    """A timm model seen as ``normalised image -> last feature map`` (N x C x h x w).

    Args:
        model: the timm model.
        mode: ``forward_features`` (a classifier built with ``num_classes=0``: its final feature map,
            e.g. B7's 2560 channels as in SPEC) or ``features_only`` (timm's feature wrapper: last level).
        channels: C of the returned map.
    """

    def __init__(self, model: nn.Module, mode: str, channels: int):
        super().__init__()
        self.model, self.mode, self.channels = model, mode, channels

    def forward(self, x):
        if self.mode == "forward_features":
            return self.model.forward_features(x)
        return self.model(x)[-1]

    def can_split(self) -> bool:
        """True for timm EfficientNet-style nets (conv_stem, bn1, blocks, conv_head, bn2)."""
        return self.mode == "forward_features" and all(
            hasattr(self.model, n) for n in ("conv_stem", "bn1", "blocks", "conv_head", "bn2"))

    def prefix(self, x, stages: int):
        """The stem and the first ``stages`` stages (what :meth:`Student.freeze` freezes)."""
        return self.model.blocks[:stages](self.model.bn1(self.model.conv_stem(x)))

    def tail(self, h, stages: int):
        """The rest of ``forward_features`` from the output of :meth:`prefix`."""
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
    """Backbone -> quality-map branch (8 ch, resized to m x m, ReLU) -> score head; score = 100 * head.

    Args:
        backbone: a :class:`Backbone`.
        map_size: side m of the quality map (the teacher's F_quality grid).
        head: ``mlp`` (SPEC) or ``pool`` (edge).
        head_hidden: hidden width of the head.
        map_branch: ``deconv`` (SPEC: ConvTranspose2d(C, 8, 3, stride 2, pad 1, output_padding 1)) or
            ``conv`` (a 3x3 conv C -> 8).
        mean, std: per-channel input normalisation applied to the 0..1 input inside ``forward``.
    In eval mode (inference, export) the score is clamped to 0..100; in training it is left linear so
    the MSE gradient never vanishes at the ends of the scale.
    """

    def __init__(self, backbone: Backbone, map_size: int, head: str, head_hidden: int, map_branch: str,
                 mean=IMAGENET_MEAN, std=IMAGENET_STD):
        super().__init__()
        c = backbone.channels
        self.backbone, self.map_size = backbone, int(map_size)
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
        blocks = getattr(net, "blocks", None)
        if blocks is None:
            raise ConfigError(f"freeze: backbone {type(net).__name__} has no .blocks stages")
        if stages > len(blocks):
            raise ConfigError(f"freeze: {stages} stages asked, the backbone has {len(blocks)}")
        names = [n for n in ("conv_stem", "bn1") if hasattr(net, n)] + [f"blocks.{i}" for i in range(stages)]
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
        return self.backbone.prefix((x - self.mean) / self.std, stages)

    def forward(self, x, start_stage: int = 0):
        """``x`` N x 3 x H x W in 0..1 -> (score N, quality map N x 8 x m x m). With ``start_stage`` > 0,
        ``x`` is instead the output of :meth:`prefix` for that many stages (training from a cache)."""
        if start_stage:
            feats = self.backbone.tail(x, start_stage)
        else:
            feats = self.backbone((x - self.mean) / self.std)
        qmap = F.relu(self.map_branch(feats))
        qmap = F.interpolate(qmap, size=(self.map_size, self.map_size), mode="bilinear", align_corners=False)
        score = 100.0 * self.head(feats, qmap)
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
    import timm

    model = timm.create_model("efficientnet_b7", num_classes=0, global_pool="", **_timm_kwargs(cfg))
    return Student(Backbone(model, "forward_features", model.num_features), cfg.map_size, cfg.head,
                   cfg.head_hidden, cfg.map_branch, *_norm(model))


def _build_lite0(cfg: StudentConfig) -> Student:
    from .lite0 import LITE0_MEAN, LITE0_STD, build_lite0_classifier

    if cfg.weights:
        raise ConfigError("student lite0: uses the bundled ImageNet weights; give weights via timm:NAME instead")
    model = build_lite0_classifier(pretrained=bool(cfg.pretrained), num_classes=0, global_pool="")
    return Student(Backbone(model, "forward_features", model.num_features), cfg.map_size, cfg.head,
                   cfg.head_hidden, cfg.map_branch, LITE0_MEAN, LITE0_STD)


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
                   cfg.head, cfg.head_hidden, cfg.map_branch, *_norm(model))


BUILDERS = {"paper": _build_paper, "lite0": _build_lite0, "timm": _build_timm}


def build_student(cfg: StudentConfig) -> Student:
    """Build the student ``cfg`` names (fresh heads; backbone weights per ``cfg.pretrained``/``weights``)."""
    cfg = cfg.resolved()
    return BUILDERS[cfg.name.split(":", 1)[0]](cfg)
