"""Teacher training on MOS (SPEC recipe) through the shared loop ``dpiqa_edge.training.fit``.

What this module adds to the loop: building the teacher from its source (SD folder, or tiny configs),
the prompt matrix, the frozen VAE's moments cached once per image (sharded over processes), the loss
(MSE on MOS/100, optional pairwise ranking hinge), per-epoch validation SRCC/PLCC, and the final
``config.json`` + ``model.safetensors`` at the top of the output folder (the best epoch by val SRCC).

Resume and determinism come from the loop: every random draw (batch order, the latent sample of each
item) derives from (seed, epoch, step, position), so a run killed mid-epoch and resumed ends where an
uninterrupted run of the same seed ends. The random-init parts are built under ``torch.manual_seed(seed)``
and the cache is a pure function of the frozen VAE, so a resumed run rebuilds exactly the same state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..config import to_dict
from ..data.manifest import read_manifest
from ..errors import ConfigError
from ..io import atomic_path, write_json
from ..metrics import plcc, srcc
from ..quiet import LOG_NAME, third_party_output
from ..training import LoopConfig, fit
from .config import TeacherConfig, teacher_preprocess
from .loading import check_sd_folder, load_sd_parts, tiny_configs
from .prompts import embed_prompts, load_prompt_embeddings, tiny_prompt_embeddings


def _spec_loop() -> LoopConfig:
    # SPEC recipe: Adam 1e-5, batch 16, 30 epochs, MultiStepLR gamma 0.2 (KonIQ milestone 5), fp16 on GPU.
    return LoopConfig(epochs=30, batch_size=16, lr=1e-5, milestones=(5,), gamma=0.2, mixed_precision="fp16")


@dataclass
class TeacherRunConfig:
    """A teacher training run (configs/teacher.toml maps onto it; ``[train]`` is the shared LoopConfig)."""

    image_size: int = 512  #: square input side (SPEC 512; multiple of 64)
    decoder_width: int = 512  #: QFD width (SPEC 512)
    map_size: int = 64  #: F_quality side (SPEC 64 = the latent grid at 512)
    vae_input_range: str = "-1,1"  #: "-1,1" (SD's VAE range, default) or "0,1" (the reference code)
    #: draw the training latent from the VAE posterior (the reference) or use its mean. A trained SD VAE has a
    #: tiny posterior std; a random-init tiny VAE's is ~1 against a ~0.2 spread of means between images, so
    #: sampling there buries the image under noise (and evaluation uses the mean): the demo turns it off.
    sample_latents: bool = True
    rank_weight: float = 0.0  #: weight of the pairwise margin ranking loss; 0 = off, as in the paper
    rank_margin: float = 0.25  #: ranking margin = rank_margin * std of the batch targets
    eval_batch_size: int = 16  #: batch for validation and VAE-moment caching
    init_bias_at_mean: bool = True  #: start the head's output bias at the train MOS mean (a resumed run loads its weights over it)
    tiny_prompt_dim: int = 32  #: projection width of the tiny random CLIP (``--tiny`` without prompts)
    train: LoopConfig = field(default_factory=_spec_loop)


class _Items:
    """Training items: a latent drawn from the cached moments (torch's global RNG, seeded per item by the
    loop), the [0,1] image for the adapter, and the target MOS/100."""

    def __init__(self, rows, moments, preprocess, scaling_factor: float, sample: bool = True):
        self.rows, self.moments, self.pre, self.scale, self.sample = rows, moments, preprocess, scaling_factor, sample

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        import torch

        mean, logvar = self.moments[i].chunk(2, dim=0)
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))  # the same clamp as diffusers' posterior
        latents = (mean + std * torch.randn(mean.shape, dtype=mean.dtype) if self.sample else mean) * self.scale
        image = torch.from_numpy(self.pre(self.rows[i].abspath))
        return {"latents": latents, "image": image, "target": torch.tensor(self.rows[i].mos / 100.0)}


def check_sources(*, sd_path=None, clip_path=None, prompt_embeddings=None, tiny: bool = False) -> None:
    """Usage errors of the source options, before any work is done."""
    if bool(sd_path) == bool(tiny):
        raise ConfigError("teacher: give exactly one of --sd-path SD_DIR or --tiny")
    if clip_path and prompt_embeddings:
        raise ConfigError("teacher: give --clip-path or --prompt-embeddings, not both")
    if sd_path and not (clip_path or prompt_embeddings):
        raise ConfigError("teacher: --sd-path needs --clip-path CLIP_DIR (ViT-L/14 text model with projection) "
                          "or --prompt-embeddings FILE")
    if sd_path:
        check_sd_folder(sd_path)


def build_source_teacher(cfg: TeacherRunConfig, *, sd_path=None, clip_path=None, prompt_embeddings=None,
                         tiny: bool = False, seed: int = 0):
    """A fresh teacher from its source: exactly one of ``sd_path`` / ``tiny``; prompts from ``clip_path``,
    a ``prompt_embeddings`` file, or (tiny only) a tiny random CLIP."""
    import torch

    from .model import build_teacher  # lazy: teacher.model imports torch at top

    check_sources(sd_path=sd_path, clip_path=clip_path, prompt_embeddings=prompt_embeddings, tiny=tiny)
    if clip_path:
        emb = embed_prompts(clip_path)
    elif prompt_embeddings:
        emb = load_prompt_embeddings(prompt_embeddings)
    else:
        emb = tiny_prompt_embeddings(cfg.tiny_prompt_dim, seed=seed)
    mcfg = dict(image_size=cfg.image_size, decoder_width=cfg.decoder_width, map_size=cfg.map_size,
                vae_input_range=cfg.vae_input_range, prompt_dim=int(emb.shape[1]))
    try:
        torch.manual_seed(seed)  # adapter, text adapter, QFD (and tiny parts) are random-init: seeded
        if tiny:
            return build_teacher(TeacherConfig(**tiny_configs(int(emb.shape[1])), **mcfg), emb)
        parts = load_sd_parts(sd_path)
        return build_teacher(TeacherConfig(**mcfg), emb, parts=parts)
    except ValueError as exc:
        raise ConfigError(f"teacher config: {exc}") from None


def cache_moments(model, rows, out_dir: Path, batch_size: int = 16, cpu: bool = False):
    """VAE posterior moments of every row's image, computed once (sharded over processes) and kept in
    ``out_dir/cache``; float32 (N, 2C, h, w) on CPU. The key covers the images, size and VAE input range."""
    import torch
    from accelerate import PartialState
    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm

    state = PartialState(cpu=cpu)
    pre = teacher_preprocess(model.config)
    key = hashlib.sha256(json.dumps([[r.abspath for r in rows], model.config.image_size,
                                     model.config.vae_input_range, model.config.vae]).encode()).hexdigest()[:16]
    final = out_dir / "cache" / f"vae-moments-{key}.safetensors"
    if not final.is_file():
        # 1. this process's share, in order, on its device.
        mine = list(range(len(rows)))[state.process_index::state.num_processes]
        vae_device = next(model.vae.parameters()).device
        model.vae.to(state.device)
        chunks = []
        for b in tqdm(range(0, len(mine), batch_size), desc="VAE moments", leave=False,
                      disable=not state.is_local_main_process):
            idx = mine[b:b + batch_size]
            x = torch.from_numpy(pre.batch([rows[i].abspath for i in idx])).to(state.device)
            chunks.append(model.encode_moments(x).float().cpu())
        model.vae.to(vae_device)
        part = out_dir / "cache" / f"part-{key}-{state.process_index}.safetensors"
        with atomic_path(part) as tmp:
            save_file({"index": torch.tensor(mine, dtype=torch.long),
                       "moments": torch.cat(chunks).contiguous() if chunks else torch.zeros(0)}, str(tmp))
        state.wait_for_everyone()
        # 2. the main process merges the parts into the one cache file.
        if state.is_main_process:
            parts = [load_file(str(out_dir / "cache" / f"part-{key}-{r}.safetensors")) for r in range(state.num_processes)]
            shape = next(p["moments"].shape[1:] for p in parts if p["moments"].numel())
            merged = torch.zeros((len(rows), *shape))
            for p in parts:
                if p["index"].numel():
                    merged[p["index"]] = p["moments"]
            with atomic_path(final) as tmp:
                save_file({"moments": merged.contiguous()}, str(tmp))
            for r in range(state.num_processes):
                (out_dir / "cache" / f"part-{key}-{r}.safetensors").unlink(missing_ok=True)
        state.wait_for_everyone()
    return load_file(str(final))["moments"]


def evaluate_teacher(model, rows, moments, batch_size: int = 16) -> dict:
    """SRCC / PLCC of the teacher (latent mean, deterministic) against the rows' MOS."""
    import numpy as np
    import torch

    pre, device = teacher_preprocess(model.config), next(model.parameters()).device
    preds = []
    for b in range(0, len(rows), batch_size):
        x = torch.from_numpy(pre.batch([r.abspath for r in rows[b:b + batch_size]])).to(device)
        lat = model.latents_from_moments(moments[b:b + batch_size].to(device)).to(x.dtype)
        preds.append(model(x, latents=lat)[0].float().cpu())
    p, m = torch.cat(preds).numpy(), np.array([r.mos for r in rows])
    return {"srcc": srcc(p, m), "plcc": plcc(p, m)}


