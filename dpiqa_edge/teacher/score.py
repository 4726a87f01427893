"""``teacher score``: run a trained teacher over a manifest -> distillation targets (see ``targets.py``).

Batched on the process's device (GPU when present); under ``accelerate launch`` shard k goes to process
k mod N. Each shard file is written atomically and checked on restart (its stored paths must equal the
manifest's rows for that shard), so an interrupted run redoes only the shards it had not finished.
Scores use the latent mean: the same image always gets the same score.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data.manifest import read_manifest
from ..errors import ConfigError
from ..io import read_json, sha256_file
from .config import teacher_preprocess
from .targets import finalize_targets, read_shard_paths, shard_name, write_shard


def score_teacher(teacher_dir, manifest, out_dir, *, batch_size: int = 8, shard_size: int = 256,
                  cpu: bool = False, progress: bool = True) -> Path:
    """Score every row of ``manifest`` (labelled or not); returns ``out_dir`` (scores.csv, shards, index.json)."""
    import torch
    from accelerate import PartialState
    from tqdm.auto import tqdm

    from .model import load_teacher  # lazy: teacher.model imports torch at top

    if batch_size < 1 or shard_size < 1:
        raise ConfigError(f"teacher score: batch_size ({batch_size}) and shard_size ({shard_size}) must be >= 1")
    # 1. setup: process state, rows, the shards this process owns and has not finished yet.
    state = PartialState(cpu=cpu)
    rows = read_manifest(manifest)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = [rows[s:s + shard_size] for s in range(0, len(rows), shard_size)]
    todo = [k for k in range(len(shards)) if k % state.num_processes == state.process_index
            and read_shard_paths(out_dir / shard_name(k)) != [r.path for r in shards[k]]]
    # 2. score the missing shards.
    if todo:
        model = load_teacher(teacher_dir, device=state.device)
        pre = teacher_preprocess(model.config)
        bar = tqdm(total=sum(len(shards[k]) for k in todo), desc="teacher score", unit="img",
                   disable=not (progress and state.is_local_main_process))
        for k in todo:
            scores, maps = [], []
            for b in range(0, len(shards[k]), batch_size):
                chunk = shards[k][b:b + batch_size]
                x = torch.from_numpy(pre.batch([r.abspath for r in chunk])).to(state.device)
                with torch.no_grad():
                    s, fq = model(x)
                scores.append(s.float().cpu())
                maps.append(fq.float().cpu())
                bar.update(len(chunk))
            write_shard(out_dir, k, [r.path for r in shards[k]], torch.cat(scores).numpy(), torch.cat(maps).numpy())
        bar.close()
        map_size = model.config.map_size
        del model
    state.wait_for_everyone()
    # 3. the main process writes scores.csv and index.json once every shard is there.
    if state.is_main_process:
        meta = read_json(Path(teacher_dir) / "config.json")
        if not todo:
            map_size = meta["config"]["map_size"]
        weights = Path(teacher_dir) / "model.safetensors"
        finalize_targets(out_dir, [len(s) for s in shards], map_size,
                         teacher={"dir": os.fspath(teacher_dir), "sha256": sha256_file(weights),
                                  "manifest": os.fspath(manifest), "map_size": map_size,
                                  # what scored (the report names the teacher by it)
                                  "device": str(state.device),
                                  "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None})
    state.wait_for_everyone()
    return out_dir
