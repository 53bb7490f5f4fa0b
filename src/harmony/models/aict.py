"""AICT (NeurIPS 2024): a ViT parameter network predicting position-dependent cascaded 3D LUTs.

State-dict compatible with the official `iharm.model.base.aict_net.AICT` as configured by
`ViT_aict` (mean 0 / std 1 input normalisation, i.e. the identity; 8 curve points; clamp); see
docs/models.md. Quirks kept on purpose: no positional encoding, post-norm encoder layers, a soft
(bilinearly resized) low-resolution mask, clamp before the mask blend. The LUT is applied by the
`harmony::cascaded_lut` custom op (`harmony.dispatch`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harmony import dispatch
from harmony.contract import LUT_CHANNELS, LUT_CURVE_POINTS

LOW_RES = 256
PATCH = 4
EMBED_DIM = 256
HEADS = 2
FFN_DIM = 512
DEPTH = 9
DECODER_CHANNELS = 12


class PatchRearrange(nn.Module):
    """einops `b c (h p1) (w p2) -> b (h w) (p1 p2 c)` with p1 = p2 = 4 (no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, height, width = x.shape
        gh, gw = height // PATCH, width // PATCH
        x = x.reshape(b, c, gh, PATCH, gw, PATCH).permute(0, 2, 4, 3, 5, 1)
        return x.reshape(b, gh * gw, PATCH * PATCH * c)


class SelfAttention(nn.Module):
    """Multi-head self-attention with `nn.MultiheadAttention`'s parameter names (packed q,k,v)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, dim = x.shape
        qkv = F.linear(x, self.in_proj_weight, self.in_proj_bias)
        qkv = qkv.reshape(b, n, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.out_proj(attended.transpose(1, 2).reshape(b, n, dim))


class EncoderLayer(nn.Module):
    """Post-norm transformer layer with `nn.TransformerEncoderLayer`'s names (exact GELU)."""

    def __init__(self, dim: int = EMBED_DIM, heads: int = HEADS, ffn_dim: int = FFN_DIM):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.self_attn(x))
        return self.norm2(x + self.linear2(F.gelu(self.linear1(x))))


class TransformerStack(nn.Module):
    """`nn.TransformerEncoder` without a final norm: `layers.{i}`."""

    def __init__(self, depth: int = DEPTH):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer() for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class PatchEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_to_embedding = nn.Sequential(
            PatchRearrange(), nn.Linear(PATCH * PATCH * 4, EMBED_DIM)
        )
        self.transformer_enc = TransformerStack()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B,4,256,256] -> token grid T1 [B,256,64,64]."""
        tokens = self.transformer_enc(self.patch_to_embedding(x))
        side = x.shape[-1] // PATCH
        return tokens.transpose(1, 2).reshape(x.shape[0], EMBED_DIM, side, side)


class PatchDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.dec = nn.ConvTranspose2d(EMBED_DIM, DECODER_CHANNELS, PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(x)


class AICT(nn.Module):
    """The official AICT network; `arch` is set by the checkpoint loader."""

    arch = "aict"
    # Child modules whose layers INT8 graphs keep floating point (`harmony.calibration`): none,
    # every weighted layer sees the 256x256 thumbnail, and all INT8 keep the held-out gain
    # (benchmarks/results/int8.md).
    int8_float_modules: tuple[str, ...] = ()

    @staticmethod
    def report_stage(child: str) -> str:
        """The stage of work traced in child module `child`, for reports such as MACs by stage:
        the children form the "parameter_network"; AICT's own forward ("") applies the "lut"."""
        return "lut" if child == "" else "parameter_network"

    def __init__(self):
        super().__init__()
        lut_outputs = LUT_CHANNELS * LUT_CURVE_POINTS
        self.encoder = PatchEncoder()
        self.decoder = PatchDecoder()
        self.bottom_convs = nn.Sequential(
            nn.Conv2d(EMBED_DIM, 128, 3, padding=1),
            nn.BatchNorm2d(128),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(128, 64, 3, padding=1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
        )
        self.max_pool = nn.AdaptiveMaxPool2d(1)
        self.class_layer = nn.Linear(64, lut_outputs)
        self.colors_layer = nn.Conv2d(DECODER_CHANNELS, lut_outputs, 1)
        self.params_layer = nn.Conv2d(DECODER_CHANNELS, lut_outputs, 1)

    def lut_maps(
        self, image_lr: torch.Tensor, mask_lr: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Low-res [B,3,256,256] image and [B,1,256,256] mask -> (knots [B,3,9,256,256],
        curve [B,3,8,256,256]), the inputs of `harmony.ops.cascaded_lut`."""
        tokens = self.encoder(torch.cat([image_lr, mask_lr], dim=1))
        decoded = self.decoder(tokens)
        b, _, h, w = decoded.shape
        class_weight = self.class_layer(self.max_pool(self.bottom_convs(tokens)).flatten(1))
        logits = self.colors_layer(decoded).reshape(b, LUT_CHANNELS, LUT_CURVE_POINTS, h, w)
        # The interval softmax and its cumulative sum stay in float32: in float16 the end knot
        # can miss 1 by a few 1e-3 (docs/models.md, "Numerics").
        intervals = torch.softmax(logits.float(), dim=2)
        knots = F.pad(torch.cumsum(intervals, dim=2), (0, 0, 0, 0, 1, 0))
        curve = self.params_layer(decoded) * class_weight[:, :, None, None]
        return knots, curve.reshape(b, LUT_CHANNELS, LUT_CURVE_POINTS, h, w)

    def forward(
        self,
        image_lr: torch.Tensor,
        mask_lr: torch.Tensor,
        image: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """Harmonize the full-resolution `image` [B,3,H,W] with LUTs predicted at low res."""
        knots, curve = self.lut_maps(image_lr, mask_lr)
        return dispatch.cascaded_lut(image, mask, knots, curve)
