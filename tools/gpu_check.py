"""The teacher's GPU road at full SD-1.5 size, through the real CLI, where no SD/CLIP weights exist.

Run it on a machine with a CUDA GPU (a lent box; not part of `make test`, which must pass without one):

    python tools/gpu_check.py --work /tmp/gpucheck --out gpu_check.json [--train-rows 256]

It writes a random-init Stable Diffusion 1.5 folder in diffusers layout and a random CLIP ViT-L/14-size
text tower, then runs, each as its own `dpiqa-edge` process:

1. ``data synth`` (the embedded default set), and a subset manifest (``--train-rows`` train, a quarter of that
   for val and for test, scenes kept whole by the synth split);
2. ``teacher train --sd-path SD --clip-path CLIP --config configs/teacher.toml --epochs 1``: SPEC's recipe
   (512 px, batch 16, Adam 1e-5, fp16 mixed precision on the GPU) for one epoch;
3. the same command with ``--epochs 2``: it must resume from ``last/`` (optimizer and fp16 grad-scaler state
   included) and train only the second epoch;
4. ``teacher score`` on the subset: scores.csv + float16 F_quality shards (64 x 64).

Every step's wall time, exit code and the last lines of its output go into the JSON, with the GPU and
library versions. The weights are random (the check is of the road, speed and memory, not of accuracy):
SRCC values it prints say nothing about DP-IQA.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from pathlib import Path


def _run(name: str, args: list[str], log, timeout: float, save) -> dict:
    cmd = [sys.executable, "-m", "dpiqa_edge.cli", *args]
    print(f"[gpu_check] {name}: dpiqa-edge {' '.join(args)}", flush=True)
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        rc, out = proc.returncode, (proc.stdout + proc.stderr)
    except subprocess.TimeoutExpired as exc:
        rc, out = 124, f"timed out after {timeout:.0f}s\n{exc.stdout or ''}{exc.stderr or ''}"
    seconds = time.perf_counter() - t0
    log.write(f"\n===== {name} (rc {rc}, {seconds:.1f} s) =====\n{out}\n")
    log.flush()
    tail = [ln for ln in out.replace("\r", "\n").splitlines() if ln.strip()][-6:]
    print(f"[gpu_check] {name}: rc {rc} in {seconds:.1f} s", flush=True)
    step = {"rc": rc, "seconds": round(seconds, 1), "tail": tail}
    save(name, step)  # into the summary, written after every step: a check cut off by its time limit still reports
    return step


def _subset(manifest: Path, out: Path, train_rows: int) -> dict:
    """The first ``train_rows`` train rows, and a quarter as many val and test rows, in manifest order."""
    with manifest.open(newline="") as f:
        reader = csv.DictReader(f)
        rows, fields = list(reader), reader.fieldnames
    want = {"train": train_rows, "val": max(train_rows // 4, 16), "test": max(train_rows // 4, 16)}
    keep, counts = [], {k: 0 for k in want}
    for r in rows:
        if counts.get(r["split"], 10**9) < want.get(r["split"], 0):
            keep.append(r)
            counts[r["split"]] += 1
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(keep)
    return counts


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, required=True, help="scratch folder (SD folder ~3.7 GB, checkpoints ~17 GB)")
    ap.add_argument("--out", type=Path, required=True, help="JSON summary to write")
    ap.add_argument("--train-rows", type=int, default=256)
    ap.add_argument("--timeout", type=float, default=420, help="seconds allowed per step")
    ap.add_argument("--size", choices=("full", "tiny"), default="full",
                    help="full: SD-1.5 + CLIP ViT-L/14 sizes (the check); tiny: tiny configs, a CPU rehearsal of "
                         "the script itself (use with --config configs/teacher-demo.toml)")
    ap.add_argument("--config", default="configs/teacher.toml", help="teacher recipe (default: SPEC's)")
    a = ap.parse_args()

    import torch

    from dpiqa_edge.bench import library_versions
    from dpiqa_edge.teacher.loading import write_random_sd_folder
    from dpiqa_edge.teacher.prompts import tiny_clip

    from dpiqa_edge.teacher.loading import tiny_configs

    if not torch.cuda.is_available() and a.size == "full":
        print("gpu_check: no CUDA GPU here; this check exists for GPU machines (the CPU road is `make test`/`make demo`)")
        return 2
    a.work.mkdir(parents=True, exist_ok=True)
    result = {"size": a.size, "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
              "torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0], "steps": {},
              **library_versions(("diffusers", "transformers", "accelerate"))}
    log = (a.out.parent / (a.out.stem + ".log")).open("w")
    steps = result["steps"]

    def save(name=None, step=None):
        if name:
            steps[name] = step
        a.out.write_text(json.dumps(result, indent=2, default=str))

    # 1. weights (random init, real layout and size)
    t0 = time.perf_counter()
    sd, clip = a.work / "sd15", a.work / "clip-vit-l14"
    full = a.size == "full"
    if not (sd / "model_index.json").is_file():
        write_random_sd_folder(sd, None if full else tiny_configs(32))
    if not (clip / "config.json").is_file():
        tiny_clip(clip, projection_dim=768 if full else 32, full_size=full)
    size = sum(p.stat().st_size for p in sd.rglob("*") if p.is_file())
    save("random weights", {"rc": 0, "seconds": round(time.perf_counter() - t0, 1), "sd_folder_gb": round(size / 1e9, 2)})
    # 2. data
    data = a.work / "data"
    synth = _run("data synth", ["data", "synth", "--out", str(data), "--quiet"], log, a.timeout, save)
    subset = data / "gpu_subset.csv"
    result["subset_rows"] = _subset(data / "manifest.csv", subset, a.train_rows) if synth["rc"] == 0 else {}
    # 3. train one epoch, then resume into a second
    teacher = a.work / "teacher"
    train = ["teacher", "train", "--data", str(subset), "--out", str(teacher), "--sd-path", str(sd), "--clip-path",
             str(clip), "--config", a.config]
    _run("teacher train (epoch 1)", train + ["--epochs", "1"], log, a.timeout, save)
    _run("teacher train (resume, epoch 2)", train + ["--epochs", "2"], log, a.timeout, save)
    if (teacher / "history.json").is_file():
        result["history"] = json.loads((teacher / "history.json").read_text())
    log_text = (a.out.parent / (a.out.stem + ".log")).read_text()
    second = log_text[log_text.find("===== teacher train (resume, epoch 2)"):]
    result["resumed"] = "resuming from" in second and "epoch 1/2" not in second
    # 4. score
    targets = a.work / "targets"
    _run("teacher score", ["teacher", "score", "--teacher", str(teacher), "--data", str(subset), "--out", str(targets),
                           "--batch-size", "16", "--quiet"], log, a.timeout, save)
    if (targets / "index.json").is_file():
        index = json.loads((targets / "index.json").read_text())
        result["targets_index"] = {k: v for k, v in index.items() if k != "shards"}
        with (targets / "scores.csv").open() as f:
            scores = [float(r["teacher_score"]) for r in csv.DictReader(f)]
        result["scores"] = {"n": len(scores), "min": min(scores), "max": max(scores)} if scores else {"n": 0}
    result["ok"] = all(s["rc"] == 0 for s in steps.values()) and bool(result.get("resumed"))
    a.out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=1, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
