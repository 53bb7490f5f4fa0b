"""Many (image, mask) pairs through one active runner: pairs of the same size run together, in
batches no larger than the caller's and the runner's limits, each batch checked against the
memory guard before anything is allocated. What `harmony serve` and `harmony batch` share.

The guard compares a run's estimated peak with the memory available now, so memory a runner
still holds from earlier runs (ONNX Runtime's arena) counts as taken: conservative on purpose,
since such an arena can grow on a second run (HDNet-lite's portable graph at 2048x2048 on a
24 GiB machine: the second image is refused; skipping the check for a size that had already
run got the process killed by the kernel there).
"""

from __future__ import annotations

import torch

from harmony.errors import HarmonyError
from harmony.runtime.backends import get_backend
from harmony.runtime.limits import size_refusal

# The prefix of a memory refusal: nothing was allocated for that batch.
REFUSED = "refused before allocation"


def infer_by_size(
    runner,
    pairs: list[tuple[torch.Tensor, torch.Tensor]],
    max_batch: int | None = None,
    size_check: bool = True,
) -> list[torch.Tensor | HarmonyError]:
    """Run `pairs` ([b,3,H,W] image, [b,1,H,W] mask each) with the active `runner`.

    Args:
        max_batch: the most images one inference takes (None: every pair of one size at once);
            the runner's own maximum batch applies too. A pair larger than the limit runs alone.
        size_check: False runs batches whatever their estimated memory (--no-size-check).
    Returns:
        Per pair, in order: its output [b,3,H,W] (float32, on the CPU), or the HarmonyError that
        refused it (too large for memory even alone: `REFUSED`, with the estimate and the
        limit; a batch too large runs pair by pair) or that the runner raised for its batch.
    """
    limit = _batch_limit(runner, max_batch)
    results: list = [None] * len(pairs)
    sizes: dict[tuple[int, int], list[int]] = {}
    for index, (image, _) in enumerate(pairs):
        sizes.setdefault(tuple(image.shape[-2:]), []).append(index)
    for (height, width), indices in sizes.items():
        for chunk in _chunks(indices, [len(pairs[i][0]) for i in indices], limit):
            outputs = _infer(runner, [pairs[i] for i in chunk], height, width, size_check)
            for index, output in zip(chunk, outputs, strict=True):
                results[index] = output
    return results


def _batch_limit(runner, max_batch: int | None) -> int | None:
    _, high = runner.input_range()
    runner_max = high[0] if high is not None else None
    limits = [limit for limit in (max_batch, runner_max) if limit is not None]
    return min(limits) if limits else None


def _chunks(indices: list[int], counts: list[int], limit: int | None) -> list[list[int]]:
    """`indices` split in order into runs whose counts sum to at most `limit`."""
    chunks: list[list[int]] = []
    total = 0
    for index, count in zip(indices, counts, strict=True):
        if not chunks or (limit is not None and total + count > limit):
            chunks.append([])
            total = 0
        chunks[-1].append(index)
        total += count
    return chunks


def _infer(runner, pairs: list, height: int, width: int, size_check: bool) -> list:
    images = torch.cat([image for image, _ in pairs])
    masks = torch.cat([mask for _, mask in pairs])
    try:
        if size_check and runner.arch is not None:
            backend = get_backend(runner.backend)
            refusal = size_refusal(backend, runner.arch, runner.device, height, width, len(images))
            if refusal is not None and len(pairs) > 1:  # a smaller batch may fit
                alone = [_infer(runner, [pair], height, width, True) for pair in pairs]
                return [output for outputs in alone for output in outputs]
            if refusal is not None:
                raise HarmonyError(f"{REFUSED}: {refusal}")
        harmonized = runner.infer(images, masks).float().cpu()
    except HarmonyError as exc:
        return [exc] * len(pairs)
    return list(torch.split(harmonized, [len(image) for image, _ in pairs]))
