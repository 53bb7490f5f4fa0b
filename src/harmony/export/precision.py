"""FP16 graphs with FP32 islands (strongly typed: every precision change is an explicit Cast).

TensorRT 11 builds strongly typed networks: the precision of every layer is the type of its
tensors in the ONNX graph, so mixed precision must be written into the graph. `fp16_copy(model)`
returns a half-precision copy of a model whose numerically sensitive parts compute in float32:

- kept by the models themselves: AICT's interval softmax + cumsum (knots are float32), RAIN
  statistics (`x.float()`), the fused ops (inputs cast up by `harmony.dispatch`);
- added here: LayerNorm (AICT), the attention softmax (AICT), InstanceNorm (HDNet) and the
  global average pool of the dynamic-kernel branch (HDNet DRConv) compute in float32;
- at the graph boundary: the model's inputs are cast to float16 at its entry (forward
  pre-hook) and HDNet's output back to float32 (forward hook), so the pipeline around it
  (resize to 256, padding, [-1,1] mapping, mask blend, crop) and the LUT stage run in float32.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from harmony.models.aict import AICT, SelfAttention
from harmony.models.hdnet import HDNet, instance_norm


class Float32LayerNorm(nn.Module):
    """LayerNorm computed in float32 (statistics over 256 features), result in the input dtype."""

    def __init__(self, norm: nn.LayerNorm):
        super().__init__()
        self.normalized_shape, self.eps = norm.normalized_shape, norm.eps
        self.weight = nn.Parameter(norm.weight.detach().float(), requires_grad=False)
        self.bias = nn.Parameter(norm.bias.detach().float(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps)
        return out.to(x.dtype)


class Float32InstanceNorm(nn.Module):
    """Affine-free InstanceNorm computed in float32, result in the input dtype."""

    def __init__(self, norm: nn.InstanceNorm2d):
        super().__init__()
        if norm.affine or norm.track_running_stats:
            raise ValueError("only affine-free InstanceNorm without running stats is supported")
        self.eps = norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm(x.float(), self.eps).to(x.dtype)


class Float32GlobalAvgPool(nn.Module):
    """AdaptiveAvgPool2d(1) with a float32 mean (up to 4 M pixels at 2048^2)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().mean(dim=(2, 3), keepdim=True).to(x.dtype)


class MixedPrecisionAttention(nn.Module):
    """`SelfAttention` with float16 projections and matmuls and a float32 softmax."""

    def __init__(self, attention: SelfAttention):
        super().__init__()
        self.heads = attention.heads
        self.in_proj_weight = attention.in_proj_weight
        self.in_proj_bias = attention.in_proj_bias
        self.out_proj = attention.out_proj

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, dim = x.shape
        head_dim = dim // self.heads
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.reshape(b, n, 3, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        scores = (q * head_dim**-0.5) @ k.transpose(-2, -1)
        weights = torch.softmax(scores.float(), dim=-1).to(x.dtype)
        attended = weights @ v
        return self.out_proj(attended.transpose(1, 2).reshape(b, n, dim))


def _cast_inputs(dtype):
    def hook(module, args):
        return tuple(a.to(dtype) if torch.is_tensor(a) else a for a in args)

    return hook


def _cast_output(dtype):
    def hook(module, args, output):
        return output.to(dtype)

    return hook


def fp16_copy(model: nn.Module) -> nn.Module:
    """A float16 copy of an AICT/HDNet model with the float32 islands listed in the module doc.

    The returned module keeps the class (so `HarmonizationPipeline` accepts it) and takes
    float32 inputs; `model` is left untouched.
    """
    half = copy.deepcopy(model).half().eval()
    for parent in list(half.modules()):
        for name, child in list(parent.named_children()):
            replacement = _fp32_island(child)
            if replacement is not None:
                setattr(parent, name, replacement)
    if isinstance(half, AICT):
        # lut_maps concatenates the float32 low-res image and mask, then calls the encoder.
        half.encoder.register_forward_pre_hook(_cast_inputs(torch.float16))
    elif isinstance(half, HDNet):
        half.register_forward_pre_hook(_cast_inputs(torch.float16))
        half.register_forward_hook(_cast_output(torch.float32))
    else:
        raise TypeError(f"expected AICT or HDNet, got {type(model).__name__}")
    return half


def _fp32_island(module: nn.Module) -> nn.Module | None:
    if isinstance(module, nn.LayerNorm):
        return Float32LayerNorm(module)
    if isinstance(module, nn.InstanceNorm2d):
        return Float32InstanceNorm(module)
    if isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1)):
        return Float32GlobalAvgPool()
    if isinstance(module, SelfAttention):
        return MixedPrecisionAttention(module)
    return None
