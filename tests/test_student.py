"""Students: build from the explicit factory, run at two input sizes, round-trip save/load exactly."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from dpiqa_edge.errors import ConfigError, ModelLoadError  # noqa: E402
from dpiqa_edge.student import StudentConfig, build_student, complexity, load_student, save_student  # noqa: E402

# Tiny maps keep the paper's flatten head small (8*8*8 inputs) while keeping its structure.
CASES = [
    StudentConfig(name="paper", input_size=64, map_size=8, head_hidden=32),
    StudentConfig(name="lite0", input_size=64, map_size=8),
    StudentConfig(name="timm:mobilenetv3_small_050", input_size=64, map_size=4),
]


@pytest.mark.parametrize("cfg", CASES, ids=lambda c: c.name)
def test_student_runs_at_two_sizes_and_round_trips(cfg, tmp_path):
    torch.manual_seed(0)
    model = build_student(cfg)
    with torch.no_grad():  # perturb the zero-initialised last layer so scores differ per image
        for p in model.head.parameters():
            p.add_(0.01 * torch.randn_like(p))
    model.eval()
    x = {s: torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(s)) for s in (64, 96)}
    with torch.no_grad():
        outs = {s: model(v) for s, v in x.items()}
    for s, (score, qmap) in outs.items():
        assert score.shape == (2,) and qmap.shape == (2, 8, cfg.map_size, cfg.map_size), s
        assert torch.isfinite(score).all() and (score >= 0).all() and (score <= 100).all()
        assert (qmap >= 0).all()  # ReLU'd map, like the teacher's F_quality
    save_student(model, cfg, tmp_path / "s", run="test")
    meta = json.loads((tmp_path / "s" / "config.json").read_text())
    assert meta["model_type"] == "dpiqa_student" and meta["preprocessing"]["size"] == [64, 64]
    assert meta["provenance"] == {"run": "test"}
    loaded, cfg2 = load_student(tmp_path / "s")
    assert cfg2 == cfg.resolved() and not loaded.training
    with torch.no_grad():
        score, qmap = loaded(x[96])
    # Same weights, same ops, same thread: bit-identical, 0 tolerance.
    assert torch.equal(score, outs[96][0]) and torch.equal(qmap, outs[96][1])


def test_paper_head_follows_map_size():
    model = build_student(StudentConfig(name="paper", map_size=6, head_hidden=16))
    assert model.head.fc1.in_features == 8 * 6 * 6
    assert isinstance(model.map_branch, torch.nn.ConvTranspose2d) and model.backbone.channels == 2560  # SPEC


def test_edge_head_has_no_wide_linear():
    model = build_student(StudentConfig(name="lite0", map_size=64, pretrained=False))
    widest = max(m.in_features for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert widest <= 1280 + 8  # pooled features, never 8*64*64 = 32,768


def test_one_table_names_the_student_families():
    # STUDENT_FAMILIES is the one list: validation, the CLI help and the builders all follow it
    from dpiqa_edge.distill.commands import distill
    from dpiqa_edge.student.config import STUDENT_FAMILIES, STUDENT_NAMES, student_family
    from dpiqa_edge.student.models import BUILDERS

    assert set(BUILDERS) == set(STUDENT_FAMILIES) == {"paper", "lite0", "timm"}
    assert STUDENT_NAMES == ("paper", "lite0", "timm:NAME")
    assert {c.name.partition(":")[0] for c in CASES} == set(STUDENT_FAMILIES)  # every family is built above
    help_text = next(p.help for p in distill.params if p.name == "student")
    assert help_text.startswith(" | ".join(STUDENT_NAMES) + "  ")
    for name, family in [("paper", "paper"), ("lite0", "lite0"), ("timm:resnet18", "timm")]:
        assert student_family(name).name == family
        assert StudentConfig(name=name).name == name
    for bad in ("resnet", "timm", "timm:", "paper:b7", "lite0:", ""):
        assert student_family(bad) is None
        with pytest.raises(ConfigError, match=f"unknown name {bad!r}; valid: paper, lite0, timm:NAME"):
            StudentConfig(name=bad)


def test_bad_configs_and_checkpoints_fail_clearly(tmp_path):
    with pytest.raises(ConfigError, match="unknown name"):
        StudentConfig(name="resnet")
    with pytest.raises(ConfigError, match="timm has no model"):
        build_student(StudentConfig(name="timm:not_a_model_xyz"))
    with pytest.raises(ModelLoadError, match="not found"):
        load_student(tmp_path / "nothing")
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "config.json").write_text('{"model_type": "dpiqa_teacher"}')
    with pytest.raises(ModelLoadError, match="dpiqa_teacher"):
        load_student(tmp_path / "t")
    cfg = StudentConfig(name="timm:mobilenetv3_small_050", input_size=64, map_size=4)
    save_student(build_student(cfg), cfg, tmp_path / "cut")
    w = tmp_path / "cut" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:1000])  # truncated weights
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        load_student(tmp_path / "cut")


def test_complexity_counts_params_and_macs():
    cfg = StudentConfig(name="lite0", map_size=8, pretrained=False)
    c = complexity(cfg, size=224)
    # Lite0's backbone is ~3.4M params without its classifier and ~0.39 GMACs at 224 (published 407M
    # FLOPs-as-MACs incl. the classifier); heads add little. 10% bands absorb head and counting choices.
    assert 3.3e6 < c["params"] < 3.9e6
    assert 0.35 < c["gmacs"] < 0.45


def test_paper_student_is_torchvision_layout_and_splits_by_stage():
    """The paper student holds the authors' module tree (``backbone.model`` = torchvision EfficientNet with
    parameter-free pooling/classifier) and its frozen-stage cache path computes the same outputs."""
    torch.manual_seed(0)
    cfg = StudentConfig(name="paper", variant="b0", input_size=64, map_size=4, head_hidden=16)
    model = build_student(cfg).eval()
    keys = list(model.state_dict())
    assert keys[0] == "backbone.model.features.0.0.weight" and not any(".classifier." in k or ".avgpool." in k for k in keys)
    assert cfg.resolved().map_resize == "nearest" and cfg.resolved().normalize == "none" and not model.normalise
    frozen = model.freeze(2)
    assert frozen == ["backbone.model.features.0", "backbone.model.features.1", "backbone.model.features.2"]
    model.eval()
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole, cached = model(x), model(model.prefix(x, 2), start_stage=2)
    # same ops in the same order: bit-identical
    assert torch.equal(whole[0], cached[0]) and torch.equal(whole[1], cached[1])
