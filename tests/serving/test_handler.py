"""The served models' logic without Triton: one result per request, a bad request answered
alone while the good ones of its batch run, the memory guard before allocation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harmony.data import decode_image, encode_image
from harmony.models import build_model, harmonize, randomize_
from harmony.runtime.torch_runner import TorchRunner
from harmony.serving.handler import Harmonizer, RequestError
from tests.helpers import blob_mask


@pytest.fixture(scope="module")
def lite():
    return randomize_(build_model("hdnet-lite"), seed=5).eval()


@pytest.fixture
def harmonizer(lite):
    warnings = []
    with TorchRunner(lite) as runner:
        yield Harmonizer(runner, warnings.append), warnings


def _pair(height=32, width=40, batch=1, seed=0):
    image = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(seed))
    return image.numpy(), blob_mask(height, width, batch).numpy()


def test_bad_requests_are_answered_alone_and_good_ones_run_batched(harmonizer, lite):
    handler, warnings = harmonizer
    good, other = _pair(seed=1), _pair(seed=2)
    image, mask = good
    requests = [
        good,
        (image, mask[..., :-1]),  # another size
        (image * 2, mask),  # out of [0,1]
        (np.full_like(image, np.nan), mask),
        (image[:, :1], mask),  # one channel
        other,
        (image, np.zeros_like(mask)),  # empty: a warning
    ]
    results = handler.raw(requests)
    kinds = ["ndarray"] + ["RequestError"] * 4 + ["ndarray"] * 2
    assert [type(r).__name__ for r in results] == kinds
    assert "must share batch, height and width" in results[1].message
    assert "image values must lie in [0,1], got [" in results[2].message
    assert "NaN or infinite" in results[3].message
    assert "image must be [B,3,H,W]" in results[4].message
    for index in (0, 5):
        expected = harmonize(lite, *(torch.from_numpy(a) for a in requests[index])).numpy()
        # run as one batch of three (float32 rounding of batched convolutions)
        np.testing.assert_allclose(results[index], expected, atol=1e-5, rtol=0)
    assert len(warnings) == 1 and "request 6: the mask is empty" in warnings[0]


def test_a_batch_too_large_for_memory_is_refused_before_allocation(harmonizer, monkeypatch):
    handler, _ = harmonizer
    monkeypatch.setenv("HARMONY_MEMORY_LIMIT_GB", "0.5")
    (result,) = handler.raw([_pair(256, 256)])
    assert isinstance(result, RequestError)
    assert "refused before allocation" in result.message
    assert "more than the 0.5 GiB" in result.message


def test_encoded_requests_read_files_as_harmony_run_does(harmonizer, lite):
    handler, _ = harmonizer
    image, mask = (torch.from_numpy(a) for a in _pair())
    image_bytes = encode_image(image, 16)
    mask_bytes = encode_image(mask.expand(1, 3, -1, -1))
    good, garbage, mismatch = handler.encoded(
        [
            (image_bytes, mask_bytes),
            (b"not an image", mask_bytes),
            (image_bytes, encode_image(mask[..., :-2].expand(1, 3, -1, -1))),
        ]
    )
    written, depth = decode_image(good, "output")
    assert depth == 16  # the image's bit depth is kept
    expected = harmonize(lite, decode_image(image_bytes, "in")[0], mask)
    np.testing.assert_allclose(written, expected, atol=1 / 65535, rtol=0)
    assert "Cannot decode the request's image" in garbage.message
    assert "the mask is 32x38 (HxW) but the image is 32x40" in mismatch.message
