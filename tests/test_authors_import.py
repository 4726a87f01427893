"""The DP-IQA authors' released models come in, in every released form, and go down the road.

Replicas of their student and teacher (``_authors_replica``: their module layout and class paths, random
init, tiny: EfficientNet-b0 at 64 px with an 8 x 8 map; diffusers' tiny SD configs) are saved as the
authors released them - ONNX, state dict, whole-module pickle under ``iqa_models.*`` - and the replica
package is removed from ``sys.path`` before anything is imported, so the importer cannot lean on it.

Tolerances: 1e-4 on the 0-100 scale (the issue's bar); maps 1e-4 relative to their peak. Each replica's
scores are checked to spread over the photos, so agreement cannot come from constant outputs.

* The ONNX export folds BatchNorm into the convolutions in float32, so an ONNX file is not bit-equal to
  the module it came from: on these random-init replicas torch's own fold moves scores by 1e-4 to 1e-2
  (measured over 4 seeds; ill-conditioned nets, every image close to every other). The importer cannot
  undo rounding inside the file, so the replica student's recalibrated BatchNorms are folded into its
  convolutions *before* any form is saved (BN left as y = x + b, exactly representable): the export's
  fold is then exact and 1e-4 tests the importer alone - order, shapes, the un-folding, the biases.
* The ONNX-only route runs the authors' graph itself: its reference is onnxruntime on the released file.
* The teacher: the authors' latent is a VAE *sample*; the replica's posterior std is pinned to exp(-15).
  Its scores are held to ``TEACHER_TOL`` (5e-4), not 1e-4: the tiny random UNet turns float32 rounding
  into ~1e-4 on 0-100, so 1e-4 measured the CPU, not the importer. Measured on an AVX2 CPU (no AVX-512;
  the test had passed on an AVX-512 host): the imported teacher vs the replica's reference 1.37e-4; the
  same imported teacher run with 2 threads instead of 1 moved by 1.3e-4, with oneDNN off by 2.1e-4, a
  VAE sample instead of the mean (the replica's own step, std 3e-7) by 1.0-2.1e-4 over 3 seeds; a float64
  run sits 1.3e-4 from ours and 1.5e-4 from the reference. All float noise; an importer error (a wrong
  block order, a lost bias) moves scores by points on these 60-point-spread scores, and the quality map
  (no VAE sample in its scale) still agrees within 1e-4 of its peak.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("diffusers")

import _authors_replica as replica  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from dpiqa_edge.cli import main  # noqa: E402

SIZE, MAP = 64, 8
TOL = 1e-4  # on 0-100 (scores) and relative to max(1, peak) (maps)
TEACHER_TOL = 5e-4  # the teacher's scores: float32 noise of its UNet measured at up to 2.1e-4 (module doc)
LEVELS = ((0, 80.0), (4, 20.0))  # (Gaussian blur radius, MOS): clean and heavily blurred


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """The 7 package photos at 64 px, clean (MOS 80) and heavily blurred (MOS 20); val = 4 scenes, test = 3.

    Two label levels, tied within a level: the INT8 gates here judge what a random-init stand-in can
    carry - keeping clean above blurred - while its within-level order (noise) may legitimately reshuffle."""
    from PIL import Image, ImageFilter

    from dpiqa_edge.data.manifest import Row, write_manifest
    from dpiqa_edge.export.parity import package_photos

    root = tmp_path_factory.mktemp("blur-set")
    rows = []
    for i, (_, rgb) in enumerate(package_photos()):
        im = Image.fromarray(rgb).resize((SIZE, SIZE), Image.BILINEAR)
        for radius, mos in LEVELS:
            (im.filter(ImageFilter.GaussianBlur(radius)) if radius else im).save(root / f"{i}_{radius}.png")
            rows.append(Row(f"{i}_{radius}.png", mos, "val" if i < 4 else "test", scene=str(i)))
    return write_manifest(root / "manifest.csv", rows)


def _recalibrate(model, x) -> None:
    """Stand-in for training, part 1: BN statistics from the images (cumulative), so features depend on them;
    then every residual branch's output scaled by 0.1. Trained EfficientNets keep those branches small; at
    random init each block adds full-size noise, and INT8 rounding, amplified through 16 blocks, moved the
    stand-in's scores by ~90 points (0-100), burying any ranking; scaled, OpenVINO and ORT INT8 keep it."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(x)
        for block in model.modules():
            if type(block).__name__ == "MBConv" and block.use_res_connect:
                block.block[-1][1].weight.mul_(0.1)  # the projection's BatchNorm
                block.block[-1][1].bias.mul_(0.1)
    model.eval()


