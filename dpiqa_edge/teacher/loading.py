"""Where the teacher's diffusers parts come from: a local SD folder, SD-1.5's own configs, or tiny configs.

* ``load_sd_parts(sd_dir)``: the VAE and UNet of a Stable Diffusion folder in diffusers layout
  (``model_index.json``, ``vae/``, ``unet/``), safetensors weights only: a local folder or a Hugging Face id
  (``stable-diffusion-v1-5/stable-diffusion-v1-5``) resolved through the HF cache (``dpiqa_edge.hub``;
  ``HF_HUB_OFFLINE=1`` reads the cache only). Anything else fails with one line.
* ``sd15_configs()``: SD-1.5's UNet / VAE configs and the T2I full adapter config, written out here so the
  full-size teacher can be built (random init, or on the meta device to count parameters) with no download.
* ``tiny_configs()``: the same classes shrunk like diffusers' own tests (4 UNet levels so the adapter and
  the four up-block features keep their structure; a 4-block VAE so it still downsamples 8x like SD).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from ..hub import SD_FILES, resolve_folder
from ..io import atomic_path

SD15_SCALING_FACTOR = 0.18215


def sd15_configs(cross_attention_dim: int = 768) -> dict[str, dict[str, Any]]:
    """SD-1.5's ``unet/config.json`` and ``vae/config.json`` (the fields that shape the model) + the adapter."""
    unet = dict(
        sample_size=64, in_channels=4, out_channels=4, center_input_sample=False, flip_sin_to_cos=True,
        freq_shift=0, down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, block_out_channels=[320, 640, 1280, 1280],
        layers_per_block=2, downsample_padding=1, mid_block_scale_factor=1, act_fn="silu", norm_num_groups=32,
        norm_eps=1e-5, cross_attention_dim=cross_attention_dim, attention_head_dim=8,
    )
    vae = dict(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[128, 256, 512, 512], layers_per_block=2,
        act_fn="silu", latent_channels=4, norm_num_groups=32, sample_size=512, scaling_factor=SD15_SCALING_FACTOR,
    )
    adapter = dict(in_channels=3, channels=[320, 640, 1280, 1280], num_res_blocks=2, downscale_factor=8,
                   adapter_type="full_adapter")
    return {"unet": unet, "vae": vae, "adapter": adapter}


def tiny_configs(cross_attention_dim: int = 32) -> dict[str, dict[str, Any]]:
    """Tiny versions of the same three parts (random init in tests and the demo)."""
    channels = [32, 32, 64, 64]
    unet = dict(
        sample_size=16, in_channels=4, out_channels=4, down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
        up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, block_out_channels=channels,
        layers_per_block=1, norm_num_groups=8, cross_attention_dim=cross_attention_dim,
        # (diffusers' legacy name: this is the head *count*.) 2 heads of 16-32 channels: CPU attention over the
        # 1,485 prompt tokens with 8 heads of 4 channels ran 2.5x slower for the same model size.
        attention_head_dim=2,
    )
    vae = dict(
        in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 4,
        up_block_types=["UpDecoderBlock2D"] * 4, block_out_channels=[8, 16, 16, 16], layers_per_block=1,
        latent_channels=4, norm_num_groups=8, sample_size=128, scaling_factor=SD15_SCALING_FACTOR,
    )
    adapter = dict(in_channels=3, channels=channels, num_res_blocks=1, downscale_factor=8, adapter_type="full_adapter")
    return {"unet": unet, "vae": vae, "adapter": adapter}


def build_parts(configs: dict[str, dict[str, Any]]):
    """Random-init (VAE, UNet, adapter) from config dicts (honours an enclosing ``torch.device`` context)."""
    from diffusers import AutoencoderKL, T2IAdapter, UNet2DConditionModel

    try:
        return (AutoencoderKL.from_config(configs["vae"]), UNet2DConditionModel.from_config(configs["unet"]),
                T2IAdapter.from_config(configs["adapter"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"teacher config: cannot build the diffusers parts ({exc})") from None


def check_sd_folder(sd_dir: str | os.PathLike) -> Path:
    """The folder (a Hub id resolved to its cached snapshot); a one-line ModelLoadError unless it is a
    diffusers SD folder with safetensors weights."""
    sd_dir = resolve_folder(sd_dir, "--sd-path (Stable Diffusion folder)", SD_FILES)
    if not sd_dir.is_dir():
        raise ModelLoadError(f"{sd_dir}: Stable Diffusion folder not found")
    missing = [p for p in ("model_index.json", "vae/config.json", "unet/config.json") if not (sd_dir / p).is_file()]
    if missing:
        raise ModelLoadError(f"{sd_dir}: not a diffusers Stable Diffusion checkpoint (missing {', '.join(missing)}); "
                             "expected the diffusers layout model_index.json, vae/, unet/ (e.g. stable-diffusion-v1-5)")
    for sub in ("vae", "unet"):
        if not any((sd_dir / sub).glob("diffusion_pytorch_model*.safetensors")):
            raise ModelLoadError(f"{sd_dir / sub}: no diffusion_pytorch_model.safetensors (pickled .bin weights "
                                 "are not loaded; convert them to safetensors first)")
    return sd_dir


def load_sd_parts(sd_dir: str | os.PathLike, adapter_config: dict[str, Any] | None = None):
    """(VAE, UNet, random-init T2I full adapter matching the UNet's channels) from a local SD folder."""
    from diffusers import AutoencoderKL, T2IAdapter, UNet2DConditionModel

    sd_dir = check_sd_folder(sd_dir)
    try:
        vae = AutoencoderKL.from_pretrained(sd_dir, subfolder="vae", use_safetensors=True)
        unet = UNet2DConditionModel.from_pretrained(sd_dir, subfolder="unet", use_safetensors=True)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelLoadError(f"{sd_dir}: cannot load the SD VAE/UNet ({' '.join(str(exc).split())[:200]})") from None
    if adapter_config is None:
        adapter_config = dict(in_channels=3, channels=list(unet.config.block_out_channels), num_res_blocks=2,
                              downscale_factor=8, adapter_type="full_adapter")
    return vae, unet, T2IAdapter.from_config(adapter_config)


def write_random_sd_folder(out_dir: str | os.PathLike, configs: dict[str, dict[str, Any]] | None = None,
                           seed: int = 0) -> Path:
    """A random-init Stable Diffusion folder in diffusers layout (``model_index.json``, ``vae/``, ``unet/``,
    safetensors): SD-1.5's configs by default, ``tiny_configs()`` in tests. It exercises ``--sd-path``'s
    real loading code at full size where no SD weights exist (the GPU check, ``tools/gpu_check.py``)."""
    import torch

    configs = configs or sd15_configs()
    out_dir = Path(out_dir)
    torch.manual_seed(seed)
    vae, unet, _ = build_parts(configs)
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        vae.save_pretrained(tmp / "vae", safe_serialization=True)
        unet.save_pretrained(tmp / "unet", safe_serialization=True)
        (tmp / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline",
                                                          "vae": ["diffusers", "AutoencoderKL"],
                                                          "unet": ["diffusers", "UNet2DConditionModel"]}))
    return out_dir


def count_parameters(module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
