"""AICT's cascaded, position-dependent 3D LUT, applied at any resolution.

Computed exactly as the official `mapping` does it: per channel, two trilinear lookups with
5-D `grid_sample` (border padding, align_corners=True): the first in the 9-knot map at
(x, y, image value), the second in the 8-point curve at (x, y, first result). The three
channels are batched into one call per lookup. (The separable form, bilinear resize of each
knot plane then linear interpolation along the knots, is equal to about 1e-5 and is what the
ONNX Runtime export uses.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harmony.contract import LUT_CHANNELS, LUT_CURVE_POINTS, LUT_KNOTS

_FLAGS = {"mode": "bilinear", "padding_mode": "border", "align_corners": True}


def cascaded_lut(
    image: torch.Tensor, mask: torch.Tensor, knots: torch.Tensor, curve: torch.Tensor
) -> torch.Tensor:
    """Apply AICT's two cascaded position-dependent lookups and blend with the mask.

    Args:
        image: [B,3,H,W] in [0,1] (values outside are clamped onto the end knots).
        mask: [B,1,H,W] blend weight of the harmonized result.
        knots: [B,3,9,h,w] knots of the first curve (zero-prefixed cumsum of the softmaxed
            intervals, in [0,1]).
        curve: [B,3,8,h,w] values of the second curve.
    Returns:
        [B,3,H,W]: clamp(lut(image), 0, 1) * mask + image * (1 - mask), in the dtype of `image`.
        Interpolation is computed in float32 whatever the input dtype.
    """
    check_lut_inputs(image, mask, knots, curve)
    out_dtype = image.dtype
    image, mask = image.float(), mask.float()
    b, c, height, width = image.shape
    map_hw = knots.shape[-2:]
    ys = _unit_grid(height, image.device)
    xs = _unit_grid(width, image.device)
    gx = xs.reshape(1, 1, 1, width, 1).expand(b * c, 1, height, width, 1)
    gy = ys.reshape(1, 1, height, 1, 1).expand(b * c, 1, height, width, 1)
    z = (image * 2.0 - 1.0).reshape(b * c, 1, height, width, 1)
    knot_maps = (knots.float() * 2.0 - 1.0).reshape(b * c, 1, LUT_KNOTS, *map_hw)
    x_hat = F.grid_sample(knot_maps, torch.cat([gx, gy, z], dim=-1), **_FLAGS)
    curve_maps = curve.float().reshape(b * c, 1, LUT_CURVE_POINTS, *map_hw)
    grid = torch.cat([gx, gy, x_hat.reshape(b * c, 1, height, width, 1)], dim=-1)
    y = F.grid_sample(curve_maps, grid, **_FLAGS).reshape(b, c, height, width)
    return (y.clamp(0.0, 1.0) * mask + image * (1.0 - mask)).to(out_dtype)


def _unit_grid(size: int, device) -> torch.Tensor:
    """`linspace(-1, 1, size)` as arithmetic on `arange` (traceable with a symbolic size)."""
    return torch.arange(size, dtype=torch.float32, device=device) * (2.0 / max(size - 1, 1)) - 1.0


def check_lut_inputs(image, mask, knots, curve) -> None:
    """Raise ValueError unless the four tensors have the shapes `cascaded_lut` takes."""
    if image.dim() != 4 or image.shape[1] != LUT_CHANNELS:
        raise ValueError(f"image must be [B,3,H,W], got {list(image.shape)}")
    b, _, height, width = image.shape
    if tuple(mask.shape) != (b, 1, height, width):
        raise ValueError(f"mask must be [{b},1,{height},{width}], got {list(mask.shape)}")
    if knots.dim() != 5 or tuple(knots.shape[:3]) != (b, LUT_CHANNELS, LUT_KNOTS):
        raise ValueError(f"knots must be [{b},3,{LUT_KNOTS},h,w], got {list(knots.shape)}")
    map_hw = tuple(knots.shape[-2:])
    if tuple(curve.shape) != (b, LUT_CHANNELS, LUT_CURVE_POINTS, *map_hw):
        raise ValueError(
            f"curve must be [{b},3,{LUT_CURVE_POINTS},{map_hw[0]},{map_hw[1]}], "
            f"got {list(curve.shape)}"
        )
