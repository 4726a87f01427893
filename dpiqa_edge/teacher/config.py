"""The teacher's configuration and input preprocessing: torch-free, so training, scoring and importing
code can read and validate a teacher's config (and build its ``Preprocess``) without loading torch;
``teacher.model`` builds the network from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..runtime.preprocess import Preprocess

VAE_RANGES = ("-1,1", "0,1")


@dataclass
class TeacherConfig:
    """Everything that rebuilds a teacher (saved in config.json beside the weights)."""

    unet: dict[str, Any] = field(default_factory=dict)  #: diffusers UNet2DConditionModel config
    vae: dict[str, Any] = field(default_factory=dict)  #: diffusers AutoencoderKL config (frozen)
    adapter: dict[str, Any] = field(default_factory=dict)  #: diffusers T2IAdapter config (full_adapter)
    prompt_dim: int = 768  #: width of the prompt embeddings (CLIP projection dim) = UNet cross_attention_dim
    image_size: int = 512  #: square model input (SPEC: 512); any multiple of 64 runs
    decoder_width: int = 512  #: QFD channels per level (SPEC 512; the demo uses 64)
    map_size: int = 64  #: F_quality grid; every level is resized to it, so the head width is fixed
    se_reduction: int = 16  #: squeeze-excitation reduction
    vae_input_range: str = "-1,1"  #: "-1,1" = what SD's VAE was trained on; "0,1" = the reference code
    timestep: int = 1  #: the single denoising step, no noise added
    text_gamma_init: float = 1e-4  #: the text adapter's per-channel gamma at init
    #: the authors' QFD exactly: no ReLU between each level's conv (and the fuse conv) and its squeeze-excitation,
    #: bias-free SE linears. Default False: a ReLU there (this toolkit's choice) and SE biases.
    reference_decoder: bool = False
    score_scale: float = 100.0  #: score = score_scale * head + score_offset (the head learns MOS/100)
    score_offset: float = 0.0  #: non-default only for imported teachers whose head speaks another label scale

    def __post_init__(self):
        if self.vae_input_range not in VAE_RANGES:
            raise ValueError(f"vae_input_range {self.vae_input_range!r}; valid: {', '.join(VAE_RANGES)}")
        if self.image_size % 64:
            raise ValueError(f"image_size {self.image_size} must be a multiple of 64 (VAE 8x, UNet 8x)")


def teacher_preprocess(config: TeacherConfig):
    return Preprocess(size=(config.image_size, config.image_size))
