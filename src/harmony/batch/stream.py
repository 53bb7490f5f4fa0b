"""`harmonize_many`: the batch run's overlap and batching for images already in memory."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np
import torch

from harmony.batch.overlap import overlapped
from harmony.errors import HarmonyError
from harmony.models.pipeline import check_input_shapes, check_value_range


def harmonize_many(
    model: str | os.PathLike | object,
    pairs: Iterable,
    batch: int = 4,
    workers: int = 2,
    backend: str | None = None,
    device: str | None = None,
    precision: str | None = None,
) -> Iterator:
    """Harmonize each (image, mask) of `pairs`, yielding the results in order.

    Args:
        model: a model file (checkpoint, .onnx, .engine: `harmony-run`'s) or an active runner.
        pairs: (image, mask) pairs, numpy arrays or torch tensors: image [3,H,W] or [1,3,H,W]
            and mask [H,W], [1,H,W] or [1,1,H,W], float in [0,1]. Consumed lazily (at most a
            few batches ahead), so a generator that reads files keeps memory flat.
        batch: the most same-size pairs one inference takes.
        workers: threads that prepare inputs and outputs beside the inference.
        backend, device, precision: as `harmony-run`'s, for a model file.
    Yields:
        Per pair, the harmonized image [1,3,H,W] float32 on the CPU, a numpy array where the
        image was one, else a tensor.
    Raises:
        HarmonyError: the model cannot run here, or a pair is malformed or fails (the message
            says which, counting from 0); the iterator stops there.
    """
    if isinstance(model, (str, os.PathLike)):
        from harmony.runtime.backends import runner_for

        with runner_for(model, backend, device, precision) as runner:
            yield from _stream(runner, pairs, batch, workers)
    else:
        yield from _stream(model, pairs, batch, workers)


def _stream(runner, pairs: Iterable, batch: int, workers: int) -> Iterator:
    numbered = enumerate(pairs)
    for outcome in overlapped(numbered, _load, None, runner, batch, workers):
        index, (image, _) = outcome.item
        if outcome.error is not None:
            raise HarmonyError(f"pair {index}: {outcome.error}")
        yield outcome.result.numpy() if isinstance(image, np.ndarray) else outcome.result


def _load(numbered) -> tuple[torch.Tensor, torch.Tensor]:
    _, (image, mask) = numbered
    image, mask = torch.as_tensor(image), torch.as_tensor(mask)
    image = image[None] if image.dim() == 3 else image
    mask = mask.reshape(1, 1, *mask.shape[-2:]) if 2 <= mask.dim() <= 3 else mask
    check_input_shapes(image, mask)
    if len(image) != 1:
        raise HarmonyError(f"each pair holds one image, got a batch of {len(image)}")
    check_value_range(image, mask)
    return image.float(), mask.float()
