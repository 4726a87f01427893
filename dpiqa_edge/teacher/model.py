"""The DP-IQA teacher (SPEC "Teacher"): frozen SD VAE -> UNet at t=1 with a T2I full adapter and the
1,485-prompt context -> the four up-block features -> quality feature decoder (F_quality, 8 channels) -> head.

Contract (docs/ARCHITECTURE.md): ``forward(x float N x 3 x H x W in 0..1) -> (score N on 0-100,
F_quality N x 8 x map_size x map_size)``. ``forward`` uses the latent *mean* (deterministic scores); training
samples the latent from cached VAE moments (``latents_from_moments(..., sample=True)``), as the reference does.
A checkpoint folder (``save_teacher``/``load_teacher``) is config.json + model.safetensors and needs no SD folder.
``build_full_teacher(device)``: the SD-1.5-size teacher with random weights (benchmarks, GPU checks); it sits
here, beside ``build_teacher``, so that this module uses ``loading`` (where the parts come from) and never the
other way round.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..config import from_dict, to_dict
from ..errors import ConfigError, ModelLoadError
from ..io import atomic_path, read_json, write_json
from ..runtime.schema import check_config
from .config import VAE_RANGES, TeacherConfig, teacher_preprocess  # noqa: F401  (re-exported: the model's API)
from .loading import build_parts, sd15_configs

MODEL_TYPE = "dpiqa_teacher"
class TextAdapter(nn.Module):
    """e' = e + gamma * MLP(e) over the fixed prompt matrix (a persistent buffer: checkpoints are self-contained).

    Args:
        prompt_embeddings: (1485, D) pooled projected CLIP features.
        gamma_init: initial value of the learnable per-channel gamma (tiny, so e' starts at e).
    """

    def __init__(self, prompt_embeddings: torch.Tensor, gamma_init: float = 1e-4):
        super().__init__()
        dim = prompt_embeddings.shape[1]
        self.register_buffer("prompt_embeddings", prompt_embeddings.detach().float().clone())
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.gamma = nn.Parameter(torch.full((dim,), float(gamma_init)))

    def forward(self, batch: int) -> torch.Tensor:
        e = self.prompt_embeddings
        e = e + self.gamma * self.mlp(e)
        return e.unsqueeze(0).expand(batch, -1, -1)


class SqueezeExcite(nn.Module):
    """Channel attention: global average -> C/r -> ReLU -> C -> sigmoid gate (``bias``: of both linears)."""

    def __init__(self, channels: int, reduction: int = 16, bias: bool = True):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc = nn.Sequential(nn.Linear(channels, hidden, bias=bias), nn.ReLU(inplace=True),
                                nn.Linear(hidden, channels, bias=bias), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x.mean(dim=(2, 3)))[:, :, None, None]


class QualityDecoder(nn.Module):
    """QFD + head. Levels (finest first) -> each resized to ``map_size``, 3x3 conv to ``width``, SE ->
    concat -> 3x3 conv -> SE -> 1x1 convs width->128->32->8 (ReLU each) = F_quality -> flatten -> MLP -> 1.

    Args:
        in_channels: channels of each level, finest first (SD-1.5: 320, 640, 1280, 1280).
        width: channels per level after the first conv (SPEC 512).
        map_size: side of F_quality.
        se_reduction: squeeze-excitation reduction.
        reference: the authors' decoder (``TeacherConfig.reference_decoder``): Identity where the ReLUs
            after the level and fuse convs are, bias-free SE linears. The module names stay the same.
    """

    def __init__(self, in_channels: list[int], width: int = 512, map_size: int = 64, se_reduction: int = 16,
                 reference: bool = False):
        super().__init__()
        self.map_size = map_size

        def conv_se(c_in):
            act = nn.Identity() if reference else nn.ReLU(inplace=True)
            return nn.Sequential(nn.Conv2d(c_in, width, 3, padding=1), act, SqueezeExcite(width, se_reduction, not reference))

        self.levels = nn.ModuleList(conv_se(c) for c in in_channels)
        self.fuse = conv_se(width * len(in_channels))
        self.reduce = nn.Sequential(nn.Conv2d(width, 128, 1), nn.ReLU(inplace=True), nn.Conv2d(128, 32, 1),
                                    nn.ReLU(inplace=True), nn.Conv2d(32, 8, 1), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * map_size * map_size, 512), nn.ReLU(inplace=True),
                                  nn.Linear(512, 512), nn.ReLU(inplace=True), nn.Linear(512, 1))
        self._init_relu_chain()

    def _init_relu_chain(self):
        # Init is not part of the method. PyTorch's default (kaiming_uniform, a=sqrt(5)) shrinks the variance
        # ~6x per conv+ReLU, and this chain has 4 + 2 + 3 + 2 of them: measured on the demo's tiny teacher, the
        # spread of F_quality between images was 2e-4 and of the score 1e-5 (of a 0.2 target spread), so Adam
        # moved the final ReLU's bias past it within an epoch (F_quality 99% zero: a dead, constant teacher).
        # He init (fan_in, ReLU gain) keeps the variance through the chain: spreads 7e-3 and 7e-3 at init.
        # The squeeze-excitation gates and the last Linear keep PyTorch's default (they feed no ReLU).
        gates = {id(m) for se in self.modules() if isinstance(se, SqueezeExcite) for m in se.fc}
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and id(m) not in gates and m is not self.head[-1]:
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        size = (self.map_size, self.map_size)
        levels = [conv(F.interpolate(f, size=size, mode="bicubic", align_corners=False) if f.shape[-2:] != size else f)
                  for conv, f in zip(self.levels, feats)]
        f_quality = self.reduce(self.fuse(torch.cat(levels, dim=1)))
        return self.head(f_quality).squeeze(1), f_quality


class DPIQATeacher(nn.Module):
    """The teacher. Build with :func:`build_teacher`; parts are diffusers models.

    Args:
        config: the TeacherConfig it was built from (kept for saving).
        vae: AutoencoderKL (frozen here).
        unet: UNet2DConditionModel (trained).
        adapter: T2IAdapter(adapter_type="full_adapter") (trained), channels = the UNet's block_out_channels.
        prompt_embeddings: (1485, prompt_dim).
    """

    def __init__(self, config: TeacherConfig, vae, unet, adapter, prompt_embeddings: torch.Tensor):
        super().__init__()
        self.config = config
        self.vae, self.unet, self.adapter = vae, unet, adapter
        self.vae.requires_grad_(False)
        # conv_norm_out/conv_out run inside diffusers' forward but their output is unused (SPEC): no gradient
        # ever reaches them, and DDP rejects trainable parameters without gradients, so they are frozen.
        for unused in (unet.conv_norm_out, unet.conv_out):
            if unused is not None:
                unused.requires_grad_(False)
        self.text_adapter = TextAdapter(prompt_embeddings, config.text_gamma_init)
        # Up block i outputs reversed(block_out_channels)[i]; finest first that is block_out_channels.
        self.decoder = QualityDecoder(list(unet.config.block_out_channels), config.decoder_width, config.map_size,
                                      config.se_reduction, config.reference_decoder)
        self.scaling_factor = float(vae.config.scaling_factor)
        self._features: list[torch.Tensor] = []
        # The four up-block outputs are read with forward hooks: the UNet forward stays diffusers' own.
        for block in unet.up_blocks:
            block.register_forward_hook(lambda _m, _inp, out: self._features.append(out))

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # frozen: never in training mode
        return self

    # -- steps ------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_moments(self, x: torch.Tensor) -> torch.Tensor:
        """[0,1] images -> the VAE posterior's parameters (mean ++ logvar, N x 2C x h x w); cacheable."""
        v = x * 2.0 - 1.0 if self.config.vae_input_range == "-1,1" else x
        return self.vae.encode(v.to(next(self.vae.parameters()).dtype)).latent_dist.parameters

    def latents_from_moments(self, moments: torch.Tensor, sample: bool = False,
                             generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent mean (eval/scoring) or a sample (training, as the reference), times the scaling factor."""
        from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

        dist = DiagonalGaussianDistribution(moments)
        z = dist.sample(generator=generator) if sample else dist.mean
        return z * self.scaling_factor

    def up_features(self, latents: torch.Tensor, x: torch.Tensor) -> list[torch.Tensor]:
        """UNet at t=1 with adapter residuals on the 4 down blocks -> up-block outputs, finest first."""
        n = latents.shape[0]
        residuals = list(self.adapter(x))  # the UNet pops from this list: pass a fresh one
        t = torch.full((n,), self.config.timestep, device=latents.device, dtype=torch.long)
        self._features = []
        self.unet(latents, t, encoder_hidden_states=self.text_adapter(n).to(latents.dtype),
                  down_intrablock_additional_residuals=residuals, return_dict=False)
        feats, self._features = self._features, []
        return feats[::-1]

    def forward_latents(self, latents: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised score MOS/100, F_quality) from latents and the [0,1] image (fed to the adapter)."""
        return self.decoder(self.up_features(latents, x))

    def forward(self, x: torch.Tensor, latents: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """[0,1] images -> (score 0-100, F_quality). ``latents`` (already scaled) skip the VAE: training passes
        samples drawn from cached moments, and DDP needs the training step to go through ``forward``."""
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] % 64 or x.shape[3] % 64:
            raise ValueError(f"teacher input must be N x 3 x H x W with H, W multiples of 64; got {tuple(x.shape)}")
        if latents is None:
            latents = self.latents_from_moments(self.encode_moments(x)).to(x.dtype)
        norm_score, f_quality = self.forward_latents(latents, x)
        score = norm_score * self.config.score_scale
        return (score + self.config.score_offset if self.config.score_offset else score), f_quality


def build_teacher(config: TeacherConfig, prompt_embeddings: torch.Tensor, parts=None) -> DPIQATeacher:
    """A teacher from ``config`` (random-init parts built from its diffusers configs) or from given ``parts``
    (vae, unet, adapter), e.g. :func:`loading.load_sd_parts`. Checks that the pieces fit together."""
    vae, unet, adapter = parts if parts is not None else build_parts(
        {"vae": config.vae, "unet": config.unet, "adapter": config.adapter})
    config.vae, config.unet, config.adapter = (_jsonable(dict(m.config)) for m in (vae, unet, adapter))
    if prompt_embeddings.shape[1] != unet.config.cross_attention_dim:
        raise ModelLoadError(f"prompt embeddings are {prompt_embeddings.shape[1]}-d but the UNet's "
                             f"cross_attention_dim is {unet.config.cross_attention_dim}")
    if list(adapter.config.channels) != list(unet.config.block_out_channels):
        raise ModelLoadError(f"adapter channels {adapter.config.channels} != UNet block_out_channels "
                             f"{unet.config.block_out_channels}")
    config.prompt_dim = int(prompt_embeddings.shape[1])
    return DPIQATeacher(config, vae, unet, adapter, prompt_embeddings)


def save_teacher(model: DPIQATeacher, out_dir: str | os.PathLike, **provenance: Any) -> Path:
    """Write config.json + model.safetensors (atomically; the prompt matrix and the VAE included)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out_dir / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"model_type": MODEL_TYPE})
    meta = {"model_type": MODEL_TYPE, "producer_version": __version__, "config": _jsonable(to_dict(model.config)),
            "preprocessing": teacher_preprocess(model.config).to_dict(), "score_range": [0, 100],
            "higher_is_better": True, "provenance": provenance}
    write_json(out_dir / "config.json", meta)
    return out_dir


def load_teacher(teacher_dir: str | os.PathLike, device: str | torch.device = "cpu") -> DPIQATeacher:
    """Rebuild a saved teacher from its folder alone (no SD folder, no CLIP): eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    teacher_dir = Path(teacher_dir)
    meta = read_json(teacher_dir / "config.json")
    if not isinstance(meta, dict) or meta.get("model_type") != MODEL_TYPE:
        got = meta.get("model_type") if isinstance(meta, dict) else None
        raise ModelLoadError(f"{teacher_dir}: not a DP-IQA teacher checkpoint (model_type {got!r}, expected {MODEL_TYPE!r})")
    check_config(meta, teacher_dir / "config.json")
    try:
        config = from_dict(TeacherConfig, meta.get("config", {}), where=str(teacher_dir / "config.json"))
    except ConfigError as exc:
        raise ModelLoadError(str(exc)) from None
    weights = teacher_dir / "model.safetensors"
    try:
        state = load_file(str(weights))
    except FileNotFoundError:
        raise ModelLoadError(f"{weights}: file not found") from None
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"{weights}: unreadable safetensors ({exc})") from None
    prompts = state.get("text_adapter.prompt_embeddings")
    if prompts is None:
        raise ModelLoadError(f"{weights}: no text_adapter.prompt_embeddings tensor")
    model = build_teacher(config, prompts)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{weights}: weights do not match config.json ({' '.join(str(exc).split())[:200]})") from None
    return model.to(device).eval()


def build_full_teacher(device: str = "cpu", configs: dict | None = None, prompt_dim: int = 768, **overrides):
    """SD-1.5-sized teacher (UNet, VAE, T2I full adapter, 1485 x 768 prompts, QFD 512, map 64), random
    weights on ``device``, shared by the CPU row of ``bench models`` and ``bench teacher_gpu``. Built on the
    meta device, then materialised with N(0, 0.02) weights: initialisation cost is not what is measured, and the
    values do not change the work a dense forward does. ``configs``/``overrides`` (tiny configs, smaller decoder) serve the CPU test."""
    configs = configs or sd15_configs()
    with torch.device("meta"):
        model = build_teacher(TeacherConfig(**configs, prompt_dim=prompt_dim, **overrides),
                              torch.zeros(1485, prompt_dim))
    model = model.to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(0)
    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            t.normal_(0.0, 0.02, generator=g)
    return model.eval()


def _jsonable(obj: Any) -> Any:
    """diffusers configs hold tuples and FrozenDicts and private keys; keep plain, public JSON."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
