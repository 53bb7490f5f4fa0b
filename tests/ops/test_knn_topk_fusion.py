import pytest
import torch

import harmony.ops.knn as knn_module
from harmony.ops import knn_topk_fusion, knn_topk_fusion_materialized
from tests.helpers import blob_mask


def official_local_dynamics_fusion(x, m, k):
    """Official `LocalDynamics` up to the fused tensor, transcribed literally (docs/models.md,
    "LocalDynamics")."""
    b, c, h, w = x.shape
    query_all, support_all = (x * m).view(b, c, -1), (x * (1 - m)).view(b, c, -1)
    fused = []
    for i in range(b):
        query, support = query_all[i : i + 1], support_all[i : i + 1]
        simi = torch.matmul(query.permute(0, 2, 1), support)
        values, index = torch.topk(simi, dim=2, k=k)
        index = index.view(1, 1, -1).expand(-1, c, -1)
        values = values.view(1, 1, -1).expand(-1, c, -1)
        selected = torch.gather(support, 2, index).view(1, c, k, -1)
        weights = torch.softmax(values.reshape(1, c, k, -1), dim=-1)
        fused.append((weights * selected).sum(-2))
    return torch.cat(fused).view(b, c, h, w)


def test_materialized_equals_the_official_algorithm_for_a_binary_mask(rng):
    x = torch.randn(2, 8, 6, 7, generator=rng)
    m = blob_mask(6, 7, batch=2)
    expected = official_local_dynamics_fusion(x, m, 1)
    fused = knn_topk_fusion_materialized(x, m, 1)
    # Background rows tie at zero (any index is official) and are discarded by LocalDynamics.
    torch.testing.assert_close(fused * m, expected * m, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("k", [1, 3])
def test_materialized_equals_the_official_algorithm_without_ties(k, rng):
    # For k > 1 the official [k, N] view mixes rows, so compare where no row ties (0 < m < 1).
    x = torch.randn(2, 8, 6, 7, generator=rng)
    m = 0.2 + 0.6 * torch.rand(2, 1, 6, 7, generator=rng)
    expected = official_local_dynamics_fusion(x, m, k)
    torch.testing.assert_close(
        knn_topk_fusion_materialized(x, m, k), expected, atol=1e-6, rtol=1e-5
    )


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("soft", [False, True])
def test_streaming_equals_materialized_over_several_chunks(k, soft, rng, monkeypatch):
    x = torch.randn(2, 16, 13, 11, generator=rng)
    x[:, :, :3] = 0  # zero columns: dot products tie at zero
    x[:, :, 5, :4] = x[:, :, 6, :4]  # duplicated features: ties between non-zero candidates
    m = blob_mask(13, 11, batch=2, soft=soft)
    monkeypatch.setattr(knn_module, "_BLOCK_ELEMENTS", 40 * 13 * 11)  # chunks of ~40 columns
    streamed = knn_topk_fusion(x, m, k)
    torch.testing.assert_close(
        streamed, knn_topk_fusion_materialized(x, m, k), atol=1e-6, rtol=1e-5
    )


def test_every_query_negative_selects_a_zero_column():
    x = torch.ones(1, 4, 4, 4)
    x[:, :, :2] = -1.0  # foreground rows are -1, background +1: all dot products negative
    m = torch.zeros(1, 1, 4, 4)
    m[:, :, :2] = 1
    fused = knn_topk_fusion(x, m, 1)
    assert torch.equal(fused[:, :, :2], torch.zeros(1, 4, 2, 4))


def test_all_foreground_has_no_support_and_gives_zero(rng):
    x = torch.randn(1, 8, 5, 5, generator=rng)
    fused = knn_topk_fusion(x, torch.ones(1, 1, 5, 5), 1)
    assert torch.equal(fused, torch.zeros_like(fused))


def test_rejects_bad_k_and_shapes(rng):
    x = torch.randn(1, 4, 3, 3, generator=rng)
    with pytest.raises(ValueError, match=r"\[1, 32\]"):
        knn_topk_fusion(x, torch.ones(1, 1, 3, 3), 33)
    with pytest.raises(ValueError, match="mask must be"):
        knn_topk_fusion(x, torch.ones(1, 1, 3, 4), 1)
