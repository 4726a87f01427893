"""The 1,485 quality prompts (SPEC "Prompts") and their CLIP embeddings.

The prompt matrix is the UNet's cross-attention context: 5 quality words x 9 scenes x 33 distortion names,
ordered quality-major (``itertools.product(qualities, scenes, distortions)``), each embedded once with a
CLIP text tower's *pooled, projected* feature (``get_text_features``), not SD's 77-token hidden states.

Three sources, one matrix shape ``(1485, D)``:

* ``embed_prompts(clip_dir)``: a ``CLIPTextModelWithProjection`` + ``CLIPTokenizer`` folder (ViT-L/14
  for the real teacher: D = 768), local or a Hugging Face id (``openai/clip-vit-large-patch14``). SD-1.5's own ``text_encoder`` has no projection, so it is not used.
* ``load_prompt_embeddings(file)``: a precomputed safetensors file holding one 1485 x D tensor.
* ``tiny_clip(dir)`` + ``embed_prompts``: a tiny random CLIP (word-level BPE vocabulary over the prompt
  words) for tests and the demo, exercising exactly the code path a real CLIP folder takes.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from ..errors import ModelLoadError
from ..hub import CLIP_FILES, resolve_folder
from ..io import atomic_path

QUALITIES = ("bad", "poor", "fair", "good", "perfect")
SCENES = ("animal", "cityscape", "human", "indoor", "landscape", "night", "plant", "still_life", "others")
#: the distortion words of the teacher's prompts (SPEC's 33), not a set of image operations
PROMPT_DISTORTIONS = (
    "jpeg2000 compression", "jpeg compression", "white noise", "gaussian blur", "fastfading", "fnoise",
    "contrast", "lens", "motion", "diffusion", "shifting", "color quantization", "oversaturation",
    "desaturation", "white with color", "impulse", "multiplicative", "white noise with denoise", "brighten",
    "darken", "shifting the mean", "jitter", "noneccentricity patch", "pixelate", "quantization",
    "color blocking", "sharpness", "realistic blur", "realistic noise", "underexposure", "overexposure",
    "realistic contrast change", "other realistic",
)
TEMPLATE = "a photo of a {scene} with {distortion} artifacts, which is of {quality} quality"
N_PROMPTS = len(QUALITIES) * len(SCENES) * len(PROMPT_DISTORTIONS)  # 1485


def build_prompts() -> list[str]:
    """The 1,485 prompts in SPEC order (quality-major, then scene, then distortion)."""
    return [TEMPLATE.format(quality=q, scene=s, distortion=d)
            for q, s, d in itertools.product(QUALITIES, SCENES, PROMPT_DISTORTIONS)]


def embed_prompts(clip_dir: str | os.PathLike, batch_size: int = 128, device: str = "cpu"):
    """Pooled, projected CLIP text features of every prompt -> float32 tensor (1485, projection_dim)."""
    import torch
    from transformers import CLIPTextModelWithProjection, CLIPTokenizer

    clip_dir = resolve_folder(clip_dir, "--clip-path (CLIP text model)", CLIP_FILES)
    if not (clip_dir / "config.json").is_file():
        raise ModelLoadError(f"{clip_dir}: not a CLIP folder (no config.json); expected a transformers "
                             "CLIPTextModelWithProjection + CLIPTokenizer checkpoint, e.g. clip-vit-large-patch14")
    try:
        tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
        model = CLIPTextModelWithProjection.from_pretrained(clip_dir, use_safetensors=True).to(device).eval()
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(f"{clip_dir}: cannot load CLIP text model with projection ({str(exc)[:200]})") from None
    prompts = build_prompts()
    chunks = []
    with torch.no_grad():
        for i in range(0, len(prompts), batch_size):
            tok = tokenizer(prompts[i:i + batch_size], padding="max_length", truncation=True,
                            max_length=tokenizer.model_max_length, return_tensors="pt").to(device)
            # text_embeds == get_text_features(): the EOS-pooled hidden state through text_projection.
            chunks.append(model(input_ids=tok.input_ids, attention_mask=tok.attention_mask).text_embeds.float().cpu())
    return torch.cat(chunks)


def load_prompt_embeddings(path: str | os.PathLike):
    """A precomputed 1485 x D matrix from a safetensors file holding exactly one tensor."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: prompt embeddings file not found")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"{path}: not a safetensors file ({exc})") from None
    if len(tensors) != 1:
        raise ModelLoadError(f"{path}: expected one tensor (1485 x D), found {len(tensors)}: {sorted(tensors)[:5]}")
    (emb,) = tensors.values()
    if emb.ndim != 2 or emb.shape[0] != N_PROMPTS:
        raise ModelLoadError(f"{path}: prompt embeddings have shape {tuple(emb.shape)}, expected ({N_PROMPTS}, D)")
    return emb.float()


