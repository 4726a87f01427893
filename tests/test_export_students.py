"""Every student family converts with defaults: one fp32 ONNX export each of ``paper`` (the authors' B7)
and two other timm students (MobileNetV3-Large, RepViT - the latter reparameterized for export), each
verified against torch by the export's own parity check and again here through the runtime loader.

Sizes: 64 px input, B7 at 96 px (a 3 x 3 last grid; at 64 px its 2 x 2 grid makes the random-init
stand-in so ill-conditioned that torch alone moves 2.5e-3 between batch sizes), 4 x 4 map.
B7 dominates the time (building 64M random-init parameters and tracing ~800 ops: ~15-20 s here).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from dpiqa_edge.export import export_model  # noqa: E402
from dpiqa_edge.export.parity import TOLERANCES  # noqa: E402
from dpiqa_edge.export.source import NOISE_FACTOR  # noqa: E402
from dpiqa_edge.runtime.backends import load_backend  # noqa: E402

from test_export import make_student, manifest  # noqa: E402,F401  (fixture reused)


@pytest.mark.parametrize("name, size, fused", [("paper", 96, False), ("timm:mobilenetv3_large_100", 64, False),
                                               ("timm:repvit_m0_9", 64, True)])
def test_student_exports_to_onnx_fp32(tmp_path, manifest, name, size, fused):  # noqa: F811
    student = make_student(tmp_path / "runs", name, manifest, size=size)
    out = export_model(student, "onnx", out_dir=tmp_path / "exp", log=None)
    record = json.loads((out / "export.json").read_text())
    assert record["parity"]["passed"] is True and record["metadata"]["student"] == name
    assert record["conversion"]["reparameterized"] is fused
    # the numbers: the export's own check (runtime loader vs torch at batch 1, on the manifest's test
    # images) within the declared fp32 tolerance, and scores that really vary across those images
    tol = TOLERANCES[("onnx", "fp32")]
    (check,) = record["parity"]["checks"]
    assert record["parity"]["n_images"] == 6 and check["score"]["max_abs_diff"] <= tol.score
    noise = record["parity"]["source_noise"]["score"]  # what torch moves by itself (batch size, threads)
    assert check["quality_map"]["ok"] and record["parity"]["tolerance"]["score"] == pytest.approx(max(tol.score, NOISE_FACTOR * noise))
    s, _ = load_backend(out).run(load_backend(out).preprocess.batch(_photos()))
    assert np.isfinite(s).all() and np.ptp(s) > 5


def _photos():
    from dpiqa_edge.export.parity import package_photos

    return [img for _, img in package_photos()]
