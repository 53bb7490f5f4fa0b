"""HDNet / HDNet-lite (ACM MM 2023): U-Net with LocalDynamics (KNN top-k fusion), RAIN and
mask-aware dynamic 1x1 convolutions.

State-dict compatible with the official `models.networks.HDNet` built by `define_G` with the
official options (`ngf=32`; HDNet-lite is `ngf=8`); see docs/models.md. Quirks kept on purpose:
skips are LeakyReLU(0.2) of the encoder outputs (the official in-place LeakyReLU rewrites them),
LocalDynamics uses raw dot products of masked features with k = 1 and a softmax over positions,
and DRConv's `conv_guide` exists but is unused. The dynamic 1x1 convolutions are a batched
matmul instead of the official `Corr` autograd function; the KNN fusion is the
`harmony::knn_topk_fusion` custom op (`harmony.dispatch`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harmony import dispatch

NORM_EPS = 1e-5
LEAKY_SLOPE = 0.2
# Child modules of the encoder (up to the bottleneck), for reports by stage.
ENCODER_CHILDREN = frozenset(f"model_layer{i}" for i in (0, 1, 2, 3, 4, 5, 6, 71))


def instance_norm(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Affine-free instance norm (instance statistics, biased variance), as the official
    InstanceNorm2d. Unlike `F.instance_norm` it accepts a single spatial element, whose output
    is 0 (as ONNX InstanceNormalization gives): HDNet's bottleneck is 1x1 for inputs up to 8x8."""
    return torch.instance_norm(x, None, None, None, None, True, 0.0, eps, False)


class InstanceNorm2d(nn.InstanceNorm2d):
    """The official affine-free InstanceNorm2d, computed by `instance_norm`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm(x, self.eps)


def resize_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Nearest (floor) resize of `mask` to the spatial size of `like`, as the official code."""
    return F.interpolate(mask, size=like.shape[-2:], mode="nearest")


class RAIN(nn.Module):
    """Region-aware instance norm: the foreground is re-styled with background statistics."""

    def __init__(self, channels: int):
        super().__init__()
        self.foreground_gamma = nn.Parameter(torch.zeros(channels))
        self.foreground_beta = nn.Parameter(torch.zeros(channels))
        self.background_gamma = nn.Parameter(torch.zeros(channels))
        self.background_beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = resize_mask(mask, x)
        # Statistics in float32: reductions over up to 4 M pixels at 2048x2048.
        xf = x.float()
        mean_b, std_b = _region_stats(xf, 1.0 - m)
        mean_f, std_f = _region_stats(xf, m)
        fg_gamma, fg_beta = _per_channel(self.foreground_gamma), _per_channel(self.foreground_beta)
        bg_gamma, bg_beta = _per_channel(self.background_gamma), _per_channel(self.background_beta)
        background = (xf - mean_b) / std_b * (1.0 + bg_gamma) + bg_beta
        foreground = ((xf - mean_f) / std_f * std_b + mean_b) * (1.0 + fg_gamma) + fg_beta
        return (background * (1.0 - m) + foreground * m).to(x.dtype)


def _per_channel(p: torch.Tensor) -> torch.Tensor:
    return p.float()[None, :, None, None]


def _region_stats(x: torch.Tensor, weight: torch.Tensor):
    """Masked mean and std (biased variance, eps 1e-5) of `x` under region `weight`."""
    count = weight.sum(dim=(2, 3), keepdim=True) + NORM_EPS
    mean = (x * weight).sum(dim=(2, 3), keepdim=True) / count
    var = ((x * weight + (1.0 - weight) * mean - mean) ** 2).sum(dim=(2, 3), keepdim=True) / count
    return mean, torch.sqrt(var + NORM_EPS)


class DRConv2d(nn.Module):
    """Mask-aware global dynamic 1x1 convolution (MGD) with the official parameter names."""

    def __init__(self, channels: int, regions: int = 2):
        super().__init__()
        self.channels = channels
        self.conv_kernel = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, regions * regions, 1),
            nn.Sigmoid(),
            nn.Conv2d(regions * regions, regions * channels * channels, 1, groups=regions),
        )
        # Present in official checkpoints, never used by the official forward.
        self.conv_guide = nn.Conv2d(channels, regions, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        kernels = self.conv_kernel(x).reshape(b, 2 * c, c)  # rows 0..C-1: foreground kernel
        y = torch.bmm(kernels, x.reshape(b, c, h * w)).reshape(b, 2, c, h, w)
        m = resize_mask(mask, x)
        return y[:, 0] * m + y[:, 1] * (1.0 - m)


class LocalDynamics(nn.Module):
    """LocalDynamics at the bottleneck: KNN top-k fusion, a 1x1 mix, foreground-only update."""

    def __init__(self, channels: int, k: int = 1):
        super().__init__()
        self.linear = nn.Conv1d(2 * channels, channels, kernel_size=1)
        self.k = k

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        m = resize_mask(mask, x)
        fused = dispatch.knn_topk_fusion(x, m, self.k)
        hybrid = torch.cat([fused, x * m], dim=1).reshape(b, 2 * c, h * w)
        refined = self.linear(hybrid).reshape(b, c, h, w)
        return refined * m + x * (1.0 - m)


def _down(cin: int, cout: int, kernel: int) -> nn.Sequential:
    stride = 2 if kernel == 4 else 1
    return nn.Sequential(
        nn.LeakyReLU(LEAKY_SLOPE), nn.Conv2d(cin, cout, kernel, stride, 1, bias=False)
    )


def _up(cin: int, cout: int, kernel: int, bias: bool = False) -> nn.Sequential:
    stride = 2 if kernel == 4 else 1
    return nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(cin, cout, kernel, stride, 1, bias=bias))