def _fold_bn(model) -> None:
    """Fold every conv's BatchNorm into the conv (float32), leaving the BN as y = x + bias exactly."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    mods = list(model.modules())
    with torch.no_grad():
        for conv, bn in zip(mods, mods[1:]):
            if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
                w, b = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps,
                                            bn.weight, bn.bias)
                conv.weight.copy_(w)
                bn.weight.fill_(1.0), bn.bias.copy_(b), bn.running_mean.zero_()
                bn.running_var.fill_(float(np.float32(1.0) - np.float32(bn.eps)))  # var + eps == 1 in float32


def _train_stand_in(model, fc1, fc2, fc3, x, y) -> None:
    """Stand-in for training, part 2: the last linear layer fit by ridge regression to the labels ``y``
    (MOS / 100) over the features of ``x`` - a trained head's job, so scores follow the labels."""
    with torch.no_grad():
        _, fmap = model(x)
        h = torch.relu(fc2(torch.relu(fc1(fmap.flatten(1)))))
        hc, yc = h - h.mean(0), y - y.mean()
        ridge = 0.1 * float((hc ** 2).sum(0).mean())
        w = torch.linalg.solve(hc.T @ hc + ridge * torch.eye(hc.shape[1]), hc.T @ yc)
        fc3.weight.copy_(w[None])
        fc3.bias.fill_(float(y.mean() - h.mean(0) @ w))


