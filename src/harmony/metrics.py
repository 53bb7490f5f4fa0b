"""Image-harmonization quality in the papers' units.

The iHarmony4 evaluations (DoveNet, iDIH and the AICT and HDNet code built on them) score a
harmonized image against the real photograph on the 0-255 scale, per image:

    MSE   = mean over pixels and channels of (output - real)^2
    fMSE  = sum over pixels and channels of mask * (output - real)^2 / (3 * sum(mask) + eps)
    PSNR  = 10 log10(255^2 / (MSE + eps))
    fPSNR = 10 log10(255^2 / (fMSE + eps))
    SSIM  = the mean structural similarity of Wang et al. (Gaussian window, sigma 1.5, over the
            three channels), as `skimage.metrics.structural_similarity` computes it

with eps = 1e-6 as in those evaluations (so an empty mask gives fMSE 0, and a perfect output a
finite PSNR). Images are given as float arrays in [0, 1]; they are clamped and scaled to 0-255
without rounding, as the official code scores its float outputs. `psnr_db` is the plain PSNR of
two [0, 1] arrays (inf when equal) the exporter's parity check uses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

PEAK = 255.0
EPSILON = 1e-6
# The metrics in report order, and whether larger is better.
METRICS = {"mse": False, "fmse": False, "psnr": True, "fpsnr": True, "ssim": True}


@dataclass(frozen=True)
class Scores:
    """One image's quality against its real photograph (see the module docstring)."""

    mse: float
    fmse: float
    psnr: float
    fpsnr: float
    ssim: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _to_255(image: np.ndarray) -> np.ndarray:
    """[H,W,3] or [3,H,W] / [1,3,H,W] in [0,1] -> [H,W,3] float64 on 0-255."""
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 4:
        array = array[0]
    if array.shape[0] == 3 and array.shape[-1] != 3:
        array = array.transpose(1, 2, 0)
    if array.ndim != 3 or array.shape[-1] != 3:
        raise ValueError(f"expected an RGB image, got shape {list(np.shape(image))}")
    return np.clip(array, 0.0, 1.0) * PEAK


def _mask_plane(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    plane = np.asarray(mask, dtype=np.float64).reshape(-1, *shape[-2:])
    if plane.shape[0] != 1:
        raise ValueError(f"expected a one-channel mask of {shape}, got {list(np.shape(mask))}")
    return plane[0]


def scores(output: np.ndarray, real: np.ndarray, mask: np.ndarray) -> Scores:
    """Quality of `output` against `real` with foreground `mask` (all in [0, 1]; images
    [H,W,3], [3,H,W] or [1,3,H,W], the mask [H,W], [1,H,W] or [1,1,H,W])."""
    from skimage.metrics import structural_similarity

    out, ref = _to_255(output), _to_255(real)
    if out.shape != ref.shape:
        raise ValueError(f"output {list(out.shape)} and real {list(ref.shape)} differ in shape")
    weights = _mask_plane(mask, out.shape[:2])[..., None]
    squared = (out - ref) ** 2
    mse = float(squared.mean())
    fmse = float((weights * squared).sum() / (out.shape[-1] * weights.sum() + EPSILON))
    side = min(out.shape[:2])  # below 11 pixels the 11x11 Gaussian window is shrunk to fit
    ssim = float(
        structural_similarity(
            out,
            ref,
            data_range=PEAK,
            channel_axis=2,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            win_size=None if side >= 11 else side - (1 - side % 2),
        )
    )
    return Scores(mse, fmse, _psnr(mse), _psnr(fmse), ssim)


def _psnr(mse: float) -> float:
    return 10.0 * math.log10(PEAK**2 / (mse + EPSILON))


def psnr_db(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSNR of `actual` against `expected` for a peak of 1.0 (inf when they are equal)."""
    mse = float(np.mean((expected.astype(np.float64) - actual.astype(np.float64)) ** 2))
    return math.inf if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


__all__ = ["EPSILON", "METRICS", "PEAK", "Scores", "psnr_db", "scores"]
