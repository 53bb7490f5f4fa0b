"""The PyTorch backend: `harmony.models.HarmonizationPipeline` on the CPU or a CUDA device.

On CUDA it runs the two fused ops with the plugin kernels (libharmony_cuda_ops.so, through
`harmony.plugins.cuda`) when they are built, chosen for its own calls with
`harmony.dispatch.use_kernels` (per thread, never process-wide), and replays the whole
pipeline from CUDA graphs when it can be captured: AICT always, HDNet with the fused kernels (the
reference KNN op picks its active queries with `nonzero()`, a host synchronisation).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from harmony.contract import KERNELS, check_precision
from harmony.dispatch import cuda_kernels, use_kernels
from harmony.errors import HarmonyError
from harmony.models import HarmonizationPipeline, load_checkpoint
from harmony.runtime.backends import Availability
from harmony.runtime.base import Runner
from harmony.runtime.cuda_graphs import GraphedCall
from harmony.runtime.sources import ModelSource, describe

INT8_GRAPHS_ONLY = (
    "int8 is a graph precision (explicit Q/DQ): export with harmony-export --int8 and run the "
    "graph on ort-custom, ort or trt"
)


def graph_capture_blocker(arch: str, kernels: str) -> str | None:
    """Why the pipeline of `arch` with `kernels` cannot be captured in a CUDA graph, or None."""
    if arch.startswith("hdnet") and kernels != "fused":
        return (
            f"{arch} with the reference KNN op cannot be captured in a CUDA graph (it picks the "
            "active queries with nonzero(), a host synchronisation)"
        )
    return None


class TorchRunner(Runner):
    """Run a checkpoint (or an already loaded model) with PyTorch.

    Args:
        model: a checkpoint path or a loaded AICT/HDNet module.
        device: "cpu" (default) or "cuda".
        precision: "fp32" (None, the default; on CUDA without TF32 convolutions) or "fp16" (CUDA
            only: autocast, which keeps softmax, LayerNorm and reductions in fp32; the two fused
            ops always compute in fp32); "int8" or fp16 on the CPU is refused on activation
            (`availability`).
        kernels: "reference" (harmony.ops), "fused" (the plugin kernels, CUDA only) or None:
            fused on CUDA where libharmony_cuda_ops.so is built, else reference.
        cuda_graphs: replay from CUDA graphs (True, CUDA only), eager (False), or None: graphs
            on CUDA whenever the pipeline can be captured (see the module docstring).

    After `activate()`, `kernels` and `cuda_graphs` hold what actually runs.
    """

    backend = "torch"

    def __init__(
        self,
        model: nn.Module | str | os.PathLike,
        device: str = "cpu",
        precision: str | None = None,
        name: str | None = None,
        kernels: str | None = None,
        cuda_graphs: bool | None = None,
    ):
        precision = check_precision("fp32" if precision is None else precision, "--precision")
        if kernels is not None and kernels not in KERNELS:
            raise HarmonyError(f"kernels must be one of {KERNELS}, got '{kernels}'")
        if device != "cuda":
            for what, wanted in (
                ("the fused kernels", kernels == "fused"),
                ("CUDA graphs", cuda_graphs),
            ):
                if wanted:
                    raise HarmonyError(f"the torch backend needs --device cuda for {what}")
        self.model_source = model
        label = Path(model).name if isinstance(model, (str, os.PathLike)) else type(model).__name__
        super().__init__(name or f"torch[{label},{device},{precision}]", device, precision)
        self._requested = (kernels, cuda_graphs)
        self.kernels: str | None = None  # resolved by activate()
        self.cuda_graphs: bool | None = None
        self.pipeline: HarmonizationPipeline | None = None
        self._graphed: GraphedCall | None = None

    @classmethod
    def availability(cls, device: str, precision: str | None = None) -> Availability:
        if device == "cuda" and not torch.cuda.is_available():
            return Availability(False, f"no CUDA device visible to PyTorch {torch.__version__}")
        if precision == "int8":
            return Availability(False, INT8_GRAPHS_ONLY)
        if device == "cpu" and precision == "fp16":
            return Availability(False, "fp16 in PyTorch needs a CUDA device")
        return Availability(device in ("cpu", "cuda"), f"unknown device '{device}'")

    def source_impl(self) -> ModelSource | None:
        model = self.model_source
        return None if isinstance(model, nn.Module) else describe(model)

    def activate_impl(self) -> None:
        model = self.model_source
        if not isinstance(model, nn.Module):
            model = load_checkpoint(model)
        self.arch = model.arch
        kernels, cuda_graphs = self._requested
        self.kernels = self._resolve_kernels(kernels)
        self.cuda_graphs = self._resolve_cuda_graphs(cuda_graphs, model.arch)
        self.pipeline = HarmonizationPipeline(model.eval()).to(self.device)
        self._graphed = GraphedCall(self._forward) if self.cuda_graphs else None

    def _resolve_kernels(self, kernels: str | None) -> str:
        if self.device != "cuda":
            return "reference"
        return cuda_kernels(torch.device(self.device), kernels)

    def _resolve_cuda_graphs(self, cuda_graphs: bool | None, arch: str) -> bool:
        if self.device != "cuda" or cuda_graphs is False:
            return False
        blocker = graph_capture_blocker(arch, self.kernels)
        if cuda_graphs and blocker:
            raise HarmonyError(f"{blocker}; use the fused kernels or turn CUDA graphs off")
        return blocker is None

    def infer_impl(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        image, mask = image.to(self.device), mask.to(self.device)
        with torch.inference_mode(), use_kernels(self.kernels):
            if self._graphed is not None:
                try:
                    return self._graphed(image, mask)
                except HarmonyError as error:
                    if self._requested[1]:  # asked for explicitly: no silent fallback
                        raise
                    warnings.warn(f"{error}; {self.name} runs eagerly from now on", stacklevel=2)
                    self._graphed, self.cuda_graphs = None, False
            return self._forward(image, mask)

    def _forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # No autocast cache: CUDA graph capture requires it off, and inference needs none.
        with (
            torch.autocast(
                device_type="cuda",
                dtype=torch.float16,
                enabled=self.precision == "fp16",
                cache_enabled=False,
            ),
            _fp32_convolutions()
            if self.device == "cuda" and self.precision == "fp32"
            else contextlib.nullcontext(),
        ):
            return self.pipeline(image, mask).float()

    def synchronize(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()

    def memory_bytes(self) -> int | None:
        return torch.cuda.max_memory_allocated() if self.device == "cuda" else None

    def deactivate_impl(self) -> None:
        if self._graphed is not None:
            self._graphed.clear()
        self.pipeline, self._graphed = None, None


@contextlib.contextmanager
def _fp32_convolutions():
    """FP32 means FP32 (as in the TensorRT engines): cuDNN convolutions default to TF32 on
    Ampere and later; this turns that off for the block and restores the setting."""
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # PyTorch >= 2.9
        target, attribute, value = conv, "fp32_precision", "ieee"
    else:
        target, attribute, value = torch.backends.cudnn, "allow_tf32", False
    saved = getattr(target, attribute)
    setattr(target, attribute, value)
    try:
        yield
    finally:
        setattr(target, attribute, saved)
