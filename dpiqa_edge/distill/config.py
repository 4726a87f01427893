"""``DistillConfig``: one distillation run (TOML ``configs/distill*.toml`` maps onto it 1:1).

TOML layout: top-level keys are the fields below; ``[student]`` is a :class:`StudentConfig`, ``[train]`` a
:class:`~dpiqa_edge.training.LoopConfig`. The default is SPEC's paper recipe (B7 student, 512 px, 64x64
maps, MSE(score, MOS) + MSE(F_student, F_quality) at 1:1, Adam 1e-4, batch 24, 30 epochs, MultiStepLR
gamma 0.2 at epoch 5 as for KonIQ).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..student.config import StudentConfig
from ..training import LoopConfig

SCORE_TARGETS = ("mos", "teacher")


def _spec_student() -> StudentConfig:
    return StudentConfig(name="paper", input_size=512, map_size=64)


def _spec_loop() -> LoopConfig:
    return LoopConfig(epochs=30, batch_size=24, lr=1e-4, milestones=(5,), gamma=0.2)


@dataclass
class DistillConfig:
    """Loss weights, target choice, augmentation and the student/loop settings of a distillation run."""

    student: StudentConfig = field(default_factory=_spec_student)
    train: LoopConfig = field(default_factory=_spec_loop)
    #: weight of MSE(score/100, target/100); the target is MOS, or the teacher score where MOS is empty
    w_mos: float = 1.0
    #: weight of MSE(F_student, F_quality resized to the student grid) (SPEC: 1, as w_mos)
    w_feat: float = 1.0
    #: weight of MSE(score/100, teacher score/100) on every image the teacher scored (0 = off)
    w_kd: float = 0.0
    #: weight of the pairwise margin ranking loss on the score target (0 = off, as in the paper)
    w_rank: float = 0.0
    rank_margin: float = 0.25  #: ranking margin = rank_margin x std of the batch targets
    #: ``mos``: MOS where the manifest has it, else the teacher score; ``teacher``: teacher scores only
    score_target: str = "mos"
    hflip: bool = True  #: random horizontal flips (quality-preserving; the target map is flipped too)
    crop: float = 0.0  #: same-scale random crop cutting this fraction of each side (0 = off; no rescaling)
    #: freeze the stem and the first N backbone stages (weights and BN statistics) - faster, less overfit
    freeze_stages: int = 0
    #: with frozen stages (and no crop): compute their outputs once per image (and mirror) and train the
    #: rest from that cache - the same numbers as recomputing them, several times faster on a CPU
    cache_features: bool = True
    cache_images: bool = True  #: keep decoded, resized uint8 images in memory between epochs
    eval_batch_size: int = 32  #: batch for validation / test predictions

    def __post_init__(self):
        if self.score_target not in SCORE_TARGETS:
            raise ConfigError(f"distill: score_target {self.score_target!r}; valid: {', '.join(SCORE_TARGETS)}")
        weights = (self.w_mos, self.w_feat, self.w_kd, self.w_rank)
        if min(weights) < 0 or max(weights) == 0:
            raise ConfigError(f"distill: loss weights must be >= 0 and not all 0 (got {weights})")
        if not 0.0 <= self.crop < 0.5:
            raise ConfigError(f"distill: crop must be in [0, 0.5), got {self.crop}")
        if self.freeze_stages < 0:
            raise ConfigError(f"distill: freeze_stages must be >= 0, got {self.freeze_stages}")

    @property
    def needs_targets(self) -> bool:
        return self.w_feat > 0 or self.w_kd > 0 or self.score_target == "teacher"