@pytest.fixture(scope="module")
def released(tmp_path_factory, manifest):
    """Every released form of a replica student and teacher, and the replicas' own outputs on real photos."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTokenizer

    from dpiqa_edge.teacher.loading import tiny_configs, write_random_sd_folder
    from dpiqa_edge.teacher.prompts import save_prompt_embeddings, tiny_clip

    root = tmp_path_factory.mktemp("authors")
    replica.install(root / "pkg")
    from iqa_models.dpiqa import DPIQA, UNet
    from iqa_models.student import StudentEfficientNet

    from dpiqa_edge.data.manifest import read_manifest
    from dpiqa_edge.runtime.preprocess import Preprocess

    rows = read_manifest(manifest)
    x = train_x = torch.from_numpy(Preprocess(size=(SIZE, SIZE)).batch([r.abspath for r in rows]))
    train_y = torch.tensor([r.mos / 100.0 for r in rows])
    out = {"x": x.numpy()}  # the outputs compared below: every manifest image, clean and blurred
    # 1. Student: b0 at 64 px, "trained" by BN recalibration and a fitted head, BN folded (module docstring).
    torch.manual_seed(0)
    student = StudentEfficientNet("efficientnet_b0", map_size=MAP, hidden=64)
    _recalibrate(student, train_x)
    _fold_bn(student)
    _train_stand_in(student, student.fc1, student.fc2, student.fc3, train_x, train_y)
    with torch.no_grad():
        raw, fmap = student(x)
    out["student_ref"] = (raw.numpy().reshape(-1), fmap.numpy())
    torch.save(student.state_dict(), root / "koniq_student_model_plcc_best.pth")
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in student.state_dict().items()}, str(root / "student.safetensors"))
    torch.save(student, root / "koniq_student_model_pack.pth")
    _export_onnx(student, x, root / "student_model.onnx")
    # 2. A student whose backbone is no torchvision size (half b0's depth): its ONNX cannot be mapped.
    from torchvision.models.efficientnet import EfficientNet, _efficientnet_conf

    odd = StudentEfficientNet("efficientnet_b0", map_size=MAP, hidden=64)
    odd.base_model = EfficientNet(_efficientnet_conf("efficientnet_b0", width_mult=1.0, depth_mult=0.5)[0], 0.2)
    odd.base_model.avgpool, odd.base_model.classifier = torch.nn.Identity(), torch.nn.Identity()
    _recalibrate(odd, train_x)
    _train_stand_in(odd, odd.fc1, odd.fc2, odd.fc3, train_x, train_y)
    _export_onnx(odd, x, root / "odd_student.onnx")
    from dpiqa_edge.authors.student import run_onnx

    out["odd_ref"] = run_onnx(root / "odd_student.onnx", x.numpy())[0]  # the graph as released, by onnxruntime
    # 3. Teacher: tiny SD parts, the tokenizer it carries, a near-deterministic VAE posterior.
    torch.manual_seed(1)
    cfg = tiny_configs()
    vae, unet = AutoencoderKL.from_config(cfg["vae"]), UNet.from_config(cfg["unet"])
    tokenizer = CLIPTokenizer.from_pretrained(tiny_clip(root / "clip"))
    prompts = torch.randn(1485, cfg["unet"]["cross_attention_dim"])
    teacher = DPIQA(vae, unet, tokenizer, prompts, width=16, map_size=MAP, adapter_blocks=1).eval()
    with torch.no_grad():
        latent = vae.config.latent_channels
        vae.quant_conv.weight[latent:] = 0.0  # logvar half: -60 (clamped to -30 by diffusers) -> std 3e-7
        vae.quant_conv.bias[latent:] = -60.0
        qfd = teacher.QFD
        for m in (qfd.conv1, qfd.conv2, qfd.conv3, qfd.conv4, qfd.fuse_conv, qfd.conv_score1, qfd.conv_score2,
                  qfd.conv_score3, qfd.fc1, qfd.fc2):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # a dead ReLU chain would score constant
    _train_stand_in(teacher, qfd.fc1, qfd.fc2, qfd.fc3, train_x, train_y)
    with torch.no_grad():
        raw, fq = teacher(x)
    out["teacher_ref"] = (raw.numpy().reshape(-1), fq.numpy())
    torch.save(teacher, root / "koniq_teacher_model_pack.pth")
    torch.save(teacher.state_dict(), root / "koniq_model_plcc_best.pth")
    save_prompt_embeddings(prompts, root / "prompts.safetensors")
    write_random_sd_folder(root / "tiny-sd", cfg)  # configs for the state-dict form
    replica.uninstall(root / "pkg")
    assert "iqa_models" not in sys.modules
    out["root"] = root
    return out


def _export_onnx(model, x, path: Path) -> None:
    """As the authors' demo reads it: input ``input``, (score, feature map), dynamic batch, BN folded."""
    import onnx

    model.eval()
    axes = {n: {0: "batch"} for n in ("input", "score", "feature_map")}
    with torch.no_grad():
        torch.onnx.export(model, (x[:1],), str(path), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["score", "feature_map"], dynamic_axes=axes, do_constant_folding=True)
    assert not any(n.op_type == "BatchNormalization" for n in onnx.load(str(path)).graph.node)  # folded


def _scores(model, x):
    with torch.no_grad():
        s, q = model(torch.from_numpy(x))
    return s.numpy().reshape(-1), q.numpy()


def _close(ours, ref_scores, ours_map, ref_map, score_tol=TOL):
    assert np.ptp(ref_scores) > 5, "the replica must score the photos differently"
    assert np.max(np.abs(ours - ref_scores)) <= score_tol
    assert np.max(np.abs(ours_map - ref_map)) <= TOL * max(1.0, float(np.abs(ref_map).max()))


@pytest.mark.parametrize("form", ["koniq_student_model_plcc_best.pth", "student.safetensors",
                                  "koniq_student_model_pack.pth", "student_model.onnx"])
