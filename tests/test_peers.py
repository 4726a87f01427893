"""Classical peers: raw scores, lower = better; a heavily degraded photo must score worse than the clean one."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brisque")
pytest.importorskip("skvideo")

from dpiqa_edge.errors import InputError  # noqa: E402
from dpiqa_edge.peers import brisque_scores, niqe_model, niqe_scores  # noqa: E402


def _degraded(img):
    from skimage import filters, util

    blur = (filters.gaussian(img, sigma=4, channel_axis=-1) * 255).astype(np.uint8)
    noisy = (np.clip(util.random_noise(img, var=0.02, rng=0), 0, 1) * 255).astype(np.uint8)
    return blur, noisy


@pytest.mark.parametrize("scorer", [brisque_scores, niqe_scores], ids=["brisque", "niqe"])
def test_peer_ranks_degraded_worse(scorer):
    from skimage import data

    img = data.coffee()  # 600x400: 24 NIQE patches at scale 1, enough for a stable covariance
    clean, blur, noisy = scorer([img, *_degraded(img)])
    assert np.isfinite([clean, blur, noisy]).all()
    # Heavy blur (sigma 4 px) and strong noise (var 0.02) are far outside what either model calls
    # natural; measured margins are large (BRISQUE 3 vs 84/57, NIQE 8 vs 17/18), so require 1.3x.
    assert blur > 1.3 * clean and noisy > 1.3 * clean


def test_niqe_model_is_the_bundled_pristine_mvg():
    mu, cov = niqe_model()
    assert mu.shape == (36,) and cov.shape == (36, 36)
    assert np.allclose(cov, cov.T) and np.all(np.linalg.eigvalsh(cov) > -1e-9)  # a covariance


def test_niqe_refuses_images_smaller_than_a_patch():
    with pytest.raises(InputError, match="smaller than one 96-px patch"):
        niqe_scores([np.zeros((64, 64, 3), np.uint8)])
