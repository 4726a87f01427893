"""``StudentConfig``: everything needed to rebuild a student exactly (saved in its ``config.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..runtime.preprocess import Preprocess

#: Names ``build_student`` accepts; ``timm:NAME`` takes any timm CNN name after the colon.
STUDENT_NAMES = ("paper", "lite0", "timm:NAME")
HEADS = ("mlp", "pool")  # SPEC's flatten MLP | global-average-pool MLP (edge, no 32,768-wide linear)
MAP_BRANCHES = ("deconv", "conv")  # SPEC's ConvTranspose2d(k3, s2) | 3x3 conv (edge)


@dataclass
class StudentConfig:
    """A student model. ``None`` fields take the per-name default (see :meth:`resolved`).

    * ``paper``: EfficientNet-B7 (timm, 2560-ch last map) -> ConvTranspose2d to 8 ch -> ReLU -> resize to
      the map grid = F_student -> SPEC's MLP head (flatten 8*m*m -> 512 -> 512 -> 1). SPEC: 512 px, m=64.
    * ``lite0``: EfficientNet-Lite0 with the bundled ImageNet weights -> 3x3 conv map branch + pooled head.
    * ``timm:NAME``: any timm CNN via ``features_only`` (last level), weights from ``weights`` if given.
    """

    name: str = "lite0"  #: paper | lite0 | timm:NAME
    input_size: int = 512  #: square input side in pixels (the model works at any size; this is its recipe)
    map_size: int = 64  #: side m of the 8 x m x m quality map F_student (the teacher's F_quality grid)
    head: str | None = None  #: mlp (SPEC; default for paper) | pool (edge; default otherwise)
    head_hidden: int | None = None  #: hidden width of the score head (mlp 512, pool 128)
    map_branch: str | None = None  #: deconv (default for paper) | conv (default otherwise)
    pretrained: bool | None = None  #: lite0: bundled weights (default True); paper/timm: timm hub (default False)
    weights: str | None = None  #: local backbone weights file (.safetensors or .pth, weights_only) for paper/timm
    resample: str = "bilinear"  #: Pillow resize filter of the preprocessing
    widths: dict[str, list[int]] | None = None  #: pruned layer shapes (module name -> weight shape), set by pruning

    def __post_init__(self):
        if self.name not in ("paper", "lite0") and not (self.name.startswith("timm:") and len(self.name) > 5):
            raise ConfigError(f"student: unknown name {self.name!r}; valid: {', '.join(STUDENT_NAMES)}")
        if self.input_size < 32 or self.map_size < 1:
            raise ConfigError(f"student: input_size ({self.input_size}) must be >= 32 and map_size >= 1")
        if self.head is not None and self.head not in HEADS:
            raise ConfigError(f"student: unknown head {self.head!r}; valid: {', '.join(HEADS)}")
        if self.map_branch is not None and self.map_branch not in MAP_BRANCHES:
            raise ConfigError(f"student: unknown map_branch {self.map_branch!r}; valid: {', '.join(MAP_BRANCHES)}")

    def resolved(self) -> "StudentConfig":
        """A copy with every ``None`` default filled in for this student name."""
        from dataclasses import replace

        paper = self.name == "paper"
        head = self.head or ("mlp" if paper else "pool")
        return replace(
            self,
            head=head,
            head_hidden=self.head_hidden or (512 if head == "mlp" else 128),
            map_branch=self.map_branch or ("deconv" if paper else "conv"),
            pretrained=(self.name == "lite0") if self.pretrained is None else self.pretrained,
        )

    def preprocessing(self) -> Preprocess:
        """The one preprocessing this student expects (its normalisation happens inside ``forward``)."""
        return Preprocess(size=(self.input_size, self.input_size), resample=self.resample)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)
