"""Inputs of the fused ops shared by the tests of their CPU and CUDA builds."""

from __future__ import annotations

import torch

from harmony.contract import LUT_CURVE_POINTS, LUT_KNOTS

MASKS = ("binary", "soft", "zeros", "ones")


def mask_of_kind(kind: str, b: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    if kind == "binary":
        return (torch.rand(b, 1, h, w, generator=gen) > 0.5).float()
    if kind == "soft":
        return torch.rand(b, 1, h, w, generator=gen)
    return torch.full((b, 1, h, w), 0.0 if kind == "zeros" else 1.0)


def lut_inputs(b: int, height: int, width: int, map_h: int, map_w: int, mask: str, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    # Slightly out of [0, 1] to exercise the clamps onto the end knots.
    image = torch.rand(b, 3, height, width, generator=gen) * 1.2 - 0.1
    intervals = torch.softmax(torch.randn(b, 3, LUT_KNOTS - 1, map_h, map_w, generator=gen), dim=2)
    knots = torch.cat([torch.zeros(b, 3, 1, map_h, map_w), intervals.cumsum(dim=2)], dim=2)
    curve = torch.rand(b, 3, LUT_CURVE_POINTS, map_h, map_w, generator=gen) * 1.4 - 0.2
    return image, mask_of_kind(mask, b, height, width, gen), knots, curve


def knn_inputs(b, c, h, w, mask, seed=0, integer=False):
    gen = torch.Generator().manual_seed(seed)
    if integer:
        # Small integers: every dot product is exact, so ties are exact and the tie rule decides.
        features = torch.randint(-1, 3, (b, c, h, w), generator=gen).float()
    else:
        features = torch.randn(b, c, h, w, generator=gen)
    return features, mask_of_kind(mask, b, h, w, gen)