class HDNet(nn.Module):
    """The official HDNet generator: `forward(x, mask)` with `x` in [-1,1], returns tanh output.

    Args:
        ngf: base width (32: HDNet, 8: HDNet-lite).
        input_nc: 3 (official) or 4 (the mask concatenated to the input, `--input_nc 4`).
    """

    # Child modules whose layers INT8 graphs keep floating point (`harmony.calibration`): the
    # image-facing first convolution and the output layer, which writes the image itself
    # (HDNet-lite on the held-out set: 33% of the FP32 PSNR gain kept with them INT8, 101%
    # without; benchmarks/results/int8_ablations.md).
    int8_float_modules: tuple[str, ...] = ("model_layer0", "model_out")

    def __init__(self, ngf: int = 32, input_nc: int = 3, output_nc: int = 3):
        super().__init__()
        if input_nc not in (3, 4):
            raise ValueError(f"input_nc must be 3 or 4, got {input_nc}")
        self.ngf, self.input_nc = ngf, input_nc
        g1, g2, g4, g8 = ngf, 2 * ngf, 4 * ngf, 8 * ngf
        self.model_layer0 = nn.Conv2d(input_nc, g1, 3, 1, 1, bias=False)
        self.model_layer1 = _down(g1, g2, 4)
        self.model_layer1norm = InstanceNorm2d(g2)
        self.model_layer2 = _down(g2, g4, 3)
        self.model_layer2norm = InstanceNorm2d(g4)
        self.model_layer3 = _down(g4, g8, 4)
        self.model_layer3norm = InstanceNorm2d(g8)
        self.model_layer4 = _down(g8, g8, 3)
        self.model_layer4norm = InstanceNorm2d(g8)
        self.model_layer5 = _down(g8, g8, 4)
        self.model_layer5norm = InstanceNorm2d(g8)
        self.model_layer6 = _down(g8, g8, 3)
        self.model_layer6norm = InstanceNorm2d(g8)
        self.model_layer71 = _down(g8, g8, 3)
        self.model_layer72 = _up(g8, g8, 3)
        self.model_layer72norm = RAIN(g8)
        self.model_layer8 = _up(2 * g8, g8, 3)
        self.model_layer8norm = RAIN(g8)
        self.model_layer9 = _up(2 * g8, g8, 4)
        self.model_layer9norm = RAIN(g8)
        self.model_layer10 = _up(2 * g8, g8, 3)
        self.model_layer10norm = RAIN(g8)
        self.model_layer11 = _up(2 * g8, g4, 4)
        self.model_layer11norm = RAIN(g4)
        self.model_layer11att = DRConv2d(2 * g4)
        self.model_layer12 = _up(2 * g4, g2, 3)
        self.model_layer12norm = RAIN(g2)
        self.model_layer12att = DRConv2d(2 * g2)
        self.model_layer13 = _up(2 * g2, g1, 4)
        self.model_layer13norm = RAIN(g1)
        self.model_layer13att = DRConv2d(2 * g1)
        self.model_out = nn.Sequential(
            nn.ReLU(), nn.ConvTranspose2d(2 * g1, output_nc, 3, 1, 1), nn.Tanh()
        )
        self.LD = LocalDynamics(g8)

    @property
    def arch(self) -> str:
        return "hdnet-lite" if self.ngf == 8 else "hdnet"

    @staticmethod
    def report_stage(child: str) -> str:
        """The stage ("encoder", "local_dynamics", "decoder") of work traced in child module
        `child` ("" for this module's own forward), for reports such as MACs by stage."""
        if child == "LD":
            return "local_dynamics"
        return "encoder" if child in ENCODER_CHILDREN else "decoder"

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.input_nc == 4:
            x = torch.cat([x, mask], dim=1)
        encoder = [
            (self.model_layer1, self.model_layer1norm),
            (self.model_layer2, self.model_layer2norm),
            (self.model_layer3, self.model_layer3norm),
            (self.model_layer4, self.model_layer4norm),
            (self.model_layer5, self.model_layer5norm),
            (self.model_layer6, self.model_layer6norm),
        ]
        # Each block starts with an in-place LeakyReLU, so the skips are LeakyReLU(e_k).
        e = self.model_layer0(x)
        skips = []
        for conv, norm in encoder:
            skips.append(F.leaky_relu(e, LEAKY_SLOPE))
            e = norm(conv[1](skips[-1]))
        skips.append(F.leaky_relu(e, LEAKY_SLOPE))
        d = self.LD(self.model_layer71[1](skips[-1]), mask)
        d = self.model_layer72norm(self.model_layer72(d), mask)
        for conv, norm in [
            (self.model_layer8, self.model_layer8norm),
            (self.model_layer9, self.model_layer9norm),
            (self.model_layer10, self.model_layer10norm),
            (self.model_layer11, self.model_layer11norm),
        ]:
            d = norm(conv(torch.cat([skips.pop(), d], dim=1)), mask)
        for att, conv, norm in [
            (self.model_layer11att, self.model_layer12, self.model_layer12norm),
            (self.model_layer12att, self.model_layer13, self.model_layer13norm),
        ]:
            d = norm(conv(att(torch.cat([skips.pop(), d], dim=1), mask)), mask)
        d = self.model_layer13att(torch.cat([skips.pop(), d], dim=1), mask)
        return self.model_out(d)