def test_student_imports_from_every_released_form(released, tmp_path, form):
    from dpiqa_edge.student import load_student

    res = CliRunner().invoke(main, ["import", str(released["root"] / form), "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert "iqa_models" not in sys.modules  # read without the authors' code
    model, cfg = load_student(tmp_path / "s")
    assert (cfg.name, cfg.variant, cfg.input_size, cfg.map_size, cfg.head_hidden) == ("paper", "b0", SIZE, MAP, 64)
    assert (cfg.normalize, cfg.map_resize, cfg.score_scale, cfg.score_offset) == ("none", "nearest", 100.0, 0.0)
    raw, fmap = released["student_ref"]
    ours, qmap = _scores(model, released["x"])
    _close(ours, np.clip(100.0 * raw, 0, 100), qmap, fmap)
    notes = json.loads((tmp_path / "s" / "config.json").read_text())["provenance"]["imported"]
    assert notes["form"] == ("onnx" if form.endswith(".onnx") else
                             "whole_module_pickle" if "pack" in form else "state_dict")
    assert notes["photos"]["input_max_abs_diff"] < 1e-6  # same PIL bilinear resize as torchvision's on PIL
    if form.endswith(".onnx"):
        assert notes["onnx_verification"]["passed"] and notes["onnx_mapping"]["batchnorm_unfolded_from_conv"] > 40


def test_paper_student_is_the_authors_layout(released):
    """Their state dict, renamed by the four prefixes only, loads strictly into a fresh ``paper`` build."""
    from dpiqa_edge.authors.student import RENAME
    from dpiqa_edge.student import StudentConfig, build_student

    theirs = torch.load(released["root"] / "koniq_student_model_plcc_best.pth", weights_only=True)
    model = build_student(StudentConfig(name="paper", variant="b0", input_size=SIZE, map_size=MAP, head_hidden=64))
    renamed = {next(t + k[len(f):] for f, t in RENAME if k.startswith(f)): v for k, v in theirs.items()}
    assert model.load_state_dict(renamed, strict=True) is not None
    assert set(renamed) == set(model.state_dict())


def test_label_range_maps_scores(released, tmp_path):
    """--label-range 1,5: the authors' output r = MOS/100 with MOS on 1-5 -> (100 r - 1) / 4 * 100."""
    from dpiqa_edge.authors.importer import import_authors
    from dpiqa_edge.student import load_student

    import_authors(released["root"] / "student.safetensors", tmp_path / "s", label_range=(1.0, 5.0), log=None)
    model, cfg = load_student(tmp_path / "s")
    assert (cfg.score_scale, cfg.score_offset) == (2500.0, -25.0)
    raw, _ = released["student_ref"]
    ours, _ = _scores(model, released["x"])
    assert np.max(np.abs(ours - np.clip(2500.0 * raw - 25.0, 0, 100))) <= TOL * 25


def test_teacher_pack_and_state_dict_import(released, tmp_path):
    from dpiqa_edge.teacher.model import load_teacher

    root = released["root"]
    runs = [["import", str(root / "koniq_teacher_model_pack.pth"), "--out", str(tmp_path / "pack")],
            ["import", str(root / "koniq_model_plcc_best.pth"), "--out", str(tmp_path / "sd"), "--kind", "teacher",
             "--sd-path", str(root / "tiny-sd"), "--prompt-embeddings", str(root / "prompts.safetensors")]]
    raw, fq = released["teacher_ref"]
    for args in runs:
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        teacher = load_teacher(args[3])
        assert teacher.config.reference_decoder and teacher.config.vae_input_range == "0,1"
        ours, fmap = _scores(teacher, released["x"])
        _close(ours, 100.0 * raw, fmap, fq, score_tol=TEACHER_TOL)
    notes = json.loads((tmp_path / "pack" / "config.json").read_text())["provenance"]["imported"]
    assert notes["prompt_embeddings"].startswith("the pack") and len(notes["dropped_unused"]) == 7  # bnc1 x5, classifier_dist x2
    # without a prompt matrix a state dict cannot be imported: one line, exit 2
    res = CliRunner().invoke(main, ["import", str(root / "koniq_model_plcc_best.pth"), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--prompt-embeddings" in res.output and not (tmp_path / "x").exists()


def test_wrong_kind_and_foreign_files_fail_in_one_line(released, tmp_path):
    root = released["root"]
    res = CliRunner().invoke(main, ["import", str(root / "student.safetensors"), "--out", str(tmp_path / "a"),
                                    "--kind", "teacher"])
    assert res.exit_code == 2 and "holds the authors' student" in res.output
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07garbage")
    for name in ("other.safetensors", "broken.onnx"):
        res = CliRunner().invoke(main, ["import", str(tmp_path / name), "--out", str(tmp_path / "b")])
        assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1 and name in res.output
        assert not (tmp_path / "b").exists()


# -- down the road: export (parity + gate), check, teacher score, report, prune ------------------------
@pytest.fixture(scope="module")
def imported(released, tmp_path_factory):
    from dpiqa_edge.authors.importer import import_authors

    root = tmp_path_factory.mktemp("imported")
    import_authors(released["root"] / "koniq_student_model_pack.pth", root / "student", log=None)
    import_authors(released["root"] / "koniq_teacher_model_pack.pth", root / "teacher", log=None)
    return root


@pytest.fixture(scope="module")
def exports(imported, manifest):  # noqa: F811
    from dpiqa_edge.export import export_model

    ex = imported / "exports"
    common = dict(parity_data=manifest, log=None)
    return {
        "onnx-fp32": export_model(imported / "student", "onnx", out_dir=ex / "onnx-fp32", **common),
        "openvino-int8": export_model(imported / "student", "openvino", "int8", out_dir=ex / "openvino-int8",
                                      calib=manifest, **common),
        "coreml-fp32": export_model(imported / "student", "coreml", out_dir=ex / "coreml-fp32", **common),
    }


@pytest.mark.parametrize("name", ["onnx-fp32", "openvino-int8", "coreml-fp32"])
def test_imported_student_exports_with_parity_and_gate(exports, name):
    from dpiqa_edge.export.parity import TOLERANCES

    record = json.loads((exports[name] / "export.json").read_text())
    target, precision = name.split("-")
    assert record["metadata"]["student"] == "paper" and record["metadata"]["preprocessing"]["size"] == [SIZE, SIZE]
    tol = TOLERANCES[(target, precision)]
    if tol.score is not None:  # float: parity within the declared tolerance
        assert record["parity"]["passed"] is True
        assert max(c["score"]["max_abs_diff"] for c in record["parity"]["checks"]) <= tol.score
    else:  # INT8: measured only; the accuracy gate ran on the held-out test split and passed
        assert record["accuracy_gate"]["passed"] is True and record["accuracy_gate"]["n"] >= 3


def test_imported_student_prunes(imported, manifest, tmp_path):  # noqa: F811
    """30% of the channels out, one recovery epoch on MOS (the val photos serve as train here)."""
    from dpiqa_edge.data.manifest import read_manifest, write_manifest
    from dpiqa_edge.quantize.prune import prune_student
    from dpiqa_edge.student import load_student

    rows = [dataclasses.replace(r, path=r.abspath, split="train" if r.split == "val" else "val")
            for r in read_manifest(manifest)]
    recipe = write_manifest(tmp_path / "m.csv", rows)
    out = prune_student(imported / "student", 0.3, recipe, None, tmp_path / "p", finetune_epochs=1, batch_size=4,
                        quiet=True)
    model, cfg = load_student(out)
    assert cfg.widths and cfg.variant == "b0" and cfg.score_scale == 100.0
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in load_student(imported / "student")[0].parameters())


@pytest.fixture(scope="module")
def onnx_only(released, manifest, tmp_path_factory):  # noqa: F811
    """The unmappable ONNX imported as it is, exported to ONNX INT8 (gate) and OpenVINO fp32 (parity)."""
    from dpiqa_edge.export import export_model

    root = tmp_path_factory.mktemp("onnx-only")
    res = CliRunner().invoke(main, ["import", str(released["root"] / "odd_student.onnx"), "--out", str(root / "s")])
    assert res.exit_code == 0 and "cannot be mapped" in res.output, res.output
    common = dict(parity_data=manifest, log=None)
    return {"dir": root / "s",
            "onnx-int8": export_model(root / "s", "onnx", "int8", out_dir=root / "onnx-int8", calib=manifest, **common),
            "openvino-fp32": export_model(root / "s", "openvino", out_dir=root / "openvino-fp32", **common)}


def test_unmappable_onnx_is_kept_and_exports_to_onnx_and_openvino_not_coreml(released, onnx_only, tmp_path):
    from dpiqa_edge.errors import ModelLoadError
    from dpiqa_edge.student import load_student

    cfg = json.loads((onnx_only["dir"] / "config.json").read_text())
    assert cfg["weights_format"] == "onnx" and "match no torchvision EfficientNet" in cfg["onnx_only_reason"]
    with pytest.raises(ModelLoadError, match="ONNX-only"):
        load_student(onnx_only["dir"])  # prune / distill get a clear refusal
    model, _ = load_student(onnx_only["dir"], allow_onnx=True)
    ours, _ = _scores(model, released["x"])
    assert np.ptp(released["odd_ref"]) * 100 > 5
    assert np.max(np.abs(ours - np.clip(100.0 * released["odd_ref"], 0, 100))) <= TOL
    gate = json.loads((onnx_only["onnx-int8"] / "export.json").read_text())["accuracy_gate"]
    assert gate["passed"] is True and gate["n"] >= 3
    par = json.loads((onnx_only["openvino-fp32"] / "export.json").read_text())["parity"]
    assert par["passed"] is True  # OpenVINO on the kept graph vs onnxruntime on it, f32 pinned
    res = CliRunner().invoke(main, ["export", "--model", str(onnx_only["dir"]), "--target", "coreml",
                                    "--out", str(tmp_path / "c")])
    assert res.exit_code == 2 and "ONNX graph only" in res.output and len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "c").exists()


def test_imported_models_check_score_and_report(imported, exports, onnx_only, manifest, tmp_path):  # noqa: F811
    """``check`` runs an export; the authors' teacher makes targets; ``report`` compares both students'
    exports (the torch import and the ONNX-only one) against that teacher."""
    from dpiqa_edge.data.manifest import read_manifest, write_manifest
    from dpiqa_edge.report.build import read_teacher_scores
    from dpiqa_edge.runtime.preprocess import Preprocess
    from dpiqa_edge.teacher.model import load_teacher

    runner = CliRunner()
    res = runner.invoke(main, ["check", "--model", str(exports["coreml-fp32"]), "--json", str(manifest.parent)])
    assert res.exit_code in (0, 1), res.output
    lines = [json.loads(line) for line in res.output.splitlines() if line.startswith("{")]
    assert len(lines) == 14 and all(0 <= r["score"] <= 100 for r in lines)
    # the same images with distinct MOS (two tied levels make the report's logistic PLCC fit degenerate)
    rows = [dataclasses.replace(r, path=r.abspath, mos=(75.0 - int(r.scene)) if r.mos > 50 else 35.0 + int(r.scene))
            for r in read_manifest(manifest)]
    data = write_manifest(tmp_path / "report.csv", rows)
    res = runner.invoke(main, ["teacher", "score", "--teacher", str(imported / "teacher"), "--data", str(data),
                               "--out", str(tmp_path / "targets"), "--quiet", "--cpu"])
    assert res.exit_code == 0, res.output
    got = read_teacher_scores(tmp_path / "targets" / "scores.csv")
    want, _ = _scores(load_teacher(imported / "teacher"), Preprocess(size=(SIZE, SIZE)).batch([r.abspath for r in rows]))
    assert np.allclose([got[r.path] for r in rows], want, atol=1e-3) and np.ptp(want) > 1
    res = runner.invoke(main, ["report", "--data", str(data), "--teacher-scores", str(tmp_path / "targets" / "scores.csv"),
                               "--variants", str(exports["openvino-int8"]), str(onnx_only["onnx-int8"]),
                               "--out", str(tmp_path / "report"), "--no-peers", "--bootstrap", "50",
                               "--latency-repeats", "2"])
    assert res.exit_code in (0, 1), res.output
    rep = json.loads((tmp_path / "report" / "report.json").read_text())
    assert len(rep["variants"]) == 2 and all(v["vs_teacher"] for v in rep["variants"])
