"""MACs the way the papers count them: the rules of the `thop` 0.1.1 counter.

The AICT paper's 14.35 G is `thop.profile` on the network (docs/models.md, AICT "Cost"). thop
hooks modules by exact type: convolutions count output elements x in_channels/groups x kernel
size (transposed convolutions too, so a stride-4 deconvolution counts 16x its real work), Linear
counts in_features x output elements, BatchNorm/LayerNorm/InstanceNorm count 2 x input elements
(x2 when affine), nn.Softmax counts (3 x features - 1) per row, AdaptiveAvgPool counts
(kernel + 1) per output. Attention (`nn.MultiheadAttention` has no rule and its out_proj is
not an exact nn.Linear), functional calls (grid_sample, interpolate, matmul) and anything
without a rule count 0. This module reproduces those rules on harmony's modules, with the
official module types they stand for.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from harmony.models import HarmonizationPipeline
from harmony.models.aict import SelfAttention
from harmony.models.hdnet import LocalDynamics


def _conv(module, inputs, output) -> int:
    in_channels = inputs[0].shape[1]
    kernel = math.prod(module.weight.shape[2:])
    return output.numel() * (in_channels // module.groups) * kernel


def _linear(module, inputs, output) -> int:
    return module.in_features * output.numel()


def _norm(module, inputs, output) -> int:
    affine = getattr(module, "affine", False) or getattr(module, "elementwise_affine", False)
    return 2 * inputs[0].numel() * (2 if affine else 1)


def _adaptive_avg(module, inputs, output) -> int:
    kernel = math.prod(i // o for i, o in zip(inputs[0].shape[2:], output.shape[2:], strict=True))
    return (kernel + 1) * output.numel()


def _local_dynamics(module, inputs, output) -> int:
    """The official LocalDynamics: its Conv1d, plus its nn.Softmax over [B?, C, k, N] rows."""
    b, c, h, w = inputs[0].shape
    n = h * w
    conv1d = b * c * n * 2 * c  # output elements x in_channels x kernel 1
    softmax = b * c * module.k * (3 * n - 1)
    return conv1d + softmax


_RULES = {
    nn.Conv1d: _conv,
    nn.Conv2d: _conv,
    nn.ConvTranspose2d: _conv,
    nn.Linear: _linear,
    nn.BatchNorm2d: _norm,
    nn.LayerNorm: _norm,
    nn.InstanceNorm2d: _norm,
    nn.AdaptiveAvgPool2d: _adaptive_avg,
    LocalDynamics: _local_dynamics,
}
# Modules whose children thop never reaches: they have no rule of their own (MHA) or are
# counted as a whole above (LocalDynamics and its Conv1d).
_OPAQUE = (SelfAttention, LocalDynamics)


@torch.no_grad()
def paper_style_macs(model: nn.Module, height: int, width: int) -> int:
    """thop-0.1.1-style MAC count of one forward of `model` at batch 1 and `height` x `width`."""
    counted: list[int] = []
    hooks = []

    def visit(module: nn.Module) -> None:
        # Our modules stand for the official types they subclass (e.g. hdnet.InstanceNorm2d).
        rule = next((_RULES[cls] for cls in type(module).__mro__ if cls in _RULES), None)
        if rule is not None:
            hooks.append(
                module.register_forward_hook(
                    lambda m, i, o, rule=rule: counted.append(rule(m, i, o))
                )
            )
        if not isinstance(module, _OPAQUE):
            for child in module.children():
                visit(child)

    visit(model)
    try:
        image = torch.rand(1, 3, height, width)
        mask = torch.zeros(1, 1, height, width)
        mask[..., height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 1
        HarmonizationPipeline(model.eval())(image, mask)
    finally:
        for hook in hooks:
            hook.remove()
    return sum(counted)
