"""The official inference of each network as one module: image and mask in [0,1], result out.

`HarmonizationPipeline` is what every backend runs (PyTorch directly, ONNX export traces it):
- AICT: image and mask are resized to 256x256 by bilinear interpolation without antialiasing
  (the official predictor uses cv2 INTER_LINEAR on uint8: about 1e-3 apart), the LUT maps are
  predicted there and applied at full resolution.
- HDNet: the composite is mapped to [-1,1], the generator runs at input resolution, its output
  is blended with the composite by the mask and mapped back to [0,1]. Sizes that are not
  multiples of 8 are edge-padded at the bottom/right to the next multiple and cropped back (the
  official code cannot run them at all).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harmony.errors import HarmonyError
from harmony.models.aict import AICT, LOW_RES
from harmony.models.hdnet import HDNet

HDNET_MULTIPLE = 8


class HarmonizationPipeline(nn.Module):
    """forward(image [B,3,H,W] in [0,1], mask [B,1,H,W] in [0,1]) -> harmonized [B,3,H,W]."""

    def __init__(self, model: nn.Module):
        super().__init__()
        if not isinstance(model, (AICT, HDNet)):
            raise HarmonyError(f"expected an AICT or HDNet model, got {type(model).__name__}")
        self.model = model

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if isinstance(self.model, AICT):
            return self._aict(image, mask)
        return self._hdnet(image, mask)

    def _aict(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        image_lr = _resize_bilinear(image, LOW_RES)
        mask_lr = _resize_bilinear(mask, LOW_RES)
        return self.model(image_lr, mask_lr, image, mask)

    def _hdnet(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad = (0, (-width) % HDNET_MULTIPLE, 0, (-height) % HDNET_MULTIPLE)
        composite = F.pad(image, pad, mode="replicate") * 2.0 - 1.0
        padded_mask = F.pad(mask, pad, mode="replicate")
        generated = self.model(composite, padded_mask)
        blended = generated * padded_mask + composite * (1.0 - padded_mask)
        return ((blended[..., :height, :width] + 1.0) * 0.5).to(image.dtype)


def _resize_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(
        x, size=(size, size), mode="bilinear", align_corners=False, antialias=False
    )


def check_inputs(image: torch.Tensor, mask: torch.Tensor) -> None:
    """Raise HarmonyError unless image is [B,3,H,W] and mask [B,1,H,W], floating, in [0,1]."""
    if not isinstance(image, torch.Tensor) or not isinstance(mask, torch.Tensor):
        raise HarmonyError("image and mask must be torch tensors")
    if image.dim() != 4 or image.shape[1] != 3:
        raise HarmonyError(f"image must be [B,3,H,W], got {list(image.shape)}")
    b, _, height, width = image.shape
    if tuple(mask.shape) != (b, 1, height, width):
        raise HarmonyError(
            f"mask must be [{b},1,{height},{width}] to match the image, got {list(mask.shape)}; "
            "resize the mask to the image size"
        )
    if min(height, width) < 2:
        raise HarmonyError(f"images must be at least 2x2, got {height}x{width}")
    for name, tensor in (("image", image), ("mask", mask)):
        if not tensor.is_floating_point():
            raise HarmonyError(f"{name} must be a floating tensor in [0,1], got {tensor.dtype}")
        low, high = float(tensor.min()), float(tensor.max())
        if low < 0.0 or high > 1.0:
            raise HarmonyError(f"{name} values must lie in [0,1], got [{low:.4g}, {high:.4g}]")


def harmonize(model: nn.Module, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Run the official inference of `model` on `image` [B,3,H,W] and `mask` [B,1,H,W] in [0,1].

    Returns [B,3,H,W] in [0,1] (float, dtype of `image`), without gradients.
    """
    check_inputs(image, mask)
    with torch.inference_mode():
        return HarmonizationPipeline(model)(image, mask)
