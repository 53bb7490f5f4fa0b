"""Calibration inputs: composites and masks at one resolution, and their content hash.

By default they are demo composites of the fit photographs (`harmony.data.demo.FIT_PHOTOS`,
never the held-out ones the INT8 gate scores on), made in memory at the calibration size. With a
folder, they are `count` composites of an iHarmony4-layout folder (`harmony.data.IHarmonyDataset`)
drawn by a seeded permutation and resized (bilinear, antialiased) to the calibration size. Either
way the same settings give the same arrays, and `CalibrationSet.sha256` names them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from harmony.contract import (
    CALIBRATION_METHODS,
    DEFAULT_CALIBRATION_COUNT,
    DEFAULT_RESOLUTIONS,
    GRAPH_INPUTS,
    MIN_SIDE,
)
from harmony.errors import HarmonyError


@dataclass(frozen=True)
class CalibrationSettings:
    """What INT8 calibration runs on and how it picks ranges.

    Attributes:
        folder: an iHarmony4-layout folder; None (default): demo composites of the fit photos.
        count: number of composites (default 8).
        size: (H, W) every composite is resized to: the engine profile's opt resolution, by
            default the project's first default resolution (1024x1024).
        method: "minmax" (default), "percentile" (99.999th) or "entropy" (ONNX Runtime's
            calibrators).
        seed: which composites (the demo seed, or the permutation of the folder's samples).
    """

    folder: Path | None = None
    count: int = DEFAULT_CALIBRATION_COUNT
    size: tuple[int, int] = DEFAULT_RESOLUTIONS[0]
    method: str = CALIBRATION_METHODS[0]
    seed: int = 0

    def validate(self) -> CalibrationSettings:
        """Return self, or raise HarmonyError naming the bad setting."""
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise HarmonyError(
                f"the calibration count must be a positive integer, got {self.count}"
            )
        if self.method not in CALIBRATION_METHODS:
            raise HarmonyError(
                f"the calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got "
                f"'{self.method}'"
            )
        if len(self.size) != 2 or min(self.size) < MIN_SIDE:
            raise HarmonyError(f"the calibration size must be H, W >= {MIN_SIDE}, got {self.size}")
        return self


@dataclass
class CalibrationSet:
    """The calibration inputs: one feed dict {image [1,3,H,W], mask [1,1,H,W]} (float32) per
    composite, where they came from, and the SHA-256 of their content."""

    feeds: list[dict[str, np.ndarray]]
    source: str
    sha256: str = field(init=False)

    def __post_init__(self):
        digest = hashlib.sha256()
        for feed in self.feeds:
            for name in GRAPH_INPUTS:
                digest.update(repr(feed[name].shape).encode())
                digest.update(np.ascontiguousarray(feed[name]).tobytes())
        self.sha256 = digest.hexdigest()


def calibration_set(settings: CalibrationSettings) -> CalibrationSet:
    """The composites `settings` name, at its size.

    Raises:
        HarmonyError: bad settings, or a folder that is not an iHarmony4 folder, holds fewer
            composites than `count`, or has an unreadable file.
    """
    settings = settings.validate()
    if settings.folder is None:
        from harmony.data.demo import FIT_PHOTOS, DemoComposites

        samples = DemoComposites(settings.count, settings.seed, settings.size, FIT_PHOTOS)
        items = [samples[index] for index in range(settings.count)]
        source = f"demo composites of {', '.join(FIT_PHOTOS)} (seed {settings.seed})"
    else:
        from harmony.data import IHarmonyDataset

        dataset = IHarmonyDataset(settings.folder)
        if len(dataset) < settings.count:
            raise HarmonyError(
                f"{settings.folder} holds {len(dataset)} composites; calibration needs "
                f"{settings.count} (lower --calib-count)"
            )
        order = np.random.default_rng(settings.seed).permutation(len(dataset))[: settings.count]
        items = [dataset[int(index)] for index in sorted(order)]
        source = f"{settings.count} composites of {settings.folder} (seed {settings.seed})"
    feeds = [
        {
            "image": _resized(item["composite"], settings.size),
            "mask": _resized(item["mask"], settings.size),
        }
        for item in items
    ]
    return CalibrationSet(feeds, f"{source} at {settings.size[0]}x{settings.size[1]}")


def _resized(tensor: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    if tuple(tensor.shape[-2:]) != tuple(size):
        tensor = F.interpolate(tensor, size=size, mode="bilinear", antialias=True)
    return tensor.clamp(0.0, 1.0).numpy().astype(np.float32)
