"""The authors' teacher pack (``koniq_teacher_model_pack.pth``) -> a dpiqa teacher folder.

Their ``DPIQA`` module and ours hold the same parts under other names (:func:`rename`):

| theirs | ours |
| --- | --- |
| ``vae.*``, ``unet.*`` (diffusers AutoencoderKL, UNet2DConditionModel) | the same |
| ``img_adapter.*`` (diffusers FullAdapter) | ``adapter.adapter.*`` (T2IAdapter wrapping a FullAdapter) |
| ``gamma``, ``text_adapter.fc.{0,2}`` | ``text_adapter.gamma``, ``text_adapter.mlp.{0,2}`` |
| ``class_embeddings`` (a plain attribute, absent from their state dict) | ``text_adapter.prompt_embeddings`` |
| ``QFD.conv{i}``, ``QFD.se{i}.fc.{0,2}`` | ``decoder.levels.{i-1}.0``, ``decoder.levels.{i-1}.2.fc.{0,2}`` |
| ``QFD.fuse_conv``, ``QFD.se_fuse.fc.{0,2}`` | ``decoder.fuse.0``, ``decoder.fuse.2.fc.{0,2}`` |
| ``QFD.conv_score{1,2,3}``, ``QFD.fc{1,2,3}`` | ``decoder.reduce.{0,2,4}``, ``decoder.head.{1,3,5}`` |
| ``QFD.bnc1``, ``QFD.classifier_dist``, ``tokenizer`` | dropped: their forward never uses them |

Their decoder has no ReLU between a level's conv and its squeeze-excitation and bias-free SE linears:
the imported config sets ``reference_decoder``. Their VAE takes the [0,1] image (``vae_input_range
"0,1"``). Their forward *samples* the VAE latent, so their scores vary from run to run; ours uses the
latent mean (deterministic targets) - on SD's trained VAE the posterior std is tiny, so the two agree
closely, and the notes record the choice.

The UNet/VAE configs come from the pack itself (diffusers keeps them on each model); a bare state dict
takes them from ``sd_path`` (a local SD folder or a Hub id) or SD-1.5's, and its prompt matrix from
``prompt_embeddings``/``clip_path``.
"""

from __future__ import annotations

import json
import math

from ..errors import ModelLoadError
from ..hub import CLIP_FILES, SD_FILES, resolve_folder
from ..teacher.config import TeacherConfig
from ..teacher.loading import sd15_configs
from ..teacher.prompts import embed_prompts, load_prompt_embeddings
from .student import score_mapping

DROPPED = ("QFD.bnc1.", "QFD.classifier_dist.")
_FIXED = {"gamma": "text_adapter.gamma", "text_adapter.fc.0.weight": "text_adapter.mlp.0.weight",
          "text_adapter.fc.0.bias": "text_adapter.mlp.0.bias", "text_adapter.fc.2.weight": "text_adapter.mlp.2.weight",
          "text_adapter.fc.2.bias": "text_adapter.mlp.2.bias"}
_QFD = {**{f"conv{i}.": f"decoder.levels.{i - 1}.0." for i in range(1, 5)},
        **{f"se{i}.fc.": f"decoder.levels.{i - 1}.2.fc." for i in range(1, 5)},
        "fuse_conv.": "decoder.fuse.0.", "se_fuse.fc.": "decoder.fuse.2.fc.",
        **{f"conv_score{i}.": f"decoder.reduce.{2 * (i - 1)}." for i in range(1, 4)},
        **{f"fc{i}.": f"decoder.head.{2 * i - 1}." for i in range(1, 4)}}


def is_teacher_state(state: dict) -> bool:
    return any(k.startswith("QFD.") for k in state) and any(k.startswith("unet.") for k in state)


def rename(state: dict, source) -> tuple[dict, list[str]]:
    """(our keys -> tensors, dropped keys). Unknown keys are an error, never silently ignored."""
    out, dropped = {}, []
    for key, value in state.items():
        if key.startswith(DROPPED):
            dropped.append(key)
        elif key in _FIXED:
            out[_FIXED[key]] = value
        elif key.startswith(("vae.", "unet.")):
            out[key] = value
        elif key.startswith("img_adapter."):
            out["adapter.adapter." + key[len("img_adapter."):]] = value
        elif key.startswith("QFD.") and any(key[4:].startswith(p) for p in _QFD):
            p = next(p for p in _QFD if key[4:].startswith(p))
            out[_QFD[p] + key[4 + len(p):]] = value
        else:
            raise ModelLoadError(f"{source}: unexpected key {key!r} in the authors' teacher")
    return out, dropped