def train_teacher(manifest, out_dir, cfg: TeacherRunConfig | None = None, *, sd_path=None, clip_path=None,
                  prompt_embeddings=None, tiny: bool = False) -> Path:
    """Train on the manifest's labelled ``train`` rows, validate on ``val``; returns ``out_dir`` holding
    config.json + model.safetensors (best val SRCC; the last epoch when there is no val split), plus the
    loop's ``last/`` (resume), ``best/``, ``history.json`` and ``teacher_run.json`` (the config used)."""
    import torch
    from accelerate import PartialState

    # the one pairwise ranking loss (SPEC), shared with distillation
    from ..losses import rank_loss  # lazy: losses imports torch at top
    from .model import save_teacher  # lazy: teacher.model imports torch at top

    cfg = cfg or TeacherRunConfig()
    out_dir = Path(out_dir)
    check_sources(sd_path=sd_path, clip_path=clip_path, prompt_embeddings=prompt_embeddings, tiny=tiny)
    # 1. data: labelled train / val rows.
    manifest = read_manifest(manifest)
    train_rows, val_rows = manifest.split("train").labelled(), manifest.split("val").labelled()
    if len(train_rows) < cfg.train.batch_size:
        raise ConfigError(f"{manifest.path}: {len(train_rows)} labelled train rows, fewer than batch_size "
                          f"{cfg.train.batch_size}")
    loop = cfg.train
    if loop.mixed_precision != "no" and not torch.cuda.is_available():
        loop = dataclasses.replace(loop, mixed_precision="no")  # fp16 autocast is a GPU recipe
    # 2. the model from its source, then the VAE moments of every image (once, cached on disk).
    with third_party_output(out_dir / LOG_NAME):  # diffusers/transformers loading logs and bars, unless --verbose
        model = build_source_teacher(cfg, sd_path=sd_path, clip_path=clip_path, prompt_embeddings=prompt_embeddings,
                                     tiny=tiny, seed=loop.seed)
    moments = cache_moments(model, list(train_rows) + list(val_rows), out_dir, cfg.eval_batch_size, cpu=loop.cpu)
    train_m, val_m = moments[:len(train_rows)], moments[len(train_rows):]
    if cfg.init_bias_at_mean:
        # The head's last bias at the train MOS mean (normalised): the run starts at the loss a constant
        # predictor reaches, and its first steps go into ranking images rather than into learning the mean.
        with torch.no_grad():
            model.decoder.head[-1].bias.fill_(sum(r.mos for r in train_rows) / len(train_rows) / 100.0)
    items = _Items(train_rows, train_m, teacher_preprocess(model.config), model.scaling_factor,
                   cfg.sample_latents)

    # 3. loss and per-epoch validation.
    def loss_fn(m, batch):
        score, _ = m(batch["image"], latents=batch["latents"])
        pred, target = score.float() / 100.0, batch["target"].float()
        loss = torch.nn.functional.mse_loss(pred, target)
        if cfg.rank_weight > 0:
            loss = loss + cfg.rank_weight * rank_loss(pred, target, cfg.rank_margin)
        return loss, pred, target

    eval_fn = (lambda m: evaluate_teacher(m, val_rows, val_m, cfg.eval_batch_size)) if len(val_rows) >= 3 else None
    run = {**to_dict(cfg), "manifest": str(manifest.path), "sd_path": str(sd_path or ""),
           "clip_path": str(clip_path or ""), "prompt_embeddings": str(prompt_embeddings or ""), "tiny": tiny}
    provenance = {"manifest": str(manifest.path), "source": "tiny" if tiny else str(sd_path),
                  "train_rows": len(train_rows), "val_rows": len(val_rows)}
    result = fit(model, loss_fn, items, out_dir, dataclasses.replace(loop), eval_fn=eval_fn,
                 save_fn=lambda m, d: save_teacher(m, d, **provenance), config=run)

    # 4. the deliverable at the top of out_dir: best/ when validated, else the last weights.
    if PartialState().is_main_process:
        write_json(out_dir / "teacher_run.json", run)
        if result.best_dir is not None:
            for name in ("model.safetensors", "config.json"):
                with atomic_path(out_dir / name) as tmp:
                    shutil.copyfile(result.best_dir / name, tmp)
        else:
            save_teacher(model, out_dir, **provenance)  # fit trained this module in place
    PartialState().wait_for_everyone()
    return out_dir


def config_summary(cfg: TeacherRunConfig) -> str:
    t = cfg.train
    return (f"{cfg.image_size}px, decoder {cfg.decoder_width}, map {cfg.map_size}, VAE input [{cfg.vae_input_range}], "
            f"{t.epochs} epochs, batch {t.batch_size}, lr {t.lr:g}, milestones {list(t.milestones)}")

