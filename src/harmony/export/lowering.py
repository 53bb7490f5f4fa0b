"""How each export target writes the two fused ops: one table, `LOWERINGS`.

The models call the custom operators `harmony::cascaded_lut` / `harmony::knn_topk_fusion`
(`harmony.dispatch`), which `torch.export` keeps as single opaque nodes. A target lowers
each of them in one of two ways:

- `CustomNode` (target "trt"): the ONNX translation emits the contract's custom node
  (`harmony::CascadedLut3D` / `harmony::KnnTopkFusion`, `harmony.custom_nodes`) that the
  TensorRT plugins implement;
- `Decomposition` (target "ort"): while the program is captured, the op is replaced by the same
  semantics written with standard operators (separable LUT: bilinear Resize with align_corners
  of every knot plane + linear interpolation along the knots, or the official chain of 5-D
  GridSample; KNN: the materialised N x N similarity, ReduceMax/ArgMax or TopK, softmax,
  gather), with `harmony.dispatch.replaced_ops` around the capture only (the capturing
  thread; nothing is rebound).

The models cast the ops' inputs to float32 before the call, so every form computes in float32
whatever the precision of the surrounding graph, as the reference and the plugins do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from harmony import ops
from harmony.contract import (
    CASCADED_LUT,
    KNN_TOPK_FUSION,
    LUT_CHANNELS,
    LUT_CURVE_POINTS,
    LUT_KNOTS,
    TARGETS,
    OpContract,
)
from harmony.dispatch import replaced_ops, torch_op
from harmony.export import translations

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


# ORT target's LUT formulations; "gridsample" is the reference itself (the official 5-D chain).
LUT_FORMULATIONS = {"separable": lut_separable, "gridsample": ops.cascaded_lut}

# --- the table ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomNode:
    """Lower the op to its contract custom node at ONNX translation."""

    emit: Callable


@dataclass(frozen=True)
class Decomposition:
    """Replace the op by a PyTorch function of standard operators before ONNX translation."""

    function: Callable


LOWERINGS: dict[str, dict[OpContract, CustomNode | Decomposition]] = {
    "trt": {op: CustomNode(translations.emitter(op)) for op in (CASCADED_LUT, KNN_TOPK_FUSION)},
    "ort": {
        CASCADED_LUT: Decomposition(lut_separable),
        KNN_TOPK_FUSION: Decomposition(knn_materialized),
    },
}
assert set(LOWERINGS) == set(TARGETS)


@dataclass(frozen=True)
class TargetLowering:
    """One target's lowering of the custom ops: `decompositions` (contract -> function) applied
    while the program is captured (`capture()`), `translations` as `torch.onnx.export`'s
    custom_translation_table."""

    decompositions: dict
    translations: dict

    def capture(self) -> contextlib.AbstractContextManager:
        """The context to capture the program in (`torch.export.export`)."""
        return replaced_ops(self.decompositions)


def lowering_for(target: str, lut_formulation: str = "separable") -> TargetLowering:
    """The lowering of both fused ops for `target` ("trt" or "ort"); `lut_formulation`
    ("separable" or "gridsample") picks the ORT target's LUT.

    Raises:
        ValueError: an unknown target or formulation.
    """
    if target not in LOWERINGS:
        raise ValueError(f"unknown target {target!r}; expected one of {TARGETS}")
    if lut_formulation not in LUT_FORMULATIONS:
        raise ValueError(f"lut_formulation must be one of {tuple(LUT_FORMULATIONS)}")
    decompositions, translations = {}, {}
    for contract, lowering in LOWERINGS[target].items():
        if isinstance(lowering, CustomNode):
            translations[torch_op(contract)] = lowering.emit
            continue
        function = lowering.function
        if contract is CASCADED_LUT:
            function = LUT_FORMULATIONS[lut_formulation]
        decompositions[contract] = function
    return TargetLowering(decompositions, translations)
