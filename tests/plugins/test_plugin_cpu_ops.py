"""libharmony_cpu_ops (the plugin kernels' math, built with g++) against harmony.ops."""

from __future__ import annotations

import sys

import pytest
import torch

from harmony.errors import HarmonyError
from harmony.ops import cascaded_lut, knn_topk_fusion, knn_topk_fusion_materialized
from tests.plugins.op_inputs import MASKS, knn_inputs, lut_inputs

# The module defining the KNN reference (its streaming helpers decide the tie rule).
knn_reference = sys.modules[knn_topk_fusion.__module__]


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize(
    "shape",
    [
        (2, 37, 53, 7, 5),
        (1, 16, 16, 8, 8),
        (2, 5, 3, 9, 11),
        (1, 1, 1, 3, 3),
        (1, 4, 6, 1, 1),
        # Pixels coinciding with map entries: float32 grid rounding decides the taps there.
        (1, 256, 256, 256, 256),
        (1, 511, 255, 256, 128),
    ],
    ids=lambda s: "x".join(map(str, s)),
)
def test_cascaded_lut_equals_reference(cpu_ops_dir, shape, mask):
    from harmony.plugins import cpu

    inputs = lut_inputs(*shape, mask=mask)
    expected = cascaded_lut(*inputs)
    actual = cpu.cascaded_lut(*inputs)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    torch.testing.assert_close(actual, expected, rtol=0, atol=1e-5)


def test_cascaded_lut_fp16_io(cpu_ops_dir):
    from harmony.plugins import cpu

    inputs = [t.half() for t in lut_inputs(2, 13, 17, 4, 6, mask="soft", seed=3)]
    actual = cpu.cascaded_lut(*inputs)
    assert actual.dtype == torch.float16
    torch.testing.assert_close(actual, cascaded_lut(*inputs), rtol=0, atol=1e-3)


def test_cascaded_lut_nan_inputs_stay_in_bounds(cpu_ops_dir):
    """A NaN pixel or knot gives NaN where it is used and leaves the other channels untouched.

    Converting NaN to int is undefined on the host (INT32_MIN on x86): the curve lookup used to
    read a plane far out of bounds and segfault.
    """
    from harmony.plugins import cpu

    image, mask, knots, curve = lut_inputs(1, 6, 7, 3, 4, mask="soft", seed=5)
    clean = cascaded_lut(image, mask, knots, curve)
    image[0, 1, 2, 3] = float("nan")
    knots[0, 2, 4, 1, 1] = float("nan")
    actual = cpu.cascaded_lut(image, mask, knots, curve)
    assert torch.isnan(actual[0, 1, 2, 3])
    assert int(torch.isnan(actual[0, 1]).sum()) == 1  # only the NaN pixel of channel 1
    assert torch.isnan(actual[0, 2]).any()
    torch.testing.assert_close(actual[0, 0], clean[0, 0], rtol=0, atol=1e-5)


def test_cascaded_lut_rejects_bad_shapes_like_reference(cpu_ops_dir):
    from harmony.plugins import cpu

    image, mask, knots, curve = lut_inputs(1, 8, 8, 4, 4, mask="soft")
    with pytest.raises(ValueError, match="curve must be"):
        cpu.cascaded_lut(image, mask, knots, curve[:, :, :7])


@pytest.mark.parametrize("mask", MASKS)
@pytest.mark.parametrize("k", [1, 3, 32])
# 851 positions: several query tasks of the CPU kernel and a partial vector of 16 supports.
@pytest.mark.parametrize(
    "shape", [(2, 8, 7, 9), (1, 5, 6, 6), (1, 6, 37, 23)], ids=lambda s: "x".join(map(str, s))
)
def test_knn_topk_fusion_equals_reference(cpu_ops_dir, shape, k, mask):
    from harmony.plugins import cpu

    features, m = knn_inputs(*shape, mask=mask, seed=k)
    expected = knn_topk_fusion(features, m, k=k)
    actual = cpu.knn_topk_fusion(features, m, k=k)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    # The softmax sums over N positions round in another order than torch's (rtol).
    torch.testing.assert_close(actual, expected, rtol=3e-5, atol=1e-5)
    torch.testing.assert_close(
        actual, knn_topk_fusion_materialized(features, m, k=k), rtol=3e-5, atol=1e-5
    )


@pytest.mark.parametrize("k", [1, 32])
@pytest.mark.parametrize("mask", ["binary", "zeros"])
def test_knn_over_several_support_blocks_equals_reference(cpu_ops_dir, k, mask):
    """2304 positions, over 1024 of them scored supports: more than one cache block (64 vectors
    of 16) of the CPU kernel. Integer features make every dot product exact; with random ones,
    candidates a few ulps apart may swap ranks within the top-k, which moves them in the [k, N]
    view (the reference and the kernel round the dot products differently)."""
    from harmony.plugins import cpu

    features, m = knn_inputs(1, 6, 48, 48, mask=mask, seed=k, integer=True)
    assert int((m == 0).sum()) > 1024
    expected = knn_topk_fusion(features, m, k=k)
    torch.testing.assert_close(
        cpu.knn_topk_fusion(features, m, k=k), expected, rtol=3e-5, atol=1e-5
    )


