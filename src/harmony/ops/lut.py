"""AICT's cascaded, position-dependent 3D LUT, applied at any resolution.

Equivalent to the official chain of six 5-D `grid_sample` calls (trilinear, border padding,
align_corners=True), written in the separable form: bilinear interpolation (align_corners=True)
of each knot plane at the pixel's position, then linear interpolation along the knot axis.
It never builds a full-resolution grid: rows are processed in chunks.
"""

from __future__ import annotations

import torch

from harmony.contract import LUT_CHANNELS, LUT_CURVE_POINTS, LUT_KNOTS

# Elements of one [B,3,K,rows,W] chunk of upsampled knot planes (about 64 MiB in fp32).
_CHUNK_ELEMENTS = 1 << 24


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
    knots, curve = knots.float(), curve.float()
    b, _, height, width = image.shape
    col0, col_frac = _spatial_taps(width, knots.shape[-1], image.device)
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // (b * LUT_CHANNELS * LUT_KNOTS * width))
    out = torch.empty_like(image)
    for start in range(0, height, rows_per_chunk):
        stop = min(height, start + rows_per_chunk)
        row0, row_frac = _spatial_taps(height, knots.shape[-2], image.device, start, stop)
        x = image[:, :, start:stop]
        knot_planes = _bilinear_planes(knots, row0, row_frac, col0, col_frac)
        curve_planes = _bilinear_planes(curve, row0, row_frac, col0, col_frac)
        x_hat = _piecewise_linear(knot_planes, x.clamp(0.0, 1.0) * (LUT_KNOTS - 1))
        y = _piecewise_linear(curve_planes, x_hat.clamp(0.0, 1.0) * (LUT_CURVE_POINTS - 1))
        m = mask[:, :, start:stop]
        out[:, :, start:stop] = y.clamp(0.0, 1.0) * m + x * (1.0 - m)
    return out.to(out_dtype)


def check_lut_inputs(image, mask, knots, curve) -> None:
    """Raise ValueError unless the four tensors have the shapes `cascaded_lut` takes."""
    b, c, height, width = image.shape
    if c != LUT_CHANNELS:
        raise ValueError(f"image must be [B,3,H,W], got {list(image.shape)}")
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


def _spatial_taps(out_size: int, map_size: int, device, start: int = 0, stop: int | None = None):
    """Lower map index and fraction for output positions [start, stop) (align_corners=True)."""
    stop = out_size if stop is None else stop
    pos = torch.arange(start, stop, device=device, dtype=torch.float32)
    scale = (map_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    pos = pos * scale
    lower = pos.floor().clamp(max=max(map_size - 2, 0)).long()
    return lower, pos - lower


def _bilinear_planes(maps, row0, row_frac, col0, col_frac):
    """[B,3,K,h,w] maps sampled at the chunk's pixel grid -> [B,3,K,rows,W]."""
    row1 = (row0 + 1).clamp(max=maps.shape[-2] - 1)
    col1 = (col0 + 1).clamp(max=maps.shape[-1] - 1)
    fr = row_frac[:, None]
    rows = maps[..., row0, :] * (1.0 - fr) + maps[..., row1, :] * fr
    return rows[..., col0] * (1.0 - col_frac) + rows[..., col1] * col_frac


def _piecewise_linear(planes: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Linear interpolation along dim 2 of `planes` [B,3,K,r,W] at `pos` [B,3,r,W] in [0,K-1]."""
    lower = pos.floor().clamp(max=planes.shape[2] - 2).long()
    frac = pos - lower
    lo = planes.gather(2, lower.unsqueeze(2)).squeeze(2)
    hi = planes.gather(2, (lower + 1).unsqueeze(2)).squeeze(2)
    return lo + (hi - lo) * frac
