"""Training batches for `harmony fit`: synthetic composites of the fit photographs, augmented.

A sample is a square crop of one of `FIT_PHOTOS` (side drawn between `MIN_CROP_FRACTION` of the
photo's shorter side and all of it, at a random place, flipped left-right half of the time),
resized to the training size; most of the time (`RECOLOURED_REAL_PROBABILITY`) the whole crop is
re-coloured first by one of the fit's families (so the "real" images are not only the few
photographs' own colours, which a fit would learn instead of the foreground's mismatch with its
background); then the demo's mask shapes and foreground re-colouring by one of those families
(`harmony.data.demo.composite_arrays`) make the composite. Images are quantized to 8 bits, as
the demo and evaluation files are. Everything follows from the generator passed in, so a seed
fixes every batch.
"""

from __future__ import annotations

import numpy as np
import torch

from harmony.data.demo import (
    FIT_PHOTOS,
    composite_arrays,
    photograph,
    reference_pixels,
    resized,
    to_uint8,
)
from harmony.data.images import tensor_from_pixels
from harmony.data.recolouring import FAMILIES

MIN_CROP_FRACTION = 0.4
RECOLOURED_REAL_PROBABILITY = 0.9


def training_batch(
    rng: np.random.Generator, batch: int, size: int, families: tuple[str, ...]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`batch` augmented composites at `size` x `size` re-coloured by `families`, drawn from
    `rng`.

    Returns:
        (composite [B,3,S,S], mask [B,1,S,S] of 0.0/1.0, real [B,3,S,S]), float32 in [0,1].
    """
    samples = [_training_arrays(rng, size, families) for _ in range(batch)]
    return (
        torch.cat([tensor_from_pixels(s.composite, 8) for s in samples]),
        torch.cat([tensor_from_pixels(s.mask[..., None], 8) for s in samples]),
        torch.cat([tensor_from_pixels(s.real, 8) for s in samples]),
    )


def _training_arrays(rng: np.random.Generator, size: int, families: tuple[str, ...]):
    photo = FIT_PHOTOS[rng.integers(len(FIT_PHOTOS))]
    pixels = photograph(photo)
    height, width = pixels.shape[:2]
    shorter = min(height, width)
    side = int(rng.integers(round(MIN_CROP_FRACTION * shorter), shorter + 1))
    top = int(rng.integers(height - side + 1))
    left = int(rng.integers(width - side + 1))
    crop = pixels[top : top + side, left : left + side]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    real = resized(np.ascontiguousarray(crop), (size, size))
    if rng.random() < RECOLOURED_REAL_PROBABILITY:
        recolour = FAMILIES[families[rng.integers(len(families))]]
        reference = reference_pixels(photo, FIT_PHOTOS, rng)
        pixels = real.reshape(-1, 3) / 255.0
        real = to_uint8(recolour(pixels, rng, reference)).reshape(real.shape)
    return composite_arrays(photo, real, rng, families, FIT_PHOTOS)
