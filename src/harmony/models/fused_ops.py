"""Which implementation of the two fused ops the models call.

AICT calls `cascaded_lut` and HDNet `knn_topk_fusion` by their module-level names (bound to
`harmony.ops`, the reference). `use_fused_ops` rebinds them for the duration of a block: the
exporter to trace its target's form, the torch backend to run the CUDA kernels. The binding is
process-wide (module globals), so do not run two blocks with different implementations in
concurrent threads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import harmony.models.aict as aict_module
import harmony.models.hdnet as hdnet_module


@contextlib.contextmanager
def use_fused_ops(cascaded_lut: Callable, knn_topk_fusion: Callable) -> Iterator[None]:
    """Within the block AICT calls `cascaded_lut` and HDNet `knn_topk_fusion` (same signatures
    as `harmony.ops`); the previous implementations are restored on exit, errors included."""
    saved = aict_module.cascaded_lut, hdnet_module.knn_topk_fusion
    aict_module.cascaded_lut, hdnet_module.knn_topk_fusion = cascaded_lut, knn_topk_fusion
    try:
        yield
    finally:
        aict_module.cascaded_lut, hdnet_module.knn_topk_fusion = saved
