"""The runner interface every backend implements (after Polygraphy's BaseRunner).

A runner is created cheaply (its constructor reads no file), `activate()`d once, asked to
`infer(image, mask)` any number of times and `deactivate()`d. Activation reads the model
(`source_impl`: a graph's metadata, an engine's manifest, a checkpoint), asks its backend's
`refusal` whether it can run that model here (the answer every command gives), and only then
loads it (`activate_impl`: sessions, engines, device memory). The public methods check their
inputs and state; backends implement the `*_impl` hooks only, and `infer_impl` is what a
benchmark times: `infer` checks shapes and dtypes against the runner's input range from tensor
metadata alone (no device synchronisation). Whether the values lie in [0,1] is checked once at
the user boundary (`harmony.harmonize`, `harmony-run`), never per call here.
"""

from __future__ import annotations

import abc

import torch

from harmony.contract import MIN_SIDE
from harmony.errors import HarmonyError
from harmony.models.pipeline import check_input_shapes
from harmony.runtime.backends import Availability, get_backend
from harmony.runtime.sources import ModelSource


class Runner(abc.ABC):
    """Base class of the torch, onnxruntime and tensorrt runners.

    Subclasses set `backend` (a registered backend's name) and implement `source_impl`,
    `activate_impl`, `infer_impl` and `deactivate_impl`. `device` and `precision` describe what
    runs: `precision` is the one asked for (None: the model's own) until `activate()` sets the
    model's; `arch` is the network's architecture where the runner knows it (after `activate()`
    at the latest).
    """

    backend: str = ""

    def __init__(self, name: str, device: str, precision: str | None, arch: str | None = None):
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
        """Read the model, check that it can run here (`Backend.refusal`), load and prepare.

        Raises:
            HarmonyError: the refusal's reason (backend unavailable, a model of another kind,
                precision or target), or a model that cannot be loaded.
        """
        if self.is_active:
            raise HarmonyError(f"runner {self.name} is already active; deactivate it first")
        backend, source = get_backend(self.backend), None
        reason = backend.refusal(None, self.device, self.precision)  # before reading any file
        if reason is None:
            source = self.source_impl()
            reason = backend.refusal(source, self.device, self.precision, as_is=True)
        if reason is not None:
            raise HarmonyError(reason)
        if source is not None:
            self.precision = source.precision or self.precision
            self.arch = source.arch or self.arch
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
    def source_impl(self) -> ModelSource | None:
        """The model this runner runs, read from its file (`harmony.runtime.sources`); None
        for a model given in memory."""

    @abc.abstractmethod
    def activate_impl(self) -> None: ...

    @abc.abstractmethod
    def infer_impl(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor: ...

    @abc.abstractmethod
    def deactivate_impl(self) -> None: ...
