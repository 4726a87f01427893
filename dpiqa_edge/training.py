"""The one training loop, shared by teacher training and distillation (accelerate; CPU, one GPU or DDP).

Interface
---------
``fit(model, loss_fn, train_set, out_dir, cfg, *, eval_fn=None, save_fn=None, config=None) -> FitResult``

* ``model``: an ``nn.Module``. Trainable parameters (``requires_grad``) go to Adam.
* ``loss_fn(model, batch) -> loss`` or ``(loss, pred, target)``: ``batch`` is what the default collate
  makes of ``train_set`` items, already moved to the device. When ``pred``/``target`` (1-D, any scale)
  are returned, the progress bar shows the running SRCC of the epoch (NaN targets are skipped).
* ``train_set``: a map-style dataset (``len`` + ``__getitem__(int)``). Augmentations inside it draw from
  torch's, numpy's or python's global RNG; the loop seeds those per item from ``(seed, epoch, step,
  position)`` so a resumed run sees exactly the same augmented batches.
* ``eval_fn(model) -> dict`` run after every epoch (on every process, with the unwrapped model in eval
  mode); ``cfg.best_metric`` (default ``"srcc"``, higher = better) picks ``best/``.
* ``save_fn(model, dir)`` writes a loadable model folder (``config.json`` + ``model.safetensors``) for
  ``best/``; default: ``model.safetensors`` + ``config`` as ``config.json``.
* ``config``: a JSON-able dict (the run's full config) written into every checkpoint.

Outputs under ``out_dir``:
``last/`` (``model.safetensors``, ``state.pt`` = optimizer/scheduler/AMP-scaler state, loaded back with
``weights_only=True``, ``trainer.json`` = epoch, step, best so far, history, and ``config.json``), written
every epoch and every ``cfg.save_every_steps`` optimizer steps; ``best/`` by the eval metric;
``history.json``. Every folder is built under a temporary name and renamed (``dpiqa_edge.io``), so a
SIGKILL at any moment leaves the previous checkpoint whole.

Resume: when ``out_dir/last`` exists (and ``cfg.resume``), training continues from it: same epoch, same
step, same batch order and augmentations, so a killed run ends where an uninterrupted one ends (tested
to 1e-6 on CPU). The epoch's batch order is a permutation drawn from ``(seed, epoch)`` and the batches
before the checkpointed step are skipped, never re-drawn.

Schedule: Adam, ``MultiStepLR(milestones, gamma)`` stepped once per epoch (SPEC's recipe).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import ConfigError, ModelLoadError
from .io import atomic_path, read_json, write_json


@dataclass
class LoopConfig:
    """Settings of :func:`fit` (the ``[train]`` part of a run recipe)."""

    epochs: int = 30  #: passes over ``train_set``
    batch_size: int = 24  #: global batch (split over processes under DDP)
    lr: float = 1e-4  #: Adam learning rate
    weight_decay: float = 0.0  #: Adam L2 weight decay
    milestones: tuple[int, ...] = (5,)  #: MultiStepLR epochs at which lr *= gamma
    gamma: float = 0.2  #: MultiStepLR factor
    seed: int = 0  #: every random draw derives from (seed, epoch, step)
    drop_last: bool = True  #: drop a last partial batch (BatchNorm dislikes a batch of 1)
    grad_clip: float = 0.0  #: max global grad norm; 0 = off
    save_every_steps: int = 0  #: also checkpoint ``last/`` every N steps mid-epoch; 0 = epoch ends only
    mixed_precision: str = "no"  #: accelerate's no | fp16 | bf16 (fp16 is SPEC's GPU recipe)
    cpu: bool = False  #: force CPU even when a GPU is present
    best_metric: str = "srcc"  #: key of eval_fn's dict that picks best/ (higher = better)
    resume: bool = True  #: continue from ``out_dir/last`` when it exists
    progress: bool = True  #: show a tqdm bar (loss, running SRCC)

    def __post_init__(self):
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError(f"train: epochs ({self.epochs}) and batch_size ({self.batch_size}) must be >= 1")
        if self.lr <= 0:
            raise ConfigError(f"train: lr must be > 0, got {self.lr}")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ConfigError(f"train: mixed_precision {self.mixed_precision!r}; valid: no, fp16, bf16")
        self.milestones = tuple(int(m) for m in self.milestones)


@dataclass
class FitResult:
    out_dir: Path
    best_dir: Path | None  #: None when no eval_fn was given
    last_dir: Path
    best: float | None  #: best value of ``cfg.best_metric``
    history: list[dict] = field(default_factory=list)  #: one dict per epoch: loss, eval metrics, lr


def derive_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed that depends on ``seed`` and every key (e.g. epoch, step, item position)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *(int(k) for k in keys)]).generate_state(1)[0])


def epoch_batches(n: int, cfg: LoopConfig, epoch: int) -> list[list[tuple[int, int]]]:
    """The epoch's global batches as lists of ``(dataset index, item seed)``; a function of (seed, epoch)."""
    order = np.random.default_rng(derive_seed(cfg.seed, epoch, 0xBA7C4)).permutation(n)
    bs = cfg.batch_size
    stop = (n // bs) * bs if cfg.drop_last else n
    return [[(int(i), derive_seed(cfg.seed, epoch, b // bs, pos)) for pos, i in enumerate(order[b:b + bs])]
            for b in range(0, stop, bs)]


class _SeededItems:
    """Wraps a dataset: item ``(i, s)`` is ``base[i]`` drawn with the global RNGs seeded by ``s``.

    Seeding and drawing happen in one call, so any prefetching order gives the same items; the
    caller's RNG state is restored afterwards.
    """

    def __init__(self, base):
        self.base = base

    def __len__(self):
        return len(self.base)

    def __getitem__(self, key):
        import torch

        i, s = key
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(s)
                np.random.seed(s)
                random.seed(s)
                return self.base[i]
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


def _running_srcc(pred: list[float], target: list[float]) -> float:
    p, t = np.asarray(pred, float), np.asarray(target, float)
    keep = np.isfinite(t)
    if keep.sum() < 3 or np.ptp(p[keep]) == 0 or np.ptp(t[keep]) == 0:  # undefined: say so, don't warn
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(p[keep], t[keep]).statistic)


def _default_save(model, directory: Path, config: dict | None) -> None:
    from safetensors.torch import save_model

    save_model(model, str(directory / "model.safetensors"))
    write_json(directory / "config.json", config or {})


def _find_last(out_dir: Path) -> Path | None:
    """``last/``, or the previous one if a kill fell between the two renames of a folder swap."""
    last = out_dir / "last"
    if (last / "trainer.json").is_file():
        return last
    olds = sorted(out_dir.glob(".last.old-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    return next((p for p in olds if (p / "trainer.json").is_file()), None)


def _write_last(out_dir, model, optimizer, scheduler, scaler, trainer: dict, config: dict | None) -> Path:
    import torch
    from safetensors.torch import save_model

    with atomic_path(out_dir / "last") as tmp:
        tmp.mkdir()
        save_model(model, str(tmp / "model.safetensors"))
        state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        if scaler is not None:
            state["scaler"] = scaler.state_dict()
        torch.save(state, tmp / "state.pt")
        write_json(tmp / "trainer.json", trainer)
        write_json(tmp / "config.json", config or {})
    return out_dir / "last"


def fit(model, loss_fn: Callable, train_set, out_dir: str | os.PathLike, cfg: LoopConfig, *,
        eval_fn: Callable | None = None, save_fn: Callable | None = None,
        config: dict | None = None) -> FitResult:
    """Train ``model`` (see the module docstring for every argument and the folders written)."""
    import torch
    from accelerate import Accelerator
    from safetensors.torch import load_model
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_fn = save_fn or (lambda m, d: _default_save(m, d, config))

    # 1. Accelerator, optimizer, per-epoch schedule.
    if cfg.mixed_precision == "fp16" and (cfg.cpu or not torch.cuda.is_available()):
        raise ConfigError("train: mixed_precision fp16 needs a GPU; on a CPU use 'no' or 'bf16' "
                          "(--mixed-precision no, or the config's [train] mixed_precision)")
    acc = Accelerator(cpu=cfg.cpu, mixed_precision=cfg.mixed_precision)
    if cfg.batch_size < acc.num_processes:
        raise ConfigError(f"train: batch_size {cfg.batch_size} < {acc.num_processes} processes")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ConfigError("train: the model has no trainable parameters")
    optimizer = torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.milestones), gamma=cfg.gamma)

    # 2. Resume: weights before prepare(), optimizer/scheduler state after.
    epoch, step, best, history = 0, 0, None, []
    last = _find_last(out_dir) if cfg.resume else None
    if last is not None:
        trainer = read_json(last / "trainer.json")
        saved = trainer.get("loop", {})
        for key in ("seed", "batch_size", "drop_last"):
            if key in saved and saved[key] != getattr(cfg, key):
                raise ConfigError(f"{last}: checkpoint was trained with {key}={saved[key]}, now {getattr(cfg, key)}; "
                                  f"use another --out or the same {key}")
        try:
            load_model(model, str(last / "model.safetensors"))
            state = torch.load(last / "state.pt", map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any loader failure is one clear message
            raise ModelLoadError(f"{last}: cannot resume from checkpoint ({type(exc).__name__}: {exc})") from None
        epoch, step, best, history = trainer["epoch"], trainer["step"], trainer["best"], trainer["history"]
        epoch_losses = trainer.get("epoch_losses", [])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    else:
        epoch_losses = []
    model, optimizer = acc.prepare(model, optimizer)
    if last is not None:
        if acc.scaler is not None and "scaler" in state:
            acc.scaler.load_state_dict(state["scaler"])
        acc.print(f"resuming from {last} at epoch {epoch + 1}, step {step}")

    items = _SeededItems(train_set)
    loop_dict = dataclasses.asdict(cfg)

    def checkpoint(ep, st, losses_so_far):
        acc.wait_for_everyone()
        if acc.is_main_process:
            trainer = {"epoch": ep, "step": st, "best": best, "history": history, "loop": loop_dict,
                       "epoch_losses": losses_so_far}
            _write_last(out_dir, acc.unwrap_model(model), optimizer, scheduler, acc.scaler, trainer, config)

    # 3. Epochs. A global batch is split over processes by position; every process sees the same count.
    while epoch < cfg.epochs:
        batches = epoch_batches(len(train_set), cfg, epoch)
        mine = [b[acc.process_index::acc.num_processes] for b in batches[step:]]
        loader = DataLoader(items, batch_sampler=mine, num_workers=0)
        model.train()
        losses, preds, targets = epoch_losses, [], []
        epoch_losses = []
        # In a log file (no TTY) a bar line every 30 s, not one per step.
        bar = tqdm(loader, total=len(mine), initial=0, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not (cfg.progress and acc.is_local_main_process), leave=False,
                   mininterval=0.1 if sys.stderr.isatty() else 30.0)
        for batch in bar:
            batch = _to_device(batch, acc.device)
            torch.manual_seed(derive_seed(cfg.seed, epoch, step, 0x5EED))  # dropout etc.
            with acc.autocast():
                out = loss_fn(model, batch)
            loss = out[0] if isinstance(out, tuple) else out
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            if cfg.grad_clip > 0:
                acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            step += 1
            losses.append(float(loss.detach()))
            postfix = {"loss": f"{np.mean(losses):.4f}"}
            if isinstance(out, tuple) and len(out) == 3:
                preds += out[1].detach().float().flatten().cpu().tolist()
                targets += out[2].detach().float().flatten().cpu().tolist()
                postfix["srcc"] = f"{_running_srcc(preds, targets):.3f}"
            # refresh=False: the postfix shows at the bar's own refresh. Refreshing here redrew the bar before
            # tqdm had counted the step (a log on the GPU box read "0/16" on every line) and wrote one log line
            # per step, ignoring mininterval.
            bar.set_postfix(postfix, refresh=False)
            if cfg.save_every_steps and step % cfg.save_every_steps == 0 and step < len(batches):
                checkpoint(epoch, step, losses)
        bar.close()

        # 4. End of epoch: schedule, eval, best/, last/.
        scheduler.step()
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)) if losses else None,
                  "lr": optimizer.param_groups[0]["lr"]}
        if eval_fn is not None:
            unwrapped = acc.unwrap_model(model)
            unwrapped.eval()
            with torch.no_grad():
                metrics = dict(eval_fn(unwrapped))
            record.update(metrics)
            value = metrics.get(cfg.best_metric)
            if value is None:
                raise ConfigError(f"train: eval_fn returned no {cfg.best_metric!r} (got {sorted(metrics)})")
            if best is None or (np.isfinite(value) and value > best):
                best = float(value)
                if acc.is_main_process:
                    with atomic_path(out_dir / "best") as tmp:
                        tmp.mkdir()
                        save_fn(unwrapped, tmp)
                        write_json(tmp / "metrics.json", record)
        history.append(record)
        acc.print(f"epoch {epoch + 1}/{cfg.epochs}: " + ", ".join(
            f"{k} {v:.4g}" for k, v in record.items() if isinstance(v, float)))
        epoch, step = epoch + 1, 0
        checkpoint(epoch, 0, [])
        if acc.is_main_process:
            write_json(out_dir / "history.json", history)

    acc.wait_for_everyone()
    best_dir = out_dir / "best" if (out_dir / "best").is_dir() else None
    return FitResult(out_dir, best_dir, out_dir / "last", best, history)


def _to_device(batch, device):
    if hasattr(batch, "to"):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def load_last_weights(model, out_dir: str | os.PathLike) -> dict:
    """Load ``out_dir/last``'s weights into ``model``; returns its trainer state (epoch, step, history)."""
    from safetensors.torch import load_model

    last = _find_last(Path(out_dir))
    if last is None:
        raise ModelLoadError(f"{out_dir}: no last/ checkpoint")
    load_model(model, str(last / "model.safetensors"))
    return json.loads((last / "trainer.json").read_text())


def clear_checkpoints(out_dir: str | os.PathLike) -> None:
    """Remove ``last/`` (start over); ``best/`` and the final model are kept."""
    shutil.rmtree(Path(out_dir) / "last", ignore_errors=True)
