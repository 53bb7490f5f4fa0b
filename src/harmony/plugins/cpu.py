"""The two fused ops computed by libharmony_cpu_ops.so, the CPU build of the plugin kernels.

Same signatures and semantics as `harmony.ops` (torch tensors in and out, float32 math whatever
the input dtype, the result in the input's dtype); the arithmetic is the plugin's own
`__host__ __device__` code, so comparing these functions with `harmony.ops` tests the kernels'
math without a GPU.
"""

from __future__ import annotations

import ctypes
import functools

import torch

from harmony.contract import LUT_CHANNELS
from harmony.ops import check_knn_inputs, check_lut_inputs
from harmony.plugins import call_checked, cpu_library_path

_F32P = ctypes.POINTER(ctypes.c_float)
_I32P = ctypes.POINTER(ctypes.c_int32)
_I32 = ctypes.c_int32


@functools.cache
def _library() -> ctypes.CDLL:
    lib = ctypes.CDLL(str(cpu_library_path()))
    lib.harmonyCascadedLut3DFloat.argtypes = [_F32P] * 5 + [_I32] * 5
    lib.harmonyKnnTopkFloat.argtypes = [_F32P, _F32P, _F32P, _I32P] + [_I32] * 4
    lib.harmonyKnnTopkFusionFloat.argtypes = [_F32P] * 3 + [_I32] * 4
    for fn in (
        lib.harmonyCascadedLut3DFloat,
        lib.harmonyKnnTopkFloat,
        lib.harmonyKnnTopkFusionFloat,
    ):
        fn.restype = _I32
    lib.harmonyCpuLastError.argtypes = []
    lib.harmonyCpuLastError.restype = ctypes.c_char_p
    return lib


def cascaded_lut(
    image: torch.Tensor, mask: torch.Tensor, knots: torch.Tensor, curve: torch.Tensor
) -> torch.Tensor:
    """AICT's cascaded LUT on the CPU library; see `harmony.ops.cascaded_lut`.

    Args:
        image: [B,3,H,W]; mask: [B,1,H,W]; knots: [B,3,9,h,w]; curve: [B,3,8,h,w].
    Returns:
        [B,3,H,W] in the dtype of `image`.
    """
    check_lut_inputs(image, mask, knots, curve)
    b, _, height, width = image.shape
    map_h, map_w = knots.shape[-2:]
    args = [_f32(t) for t in (image, mask, knots, curve)]
    out = torch.empty(b, LUT_CHANNELS, height, width, dtype=torch.float32)
    _call(
        "harmonyCascadedLut3DFloat",
        *(_ptr(t) for t in args),
        _ptr(out),
        b,
        height,
        width,
        map_h,
        map_w,
    )
    return out.to(image.dtype)


def knn_topk_fusion(features: torch.Tensor, mask: torch.Tensor, k: int = 1) -> torch.Tensor:
    """HDNet's fused reference features on the CPU library; see `harmony.ops.knn_topk_fusion`.

    Args:
        features: [B,C,h,w]; mask: [B,1,h,w]; k: neighbours per query, 1 (default) to 32.
    Returns:
        [B,C,h,w] in the dtype of `features`.
    """
    k = check_knn_inputs(features, mask, k)
    b, c, h, w = features.shape
    x, m = _f32(features), _f32(mask)
    out = torch.empty(b, c, h, w, dtype=torch.float32)
    _call("harmonyKnnTopkFusionFloat", _ptr(x), _ptr(m), _ptr(out), b, c, h * w, k)
    return out.to(features.dtype)


def knn_topk(
    features: torch.Tensor, mask: torch.Tensor, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """The plugin's intermediate top-k: values [B,N,k] float32 and support indices [B,N,k] int64.

    Ties go to the lowest support index; all-zero query rows get values 0 at indices 0..k-1.
    """
    k = check_knn_inputs(features, mask, k)
    b, c, h, w = features.shape
    x, m = _f32(features), _f32(mask)
    values = torch.empty(b, h * w, k, dtype=torch.float32)
    indices = torch.empty(b, h * w, k, dtype=torch.int32)
    _call(
        "harmonyKnnTopkFloat",
        _ptr(x),
        _ptr(m),
        _ptr(values),
        ctypes.cast(indices.data_ptr(), _I32P),
        b,
        c,
        h * w,
        k,
    )
    return values, indices.long()


def _f32(t: torch.Tensor) -> torch.Tensor:
    if t.device.type != "cpu":
        raise ValueError(f"harmony.plugins.cpu runs on CPU tensors, got a tensor on {t.device}")
    return t.detach().to(torch.float32).contiguous()


def _ptr(t: torch.Tensor):
    return ctypes.cast(t.data_ptr(), _F32P)


def _call(name: str, *args) -> None:
    call_checked(_library(), name, "harmonyCpuLastError", *args)


__all__ = ["cascaded_lut", "knn_topk", "knn_topk_fusion"]
