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

from harmony.contract import MIN_SIDE
from harmony.errors import HarmonyError
from harmony.models.aict import AICT, LOW_RES
from harmony.models.hdnet import HDNet

HDNET_MULTIPLE = 8


class HarmonizationPipeline(nn.Module):
    """forward(image [B,3,H,W] in [0,1], mask [B,1,H,W] in [0,1]) -> harmonized [B,3,H,W].

    `low_res` is the side AICT's parameter network sees: the official 256 by default; fitting
    may use less (the network has no positional encoding, so any multiple of 4 runs).
    """

    def __init__(self, model: nn.Module, low_res: int = LOW_RES):
        super().__init__()
        if not isinstance(model, (AICT, HDNet)):
            raise HarmonyError(f"expected an AICT or HDNet model, got {type(model).__name__}")
        self.model = model
        self.low_res = low_res

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if isinstance(self.model, AICT):
            return self._aict(image, mask)
        return self._hdnet(image, mask)

    def _aict(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        image_lr = _resize_bilinear(image, self.low_res)
        mask_lr = _resize_bilinear(mask, self.low_res)
        return self.model(image_lr, mask_lr, image, mask)

    def _hdnet(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2:]
        pad = (0, _pad_to_multiple(width), 0, _pad_to_multiple(height))
        composite = F.pad(image, pad, mode="replicate") * 2.0 - 1.0
        padded_mask = F.pad(mask, pad, mode="replicate")
        generated = self.model(composite, padded_mask)
        blended = generated * padded_mask + composite * (1.0 - padded_mask)
        return ((blended[..., :height, :width] + 1.0) * 0.5).to(image.dtype)


def _pad_to_multiple(size) -> int:
    """Rows/columns that bring `size` up to HDNet's multiple. Written (m - x % m) % m, not
    (-x) % m, so that no negative operand reaches the exported graph's Mod: TensorRT's shape
    analysis must prove the padded sizes non-negative for every H and W of a dynamic profile."""
    return (HDNET_MULTIPLE - size % HDNET_MULTIPLE) % HDNET_MULTIPLE


def _resize_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(
        x, size=(size, size), mode="bilinear", align_corners=False, antialias=False
    )


def check_input_shapes(
    image: torch.Tensor,
    mask: torch.Tensor,
    min_dims: tuple[int, int, int] = (1, MIN_SIDE, MIN_SIDE),
    max_dims: tuple[int, int, int] | None = None,
    range_hint: str = "",
) -> None:
    """Raise HarmonyError unless image is [B,3,H,W] and mask [B,1,H,W], both floating, with
    (B, H, W) between `min_dims` and `max_dims` (None: no upper bound; `range_hint` is added to
    that error). Reads metadata only: no device synchronisation, so it is safe inside timed
    regions."""
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
    for name, tensor in (("image", image), ("mask", mask)):
        if not tensor.is_floating_point():
            raise HarmonyError(f"{name} must be a floating tensor in [0,1], got {tensor.dtype}")
    dims = (b, height, width)
    low = any(value < bound for value, bound in zip(dims, min_dims, strict=True))
    high = max_dims is not None and any(
        value > bound for value, bound in zip(dims, max_dims, strict=True)
    )
    if low or high:
        upper = "any" if max_dims is None else _dims_text(max_dims)
        raise HarmonyError(
            f"batch {b}, {height}x{width} is outside what this model accepts: batch x height x "
            f"width from {_dims_text(min_dims)} to {upper}{range_hint}"
        )


def check_value_range(image: torch.Tensor, mask: torch.Tensor) -> None:
    """Raise HarmonyError unless every image and mask value lies in [0,1] (NaN included). Reads
    the values: a device synchronisation, so it belongs at the user boundary, once."""
    for name, tensor in (("image", image), ("mask", mask)):
        low, high = float(tensor.min()), float(tensor.max())
        if not (low >= 0.0 and high <= 1.0):
            raise HarmonyError(f"{name} values must lie in [0,1], got [{low:.4g}, {high:.4g}]")


def _dims_text(dims: tuple[int, int, int]) -> str:
    return "x".join(str(value) for value in dims)


def harmonize(
    model: nn.Module, image: torch.Tensor, mask: torch.Tensor, check_range: bool = True
) -> torch.Tensor:
    """Run the official inference of `model` on `image` [B,3,H,W] and `mask` [B,1,H,W] in [0,1].

    `check_range` (default True) first checks that the values lie in [0,1] (one host
    synchronisation); pass False where the caller guarantees it. Returns [B,3,H,W] in [0,1]
    (float, dtype of `image`), without gradients.
    """
    check_input_shapes(image, mask)
    if check_range:
        check_value_range(image, mask)
    with torch.inference_mode():
        return HarmonizationPipeline(model)(image, mask)
