"""Shared fixtures. Tests use tiny models and a handful of generated images; nothing downloads."""

from __future__ import annotations

import os

import numpy as np
import pytest

# Keep tests deterministic and polite on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def photo() -> np.ndarray:
    """A real package photo (skimage's astronaut, 512x512 RGB uint8)."""
    from skimage import data

    return data.astronaut()
