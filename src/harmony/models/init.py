"""Non-degenerate random weights for demos and tests (no official weights are obtainable).

The official N(0, 0.02) initialisation makes both networks output nearly constant images, so
parity checks on it prove little. Here every weight is drawn at a scale that keeps activations
at unit order (std 1/sqrt(fan_in)), normalisation parameters and statistics are perturbed, and
AICT's curve is centred on an identity-like mapping so its LUT is position-dependent but not
saturated. The result is random, labelled as such, and good only for verification.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from harmony.contract import LUT_CHANNELS, LUT_CURVE_POINTS
from harmony.models.aict import AICT
from harmony.models.hdnet import RAIN, DRConv2d


@torch.no_grad()
def randomize_(model: nn.Module, seed: int) -> nn.Module:
    """Re-draw every parameter and buffer of `model` in place (deterministic in `seed`)."""
    generator = torch.Generator().manual_seed(seed)

    def normal_(tensor: torch.Tensor, mean: float, std: float) -> None:
        tensor.copy_(torch.randn(tensor.shape, generator=generator) * std + mean)

    for module in model.modules():
        if isinstance(module, DRConv2d):
            _randomize_dynamic_kernel(module, normal_)
            continue
        if isinstance(module, RAIN):
            for param in module.parameters():
                normal_(param, 0.0, 0.2)
        elif isinstance(module, (nn.LayerNorm, nn.BatchNorm2d)):
            normal_(module.weight, 1.0, 0.1)
            normal_(module.bias, 0.0, 0.1)
            if isinstance(module, nn.BatchNorm2d):
                normal_(module.running_mean, 0.0, 0.1)
                module.running_var.copy_(
                    0.5 + torch.rand(module.running_var.shape, generator=generator)
                )
        for name, param in module.named_parameters(recurse=False):
            if isinstance(module, (RAIN, nn.LayerNorm, nn.BatchNorm2d)):
                break
            if name.endswith("weight"):
                normal_(param, 0.0, 1.0 / math.sqrt(_fan_in(module, param)))
            elif name.endswith("bias"):
                normal_(param, 0.0, 0.1)
    if isinstance(model, AICT):
        _center_aict_curve(model)
    return model


def _fan_in(module: nn.Module, weight: torch.Tensor) -> int:
    if isinstance(module, nn.ConvTranspose2d):
        # Each output pixel sums over in_channels * (k / stride)^2 taps.
        stride = module.stride[0] * module.stride[1]
        return max(1, weight.shape[0] * weight[0, 0].numel() // stride)
    return max(1, weight[0].numel())


def _randomize_dynamic_kernel(module: DRConv2d, normal_) -> None:
    pool_conv, kernel_conv = module.conv_kernel[1], module.conv_kernel[3]
    scale = 1.0 / math.sqrt(module.channels)
    normal_(pool_conv.weight, 0.0, 1.0 / math.sqrt(module.channels))
    normal_(pool_conv.bias, 0.0, 0.5)
    # Generated kernels K = W2 s + b2 with s in (0, 1): entries of order 1/sqrt(C).
    normal_(kernel_conv.weight, 0.0, 1.5 * scale)
    normal_(kernel_conv.bias, 0.0, 0.5 * scale)
    normal_(module.conv_guide.weight, 0.0, scale)
    normal_(module.conv_guide.bias, 0.0, 0.1)


def _center_aict_curve(model: AICT) -> None:
    """Curve ~ (k/7 + spatial noise) * (1 + class noise): identity-like, position-dependent."""
    model.params_layer.weight.mul_(0.15)
    identity = torch.linspace(0.0, 1.0, LUT_CURVE_POINTS).repeat(LUT_CHANNELS)
    model.params_layer.bias.copy_(identity)
    model.class_layer.weight.mul_(0.1)
    model.class_layer.bias.fill_(1.0)


def make_random_checkpoint(arch: str, seed: int, path, force: bool = False):
    """Write a randomly initialised `arch` checkpoint in the official format; returns its path.

    The file's metadata says `random_init: True` with the seed, so no tool mistakes it for a
    trained model.
    """
    from harmony.models.checkpoint import build_model, save_checkpoint
    from harmony.version import __version__

    model = randomize_(build_model(arch), seed)
    metadata = {
        "random_init": True,
        "seed": seed,
        "arch": arch,
        "harmony_version": __version__,
        "note": "random non-degenerate weights for verification; not a trained model",
    }
    return save_checkpoint(model, path, metadata, force=force)
