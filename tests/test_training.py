"""The shared training loop: checkpoints, best/, exact resume after a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dpiqa_edge.training import LoopConfig, epoch_batches, fit  # noqa: E402

HERE = Path(__file__).resolve().parent


class _Noisy(torch.utils.data.Dataset):
    """Targets are a linear function of x; a random sign flip + noise is the "augmentation"."""

    def __init__(self, n=48):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(n, 6, generator=g)
        self.y = self.x @ torch.linspace(-1, 1, 6)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = self.x[i] + 0.05 * torch.randn(6)  # drawn from the global RNG the loop seeds per item
        return {"x": x, "y": self.y[i] + float(np.random.uniform(-0.01, 0.01))}


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1))


def _loss(model, batch):
    pred = model(batch["x"]).squeeze(1)
    return torch.nn.functional.mse_loss(pred, batch["y"].float()), pred, batch["y"]


def _eval(model):
    from scipy.stats import spearmanr

    ds = _Noisy()
    pred = model(ds.x).squeeze(1)
    return {"srcc": float(spearmanr(pred.numpy(), ds.y.numpy()).statistic)}


CFG = dict(epochs=3, batch_size=8, lr=3e-3, milestones=(2,), save_every_steps=1, progress=False, seed=3)


def _run(out: str, slow: float = 0.0) -> None:
    """Entry point of the child process (and of the uninterrupted reference run)."""
    torch.set_num_threads(1)

    def loss(model, batch):
        time.sleep(slow)
        return _loss(model, batch)

    fit(_model(), loss, _Noisy(), out, LoopConfig(**CFG), eval_fn=_eval, config={"what": "test"})


def _child(out, slow):
    code = f"import sys; sys.path.insert(0, {str(HERE)!r}); import test_training as t; t._run({str(out)!r}, {slow})"
    return subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _weights(d):
    from safetensors.torch import load_file

    return load_file(str(Path(d) / "last" / "model.safetensors"))


def test_batches_are_a_function_of_seed_and_epoch():
    cfg = LoopConfig(batch_size=4, seed=1)
    assert epoch_batches(10, cfg, 0) == epoch_batches(10, cfg, 0)
    assert epoch_batches(10, cfg, 0) != epoch_batches(10, cfg, 1)
    assert len(epoch_batches(10, cfg, 0)) == 2  # drop_last: 10 // 4
    assert sorted(i for b in epoch_batches(12, cfg, 0) for i, _ in b) == list(range(12))


def test_fit_writes_last_best_and_learns(tmp_path):
    res = fit(_model(), _loss, _Noisy(), tmp_path, LoopConfig(**{**CFG, "save_every_steps": 0}), eval_fn=_eval)
    assert (tmp_path / "last" / "model.safetensors").is_file() and (tmp_path / "last" / "state.pt").is_file()
    assert json.loads((tmp_path / "best" / "metrics.json").read_text())["srcc"] == pytest.approx(res.best)
    trainer = json.loads((tmp_path / "last" / "trainer.json").read_text())
    assert trainer["epoch"] == 3 and trainer["step"] == 0
    # The lr follows MultiStepLR per epoch: 3e-3 for epochs 1-2, then *0.2.
    assert [h["lr"] for h in res.history] == pytest.approx([3e-3, 6e-4, 6e-4])
    assert res.history[-1]["loss"] < res.history[0]["loss"]  # a linear target is learnable in 3 epochs
    # Re-running a finished run is a no-op that reports the same history.
    again = fit(_model(), _loss, _Noisy(), tmp_path, LoopConfig(**{**CFG, "save_every_steps": 0}), eval_fn=_eval)
    assert again.history == res.history


def test_resume_refuses_a_different_seed(tmp_path):
    from dpiqa_edge.errors import ConfigError

    fit(_model(), _loss, _Noisy(16), tmp_path, LoopConfig(**{**CFG, "epochs": 1}))
    with pytest.raises(ConfigError, match="seed"):
        fit(_model(), _loss, _Noisy(16), tmp_path, LoopConfig(**{**CFG, "epochs": 2, "seed": 4}))


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    _run(str(ref))  # uninterrupted, same seed, single thread like the child

    # 1. A real child process, killed with SIGKILL once it has checkpointed mid-way through epoch 2.
    proc = _child(killed, slow=0.05)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        try:
            t = json.loads((killed / "last" / "trainer.json").read_text())
            if t["epoch"] == 1 and t["step"] >= 2:
                break
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, f"child ended before the kill: {proc.stderr.read().decode()[-500:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    t = json.loads((killed / "last" / "trainer.json").read_text())
    assert t["epoch"] in (1, 2) and (t["epoch"] < 3), "the kill must fall before the run ended"

    # 2. Resume in a fresh process to the end.
    proc = _child(killed, slow=0.0)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()[-800:]

    # 3. Same weights to 1e-6 (CPU, one thread: the same float ops in the same order; the tolerance only
    #    absorbs the printing-free float32 round trip through safetensors, which is exact anyway).
    a, b = _weights(ref), _weights(killed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6, rtol=0), k
    ha = json.loads((ref / "history.json").read_text())
    hb = json.loads((killed / "history.json").read_text())
    assert [h["srcc"] for h in ha] == pytest.approx([h["srcc"] for h in hb], abs=1e-6)
