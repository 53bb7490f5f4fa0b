"""infer_by_size: same-size pairs batched in order, the batch limit, the memory guard (a batch
that does not fit runs pair by pair; a pair that does not fit alone is refused)."""

from __future__ import annotations

import pytest
import torch

from harmony.errors import HarmonyError
from harmony.memory_model import estimated_peak_bytes
from harmony.runtime.batches import REFUSED, infer_by_size
from harmony.runtime.torch_runner import TorchRunner
from harmony.weights import fitted_checkpoint
from tests.helpers import blob_mask


@pytest.fixture(scope="module")
def runner():
    with TorchRunner(fitted_checkpoint("hdnet-lite")) as active:
        yield active


def pair(height, width, seed, batch=1):
    image = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))
    return image, blob_mask(height, width, batch)


def test_pairs_come_back_in_order_batched_by_size(runner, monkeypatch):
    pairs = [pair(32, 40, 0), pair(24, 24, 1), pair(32, 40, 2, batch=2), pair(32, 40, 3)]
    calls = []
    infer = runner.infer
    monkeypatch.setattr(runner, "infer", lambda i, m: calls.append(len(i)) or infer(i, m))
    outputs = infer_by_size(runner, pairs, max_batch=3)
    assert calls == [3, 1, 1]  # 1 + 2 images of 32x40, then the last alone; the 24x24 one
    for (image, mask), output in zip(pairs, outputs, strict=True):
        torch.testing.assert_close(output, infer(image, mask), atol=1e-5, rtol=0)


def test_a_batch_over_the_memory_guard_runs_pair_by_pair(runner, monkeypatch):
    side = 512
    one = estimated_peak_bytes("torch", "hdnet-lite", side, side, 1)
    three = estimated_peak_bytes("torch", "hdnet-lite", side, side, 3)
    monkeypatch.setenv("HARMONY_MEMORY_LIMIT_GB", str((one + three) / 2 / 2**30))
    calls = []
    infer = runner.infer
    monkeypatch.setattr(runner, "infer", lambda i, m: calls.append(len(i)) or infer(i, m))
    outputs = infer_by_size(runner, [pair(side, side, seed) for seed in range(3)])
    assert calls == [1, 1, 1] and all(isinstance(output, torch.Tensor) for output in outputs)
    monkeypatch.setenv("HARMONY_MEMORY_LIMIT_GB", str(one / 2 / 2**30))
    refused = infer_by_size(runner, [pair(side, side, 0), pair(side, side, 1)])
    assert all(isinstance(error, HarmonyError) for error in refused) and len(calls) == 3
    assert str(refused[0]).startswith(f"{REFUSED}: hdnet-lite on torch at 1x512x512 needs about")
    unchecked = infer_by_size(runner, [pair(side, side, 0)], size_check=False)
    assert isinstance(unchecked[0], torch.Tensor)
