"""``StudentConfig``: everything needed to rebuild a student exactly (saved in its ``config.json``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..runtime.preprocess import Preprocess


@dataclass(frozen=True)
class StudentFamily:
    """One kind of student: ``name`` as config.json and ``--student`` spell it; ``takes_arg``: the family takes
    a model name after a colon (``timm:NAME``)."""

    name: str
    takes_arg: bool = False


#: The student families, the one table: config validation (``StudentConfig``), the CLI's ``--student`` help
#: (``STUDENT_NAMES``) and the builders (``student.models.BUILDERS``, one per family, tested) read it.
STUDENT_FAMILIES: dict[str, StudentFamily] = {f.name: f for f in (
    StudentFamily("paper"),  # the authors' EfficientNet-B7 student, module for module
    StudentFamily("lite0"),  # EfficientNet-Lite0 with the bundled ImageNet weights
    StudentFamily("timm", takes_arg=True),  # any timm CNN: ``timm:NAME``
)}
#: Names ``build_student`` accepts, as help and errors spell them; ``timm:NAME`` takes any timm CNN name.
STUDENT_NAMES = tuple(f"{f.name}:NAME" if f.takes_arg else f.name for f in STUDENT_FAMILIES.values())
HEADS = ("mlp", "pool")  # SPEC's flatten MLP | global-average-pool MLP (edge, no 32,768-wide linear)
MAP_BRANCHES = ("deconv", "conv")  # SPEC's ConvTranspose2d(k3, s2) | 3x3 conv (edge)
MAP_RESIZES = ("nearest", "bilinear")  # how the 8-channel map reaches the m x m grid
NORMALIZE = ("imagenet", "none")  # input normalisation inside forward (lite0/timm use their own)
VARIANTS = tuple(f"b{i}" for i in range(8))  # torchvision EfficientNet sizes for ``paper`` (SPEC: b7)


@dataclass
class StudentConfig:
    """A student model. ``None`` fields take the per-name default (see :meth:`resolved`).

    * ``paper``: the authors' student, module for module: torchvision EfficientNet-B7 (``variant``; classifier
      and pooling removed, 2560-ch last map) -> ConvTranspose2d to 8 ch -> ReLU -> nearest resize to the map
      grid = F_student -> SPEC's MLP head (flatten 8*m*m -> 512 -> 512 -> 1). SPEC: 512 px, m=64, the [0,1]
      input fed unnormalised as the authors trained it. Their state dict loads into it strictly
      (``dpiqa_edge.authors`` renames four prefixes).
    * ``lite0``: EfficientNet-Lite0 with the bundled ImageNet weights -> 3x3 conv map branch + pooled head.
    * ``timm:NAME``: any timm CNN via ``features_only`` (last level), weights from ``weights`` if given.
    """

    name: str = "lite0"  #: paper | lite0 | timm:NAME
    input_size: int = 512  #: square input side in pixels (the model works at any size; this is its recipe)
    map_size: int = 64  #: side m of the 8 x m x m quality map F_student (the teacher's F_quality grid)
    head: str | None = None  #: mlp (SPEC; default for paper) | pool (edge; default otherwise)
    head_hidden: int | None = None  #: hidden width of the score head (mlp 512, pool 128)
    map_branch: str | None = None  #: deconv (default for paper) | conv (default otherwise)
    #: lite0: bundled weights (default True); paper: torchvision's ImageNet weights through torch hub's cache;
    #: timm: timm hub (default False for both)
    pretrained: bool | None = None
    #: backbone weights: for paper/timm a local file (.safetensors, or .pth read with weights_only); for paper
    #: also a Hugging Face id ``org/name[:file]`` resolved through the HF cache
    weights: str | None = None
    resample: str = "bilinear"  #: Pillow resize filter of the preprocessing
    widths: dict[str, list[int]] | None = None  #: pruned layer shapes (module name -> weight shape), set by pruning
    variant: str | None = None  #: paper only: torchvision EfficientNet size b0..b7 (default b7, SPEC)
    map_resize: str | None = None  #: nearest (default for paper, as the authors) | bilinear (default otherwise)
    normalize: str | None = None  #: paper only: none (default, the authors' [0,1] input) | imagenet
    score_scale: float = 100.0  #: score = score_scale * head + score_offset (the head learns MOS/100)
    score_offset: float = 0.0  #: non-default only for imported models whose head speaks another label scale

    def __post_init__(self):
        if student_family(self.name) is None:
            raise ConfigError(f"student: unknown name {self.name!r}; valid: {', '.join(STUDENT_NAMES)}")
        if self.input_size < 32 or self.map_size < 1:
            raise ConfigError(f"student: input_size ({self.input_size}) must be >= 32 and map_size >= 1")
        if self.head is not None and self.head not in HEADS:
            raise ConfigError(f"student: unknown head {self.head!r}; valid: {', '.join(HEADS)}")
        if self.map_branch is not None and self.map_branch not in MAP_BRANCHES:
            raise ConfigError(f"student: unknown map_branch {self.map_branch!r}; valid: {', '.join(MAP_BRANCHES)}")
        if self.map_resize is not None and self.map_resize not in MAP_RESIZES:
            raise ConfigError(f"student: unknown map_resize {self.map_resize!r}; valid: {', '.join(MAP_RESIZES)}")
        for key, value, valid in (("variant", self.variant, VARIANTS), ("normalize", self.normalize, NORMALIZE)):
            if value is not None and (self.name != "paper" or value not in valid):
                raise ConfigError(f"student: {key} {value!r} applies to the paper student only, "
                                  f"one of {', '.join(valid)}")
        if not self.score_scale:
            raise ConfigError("student: score_scale must be non-zero")

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
            map_resize=self.map_resize or ("nearest" if paper else "bilinear"),
            variant=self.variant or ("b7" if paper else None),
            normalize=self.normalize or ("none" if paper else None),
        )

    def preprocessing(self) -> Preprocess:
        """The one preprocessing this student expects (its normalisation happens inside ``forward``)."""
        return Preprocess(size=(self.input_size, self.input_size), resample=self.resample)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def student_family(name: str) -> StudentFamily | None:
    """The family a student name belongs to (``timm:resnet18`` -> ``timm``); None when it names none (an
    unknown family, a model name given to a family that takes none, or one missing after ``timm:``)."""
    family, colon, arg = name.partition(":")
    found = STUDENT_FAMILIES.get(family)
    if found is None or bool(colon) != found.takes_arg or (found.takes_arg and not arg):
        return None
    return found
