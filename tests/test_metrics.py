"""harmony.metrics against hand computations on small arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harmony.metrics import EPSILON, PEAK, psnr_db, scores


def _pair():
    """A 2x2 RGB output and real photo whose squared errors (0-255 scale) are known."""
    real = np.zeros((2, 2, 3))
    output = np.zeros((2, 2, 3))
    output[0, 0] = [10, 20, 30]  # squared errors 100, 400, 900
    output[1, 1] = [0, 0, 51]  # squared error 2601
    return output / PEAK, real / PEAK


def test_mse_fmse_psnr_fpsnr_by_hand():
    output, real = _pair()
    mask = np.array([[1.0, 0.0], [0.0, 0.0]])  # foreground: the top-left pixel only
    result = scores(output, real, mask)
    total = 100 + 400 + 900 + 2601
    assert result.mse == pytest.approx(total / 12)
    assert result.fmse == pytest.approx((100 + 400 + 900) / (3 * 1 + EPSILON))
    assert result.psnr == pytest.approx(10 * math.log10(255**2 / (total / 12 + EPSILON)))
    assert result.fpsnr == pytest.approx(10 * math.log10(255**2 / (1400 / 3 + EPSILON)))


def test_empty_and_full_masks():
    output, real = _pair()
    empty = scores(output, real, np.zeros((2, 2)))
    assert empty.fmse == 0.0 and empty.fpsnr == pytest.approx(10 * math.log10(255**2 / EPSILON))
    full = scores(output, real, np.ones((2, 2)))
    assert full.fmse == pytest.approx(full.mse)


def test_soft_mask_weights_the_errors():
    output, real = _pair()
    mask = np.array([[0.5, 0.0], [0.0, 1.0]])
    expected = (0.5 * 1400 + 2601) / (3 * 1.5 + EPSILON)
    assert scores(output, real, mask).fmse == pytest.approx(expected)


def test_ssim_of_constant_images_by_hand():
    """Constant images: no variance, so SSIM is the luminance term (2ab + C1) / (a^2 + b^2 + C1)."""
    a, b = 0.5 * PEAK, 0.25 * PEAK
    c1 = (0.01 * PEAK) ** 2
    output = np.full((16, 16, 3), 0.5)
    real = np.full((16, 16, 3), 0.25)
    result = scores(output, real, np.ones((16, 16)))
    assert result.ssim == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-6)
    assert scores(real, real, np.ones((16, 16))).ssim == pytest.approx(1.0)


def test_layouts_and_clamping_agree():
    rng = np.random.default_rng(0)
    output = rng.random((3, 9, 12)) * 1.2 - 0.1  # out of [0, 1]: clamped before scoring
    real = rng.random((3, 9, 12))
    mask = (rng.random((9, 12)) > 0.5).astype(np.float64)
    channels_first = scores(output, real, mask)
    channels_last = scores(
        np.clip(output, 0, 1).transpose(1, 2, 0), real.transpose(1, 2, 0), mask[None, None]
    )
    assert channels_first.as_dict() == pytest.approx(channels_last.as_dict())


def test_psnr_db_on_unit_scale():
    assert psnr_db(np.zeros(4), np.zeros(4)) == math.inf
    assert psnr_db(np.zeros(4), np.full(4, 0.1)) == pytest.approx(20.0)