def save_prompt_embeddings(emb, path: str | os.PathLike) -> Path:
    """Write the matrix so ``--prompt-embeddings`` can reuse it without the CLIP folder."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({"prompt_embeddings": emb.contiguous().float()}, str(tmp))
    return Path(path)


def tiny_clip(out_dir: str | os.PathLike, projection_dim: int = 32, seed: int = 0, full_size: bool = False) -> Path:
    """Write a tiny random CLIPTextModelWithProjection + CLIPTokenizer folder (tests, demo).

    ``full_size``: the text tower at CLIP ViT-L/14's size instead (768 wide, 12 layers, 12 heads, projection
    768; random init), so ``--clip-path`` can be exercised at real size where no CLIP weights exist.

    The tokenizer is a real ``CLIPTokenizer`` whose BPE merges spell every prompt word as one token, so
    every prompt fits the 77-token window and the distinguishing quality word (last) is never truncated.
    """
    import torch
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # 1. vocabulary: every byte-level symbol (bare and word-final), specials, then each prompt word's BPE
    #    prefixes, so CLIP's own pre-tokenizer + BPE turn each word into one token.
    symbols = sorted({c for c in _byte_symbols()})
    vocab: dict[str, int] = {}
    for tok in ["<|startoftext|>", "<|endoftext|>"] + symbols + [s + "</w>" for s in symbols]:
        vocab.setdefault(tok, len(vocab))
    base = CLIPTokenizer(vocab=dict(vocab), merges=[])
    pre = base.backend_tokenizer.pre_tokenizer
    words = sorted({w for p in build_prompts() for w, _ in pre.pre_tokenize_str(p.lower())})
    merges: list[tuple[str, str]] = []
    for word in words:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:  # merge left to right: one rule per prefix
            rule = (parts[0], parts[1])
            if rule not in merges:
                merges.append(rule)
            vocab.setdefault(parts[0] + parts[1], len(vocab))
            parts = [parts[0] + parts[1]] + parts[2:]
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)
    tokenizer.save_pretrained(out_dir)
    # 2. the tiny text tower (random init, seeded).
    torch.manual_seed(seed)
    size = (dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12) if full_size
            else dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4))
    config = CLIPTextConfig(vocab_size=len(vocab), **size, max_position_embeddings=77, projection_dim=projection_dim,
                            bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                            pad_token_id=vocab["<|endoftext|>"])
    CLIPTextModelWithProjection(config).save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def _byte_symbols() -> list[str]:
    """The printable stand-ins byte-level BPE uses for the 256 byte values (GPT-2/CLIP convention)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    extra = [b for b in range(256) if b not in keep]
    return [chr(b) for b in keep] + [chr(256 + i) for i in range(len(extra))]


def tiny_prompt_embeddings(projection_dim: int = 32, seed: int = 0):
    """The tiny random CLIP's 1485 x projection_dim matrix, built in a temporary folder."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dpiqa-tiny-clip-") as tmp:
        return embed_prompts(tiny_clip(tmp, projection_dim=projection_dim, seed=seed))