@pytest.mark.parametrize("k", [1, 4, 32])
@pytest.mark.parametrize("mask", ["binary", "ones", "zeros"])
def test_knn_ties_go_to_lowest_index_across_chunks(cpu_ops_dir, monkeypatch, k, mask):
    """Exact ties between support columns, with the reference streaming over tiny chunks.

    Integer features and a 0/1 mask make every dot product exact, so the tie rule alone decides
    the indices; an all-1 mask makes every dot product 0 (ties everywhere).
    """
    from harmony.plugins import cpu

    features, m = knn_inputs(2, 3, 7, 9, mask=mask, seed=11, integer=True)
    # 63 positions; blocks of 64 elements -> support chunks of 1-2 columns in the reference.
    monkeypatch.setattr(knn_reference, "_BLOCK_ELEMENTS", 64)
    values, indices = cpu.knn_topk(features, m, k=k)
    b, c, h, w = features.shape
    for batch, (q, s) in enumerate(
        knn_reference._query_support(features.reshape(b, c, h * w), m.reshape(b, 1, h * w))
    ):
        ref_values, ref_indices = knn_reference._topk_streamed(q, s, k)
        torch.testing.assert_close(values[batch], ref_values, rtol=0, atol=0)
        assert torch.equal(indices[batch], ref_indices)
    torch.testing.assert_close(
        cpu.knn_topk_fusion(features, m, k=k), knn_topk_fusion(features, m, k=k), rtol=0, atol=1e-5
    )


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("mask", ["soft", "binary"])
def test_knn_non_finite_features_like_reference(cpu_ops_dir, k, mask):
    """NaN and infinite features (an FP16 overflow upstream) must not leave an unfilled top-k slot.

    NaN dot products rank above every number, as in torch.topk/sort/max; every query's list holds
    k real support indices, so the gather never reads out of bounds (it used to segfault here, and
    the same math read far out of bounds on the GPU).
    """
    from harmony.plugins import cpu

    features, m = knn_inputs(2, 3, 7, 9, mask=mask, seed=3, integer=True)
    features[0, 1, 2, 3] = float("nan")
    features[0, 0, 5, 5] = 1e30  # dot products overflowing to +-inf
    features[0, 0, 1, 1] = -1e30
    features[1, 2, 3, 3] = float("inf")
    features[1, 0, 6, 8] = -float("inf")
    values, indices = cpu.knn_topk(features, m, k=k)
    b, c, h, w = features.shape
    assert int(indices.min()) >= 0 and int(indices.max()) < h * w
    for batch, (q, s) in enumerate(
        knn_reference._query_support(features.reshape(b, c, h * w), m.reshape(b, 1, h * w))
    ):
        ref_values, ref_indices = knn_reference._topk_streamed(q, s, k)
        assert torch.equal(indices[batch], ref_indices)
        torch.testing.assert_close(values[batch], ref_values, rtol=1e-5, atol=1e-5, equal_nan=True)
    torch.testing.assert_close(
        cpu.knn_topk_fusion(features, m, k=k),
        knn_topk_fusion(features, m, k=k),
        rtol=0,
        atol=1e-5,
        equal_nan=True,
    )


def test_knn_fp16_io(cpu_ops_dir):
    from harmony.plugins import cpu

    features, m = knn_inputs(1, 6, 5, 7, mask="binary", seed=5)
    features = features.half()
    actual = cpu.knn_topk_fusion(features, m.half(), k=2)
    assert actual.dtype == torch.float16
    torch.testing.assert_close(actual, knn_topk_fusion(features, m.half(), k=2), rtol=0, atol=1e-3)


@pytest.mark.parametrize("k", [0, 33])
def test_knn_rejects_k_out_of_range(cpu_ops_dir, k):
    from harmony.plugins import cpu

    features, m = knn_inputs(1, 4, 3, 3, mask="soft")
    with pytest.raises(ValueError, match=r"\[1, 32\]"):
        cpu.knn_topk_fusion(features, m, k=k)


def test_knn_rejects_k_above_positions(cpu_ops_dir):
    from harmony.plugins import cpu

    features, m = knn_inputs(1, 4, 2, 2, mask="soft")
    with pytest.raises(ValueError, match="exceeds the number of positions"):
        cpu.knn_topk_fusion(features, m, k=5)


def test_missing_library_says_how_to_build(tmp_path, monkeypatch):
    from harmony.plugins import cpu_library_path, library_path

    monkeypatch.setenv("HARMONY_PLUGIN_DIR", str(tmp_path))
    for locate in (library_path, cpu_library_path):
        with pytest.raises(HarmonyError, match=r"build_plugins\.sh"):
            locate()
