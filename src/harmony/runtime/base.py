"""The runner interface every backend implements (after Polygraphy's BaseRunner).

A runner is created cheaply, `activate()`d once (load the model, build sessions, allocate),
asked to `infer(image, mask)` any number of times and `deactivate()`d. The public methods check
their inputs and state; backends implement the `*_impl` hooks only.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch

from harmony.errors import HarmonyError
from harmony.models.pipeline import check_inputs


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, why (said to the user as a skip reason)."""

    ok: bool
    reason: str = ""


class Runner(abc.ABC):
    """Base class of the torch, onnxruntime and tensorrt runners.

    Subclasses set `backend` ("torch", "ort", "trt") and implement `activate_impl`,
    `infer_impl` and `deactivate_impl`. `device` and `precision` describe what runs.
    """

    backend: str = ""

    def __init__(self, name: str, device: str, precision: str):
        self.name = name
        self.device = device
        self.precision = precision
        self.is_active = False

    @classmethod
    @abc.abstractmethod
    def availability(cls, device: str) -> Availability:
        """Whether this backend can run on `device` ("cpu" or "cuda") on this machine."""

    def activate(self) -> Runner:
        """Load and prepare; raises HarmonyError if the backend is unavailable here."""
        if self.is_active:
            raise HarmonyError(f"runner {self.name} is already active; deactivate it first")
        available = self.availability(self.device)
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
        check_inputs(image, mask)
        return self.infer_impl(image, mask)

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