def adapter_config(state: dict, source) -> dict:
    """The FullAdapter's constructor arguments, read off its weights (it keeps no config of its own)."""
    blocks = sorted({int(k.split(".")[2]) for k in state if k.startswith("img_adapter.body.")})
    if not blocks or "img_adapter.conv_in.weight" not in state:
        raise ModelLoadError(f"{source}: no img_adapter (T2I full adapter) weights")
    channels = [int(state[f"img_adapter.body.{b}.resnets.0.block1.weight"].shape[0]) for b in blocks]
    n_res = len({k.split(".")[4] for k in state if k.startswith("img_adapter.body.0.resnets.")})
    factor = math.isqrt(int(state["img_adapter.conv_in.weight"].shape[1]) // 3)
    return dict(in_channels=3, channels=channels, num_res_blocks=n_res, downscale_factor=factor,
                adapter_type="full_adapter")


def _configs_from(root, sd_path) -> tuple[dict, dict, str]:
    """UNet and VAE configs: the pack's own, else a local/Hub SD folder's, else SD-1.5's."""
    def public(d):
        return {str(k): v for k, v in dict(d).items() if not str(k).startswith("_")}

    if root is not None:
        configs = [getattr(getattr(root, part, None), "_internal_dict", None) for part in ("unet", "vae")]
        if all(isinstance(c, dict) for c in configs):
            return public(configs[0]), public(configs[1]), "the pack's own diffusers configs"
    if sd_path:
        folder = resolve_folder(sd_path, "--sd-path", SD_FILES)
        try:
            unet, vae = (json.loads((folder / p / "config.json").read_text()) for p in ("unet", "vae"))
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{folder}: cannot read unet/vae config.json ({exc})") from None
        return public(unet), public(vae), f"{sd_path} (unet/vae config.json)"

    base = sd15_configs()
    return base["unet"], base["vae"], "SD-1.5's configs (the authors' base model)"


def from_pack(obj, source, label_range, sd_path=None, prompt_embeddings=None, clip_path=None):
    """(teacher in eval mode, notes) from a loaded pack (stand-in tree) or state dict."""
    import torch

    from ..teacher.model import build_teacher  # lazy: teacher.model imports torch at top
    from .pickles import module_state  # lazy: authors.pickles imports torch at top

    root = obj if isinstance(obj, torch.nn.Module) else None
    state = module_state(root) if root is not None else dict(obj)
    if not is_teacher_state(state):
        raise ModelLoadError(f"{source}: not the authors' teacher (no unet.* / QFD.* weights)")
    # 1. The prompt matrix: their module keeps it as a plain attribute (so a state dict lacks it).
    prompts, prompt_source = getattr(root, "class_embeddings", None), "the pack (class_embeddings)"
    if not isinstance(prompts, torch.Tensor):
        prompts, prompt_source = _prompts(source, prompt_embeddings, clip_path)
    # 2. Configs and the sizes the weights fix.
    unet_cfg, vae_cfg, config_source = _configs_from(root, sd_path)
    width = int(state["QFD.conv1.weight"].shape[0])
    side = math.isqrt(int(state["QFD.fc1.weight"].shape[1]) // 8)
    reduction = width // int(state["QFD.se1.fc.0.weight"].shape[0])
    scale, offset = score_mapping(label_range)
    config = TeacherConfig(unet=unet_cfg, vae=vae_cfg, adapter=adapter_config(state, source), image_size=8 * side,
                           decoder_width=width, map_size=side, se_reduction=reduction, vae_input_range="0,1",
                           timestep=1, reference_decoder=True, score_scale=scale, score_offset=offset)
    # 3. Build on the meta device (no random init of ~1B parameters, no second copy in memory), then take the
    #    file's tensors as the parameters, strictly: every tensor used, every parameter filled.
    ours, dropped = rename(state, source)
    ours = {k: v.detach().float().cpu() for k, v in ours.items()}
    ours["text_adapter.prompt_embeddings"] = prompts.detach().float().cpu()
    try:
        with torch.device("meta"):
            model = build_teacher(config, ours["text_adapter.prompt_embeddings"])
        model.load_state_dict(ours, strict=True, assign=True)
    except (RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"{source}: weights do not fit the teacher built from {config_source} "
                             f"({' '.join(str(exc).split())[:200]})") from None
    left = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if left:
        raise ModelLoadError(f"{source}: the teacher has tensors no weight in the file fills: {left[:3]}")
    notes = {"configs": config_source, "prompt_embeddings": prompt_source, "dropped_unused": dropped,
             "decoder": "reference_decoder (no ReLU between conv and SE, bias-free SE), as the authors'",
             "vae_input_range": "0,1 (the authors feed the [0,1] image to the VAE)",
             "latent": "mean of the VAE posterior (deterministic); the authors' forward samples it"}
    return model.eval(), notes


def _prompts(source, prompt_embeddings, clip_path):
    if prompt_embeddings:
        return load_prompt_embeddings(prompt_embeddings), str(prompt_embeddings)
    if clip_path:
        return embed_prompts(resolve_folder(clip_path, "--clip-path", CLIP_FILES)), f"{clip_path} (CLIP, recomputed)"
    raise ModelLoadError(f"{source}: a teacher state dict carries no prompt matrix (the authors keep it outside "
                         "their state dict); give --prompt-embeddings FILE or --clip-path CLIP")
