"""Distillation items: manifest rows -> images through the shared decoder/preprocessing + cached targets.

Each item is a dict of tensors: ``x`` (3, S, S) float in 0..1 (``Preprocess`` output wrapped with
``torch.from_numpy``), ``mos`` and ``teacher`` (0-100, NaN when absent), ``qmap`` (8, m, m) teacher map on
the student's grid (zeros when absent) and ``has_map``. Augmentations preserve quality: horizontal
flips and same-scale crops (a window of the preprocessed image, never rescaled); the teacher map gets
the same flip / crop. Random draws use torch's global RNG, which the training loop seeds per item.
"""

from __future__ import annotations

import math
import sys
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..data.manifest import Row
from ..runtime.image import decode_image
from ..runtime.preprocess import Preprocess


class DistillItems(torch.utils.data.Dataset):
    """Args:
        rows: manifest rows (``path`` keys the targets, ``abspath`` is read).
        preprocess: the student's :class:`Preprocess` (size S).
        targets: a ``teacher.targets.Targets`` or None (MOS-only training).
        map_size: the student's map grid m (teacher maps are resized to it, bilinear).
        augment: apply ``hflip`` / ``crop`` (training) or not (evaluation).
        hflip, crop: see :class:`DistillConfig`.
        cache: keep decoded uint8 images in memory.
    """

    def __init__(self, rows: Sequence[Row], preprocess: Preprocess, targets=None, map_size: int = 64,
                 augment: bool = False, hflip: bool = True, crop: float = 0.0, cache: bool = True):
        self.rows, self.pre, self.targets = list(rows), preprocess, targets
        self.map_size, self.augment, self.hflip, self.crop, self.cache = map_size, augment, hflip, crop, cache
        self._images: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def image(self, i: int) -> np.ndarray:
        """uint8 (S, S, 3) of row ``i`` (the one decoder, the one resize)."""
        rgb = self._images.get(i)
        if rgb is None:
            rgb = self.pre.resize_rgb(decode_image(self.rows[i].abspath))
            if self.cache:
                self._images[i] = rgb
        return rgb

    def _teacher(self, row: Row) -> tuple[float, torch.Tensor | None]:
        if self.targets is None or row.path not in self.targets:
            return math.nan, None
        return float(self.targets.scores[row.path]), torch.from_numpy(self.targets.map(row.path))

    def pixels(self, i: int) -> torch.Tensor:
        """Row ``i`` as float (3, S, S) in the preprocessing's input range (no augmentation)."""
        lo, hi = self.pre.input_range
        rgb = self.image(i)
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float() * ((hi - lo) / 255.0) + lo

    def labels(self, i: int, flip: bool = False, window: tuple[int, int, int] | None = None) -> dict:
        """Everything but the image: ``mos``, ``teacher``, ``qmap`` (flipped / cut like the image), ``has_map``."""
        row = self.rows[i]
        teacher, tmap = self._teacher(row)
        m = self.map_size
        qmap = torch.zeros(8, m, m) if tmap is None else tmap
        if tmap is not None and window is not None:  # the teacher map cut where the image was cut
            y0, x0, c = window
            s = self.pre.size[0]
            qmap = F.interpolate(qmap[None], size=(s, s), mode="bilinear", align_corners=False)[0][:, y0:y0 + c, x0:x0 + c]
        if tmap is not None and qmap.shape[-1] != m:
            qmap = F.interpolate(qmap[None], size=(m, m), mode="bilinear", align_corners=False)[0]
        if flip:
            qmap = qmap.flip(-1)
        mos = math.nan if row.mos is None else float(row.mos)
        return {"mos": torch.tensor(mos, dtype=torch.float32), "teacher": torch.tensor(teacher, dtype=torch.float32),
                "qmap": qmap.contiguous().float(), "has_map": torch.tensor(tmap is not None)}

    def __getitem__(self, i: int) -> dict:
        x = self.pixels(i)
        window = None
        if self.augment and self.crop > 0:  # same-scale crop: a window of the image, never rescaled
            s = x.shape[-1]
            c = int(round(s * (1.0 - self.crop)))
            y0, x0 = (int(v) for v in torch.randint(0, s - c + 1, (2,)))
            x, window = x[:, y0:y0 + c, x0:x0 + c], (y0, x0, c)
        flip = self.augment and self.hflip and bool(torch.rand(()) < 0.5)
        if flip:
            x = x.flip(-1)
        return {"x": x.contiguous(), **self.labels(i, flip, window)}


class PrefixCache(torch.utils.data.Dataset):
    """``items`` with each image replaced by the frozen prefix's output ``model.prefix(x, stages)``,
    computed once (for the image and its mirror when flips are on). Training then runs only the
    unfrozen tail: the same numbers as running the frozen stages every step, at a fraction of the cost.

    Args:
        items: a :class:`DistillItems` (its ``crop`` must be 0: a crop would change the prefix's input).
        model: the student, its first ``stages`` stages frozen.
        stages: how many stages the prefix holds (``start_stage`` of the student's forward).
        batch_size: images per prefix batch.
        progress: show a bar.
    """

    def __init__(self, items: DistillItems, model, stages: int, batch_size: int = 32, progress: bool = True):
        from tqdm.auto import tqdm

        self.items, self.start_stage = items, stages
        self.flips = items.augment and items.hflip
        self.rows, self.targets = items.rows, items.targets
        was = model.training
        model.eval()
        device = next(model.parameters()).device
        self.h: dict[bool, torch.Tensor] = {}
        n = len(items)
        with torch.no_grad():
            for flip in ((False, True) if self.flips else (False,)):
                chunks = []
                for start in tqdm(range(0, n, batch_size), desc=f"cache stages 0-{stages - 1}" + (" (mirrored)" if flip else ""),
                                  disable=not progress, leave=False, mininterval=0.1 if sys.stderr.isatty() else 30.0):
                    x = torch.stack([items.pixels(i) for i in range(start, min(start + batch_size, n))])
                    chunks.append(model.prefix((x.flip(-1) if flip else x).to(device), stages).cpu())
                self.h[flip] = torch.cat(chunks) if chunks else torch.zeros(0)
        model.train(was)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        flip = self.flips and bool(torch.rand(()) < 0.5)
        return {"x": self.h[flip][i], **self.items.labels(i, flip)}


def predict(model, items, batch_size: int = 32) -> np.ndarray:
    """Scores (0-100) of every item (:class:`DistillItems` or :class:`PrefixCache`), eval mode, no augmentation."""
    was = model.training
    model.eval()
    start_stage = getattr(items, "start_stage", 0)
    out = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            idx = range(start, min(start + batch_size, len(items)))
            x = torch.stack([items.h[False][i] if start_stage else items.pixels(i) for i in idx])
            x = x.to(next(model.parameters()).device)
            out.append((model(x, start_stage=start_stage) if start_stage else model(x))[0].float().cpu().numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros(0, np.float32)
