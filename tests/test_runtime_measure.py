"""The runtime's bench functions run and report sane numbers (speed itself is judged in BENCHMARKS.md)."""

from __future__ import annotations

from _runtime_models import export_onnx, use_stand_in_loader
from dpiqa_edge.bench.runtime import folder_throughput, gate_memory, make_folder


def test_folder_throughput_and_gate_memory(tmp_path, monkeypatch):
    use_stand_in_loader(monkeypatch)
    art = export_onnx(tmp_path / "m.onnx")
    folder = make_folder(tmp_path / "imgs", 6, shape=(48, 64))
    rows = folder_throughput(art, folder, batch_sizes=(1, 4), threads=1, repeat=1)
    assert [r["batch_size"] for r in rows] == [1, 4]
    assert all(r["images"] == 6 and r["errors"] == 0 and r["images_per_s"] > 0 for r in rows)
    mem = gate_memory(art, frames=120, warmup=40, frame_shape=(60, 80), sample_every=20)
    assert sum(mem["verdicts"].values()) == 120
    # 80 small frames cannot grow memory by anything near 50 MB unless frames are being retained
    assert mem["passed"] and mem["rss_end_mb"] > 0
