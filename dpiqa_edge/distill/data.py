"""Distillation items: manifest rows -> images through the shared decoder/preprocessing + cached targets.

Each item is a dict of tensors: ``x`` (3, S, S) float in 0..1 (``Preprocess`` output wrapped with
``torch.from_numpy``), ``mos`` and ``teacher`` (0-100, NaN when absent), ``qmap`` (8, m, m) teacher map on
the student's grid (zeros when absent) and ``has_map``. Augmentations preserve quality: horizontal
flips and same-scale crops (a window of the preprocessed image, never rescaled); the teacher map gets
the same flip / crop. Random draws use torch's global RNG, which the training loop seeds per item.
"""

from __future__ import annotations

import math
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

    def __getitem__(self, i: int) -> dict:
        row = self.rows[i]
        rgb = self.image(i)
        lo, hi = self.pre.input_range
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float() * ((hi - lo) / 255.0) + lo
        teacher, tmap = self._teacher(row)
        m = self.map_size
        qmap = torch.zeros(8, m, m) if tmap is None else tmap

        # Same-scale crop: a window of the preprocessed image; the teacher map is cut at the same place.
        if self.augment and self.crop > 0:
            s = x.shape[-1]
            c = int(round(s * (1.0 - self.crop)))
            y0, x0 = (int(v) for v in torch.randint(0, s - c + 1, (2,)))
            x = x[:, y0:y0 + c, x0:x0 + c]
            if tmap is not None:
                full = F.interpolate(qmap[None], size=(s, s), mode="bilinear", align_corners=False)[0]
                qmap = full[:, y0:y0 + c, x0:x0 + c]
        if tmap is not None and qmap.shape[-1] != m:
            qmap = F.interpolate(qmap[None], size=(m, m), mode="bilinear", align_corners=False)[0]
        if self.augment and self.hflip and bool(torch.rand(()) < 0.5):
            x, qmap = x.flip(-1), qmap.flip(-1)
        mos = math.nan if row.mos is None else float(row.mos)
        return {"x": x.contiguous(), "mos": torch.tensor(mos, dtype=torch.float32),
                "teacher": torch.tensor(teacher, dtype=torch.float32), "qmap": qmap.contiguous().float(),
                "has_map": torch.tensor(tmap is not None)}


def predict(model, items: DistillItems, batch_size: int = 32) -> np.ndarray:
    """Scores (0-100) of every item, the model in eval mode, no augmentation."""
    was = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(items), batch_size):
            batch = [items[i] for i in range(start, min(start + batch_size, len(items)))]
            x = torch.stack([b["x"] for b in batch]).to(next(model.parameters()).device)
            out.append(model(x)[0].float().cpu().numpy())
    model.train(was)
    return np.concatenate(out) if out else np.zeros(0, np.float32)
