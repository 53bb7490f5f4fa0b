"""Export-time implementations of the two fused ops, one per target.

The models call `harmony.ops.cascaded_lut` and `harmony.ops.knn_topk_fusion` by name (imported
into `harmony.models.aict` / `harmony.models.hdnet`). Those reference implementations stream over
chunks with Python loops and data-dependent indexing, which cannot be traced with dynamic
shapes. While a graph is traced, `export_ops(target)` swaps them for:

- target "ort": the same semantics written with standard ops only (separable LUT: bilinear
  Resize with align_corners of every knot plane + linear interpolation along the knots; KNN:
  the materialised N x N similarity, ReduceMax/ArgMax or TopK, softmax, gather);
- target "trt": the torch custom ops `harmony::cascaded_lut3d` / `harmony::knn_topk_fusion`
  (backed by `harmony.ops`), which the exporter turns into the contract's custom nodes.

Both run the fused ops in float32 whatever the dtype of the surrounding graph (the inputs are
cast up and the result cast back), as the reference and the TensorRT plugins do.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from harmony import ops
from harmony.contract import LUT_CHANNELS, LUT_CURVE_POINTS, LUT_KNOTS
from harmony.models.fused_ops import use_fused_ops

TARGETS = ("trt", "ort")
LUT_FORMULATIONS = ("separable", "gridsample")


# --- TensorRT target: opaque custom ops (become the contract's custom nodes) ----------------


@torch.library.custom_op("harmony::cascaded_lut3d", mutates_args=())
def cascaded_lut3d(
    image: torch.Tensor, mask: torch.Tensor, knots: torch.Tensor, curve: torch.Tensor
) -> torch.Tensor:
    """`harmony.ops.cascaded_lut` as an opaque op (exported as the `CascadedLut3D` node)."""
    return ops.cascaded_lut(image, mask, knots, curve)


@cascaded_lut3d.register_fake
def _cascaded_lut3d_fake(image, mask, knots, curve):
    return torch.empty_like(image)


@torch.library.custom_op("harmony::knn_topk_fusion", mutates_args=())
def knn_topk_fusion(features: torch.Tensor, mask: torch.Tensor, k: int) -> torch.Tensor:
    """`harmony.ops.knn_topk_fusion` as an opaque op (exported as the `KnnTopkFusion` node)."""
    return ops.knn_topk_fusion(features, mask, k)


@knn_topk_fusion.register_fake
def _knn_topk_fusion_fake(features, mask, k):
    return torch.empty_like(features)


def _lut_custom(image, mask, knots, curve):
    out = torch.ops.harmony.cascaded_lut3d(
        image.float(), mask.float(), knots.float(), curve.float()
    )
    return out.to(image.dtype)


def _knn_custom(features, mask, k=1):
    out = torch.ops.harmony.knn_topk_fusion(features.float(), mask.float(), int(k))
    return out.to(features.dtype)


# --- ONNX Runtime target: standard ops only ---------------------------------------------------


def lut_separable(image, mask, knots, curve):
    """Cascaded LUT as bilinear Resize (align_corners) of the knot planes + 1-D interpolation."""
    out_dtype = image.dtype
    image, mask = image.float(), mask.float()
    height, width = image.shape[-2:]
    knot_planes = _resize_planes(knots.float(), LUT_KNOTS, height, width)
    curve_planes = _resize_planes(curve.float(), LUT_CURVE_POINTS, height, width)
    x_hat = _piecewise_linear(knot_planes, image.clamp(0.0, 1.0) * (LUT_KNOTS - 1))
    y = _piecewise_linear(curve_planes, x_hat.clamp(0.0, 1.0) * (LUT_CURVE_POINTS - 1))
    return (y.clamp(0.0, 1.0) * mask + image * (1.0 - mask)).to(out_dtype)


def _resize_planes(maps, points, height, width):
    b, _, _, h, w = maps.shape
    flat = maps.reshape(b, LUT_CHANNELS * points, h, w)
    up = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=True)
    return up.reshape(b, LUT_CHANNELS, points, height, width)


def _piecewise_linear(planes, pos):
    """Interpolate `planes` [B,3,K,H,W] along dim 2 at `pos` [B,3,H,W] in [0, K-1]."""
    lower = pos.floor().clamp(max=planes.shape[2] - 2)
    frac = pos - lower
    index = lower.long().unsqueeze(2)
    lo = planes.gather(2, index).squeeze(2)
    hi = planes.gather(2, index + 1).squeeze(2)
    return lo + (hi - lo) * frac


def knn_materialized(features, mask, k=1):
    """LocalDynamics fusion with the full N x N similarity (memory O(B * N^2))."""
    out_dtype = features.dtype
    b, c, h, w = features.shape
    x = features.float().reshape(b, c, h * w)
    m = mask.float().reshape(b, 1, h * w)
    query, support = x * m, x * (1.0 - m)
    sims = torch.bmm(query.transpose(1, 2), support)  # [B, N, N]
    if k == 1:
        # ArgMax returns the first maximal index: ties go to the lowest support index.
        values, indices = sims.max(dim=2, keepdim=True)
    else:
        # ONNX TopK (sorted) puts the lower index first among equal values.
        values, indices = torch.topk(sims, k, dim=2)
    weights = torch.softmax(values.reshape(b, k, h * w), dim=-1)  # the official [k, N] view
    flat = indices.reshape(b, 1, h * w * k).expand(b, c, h * w * k)
    selected = support.gather(2, flat).reshape(b, c, k, h * w)
    fused = (weights.unsqueeze(1) * selected).sum(dim=2)
    return fused.reshape(b, c, h, w).to(out_dtype)


def knn_graph_bytes(height: int, width: int, batch: int = 1) -> int:
    """Bytes of the float32 N x N similarity the ORT-target HDNet graph holds for one run."""
    n = -(-height // 8) * -(-width // 8)
    return batch * n * n * 4


def export_ops(target: str, lut_formulation: str = "separable"):
    """A context within which the models call the export implementation of the fused ops.

    Args:
        target: "trt" (custom ops -> custom nodes) or "ort" (standard ops).
        lut_formulation: ORT target only: "separable" (default) or "gridsample".
    """
    if target == "trt":
        lut, knn = _lut_custom, _knn_custom
    elif target == "ort":
        # "gridsample" is the reference op itself: the official chain of 5-D GridSample.
        lut = {"separable": lut_separable, "gridsample": ops.cascaded_lut}[lut_formulation]
        knn = knn_materialized
    else:
        raise ValueError(f"unknown target {target!r}; expected one of {TARGETS}")
    return use_fused_ops(lut, knn)
