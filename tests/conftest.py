"""Shared fixtures. Tests use tiny models and a handful of generated images; nothing downloads."""

from __future__ import annotations

import os

import numpy as np
import pytest

# One intra-op thread per test process, always (`make test` exports OMP_NUM_THREADS=2 for the CLI and
# runs two pytest workers): float reductions depend on the thread count, so a test comparing two runs
# (a resumed training against an uninterrupted one, an imported model against its replica) must not see
# the count change between them because another test in the same worker pinned torch to one thread.
os.environ["OMP_NUM_THREADS"] = "1"


def pytest_collection_modifyitems(config, items):
    """The long end-to-end tests (marked ``slow``) run first. With two xdist workers stealing work
    (``--dist worksteal`` in the Makefile) the run then ends on short tests instead of one worker finishing a
    multi-minute test while the other idles. Only the order changes: every test is independent."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order kept within each


@pytest.fixture(autouse=True)
def _one_torch_thread():  # per test: a test may change it (the benchmarks set their own counts)
    try:
        import torch
    except ImportError:  # the runtime-only install: nothing to pin
        yield
        return
    torch.set_num_threads(1)
    yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def photo() -> np.ndarray:
    """A real package photo (skimage's astronaut, 512x512 RGB uint8)."""
    from skimage import data

    return data.astronaut()
