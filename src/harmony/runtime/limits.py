"""The size guard: a run's peak memory estimated before its activations are allocated, and the
refusal of runs that cannot fit, with the estimate, the limit and what to do instead.

The estimate is `harmony.memory_model`'s (coefficients measured on a CPU; on a GPU the same
activations are assumed). Engines need no guard: their optimization profile bounds the input
size. The limit is the memory available now (Linux MemAvailable on the CPU, free device memory
on CUDA); `HARMONY_MEMORY_LIMIT_GB` overrides it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from harmony.errors import HarmonyError
from harmony.memory_model import GIB, estimated_peak_bytes, memory_model
from harmony.runtime.backends import Backend

MEMORY_LIMIT_ENV = "HARMONY_MEMORY_LIMIT_GB"


def memory_limit_bytes(device: str) -> int | None:
    """The memory a run may take on `device`: $HARMONY_MEMORY_LIMIT_GB, else what is available
    now (MemAvailable; free CUDA memory); None where it cannot be read."""
    override = os.environ.get(MEMORY_LIMIT_ENV)
    if override:
        try:
            gib = float(override)
        except ValueError:
            gib = math.nan
        if not (math.isfinite(gib) and gib > 0):
            raise HarmonyError(
                f"{MEMORY_LIMIT_ENV} must be a positive number of GiB, got '{override}'"
            )
        return int(gib * GIB)
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.mem_get_info()[0]) if torch.cuda.is_available() else None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def size_refusal(
    backend: Backend, arch: str, device: str, height: int, width: int, batch: int = 1
) -> str | None:
    """Why a run of `arch` on `backend` at batch x height x width would not fit here, or None."""
    over = _over_limit(backend.name, arch, device, height, width, batch)
    if over is None:
        return None
    estimate, limit = over
    return (
        f"{arch} on {backend.name} at {batch}x{height}x{width} needs about "
        f"{estimate / GIB:.1f} GiB, more than the {limit / GIB:.1f} GiB available on {device}"
        f"{_what_instead(backend, arch, device)}"
    )


def _over_limit(
    name: str, arch: str, device: str, height: int, width: int, batch: int
) -> tuple[int, int] | None:
    """(estimate, limit) in bytes when the memory model `name` of `arch` exceeds the limit on
    `device`; None when it fits or either is unknown."""
    estimate = estimated_peak_bytes(name, arch, height, width, batch)
    limit = memory_limit_bytes(device)
    if estimate is None or limit is None or estimate <= limit:
        return None
    return estimate, limit


def _what_instead(backend: Backend, arch: str, device: str) -> str:
    hints = []
    model = memory_model(backend.name, arch)
    if model is not None and model.knn_factor:
        hints.append(
            "run the checkpoint on the torch backend, whose KNN fusion is streamed (or a "
            "TensorRT engine)"
        )
    fits = max_square_side(backend, arch, device)
    if fits is not None:
        hints.append(f"downscale the image (about {fits}x{fits} fits)")
    hints.append(f"free memory, or raise the limit with {MEMORY_LIMIT_ENV}")
    return "; " + "; or ".join(hints)


def max_square_side(backend: Backend, arch: str, device: str) -> int | None:
    """The largest N such that an NxN run fits in the current limit (None: no estimate)."""
    limit = memory_limit_bytes(device)
    model = memory_model(backend.name, arch)
    if model is None or limit is None or model.peak_bytes(8, 8) > limit:
        return None
    low, high = 8, 1 << 16
    while low < high:  # the estimate grows with the side: bisect
        middle = (low + high + 1) // 2
        low, high = (
            (middle, high) if model.peak_bytes(middle, middle) <= limit else (low, middle - 1)
        )
    return low - low % 8 if low >= 16 else low


def refuse_if_too_large(
    backend: Backend,
    arch: str,
    device: str,
    height: int,
    width: int,
    batch: int = 1,
    override: str = "",
) -> None:
    """Raise HarmonyError with `size_refusal`'s reason when the run would not fit; `override`
    names the caller's way to run anyway (e.g. a command-line flag)."""
    reason = size_refusal(backend, arch, device, height, width, batch)
    if reason is not None:
        raise HarmonyError(reason + (f"; or pass {override} to try anyway" if override else ""))


def fit_size_refusal(arch: str, size: int, batch: int) -> str | None:
    """Why `harmony fit` of `arch` at `batch` composites of size x size would not fit in the
    memory available on the CPU, or None (the "fit/<arch>" memory model)."""
    over = _over_limit("fit", arch, "cpu", size, size, batch)
    if over is None:
        return None
    estimate, limit = over
    return (
        f"fitting {arch} on batches of {batch} x {size}x{size} needs about "
        f"{estimate / GIB:.1f} GiB, more than the {limit / GIB:.1f} GiB available; lower --batch "
        f"or --size, free memory, or raise the limit with {MEMORY_LIMIT_ENV}"
    )


__all__ = ["fit_size_refusal", "memory_limit_bytes", "refuse_if_too_large", "size_refusal"]
