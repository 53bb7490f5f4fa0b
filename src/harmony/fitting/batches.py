"""Training batches for `harmony fit`: synthetic composites of the fit photographs, augmented.

A sample is a square crop of one of `FIT_PHOTOS` (side drawn between `MIN_CROP_FRACTION` of the
photo's shorter side and all of it, at a random place, flipped left-right half of the time),
resized to the training size; half of the time the whole crop is re-coloured first (so the
"real" images are not only three fixed colour casts); then the demo's blob mask and foreground
re-colouring (`harmony.data.demo.composite_arrays`) make the composite. Images are quantized
to 8 bits, as the demo and evaluation files are. Everything follows from the generator passed
in, so a seed fixes every batch.
"""

from __future__ import annotations

import numpy as np
import torch

from harmony.data.demo import (
    FIT_PHOTOS,
    composite_arrays,
    photograph,
    recolour,
    resized,
    to_uint8,
)
from harmony.data.images import tensor_from_pixels

MIN_CROP_FRACTION = 0.4
RECOLOURED_REAL_PROBABILITY = 0.5


def training_batch(
    rng: np.random.Generator, batch: int, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`batch` augmented composites at `size` x `size` drawn from `rng`.

    Returns:
        (composite [B,3,S,S], mask [B,1,S,S] of 0.0/1.0, real [B,3,S,S]), float32 in [0,1].
    """
    samples = [_training_arrays(rng, size) for _ in range(batch)]
    return (
        torch.cat([tensor_from_pixels(s.composite, 8) for s in samples]),
        torch.cat([tensor_from_pixels(s.mask[..., None], 8) for s in samples]),
        torch.cat([tensor_from_pixels(s.real, 8) for s in samples]),
    )


def _training_arrays(rng: np.random.Generator, size: int):
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
        real = to_uint8(recolour(real.reshape(-1, 3) / 255.0, rng)).reshape(real.shape)
    return composite_arrays(photo, real, rng)
