"""What a served model does with the requests Triton hands it, without Triton.

`Harmonizer.raw` takes (image, mask) arrays, `Harmonizer.encoded` the bytes of image and mask
files; each returns one result per request, in order: the output, or a `RequestError` that is
that request's error response alone (a bad request never fails the others of its batch, and
never takes the server down). Per request, before any work: image and mask of one batch and
size, finite values in [0,1] (raw), decodable files read exactly as `harmony-run` reads them
(encoded); an empty mask is a warning, not an error. Requests of the same size run as one batch
(dynamic batching gathers them); before a batch runs, its peak memory is estimated and a request
that would not fit is refused with the estimate and the limit (`harmony.runtime.batches`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from harmony.data import decode_image, decode_mask, encode_image
from harmony.errors import HarmonyError, HarmonyWarning
from harmony.runtime.batches import infer_by_size


@dataclass(frozen=True)
class RequestError:
    """A request's error response: what was wrong with it."""

    message: str


class Harmonizer:
    """Requests -> results with an active runner (`harmony.runtime`).

    Args:
        runner: an active runner.
        warn: called with each warning about a request (the server's log).
    """

    def __init__(self, runner, warn: Callable[[str], None]):
        self.runner, self.warn = runner, warn

    def raw(self, requests: list[tuple[np.ndarray, np.ndarray]]) -> list:
        """[image [b,3,H,W], mask [b,1,H,W]] per request -> harmonized [b,3,H,W] float32 or a
        RequestError per request."""
        results: list = [None] * len(requests)
        valid = {}
        for index, (image, mask) in enumerate(requests):
            problem = _raw_problem(image, mask)
            if problem is not None:
                results[index] = RequestError(problem)
                continue
            if not mask.any():
                self.warn(f"request {index}: the mask is empty: the output equals the composite")
            valid[index] = (torch.from_numpy(image), torch.from_numpy(mask))
        for index, output in self._run(valid).items():
            results[index] = output if isinstance(output, RequestError) else output.numpy()
        return results

    def encoded(self, requests: list[tuple[bytes, bytes]]) -> list:
        """(image file bytes, mask file bytes) per request -> PNG bytes at the image's bit depth
        or a RequestError per request."""
        results: list = [None] * len(requests)
        valid, depths = {}, {}
        for index, (image_bytes, mask_bytes) in enumerate(requests):
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", HarmonyWarning)
                    image, depths[index] = decode_image(image_bytes, "the request's image")
                    mask = decode_mask(mask_bytes, "the request's mask")
                if mask.shape[-2:] != image.shape[-2:]:
                    raise HarmonyError(
                        f"the mask is {_hw(mask)} (HxW) but the image is {_hw(image)}: send the "
                        "mask made for this image"
                    )
                for warning in caught:
                    self.warn(f"request {index}: {warning.message}")
            except HarmonyError as exc:
                results[index] = RequestError(str(exc))
                continue
            if not mask.any():
                self.warn(f"request {index}: the mask is empty: the output equals the composite")
            valid[index] = (image, mask)
        for index, output in self._run(valid).items():
            results[index] = (
                output if isinstance(output, RequestError) else encode_image(output, depths[index])
            )
        return results

    def _run(self, requests: dict[int, tuple[torch.Tensor, torch.Tensor]]) -> dict:
        """{index: output [b,3,H,W] or RequestError}: requests of one size as one batch."""
        outputs = infer_by_size(self.runner, list(requests.values()))
        return {
            index: RequestError(str(output)) if isinstance(output, HarmonyError) else output
            for index, output in zip(requests, outputs, strict=True)
        }


def _raw_problem(image: np.ndarray, mask: np.ndarray) -> str | None:
    """What is wrong with a raw request, or None."""
    if image.ndim != 4 or image.shape[1] != 3 or mask.ndim != 4 or mask.shape[1] != 1:
        return (
            f"image must be [B,3,H,W] and mask [B,1,H,W], got {list(image.shape)} and "
            f"{list(mask.shape)}"
        )
    if mask.shape[0] != image.shape[0] or mask.shape[2:] != image.shape[2:]:
        return (
            f"image {list(image.shape)} and mask {list(mask.shape)} must share batch, height "
            "and width: send the mask made for this image"
        )
    for name, values in (("image", image), ("mask", mask)):
        if not np.isfinite(values).all():
            return f"{name} holds NaN or infinite values; expected values in [0,1]"
        low, high = float(values.min()), float(values.max())
        if low < 0 or high > 1:
            return f"{name} values must lie in [0,1], got [{low:g}, {high:g}]"
    return None


def _hw(tensor: torch.Tensor) -> str:
    return "x".join(str(side) for side in tensor.shape[-2:])
