"""Reference semantics of the two fused operations (the ground truth for every backend)."""

from harmony.ops.knn import knn_topk_fusion, knn_topk_fusion_materialized
from harmony.ops.lut import cascaded_lut

__all__ = ["cascaded_lut", "knn_topk_fusion", "knn_topk_fusion_materialized"]
