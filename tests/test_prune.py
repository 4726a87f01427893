"""Structured pruning keeps a student runnable, exportable at two input sizes, and rebuildable from
safetensors through its width map (no pickles)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_pruning")

from dpiqa_edge.errors import ConfigError, ModelLoadError  # noqa: E402
from dpiqa_edge.student import StudentConfig, build_student, load_student, save_student  # noqa: E402
from dpiqa_edge.student.widths import apply_widths, record_widths  # noqa: E402

SIZE = 64

# The two student layouts: the edge one (3x3 conv map branch + pooled head) and SPEC's (deconv + MLP head).
LAYOUTS = {
    "edge": dict(map_branch="conv", head="pool", head_hidden=16),
    "spec": dict(map_branch="deconv", head="mlp", head_hidden=16),
}


def _student(layout: str):
    torch.manual_seed(0)
    cfg = StudentConfig(name="lite0", input_size=SIZE, map_size=4, pretrained=False, **LAYOUTS[layout])
    return build_student(cfg).eval(), cfg


def _conv_widths(model) -> dict[str, int]:
    return {n: m.out_channels for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_pruned_student_runs_reloads_and_exports_at_two_sizes(layout, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    from dpiqa_edge.quantize.prune import model_cost, prune_model

    model, cfg = _student(layout)
    before_cost, before = model_cost(model, SIZE), _conv_widths(model)
    changed = prune_model(model, 0.3, SIZE, round_to=8)  # the tiny layouts' 16-32 channel layers need 8

    # 1. Channels really went, in multiples of 8, and the cost fell accordingly.
    after = _conv_widths(model)
    assert changed and all(a % 8 == 0 and a < b for b, a in changed.values())
    cost = model_cost(model, SIZE)
    assert cost["params"] < 0.8 * before_cost["params"] and cost["gmacs"] < 0.8 * before_cost["gmacs"]
    # 2. Protected: the map branch still makes 8 channels; the head's hidden width is untouched.
    assert after["map_branch"] == 8 and before["map_branch"] == 8
    assert model.head.fc1.out_features == 16
    assert after["backbone.model.conv_stem"] == 24  # 32 * 0.7 = 22.4 -> nearest multiple of 8, not floor (16)

    # 3. Runs and reloads exactly from safetensors + widths.
    x = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        score, qmap = model(x)
    assert score.shape == (2,) and qmap.shape == (2, 8, 4, 4)
    save_student(model, cfg.__class__(**{**cfg.to_dict(), "widths": record_widths(model)}), tmp_path / "pruned")
    loaded, loaded_cfg = load_student(tmp_path / "pruned")
    assert loaded_cfg.widths
    with torch.no_grad():
        torch.testing.assert_close(loaded(x)[0], score, rtol=0, atol=1e-5)  # same weights, same graph

    # 4. Exports to ONNX at two input sizes and matches torch there (float32 kernels: 1e-3 on 0-100).
    for size in (SIZE, 96):
        xs = torch.rand(1, 3, size, size)
        path = tmp_path / f"pruned-{size}.onnx"
        torch.onnx.export(loaded, (xs,), str(path), input_names=["image"], output_names=["score", "quality_map"],
                          dynamo=False)
        sess = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run(["score"], {"image": xs.numpy()})[0]
        with torch.no_grad():
            np.testing.assert_allclose(got, loaded(xs)[0].numpy(), atol=1e-3)


def test_taylor_importance_uses_the_loss_gradient():
    from dpiqa_edge.distill.config import DistillConfig
    from dpiqa_edge.distill.losses import distill_loss
    from dpiqa_edge.quantize.prune import prune_model

    model_m, _ = _student("edge")
    model_t, cfg = _student("edge")
    g = torch.Generator().manual_seed(1)
    batches = [{"x": torch.rand(4, 3, SIZE, SIZE, generator=g), "mos": torch.rand(4, generator=g) * 100,
                "teacher": torch.rand(4, generator=g) * 100, "qmap": torch.rand(4, 8, 4, 4, generator=g),
                "has_map": torch.ones(4, dtype=torch.bool)} for _ in range(2)]
    dcfg = DistillConfig(student=cfg)
    prune_model(model_m, 0.3, SIZE, importance="magnitude")
    prune_model(model_t, 0.3, SIZE, importance="taylor", grad_batches=batches,
                loss_fn=lambda m, b: distill_loss(m, b, dcfg)[0])
    # Same widths (same ratio and rounding) ...
    assert record_widths(model_m) == record_widths(model_t)
    # ... but different channels kept: Taylor ranks by |w * dL/dw|, magnitude by |w|.
    w_m = model_m.backbone.model.conv_stem.weight
    w_t = model_t.backbone.model.conv_stem.weight
    assert w_m.shape == w_t.shape and not torch.equal(w_m, w_t)
    assert all(p.grad is None for p in model_t.parameters())  # gradients cleared after pruning


def test_width_map_errors_are_one_line_model_load_errors():
    model, _ = _student("edge")
    with pytest.raises(ModelLoadError, match="not in the built model"):
        apply_widths(model, {"backbone.nope": [8, 3, 3, 3]})
    with pytest.raises(ModelLoadError, match="rank"):
        apply_widths(model, {"backbone.model.conv_stem": [8, 3]})
    with pytest.raises(ModelLoadError, match="cannot resize"):
        apply_widths(model, {"backbone.model.blocks.0.0": [8]})


@pytest.mark.parametrize("kwargs", [dict(ratio=0.0), dict(ratio=1.0), dict(ratio=0.3, importance="l1"),
                                    dict(ratio=0.3, importance="taylor")])
def test_bad_requests_are_config_errors(kwargs):
    from dpiqa_edge.quantize.prune import prune_model

    model, _ = _student("edge")
    with pytest.raises(ConfigError):
        prune_model(model, size=SIZE, **kwargs)


@pytest.fixture
def tiny_run(tmp_path):
    """A trained-student stand-in (fresh Lite0 at 64 px), a 36-image manifest and teacher targets."""
    from PIL import Image, ImageFilter

    from dpiqa_edge.data.manifest import Row, write_manifest
    from dpiqa_edge.teacher.targets import write_targets

    rng = np.random.default_rng(0)
    rows = []
    for i in range(36):
        blur = i % 6  # MOS falls with blur: a ranking the student can be scored on
        img = Image.fromarray((rng.random((SIZE, SIZE, 3)) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur))
        name = f"img/{i}.png"
        (tmp_path / "img").mkdir(exist_ok=True)
        img.save(tmp_path / name)
        rows.append(Row(name, 90.0 - 15 * blur + rng.normal(0, 2), "train" if i < 24 else "val" if i < 30 else "test"))
    manifest = write_manifest(tmp_path / "manifest.csv", rows)
    write_targets(tmp_path / "targets", [r.path for r in rows], [r.mos for r in rows],
                  rng.random((36, 8, 4, 4)).astype(np.float16))
    model, cfg = _student("edge")
    save_student(model, cfg, tmp_path / "student")
    return tmp_path, manifest


@pytest.mark.parametrize("importance", ["magnitude", "taylor"])
def test_prune_student_end_to_end(tiny_run, importance):
    import json

    from dpiqa_edge.quantize.prune import prune_student

    root, manifest = tiny_run
    out = prune_student(root / "student", 0.3, manifest, root / "targets", root / "pruned", importance=importance,
                        finetune_epochs=1, batch_size=8, taylor_batches=1, quiet=True)
    report = json.loads((out / "prune.json").read_text())
    assert report["params_ratio"] < 0.8 and report["gmacs_ratio"] < 0.8
    assert set(report["after"]["srcc"]) == {"val", "test"} and report["after"]["srcc"]["test"]["n"] == 6
    config = json.loads((out / "config.json").read_text())
    assert config["student"]["widths"] and config["provenance"]["prune"]["ratio"] == 0.3
    model, cfg = load_student(out)  # rebuilds from config widths + safetensors alone
    # 32 * 0.7 = 22.4 -> the nearest multiple of the default round_to (16, ORT's x86 int8 depthwise alignment)
    assert model.backbone.model.conv_stem.out_channels == 16 and report["round_to"] == 16
    assert (out / "distill.json").is_file()  # the recovery fine-tune ran through distill()
