"""The runner interface every backend implements (after Polygraphy's BaseRunner).

A runner is created cheaply, `activate()`d once (load the model, build sessions, allocate),
asked to `infer(image, mask)` any number of times and `deactivate()`d. The public methods check
their inputs and state; backends implement the `*_impl` hooks only, and `infer_impl` is what a
benchmark times: `infer` checks shapes and dtypes against the runner's input range from tensor
metadata alone (no device synchronisation). Whether the values lie in [0,1] is checked once at
the user boundary (`harmony.harmonize`, `harmony-run`), never per call here.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch

from harmony.contract import MIN_SIDE
from harmony.errors import HarmonyError
from harmony.models.pipeline import check_input_shapes


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, why (said to the user as a skip reason)."""

    ok: bool
    reason: str = ""


class Runner(abc.ABC):
    """Base class of the torch, onnxruntime and tensorrt runners.

    Subclasses set `backend` ("torch", "ort", "trt") and implement `activate_impl`,
    `infer_impl` and `deactivate_impl`. `device` and `precision` describe what runs; `arch` is
    the network's architecture where the runner knows it (after `activate()` at the latest).
    """

    backend: str = ""

    def __init__(self, name: str, device: str, precision: str, arch: str | None = None):
        self.name = name
        self.device = device
        self.precision = precision
        self.arch = arch
        self.is_active = False

    @classmethod
    @abc.abstractmethod
    def availability(cls, device: str, precision: str | None = None) -> Availability:
        """Whether this backend can run on `device` ("cpu" or "cuda") here, at `precision` where
        the backend chooses it (None: the model's own)."""

    def activate(self) -> Runner:
        """Load and prepare; raises HarmonyError if the backend is unavailable here."""
        if self.is_active:
            raise HarmonyError(f"runner {self.name} is already active; deactivate it first")
        available = self.availability(self.device, self.precision)
        if not available.ok:
            raise HarmonyError(f"{self.backend} backend unavailable: {available.reason}")
        self.activate_impl()
        self.is_active = True
        return self

    def infer(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Harmonize `image` [B,3,H,W] with `mask` [B,1,H,W] (float, in [0,1], CPU or device).

        Returns [B,3,H,W] on the runner's device (call `synchronize()` before timing stops).
        """
        if not self.is_active:
            raise HarmonyError(f"runner {self.name} is not active; call activate() first")
        check_input_shapes(image, mask, *self.input_range(), self.range_hint())
        return self.infer_impl(image, mask)

    def input_range(self) -> tuple[tuple[int, int, int], tuple[int, int, int] | None]:
        """(min, max) of the (batch, height, width) this runner accepts; max None: unbounded."""
        return (1, MIN_SIDE, MIN_SIDE), None

    def range_hint(self) -> str:
        """What to do about an input outside `input_range` ("; ..." appended to the error)."""
        return ""

    def synchronize(self) -> None:  # noqa: B027 - optional hook, a no-op on the CPU
        """Wait for queued device work (timing helpers call it); a no-op on the CPU."""

    def deactivate(self) -> None:
        """Release what `activate` acquired."""
        if not self.is_active:
            raise HarmonyError(f"runner {self.name} is not active")
        self.deactivate_impl()
        self.is_active = False

    def memory_bytes(self) -> int | None:
        """Device memory the runner holds (engine + I/O for TensorRT); None where not tracked."""
        return None

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc) -> None:
        self.deactivate()

    @abc.abstractmethod
    def activate_impl(self) -> None: ...

    @abc.abstractmethod
    def infer_impl(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def deactivate_impl(self) -> None: ...
