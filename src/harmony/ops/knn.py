"""HDNet's LocalDynamics fusion (the reference features R), streamed over support chunks.

Semantics of the official code (`models/att.py` at HEAD), per batch element, with N = h*w:

    Q = features * mask,  S = features * (1 - mask)        # [C, N] each
    A = Q^T S                                               # raw dot products, N x N
    a, j = topk(A, k, dim=1)                                # [N, k]
    sel = S[:, j]                                           # [C, N, k]
    # the official code flattens (query, rank) row-major to N*k and *views* it as [k, N]:
    a', sel' = a.reshape(k, N), sel.reshape(C, k, N)
    w = softmax(a', dim=-1)                                 # over positions, not over k
    R = sum_r w[r] * sel'[:, r]                             # [C, N]

For k = 1 this is R_i = softmax_i(a)_i * S[:, argmax_j A_ij]. Ties are broken towards the
lowest support index (the official `topk` leaves it unspecified; ties only occur between
zero dot products). A query row that is all zero (background for a binary mask) has A_i = 0,
hence top-k values 0 at indices 0..k-1; it is filled without computing its dot products.

The N x N matrix is never materialised: support columns are processed in chunks and a
running top-k per query is kept, so memory is O(N * (k + chunk)).
"""

from __future__ import annotations

import torch

from harmony.contract import KNN_TOPK_FUSION

# Elements of one [queries, support_chunk] block of dot products (64 MiB in fp32).
_BLOCK_ELEMENTS = 1 << 24


def knn_topk_fusion(features: torch.Tensor, mask: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Fused reference features R of LocalDynamics without the N x N similarity matrix.

    Args:
        features: [B,C,h,w] bottleneck features.
        mask: [B,1,h,w] mask already at feature resolution (nearest-resized by the caller).
        k: neighbours per query, 1 (official) to 32.
    Returns:
        [B,C,h,w] in the dtype of `features`; dot products, top-k and softmax run in float32.
    """
    k = check_knn_inputs(features, mask, k)
    out_dtype = features.dtype
    features, mask = features.float(), mask.float()
    b, c, h, w = features.shape
    fused = [
        _fuse(*_topk_streamed(q, s, k), s, k)
        for q, s in _query_support(features.reshape(b, c, h * w), mask.reshape(b, 1, h * w))
    ]
    return torch.stack(fused).reshape(b, c, h, w).to(out_dtype)


def knn_topk_fusion_materialized(
    features: torch.Tensor, mask: torch.Tensor, k: int = 1
) -> torch.Tensor:
    """The same result computed the official way, with the full N x N matrix: the reference of
    the streaming version and the official-algorithm baseline of benchmarks. k = 1 takes the
    row max (O(N) per row, as the official `topk(k=1)`); k > 1 a stable sort."""
    k = check_knn_inputs(features, mask, k)
    b, c, h, w = features.shape
    fused = []
    for q, s in _query_support(
        features.float().reshape(b, c, h * w), mask.float().reshape(b, 1, h * w)
    ):
        fused.append(_fuse(*_topk_first(q.t() @ s, k), s, k))
    return torch.stack(fused).reshape(b, c, h, w).to(features.dtype)


def check_knn_inputs(features: torch.Tensor, mask: torch.Tensor, k: int) -> int:
    """Raise ValueError unless `knn_topk_fusion` takes these inputs; returns k as int."""
    k = KNN_TOPK_FUSION.attribute("k").validate(k)
    if features.dim() != 4:
        raise ValueError(f"features must be [B,C,h,w], got {list(features.shape)}")
    b, _, h, w = features.shape
    if tuple(mask.shape) != (b, 1, h, w):
        raise ValueError(f"mask must be [{b},1,{h},{w}], got {list(mask.shape)}")
    if k > h * w:
        raise ValueError(f"k={k} exceeds the number of positions {h * w}")
    return k


def _query_support(features: torch.Tensor, mask: torch.Tensor):
    """Yield the masked query and support matrices [C, N] of each batch element."""
    for x, m in zip(features, mask, strict=True):
        yield x * m, x * (1.0 - m)


def _topk_streamed(query: torch.Tensor, support: torch.Tensor, k: int):
    """Top-k dot products per query over all support columns: values, indices [N, k]."""
    n = query.shape[1]
    values = torch.zeros(n, k, dtype=torch.float32, device=query.device)
    indices = torch.arange(k, device=query.device).expand(n, k).clone()
    active = (query != 0).any(dim=0).nonzero().squeeze(1)
    if active.numel() == 0:
        return values, indices
    q_active = query[:, active].t().contiguous()  # [Na, C]
    chunk = max(k, _BLOCK_ELEMENTS // max(1, active.numel()))
    run_values, run_indices = None, None
    for start in range(0, n, chunk):
        sims = q_active @ support[:, start : start + chunk]  # [Na, chunk]
        chunk_values, chunk_indices = _topk_first(sims, min(k, sims.shape[1]))
        chunk_indices = chunk_indices + start
        if run_values is None:
            run_values, run_indices = chunk_values, chunk_indices
            continue
        # Earlier chunks hold lower indices and come first, so a stable sort keeps ties low.
        merged_values = torch.cat([run_values, chunk_values], dim=1)
        merged_indices = torch.cat([run_indices, chunk_indices], dim=1)
        run_values, pick = _topk_first(merged_values, k)
        run_indices = merged_indices.gather(1, pick)
    values[active] = run_values
    indices[active] = run_indices
    return values, indices


def _topk_first(x: torch.Tensor, k: int):
    """Top-k along dim 1 with ties broken towards the lower position."""
    if k == 1:
        value, index = x.max(dim=1, keepdim=True)  # documented: first maximal index
        return value, index
    values, order = torch.sort(x, dim=1, descending=True, stable=True)
    return values[:, :k], order[:, :k]


def _fuse(values: torch.Tensor, indices: torch.Tensor, support: torch.Tensor, k: int):
    """Official softmax over the [k, N] view of the row-major (query, rank) layout, then sum."""
    c, n = support.shape
    weights = torch.softmax(values.reshape(k, n), dim=-1)  # [k, N]
    selected = support[:, indices.reshape(-1)].reshape(c, k, n)
    return (weights.unsqueeze(0) * selected).sum(dim=1)
