"""The PyTorch backend: `harmony.models.HarmonizationPipeline` on the CPU or a CUDA device."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from harmony.errors import HarmonyError
from harmony.models import HarmonizationPipeline, load_checkpoint
from harmony.runtime.base import Availability, Runner

PRECISIONS = ("fp32", "fp16")


class TorchRunner(Runner):
    """Run a checkpoint (or an already loaded model) with PyTorch.

    Args:
        model: a checkpoint path or a loaded AICT/HDNet module.
        device: "cpu" (default) or "cuda".
        precision: "fp32" (default) or "fp16" (CUDA only: autocast, which keeps softmax,
            LayerNorm and reductions in fp32; the two fused ops always compute in fp32).
    """

    backend = "torch"

    def __init__(
        self,
        model: nn.Module | str | os.PathLike,
        device: str = "cpu",
        precision: str = "fp32",
        name: str | None = None,
    ):
        if precision not in PRECISIONS:
            raise HarmonyError(f"precision must be one of {PRECISIONS}, got '{precision}'")
        if precision == "fp16" and device != "cuda":
            raise HarmonyError("fp16 in the torch backend needs --device cuda (CPU is fp32 only)")
        self.model_source = model
        label = Path(model).name if isinstance(model, (str, os.PathLike)) else type(model).__name__
        super().__init__(name or f"torch[{label},{device},{precision}]", device, precision)
        self.pipeline: HarmonizationPipeline | None = None

    @classmethod
    def availability(cls, device: str) -> Availability:
        if device == "cpu":
            return Availability(True)
        if device == "cuda" and torch.cuda.is_available():
            return Availability(True)
        return Availability(False, f"no CUDA device visible to PyTorch {torch.__version__}")

    def activate_impl(self) -> None:
        model = self.model_source
        if not isinstance(model, nn.Module):
            model = load_checkpoint(model)
        self.pipeline = HarmonizationPipeline(model.eval()).to(self.device)

    def infer_impl(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        image, mask = image.to(self.device), mask.to(self.device)
        with (
            torch.inference_mode(),
            torch.autocast(
                device_type="cuda", dtype=torch.float16, enabled=self.precision == "fp16"
            ),
        ):
            return self.pipeline(image, mask).float()

    def synchronize(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def memory_bytes(self) -> int | None:
        return torch.cuda.max_memory_allocated() if self.device == "cuda" else None

    def deactivate_impl(self) -> None:
        self.pipeline = None
