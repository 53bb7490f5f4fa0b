"""Reference semantics of the two fused operations (the ground truth for every backend)."""

from harmony.ops.knn import check_knn_inputs, knn_topk_fusion, knn_topk_fusion_materialized
from harmony.ops.lut import cascaded_lut, check_lut_inputs

__all__ = [
    "cascaded_lut",
    "check_knn_inputs",
    "check_lut_inputs",
    "knn_topk_fusion",
    "knn_topk_fusion_materialized",
]
