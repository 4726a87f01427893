"""The DP-IQA teacher model: prompts, diffusers parts, adapter injection, shapes, save/load, SD loading, size.

Tiny random-init configs throughout (no weights exist offline); SD-1.5's own configs are built on the meta
device for the parameter count and the full-size feature shapes.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from dpiqa_edge.errors import ModelLoadError
from dpiqa_edge.teacher import prompts
from dpiqa_edge.teacher.loading import (build_parts, check_sd_folder, count_parameters, load_sd_parts, sd15_configs,
                                        tiny_configs, write_random_sd_folder)
from dpiqa_edge.teacher.model import TeacherConfig, build_teacher, load_teacher, save_teacher


def _tiny(seed: int = 0, **kw):
    torch.manual_seed(seed)
    cfg = TeacherConfig(**tiny_configs(16), prompt_dim=16, image_size=64, decoder_width=16, map_size=8, **kw)
    return build_teacher(cfg, torch.randn(prompts.N_PROMPTS, 16)).eval()


def test_prompts_spec_order():
    p = prompts.build_prompts()
    assert len(p) == 1485 == len(set(p))
    assert p[0] == "a photo of a animal with jpeg2000 compression artifacts, which is of bad quality"
    assert p[1] == "a photo of a animal with jpeg compression artifacts, which is of bad quality"
    assert p[33] == "a photo of a cityscape with jpeg2000 compression artifacts, which is of bad quality"
    assert p[9 * 33] == "a photo of a animal with jpeg2000 compression artifacts, which is of poor quality"
    assert p[-1] == "a photo of a others with other realistic artifacts, which is of perfect quality"


def test_tiny_clip_embeddings_and_file_roundtrip(tmp_path):
    emb = prompts.embed_prompts(prompts.tiny_clip(tmp_path / "clip", projection_dim=24))
    assert emb.shape == (1485, 24) and torch.isfinite(emb).all()
    # Every prompt gets its own embedding: the quality word (last) is never truncated away.
    dist = torch.cdist(emb, emb) + torch.eye(1485) * 1e9
    assert float(dist.min()) > 1e-3
    f = prompts.save_prompt_embeddings(emb, tmp_path / "emb.safetensors")
    assert torch.equal(prompts.load_prompt_embeddings(f), emb)
    prompts.save_prompt_embeddings(emb[:10], tmp_path / "bad.safetensors")
    with pytest.raises(ModelLoadError, match=r"shape \(10, 24\), expected \(1485, D\)"):
        prompts.load_prompt_embeddings(tmp_path / "bad.safetensors")


def _down_outputs(model, x):
    outs = []
    hooks = [b.register_forward_hook(lambda _m, _i, o: outs.append(o[0].clone())) for b in model.unet.down_blocks]
    with torch.no_grad():
        score, _ = model(x)
    for h in hooks:
        h.remove()
    return outs, score


def test_adapter_features_reach_every_down_block():
    model = _tiny()
    x = torch.rand(2, 3, 64, 64)
    before, s0 = _down_outputs(model, x)
    again, s1 = _down_outputs(model, x)
    assert all(torch.equal(a, b) for a, b in zip(before, again)) and torch.equal(s0, s1)  # deterministic
    with torch.no_grad():  # change ONLY the adapter: its input conv feeds all four stages
        model.adapter.adapter.conv_in.weight.add_(torch.randn_like(model.adapter.adapter.conv_in.weight))
    after, s2 = _down_outputs(model, x)
    # Each of the 4 down blocks sees the change (1e-4: far above float noise, which is 0 here by the check above).
    assert len(after) == 4
    assert all(float((a - b).abs().max()) > 1e-4 for a, b in zip(before, after))
    assert float((s0 - s2).abs().max()) > 1e-6


@pytest.mark.parametrize("size", [64, 128])
def test_feature_and_quality_map_shapes(size):
    model = _tiny()
    x = torch.rand(2, 3, size, size)
    with torch.no_grad():
        moments = model.encode_moments(x)
        feats = model.up_features(model.latents_from_moments(moments), x)
        score, fq = model(x)
    lat = size // 8  # the VAE downsamples 8x like SD's
    assert moments.shape == (2, 8, lat, lat)
    # finest first: block_out_channels (32, 32, 64, 64) at latent/1, /1, /2, /4 (SD-1.5: 320@64 640@64 1280@32 1280@16)
    assert [tuple(f.shape[1:]) for f in feats] == [(32, lat, lat), (32, lat, lat), (64, lat // 2, lat // 2),
                                                   (64, lat // 4, lat // 4)]
    assert score.shape == (2,) and fq.shape == (2, 8, 8, 8)  # map_size fixed whatever the input size
    assert (fq >= 0).all()  # F_quality ends with a ReLU


def test_latent_mean_at_eval_sample_in_training_and_vae_range_switch():
    model = _tiny()
    x = torch.rand(1, 3, 64, 64)
    m = model.encode_moments(x)
    mean = model.latents_from_moments(m)
    g = torch.Generator().manual_seed(0)
    sample = model.latents_from_moments(m, sample=True, generator=g)
    assert not torch.allclose(mean, sample)
    assert torch.allclose(mean, m[:, :4] * 0.18215)
    ref = _tiny(vae_input_range="0,1")  # same seed, so the same VAE weights: only the input range differs
    assert not torch.allclose(ref.encode_moments(x), m)


def test_save_load_reproduces_scores(tmp_path):
    model = _tiny(seed=3)
    x = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        s0, f0 = model(x)
    save_teacher(model, tmp_path / "t", note="test")
    meta = json.loads((tmp_path / "t" / "config.json").read_text())
    assert meta["model_type"] == "dpiqa_teacher" and meta["config"]["map_size"] == 8
    loaded = load_teacher(tmp_path / "t")  # no SD folder, no CLIP: the prompt matrix is in the weights
    with torch.no_grad():
        s1, f1 = loaded(x)
    # 1e-5 on a 0-100 scale: fp32 weights round-trip exactly, only op-order noise is allowed.
    assert torch.allclose(s0, s1, atol=1e-5) and torch.allclose(f0, f1, atol=1e-5)


def test_load_teacher_refuses_other_checkpoints(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "dpiqa_student"}))
    with pytest.raises(ModelLoadError, match="not a DP-IQA teacher checkpoint"):
        load_teacher(tmp_path)
    save_teacher(_tiny(), tmp_path / "t")
    (tmp_path / "t" / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        load_teacher(tmp_path / "t")


def test_non_sd_folder_is_one_clear_error(tmp_path):
    (tmp_path / "unet").mkdir()
    (tmp_path / "weights.ckpt").write_bytes(b"junk")
    with pytest.raises(ModelLoadError) as err:
        check_sd_folder(tmp_path)
    msg = str(err.value)
    assert "not a diffusers Stable Diffusion checkpoint" in msg and "model_index.json" in msg and "\n" not in msg


def test_local_sd_folder_loads_in_diffusers_layout(tmp_path):
    write_random_sd_folder(tmp_path / "sd", tiny_configs(16), seed=0)
    torch.manual_seed(0)
    vae, unet, _ = build_parts(tiny_configs(16))  # the same seed gives the same weights
    vae2, unet2, adapter = load_sd_parts(tmp_path / "sd")
    assert all(torch.equal(a, b) for a, b in zip(unet.state_dict().values(), unet2.state_dict().values()))
    assert list(adapter.config.channels) == list(unet.config.block_out_channels)
    assert adapter.config.adapter_type == "full_adapter"


def test_sd15_size_and_full_size_shapes():
    with torch.device("meta"):
        model = build_teacher(TeacherConfig(**sd15_configs()), torch.zeros(1485, 768))
    parts = {"unet": model.unet, "adapter": model.adapter, "text_adapter": model.text_adapter, "qfd": model.decoder}
    counts = {k: count_parameters(v, trainable_only=False) / 1e6 for k, v in parts.items()}
    # SPEC (rounded to 0.1M): UNet 859.5M + adapter 77.4M + text adapter 1.2M + QFD 42.9M = ~981M trainable.
    assert {k: round(v, 1) for k, v in counts.items()} == {"unet": 859.5, "adapter": 77.4, "text_adapter": 1.2,
                                                           "qfd": 42.9}
    assert abs(count_parameters(model) / 1e6 - 981.0) / 981.0 < 0.01
    assert abs(count_parameters(model.vae, trainable_only=False) / 1e6 - 83.7) < 0.1 and count_parameters(model.vae) == 0


def test_targets_module_needs_no_torch():
    code = "import sys, dpiqa_edge.teacher.targets; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_targets_roundtrip(tmp_path):
    from dpiqa_edge.teacher.targets import Targets, write_targets

    rng = np.random.default_rng(0)
    paths = [f"img/{i}.png" for i in range(7)]
    scores, maps = rng.uniform(0, 100, 7), rng.uniform(0, 3, (7, 8, 4, 4)).astype(np.float32)
    write_targets(tmp_path, paths, scores, maps, shard_size=3)
    t = Targets(tmp_path)
    assert t.map_size == 4 and t.paths == paths and len(list(tmp_path.glob("shard-*.safetensors"))) == 3
    assert np.allclose([t.scores[p] for p in paths], scores, atol=1e-4)  # float32 scores
    for i in (6, 0, 4):  # out of shard order on purpose
        m = t.map(paths[i])
        assert m.dtype == np.float32 and m.shape == (8, 4, 4)
        assert np.allclose(m, maps[i], atol=3e-3)  # float16 storage: relative error 2^-11 on values < 3
    with pytest.raises(ModelLoadError, match="no teacher target"):
        t.map("other.png")


@pytest.mark.parametrize("name", ["teacher.toml", "teacher-demo.toml"])
def test_recipes_load(name):
    from pathlib import Path

    from dpiqa_edge.config import load_config
    from dpiqa_edge.teacher.train import TeacherRunConfig

    cfg = load_config(TeacherRunConfig, Path(__file__).parents[1] / "configs" / name)
    if name == "teacher.toml":  # SPEC's recipe, point by point
        t = cfg.train
        assert (cfg.image_size, cfg.decoder_width, cfg.map_size, cfg.sample_latents) == (512, 512, 64, True)
        assert (t.lr, t.batch_size, t.epochs, t.milestones, t.gamma, t.mixed_precision) == (1e-5, 16, 30, (5,), 0.2, "fp16")
    else:
        assert (cfg.image_size, cfg.decoder_width, cfg.map_size) == (128, 64, 16)


def test_gpu_bench_worker_times_a_real_training_step_in_its_own_process(monkeypatch):
    # The worker behind `bench teacher_gpu`, run here on the CPU with tiny configs: the same code path
    # (accelerate mixed precision, Adam, latents from VAE moments) in a child process, as on the GPU.
    from dpiqa_edge.bench import teacher_gpu as tbench

    r = tbench._worker(dict(mode="train", precision="bf16", batch=2, size=64, repeat=2, warmup=1, device="cpu",
                            tiny=True), timeout=120)
    assert "error" not in r, r
    assert r["finite"] and len(r["seconds"]) == 2 and all(t > 0 for t in r["seconds"])
    assert r["params_trainable"] > 1e6 and r["mode"] == "train" and r["precision"] == "bf16"
    # Without CUDA the GPU benchmark measures nothing (None: the harness keeps the stored GPU section).
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert tbench.bench_teacher_gpu(quick=True) is None
